"""Where the control-plane binaries built by hack/build-controlplane.sh live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rbg.devcluster.errors import DevClusterError

#: must equal K8S_VERSION in hack/versions.env (a unit test keeps them in line)
K8S_VERSION = "v1.35.4"

REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl")
OPTIONAL = ("kube-scheduler-coscheduling",)


def cache_root() -> Path:
    return Path(os.environ.get("RBG_CACHE_DIR") or Path.home() / ".cache" / "rbg")


def bin_dir() -> Path:
    env = os.environ.get("RBG_K8S_BIN")
    return Path(env) if env else cache_root() / f"k8s-{K8S_VERSION}"


@dataclass(frozen=True)
class Binaries:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def has(self, name: str) -> bool:
        return os.access(self.dir / name, os.X_OK)

    @property
    def kwok_stages(self) -> Path:
        return self.dir / "kwok-stages.yaml"

    @property
    def podgroup_crd(self) -> Path:
        return self.dir / "podgroup-crd.yaml"

    @property
    def coscheduling(self) -> bool:
        return self.has("kube-scheduler-coscheduling") and self.podgroup_crd.is_file()


def find_binaries() -> Binaries:
    b = Binaries(bin_dir())
    missing = [n for n in REQUIRED if not b.has(n)]
    if not b.kwok_stages.is_file():
        missing.append("kwok-stages.yaml")
    if missing:
        raise DevClusterError(
            f"control-plane binaries missing in {b.dir}: {', '.join(missing)} "
            "(build them with `make controlplane`, i.e. hack/build-controlplane.sh)"
        )
    return b
