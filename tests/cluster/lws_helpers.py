"""Helpers shared by the LeaderWorkerSet behaviour tests."""

from __future__ import annotations

import copy
from typing import Any

from lightkube import Client, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import Pod

from rbg.devcluster.wait import wait_until

LWS = create_namespaced_resource("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets")
P = "leaderworkerset.sigs.k8s.io/"
ZONE = "topology.kubernetes.io/zone"
RACK = "topology.rbg.workloads.x-k8s.io/rack"
HOST = "kubernetes.io/hostname"


def container(gpus: int = 0, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "main", "image": "registry.local/engine:1", **extra}
    if gpus:
        c["resources"] = {"limits": {"nvidia.com/gpu": gpus}}
    return c


def lws(
    name: str,
    replicas: int = 2,
    size: int = 3,
    *,
    gpus: int = 0,
    node_selector: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **template_extra: Any,
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [container(gpus)]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    doc: dict[str, Any] = {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
        "spec": {
            "replicas": replicas,
            "leaderWorkerTemplate": {"size": size, "workerTemplate": {"spec": pod_spec}, **template_extra},
        },
    }
    return doc


def create(kube: Client, doc: dict[str, Any], ns: str) -> None:
    kube.create(codecs.from_dict(copy.deepcopy(doc)), namespace=ns)


def get(kube: Client, name: str, ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.get(LWS, name, namespace=ns).to_dict()
    return obj


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return None


def wait_available(kube: Client, name: str, ns: str, timeout: float = 120) -> dict[str, Any]:
    def probe() -> tuple[bool, Any]:
        obj = get(kube, name, ns)
        cond = condition(obj, "Available")
        current = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
        return bool(cond and cond["status"] == "True" and current), obj.get("status")

    result: dict[str, Any] = wait_until(probe, timeout, f"LeaderWorkerSet {name} Available")
    return result


def pods(kube: Client, ns: str, name: str) -> dict[str, Any]:
    """Pods of the set by name (running ones, not terminating)."""
    return {
        p.metadata.name: p
        for p in kube.list(Pod, namespace=ns, labels={P + "name": name})
        if p.metadata.deletionTimestamp is None
    }


def statefulsets(kube: Client, ns: str) -> dict[str, Any]:
    return {s.metadata.name: s for s in kube.list(StatefulSet, namespace=ns)}
