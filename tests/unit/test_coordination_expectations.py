"""Expectations: a pass sees pods as this process's own writes left them, whichever gate they carried."""

from __future__ import annotations

from rbg.coordination.expectations import as_written
from rbg.coordination.resources import GATE, HOSTNAME, LWS_GATE


def pod(uid: str, gate: str | None) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": uid, "uid": uid},
        "spec": {"schedulingGates": [{"name": gate}] if gate else [], "nodeSelector": {"pool": "p"}},
    }


def test_a_release_the_cache_does_not_show_yet_is_seen_released_for_both_gates() -> None:
    released = {"m": ("rack", "r1", "n1"), "l": (HOSTNAME, "n2", "n2")}
    seen, caught_up = as_written([pod("m", GATE), pod("l", LWS_GATE), pod("x", GATE)], released, set())
    by_uid = {p["metadata"]["uid"]: p["spec"] for p in seen}
    assert by_uid["m"] == {"schedulingGates": [], "nodeSelector": {"pool": "p", "rack": "r1", HOSTNAME: "n1"}}
    assert by_uid["l"] == {"schedulingGates": [], "nodeSelector": {"pool": "p", HOSTNAME: "n2"}}
    assert by_uid["x"]["schedulingGates"] == [{"name": GATE}]  # not ours to change
    assert caught_up == set()
    _, caught_up = as_written([pod("m", None), pod("l", None)], released, set())
    assert caught_up == {"m", "l"}


def test_a_deletion_the_cache_does_not_show_yet_makes_the_pod_terminating() -> None:
    (seen,), _ = as_written([pod("d", None)], {}, {"d"})
    assert seen["metadata"]["deletionTimestamp"] == "expected"
