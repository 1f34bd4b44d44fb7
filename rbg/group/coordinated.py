"""Coordinated rolling update and scaling of a group's roles (D34): the arithmetic of
rbg.coordination.skew applied to the workloads about to be written.

Each pass reads, per coordinated role, what its observed workload shows (replicas written, pods updated,
ready, scheduled) and narrows the desired workload: scaling writes fewer replicas than the role asks for
until the others catch up; a rolling update writes a higher partition. The group's spec is never
changed. Only StatefulSet and LeaderWorkerSet roles take part in a coordinated rolling update (a
Deployment has no partition); every kind takes part in coordinated scaling. Roles that an
AffinityScheduling coordination also batches move by whole batches.

What survives a restart or a stale cache: everything is read from the workloads and pods themselves;
updated pods are counted by their role-revision label (a workload's status may describe its previous
spec), and a partition is never raised above the one the workload already has while its template is
the current one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rbg.api.hub import RoleBasedGroup
from rbg.coordination import batches, skew
from rbg.group import names
from rbg.group.revision import ROLE_REVISION
from rbg.group.rollout import partition_of, recreates, set_partition, template_label
from rbg.group.workloads import LWS_GROUP_INDEX, role_partition

Obj = dict[str, Any]
PARTITIONED = ("StatefulSet", "LeaderWorkerSet")
WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"


@dataclass
class Coordinated:
    """What the coordinations change in the workloads, and what they report."""

    replicas: dict[str, int] = field(default_factory=dict)  # role -> replicas to write
    partitions: dict[str, int] = field(default_factory=dict)  # role -> partition to write
    status: list[Obj] = field(default_factory=list)  # per coordination: its progress


def _updated(desired: Obj, observed: Obj | None, pods: list[Obj]) -> int:
    """Pods (LeaderWorkerSet: groups, by their leaders) of the role on the template about to be written,
    counted from the pods' role-revision label: a workload's status may still describe its previous spec,
    a pod's label never lies (a pod the cache has not seen yet is not counted: the skew errs on the safe
    side)."""
    replicas = int(desired["spec"].get("replicas") or 0)
    if observed is None:  # created now: every pod starts on the template, nothing rolls
        return replicas
    label = template_label(desired)
    on = [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and (p["metadata"].get("labels") or {}).get(ROLE_REVISION) == label
        and (
            desired["kind"] != "LeaderWorkerSet"
            or (p["metadata"].get("labels") or {}).get(WORKER_INDEX) == "0"
        )
    ]
    return min(len(on), replicas)


def _scheduled(pods: list[Obj], body: Obj) -> int:
    bound = [p for p in pods if (p.get("spec") or {}).get("nodeName")]
    kind = body["kind"]
    if kind == "RoleInstanceSet":  # an instance counts once every pod of it is bound (D42)
        components = ((body.get("spec") or {}).get("roleInstanceTemplate") or {}).get("components") or []
        per_instance = sum(int(c.get("size") or 0) for c in components)
        counts: dict[str, int] = {}
        for p in bound:
            index = (p["metadata"].get("labels") or {}).get(names.ROLE_INSTANCE_INDEX)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        return sum(1 for n in counts.values() if n >= per_instance > 0)
    if kind == "LeaderWorkerSet":  # a group counts once its leader is bound
        return sum(1 for p in bound if ((p["metadata"].get("labels") or {}).get(LWS_GROUP_INDEX) is not None))
    return len(bound)


def apply(
    rbg: RoleBasedGroup,
    desired: Mapping[str, Obj],
    observed: Mapping[str, Obj | None],
    pods: Mapping[str, list[Obj]],
) -> Coordinated:
    """`desired`: role -> the workload about to be written; `observed`: role -> its cached workload;
    `pods`: role -> its pods (scheduled counts). Roles not in `desired` (waiting for a dependency) take
    no part."""
    out = Coordinated()
    roles = {r.name: r for r in rbg.spec.roles}
    targets: list[dict[str, int]] = []
    limits: list[dict[str, skew.UpdateLimits]] = []
    for coordination in rbg.spec.coordination or []:
        strategy = coordination.strategy
        members = [r for r in coordination.roles if r in roles and r in desired]
        if strategy is None or len(members) < 2 or strategy.scaling is None:
            continue
        scaling = [
            skew.ScalingRole(
                name=r,
                desired=roles[r].replicas,
                current=int(((observed.get(r) or {}).get("spec") or {}).get("replicas") or 0),
                scheduled=_scheduled(pods.get(r, []), desired[r]),
                ready=int(((observed.get(r) or {}).get("status") or {}).get("readyReplicas") or 0),
            )
            for r in members
        ]
        target = skew.scaling_targets(scaling, strategy.scaling.max_skew, strategy.scaling.progression)
        ratios = _batch_ratios(rbg, members)
        if ratios is not None:
            target = _whole_batches_scaling(target, scaling, ratios)
        targets.append(target)
        out.status.append(
            _report(coordination.name, "Scaling", {s.name: (s.current, s.desired) for s in scaling})
        )
    out.replicas = skew.merge_targets(targets) if targets else {}
    floors = standing(rbg, desired)
    for coordination in rbg.spec.coordination or []:
        strategy = coordination.strategy
        members = [r for r in coordination.roles if r in roles and r in desired]
        ru = strategy.rolling_update if strategy is not None else None
        if ru is None or len(members) < 2:
            continue
        rolling = [r for r in members if desired[r]["kind"] in PARTITIONED]
        update = [
            skew.UpdateRole(
                name=r,
                # the replicas about to be written (a coordinated scaling may write fewer)
                replicas=min(int(desired[r]["spec"].get("replicas") or 0), out.replicas.get(r, 1 << 30)),
                updated=_updated(desired[r], observed.get(r), pods.get(r, [])),
                partition=role_partition(roles[r]),
            )
            for r in rolling
        ]
        unavailable = ru.max_unavailable or ru.max_unavailable_ratio
        found = skew.rolling_limits(update, ru.max_skew, ru.partition, unavailable)
        ratios = _batch_ratios(rbg, [u.name for u in update])
        if ratios is not None and found:
            found = _whole_batches_update(found, update, ratios, floors)
        limits.append(found)
        out.status.append(
            _report(coordination.name, "RollingUpdate", {u.name: (u.updated, u.replicas) for u in update})
        )
    for role, limit in (skew.merge_limits(limits) if limits else {}).items():
        partition = limit.partition
        seen = observed.get(role)
        held_by_workload = not (recreates(roles[role]) and desired[role]["kind"] == "StatefulSet")
        if held_by_workload and seen is not None and template_label(seen) == template_label(desired[role]):
            # never above what the workload holds (a partition going up rolls nothing back). A Recreate
            # StatefulSet (OnDelete) holds none: the operator's deletes follow this partition itself
            partition = min(partition, max(partition_of(seen), role_partition(roles[role])))
        out.partitions[role] = partition
    return out


def _batch_ratios(rbg: RoleBasedGroup, members: list[str]) -> dict[str, int] | None:
    """The ratios of an AffinityScheduling coordination over all of these roles: they then move by whole
    batches (a 2:1 prefill:decode service scales and rolls 2+1 pods at a time, D34)."""
    for c, aff in batches.affinity_coordinations(rbg):
        ratios = {r: int(aff.ratios.get(r, 0)) for r in members}
        if len(members) >= 2 and set(members) <= set(c.roles) and all(v > 0 for v in ratios.values()):
            return ratios
    return None


def _whole_batches_scaling(
    target: Mapping[str, int], roles: list[skew.ScalingRole], ratios: Mapping[str, int]
) -> dict[str, int]:
    """Scaling targets rounded to whole batches: the fewest batches any role's target allows, at least one
    more than every role has when the scaler lets the roles grow; a scale-down goes as asked."""
    if any(r.desired < r.current for r in roles):
        return dict(target)
    have = min(r.current // ratios[r.name] for r in roles)
    want = min(r.desired // ratios[r.name] for r in roles)
    allowed = min(target[r.name] // ratios[r.name] for r in roles)
    if any(target[r.name] > r.current for r in roles):
        allowed = max(allowed, have + 1)
    allowed = min(allowed, want)
    return {r.name: max(min(r.desired, allowed * ratios[r.name]), min(r.current, r.desired)) for r in roles}


def standing(rbg: RoleBasedGroup, desired: Mapping[str, Obj]) -> dict[str, int]:
    """Per role, the partition that stays for good: its own, or a coordinated rolling update's
    `partition` (not its maxSkew steps, which move)."""
    roles = {r.name: r for r in rbg.spec.roles}
    out = {name: role_partition(role) for name, role in roles.items()}
    for c in rbg.spec.coordination or []:
        ru = c.strategy.rolling_update if c.strategy is not None else None
        members = [r for r in c.roles if r in roles and r in desired]
        if ru is None or not ru.partition or len(members) < 2:
            continue
        for r in members:
            n = int(desired[r]["spec"].get("replicas") or 0)
            out[r] = max(out[r], skew.partition_replicas(ru.partition, n))
    return out


def _whole_batches_update(
    limits: Mapping[str, skew.UpdateLimits],
    roles: list[skew.UpdateRole],
    ratios: Mapping[str, int],
    floors: Mapping[str, int],
) -> dict[str, skew.UpdateLimits]:
    """Partitions on batch boundaries: the highest batches update together across the roles (batch k is
    each role's ordinals k*ratio .. k*ratio+ratio-1), as many as every role's limit allows, at least one
    more than all have while the rollout is unfinished."""
    total = min(u.replicas // ratios[u.name] for u in roles)
    done = min(u.updated // ratios[u.name] for u in roles)
    allowed = min((u.replicas - limits[u.name].partition) // ratios[u.name] for u in roles)
    # the partitions that stay (the roles' own, the coordination's), in whole batches
    floor_batches = max(-(-max(u.partition, floors.get(u.name, 0)) // ratios[u.name]) for u in roles)
    if done < total - floor_batches:
        allowed = max(allowed, done + 1)
    allowed = min(allowed, total - floor_batches)
    return {
        u.name: skew.UpdateLimits(
            partition=max(u.partition, floors.get(u.name, 0), (total - allowed) * ratios[u.name]),
            max_unavailable=limits[u.name].max_unavailable,
        )
        for u in roles
    }


def _report(name: str, type_: str, progress: Mapping[str, tuple[int, int]]) -> Obj:
    done = all(a >= b for a, b in progress.values())
    text = ", ".join(f"{r} {a}/{b}" for r, (a, b) in progress.items())
    return {"name": name, "type": type_, "phase": "Completed" if done else "InProgress", "progress": text}


def narrow(workload: Obj, replicas: int | None, partition: int | None) -> None:
    """Write a coordination's replicas and partition into a desired workload body."""
    spec = workload["spec"]
    if replicas is not None:
        spec["replicas"] = replicas
    if partition is None:
        return
    if workload["kind"] == "StatefulSet":
        set_partition(spec, partition)
    elif workload["kind"] == "LeaderWorkerSet":
        strategy = spec.setdefault("rolloutStrategy", {"type": "RollingUpdate"})
        config = strategy.setdefault("rollingUpdateConfiguration", {})
        config.pop("partition", None)
        if partition > 0:
            config["partition"] = partition
