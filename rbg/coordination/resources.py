"""What placement reads of pods and nodes: effective requests, a node's capacity and constraints, a
pod's constraints and whether a node admits it, the per-node usage of the cluster, and the slim pod the
cluster-wide cache keeps. Pure functions over plain dicts (the API objects).

- Effective requests are Kubernetes' (resourcehelper.PodRequests): the sum of the app containers and
  of the native sidecars (init containers with `restartPolicy: Always`), or, when larger, the peak of
  the init phase (each ordinary init container plus the sidecars declared before it); per resource;
  plus the pod's overhead. A container's limits stand for its requests where requests are left out.
- A node admits a pod when its nodeSelector matches the labels, one required node-affinity term matches
  (all of that term's matchExpressions on labels and matchFields on `metadata.name`; a term with
  neither matches no node), and every NoSchedule/NoExecute taint is tolerated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from rbg.quantity import quantity

Obj = dict[str, Any]
Resources = Mapping[str, Decimal]
GATE = "rbg.workloads.x-k8s.io/coordination"
#: the gate of leader/worker groups' leaders (KEP-162 placement on the planner), apart from the batch
#: gate: an RBG role of kind LeaderWorkerSet may be in a coordination too
LWS_GATE = "rbg.workloads.x-k8s.io/lws-placement"
#: on a released leader: the nodes planned for its workers and one worker's requests (JSON), so their
#: room stays reserved until they exist, across restarts (rbg.coordination.groups)
PLANNED_WORKERS = "rbg.workloads.x-k8s.io/planned-workers"
KEPT_ANNOTATIONS = frozenset({PLANNED_WORKERS})
HOSTNAME = "kubernetes.io/hostname"


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str]
    allocatable: Resources
    taints: tuple[Mapping[str, Any], ...] = ()
    schedulable: bool = True


@dataclass(frozen=True)
class PodNeeds:
    name: str
    requests: Resources
    tolerations: tuple[Mapping[str, Any], ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    #: required node affinity: nodeSelectorTerms (any term) of requirements (all of a term's). A
    #: requirement on a label is a matchExpression ({"key", "operator", "values"}); one on a field is a
    #: matchField written {"field": "metadata.name", "operator", "values"}. An empty term matches no node.
    affinity_terms: tuple[tuple[Mapping[str, Any], ...], ...] = ()


def gated(pod: Obj, gate: str = GATE) -> bool:
    """The pod still carries the gate (by default the coordination's)."""
    return any(g.get("name") == gate for g in (pod.get("spec") or {}).get("schedulingGates") or [])


def gate_removal(pod: Obj, gate: str = GATE) -> list[Obj] | None:
    """JSON patch operations removing the gate from the pod, guarded by `test`s on the pod's uid (never a
    pod recreated under the same name) and on the gate's position; None when it carries no such gate."""
    gates = (pod.get("spec") or {}).get("schedulingGates") or []
    index = next((i for i, g in enumerate(gates) if g.get("name") == gate), None)
    if index is None:
        return None
    return [
        {"op": "test", "path": "/metadata/uid", "value": (pod.get("metadata") or {}).get("uid", "")},
        {"op": "test", "path": f"/spec/schedulingGates/{index}/name", "value": gate},
        {"op": "remove", "path": f"/spec/schedulingGates/{index}"},
    ]


def _container_requests(container: Obj) -> dict[str, Decimal]:
    res = container.get("resources") or {}
    merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}  # limits default requests
    return {k: q for k, v in merged.items() if (q := quantity(v)) is not None}


def _add(total: dict[str, Decimal], more: Mapping[str, Decimal]) -> None:
    for k, v in more.items():
        total[k] = total.get(k, Decimal(0)) + v


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """Effective requests, as Kubernetes computes them: max(app containers + sidecars, the init peak)
    per resource, plus overhead (see the module docstring)."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for c in spec.get("containers") or []:
        _add(total, _container_requests(c))
    sidecars: dict[str, Decimal] = {}  # restartable init containers declared so far
    peak: dict[str, Decimal] = {}  # the init phase's largest moment
    for c in spec.get("initContainers") or []:
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":  # a native sidecar: runs beside the app containers
            _add(total, req)
            _add(sidecars, req)
            moment = dict(sidecars)
        else:  # runs to completion beside the sidecars started before it
            moment = dict(sidecars)
            _add(moment, req)
        for k, v in moment.items():
            peak[k] = max(peak.get(k, Decimal(0)), v)
    for k, v in peak.items():
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
    terms = tuple(
        tuple(t.get("matchExpressions") or ())
        + tuple(
            {"field": f.get("key"), "operator": f.get("operator"), "values": list(f.get("values") or [])}
            for f in t.get("matchFields") or ()
        )
        for t in required.get("nodeSelectorTerms") or ()
    )
    return PodNeeds(
        pod["metadata"]["name"],
        pod_requests(pod),
        tuple(spec.get("tolerations") or ()),
        dict(spec.get("nodeSelector") or {}),
        terms,
    )


# -- whether a node admits a pod -----------------------------------------------------------------------


def _tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t.get("key") != taint.get("key"):
            continue
        if op == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _requirement(node: NodeInfo, req: Mapping[str, Any]) -> bool:
    have: Mapping[str, str]
    if "field" in req:  # matchFields: Kubernetes knows only metadata.name
        have, key = {"metadata.name": node.name}, str(req.get("field"))
    else:
        have, key = node.labels, str(req.get("key"))
    op, values = req.get("operator"), list(req.get("values") or [])
    if op == "In":
        return key in have and have[key] in values
    if op == "NotIn":
        return key not in have or have[key] not in values
    if op == "Exists":
        return key in have
    if op == "DoesNotExist":
        return key not in have
    if op in ("Gt", "Lt") and key in have and values:
        try:
            value, limit = int(have[key]), int(values[0])
        except ValueError:
            return False
        return value > limit if op == "Gt" else value < limit
    return False


def feasible(pod: PodNeeds, node: NodeInfo) -> bool:
    """The pod may run on the node (selector, required node affinity, taints), capacity aside."""
    if any(node.labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    if pod.affinity_terms and not any(
        term and all(_requirement(node, r) for r in term) for term in pod.affinity_terms
    ):
        return False
    return all(
        taint.get("effect") not in ("NoSchedule", "NoExecute") or _tolerates(pod.tolerations, taint)
        for taint in node.taints
    )


def constraints_key(pod: PodNeeds) -> str:
    """The pod's constraints as one string ("" when it has none): pods with equal keys are admitted by
    the same nodes."""
    if not (pod.node_selector or pod.affinity_terms or pod.tolerations):
        return ""
    return json.dumps([sorted(pod.node_selector.items()), pod.affinity_terms, pod.tolerations], default=str)


# -- capacity ------------------------------------------------------------------------------------------


def free(nodes: Iterable[NodeInfo], used: Mapping[str, Resources]) -> dict[str, dict[str, Decimal]]:
    """Free resources per schedulable node: allocatable minus what is used there."""
    out: dict[str, dict[str, Decimal]] = {}
    for n in nodes:
        if not n.schedulable:
            continue
        have = dict(n.allocatable)
        for res, amount in (used.get(n.name) or {}).items():
            have[res] = have.get(res, Decimal(0)) - amount
        out[n.name] = have
    return out


@lru_cache(maxsize=4096)
def exponent(v: Decimal) -> int:
    """The exponent of v's last significant digit, at most 0 (the unit v is a whole number of)."""
    _, digits, exp = v.as_tuple()
    if not isinstance(exp, int) or exp >= 0:
        return 0
    zeros = 0
    for d in reversed(digits):
        if d or zeros >= -exp:
            break
        zeros += 1
    return exp + zeros


@lru_cache(maxsize=4096)
def units(v: Decimal, exp: int) -> int:
    """v as a whole number of 10**exp, exactly (exp is at most exponent(v))."""
    sign, digits, e = v.as_tuple()
    if not isinstance(e, int):
        return 0
    n = int("".join(map(str, digits)) or "0")
    scale: int = 10 ** abs(e - exp)
    n = n * scale if e >= exp else n // scale
    return -n if sign else n


# -- usage ---------------------------------------------------------------------------------------------


def usage(
    bound: Iterable[Obj], assumed: Mapping[str, tuple[str, Mapping[str, Decimal]]]
) -> dict[str, dict[str, Decimal]]:
    """Requests per node (every pod also takes one of `pods`) of the pods bound there (not finished;
    terminating ones still hold it), plus pods released to a node by an earlier plan and not bound yet
    (`assumed`: pod uid -> (node, requests)), plus released pods pinned to one node by a hostname
    nodeSelector that no memory knows of (after a restart of the operator): only those that carry no
    scheduling gate at all, since the scheduler runs no gated pod (another gate, e.g. Kueue's, holds it
    as ours does), and are not being deleted."""
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
            if host and not spec.get("schedulingGates") and not pod["metadata"].get("deletionTimestamp"):
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


# -- the slim pod --------------------------------------------------------------------------------------

#: what the coordination controller reads of a pod (the cache of every pod of the cluster keeps only this)
_POD_SPEC_FIELDS = ("nodeName", "nodeSelector", "schedulingGates", "affinity", "tolerations", "overhead")
_POD_META_FIELDS = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "ownerReferences",
    "creationTimestamp",
)


def slim_pod(pod: Obj) -> Obj:
    """A pod reduced to what placement reads: identity, labels, owners, where it is bound or pinned, its
    requests (with init containers' restartPolicy: a native sidecar counts beside the containers), gates,
    constraints, phase and conditions (the PodScheduled one with its message: the scheduler's reason),
    and its containers' restart counts (failure recovery) (a cluster-wide cache of whole pods costs memory
    and CPU)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}

    def resources(containers: list[Obj] | None, keep: tuple[str, ...] = ()) -> list[Obj]:
        out = [{"name": c.get("name"), "resources": c.get("resources") or {}} for c in containers or []]
        for slim, c in zip(out, containers or [], strict=True):
            slim.update({k: c[k] for k in keep if k in c})
        return out

    out_spec: Obj = {k: spec[k] for k in _POD_SPEC_FIELDS if k in spec}
    out_spec["containers"] = resources(spec.get("containers"))
    if spec.get("initContainers"):
        out_spec["initContainers"] = resources(spec.get("initContainers"), ("restartPolicy",))
    out_meta = {k: meta[k] for k in (*_POD_META_FIELDS, "deletionTimestamp") if k in meta}
    if "annotations" in meta:  # present (a patch adds to it, never replaces it), with placement's own only
        out_meta["annotations"] = {
            k: v for k, v in (meta["annotations"] or {}).items() if k in KEPT_ANNOTATIONS
        }
    out: Obj = {"metadata": out_meta, "spec": out_spec, "status": {}}
    for k in ("apiVersion", "kind"):
        if k in pod:
            out[k] = pod[k]
    if "phase" in status:
        out["status"]["phase"] = status["phase"]
    if "reason" in status:
        out["status"]["reason"] = status["reason"]
    for key in ("containerStatuses", "initContainerStatuses"):  # what failure recovery reads
        if status.get(key):
            out["status"][key] = [
                {"name": c.get("name"), "restartCount": c.get("restartCount") or 0} for c in status[key]
            ]
    if status.get("conditions"):
        out["status"]["conditions"] = [
            {
                k: c.get(k)
                for k in ("type", "status", "reason", "message")
                if k in c and (k != "message" or c.get("type") == "PodScheduled")
            }
            for c in status["conditions"]
        ]
    return out
