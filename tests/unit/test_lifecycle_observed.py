"""The shared restart reading (rbg.lifecycle.observed.restart_of) and the two policies that use it: the
group's failure recovery (rbg.group.restart.trigger_of) and the LeaderWorkerSet restart
(rbg.leaderworker.restart.restarted)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rbg.group.restart import trigger_of
from rbg.leaderworker.restart import restarted
from rbg.lifecycle.observed import Restart, restart_of, restarts


def pod(
    phase: str = "Running",
    containers: list[tuple[str, Any]] | None = None,
    init: list[tuple[str, Any]] | None = None,
    reason: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if reason is not None:
        status["reason"] = reason
    if containers is not None:
        status["containerStatuses"] = [{"name": n, "restartCount": c} for n, c in containers]
    if init is not None:
        status["initContainerStatuses"] = [{"name": n, "restartCount": c} for n, c in init]
    meta: dict[str, Any] = {"name": "p-0", "uid": "u"}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "status": status}


def test_a_quiet_pod_has_no_restart() -> None:
    assert restart_of(pod()) is None
    assert restart_of(pod(containers=[("engine", 0)], init=[("fetch", 0)])) is None
    assert restart_of({}) is None
    assert restart_of({"status": None}) is None


def test_a_failed_pod_reads_as_failed_with_its_reason() -> None:
    assert restart_of(pod("Failed", reason="Evicted")) == Restart(failed=True, reason="Evicted")
    assert restart_of(pod("Failed", containers=[("engine", 3)])) == Restart(failed=True)


def test_the_first_restarted_container_init_containers_first() -> None:
    p = pod(containers=[("a", 0), ("engine", 2)])
    assert restart_of(p) == Restart(failed=False, container="engine", count=2)
    p = pod(containers=[("engine", 2)], init=[("fetch", 1)])
    assert restart_of(p) == Restart(failed=False, container="fetch", init=True, count=1)


def test_a_restart_count_that_is_no_whole_number_is_no_restart() -> None:
    for count in (None, True, "3", 1.5):
        assert restart_of(pod(containers=[("engine", count)])) is None
    assert restart_of({"status": {"containerStatuses": "nope"}}) is None
    assert restart_of({"status": {"containerStatuses": [None, 7]}}) is None


def test_the_group_trigger_names_the_container_or_the_failure() -> None:
    assert trigger_of(pod()) is None
    assert (
        trigger_of(pod(containers=[("engine", 1)])) == "pod p-0 container engine restarted (restartCount 1)"
    )
    assert trigger_of(pod(init=[("fetch", 2)])) == "pod p-0 init container fetch restarted (restartCount 2)"
    assert trigger_of(pod("Failed", reason="Evicted")) == "pod p-0 failed (phase Failed, reason Evicted)"
    assert trigger_of(pod("Failed")) == "pod p-0 failed (phase Failed)"
    # a restart counts whatever the phase (deletion is decide's business)
    assert trigger_of(pod("Succeeded", containers=[("engine", 1)])) is not None
    assert trigger_of(pod(containers=[("engine", 1)], deleting=True)) is not None


def test_the_lws_restart_counts_a_deleted_pod_and_restarts_while_pending_or_running_only() -> None:
    assert restarted(pod(deleting=True))
    assert restarted(pod("Failed", deleting=True))
    assert restarted(pod(containers=[("engine", 1)]))
    assert restarted(pod("Pending", init=[("fetch", 1)]))
    assert not restarted(pod())
    assert not restarted(pod("Failed", reason="Evicted"))  # a failed pod is no restart to upstream
    assert not restarted(pod("Succeeded", containers=[("engine", 1)]))
    assert not restarted(pod("Unknown", containers=[("engine", 1)]))


counts = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5)), max_size=3)


@given(st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]), counts, counts)
def test_a_restart_is_read_exactly_when_a_container_restarted_or_the_pod_failed(
    phase: str, containers: list[tuple[str, int]], init: list[tuple[str, int]]
) -> None:
    p = pod(phase, containers, init)
    r = restart_of(p)
    assert (r is not None) == (phase == "Failed" or restarts(p) > 0)
    assert (trigger_of(p) is not None) == (r is not None)
    assert restarted(p) == (phase in ("Pending", "Running") and restarts(p) > 0)
