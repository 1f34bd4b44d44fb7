"""Group restart decisions (restartPolicy) and their guards."""

from __future__ import annotations

from typing import Any

from lwsdata import lws

from rbg.leaderworker import labels
from rbg.leaderworker.restart import GonePod, recreate
from rbg.leaderworker.status import Group


def obj(
    name: str, uid: str, owner: str, rev: str = "r1", phase: str = "Running", restarts: int = 0
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": uid,
            "labels": {labels.REVISION: rev},
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
        "status": {"phase": phase, "containerStatuses": [{"restartCount": restarts}]},
    }


def group(
    worker_restarts: int = 0, worker_owner: str = "wsts", worker_rev: str = "r1", phase: str = "Running"
) -> Group:
    leader = obj("test-0", "L", "leader-sts")
    workers = obj("test-0", "wsts", "L")
    pods = [
        obj("test-0-1", "w1", worker_owner, worker_rev, phase, worker_restarts),
        obj("test-0-2", "w2", "wsts"),
    ]
    return Group(0, leader, workers, pods)


def test_a_restarted_worker_recreates_the_group() -> None:
    ((leader, msg),) = recreate(lws(), [group(worker_restarts=1)], [])
    assert leader["metadata"]["uid"] == "L"
    assert msg == "Worker pod test-0-1 failed, deleted leader pod test-0 to recreate group 0"


def test_policy_none_never_recreates() -> None:
    assert recreate(lws(restartPolicy="None"), [group(worker_restarts=1)], []) == []
    assert recreate(lws(restartPolicy="Default"), [group(worker_restarts=1)], []) == []


def test_a_stale_or_old_revision_worker_does_not_recreate() -> None:
    assert recreate(lws(), [group(worker_restarts=1, worker_owner="old-sts")], []) == []
    assert recreate(lws(), [group(worker_restarts=1, worker_rev="r0")], []) == []


def test_a_deleted_worker_seen_only_as_gone_recreates() -> None:
    gone = [GonePod("test-0-1", 0, "wsts", "r1", leader=False)]
    assert len(recreate(lws(), [group()], gone)) == 1
    stale = [GonePod("test-0-1", 0, "other", "r1", leader=False)]
    assert recreate(lws(), [group()], stale) == []


def test_after_start_waits_until_the_group_has_started() -> None:
    policy = lws(restartPolicy="RecreateGroupAfterStart")
    assert recreate(policy, [group(worker_restarts=1, phase="Pending")], []) == []
    assert len(recreate(policy, [group(worker_restarts=1)], [])) == 1
    annotated = lws(annotations={labels.AFTER_START: "true"})
    assert recreate(annotated, [group(worker_restarts=1, phase="Pending")], []) == []


def test_a_leader_already_terminating_is_left_alone() -> None:
    g = group(worker_restarts=1)
    assert g.leader is not None
    g.leader["metadata"]["deletionTimestamp"] = "now"
    assert recreate(lws(), [g], []) == []


def test_after_start_counts_a_worker_deleted_outright_and_uses_the_groups_own_size() -> None:
    policy = lws(size=5, restartPolicy="RecreateGroupAfterStart")  # the set was resized 3 -> 5
    g = group()
    g.size = 3  # this group was made with size 3
    g.worker_pods = g.worker_pods[1:]  # test-0-1 is gone from the cache
    gone = [GonePod("test-0-1", 0, "wsts", "r1", leader=False)]
    assert len(recreate(policy, [g], gone)) == 1
