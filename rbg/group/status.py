"""Role readiness and the RoleBasedGroup status (roleStatuses, Ready and Progressing conditions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rbg.api.hub import RoleBasedGroup, RoleSpec
from rbg.lifecycle import conventions
from rbg.lifecycle.observed import caught_up

Obj = dict[str, Any]


def workload_ready(role: RoleSpec, wl: Obj | None) -> bool:
    """The role's workload has caught up with its spec and all desired replicas are Ready."""
    if wl is None:
        return False
    status = wl.get("status") or {}
    return (
        caught_up(wl)
        and (wl.get("spec") or {}).get("replicas") == role.replicas
        and status.get("readyReplicas", 0) >= role.replicas
        and status.get("replicas", 0) == role.replicas
    )


def role_statuses(rbg: RoleBasedGroup, workloads: Mapping[str, Obj | None]) -> list[Obj]:
    out = []
    for role in rbg.spec.roles:
        status = (workloads.get(role.name) or {}).get("status") or {}
        out.append(
            {
                "name": role.name,
                "replicas": role.replicas,
                "readyReplicas": int(status.get("readyReplicas", 0)),
                "updatedReplicas": int(status.get("updatedReplicas", 0)),
            }
        )
    return out


def condition(
    type_: str, ok: bool, reason: str, message: str, generation: int, now: str, previous: Sequence[Obj]
) -> Obj:
    return {
        **conventions.condition(type_, ok, reason, message, previous, now),
        "observedGeneration": generation,
    }


def group_status(
    rbg: RoleBasedGroup,
    workloads: Mapping[str, Obj | None],
    waiting: Mapping[str, Sequence[str]],
    now: str,
    invalid: str | None = None,
) -> Obj:
    """The whole status; `waiting` maps a role to the dependencies it is waiting for."""
    previous = list((rbg.status.wire() if rbg.status else {}).get("conditions", []))
    generation = rbg.metadata.generation
    statuses = role_statuses(rbg, workloads)
    if invalid is not None:
        ready = condition("Ready", False, "InvalidSpec", invalid, generation, now, previous)
        progressing = condition("Progressing", False, "InvalidSpec", invalid, generation, now, previous)
    else:
        not_ready = [r for r in rbg.spec.roles if not workload_ready(r, workloads.get(r.name))]
        if not not_ready:
            ready = condition(
                "Ready", True, "AllRolesReady", "All roles are ready", generation, now, previous
            )
            progressing = condition(
                "Progressing", False, "AllRolesReady", "All roles are ready", generation, now, previous
            )
        else:
            by_name = {s["name"]: s for s in statuses}
            detail = ", ".join(
                f"{r.name} ({by_name[r.name]['readyReplicas']}/{r.replicas})" for r in not_ready
            )
            ready = condition(
                "Ready", False, "RoleNotReady", f"roles not ready: {detail}", generation, now, previous
            )
            if waiting:
                msg = "; ".join(f"{r} waits for {', '.join(d)}" for r, d in sorted(waiting.items()))
                progressing = condition(
                    "Progressing", True, "DependencyNotMet", msg, generation, now, previous
                )
            else:
                progressing = condition(
                    "Progressing",
                    True,
                    "RolesProgressing",
                    f"roles not ready: {detail}",
                    generation,
                    now,
                    previous,
                )
    return {"observedGeneration": generation, "conditions": [ready, progressing], "roleStatuses": statuses}


#: status fields another controller of the operator writes (with its own field manager)
NOT_OURS = ("coordinationStatus",)


def same_status(a: Obj | None, b: Obj | None) -> bool:
    """Equal but for condition timestamps (those alone never justify a write) and the fields the
    coordination controller writes."""

    def strip(s: Obj | None) -> Obj:
        s = {k: v for k, v in (s or {}).items() if k not in NOT_OURS}
        s["conditions"] = conventions.without_transition_times(s.get("conditions", []))
        return s

    return strip(a) == strip(b)


def progress_only(old: Obj | None, new: Obj) -> bool:
    """`new` differs from `old` only in counts and messages: every condition keeps its status and reason
    and the observed generation is the same (nothing a user or a tool waits on has flipped)."""
    if not old or old.get("observedGeneration") != new.get("observedGeneration"):
        return False
    if old.get("restartStatus") != new.get("restartStatus"):
        return False  # failure recovery's bookkeeping is written at once (D35)

    def states(s: Obj) -> list[tuple[Any, Any, Any]]:
        return sorted((c.get("type"), c.get("status"), c.get("reason")) for c in s.get("conditions") or [])

    return states(old) == states(new)
