"""Failure recovery of a group, pass by pass (D35): the spec and observed state turned into the inputs of
rbg.group.restart.decide, and its Decision turned into status (restartStatus, conditions Restarting and
Failed). The controller deletes the pods the decision names, after the status holding them is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rbg.api.hub import RoleBasedGroup, RoleSpec
from rbg.group import names, restart, rollout
from rbg.group.status import condition
from rbg.group.workloads import role_partition
from rbg.lifecycle.observed import restarts

Obj = dict[str, Any]
RECREATING = ("RecreateRBGOnPodRestart", "RecreateRoleInstanceOnPodRestart")


def policy_of(role: RoleSpec) -> str | None:
    """restartPolicyConfig.type wins, then restartPolicy (upstream's resolution); unset on a
    RoleInstanceSet role: RecreateRoleInstanceOnPodRestart, upstream's default for its instances (D42)."""
    config = role.restart_policy_config
    chosen = (config.type if config is not None and config.type else None) or role.restart_policy
    if chosen is None and role.workload.kind == "RoleInstanceSet":
        return "RecreateRoleInstanceOnPodRestart"
    return chosen


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


def rolling(desired: Obj | None, observed: Obj | None, partition: int = 0) -> bool:
    """No recovery for a role not created yet, held by a dependency, or rolling to a new template (a pod
    restarting then is the rollout's business); pods its partition (or a pause) keeps are not rolling."""
    return desired is None or observed is None or rollout.rolling(desired, observed, partition)


def policies(
    rbg: RoleBasedGroup,
    desired: Mapping[str, Obj],
    observed: Mapping[str, Obj | None],
    floors: Mapping[str, int] | None = None,
) -> list[restart.RolePolicy]:
    """`floors`: per role, the partition that stays (a canary is no rollout in progress)."""
    return [
        restart.RolePolicy(
            role=r.name,
            policy=policy_of(r),
            kind=r.workload.kind,
            rolling=rolling(
                desired.get(r.name),
                observed.get(r.name),
                max(role_partition(r), (floors or {}).get(r.name, 0)),
            ),
        )
        for r in rbg.spec.roles
    ]


def bookkeeping(status: Obj | None, revision: str) -> restart.Bookkeeping:
    """The bookkeeping the status holds; a Failed scope is cleared once the roles changed since (a new
    revision: scaling, an autoscaler's included, is not a fix)."""
    raw = (status or {}).get("restartStatus")
    book = restart.from_status(raw)
    written = raw.get("revision") if isinstance(raw, dict) else None
    if any(r.failed for r in book.records) and written != revision:
        return restart.clear(book)
    return book


def _quiet(pod: Obj) -> Obj:
    """The pod with its restarts already accounted for: no container restart left to act on."""
    status = dict(pod.get("status") or {})
    for key in ("containerStatuses", "initContainerStatuses"):
        if status.get(key):
            status[key] = [{**c, "restartCount": 0} for c in status[key]]
    return {**pod, "status": status}


def baseline(
    pods: Sequence[Obj], roles: Sequence[restart.RolePolicy], status: Obj | None
) -> tuple[dict[str, int], list[Obj]]:
    """(restarts per pod uid that are no failure of ours to act on, the pods with those taken out).

    Restarts seen while nothing watched them (the policy just turned on, the role rolling, a policy of
    None) are the baseline: only a restart after it triggers a recreation (a container that restarted days
    ago does not recreate a group the moment a policy is set)."""
    raw = (status or {}).get("restartStatus")
    # (an empty baseline is left out of the status: the API server's apply turns `{}` into null)
    first = not isinstance(raw, dict) or "revision" not in raw
    stored = raw.get("baseline") if isinstance(raw, dict) else None
    known = {k: v for k, v in stored.items() if isinstance(v, int)} if isinstance(stored, dict) else {}
    watching = {r.role for r in roles if r.policy in RECREATING and not r.rolling}
    out: dict[str, int] = {}
    effective = []
    for pod in pods:
        uid = str(pod["metadata"].get("uid") or "")
        total = restarts(pod)
        role = (pod["metadata"].get("labels") or {}).get(names.ROLE_NAME)
        if total > 0 and (first or role not in watching):
            out[uid] = total
        elif uid in known:
            out[uid] = known[uid]
        effective.append(_quiet(pod) if uid and total <= out.get(uid, 0) else pod)
    return {k: v for k, v in out.items() if v > 0}, effective


def decide(
    rbg: RoleBasedGroup,
    desired: Mapping[str, Obj],
    observed: Mapping[str, Obj | None],
    pods: Sequence[Obj],
    status: Obj | None,
    revision: str,
    now: float,
    floors: Mapping[str, int] | None = None,
) -> tuple[restart.Decision, dict[str, int]]:
    """The decision, and the baseline of restarts to keep in status."""
    roles = policies(rbg, desired, observed, floors)
    base, effective = baseline(pods, roles, status)
    return restart.decide(effective, roles, backoff_of(rbg), bookkeeping(status, revision), now), base


def with_recovery(
    rbg: RoleBasedGroup,
    status: Obj,
    decision: restart.Decision,
    base: dict[str, int],
    revision: str,
    now: str,
) -> Obj:
    """The status with the decision's bookkeeping and the Restarting (and, once a bound is reached,
    Failed) conditions."""
    previous = list((rbg.status.wire() if rbg.status else {}).get("conditions", []))
    generation = rbg.metadata.generation
    out = dict(status)
    out["restartStatus"] = {**restart.to_status(decision.bookkeeping), "revision": revision}
    if base:
        out["restartStatus"]["baseline"] = base
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
