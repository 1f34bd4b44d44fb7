"""Group readiness and the LeaderWorkerSet status (upstream's counts and conditions), plus a reason for
every group that is not ready, read from its pods (so a group that cannot be placed says why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.coordination.resources import LWS_GATE
from rbg.group.status import progress_only
from rbg.leaderworker import labels
from rbg.lifecycle import conventions
from rbg.lifecycle.observed import pod_ready
from rbg.lifecycle.rollout import GroupState

__all__ = ["Group", "compute", "pod_ready", "progress_only", "same", "state", "statefulset_ready", "why"]

Obj = dict[str, Any]
MAX_REASONS = 3


@dataclass
class Group:
    """What exists of one group: its leader pod, worker StatefulSet and worker pods."""

    index: int
    leader: Obj | None = None
    workers: Obj | None = None  # the worker StatefulSet
    worker_pods: list[Obj] = field(default_factory=list)
    size: int | None = None  # the group size of the leader's revision (None: the set's current size)


def statefulset_ready(sts: Obj | None) -> bool:
    if sts is None:
        return False
    spec, st = sts.get("spec") or {}, sts.get("status") or {}
    want = spec.get("replicas", 1)
    return (
        st.get("observedGeneration", 0) >= sts["metadata"].get("generation", 0)
        and st.get("availableReplicas", 0) == want
        and st.get("readyReplicas", 0) == want
        and st.get("currentRevision") == st.get("updateRevision")
    )


def state(group: Group, size_of: int, digest: str) -> GroupState:
    """`size_of`: the group size of the leader's revision (1 means no workers)."""
    leader = group.leader
    if leader is None:
        return GroupState(False, False)
    leader_rev = (leader["metadata"].get("labels") or {}).get(labels.REVISION)
    if size_of == 1:
        return GroupState(pod_ready(leader), leader_rev == digest)
    workers_rev = ((group.workers or {}).get("metadata", {}).get("labels") or {}).get(labels.REVISION)
    ready = pod_ready(leader) and statefulset_ready(group.workers)
    return GroupState(ready, leader_rev == digest and workers_rev == digest)


def _unschedulable(pod: Obj) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return str(c.get("message") or c.get("reason") or "not scheduled")
    return None


def why(group: Group, lws: LeaderWorkerSet, placement_key: str | None) -> str:
    """Why a group that is not ready is not ready, in one line."""
    g = group.index
    name = f"{lws.metadata.name}-{g}"
    leader = group.leader
    if leader is None:
        return f"group {g}: leader pod {name} does not exist yet"
    if leader["metadata"].get("deletionTimestamp"):
        return f"group {g}: leader pod {name} is being deleted (the group is recreated)"
    gates = (leader.get("spec") or {}).get("schedulingGates") or []
    if any(gate.get("name") == LWS_GATE for gate in gates):
        note = (leader["metadata"].get("annotations") or {}).get(labels.PLACEMENT_WHY)
        return f"group {g}: leader pod {name} waits for a domain that holds its whole group" + (
            f": {note}" if note else ""
        )
    reason = _unschedulable(leader)
    if reason:
        return f"group {g}: leader pod {name} cannot be scheduled: {reason}"
    if not (leader.get("spec") or {}).get("nodeName"):
        return f"group {g}: leader pod {name} is not scheduled yet"
    if not pod_ready(leader):
        if lws.spec.startup_policy == "LeaderReady" and group.workers is None:
            return f"group {g}: leader pod {name} is not Ready; its workers start once it is (LeaderReady)"
        return f"group {g}: leader pod {name} is not Ready"
    if group.workers is None and lws.spec.leader_worker_template.size > 1:
        where = f" (placed in its leader's {placement_key} domain)" if placement_key else ""
        return f"group {g}: worker StatefulSet {name} is not created yet{where}"
    for pod in sorted(group.worker_pods, key=lambda p: p["metadata"]["name"]):
        reason = _unschedulable(pod)
        if reason:
            return f"group {g}: worker pod {pod['metadata']['name']} cannot be scheduled: {reason}"
    waiting = [p["metadata"]["name"] for p in group.worker_pods if not pod_ready(p)]
    if waiting:
        return f"group {g}: worker pods not Ready: {', '.join(sorted(waiting)[:4])}"
    return f"group {g}: workers not Ready"


def _condition(
    type_: str, status: bool, reason: str, message: str, previous: list[Obj], now: str, generation: int
) -> Obj:
    return {
        **conventions.condition(type_, status, reason, message, previous, now),
        "observedGeneration": generation,
    }


def compute(
    lws: LeaderWorkerSet,
    groups: list[Group],
    states: list[GroupState],
    sts: Obj | None,
    placement_key: str | None,
    previous: Obj | None,
    now: str,
) -> Obj:
    """The status to write. `groups`/`states` cover ordinals 0..n-1 of the leader StatefulSet."""
    replicas = lws.spec.replicas
    partition = lws.spec.rollout_strategy.rolling_update_configuration.partition or 0
    ready = sum(1 for s in states if s.ready)
    updated = sum(1 for s in states if s.updated)
    base = states[:replicas] + [GroupState(False, False)] * max(0, replicas - len(states))
    ready_base = sum(1 for s in base if s.ready)
    in_range = base[min(partition, replicas) :]
    # a rolling update: a group the update covers ([partition, replicas)) exists on an older revision (a
    # new set is not "updating", nor is an old group held below the partition)
    first = min(partition, replicas)
    updating = any(
        gr.leader is not None and not s.updated
        for gr, s in zip(groups[first:replicas], states[first:replicas], strict=False)
    )
    available = ready_base == replicas and all(s.ready and s.updated for s in in_range)
    summary = f"with {ready_base} groups ready of total {replicas} groups"
    reasons = [
        why(gr, lws, placement_key) for gr, s in zip(groups[:replicas], base, strict=False) if not s.ready
    ]
    reasons += [f"group {g}: leader pod does not exist yet" for g in range(len(groups), replicas)]
    detail = "; ".join(reasons[:MAX_REASONS]) + (
        f"; and {len(reasons) - MAX_REASONS} more" if len(reasons) > MAX_REASONS else ""
    )
    gen = lws.metadata.generation
    old: list[Obj] = (previous or {}).get("conditions") or []
    conds: list[Obj] = []
    if available:
        conds.append(_condition("Available", True, "AllGroupsReady", "All replicas are ready", old, now, gen))
        conds.append(
            _condition(
                "Progressing", False, "GroupsProgressing", f"Replicas are ready, {summary}", old, now, gen
            )
        )
    else:
        msg = f"Replicas are progressing, {summary}" + (f": {detail}" if detail else "")
        conds.append(
            _condition(
                "Available",
                False,
                "GroupsProgressing",
                f"Not all replicas are ready, {summary}",
                old,
                now,
                gen,
            )
        )
        conds.append(_condition("Progressing", True, "GroupsProgressing", msg, old, now, gen))
    if updating and not available:
        conds.append(
            _condition(
                "UpdateInProgress",
                True,
                "GroupsUpdating",
                f"Rolling Upgrade is in progress, {summary}",
                old,
                now,
                gen,
            )
        )
    else:
        conds.append(
            _condition("UpdateInProgress", False, "GroupsUpdating", "No update in progress", old, now, gen)
        )
    # upstream appends a condition only once it is True
    old_types = {c["type"] for c in old}
    out_conds = [c for c in conds if c["status"] == "True" or c["type"] in old_types]
    sts_replicas = ((sts or {}).get("status") or {}).get("replicas", 0)
    return {
        "observedGeneration": gen,
        "replicas": sts_replicas,
        "readyReplicas": ready,
        "updatedReplicas": updated,
        "hpaPodSelector": labels.hpa_selector(lws.metadata.name),
        "conditions": out_conds,
    }


def same(a: Obj | None, b: Obj | None) -> bool:
    """Equal statuses, ignoring transition times."""

    def norm(s: Obj | None) -> Obj:
        s = dict(s or {})
        s["conditions"] = sorted(
            conventions.without_transition_times(s.get("conditions") or []),
            key=lambda c: str(c.get("type")),
        )
        return s

    return norm(a) == norm(b)
