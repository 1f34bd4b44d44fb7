"""One reconcile of a RoleBasedGroupSet as a pure function: its child groups in, what to create,
update and delete, and its status, out.

- Children `{set}-{i}` for i < replicas, labelled `groupset-name` / `groupset-index`, with the
  template's labels and annotations, and the template's digest in an annotation (the revision).
- Scale down removes the highest indices first. A template change rolls in ascending index order, so
  that mid-rollout a scale-down removes old groups, never an updated one in favour of an old one.
- A child is updated only while fewer than maxUnavailable children (default 1) are not Ready on the
  current template: with the default, the next group only once the previous is Ready again on the new
  template. Children below `partition` keep the old template. New children get the current template.
- Inside a child, by default every changed role's pods are replaced at once (the seed's atomic
  rollout, D32): its roles are written with `rollingUpdate.type: Recreate` unless they name a type.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from rbg.api.hub import API_VERSION as RBG_API_VERSION
from rbg.api.hub_groupset import RoleBasedGroupSet
from rbg.group.names import PREFIX
from rbg.lifecycle import conventions, intstr

Obj = dict[str, Any]
SET_NAME = PREFIX + "groupset-name"
SET_INDEX = PREFIX + "groupset-index"
REVISION = PREFIX + "groupset-revision"


@dataclass
class SetPlan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    status: Obj = field(default_factory=dict)


def template(gs: RoleBasedGroupSet) -> tuple[Obj, dict[str, str], dict[str, str]]:
    """The children's spec, labels and annotations, from either shape."""
    if gs.spec.group_template is not None:
        t = gs.spec.group_template
        if t.spec is not None:
            spec = t.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        else:  # the seed's shape: roles right under groupTemplate, named by `role`
            roles = []
            for r in t.roles or []:
                role = r.model_dump(by_alias=True, exclude_none=True, mode="json")
                role["name"] = role.pop("role", None) or role.get("name")
                roles.append(role)
            spec = {"roles": roles}
        return spec, t.labels or {}, t.annotations or {}
    spec = (
        gs.spec.template.model_dump(by_alias=True, exclude_none=True, mode="json") if gs.spec.template else {}
    )
    return spec, {}, {}


def revision(gs: RoleBasedGroupSet) -> str:
    spec, labels, annotations = template(gs)
    body = json.dumps([spec, labels, annotations], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:10]


def atomic(gs: RoleBasedGroupSet) -> bool:
    """Inside a child group every changed role's pods are replaced at once (rolloutStrategy.type
    Recreate, the default)."""
    rollout = gs.spec.rollout_strategy
    return rollout is None or rollout.type != "InPlaceUpdate"


def _recreating(spec: Obj) -> Obj:
    """The child's spec with every role that names no update type of its own rolled by Recreate."""
    out = copy.deepcopy(spec)
    for role in out.get("roles") or []:
        strategy = role.get("rolloutStrategy")
        strategy = strategy if isinstance(strategy, dict) else {}
        ru = strategy.get("rollingUpdate")
        ru = ru if isinstance(ru, dict) else {}
        ru.setdefault("type", "Recreate")
        role["rolloutStrategy"] = {**strategy, "rollingUpdate": ru}
    return out


def child(gs: RoleBasedGroupSet, index: int, owner: Obj) -> Obj:
    spec, labels, annotations = template(gs)
    if atomic(gs):
        spec = _recreating(spec)
    name = gs.metadata.name
    return {
        "apiVersion": RBG_API_VERSION,
        "kind": "RoleBasedGroup",
        "metadata": {
            "name": f"{name}-{index}",
            "namespace": gs.metadata.namespace,
            "labels": {**labels, SET_NAME: name, SET_INDEX: str(index)},
            "annotations": {**annotations, REVISION: revision(gs)},
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


def ready(group: Obj) -> bool:
    """Ready on the spec it has now: the group's controller has seen its latest generation, it is Ready,
    and every role's pods run the role's current template (updated = replicas, less the pods a role's
    own partition keeps)."""
    st = group.get("status") or {}
    if st.get("observedGeneration") != group["metadata"].get("generation"):
        return False
    kept = {r.get("name"): _role_partition(r) for r in (group.get("spec") or {}).get("roles") or []}
    for r in st.get("roleStatuses") or []:
        replicas = int(r.get("replicas") or 0)
        partition = kept.get(r.get("name"), 0)
        held = min(replicas, intstr.scaled(partition, replicas, round_up=False) or 0)
        if int(r.get("updatedReplicas") or 0) < replicas - held:  # a role's own partition keeps pods old
            return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def _role_partition(role: Obj) -> int | str:
    value = (((role.get("rolloutStrategy") or {}).get("rollingUpdate") or {}).get("partition")) or 0
    return value if isinstance(value, (int, str)) else 0


def _limit(value: int | str | None, replicas: int) -> int:
    """Groups that may be not Ready at once: a number, or a percentage of replicas rounded down; at
    least 1 (and 1 for anything else)."""
    text = str(value).strip() if value is not None else ""
    if text.endswith("%") and text[:-1].isdigit():
        return max(1, replicas * int(text[:-1]) // 100)
    return max(1, int(text)) if text.isdigit() else 1


def _partition(value: int | str | None, replicas: int) -> int:
    """Child indices kept on the old template: a number, or a percentage of replicas rounded down.
    Anything else (admission refuses it; an object stored before could hold one) keeps every group:
    a typo in a canary must not roll them all."""
    if value is None:
        return 0
    n = intstr.scaled(value, replicas, round_up=False)
    return n if n is not None and n >= 0 else replicas


def plan(gs: RoleBasedGroupSet, children: list[Obj], owner: Obj, now: str) -> SetPlan:
    out = SetPlan()
    digest = revision(gs)
    replicas = gs.spec.replicas
    by_index: dict[int, Obj] = {}
    for c in children:
        value = (c["metadata"].get("labels") or {}).get(SET_INDEX, "")
        if value.isdigit() and c["metadata"]["name"] == f"{gs.metadata.name}-{value}":
            by_index[int(value)] = c
        else:
            out.delete.append(c)  # not one of ours by name and index
    for i in sorted(by_index, reverse=True):
        if i >= replicas:
            out.delete.append(by_index.pop(i))  # scale down: the highest first
    out.create = [child(gs, i, owner) for i in range(replicas) if i not in by_index]

    def current(c: Obj) -> bool:
        return (c["metadata"].get("annotations") or {}).get(REVISION) == digest

    rollout = gs.spec.rollout_strategy
    budget = _limit(rollout.max_unavailable if rollout else None, replicas)
    floor = _partition(rollout.partition if rollout else None, replicas)
    unavailable = sum(1 for c in by_index.values() if not ready(c)) + len(out.create)
    for i in sorted(by_index):
        c = by_index[i]
        if current(c) or i < floor:
            continue
        if not ready(c):
            # not Ready on its old template anyway: replacing it costs no availability, and a fix or a
            # rollback of a template that never became Ready must reach it
            out.update.append(child(gs, i, owner))
        elif unavailable < budget:
            out.update.append(child(gs, i, owner))
            unavailable += 1
        # else: it waits for the groups rolling now
    n_ready = sum(1 for c in by_index.values() if ready(c))
    updated = sum(1 for c in by_index.values() if current(c)) + len(out.create)
    held = sum(1 for i, c in by_index.items() if i < floor and not current(c))  # kept by the partition
    all_ready = n_ready == replicas and updated + held == replicas and len(by_index) == replicas
    waiting = sorted(c["metadata"]["name"] for c in by_index.values() if not ready(c))
    message = (
        ""
        if all_ready
        else f"{n_ready}/{replicas} groups ready" + (f"; waiting for {', '.join(waiting)}" if waiting else "")
    )
    previous = [c.wire() for c in (gs.status.conditions if gs.status else None) or []]
    ready_condition = conventions.condition(
        "Ready",
        all_ready,
        "AllReplicasReady" if all_ready else "ReplicasNotReady",
        message,
        previous,
        now,
        same_reason=True,
    )
    out.status = {
        "observedGeneration": gs.metadata.generation,
        "replicas": len(by_index) + len(out.create),
        "readyReplicas": n_ready,
        "updatedReplicas": updated,
        "conditions": [ready_condition],
    }
    return out
