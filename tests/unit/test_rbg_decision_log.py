"""What the group's reconcile writes to its debug log: one key-value record per decision."""

from __future__ import annotations

from typing import Any

from rbg.controllers.decisions import changes


def sts(replicas: int, partition: int, revision: str, instances: str = "3") -> dict[str, Any]:
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "g-prefill", "annotations": {"rbg.workloads.x-k8s.io/instances": instances}},
        "spec": {
            "replicas": replicas,
            "updateStrategy": {"rollingUpdate": {"partition": partition}},
            "template": {"metadata": {"labels": {"rbg.workloads.x-k8s.io/role-revision": revision}}},
        },
    }


def test_a_moved_partition_and_a_new_template_are_recorded_with_before_and_after() -> None:
    assert changes(sts(3, 0, "a"), sts(4, 2, "b")) == (
        "workload changed",
        {
            "workload": "StatefulSet/g-prefill",
            "replicas": "3 -> 4",
            "partition": "0 -> 2",
            "template": "a -> b",
        },
    )
    assert changes(sts(3, 0, "a"), sts(3, 0, "a")) is None  # a refresh decides nothing
    assert changes(None, sts(3, 0, "a")) == (
        "workload created",
        {"workload": "StatefulSet/g-prefill", "replicas": 3},
    )


def test_a_new_revision_is_recorded_once_and_services_not_at_all() -> None:
    rev = {"kind": "ControllerRevision", "metadata": {"name": "g-abc-2"}}
    assert changes(None, rev) == ("revision created", {"revision": "g-abc-2"})
    assert changes(rev, rev) is None
    assert changes(None, {"kind": "Service", "metadata": {"name": "s"}}) is None
