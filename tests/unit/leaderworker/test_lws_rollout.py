"""Rolling-update math: upstream's partition and replica formulas, with property tests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rbg.leaderworker.rollout import GroupState, LeaderSet, limits, parameters, partition

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


def test_old_groups_that_never_became_ready_are_replaced() -> None:
    # size 1, maxUnavailable 0, maxSurge 1: the surge group is ready, the old ones never were
    states = [DOWN_OLD, DOWN_OLD, READY_NEW]
    assert parameters(2, 0, 1, 0, at(3, 2, annotation=2), states)[0] == 0


def test_user_partition_is_a_floor() -> None:
    assert parameters(6, 1, 0, 4, at(6, 6), [READY_OLD] * 6) == (5, 6)
    assert parameters(6, 1, 0, 4, at(6, 5), [READY_OLD] * 5 + [READY_NEW]) == (4, 6)


def test_surge_is_given_back_as_groups_become_ready() -> None:
    states = [READY_NEW] * 5
    assert parameters(4, 0, 1, 0, at(5, 0), states) == (0, 4)


@given(
    st.integers(1, 8),
    st.integers(0, 4),
    st.integers(0, 4),
    st.data(),
)
def test_partition_never_rises_and_stays_in_range(
    replicas: int, unavailable: int, surge: int, data: st.DataObject
) -> None:
    sts = data.draw(st.integers(replicas, replicas + surge))
    current = data.draw(st.integers(0, sts))
    states = data.draw(
        st.lists(st.builds(GroupState, st.booleans(), st.booleans()), min_size=sts, max_size=sts)
    )
    step = data.draw(st.integers(0, 6))
    p = partition(states, sts, step, current)
    assert 0 <= p <= current


@given(st.integers(1, 8), st.integers(0, 3), st.integers(1, 3), st.data())
def test_ready_updated_tail_with_budget_moves_the_partition_down(
    replicas: int, unavailable: int, step: int, data: st.DataObject
) -> None:
    """With every group ready, the partition moves down by `step` (never stalls)."""
    current = data.draw(st.integers(1, replicas))
    states = [READY_OLD] * current + [READY_NEW] * (replicas - current)
    assert partition(states, replicas, step, current) == max(0, current - step)
