"""Start, reuse, inspect and stop a local control plane (etcd, apiserver, KCM, schedulers, kwok).

Every component runs in a process group of its own, detached from the caller, with its log and all
state under one directory; `state.json` there records pids and ports so that `status` and `down` work
from any later process.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rbg.devcluster import processes
from rbg.devcluster.binaries import K8S_VERSION, Binaries, cache_root, find_binaries
from rbg.devcluster.errors import DevClusterError
from rbg.devcluster.topology import KWOK_NODE_ANNOTATION, Topology, node_manifests

#: schedulerName of the second scheduler, which runs the scheduler-plugins Coscheduling plugin
COSCHEDULING_SCHEDULER = "scheduler-plugins-scheduler"
SERVICE_CIDR = "10.96.0.0/16"
#: requests of ServiceAccounts in this namespace (the operator's) are written to logs/audit.log
AUDITED_NAMESPACE = "rbg-system"
POD_CIDR = "10.244.0.0/16"
NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
# start order; `down` stops in reverse
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "coscheduler", "kwok")


def default_dir(name: str) -> Path:
    return Path(os.environ.get("RBG_CLUSTER_DIR") or cache_root() / "clusters" / name)


#: StatefulSet spec.updateStrategy.rollingUpdate.maxUnavailable (KEP-961), which LeaderWorkerSet rolling
#: updates use for their leader StatefulSet; off by default in this Kubernetes version (the API server
#: drops the field)
FEATURE_GATES = "--feature-gates=MaxUnavailableStatefulSet=true"


@dataclass
class State:
    """What `up` started; persisted as state.json in the cluster directory."""

    name: str
    dir: str
    bin_dir: str
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    #: each component's command line, so that one can be started again as it was (`restart`)
    args: dict[str, list[str]] = field(default_factory=dict)
    nodes: int = 0
    coscheduling: bool = False
    started_at: float = 0.0

    @property
    def kubeconfig(self) -> Path:
        return Path(self.dir) / "kubeconfig"

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['kube-apiserver']}"


class LocalCluster:
    """One local cluster, identified by its directory."""

    def __init__(self, name: str = "rbg", directory: Path | None = None) -> None:
        self.name = name
        self.dir = (directory or default_dir(name)).resolve()
        self.logs = self.dir / "logs"
        self.state_file = self.dir / "state.json"

    # ---- state ----------------------------------------------------------------------------------
    def load_state(self) -> State | None:
        try:
            return State(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, state: State) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_file)

    def running_components(self, state: State) -> dict[str, bool]:
        return {c: processes.alive(pid) for c, pid in state.pids.items()}

    def healthy(self, state: State) -> bool:
        core = {c: up for c, up in self.running_components(state).items() if c in COMPONENTS}
        return all(core.values()) and self._apiserver_ready(state)

    def _apiserver_ready(self, state: State) -> bool:
        try:
            r = httpx.get(f"{state.api_url}/readyz", verify=self._ssl(), timeout=2)
        except (httpx.HTTPError, OSError, ssl.SSLError):
            return False
        return r.status_code == 200

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.dir / "pki" / "apiserver.crt"))

    # ---- up -------------------------------------------------------------------------------------
    def up(
        self,
        topology: Topology | None = None,
        api_port: int | None = None,
        timeout: float = 120.0,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> tuple[State, bool]:
        """Start the cluster, or reuse it when it is already up. Returns (state, reused)."""
        topology = topology or Topology()
        state = self.load_state()
        if state is not None:
            if self.healthy(state):
                if api_port is not None and state.ports.get("kube-apiserver") != api_port:
                    raise DevClusterError(
                        f"cluster {self.name!r} is already running with the API server on port "
                        f"{state.ports['kube-apiserver']}, not {api_port}; run `rbg cluster down` first"
                    )
                log(f"cluster {self.name!r} is already running at {state.api_url}; reusing it")
                return state, True
            log(f"cluster {self.name!r} was left half-running; cleaning it up")
            self.down()
        binaries = find_binaries()
        if api_port is not None and processes.port_in_use(api_port):
            raise DevClusterError(f"port {api_port} (for kube-apiserver) is already in use")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.logs.mkdir(parents=True)
        state = State(name=self.name, dir=str(self.dir), bin_dir=str(binaries.dir), started_at=time.time())
        try:
            self._start(state, binaries, topology, api_port, timeout, log)
        except BaseException:
            self._stop_pids(state)
            with contextlib.suppress(OSError):
                self.state_file.unlink()
            raise
        return state, False

    def _spawn(self, state: State, component: str, args: list[str | Path]) -> None:
        state.args[component] = [str(a) for a in args]
        state.pids[component] = processes.spawn(args, self.logs / f"{component}.log", cwd=self.dir)
        self.save(state)

    def stop_component(self, component: str) -> None:
        """Kill one component of the running cluster (SIGKILL: an outage, not a graceful stop)."""
        state = self._running()
        pid = state.pids.pop(component, None)
        if pid is not None and processes.group_runs_in(pid, self.dir):
            processes.kill_group(pid)
        self.save(state)

    def start_component(self, component: str, timeout: float = 60.0) -> State:
        """Start a stopped component again with the command line it had, and wait until it serves
        (for the API server: /readyz answers 200)."""
        state = self._running()
        if component in state.pids and processes.alive(state.pids[component]):
            raise DevClusterError(f"{component} is already running")
        if component not in state.args:
            raise DevClusterError(f"{component} was never started by this cluster")
        self._spawn(state, component, list(state.args[component]))
        if component == "kube-apiserver":
            self._wait(state, component, lambda: self._apiserver_ready(state), time.monotonic() + timeout)
        return state

    def _running(self) -> State:
        state = self.load_state()
        if state is None:
            raise DevClusterError(f"cluster {self.name} is not running (rbg cluster up)")
        return state

    def _wait(self, state: State, component: str, check: Callable[[], bool], deadline: float) -> None:
        log_file = self.logs / f"{component}.log"
        while True:
            for c, pid in state.pids.items():
                if not processes.alive(pid):
                    raise DevClusterError(
                        f"{c} exited during start-up: {processes.last_line(self.logs / f'{c}.log')} "
                        f"(log: {self.logs / f'{c}.log'})"
                    )
            with contextlib.suppress(Exception):
                if check():
                    return
            if time.monotonic() > deadline:
                raise DevClusterError(
                    f"{component} not ready in time; last log line: {processes.last_line(log_file)} "
                    f"(log: {log_file})"
                )
            time.sleep(0.2)

    def _start(
        self,
        state: State,
        b: Binaries,
        topology: Topology,
        api_port: int | None,
        timeout: float,
        log: Callable[[str], None],
    ) -> None:
        deadline = time.monotonic() + timeout
        d, pki = self.dir, self.dir / "pki"
        pki.mkdir()
        ports = processes.free_ports(6)
        state.ports = {
            "etcd": ports[0],
            "etcd-peer": ports[1],
            "kube-apiserver": api_port or ports[2],
            "kube-controller-manager": ports[3],
            "kube-scheduler": ports[4],
            "coscheduler": ports[5],
        }
        _write_service_account_key(pki / "sa.key")
        token = secrets.token_hex(24)
        (pki / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        (pki / "tokens.csv").chmod(0o600)

        p = state.ports
        etcd_url = f"http://127.0.0.1:{p['etcd']}"
        log(f"starting etcd on {etcd_url}")
        self._spawn(
            state,
            "etcd",
            [
                b.path("etcd"),
                "--name=default",
                f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
                f"--initial-cluster=default=http://127.0.0.1:{p['etcd-peer']}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait(
            state,
            "etcd",
            lambda: httpx.get(f"{etcd_url}/health", timeout=2).json()["health"] == "true",
            deadline,
        )

        log(f"starting kube-apiserver on https://127.0.0.1:{p['kube-apiserver']}")
        self._spawn(
            state,
            "kube-apiserver",
            [
                b.path("kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['kube-apiserver']}",
                # loopback cannot be advertised in Endpoints; nothing routes to the advertised address here
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--cert-dir={pki}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--anonymous-auth=true",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.key'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--profiling=false",
                FEATURE_GATES,
                # the operator's requests, as the API server saw them (the benchmark counts them here)
                f"--audit-policy-file={self._write_audit_policy()}",
                f"--audit-log-path={self.logs / 'audit.log'}",
                "--audit-log-format=json",
                "--v=1",
            ],
        )
        self._wait(
            state,
            "kube-apiserver",
            lambda: (pki / "apiserver.crt").exists() and self._apiserver_ready(state),
            deadline,
        )
        self._write_kubeconfig(state, token)

        kc = f"--kubeconfig={state.kubeconfig}"
        allow = "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"
        # the defaults (qps 20) would make the control plane, not the operator, the bottleneck of a benchmark
        busy_client = ["--kube-api-qps=400", "--kube-api-burst=800", "--profiling=false", "--v=1"]
        log("starting kube-controller-manager, kube-scheduler and kwok")
        self._spawn(
            state,
            "kube-controller-manager",
            [
                b.path("kube-controller-manager"),
                kc,
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['kube-controller-manager']}",
                allow,
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'apiserver.crt'}",
                "--use-service-account-credentials=false",
                "--controllers=*",
                "--node-monitor-period=2s",
                "--node-monitor-grace-period=40s",
                "--concurrent-statefulset-syncs=10",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-gc-syncs=40",
                FEATURE_GATES,
                *busy_client,
            ],
        )
        self._spawn(
            state,
            "kube-scheduler",
            [
                b.path("kube-scheduler"),
                kc,
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['kube-scheduler']}",
                allow,
                *busy_client,
            ],
        )
        self._spawn(
            state,
            "kwok",
            [
                b.path("kwok"),
                kc,
                f"--config={b.kwok_stages}",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                "--node-lease-duration-seconds=40",
                f"--cidr={POD_CIDR}",
                "--node-ip=10.0.0.1",
            ],
        )
        for c in ("kube-controller-manager", "kube-scheduler"):
            self._wait(state, c, _healthz(p[c]), deadline)

        if b.coscheduling:
            log(f"starting the Coscheduling scheduler (schedulerName {COSCHEDULING_SCHEDULER})")
            self._apply_manifest_file(state, b.podgroup_crd)
            cfg = d / "coscheduler.yaml"
            cfg.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "kubescheduler.config.k8s.io/v1",
                        "kind": "KubeSchedulerConfiguration",
                        "leaderElection": {"leaderElect": False},
                        "clientConnection": {"kubeconfig": str(state.kubeconfig), "qps": 200, "burst": 400},
                        "profiles": [
                            {
                                "schedulerName": COSCHEDULING_SCHEDULER,
                                "plugins": {
                                    "multiPoint": {
                                        "enabled": [{"name": "Coscheduling"}],
                                        # Coscheduling sorts the queue by group: one QueueSort only
                                        "disabled": [{"name": "PrioritySort"}],
                                    }
                                },
                                "pluginConfig": [
                                    {"name": "Coscheduling", "args": {"permitWaitingTimeSeconds": 60}}
                                ],
                            }
                        ],
                    }
                )
            )
            self._spawn(
                state,
                "coscheduler",
                [
                    b.path("kube-scheduler-coscheduling"),
                    f"--config={cfg}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={p['coscheduler']}",
                    allow,
                    "--v=1",
                ],
            )
            state.coscheduling = True
            self._wait(state, "coscheduler", _healthz(p["coscheduler"]), deadline)

        nodes = node_manifests(topology, K8S_VERSION)
        log(f"creating {len(nodes)} fake GPU nodes")
        self._create_nodes(state, nodes)
        state.nodes = len(nodes)
        self.save(state)
        self._wait(state, "nodes", lambda: self._nodes_ready(state) == len(nodes), deadline)
        log(f"cluster {self.name!r} is up: {len(nodes)} nodes Ready")

    def _write_audit_policy(self) -> Path:
        policy = self.dir / "audit-policy.yaml"
        policy.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "omitStages": ["RequestReceived"],
                    "rules": [
                        {"level": "Metadata", "userGroups": [f"system:serviceaccounts:{AUDITED_NAMESPACE}"]},
                        {"level": "None"},
                    ],
                }
            )
        )
        return policy

    def _write_kubeconfig(self, state: State, token: str) -> None:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {
                        "server": state.api_url,
                        "certificate-authority": str(self.dir / "pki" / "apiserver.crt"),
                    },
                }
            ],
            "users": [{"name": f"{self.name}-admin", "user": {"token": token}}],
            "contexts": [
                {"name": self.name, "context": {"cluster": self.name, "user": f"{self.name}-admin"}}
            ],
            "current-context": self.name,
        }
        state.kubeconfig.write_text(yaml.safe_dump(cfg))
        state.kubeconfig.chmod(0o600)

    # ---- API access (sync lightkube; this is a CLI, not the operator) ---------------------------
    def client(self, state: State) -> Any:
        from lightkube import Client, KubeConfig

        return Client(
            KubeConfig.from_file(state.kubeconfig), field_manager="rbg-devcluster", timeout=httpx.Timeout(30)
        )

    def _apply_manifest_file(self, state: State, path: Path) -> None:
        from lightkube import codecs

        with self.client(state) as client:
            for obj in codecs.load_all_yaml(path.read_text()):
                client.apply(obj, force=True)
        self._wait_crds_established(state, path)

    def _wait_crds_established(self, state: State, path: Path) -> None:
        from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

        names = [d["metadata"]["name"] for d in yaml.safe_load_all(path.read_text()) if d]
        with self.client(state) as client:

            def established() -> bool:
                for n in names:
                    crd = client.get(CustomResourceDefinition, n)
                    conds = crd.status.conditions or [] if crd.status else []
                    if not any(c.type == "Established" and c.status == "True" for c in conds):
                        return False
                return True

            self._wait(state, "CRDs", established, time.monotonic() + 30)

    def _create_nodes(self, state: State, nodes: list[dict[str, Any]]) -> None:
        from lightkube import codecs
        from lightkube.core.exceptions import ApiError

        with self.client(state) as client:
            for n in nodes:
                try:
                    client.create(codecs.from_dict(n))
                except ApiError as exc:
                    if exc.status.code != 409:
                        raise DevClusterError(
                            f"creating node {n['metadata']['name']}: {exc.status.message}"
                        ) from None

    def _nodes_ready(self, state: State) -> int:
        from lightkube.resources.core_v1 import Node

        ready = 0
        with self.client(state) as client:
            for node in client.list(Node):
                conds = node.status.conditions or [] if node.status else []
                is_ready = any(c.type == "Ready" and c.status == "True" for c in conds)
                taints = [t.key for t in (node.spec.taints or [])] if node.spec else []
                if is_ready and not any(t in NOT_READY_TAINTS for t in taints):
                    ready += 1
        return ready

    # ---- down / status --------------------------------------------------------------------------
    def _stop_pids(self, state: State) -> None:
        # a pid recorded long ago may belong to someone else now: only groups with a member still running
        # in this cluster's directory (every component is started there) are ours to stop
        ours = {c: pid for c, pid in state.pids.items() if processes.group_runs_in(pid, self.dir)}
        order = [c for c in reversed(COMPONENTS) if c in ours]
        order += [c for c in ours if c not in order]
        # the apiserver first would make the others log connection errors for the grace period;
        # stop clients first, etcd last
        processes.stop_groups([ours[c] for c in order if c != "etcd"])
        if "etcd" in ours:
            processes.stop_groups([ours["etcd"]])

    def down(self) -> bool:
        """Stop every process this cluster started and free its ports. Returns False if none was found."""
        state = self.load_state()
        if state is None:
            return False
        self._stop_pids(state)
        # keep logs for post-mortems; drop the state that made it a cluster
        for p in ("state.json", "etcd", "kubeconfig"):
            target = self.dir / p
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    target.unlink()
        return True

    def status(self) -> dict[str, Any]:
        state = self.load_state()
        if state is None:
            return {"name": self.name, "dir": str(self.dir), "running": False, "components": {}}
        comps = self.running_components(state)
        info: dict[str, Any] = {
            "name": self.name,
            "dir": str(self.dir),
            "running": all(comps.values()) and self._apiserver_ready(state),
            "server": state.api_url,
            "kubeconfig": str(state.kubeconfig),
            "components": {
                c: {"pid": state.pids[c], "running": up, "port": state.ports.get(c)}
                for c, up in comps.items()
            },
            "coscheduling": state.coscheduling,
            "bin_dir": state.bin_dir,
        }
        if info["running"]:
            with contextlib.suppress(Exception):
                info["nodes_ready"] = self._nodes_ready(state)
        info["nodes"] = state.nodes
        return info


def _healthz(port: int) -> Callable[[], bool]:
    """A probe of a component's /healthz (its serving certificate is self-signed: not verified)."""

    def probe() -> bool:
        return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2).status_code == 200

    return probe


def _write_service_account_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
