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


def start(cluster: LocalCluster, extra_args: tuple[str, ...] = (), timeout: float = 60) -> State:
    """Start (or restart) the operator for this cluster and wait until it is ready."""
    state = cluster.load_state()
    if state is None:
        raise DevClusterError(f"cluster {cluster.name} is not running (rbg cluster up)")
    stop(cluster)
    kubeconfig = service_account_kubeconfig(state, cluster.dir / "operator.kubeconfig")
    health, metrics, webhook = processes.free_ports(3)
    args: list[str | Path] = [
        sys.executable, "-m", "rbg.cli.main", "controller", "run",
        f"--kubeconfig={kubeconfig}", "--probe-bind=127.0.0.1", f"--health-port={health}",
        f"--metrics-port={metrics}", f"--webhook-port={webhook}",
        f"--cert-dir={cluster.dir / 'webhook-certs'}", *extra_args,
    ]  # fmt: skip
    state.ports.update({COMPONENT: health, f"{COMPONENT}-metrics": metrics, f"{COMPONENT}-webhook": webhook})
    return spawn_until_ready(cluster, state, COMPONENT, args, health, timeout)


def spawn_until_ready(
    cluster: LocalCluster, state: State, component: str, args: list[str | Path], health: int, timeout: float
) -> State:
    """Start `component` (recorded in the cluster state, so `rbg cluster down` stops it) and wait until
    its /readyz on 127.0.0.1:`health` answers 200."""
    log = cluster.logs / f"{component}.log"
    state.pids[component] = processes.spawn(args, log, cwd=cluster.dir)
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


def stop(cluster: LocalCluster) -> None:
    state = cluster.load_state()
    if state is None or COMPONENT not in state.pids:
        return
    processes.stop_groups([state.pids.pop(COMPONENT)])
    for k in (COMPONENT, f"{COMPONENT}-metrics", f"{COMPONENT}-webhook"):
        state.ports.pop(k, None)
    cluster.save(state)
