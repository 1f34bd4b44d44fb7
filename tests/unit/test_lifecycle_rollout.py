"""Rolling-update math: upstream's partition and replica formulas, with property tests."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from rbg.lifecycle.rollout import GroupState, LeaderSet, limits, parameters, partition

READY_NEW = GroupState(True, True)
READY_OLD = GroupState(True, False)
DOWN_OLD = GroupState(False, False)
DOWN_NEW = GroupState(False, True)


def at(replicas: int, part: int, current: bool = True, annotation: int | None = None) -> LeaderSet:
    return LeaderSet(replicas, part, annotation if annotation is not None else replicas, current)


def test_limits_round_percentages_like_upstream() -> None:
    assert limits("25%", "25%", 6) == (1, 2)  # unavailable rounds down, surge rounds up
    assert limits(1, 10, 4) == (1, 4)  # surge capped at replicas


def test_first_creation_and_rest() -> None:
    assert parameters(4, 1, 0, 0, None, []) == (0, 4)
    assert parameters(4, 1, 0, 0, at(4, 0), [READY_NEW] * 4) == (0, 4)


def test_a_new_revision_starts_at_the_top() -> None:
    assert parameters(4, 1, 0, 0, at(4, 0, current=False), [READY_OLD] * 4) == (4, 4)
    # with maxSurge 4 and every group unready-for-the-new-revision: 4 + (4 - 1) groups
    assert parameters(4, 1, 4, 0, at(4, 0, current=False), [READY_OLD] * 4) == (4, 7)


def test_steps_of_max_unavailable() -> None:
    states = [READY_OLD] * 4
    assert parameters(4, 1, 0, 0, at(4, 4), states) == (3, 4)
    assert parameters(4, 2, 0, 0, at(4, 4), states) == (2, 4)
    # the updating group is not ready yet: hold
    assert parameters(4, 1, 0, 0, at(4, 3), [READY_OLD] * 3 + [DOWN_NEW]) == (3, 4)
    assert parameters(4, 1, 0, 0, at(4, 3), [READY_OLD] * 3 + [READY_NEW]) == (2, 4)


def test_an_unhealthy_old_group_uses_up_the_budget() -> None:
    states = [READY_OLD, DOWN_OLD, READY_OLD, READY_OLD]
    assert partition(states, 4, 2, 4) == 3


def test_old_groups_that_never_became_ready_are_replaced_one_step_at_a_time() -> None:
    # size 1, maxUnavailable 0, maxSurge 1: the surge group is ready, the old ones never were
    states = [DOWN_OLD, DOWN_OLD, READY_NEW]
    assert parameters(2, 0, 1, 0, at(3, 2, annotation=2), states)[0] == 1
    # group 1 was replaced and is not ready yet: hold (upstream keeps the partition at 1)
    assert parameters(2, 0, 1, 0, at(3, 1, annotation=2), [DOWN_OLD, DOWN_NEW, READY_NEW])[0] == 1
    # once it is ready, the last old group goes too
    assert parameters(2, 0, 1, 0, at(3, 1, annotation=2), [DOWN_OLD, READY_NEW, READY_NEW])[0] == 0


def test_a_ready_updated_top_group_does_not_stall_the_walk_over_unready_old_groups() -> None:
    """Review B1: replicas 4, maxUnavailable 1, partition 3; group 3 updated and ready, groups 0-2 old
    and unready. Upstream replaces group 2 (unready anyway); the partition must not stay at 3."""
    states = [DOWN_OLD, DOWN_OLD, DOWN_OLD, READY_NEW]
    assert parameters(4, 1, 0, 0, at(4, 3), states) == (2, 4)
    # and the update goes on to the end as the replaced groups come up
    assert parameters(4, 1, 0, 0, at(4, 2), [DOWN_OLD, DOWN_OLD, READY_NEW, READY_NEW]) == (1, 4)
    assert parameters(4, 1, 0, 0, at(4, 1), [DOWN_OLD, READY_NEW, READY_NEW, READY_NEW]) == (0, 4)


def test_scaling_up_mid_update_keeps_the_partition_and_creates_exactly_replicas() -> None:
    # replicas 4 -> 6 while the partition is at 2, maxSurge 2: no surge groups while scaling up
    states = [READY_OLD, READY_OLD, DOWN_NEW, READY_NEW]
    assert parameters(6, 1, 2, 0, at(4, 2, annotation=4), states) == (2, 6)


def test_user_partition_is_a_floor() -> None:
    assert parameters(6, 1, 0, 4, at(6, 6), [READY_OLD] * 6) == (5, 6)
    assert parameters(6, 1, 0, 4, at(6, 5), [READY_OLD] * 5 + [READY_NEW]) == (4, 6)


def test_surge_is_given_back_as_groups_become_ready() -> None:
    states = [READY_NEW] * 5
    assert parameters(4, 0, 1, 0, at(5, 0), states) == (0, 4)


def upstream_partition(ready: list[bool], updated: list[bool], step: int, current: int) -> int:
    """Oracle, written from the reference (upstream-lws.md section 3.4), not from rollout.py: the
    walk-down is the lowest index j >= p0 from which every group up to min(p, n - 1) is unready or
    already updated."""
    n = len(ready)
    good = [r and u for r, u in zip(ready, updated, strict=True)]
    tail = n - next((i + 1 for i in reversed(range(n)) if not good[i]), 0)
    p0 = max(0, n - tail - step)
    p = p0 + ready[:p0].count(False)
    top = min(p, n - 1)
    passable = [j for j in range(p0, top + 1) if all(not ready[k] or updated[k] for k in range(j, top + 1))]
    return min(min(passable, default=p), current)


STATES = [READY_OLD, DOWN_OLD, READY_NEW, DOWN_NEW]


def test_partition_is_upstreams_for_every_state_of_up_to_five_groups() -> None:
    checked = 0
    for n in range(0, 6):
        for combo in itertools.product(STATES, repeat=n):
            ready = [s.ready for s in combo]
            updated = [s.updated for s in combo]
            for step in range(0, 4):
                for current in range(0, n + 1):
                    want = upstream_partition(ready, updated, step, current)
                    assert partition(list(combo), n, step, current) == want, (combo, step, current)
                    checked += 1
    assert checked > 30_000


@given(st.lists(st.sampled_from(STATES), min_size=1, max_size=14), st.integers(0, 5), st.data())
def test_partition_is_upstreams_for_larger_sets(
    states: list[GroupState], step: int, data: st.DataObject
) -> None:
    current = data.draw(st.integers(0, len(states)))
    want = upstream_partition([s.ready for s in states], [s.updated for s in states], step, current)
    assert partition(states, len(states), step, current) == want


@given(st.lists(st.sampled_from(STATES), min_size=1, max_size=10), st.integers(0, 4), st.data())
def test_a_move_never_exposes_more_ready_old_groups_than_the_step(
    states: list[GroupState], step: int, data: st.DataObject
) -> None:
    """Availability: when the partition moves, at most `step` groups that are ready and old are left at or
    above it to be replaced; moving past unready or already updated groups is free."""
    current = data.draw(st.integers(0, len(states)))
    p = partition(states, len(states), step, current)
    if p < current:
        assert sum(1 for s in states[p:] if s.ready and not s.updated) <= step


@given(st.integers(1, 10), st.integers(1, 3), st.data())
def test_unready_old_groups_below_a_ready_updated_top_never_stall_the_update(
    n: int, step: int, data: st.DataObject
) -> None:
    """Realistic states: groups below the partition are old, those at or above it updated and ready. When
    every old group is unready, the partition moves down by at least one (review C6: it used to stay put
    when the top group was ready)."""
    current = data.draw(st.integers(1, n))
    states = [DOWN_OLD] * current + [READY_NEW] * (n - current)
    p = partition(states, n, step, current)
    assert p < current
    assert p == max(0, current - step)


@given(st.integers(1, 8), st.integers(0, 3), st.integers(1, 3), st.data())
def test_ready_updated_tail_with_budget_moves_the_partition_down(
    replicas: int, unavailable: int, step: int, data: st.DataObject
) -> None:
    """With every group ready, the partition moves down by `step` (never stalls)."""
    current = data.draw(st.integers(1, replicas))
    states = [READY_OLD] * current + [READY_NEW] * (replicas - current)
    assert partition(states, replicas, step, current) == max(0, current - step)
