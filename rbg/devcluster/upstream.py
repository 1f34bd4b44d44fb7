"""The Go upstream operator (sgl-project/rbg) as a benchmark baseline on a local cluster.

Its binary and CRDs come from a directory outside the repository (`RBG_UPSTREAM_DIR`, else
`../shared/bench/upstream-rbg` beside the checkout): `manager.xz` and `crds.tar.xz`. Nothing of it is
copied into the project; the unpacked files live in the cache (`~/.cache/rbg/upstream/<digest>/`).
It runs like our operator in tests: a process on the host, with a token of a ServiceAccount in the
audited namespace (bound to cluster-admin, as its README asks), recorded in the cluster's state so that
`rbg cluster down` stops it.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import stat
import tarfile
import time
from pathlib import Path

from rbg.devcluster import processes
from rbg.devcluster.binaries import cache_root
from rbg.devcluster.cluster import AUDITED_NAMESPACE, LocalCluster, State
from rbg.devcluster.errors import DevClusterError
from rbg.devcluster.operator import kubectl, spawn_until_ready, token_kubeconfig

COMPONENT = "rbg-upstream"
SERVICE_ACCOUNT = "rbg-upstream"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def find_dir() -> tuple[Path | None, str]:
    """(directory holding manager.xz and crds.tar.xz, or None; why not, when None)."""
    configured = os.environ.get("RBG_UPSTREAM_DIR")
    candidate = Path(configured) if configured else _REPO_ROOT.parent / "shared" / "bench" / "upstream-rbg"
    missing = [f for f in ("manager.xz", "crds.tar.xz") if not (candidate / f).is_file()]
    if not missing:
        return candidate, ""
    source = "RBG_UPSTREAM_DIR" if configured else "the default location"
    return None, f"no upstream baseline: {candidate} ({source}) lacks {', '.join(missing)}"


def unpack(source: Path) -> tuple[Path, Path]:
    """(manager binary, directory of CRD YAMLs), unpacked once into the cache."""
    archive = source / "manager.xz"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    target = cache_root() / "upstream" / digest
    binary, crds = target / "manager", target / "bases"
    if not binary.exists():
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / "manager.tmp"
        with lzma.open(archive) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR)
        tmp.replace(binary)
    if not crds.exists():
        with tarfile.open(source / "crds.tar.xz") as tar:
            tar.extractall(target, filter="data")
    if not crds.is_dir():
        raise DevClusterError(f"{source / 'crds.tar.xz'} holds no bases/ directory")
    return binary, crds


def _wait_established(state: State, timeout: float = 60) -> None:
    """Every CRD Established. `kubectl wait` fails at once on a CRD whose status the API server has not
    written yet (`.status.conditions accessor error`), so that case is asked again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            kubectl(state, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            return
        except DevClusterError as exc:
            if "accessor error" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def start(cluster: LocalCluster, source: Path, qps: int | None = None, timeout: float = 60) -> State:
    """Install the upstream CRDs and start its manager; `qps` tunes its client (default: its own 20/30)."""
    state = cluster.load_state()
    if state is None:
        raise DevClusterError(f"cluster {cluster.name} is not running (rbg cluster up)")
    binary, crds = unpack(source)
    kubectl(state, "apply", "--server-side", "--field-manager=rbg-bench", "-f", str(crds))
    _wait_established(state)
    kubectl(state, "create", "namespace", AUDITED_NAMESPACE, ok_if_exists=True)
    kubectl(state, "create", "serviceaccount", SERVICE_ACCOUNT, "-n", AUDITED_NAMESPACE, ok_if_exists=True)
    kubectl(
        state, "create", "clusterrolebinding", SERVICE_ACCOUNT, "--clusterrole=cluster-admin",
        f"--serviceaccount={AUDITED_NAMESPACE}:{SERVICE_ACCOUNT}", ok_if_exists=True,
    )  # fmt: skip
    kubeconfig = token_kubeconfig(state, SERVICE_ACCOUNT, cluster.dir / "upstream.kubeconfig")
    (health,) = processes.free_ports(1)
    args: list[str | Path] = [
        binary, f"--kubeconfig={kubeconfig}", "--enable-webhooks=none",
        f"--health-probe-bind-address=127.0.0.1:{health}", "--metrics-bind-address=0",
    ]  # fmt: skip
    if qps is not None:
        args += [f"--kube-api-qps={qps}", f"--kube-api-burst={2 * qps}"]
    return spawn_until_ready(cluster, state, COMPONENT, args, health, timeout)


def stop(cluster: LocalCluster) -> None:
    """Stop the upstream manager started by `start` (its CRDs and objects stay)."""
    state = cluster.load_state()
    if state is None or COMPONENT not in state.pids:
        return
    processes.stop_groups([state.pids.pop(COMPONENT)])
    cluster.save(state)
