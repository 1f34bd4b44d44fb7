"""What placement reads of pods and nodes: effective requests, a node's capacity and constraints, a
pod's constraints, the per-node usage of the cluster, and the slim pod the cluster-wide cache keeps.
Pure functions over plain dicts (the API objects)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from rbg.coordination.planner import NodeInfo, PodNeeds
from rbg.quantity import quantity

Obj = dict[str, Any]
GATE = "rbg.workloads.x-k8s.io/coordination"
HOSTNAME = "kubernetes.io/hostname"


def gated(pod: Obj) -> bool:
    """The pod still carries the coordination's scheduling gate."""
    return any(g.get("name") == GATE for g in (pod.get("spec") or {}).get("schedulingGates") or [])


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """Effective requests: the larger of the containers' sum and any init container (+ overhead)."""
    spec = pod.get("spec") or {}

    def of(container: Obj) -> dict[str, Decimal]:
        res = container.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}  # limits default requests
        return {k: q for k, v in merged.items() if (q := quantity(v)) is not None}

    total: dict[str, Decimal] = {}
    for c in spec.get("containers") or []:
        for k, v in of(c).items():
            total[k] = total.get(k, Decimal(0)) + v
    for c in spec.get("initContainers") or []:
        for k, v in of(c).items():
            total[k] = max(total.get(k, Decimal(0)), v)
    for k, v in (spec.get("overhead") or {}).items():
        q = quantity(v)
        if q is not None:
            total[k] = total.get(k, Decimal(0)) + q
    return total


def node_info(node: Obj) -> NodeInfo:
    meta, spec, st = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
    alloc = {k: q for k, v in (st.get("allocatable") or {}).items() if (q := quantity(v)) is not None}
    return NodeInfo(
        meta.get("name", ""),
        dict(meta.get("labels") or {}),
        alloc,
        tuple(spec.get("taints") or ()),
        schedulable=ready and not spec.get("unschedulable"),
    )


def pod_needs(pod: Obj) -> PodNeeds:
    spec = pod.get("spec") or {}
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = tuple(tuple(t.get("matchExpressions") or ()) for t in required.get("nodeSelectorTerms") or ())
    return PodNeeds(
        pod["metadata"]["name"],
        pod_requests(pod),
        tuple(spec.get("tolerations") or ()),
        dict(spec.get("nodeSelector") or {}),
        terms,
    )


def usage(
    bound: Iterable[Obj], assumed: Mapping[str, tuple[str, Mapping[str, Decimal]]]
) -> dict[str, dict[str, Decimal]]:
    """Requests per node of the pods bound there (not finished), plus pods released to a node by an
    earlier plan and not bound yet (`assumed`: pod uid -> (node, requests)), plus released pods pinned to
    one node by a hostname nodeSelector that no memory knows of (after a restart of the operator)."""
    out: dict[str, dict[str, Decimal]] = {}
    seen: set[str] = set()

    def add(node: str, req: Mapping[str, Decimal]) -> None:
        have = out.setdefault(node, {})
        for k, v in {**req, "pods": req.get("pods", Decimal(0)) + 1}.items():
            have[k] = have.get(k, Decimal(0)) + v

    pinned: list[tuple[str, Obj]] = []
    for pod in bound:
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            continue
        if not node:  # (a terminating pod that was bound still holds its node until it is gone)
            host = (spec.get("nodeSelector") or {}).get(HOSTNAME)
            if host and not gated(pod) and not pod["metadata"].get("deletionTimestamp"):
                pinned.append((host, pod))
            continue
        seen.add(pod["metadata"].get("uid", ""))
        add(node, pod_requests(pod))
    for uid, (node, req) in assumed.items():
        if uid not in seen:
            seen.add(uid)
            add(node, req)
    for host, pod in pinned:
        if pod["metadata"].get("uid", "") not in seen:
            add(host, pod_requests(pod))  # the hostname label is the node name (kubelet default)
    return out


#: what the coordination controller reads of a pod (the cache of every pod of the cluster keeps only this)
_POD_SPEC_FIELDS = ("nodeName", "nodeSelector", "schedulingGates", "affinity", "tolerations", "overhead")


def slim_pod(pod: Obj) -> Obj:
    """A pod reduced to what placement reads: identity, labels, owners, where it is bound or pinned, its
    requests, gates, constraints and phase (a cluster-wide cache of whole pods costs memory and CPU)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}

    def resources(containers: list[Obj] | None) -> list[Obj]:
        return [{"name": c.get("name"), "resources": c.get("resources") or {}} for c in containers or []]

    out_spec: Obj = {k: spec[k] for k in _POD_SPEC_FIELDS if k in spec}
    out_spec["containers"] = resources(spec.get("containers"))
    if spec.get("initContainers"):
        out_spec["initContainers"] = resources(spec.get("initContainers"))
    out_meta = {
        k: meta[k]
        for k in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "labels",
            "ownerReferences",
            "deletionTimestamp",
        )
        if k in meta
    }
    out: Obj = {"metadata": out_meta, "spec": out_spec, "status": {}}
    for k in ("apiVersion", "kind"):
        if k in pod:
            out[k] = pod[k]
    if "phase" in status:
        out["status"]["phase"] = status["phase"]
    if status.get("conditions"):
        out["status"]["conditions"] = [
            {k: c.get(k) for k in ("type", "status", "reason") if k in c} for c in status["conditions"]
        ]
    return out
