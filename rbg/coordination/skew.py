"""Coordinated scaling and coordinated rolling update arithmetic: pure functions of plain numbers.

Scaling (``spec.coordination[].strategy.scaling``) follows upstream's coordinationscaling/scaler.go, in
exact rational arithmetic (``Fraction``): ceil(5% of 300) is 15, not the 16 a float gives. A few of
upstream's own test cases differ for that reason alone (285/300 and 90/100 at 5%: upstream 286, here
285, since 285/300 is exactly 90% + 5%; likewise 150 for 151, 15 for 16, 55 for 56). Scale-down is
never held back, also not while gated (as upstream's guide says; its code holds a gated role at its
current replicas), and at maxSkew "0%" the least advanced roles still move (upstream's rule holds
them at progress >= min + 0 forever).

Rolling update (``.rollingUpdate``): the partition floor is upstream's CalculatePartitionReplicas and
maxUnavailable a share of each role's replicas. maxSkew deviates. Upstream advances the slowest role by
a step derived from a rounded fastest/slowest bound; a 1-replica role can get partition 1 forever
(sgl-project/rbg#307). Here, over the roles with replicas n_i > 0, u_i updated pods, a floor f_i (the
larger of the role's own partition and the coordination's) and cap c_i = n_i - f_i:

* a role is *unfinished* while u_i < c_i; m is the least u_j / n_j over the unfinished roles (a role
  that is done, or held by its partition, no longer holds the others back, as upstream's scaler does
  for roles at desired);
* t_i = max(u_i, min(c_i, floor((m + s) * n_i))) and partition_i = max(n_i - t_i, f_i);
* if that lets no role advance while one is unfinished (s * n_k < 1 for the least role k: the bound is
  finer than one pod), the unfinished roles at progress m get t = u + 1: progress beats the bound.

What this proves, whatever role the workload controller updates next and however late the next
reconcile is (every pod updated is allowed by some partition written earlier), from a start within the
bound (all at 0, say); write b = max(s, 1/n_min).

1. No role's progress is more than b ahead of any unfinished role's. m never falls (progress only
   grows, a role leaving the unfinished set only raises the minimum); a pod updated under limits
   computed at m0 lands at most at m0 + s (the floor) or, by the fallback, at m0 + 1/n_k with
   s < 1/n_k <= 1/n_min; roles not moved keep their earlier bound. Until the fallback first fires
   the bound is s.
2. If s * n_min >= 1 the fallback never fires (the least role k may always go to u_k + floor(s * n_k)
   >= u_k + 1), so the bound is s throughout; b is reached (two 1-replica roles at s = 0 give 1).
3. No stall: while a role is unfinished some role may advance, so a rollout from 0 ends after exactly
   sum(c_i) pod updates, each role at n_i - f_i.
4. Partitions only go down: t is monotone in (u, m); after a fallback the roles not yet moved stay at
   m and every other role stays stuck, so the next reconcile is the fallback again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ScalingRole",
    "UpdateLimits",
    "UpdateRole",
    "max_unavailable_replicas",
    "merge_limits",
    "merge_targets",
    "parse_percent",
    "partition_replicas",
    "rolling_limits",
    "scaling_targets",
]

_PERCENT = re.compile(r"^([0-9]|[1-9][0-9]|100)%$")
_PROGRESSIONS = ("OrderScheduled", "OrderReady")


@dataclass(frozen=True)
class ScalingRole:
    name: str
    desired: int
    """Replicas the role asks for."""
    current: int
    """Replicas written to the workload now."""
    scheduled: int
    """Pods bound to a node."""
    ready: int
    """Ready pods."""


@dataclass(frozen=True)
class UpdateRole:
    name: str
    replicas: int
    updated: int
    """Pods on the current template."""
    partition: int
    """The role's own partition: ordinals below it keep the old template."""


@dataclass(frozen=True)
class UpdateLimits:
    partition: int
    max_unavailable: int | None
    """None: the role's own maxUnavailable applies."""


def parse_percent(value: str | int) -> Fraction:
    """A whole percentage, "5%" or 5, as a fraction (1/20); ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"not a percentage: {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= 100:
            raise ValueError(f"percentage out of 0..100: {value}")
        return Fraction(value, 100)
    match = _PERCENT.match(value)
    if match is None:
        raise ValueError(f"not a percentage: {value!r}")
    return Fraction(int(match.group(1)), 100)


# -- scaling ----------------------------------------------------------------------------------------


def _can_proceed(roles: Sequence[ScalingRole], progression: str | None) -> bool:
    if progression is None or all(r.current >= r.desired for r in roles):
        return True
    for r in roles:
        if 0 < r.current < r.desired:
            have = r.scheduled if progression == "OrderScheduled" else r.ready
            if have < r.current:
                return False
    return True


def scaling_targets(
    roles: Sequence[ScalingRole], max_skew: str | int | None, progression: str | None
) -> dict[str, int]:
    """Replicas to write for each coordinated role this pass.

    maxSkew defaults to "100%". progression None applies no gating at all (upstream v1alpha2: "when
    omitted, batch gating is not applied"); OrderScheduled / OrderReady hold every role still scaling
    up at its current replicas until each role's current pods are scheduled / Ready. A role at or
    above desired goes to desired at once: scale-down is never held back. The least advanced roles
    always move (only matters at maxSkew "0%", where upstream's rule holds every role forever).
    """
    if progression is not None and progression not in _PROGRESSIONS:
        raise ValueError(f"unknown progression: {progression!r}")
    skew = parse_percent("100%" if max_skew is None else max_skew)
    if not _can_proceed(roles, progression):
        return {r.name: min(r.current, r.desired) for r in roles}

    def progress(r: ScalingRole) -> Fraction:
        if r.desired == 0:
            return Fraction(1 if r.current == 0 else 0)
        return Fraction(r.current, r.desired)

    behind = [progress(r) for r in roles if r.current < r.desired]
    least = min(behind) if behind else Fraction(1)
    allowed = least + skew
    targets: dict[str, int] = {}
    for r in roles:
        if r.current >= r.desired:
            targets[r.name] = r.desired
        elif progress(r) >= allowed and progress(r) > least:
            targets[r.name] = r.current
        else:
            targets[r.name] = max(min(r.desired, math.ceil(allowed * r.desired)), r.current + 1)
    return targets


def merge_targets(targets: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Several coordinations on one role: the smallest target wins."""
    merged: dict[str, int] = {}
    for one in targets:
        for name, value in one.items():
            merged[name] = min(value, merged.get(name, value))
    return merged


# -- rolling update ---------------------------------------------------------------------------------


def partition_replicas(percent: str, replicas: int) -> int:
    """Upstream CalculatePartitionReplicas: the share rounded up, clamped to [0, replicas]; a share other
    than "100%" that rounds up to every replica keeps one fewer, so at least one pod updates."""
    if replicas <= 0:
        return 0
    value = math.ceil(parse_percent(percent) * replicas)
    if value >= replicas and percent != "100%":
        value = replicas - 1
    return max(0, min(value, replicas))


def max_unavailable_replicas(percent: str, replicas: int) -> int:
    """The share of replicas rounded down, but at least 1."""
    return max(1, math.floor(parse_percent(percent) * replicas))


def _skew_targets(
    live: Sequence[UpdateRole], updated: Mapping[str, int], caps: Mapping[str, int], skew: Fraction
) -> dict[str, int]:
    """Updated-pod targets under maxSkew (see the module docstring)."""
    unfinished = [r for r in live if updated[r.name] < caps[r.name]]
    if not unfinished:
        return dict(updated)
    low = min(Fraction(updated[r.name], r.replicas) for r in unfinished)
    targets = {
        r.name: max(updated[r.name], min(caps[r.name], math.floor((low + skew) * r.replicas))) for r in live
    }
    if all(targets[r.name] == updated[r.name] for r in unfinished):
        for r in unfinished:
            if Fraction(updated[r.name], r.replicas) == low:
                targets[r.name] = updated[r.name] + 1
    return targets


def rolling_limits(
    roles: Sequence[UpdateRole],
    max_skew: str | int | None,
    partition: str | None,
    max_unavailable: str | None,
) -> dict[str, UpdateLimits]:
    """Partition and maxUnavailable to write for each coordinated role with replicas > 0; {} when fewer
    than two such roles (their own settings apply). maxSkew None: no skew limiting, only the floors."""
    live = [r for r in roles if r.replicas > 0]
    if len(live) < 2:
        return {}
    floors = {
        r.name: max(
            min(max(r.partition, 0), r.replicas),
            partition_replicas(partition, r.replicas) if partition is not None else 0,
        )
        for r in live
    }
    caps = {r.name: r.replicas - floors[r.name] for r in live}
    if max_skew is None:
        targets = {r.name: r.replicas for r in live}
    else:
        updated = {r.name: min(max(r.updated, 0), r.replicas) for r in live}
        targets = _skew_targets(live, updated, caps, parse_percent(max_skew))
    return {
        r.name: UpdateLimits(
            partition=max(r.replicas - targets[r.name], floors[r.name]),
            max_unavailable=(
                None if max_unavailable is None else max_unavailable_replicas(max_unavailable, r.replicas)
            ),
        )
        for r in live
    }


def merge_limits(limits: Iterable[Mapping[str, UpdateLimits]]) -> dict[str, UpdateLimits]:
    """Several coordinations on one role: the largest partition and the smallest maxUnavailable."""
    merged: dict[str, UpdateLimits] = {}
    for one in limits:
        for name, value in one.items():
            seen = merged.get(name)
            if seen is None:
                merged[name] = value
                continue
            given = [v for v in (seen.max_unavailable, value.max_unavailable) if v is not None]
            merged[name] = UpdateLimits(max(seen.partition, value.partition), min(given) if given else None)
    return merged
