"""Fake-node topology: a YAML description turned into Node manifests (pure functions, no I/O)."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rbg.devcluster.errors import DevClusterError

#: annotation kwok selects the nodes it manages by (kwok --manage-nodes-with-annotation-selector)
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"

_LABEL_KEY_CHARS = set(string.ascii_letters + string.digits + "-_./")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LabelKeys(_Strict):
    """Which node label carries each topology level."""

    zone: str = "topology.kubernetes.io/zone"
    rack: str = "topology.rbg.workloads.x-k8s.io/rack"
    nvlink_domain: str = Field("nvidia.com/gpu.clique", alias="nvlinkDomain")

    @field_validator("zone", "rack", "nvlink_domain")
    @classmethod
    def _label_key(cls, v: str) -> str:
        if not v or len(v) > 253 or not set(v) <= _LABEL_KEY_CHARS or v.count("/") > 1:
            raise ValueError(f"{v!r} is not a valid label key")
        return v


class NodeShape(_Strict):
    """Capacity and extra labels of every fake node."""

    gpus: int = Field(8, ge=0, le=1024)
    cpu: int = Field(64, ge=1, le=100_000)
    memory_gi: int = Field(512, ge=1, le=1_000_000, alias="memoryGi")
    pods: int = Field(110, ge=1, le=100_000)
    gpu_product: str = Field("NVIDIA-H100-80GB-HBM3", alias="gpuProduct", min_length=1, max_length=63)
    labels: dict[str, str] = Field(default_factory=dict)


class Topology(_Strict):
    """zones x racksPerZone x nodesPerRack fake GPU nodes; nodes of a rack share NVLink domains."""

    zones: int = Field(2, ge=1, le=26)
    racks_per_zone: int = Field(2, ge=1, le=99, alias="racksPerZone")
    nodes_per_rack: int = Field(4, ge=1, le=999, alias="nodesPerRack")
    nodes_per_nvlink_domain: int = Field(2, ge=1, alias="nodesPerNVLinkDomain")
    node: NodeShape = Field(default_factory=NodeShape)
    label_keys: LabelKeys = Field(default_factory=LabelKeys, alias="labelKeys")

    @model_validator(mode="after")
    def _domains_fit_racks(self) -> Topology:
        if self.nodes_per_rack % self.nodes_per_nvlink_domain:
            raise ValueError(
                f"nodesPerNVLinkDomain ({self.nodes_per_nvlink_domain}) must divide "
                f"nodesPerRack ({self.nodes_per_rack})"
            )
        return self

    @property
    def node_count(self) -> int:
        return self.zones * self.racks_per_zone * self.nodes_per_rack


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def parse_topology(data: Any, source: str = "topology") -> Topology:
    """Validate a topology mapping; errors become one DevClusterError line naming the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DevClusterError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise DevClusterError(f"{source}: {_first_error(exc)}") from None


def load_topology(path: Path | None) -> Topology:
    if path is None:
        return Topology()
    try:
        text = path.read_text()
    except OSError as exc:
        raise DevClusterError(f"cannot read topology file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DevClusterError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_topology(data, str(path))


def node_manifests(topo: Topology, kubelet_version: str) -> list[dict[str, Any]]:
    """The Node objects for a topology, in a stable order."""
    keys, shape = topo.label_keys, topo.node
    resources = {
        "cpu": str(shape.cpu),
        "memory": f"{shape.memory_gi}Gi",
        "pods": str(shape.pods),
        "ephemeral-storage": "1Ti",
        GPU_RESOURCE: str(shape.gpus),
    }
    nodes = []
    for z in range(topo.zones):
        zone_letter = string.ascii_lowercase[z]
        for r in range(topo.racks_per_zone):
            rack = f"{zone_letter}{r + 1}"
            for n in range(topo.nodes_per_rack):
                name = f"node-{rack}-{n}"
                labels = {
                    **shape.labels,
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    keys.zone: f"zone-{zone_letter}",
                    keys.rack: f"rack-{rack}",
                    keys.nvlink_domain: f"nvl-{rack}-{n // topo.nodes_per_nvlink_domain}",
                    "nvidia.com/gpu.product": shape.gpu_product,
                    "nvidia.com/gpu.count": str(shape.gpus),
                }
                nodes.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {
                            "name": name,
                            "labels": labels,
                            "annotations": {
                                KWOK_NODE_ANNOTATION: "fake",
                                "node.alpha.kubernetes.io/ttl": "0",
                            },
                        },
                        "spec": {},
                        "status": {
                            "capacity": resources,
                            "allocatable": resources,
                            "nodeInfo": {
                                "architecture": "amd64",
                                "operatingSystem": "linux",
                                "kubeletVersion": kubelet_version,
                                "containerRuntimeVersion": "kwok",
                                "kernelVersion": "kwok",
                                "osImage": "kwok",
                                "bootID": "",
                                "machineID": "",
                                "systemUUID": "",
                                "kubeProxyVersion": "",
                            },
                        },
                    }
                )
    return nodes
