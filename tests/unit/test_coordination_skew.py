"""Coordinated scaling and rolling update arithmetic: upstream's scaler cases in exact numbers, the
partition and maxUnavailable shares, and the rolling maxSkew bound against simulated rollouts in every
order (small cases enumerated, the rest drawn by hypothesis) with oracles that never call the module."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rbg.coordination.skew import (
    ScalingRole,
    UpdateLimits,
    UpdateRole,
    max_unavailable_replicas,
    merge_limits,
    merge_targets,
    parse_percent,
    partition_replicas,
    rolling_limits,
    scaling_targets,
)


def sr(
    name: str, desired: int, current: int, scheduled: int | None = None, ready: int | None = None
) -> ScalingRole:
    scheduled = current if scheduled is None else scheduled
    return ScalingRole(name, desired, current, scheduled, current if ready is None else ready)


# -- scaling: upstream's cases ----------------------------------------------------------------------


def test_the_first_step_is_max_skew_of_each_role_exactly() -> None:
    # ceil(0.05 * 300) is 15 in rationals; a float 0.05 * 300 rounds up to 16 with a naive ceil
    assert scaling_targets([sr("prefill", 300, 0), sr("decode", 100, 0)], "5%", None) == {
        "prefill": 15,
        "decode": 5,
    }
    assert scaling_targets([sr("prefill", 300, 0), sr("decode", 100, 0)], 5, "OrderScheduled") == {
        "prefill": 15,
        "decode": 5,
    }


def test_the_next_step_starts_once_the_current_pods_are_scheduled() -> None:
    done = [sr("prefill", 300, 15), sr("decode", 100, 5)]
    assert scaling_targets(done, "5%", "OrderScheduled") == {"prefill": 30, "decode": 10}
    waiting = [sr("prefill", 300, 15), sr("decode", 100, 5, scheduled=3)]
    assert scaling_targets(waiting, "5%", "OrderScheduled") == {"prefill": 15, "decode": 5}


def test_order_ready_waits_for_ready_pods_not_scheduled_ones() -> None:
    not_ready = [sr("prefill", 300, 15, ready=10), sr("decode", 100, 5)]
    assert scaling_targets(not_ready, "5%", "OrderReady") == {"prefill": 15, "decode": 5}
    assert scaling_targets(not_ready, "5%", "OrderScheduled") == {"prefill": 30, "decode": 10}
    assert scaling_targets([sr("prefill", 300, 15), sr("decode", 100, 5)], "5%", "OrderReady") == {
        "prefill": 30,
        "decode": 10,
    }


def test_no_progression_never_gates() -> None:
    nothing_yet = [sr("prefill", 300, 15, 0, 0), sr("decode", 100, 5, 0, 0)]
    assert scaling_targets(nothing_yet, "5%", None) == {"prefill": 30, "decode": 10}


def test_a_role_ahead_holds_while_the_slowest_catches_up() -> None:
    assert scaling_targets([sr("prefill", 300, 15), sr("decode", 100, 0)], "5%", "OrderScheduled") == {
        "prefill": 15,
        "decode": 5,
    }
    three = [sr("prefill", 200, 20), sr("decode", 100, 0), sr("router", 50, 5)]
    assert scaling_targets(three, "10%", None) == {"prefill": 20, "decode": 10, "router": 5}


def test_many_roles_round_up_and_follow_the_slowest() -> None:
    four = [sr("prefill", 300, 0), sr("decode", 100, 0), sr("router", 10, 0), sr("worker", 50, 0)]
    assert scaling_targets(four, "5%", None) == {"prefill": 15, "decode": 5, "router": 1, "worker": 3}
    five = [
        sr("prefill", 500, 50),
        sr("decode", 200, 20),
        sr("router", 20, 1),
        sr("worker", 100, 8),
        sr("monitor", 10, 1),
    ]
    assert scaling_targets(five, "8%", None) == {
        "prefill": 65,
        "decode": 26,
        "router": 3,
        "worker": 13,
        "monitor": 2,
    }


def test_exact_arithmetic_where_upstreams_floats_add_a_pod() -> None:
    # upstream's tests expect 151/16, 286 and 56: 0.05 + 0.1 and 0.9 + 0.05 are a hair above in floats
    uneven = [sr("large", 1000, 100), sr("medium", 100, 5), sr("small", 10, 1)]
    assert scaling_targets(uneven, "10%", None) == {"large": 150, "medium": 15, "small": 2}
    near = [sr("prefill", 300, 285), sr("decode", 100, 90)]
    assert scaling_targets(near, "5%", None) == {"prefill": 285, "decode": 95}
    assert scaling_targets([sr("prefill", 0, 0), sr("decode", 100, 50)], "5%", None) == {
        "prefill": 0,
        "decode": 55,
    }


def test_the_guides_walkthrough_prefill_5_decode_10_at_10_percent() -> None:
    assert scaling_targets([sr("prefill", 5, 0), sr("decode", 10, 0)], "10%", None) == {
        "prefill": 1,
        "decode": 1,
    }
    assert scaling_targets([sr("prefill", 5, 1), sr("decode", 10, 1)], "10%", None) == {
        "prefill": 1,
        "decode": 2,
    }
    assert scaling_targets([sr("prefill", 5, 1), sr("decode", 10, 2)], "10%", None) == {
        "prefill": 2,
        "decode": 3,
    }


def test_scale_down_is_never_held_back() -> None:
    assert scaling_targets([sr("prefill", 0, 5), sr("decode", 100, 10)], "10%", None) == {
        "prefill": 0,
        "decode": 20,
    }
    gated = [sr("prefill", 2, 5), sr("decode", 10, 3, scheduled=1)]
    assert scaling_targets(gated, "10%", "OrderScheduled") == {"prefill": 2, "decode": 3}
    assert scaling_targets([sr("prefill", 0, 0), sr("decode", 0, 0)], "5%", None) == {
        "prefill": 0,
        "decode": 0,
    }


def test_zero_skew_still_moves_the_least_advanced_roles() -> None:
    assert scaling_targets([sr("a", 2, 0), sr("b", 4, 0)], "0%", None) == {"a": 1, "b": 1}
    assert scaling_targets([sr("a", 2, 1), sr("b", 4, 1)], "0%", None) == {"a": 1, "b": 2}


def test_no_max_skew_means_every_role_goes_to_desired() -> None:
    assert scaling_targets([sr("prefill", 300, 0), sr("decode", 100, 7)], None, None) == {
        "prefill": 300,
        "decode": 100,
    }


def test_several_coordinations_take_the_smallest_target() -> None:
    assert merge_targets([{"a": 5, "b": 3}, {"a": 4, "c": 7}, {}]) == {"a": 4, "b": 3, "c": 7}
    assert merge_targets([]) == {}


def test_malformed_settings_are_refused() -> None:
    for bad in ("5", "101%", "05%", "-5%", "5.5%", " 5%"):
        with pytest.raises(ValueError, match="percentage"):
            parse_percent(bad)
    for bad_int in (-1, 101, True):
        with pytest.raises(ValueError, match="percentage"):
            parse_percent(bad_int)
    assert parse_percent(34) == parse_percent("34%") == Fraction(34, 100)
    with pytest.raises(ValueError, match="progression"):
        scaling_targets([sr("a", 1, 0)], "5%", "OrderBound")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=4),
    st.integers(0, 100),
)
def test_writing_the_targets_each_pass_reaches_desired(sizes: list[tuple[int, int]], skew: int) -> None:
    current = {f"r{i}": c for i, (_, c) in enumerate(sizes)}
    desired = {f"r{i}": d for i, (d, _) in enumerate(sizes)}
    for _ in range(sum(desired.values()) + 2):
        roles = [sr(n, desired[n], current[n]) for n in current]
        targets = scaling_targets(roles, skew, "OrderReady")
        for n, t in targets.items():
            assert min(current[n], desired[n]) <= t <= max(current[n], desired[n])
        current = targets
    assert current == desired


# -- rolling update: shares -------------------------------------------------------------------------


def test_partition_shares_round_up_but_leave_one_pod_to_update() -> None:
    assert partition_replicas("20%", 5) == 1
    assert partition_replicas("100%", 5) == 5
    assert partition_replicas("99%", 5) == 4
    assert partition_replicas("0%", 5) == 0
    assert partition_replicas("50%", 7) == 4  # the guide's example
    assert partition_replicas("50%", 3) == 2
    assert partition_replicas("50%", 1) == 0
    assert partition_replicas("100%", 1) == 1
    assert partition_replicas("50%", 0) == 0


def test_max_unavailable_shares_round_down_to_at_least_one() -> None:
    assert max_unavailable_replicas("10%", 30) == 3
    assert max_unavailable_replicas("10%", 5) == 1
    assert max_unavailable_replicas("0%", 5) == 1


def r(name: str, replicas: int, updated: int = 0, partition: int = 0) -> UpdateRole:
    return UpdateRole(name, replicas, updated, partition)


def test_fewer_than_two_live_roles_leave_the_roles_own_settings() -> None:
    assert rolling_limits([r("prefill", 6)], "10%", "20%", "10%") == {}
    assert rolling_limits([r("prefill", 6), r("decode", 0)], "10%", "20%", "10%") == {}
    assert rolling_limits([], "10%", None, None) == {}


def test_without_max_skew_only_the_floors_and_max_unavailable_apply() -> None:
    limits = rolling_limits([r("prefill", 5, partition=3), r("decode", 30), r("idle", 0)], None, "20%", "10%")
    assert limits == {"prefill": UpdateLimits(3, 1), "decode": UpdateLimits(6, 3)}
    assert rolling_limits([r("a", 5, partition=9), r("b", 5)], None, None, None) == {
        "a": UpdateLimits(5, None),
        "b": UpdateLimits(0, None),
    }


def test_the_first_limits_of_6_and_3_at_34_percent() -> None:
    # decode may take 1 (1/3 <= 0.34), prefill 2 (2/6 <= 0.34, 3/6 is not)
    limits = rolling_limits([r("prefill", 6), r("decode", 3)], "34%", None, None)
    assert limits == {"prefill": UpdateLimits(4, None), "decode": UpdateLimits(2, None)}
    assert rolling_limits([r("prefill", 6), r("decode", 3)], 34, None, None) == limits


def test_one_replica_roles_are_not_stalled_upstream_307() -> None:
    # 10% of one pod is less than a pod: upstream wrote partition 1 forever; here the least role moves
    u = {"prefill": 0, "decode": 0}
    assert rolling_limits([r(n, 1, u[n]) for n in u], "10%", None, None) == {
        "prefill": UpdateLimits(0, None),
        "decode": UpdateLimits(0, None),
    }
    u["decode"] = 1
    assert rolling_limits([r(n, 1, u[n]) for n in u], "10%", None, None) == {
        "prefill": UpdateLimits(0, None),
        "decode": UpdateLimits(0, None),
    }
    u["prefill"] = 1
    assert rolling_limits([r(n, 1, u[n]) for n in u], "10%", None, None)["prefill"] == UpdateLimits(0, None)


def test_a_role_that_is_done_or_held_by_its_partition_does_not_hold_the_others() -> None:
    # prefill at 4/6: behind an unfinished decode at 1/3 it waits, beside a done decode it may finish
    assert rolling_limits([r("prefill", 6, 4), r("decode", 3, 1)], "34%", None, None)["prefill"] == (
        UpdateLimits(2, None)
    )
    assert rolling_limits([r("prefill", 6, 4), r("decode", 3, 3)], "34%", None, None)["prefill"] == (
        UpdateLimits(0, None)
    )
    # prefill paused by its own partition at 1 of 6 updated: decode is paced by its own progress (1/3 +
    # 34% allows 2 of 3), not by prefill's 1/6 (which would allow 1)
    held = rolling_limits([r("prefill", 6, updated=1, partition=5), r("decode", 3, 1)], "34%", None, None)
    assert held == {"prefill": UpdateLimits(5, None), "decode": UpdateLimits(1, None)}


def test_the_partition_floor_wins_over_the_skew_target() -> None:
    limits = rolling_limits([r("prefill", 10, 0, partition=2), r("decode", 10)], "100%", "50%", None)
    assert limits == {"prefill": UpdateLimits(5, None), "decode": UpdateLimits(5, None)}
    limits = rolling_limits([r("prefill", 10, 0, partition=7), r("decode", 10)], "100%", "50%", None)
    assert limits["prefill"] == UpdateLimits(7, None)


def test_several_coordinations_take_the_largest_partition_and_smallest_max_unavailable() -> None:
    merged = merge_limits(
        [
            {"a": UpdateLimits(3, None), "b": UpdateLimits(1, 4)},
            {"a": UpdateLimits(2, 2), "b": UpdateLimits(5, 6), "c": UpdateLimits(0, None)},
        ]
    )
    assert merged == {"a": UpdateLimits(3, 2), "b": UpdateLimits(5, 4), "c": UpdateLimits(0, None)}
    assert merge_limits([]) == {}


def test_a_malformed_max_skew_is_refused() -> None:
    with pytest.raises(ValueError, match="percentage"):
        rolling_limits([r("a", 2), r("b", 2)], "1", None, None)


# -- rolling update: every order of a small rollout -------------------------------------------------

P, D, SKEW = 6, 3, Fraction(34, 100)


def limits_6_3(up: int, ud: int) -> tuple[int, int]:
    got = rolling_limits([r("prefill", P, up), r("decode", D, ud)], "34%", None, None)
    return got["prefill"].partition, got["decode"].partition


def test_every_order_of_the_6_and_3_rollout_stays_within_34_percent_and_finishes() -> None:
    finished: list[int] = []

    def walk(up: int, ud: int, steps: int) -> None:
        assert abs(Fraction(up, P) - Fraction(ud, D)) <= SKEW
        if (up, ud) == (P, D):
            finished.append(steps)
            return
        pp, pd = limits_6_3(up, ud)
        moves = [(up + 1, ud)] * (up < P - pp) + [(up, ud + 1)] * (ud < D - pd)
        assert moves, f"stalled at {up}/{P}, {ud}/{D}"
        for nxt in moves:
            walk(*nxt, steps + 1)

    walk(0, 0, 0)
    assert len(finished) > 1
    assert set(finished) == {P + D}


def test_the_6_and_3_rollout_stays_within_34_percent_when_reconciles_lag() -> None:
    # any number of pods may be updated under partitions written at an earlier state
    start = (0, 0, P, D)  # nothing written yet: partitions as high as the replicas
    seen, todo = {start}, [start]
    while todo:
        up, ud, pp, pd = todo.pop()
        assert abs(Fraction(up, P) - Fraction(ud, D)) <= SKEW
        fresh = limits_6_3(up, ud)
        assert fresh[0] <= pp  # partitions only go down
        assert fresh[1] <= pd
        if (up, ud) != (P, D):
            assert up < P - fresh[0] or ud < D - fresh[1]
        nexts = [(up, ud, *fresh)]
        if up < P - pp:
            nexts.append((up + 1, ud, pp, pd))
        if ud < D - pd:
            nexts.append((up, ud + 1, pp, pd))
        for n in nexts:
            if n not in seen:
                seen.add(n)
                todo.append(n)
    assert (P, D, 0, 0) in seen


# -- rolling update: the bound, drawn by hypothesis -------------------------------------------------


def oracle_floor(replicas: int, own: int, percent: int | None) -> int:
    """The partition floor by the rules as written: the percentage rounded up, one pod below all of
    them unless it is 100, and never under the role's own partition."""
    share = 0
    if percent is not None:
        share = -(-percent * replicas // 100)
        if share == replicas and percent != 100:
            share = replicas - 1
    return max(min(own, replicas), share)


role_spec = st.tuples(st.integers(1, 12), st.just(0) | st.integers(0, 12))  # replicas, own partition


@settings(max_examples=400, deadline=None)
@given(
    st.lists(role_spec, min_size=2, max_size=4),
    st.integers(0, 100) | st.none(),
    st.integers(0, 100) | st.none(),
    st.data(),
)
def test_rollouts_in_any_order_stay_within_the_bound_finish_and_only_lower_partitions(
    specs: list[tuple[int, int]], skew_pct: int | None, partition_pct: int | None, data: st.DataObject
) -> None:
    names = [f"r{i}" for i in range(len(specs))]
    n = {name: spec[0] for name, spec in zip(names, specs, strict=True)}
    own = {name: spec[1] for name, spec in zip(names, specs, strict=True)}
    cap = {x: n[x] - oracle_floor(n[x], own[x], partition_pct) for x in names}
    s = Fraction(1) if skew_pct is None else Fraction(skew_pct, 100)
    b = max(s, Fraction(1, min(n.values())))
    u = dict.fromkeys(names, 0)

    def frac(x: str) -> Fraction:
        return Fraction(u[x], n[x])

    pct = None if partition_pct is None else f"{partition_pct}%"
    skew = None if skew_pct is None else f"{skew_pct}%"

    written: dict[str, int] | None = None
    stuck_seen = False
    allowed_at: dict[str, int] = {}
    for _ in range(sum(n.values()) + 1):
        unfinished = [x for x in names if u[x] < cap[x]]
        # (a) nobody is more than the bound ahead of an unfinished role: s until the bound was ever too
        # fine for a single pod, max(s, 1/n_min) always
        for j in unfinished:
            for a in names:
                assert frac(a) - frac(j) <= (b if stuck_seen else s)
        if not unfinished:
            break
        if written is None or data.draw(st.booleans()) or all(u[x] >= n[x] - written[x] for x in names):
            limits = rolling_limits([UpdateRole(x, n[x], u[x], own[x]) for x in names], skew, pct, None)
            fresh = {x: limits[x].partition for x in names}
            if written is not None:  # (c)
                assert all(fresh[x] <= written[x] for x in names)
            assert all(fresh[x] >= n[x] - cap[x] for x in names)
            written = fresh
            low = min(frac(x) for x in unfinished)
            within = [x for x in unfinished if Fraction(u[x] + 1, n[x]) <= low + s]
            allowed_at = {x: n[x] - fresh[x] for x in names}
            if within or skew_pct is None:
                # nothing may go past the bound
                assert all(allowed_at[x] <= u[x] or Fraction(allowed_at[x], n[x]) <= low + s for x in names)
            else:
                # the bound is finer than one pod: the least roles, and only they, get exactly one more
                stuck_seen = True
                assert s * min(n.values()) < 1
                least = {x for x in unfinished if frac(x) == low}
                assert {x for x in names if allowed_at[x] > u[x]} == least
                assert all(allowed_at[x] == u[x] + 1 for x in least)
        movable = [x for x in names if u[x] < n[x] - written[x]]
        assert movable, f"stalled at {u} with partitions {written}"  # (b)
        u[data.draw(st.sampled_from(movable))] += 1
    assert u == cap  # (b): done, each role at replicas - floor, within sum(replicas) pod updates
    final = rolling_limits([UpdateRole(x, n[x], u[x], own[x]) for x in names], skew, pct, None)
    assert {x: final[x].partition for x in names} == {x: n[x] - cap[x] for x in names}
