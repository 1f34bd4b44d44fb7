"""Run the operator against a local cluster as a user would in-cluster: its own ServiceAccount and RBAC.

The operator process runs on the host (the API server reaches its webhook on 127.0.0.1), with a token of
ServiceAccount rbg-system/rbg-controller bound to config/rbac/rbac.yaml, so RBAC gaps surface in tests.
It is recorded in the cluster's state.json as component `rbg-operator`, so `rbg cluster down` stops it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import yaml

from rbg.devcluster import processes
from rbg.devcluster.cluster import LocalCluster, State
from rbg.devcluster.errors import DevClusterError

COMPONENT = "rbg-operator"
RBAC = Path(__file__).resolve().parents[2] / "config" / "rbac" / "rbac.yaml"


def kubectl(state: State, *args: str, stdin: str | None = None, ok_if_exists: bool = False) -> str:
    """Run the cluster's kubectl; a failure is one DevClusterError line (AlreadyExists is fine when asked)."""
    cmd = [str(Path(state.bin_dir) / "kubectl"), f"--kubeconfig={state.kubeconfig}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=120)
    if r.returncode != 0:
        if ok_if_exists and "AlreadyExists" in r.stderr:
            return r.stdout
        raise DevClusterError(f"kubectl {' '.join(args[:3])} failed: {r.stderr.strip().splitlines()[-1:]}")
    return r.stdout


def token_kubeconfig(state: State, service_account: str, path: Path) -> Path:
    """A kubeconfig for the cluster that authenticates with a token of `rbg-system/<service_account>`."""
    token = kubectl(state, "create", "token", service_account, "-n", "rbg-system", "--duration=48h").strip()
    admin = yaml.safe_load(state.kubeconfig.read_text())
    admin["users"] = [{"name": service_account, "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = service_account
    path.write_text(yaml.safe_dump(admin))
    path.chmod(0o600)
    return path


def service_account_kubeconfig(state: State, path: Path) -> Path:
    """Apply the RBAC manifests and write a kubeconfig holding a token of the operator's ServiceAccount."""
    kubectl(state, "apply", "--server-side", "--field-manager=rbg-devcluster", "-f", str(RBAC))
    return token_kubeconfig(state, "rbg-controller", path)


def replica_names(replicas: int) -> list[str]:
    """Component names of the operator's replicas: `rbg-operator`, then `rbg-operator-2`, ..."""
    return [COMPONENT if i == 1 else f"{COMPONENT}-{i}" for i in range(1, replicas + 1)]


def start(
    cluster: LocalCluster,
    extra_args: tuple[str, ...] = (),
    timeout: float = 60,
    *,
    replicas: int = 1,
    supervise: bool = True,
) -> State:
    """Start (or restart) the operator for this cluster and wait until every replica is ready.

    `supervise`: each replica runs under `rbg.devcluster.supervisor`, restarted with back-off when it
    exits, as a kubelet would (D43); the benchmark turns it off to read the operator's own CPU. Several
    replicas share one webhook port (SO_REUSEPORT, as a Service spreads requests over pods), the
    webhook certificate (the Secret, D41) and the Lease; each has its own token, so the audit log tells
    their requests apart, and `POD_NAME` = its component name, which prefixes its Lease identity."""
    state = cluster.load_state()
    if state is None:
        raise DevClusterError(f"cluster {cluster.name} is not running (rbg cluster up)")
    stop(cluster)
    names = replica_names(replicas)
    webhook = processes.free_port()
    for name in names:
        kubeconfig = service_account_kubeconfig(state, cluster.dir / f"{name}.kubeconfig")
        health, metrics = processes.free_ports(2)
        args: list[str | Path] = [
            sys.executable, "-m", "rbg.cli.main", "controller", "run",
            f"--kubeconfig={kubeconfig}", "--probe-bind=127.0.0.1", f"--health-port={health}",
            f"--metrics-port={metrics}", f"--webhook-port={webhook}",
            f"--cert-dir={cluster.dir / ('webhook-certs' if name == COMPONENT else f'{name}-certs')}",
            *(["--webhook-reuse-port"] if replicas > 1 else []), *extra_args,
        ]  # fmt: skip
        if supervise:
            record = f"--record={record_file(cluster, name)}"
            args = [sys.executable, "-m", "rbg.devcluster.supervisor", record, "--", *args]
        state.ports.update({name: health, f"{name}-metrics": metrics, f"{name}-webhook": webhook})
        state = spawn_until_ready(cluster, state, name, args, health, timeout, env={"POD_NAME": name})
    return state


def record_file(cluster: LocalCluster, component: str) -> Path:
    """The supervisor's record of `component` (restarts, pid): see `rbg.devcluster.supervisor`."""
    return cluster.dir / f"{component}.supervisor.json"


def restarts(cluster: LocalCluster, component: str = COMPONENT) -> int:
    """How many times the supervisor restarted `component` (0 when it was not supervised)."""
    from rbg.devcluster.supervisor import Record

    rec = Record.read(record_file(cluster, component))
    return rec.restarts if rec else 0


def spawn_until_ready(
    cluster: LocalCluster,
    state: State,
    component: str,
    args: list[str | Path],
    health: int,
    timeout: float,
    env: dict[str, str] | None = None,
) -> State:
    """Start `component` (recorded in the cluster state, so `rbg cluster down` stops it) and wait until
    its /readyz on 127.0.0.1:`health` answers 200."""
    log = cluster.logs / f"{component}.log"
    state.pids[component] = processes.spawn(args, log, cwd=cluster.dir, env=env)
    cluster.save(state)
    deadline = time.monotonic() + timeout
    while True:
        if not processes.alive(state.pids[component]):
            raise DevClusterError(f"{component} exited: {processes.last_line(log)} (log: {log})")
        try:
            if httpx.get(f"http://127.0.0.1:{health}/readyz", timeout=2).status_code == 200:
                return state
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise DevClusterError(f"{component} was not ready in {timeout:.0f}s (log: {log})")
        time.sleep(0.2)


def running_replicas(state: State) -> list[str]:
    """The operator replicas recorded in the cluster state."""
    return [
        c
        for c in state.pids
        if c == COMPONENT or (c.startswith(f"{COMPONENT}-") and c[len(COMPONENT) + 1 :].isdigit())
    ]


def stop(cluster: LocalCluster) -> None:
    """Stop every replica of the operator (and its supervisor)."""
    state = cluster.load_state()
    if state is None:
        return
    names = running_replicas(state)
    if not names:
        return
    processes.stop_groups([state.pids.pop(n) for n in names])
    for name in names:
        for k in (name, f"{name}-metrics", f"{name}-webhook"):
            state.ports.pop(k, None)
    cluster.save(state)
