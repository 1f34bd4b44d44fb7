"""One reconcile of a RoleBasedGroup as a pure function: observed children in, actions out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rbg.api.hub import RoleBasedGroup
from rbg.group import coordinated, dependencies, desired, names, recovery, revision, rollout, status
from rbg.group.templates import TemplateError, resolve_all
from rbg.group.validation import validate
from rbg.group.workloads import role_partition
from rbg.lifecycle.conventions import controller_uid
from rbg.scaling import adapter

Obj = dict[str, Any]


@dataclass
class Plan:
    apply: list[Obj] = field(default_factory=list)  # in order: ConfigMap, Services, workloads by level
    delete: list[Obj] = field(default_factory=list)  # observed objects that no role wants any more
    status: Obj = field(default_factory=dict)
    waiting: dict[str, list[str]] = field(default_factory=dict)  # role -> dependencies not Ready
    invalid: list[str] = field(default_factory=list)
    recreate: list[Obj] = field(default_factory=list)  # pods failure recovery deletes, once status is written
    replace: list[Obj] = field(default_factory=list)  # pods of a Recreate rollout, deleted together
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    requeue_after: float | None = None  # a backoff ends then


def _owned(objs: Sequence[Obj], uid: str) -> list[Obj]:
    return [o for o in objs if controller_uid(o) == uid]


def plan(
    rbg: RoleBasedGroup,
    children: Sequence[Obj],
    now: str,
    taken: Mapping[tuple[str, str], str] | None = None,
    rejected: Mapping[tuple[str, str], str] | None = None,
    pods: Mapping[str, list[Obj]] | None = None,
) -> Plan:
    """What to apply, delete and report, given every observed child (workloads and Services).

    `taken` maps (kind, name) of objects that exist but belong to someone else to a description of
    their owner; `rejected` maps (kind, name) of children the API server refused (400/422) to its
    message. Either is reported against the spec field that decides the object, and nothing is applied.
    `pods` maps a role to its pods (read by coordinated scaling: how many are scheduled).
    """
    out = Plan()
    owned = _owned(children, rbg.metadata.uid)
    group = rbg.metadata.name
    by_kind_name = {(o.get("kind"), o["metadata"]["name"]): o for o in owned}
    workloads: dict[str, Obj | None] = {}
    for role in rbg.spec.roles:
        workloads[role.name] = by_kind_name.get(
            (desired.workload_kind(role), names.workload_name(group, role.name))
        )

    templates = resolve_all(rbg.spec)  # once per plan: validation and the workloads share them
    errors = [str(e) for e in validate(rbg, templates)]
    errors += [
        f'{field}: {kind} "{name}" already exists and belongs to {taken[(kind, name)]}'
        for kind, name, field in desired.child_refs(rbg)
        if taken and (kind, name) in taken
    ]
    errors += [
        f"{field.removesuffix('.name')}: the API server rejected {kind} {name}: {rejected[(kind, name)]}"
        for kind, name, field in desired.child_refs(rbg)
        if rejected and (kind, name) in rejected
    ]
    if errors:
        out.invalid = errors
        out.status = status.group_status(rbg, workloads, {}, now, invalid=errors[0])
        if rbg.status is not None and rbg.status.restart_status is not None:  # kept, not acted on
            out.status["restartStatus"] = rbg.status.restart_status.wire()
        return out

    # the revision first: what the workloads are about to run is recorded before they run it (D33)
    current, created, stale = revision.plan_revisions(
        rbg, [o for o in owned if o.get("kind") == "ControllerRevision"], desired.owner_reference(rbg)
    )
    if created is not None:
        out.apply.append(created)
    out.apply.append(desired.config_map(rbg, desired.governing_services(rbg, workloads)))
    out.apply += [desired.service(rbg, i) for i in range(len(rbg.spec.roles))]
    resolved = [t for t in templates if not isinstance(t, TemplateError)]
    gang = desired.pod_group(rbg, resolved)  # before the workloads, which take the templates over
    if gang is not None:
        out.apply.append(gang)

    index = {r.name: i for i, r in enumerate(rbg.spec.roles)}
    deps = {r.name: list(r.dependencies or []) for r in rbg.spec.roles}
    ordered = rbg.spec.startup_policy != "Parallel"
    bodies: dict[str, Obj] = {}
    for level in dependencies.levels(deps):
        for role_name in level:
            if workloads[role_name] is None and ordered:
                # created only once every dependency is Ready; once it exists it is kept in line
                blocking = [
                    d
                    for d in deps[role_name]
                    if not status.workload_ready(rbg.spec.roles[index[d]], workloads[d])
                ]
                if blocking:
                    out.waiting[role_name] = blocking
                    continue
            if desired.made_elsewhere(workloads[role_name]):
                continue  # deleted below (not wanted); ours is made once it is gone (D42)
            template = templates[index[role_name]]
            assert not isinstance(template, TemplateError)  # validate() reported those above
            body = desired.workload(rbg, index[role_name], template=template)
            desired.keep_immutable(body, workloads[role_name])
            bodies[role_name] = body
            out.apply.append(body)
    # a scale-up waiting for a rollout first (D36): the coordinations count on what the role runs now
    floors = coordinated.standing(rbg, bodies)
    for role_name, body in bodies.items():
        role = rbg.spec.roles[index[role_name]]
        if (
            body["kind"] == "StatefulSet"
            and names.COORDINATED not in body["spec"]["template"]["metadata"]["labels"]
        ):
            body["spec"]["replicas"] = rollout.held(
                role, body, workloads[role_name], body["spec"]["replicas"], floors[role_name]
            )
    # coordinated rolling update and scaling narrow the workloads about to be written (D34)
    moved = coordinated.apply(rbg, bodies, workloads, pods or {})
    for role_name, body in bodies.items():
        role = rbg.spec.roles[index[role_name]]
        partition = moved.partitions.get(role_name)
        if body["kind"] == "StatefulSet":  # stepped here: surge, unavailable, roll before scale-up (D36)
            coordinated.narrow(body, moved.replicas.get(role_name), None)
            floor = partition if partition is not None else role_partition(role)
            role_pods = (pods or {}).get(role_name, [])
            batched = names.COORDINATED in body["spec"]["template"]["metadata"]["labels"]
            rollout.statefulset(
                role, body, workloads[role_name], role_pods, floor, batched, floors[role_name]
            )
            out.replace += rollout.recreate(role, body, workloads[role_name], role_pods, floor)
        else:
            coordinated.narrow(body, moved.replicas.get(role_name), partition)

    out.apply += [adapter.desired(rbg, role) for role in rbg.spec.roles if adapter.enabled(role)]
    wanted = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in out.apply}
    out.delete = [
        o
        for o in owned
        if o.get("kind")
        in (
            "StatefulSet",
            "Deployment",
            "LeaderWorkerSet",
            "RoleInstanceSet",
            "Service",
            "PodGroup",
            "RoleBasedGroupScalingAdapter",
        )
        and (o.get("apiVersion"), o["kind"], o["metadata"]["name"]) not in wanted
        and (o.get("metadata", {}).get("labels") or {}).get(names.GROUP_NAME) == group
    ]
    out.delete += stale
    out.status = status.group_status(rbg, workloads, out.waiting, now)
    out.status["conditions"].append(_rolling_condition(rbg, bodies, workloads, floors, now))
    out.status["currentRevision"] = current
    if moved.status:
        out.status["coordinationProgress"] = moved.status
    if recovery.enabled(rbg):  # failure recovery (D35): the bookkeeping travels in the status
        every = [p for role_pods in (pods or {}).values() for p in role_pods]
        seen = rbg.status.wire() if rbg.status else {}
        decision, base = recovery.decide(rbg, bodies, workloads, every, seen, current, _epoch(now), floors)
        out.status = recovery.with_recovery(rbg, out.status, decision, base, current, now)
        out.recreate, out.events, out.requeue_after = (
            list(decision.delete),
            decision.events,
            decision.requeue_after,
        )
    return out


def _epoch(now: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (the plan's clock)."""
    try:
        return datetime.fromisoformat(now.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _rolling_condition(
    rbg: RoleBasedGroup,
    bodies: Mapping[str, Obj],
    observed: Mapping[str, Obj | None],
    floors: Mapping[str, int],
    now: str,
) -> Obj:
    """RollingUpdateInProgress: True while a role rolls to a new template (its pods by the workload)."""
    previous = list((rbg.status.wire() if rbg.status else {}).get("conditions", []))
    # a paused rollout is still in progress (only held); a canary partition's is complete
    paused = {
        r.name
        for r in rbg.spec.roles
        if r.rollout_strategy
        and r.rollout_strategy.rolling_update
        and r.rollout_strategy.rolling_update.paused
    }
    roles = rollout.rolling_roles(bodies, observed, {r: 0 if r in paused else f for r, f in floors.items()})
    if not roles:
        return status.condition(
            "RollingUpdateInProgress", False, "NoRollingUpdate", "", rbg.metadata.generation, now, previous
        )
    detail = ", ".join(
        f"{r} ({int(((observed.get(r) or {}).get('status') or {}).get('updatedReplicas') or 0)}"
        f"/{bodies[r]['spec'].get('replicas')} updated)"
        for r in roles
    )
    return status.condition(
        "RollingUpdateInProgress",
        True,
        "RollingUpdate",
        f"rolling: {detail}",
        rbg.metadata.generation,
        now,
        previous,
    )
