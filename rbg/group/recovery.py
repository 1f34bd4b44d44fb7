"""Failure recovery of a group, pass by pass (D35): the spec and observed state turned into the inputs of
rbg.group.restart.decide, and its Decision turned into status (restartStatus, conditions Restarting and
Failed). The controller deletes the pods the decision names, after the status holding them is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rbg.api.v1alpha1 import RoleBasedGroup, RoleSpec
from rbg.group import restart, rollout
from rbg.group.status import condition

Obj = dict[str, Any]
RECREATING = ("RecreateRBGOnPodRestart", "RecreateRoleInstanceOnPodRestart")


def policy_of(role: RoleSpec) -> str | None:
    """restartPolicyConfig.type wins, then restartPolicy (upstream's resolution)."""
    config = role.restart_policy_config
    return (config.type if config is not None and config.type else None) or role.restart_policy


def enabled(rbg: RoleBasedGroup) -> bool:
    return any(policy_of(r) in RECREATING for r in rbg.spec.roles)


def backoff_of(rbg: RoleBasedGroup) -> restart.Backoff:
    """The first configured role's settings (one backoff per group: its recreations are one history)."""
    for role in rbg.spec.roles:
        c = role.restart_policy_config
        if policy_of(role) in RECREATING and c is not None:
            default = restart.Backoff()
            return restart.Backoff(
                base_seconds=c.base_delay_seconds
                if c.base_delay_seconds is not None
                else default.base_seconds,
                max_seconds=c.max_delay_seconds if c.max_delay_seconds is not None else default.max_seconds,
                max_restarts=c.max_restarts,
            )
    return restart.Backoff()


def rolling(desired: Obj | None, observed: Obj | None) -> bool:
    """No recovery for a role not created yet, held by a dependency, or rolling to a new template (a pod
    restarting then is the rollout's business)."""
    return desired is None or observed is None or rollout.rolling(desired, observed)


def policies(
    rbg: RoleBasedGroup, desired: Mapping[str, Obj], observed: Mapping[str, Obj | None]
) -> list[restart.RolePolicy]:
    return [
        restart.RolePolicy(
            role=r.name,
            policy=policy_of(r),
            kind=r.workload.kind,
            rolling=rolling(desired.get(r.name), observed.get(r.name)),
        )
        for r in rbg.spec.roles
    ]


def bookkeeping(rbg: RoleBasedGroup, status: Obj | None) -> restart.Bookkeeping:
    """The bookkeeping the status holds; a Failed scope is cleared once the spec changed since."""
    raw = (status or {}).get("restartStatus")
    book = restart.from_status(raw)
    written = (raw or {}).get("generation") if isinstance(raw, dict) else None
    if any(r.failed for r in book.records) and written != rbg.metadata.generation:
        return restart.clear(book)
    return book


def decide(
    rbg: RoleBasedGroup,
    desired: Mapping[str, Obj],
    observed: Mapping[str, Obj | None],
    pods: Sequence[Obj],
    status: Obj | None,
    now: float,
) -> restart.Decision:
    return restart.decide(
        pods, policies(rbg, desired, observed), backoff_of(rbg), bookkeeping(rbg, status), now
    )


def with_recovery(rbg: RoleBasedGroup, status: Obj, decision: restart.Decision, now: str) -> Obj:
    """The status with the decision's bookkeeping and the Restarting (and, once a bound is reached,
    Failed) conditions."""
    previous = list((rbg.status.wire() if rbg.status else {}).get("conditions", []))
    generation = rbg.metadata.generation
    out = dict(status)
    out["restartStatus"] = {**restart.to_status(decision.bookkeeping), "generation": generation}
    if decision.restarting:
        restarting = condition(
            "Restarting",
            True,
            "RestartPolicyTriggered",
            "recreating pods after a failure",
            generation,
            now,
            previous,
        )
    else:
        restarting = condition("Restarting", False, "NoRestart", "", generation, now, previous)
    conditions = [*out.get("conditions", []), restarting]
    if decision.failed:
        conditions.append(
            condition(
                "Failed", True, "RestartLimitReached", "; ".join(decision.failed), generation, now, previous
            )
        )
    out["conditions"] = conditions
    return out
