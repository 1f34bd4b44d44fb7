"""Batches of coordinated pods: what the pod webhook adds at creation, and which batches to release
where. Pure functions of the group, its pods, the nodes and the pods bound on them.

A coordinated pod (a StatefulSet pod of a role in an AffinityScheduling coordination) is created
gated (`rbg.workloads.x-k8s.io/coordination`) with its batch in the label
`coordination.workloads.x-k8s.io/<coordination>: "<k>"` (k = ordinal // ratio) and a required podAffinity
on the batch's own labels (group and batch) as a second guard. The controller asks the planner for a
domain that holds the whole batch, pins every member there with a nodeSelector (allowed while gated)
and removes the gate in the same update. A member recreated later rejoins its batch's domain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rbg.api.v1alpha1 import AffinityScheduling, Coordination, RoleBasedGroup, RoleSpec
from rbg.coordination.planner import Placed, place
from rbg.coordination.resources import (
    GATE,
    gated,
    node_info,
    pod_needs,
    pod_requests,
)
from rbg.group import names

Obj = dict[str, Any]
LABEL_PREFIX = "coordination.workloads.x-k8s.io/"
GROUP_NAME, ROLE_NAME, POD_INDEX, COORDINATED = (
    names.GROUP_NAME,
    names.ROLE_NAME,
    names.POD_INDEX,
    names.COORDINATED,
)


def places(coord: Coordination) -> AffinityScheduling | None:
    """The coordination's ratio placement, when it is one (type AffinityScheduling or left out)."""
    aff = coord.strategy.affinity_scheduling if coord.strategy else None
    return aff if aff is not None and coord.kind in (None, "AffinityScheduling") else None


def affinity_coordinations(rbg: RoleBasedGroup) -> list[tuple[Coordination, AffinityScheduling]]:
    return [(c, aff) for c in rbg.spec.coordination or [] if (aff := places(c)) is not None]


def batch_label(coordination: str) -> str:
    return LABEL_PREFIX + coordination


#: group exclusive topology: the group's annotation (and upstream's older one), a role's opt-out
EXCLUSIVE_ANNOTATIONS = (
    "rbg.workloads.x-k8s.io/group-exclusive-topology",
    "rolebasedgroup.workloads.x-k8s.io/exclusive-topology",
)
OPT_OUT_ANNOTATIONS = (
    "rbg.workloads.x-k8s.io/role-disable-exclusive",
    "rolebasedgroup.workloads.x-k8s.io/disable-exclusive-topology",
)
EXCLUSIVE = "exclusive-topology"  # the group's one batch, as a coordination name


def exclusive_key(rbg: RoleBasedGroup) -> str | None:
    annotations = rbg.metadata.annotations or {}
    return next((annotations[k] for k in EXCLUSIVE_ANNOTATIONS if annotations.get(k)), None)


def opts_out(role: RoleSpec) -> bool:
    """The role's pod template (or its patch) opts out of the group's exclusive topology."""
    tpl = role.template or {}
    annotations = (tpl.get("metadata") or {}).get("annotations") or {}
    patch = ((role.template_patch or {}).get("metadata") or {}).get("annotations") or {}
    return any((annotations.get(k) or patch.get(k)) for k in OPT_OUT_ANNOTATIONS)


def exclusive_roles(rbg: RoleBasedGroup) -> list[str]:
    """Roles placed with the group (those whose pod template does not opt out)."""
    return [role.name for role in rbg.spec.roles if not opts_out(role)]


def group_pods(rbg: RoleBasedGroup) -> dict[str, int]:
    """Pods of each role placed with the group (a LeaderWorkerSet replica is `size` pods)."""
    out = {}
    for role in rbg.spec.roles:
        if not opts_out(role):
            size = (role.leader_worker_set.size if role.leader_worker_set else None) or 1
            out[role.name] = role.replicas * (size if role.workload.kind == "LeaderWorkerSet" else 1)
    return out


def exclusive_coordination(rbg: RoleBasedGroup) -> tuple[Coordination, AffinityScheduling] | None:
    """The group exclusive topology as a coordination of one batch: every pod of the group's roles."""
    key = exclusive_key(rbg)
    if key is None:
        return None
    pods = {r: n for r, n in group_pods(rbg).items() if n > 0}
    if not pods:
        return None
    aff = AffinityScheduling(topology_key=key, ratios=pods, batch_mode="Sequential")
    return Coordination(name=EXCLUSIVE, roles=list(pods), strategy={"affinityScheduling": aff}), aff


# -- admission ---------------------------------------------------------------------------------------


def mutate(pod: Obj, rbg: RoleBasedGroup) -> Obj | None:
    """The pod as it must be created, or None when no coordination covers it."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    role = labels.get(ROLE_NAME)
    key = exclusive_key(rbg)
    if key is not None:
        return _mutate_exclusive(pod, rbg, key) if role in exclusive_roles(rbg) else None
    index = labels.get(POD_INDEX) or meta.get("name", "").rpartition("-")[2]
    if not role or not str(index).isdigit():
        return None
    mine = [(c, a) for c, a in affinity_coordinations(rbg) if role in c.roles and a.ratios.get(role, 0) > 0]
    if not mine:
        return None
    out: Obj = json.loads(json.dumps(pod))
    out_labels = out["metadata"].setdefault("labels", {})
    spec = out.setdefault("spec", {})
    gates = spec.setdefault("schedulingGates", [])
    if not any(g.get("name") == GATE for g in gates):
        gates.append({"name": GATE})
    for coord, aff in mine:
        k = int(index) // aff.ratios[role]
        out_labels[batch_label(coord.name)] = str(k)
        term = {
            "labelSelector": {
                "matchExpressions": [
                    {"key": GROUP_NAME, "operator": "In", "values": [rbg.metadata.name]},
                    {"key": batch_label(coord.name), "operator": "In", "values": [str(k)]},
                ]
            },
            "topologyKey": aff.topology_key,
        }
        required = (
            spec.setdefault("affinity", {})
            .setdefault("podAffinity", {})
            .setdefault("requiredDuringSchedulingIgnoredDuringExecution", [])
        )
        if term not in required:
            required.append(term)
    return out


def _mutate_exclusive(pod: Obj, rbg: RoleBasedGroup, key: str) -> Obj:
    """Gate the pod as a member of its group's one batch; guards: with its own group, away from others."""
    out: Obj = json.loads(json.dumps(pod))
    out["metadata"].setdefault("labels", {})[batch_label(EXCLUSIVE)] = "0"
    spec = out.setdefault("spec", {})
    gates = spec.setdefault("schedulingGates", [])
    if not any(g.get("name") == GATE for g in gates):
        gates.append({"name": GATE})
    group = rbg.metadata.name
    affinity = spec.setdefault("affinity", {})
    member = {"key": batch_label(EXCLUSIVE), "operator": "Exists"}  # pods placed exclusively (not opt-outs)
    together = {
        "labelSelector": {
            "matchExpressions": [{"key": GROUP_NAME, "operator": "In", "values": [group]}, member]
        },
        "topologyKey": key,
    }
    apart = {
        "labelSelector": {
            "matchExpressions": [
                {"key": GROUP_NAME, "operator": "Exists"},
                {"key": GROUP_NAME, "operator": "NotIn", "values": [group]},
                member,
            ]
        },
        "topologyKey": key,
    }
    for kind, term in (("podAffinity", together), ("podAntiAffinity", apart)):
        terms = affinity.setdefault(kind, {}).setdefault("requiredDuringSchedulingIgnoredDuringExecution", [])
        if term not in terms:
            terms.append(term)
    return out


def others_domains(nodes: Sequence[Obj], pods: Iterable[Obj], group: str, key: str) -> set[str]:
    """Domains where exclusively placed pods of other groups of the namespace run or are pinned (roles
    that opt out, and groups without exclusive topology, may go anywhere and block nobody)."""
    labels = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}) for n in nodes}
    out = set()
    for p in pods:
        pod_labels = p["metadata"].get("labels") or {}
        owner = pod_labels.get(GROUP_NAME)
        if not owner or owner == group or batch_label(EXCLUSIVE) not in pod_labels:
            continue
        spec = p.get("spec") or {}
        node = spec.get("nodeName")
        if node and labels.get(node, {}).get(key):
            out.add(labels[node][key])
        elif (spec.get("nodeSelector") or {}).get(key):
            out.add(spec["nodeSelector"][key])
    return out


# -- release -----------------------------------------------------------------------------------------


@dataclass
class BatchState:
    index: int
    members: list[Obj] = field(default_factory=list)
    domain: str | None = None  # where its released members are pinned or bound
    phase: str = "Pending"  # Pending | Planned | Bound | Stuck
    message: str = ""


@dataclass
class Decision:
    """What one pass does for one coordination."""

    release: list[tuple[Obj, str]] = field(default_factory=list)  # (gated pod, domain)
    assigned: dict[str, str] = field(default_factory=dict)  # pod name -> node (the planner's binding)
    batches: list[BatchState] = field(default_factory=list)
    planned: list[tuple[int, str]] = field(default_factory=list)  # newly planned (batch, domain)
    unplaced: dict[int, str] = field(default_factory=dict)  # batch -> the planner's reason


def decide(
    rbg: RoleBasedGroup,
    coord: Coordination,
    aff: AffinityScheduling,
    pods: Sequence[Obj],
    nodes: Sequence[Obj],
    used: Mapping[str, Mapping[str, Decimal]],
    *,
    total: int | None = None,
    avoid: Iterable[str] = (),
) -> Decision:
    """Which gated pods of the coordination to release into which domain this pass.

    `total`: the number of batches when it is not replicas / ratio (exclusive topology: one); `avoid`:
    domains no batch may use (other groups')."""
    key = batch_label(coord.name)
    replicas = {r.name: r.replicas for r in rbg.spec.roles}
    per_batch = sum(aff.ratios.get(r, 0) for r in set(coord.roles))
    if total is None:
        total = min(
            (replicas.get(r, 0) // aff.ratios[r] for r in coord.roles if aff.ratios.get(r)), default=0
        )
    node_labels = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}) for n in nodes}
    batches = [BatchState(k) for k in range(total)]
    for pod in pods:
        value = (pod["metadata"].get("labels") or {}).get(key)
        if (
            value is not None
            and value.isdigit()
            and int(value) < total
            and not pod["metadata"].get("deletionTimestamp")
        ):
            batches[int(value)].members.append(pod)
    for b in batches:
        for pod in b.members:
            spec = pod.get("spec") or {}
            node = spec.get("nodeName")
            pinned = (spec.get("nodeSelector") or {}).get(aff.topology_key)
            if node and node_labels.get(node, {}).get(aff.topology_key):
                b.domain = node_labels[node][aff.topology_key]
                break
            if pinned and not gated(pod):
                b.domain = pinned
        bound = [p for p in b.members if (p.get("spec") or {}).get("nodeName")]
        if len(b.members) == per_batch and len(bound) == per_batch:
            b.phase = "Bound"
        elif b.domain is not None:
            b.phase = "Planned"
    out = Decision(batches=batches)
    node_infos = [node_info(n) for n in nodes]
    assumed_used: dict[str, dict[str, Decimal]] = {k: dict(v) for k, v in used.items()}
    taken = {b.domain for b in batches if b.domain is not None} | set(avoid)
    for b in batches:
        waiting = [p for p in b.members if gated(p)]
        if not waiting:
            continue
        if b.domain is not None:  # a member recreated later rejoins its batch
            out.release += [(p, b.domain) for p in waiting]
            continue
        if len(b.members) < per_batch:
            b.message = f"waiting for {per_batch - len(b.members)} more pods of the batch to be created"
            out.unplaced[b.index] = b.message  # turns Stuck after batchTimeoutSeconds like any other wait
            if aff.batch_mode == "Sequential":
                break
            continue
        if aff.batch_mode == "Sequential" and any(x.phase != "Bound" for x in batches[: b.index]):
            break  # the next batch waits until every pod of the previous ones is bound
        result = place(
            node_infos, assumed_used, [pod_needs(p) for p in waiting], aff.topology_key, b.index, taken
        )
        if isinstance(result, Placed):
            b.domain, b.phase = result.domain, "Planned"
            taken.add(result.domain)
            out.planned.append((b.index, result.domain))
            out.release += [(p, result.domain) for p in waiting]
            out.assigned.update(result.nodes)
            for p in waiting:  # Parallel: the next batch must not count this capacity again
                node = result.nodes[p["metadata"]["name"]]
                have = assumed_used.setdefault(node, {})
                for k, v in {**pod_requests(p), "pods": Decimal(1)}.items():
                    have[k] = have.get(k, Decimal(0)) + v
        else:
            b.message = result.reason
            out.unplaced[b.index] = result.reason
            if aff.batch_mode == "Sequential":
                break
    return out
