"""A role's rolling update, pass by pass (D36): what the workload controllers cannot do themselves.

- **StatefulSet maxSurge and maxUnavailable** are stepped by the operator as upstream does (a StatefulSet
  has no surge, and its maxUnavailable needs an alpha feature gate): the partition and replicas come
  from the shared rollout arithmetic (rbg.lifecycle.rollout, the same as LeaderWorkerSet groups), over
  the role's pods by ordinal (ready, and on the new template by their role-revision label). With
  maxSurge 0 and maxUnavailable 1 the StatefulSet rolls itself (one pod at a time, highest first).
- **Roll first, scale after**: a template change and a scale-up together first roll the existing
  instances at their current count and add the new ones once that is done. The other order deadlocks
  under tight capacity (kubernetes-sigs/lws#717): new pods that cannot be scheduled hold the rollout,
  whose old pods hold the room. Scale-down goes first (it frees room).
- **type: Recreate** recreates the role's pods together: the StatefulSet is written with OnDelete and
  every pod not on the new template is deleted at once (a Deployment's own Recreate strategy does it for
  Deployment roles).

The instance count the rollout runs at is kept on the workload (annotation `instances`), so a restart
of the operator resumes exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rbg.api.hub import RoleSpec
from rbg.group import names
from rbg.group.revision import ROLE_REVISION
from rbg.group.workloads import role_partition
from rbg.lifecycle import rollout
from rbg.lifecycle.observed import caught_up, pod_ready

Obj = dict[str, Any]
INSTANCES = names.PREFIX + "instances"  # on a role's workload: its instances without surge


def template_label(workload: Obj | None) -> str | None:
    spec = (workload or {}).get("spec") or {}
    components = (spec.get("roleInstanceTemplate") or {}).get("components") or [{}]
    tpl = (
        spec.get("template")
        or ((spec.get("leaderWorkerTemplate") or {}).get("workerTemplate"))
        or components[0].get("template")
        or {}
    )
    value = ((tpl.get("metadata") or {}).get("labels") or {}).get(ROLE_REVISION)
    return str(value) if value is not None else None


def rolling(desired: Obj | None, observed: Obj | None, partition: int = 0) -> bool:
    """The role's workload is about to get, or has not finished rolling to, a new template (the pods
    below `partition` are not counted: they stay on the old one)."""
    if desired is None or observed is None:
        return False
    if template_label(desired) != template_label(observed):
        return True
    if not caught_up(observed):
        return True
    replicas = int((observed.get("spec") or {}).get("replicas") or 0)
    updated = int((observed.get("status") or {}).get("updatedReplicas") or 0)
    return updated < replicas - min(partition, replicas)


def _ru(role: RoleSpec) -> Any:
    return role.rollout_strategy.rolling_update if role.rollout_strategy else None


def recreates(role: RoleSpec) -> bool:
    ru = _ru(role)
    return ru is not None and ru.type == "Recreate"


def _by_ordinal(pods: Sequence[Obj]) -> dict[int, Obj]:
    out: dict[int, Obj] = {}
    for pod in pods:
        index = (pod["metadata"].get("labels") or {}).get(names.POD_INDEX)
        if index is not None and str(index).isdigit() and not pod["metadata"].get("deletionTimestamp"):
            out[int(index)] = pod
    return out


def partition_of(workload: Obj) -> int:
    """The partition an observed StatefulSet or LeaderWorkerSet holds."""
    spec = workload.get("spec") or {}
    if workload.get("kind") == "LeaderWorkerSet":
        value = ((spec.get("rolloutStrategy") or {}).get("rollingUpdateConfiguration") or {}).get("partition")
    else:
        value = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition")
    return value if isinstance(value, int) else 0


def statefulset(
    role: RoleSpec,
    desired: Obj,
    observed: Obj | None,
    pods: Sequence[Obj],
    floor: int,
    batched: bool = False,
    standing: int | None = None,
) -> None:
    """Write the StatefulSet role's replicas, partition and update strategy into `desired` (its body with
    the replicas it should reach and no partition yet); `floor` is the partition the spec asks for (the
    role's, a coordination's, or the replicas when paused). `batched`: the role's pods are placed in
    AffinityScheduling batches, whose planner already places by capacity and whose batches need their
    new members at once: a scale-up is not held for them. `standing`: the partition that stays (see
    `held`)."""
    spec = desired["spec"]
    want = int(spec.get("replicas") or 0)
    annotations = desired["metadata"].setdefault("annotations", {})
    if observed is None:
        annotations[INSTANCES] = str(want)
        if recreates(role):
            spec["updateStrategy"] = {"type": "OnDelete"}
        else:
            set_partition(spec, floor)
        return
    label = template_label(desired)
    current = template_label(observed) == label
    have = int((observed.get("spec") or {}).get("replicas") or 0)
    ordinals = _by_ordinal(pods)
    on_new = {
        i for i, p in ordinals.items() if (p["metadata"].get("labels") or {}).get(ROLE_REVISION) == label
    }
    n = want if batched else held(role, desired, observed, want, standing)
    annotations[INSTANCES] = str(n)
    if recreates(role):
        spec["replicas"] = n
        spec["updateStrategy"] = {"type": "OnDelete"}
        return
    ru = _ru(role)
    if ru is not None and ru.paused:  # held where it is: no step, no surge (D30)
        spec["replicas"] = n
        set_partition(spec, max(floor, n))
        return
    unavailable = ru.max_unavailable if ru is not None and ru.max_unavailable is not None else 1
    surge = ru.max_surge if ru is not None and ru.max_surge is not None else 0
    step_unavailable, step_surge = rollout.limits(unavailable, surge, n)
    if step_surge == 0 and step_unavailable <= 1:
        spec["replicas"] = n  # the StatefulSet rolls itself, one pod at a time
        set_partition(spec, floor)
        return
    states = [
        rollout.GroupState(
            ready=i in ordinals and pod_ready(ordinals[i]),
            updated=i in on_new,
        )
        for i in range(have)
    ]
    leader = rollout.LeaderSet(
        replicas=have, partition=partition_of(observed), replicas_annotation=None, template_current=current
    )
    partition, replicas = rollout.parameters(n, unavailable, surge, floor, leader, states)
    spec["replicas"] = replicas
    set_partition(spec, partition)


def held(role: RoleSpec, desired: Obj, observed: Obj | None, want: int, floor: int | None = None) -> int:
    """The instances the role runs now: `want`, unless a scale-up waits for the instances it has to roll
    to a new template first (D36). "Rolled" counts the pods a standing partition lets roll (`floor`: the
    role's own, or a coordination's `partition`; a canary or a pause never holds a scale-up forever; a
    coordination's maxSkew steps are progress, not a floor). Surge pods count among the pods to roll."""
    floor = role_partition(role) if floor is None else floor
    if observed is None:
        return want
    have = int((observed.get("spec") or {}).get("replicas") or 0)
    written = ((observed.get("metadata") or {}).get("annotations") or {}).get(INSTANCES)
    base = int(written) if written and written.isdigit() else have
    current = template_label(observed) == template_label(desired)
    # read from the workload's status, which its own events keep current
    updated = int((observed.get("status") or {}).get("updatedReplicas") or 0) if caught_up(observed) else 0
    unfinished = not current or updated < max(base, have) - min(floor, base)
    return rollout.roll_first(want, base, unfinished)


def set_partition(spec: Obj, partition: int) -> None:
    """A StatefulSet spec's partition, written even at 0: a value the API server defaults is owned by
    nobody, and server-side apply would keep it when the role switches to Recreate (OnDelete), which
    the API server refuses with a rollingUpdate left in place."""
    update = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    update["rollingUpdate"] = {**(update.get("rollingUpdate") or {}), "partition": max(0, partition)}


def recreate(
    role: RoleSpec, desired: Obj, observed: Obj | None, pods: Sequence[Obj], floor: int
) -> list[Obj]:
    """type Recreate: the pods to delete now, every one not on the new template at or above the partition
    floor (the role's, a coordination's; paused: none), once the StatefulSet has observed the new template
    (so each comes back on it)."""
    if not recreates(role) or observed is None or desired["kind"] != "StatefulSet":
        return []
    ru = _ru(role)
    if ru is not None and ru.paused:
        return []
    label = template_label(desired)
    if template_label(observed) != label or not caught_up(observed):
        return []
    out = []
    for pod in pods:
        meta = pod["metadata"]
        index = (meta.get("labels") or {}).get(names.POD_INDEX)
        if meta.get("deletionTimestamp") or (meta.get("labels") or {}).get(ROLE_REVISION) == label:
            continue
        if index is not None and str(index).isdigit() and int(index) < floor:
            continue  # kept on the old template by the partition
        out.append(pod)
    return out


def rolling_roles(
    desired: Mapping[str, Obj], observed: Mapping[str, Obj | None], floors: Mapping[str, int] | None = None
) -> list[str]:
    """Roles rolling to a new template; pods a standing partition keeps do not count (as `kubectl
    rollout status` calls a partitioned rollout complete)."""
    return [r for r, body in desired.items() if rolling(body, observed.get(r), (floors or {}).get(r, 0))]
