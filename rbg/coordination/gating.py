"""What the pod webhook adds to a coordinated pod at creation: the gate, its batch label and guards.

A coordinated pod (a StatefulSet pod of a role in an AffinityScheduling coordination, or any pod of a
role placed by the group exclusive topology) is created gated (`rbg.workloads.x-k8s.io/coordination`)
with its batch in the label `coordination.workloads.x-k8s.io/<coordination>: "<k>"` (k = ordinal //
ratio) and a required podAffinity on the batch's own labels (group and batch) as a second guard (pod
affinity cannot be added once a pod exists). rbg.coordination.release decides where it goes.
"""

from __future__ import annotations

import json

from rbg.api.hub import RoleBasedGroup
from rbg.coordination.batches import (
    EXCLUSIVE,
    GROUP_NAME,
    ROLE_NAME,
    Obj,
    affinity_coordinations,
    batch_label,
    exclusive_key,
    exclusive_roles,
    ordinal_of,
)
from rbg.coordination.resources import GATE


def mutate(pod: Obj, rbg: RoleBasedGroup) -> Obj | None:
    """The pod as it must be created, or None when no coordination covers it."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    role = labels.get(ROLE_NAME)
    key = exclusive_key(rbg)
    if key is not None:
        return _mutate_exclusive(pod, rbg, key) if role in exclusive_roles(rbg) else None
    index = ordinal_of(pod)
    if not role or index is None:
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
        k = index // aff.ratios[role]
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
