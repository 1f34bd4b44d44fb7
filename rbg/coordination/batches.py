"""Batch sources: which pods of a group form which batch, in which topology key and order.

Two sources today, one shape (a coordination name, its roles and ratios, a topology key, a mode):
- an AffinityScheduling coordination: batch k = each role's ordinals k*ratio .. k*ratio+ratio-1;
- the group exclusive topology: every pod of the group's roles (those that do not opt out) is one batch,
  in a domain no other group of the namespace uses.
`layout()` is the value of the coordinated label on a role's pod template: a hash of how its pods are
batched, so a change of ratios, roles or topology key rolls the role and its pods are batched anew.
The pod webhook's mutation is in rbg.coordination.gating, the release decisions in rbg.coordination.release.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from rbg.api.hub import AffinityScheduling, Coordination, RoleBasedGroup, RoleSpec
from rbg.coordination.resources import GATE
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


def others_domains(nodes: Sequence[Obj], pods: Iterable[Obj], group: str, key: str) -> set[str]:
    """Domains where exclusively placed pods of other groups of the namespace run or are pinned, gated
    pods aside (roles that opt out, and groups without exclusive topology, may go anywhere and block
    nobody)."""
    labels = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}) for n in nodes}
    out = set()
    for p in pods:
        pod_labels = p["metadata"].get("labels") or {}
        owner = pod_labels.get(GROUP_NAME)
        if not owner or owner == group or batch_label(EXCLUSIVE) not in pod_labels:
            continue
        spec = p.get("spec") or {}
        if any(g.get("name") == GATE for g in spec.get("schedulingGates") or []):
            continue  # a gated pod holds no domain: two groups waiting for the same one must not block
        node = spec.get("nodeName")
        if node and labels.get(node, {}).get(key):
            out.add(labels[node][key])
        elif (spec.get("nodeSelector") or {}).get(key):
            out.add(spec["nodeSelector"][key])
    return out


# -- release -----------------------------------------------------------------------------------------


def layout(rbg: RoleBasedGroup, role: str) -> str | None:
    """How the role's pods are batched, as a short hash (None: the role is not placed in batches): the
    coordinations it is in (name, roles, ratios, topology key), or the group exclusive topology's key.
    Batch mode and timeout are left out: they change how batches are released, not which pods form them."""
    key = exclusive_key(rbg)
    parts: list[Any] = []
    if key is not None:
        if role in exclusive_roles(rbg):
            parts.append([EXCLUSIVE, key])
    else:
        for c, a in affinity_coordinations(rbg):
            if role in c.roles and a.ratios.get(role, 0) > 0:
                parts.append([c.name, sorted(set(c.roles)), sorted(a.ratios.items()), a.topology_key])
    if not parts:
        return None
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:10]


def ordinal_of(pod: Obj) -> int | None:
    """A StatefulSet pod's ordinal: its pod-index label, or the end of its name."""
    meta = pod.get("metadata") or {}
    value = str((meta.get("labels") or {}).get(POD_INDEX) or meta.get("name", "").rpartition("-")[2])
    return int(value) if value.isdigit() else None


#: the coordinated label's value before layouts (operator versions before D27): such pods are taken as
#: of the present layout, so an operator upgrade re-batches nothing (their templates roll once)
LEGACY = "true"


def is_current(pod: Obj, rbg: RoleBasedGroup, coordination: str) -> bool:
    """The pod was created under the role's present layout, into a batch of this coordination."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    role = labels.get(ROLE_NAME)
    value = labels.get(COORDINATED)
    return (
        bool(role)
        and batch_label(coordination) in labels
        and (value == LEGACY or value == layout(rbg, str(role)))
    )
