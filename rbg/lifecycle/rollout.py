"""Group-wise rolling update: the leader StatefulSet's partition and replicas (upstream's formulas).

Only the leader StatefulSet is partitioned: when it replaces a leader above the partition, the group's
worker StatefulSet goes with the old leader and is rebuilt from the new revision. With maxSurge, extra
groups are created above `replicas` for the update and reclaimed as the update completes.
"""

from __future__ import annotations

from dataclasses import dataclass

from rbg.lifecycle.intstr import scaled


@dataclass(frozen=True)
class GroupState:
    ready: bool  # leader Running and Ready, and its worker StatefulSet ready
    updated: bool  # leader and workers on the current revision


@dataclass(frozen=True)
class LeaderSet:
    """What the rollout needs of the existing leader StatefulSet."""

    replicas: int
    partition: int
    replicas_annotation: int | None  # spec.replicas when it was last written
    template_current: bool  # its template is of the current revision


def limits(max_unavailable: int | str, max_surge: int | str, replicas: int) -> tuple[int, int]:
    """(maxUnavailable rounded down, maxSurge rounded up and capped at replicas)."""
    unavailable = scaled(max_unavailable, replicas, round_up=False) or 0
    surge = min(scaled(max_surge, replicas, round_up=True) or 0, replicas)
    return unavailable, surge


def parameters(
    replicas: int,
    max_unavailable: int | str,
    max_surge: int | str,
    user_partition: int,
    sts: LeaderSet | None,
    states: list[GroupState],
) -> tuple[int, int]:
    """(partition, leader StatefulSet replicas). `states[i]` is group i, for i < sts.replicas."""
    partition, want = _parameters(replicas, max_unavailable, max_surge, sts, states)
    return max(partition, user_partition), want


def _parameters(
    replicas: int,
    max_unavailable: int | str,
    max_surge: int | str,
    sts: LeaderSet | None,
    states: list[GroupState],
) -> tuple[int, int]:
    if sts is None:
        return 0, replicas
    unavailable, surge = limits(max_unavailable, max_surge, replicas)
    burst = replicas + surge

    def want(unready: int) -> int:
        if unready <= surge:
            # as groups of the new revision become ready, the surge groups are given back
            return replicas + max(0, unready - unavailable)
        return burst

    if not sts.template_current:  # a new revision: scale first, then roll
        if replicas > sts.replicas:
            return min(replicas, sts.replicas), replicas
        return min(replicas, sts.replicas), want(replicas)
    if sts.partition == 0 and sts.replicas == replicas:
        return 0, replicas  # at rest
    if sts.replicas < replicas:
        return sts.partition, replicas  # scaling up mid-update: the new groups get the new template
    unready = sum(1 for s in states[:replicas] if not (s.ready and s.updated))
    if sts.replicas_annotation is not None and sts.replicas_annotation != replicas:
        return min(sts.partition, burst), want(unready)
    step = unavailable + surge - (burst - sts.replicas)
    return partition(states, sts.replicas, step, sts.partition), want(unready)


def partition(states: list[GroupState], sts_replicas: int, step: int, current: int) -> int:
    """The next partition of a rolling update in progress (upstream's rollingUpdatePartition).

    1. `tail`: ready and updated groups counted down from the highest ordinal;
    2. `floor = sts_replicas - tail - step` (at least 0): update `step` more groups below the tail;
    3. every group below `floor` that is not ready already uses up one unavailable slot, so the
       partition goes up by one for each;
    4. walk down from the highest group at or below that partition while groups are not ready (replacing
       them costs no availability) or already updated, never below `floor`: an update whose old groups
       are all unready still completes;
    5. the partition never goes up.

    A group missing from `states` counts as not ready and not updated.
    """
    groups = list(states[:sts_replicas])
    groups += [GroupState(False, False)] * (sts_replicas - len(groups))
    tail = 0
    while tail < len(groups) and groups[-1 - tail].ready and groups[-1 - tail].updated:
        tail += 1
    floor = max(0, sts_replicas - tail - step)
    p = floor + sum(1 for s in groups[:floor] if not s.ready)
    i = min(p, sts_replicas - 1)
    while i >= floor and (not groups[i].ready or groups[i].updated):
        p = i
        i -= 1
    return min(p, current)


def roll_first(replicas: int, base: int, unfinished: bool) -> int:
    """The instances to run now (D36): a scale-up waits while instances the set already has are still to
    roll to a new template, then comes. The other order deadlocks under tight capacity
    (kubernetes-sigs/lws#717): the new instances cannot be scheduled, the rollout waits for them to be
    ready, and the old instances keep the room. A scale-down is never held (it frees room)."""
    return base if unfinished and replicas > base else replicas
