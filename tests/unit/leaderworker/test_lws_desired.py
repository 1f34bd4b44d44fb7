"""Desired objects of a LeaderWorkerSet and its status."""

from __future__ import annotations

from typing import Any

from lwsdata import lws

from rbg.leaderworker import desired, labels, revision
from rbg.leaderworker import status as lws_status
from rbg.leaderworker.status import Group
from rbg.leaderworker.validation import Placement
from rbg.lifecycle.rollout import GroupState

P = labels.PREFIX


def test_leader_statefulset_selects_leaders_and_carries_the_revision() -> None:
    s = lws(
        size=3,
        leaderTemplate={"metadata": {"labels": {"role": "leader"}}, "spec": {"containers": [{"name": "l"}]}},
    )
    data = revision.revision_data(s)
    digest = revision.revision_hash(data)
    sts = desired.leader_statefulset(
        s, data, digest, Placement("Exclusive", "h"), replicas=3, partition=1, max_unavailable=0
    )
    spec = sts["spec"]
    assert spec["selector"]["matchLabels"] == {P + "name": "test", P + "worker-index": "0"}
    assert spec["updateStrategy"]["rollingUpdate"] == {"partition": 1, "maxUnavailable": 1}
    tpl = spec["template"]["metadata"]
    assert tpl["labels"] == {
        "role": "leader",
        P + "name": "test",
        P + "worker-index": "0",
        P + "template-revision-hash": digest,
    }
    assert tpl["annotations"] == {P + "size": "3", P + "exclusive-topology": "h"}
    assert spec["template"]["spec"]["containers"][0]["name"] == "l"
    assert sts["metadata"]["annotations"][P + "replicas"] == "2"


def test_the_revision_covers_the_template_and_network_config_only() -> None:
    a, b = lws(replicas=2), lws(replicas=5)
    assert revision.revision_hash(revision.revision_data(a)) == revision.revision_hash(
        revision.revision_data(b)
    )
    c = lws(size=4)
    assert revision.revision_hash(revision.revision_data(a)) != revision.revision_hash(
        revision.revision_data(c)
    )


def leader_pod(rev: str = "r1", **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "test-1",
            "uid": "L1",
            "labels": {P + "group-index": "1", P + "group-key": "gk", P + "template-revision-hash": rev},
            "annotations": annotations,
        },
    }


def test_worker_statefulset_is_owned_by_its_leader_and_built_from_the_leaders_revision() -> None:
    old = revision.revision_data(lws(size=4))  # the leader was made with size 4
    sts = desired.worker_statefulset(
        lws(size=2), leader_pod(**{P + "exclusive-topology": "h"}), old, {"h": "node-1"}
    )
    assert sts["metadata"]["ownerReferences"][0]["uid"] == "L1"
    spec = sts["spec"]
    assert (spec["replicas"], spec["ordinals"]) == (3, {"start": 1})
    assert spec["selector"]["matchLabels"] == {
        P + "name": "test",
        P + "group-index": "1",
        P + "group-key": "gk",
    }
    tpl = spec["template"]
    assert tpl["metadata"]["annotations"][P + "leader-name"] == "test-1"
    assert tpl["metadata"]["annotations"][P + "size"] == "4"
    assert tpl["metadata"]["labels"][P + "template-revision-hash"] == "r1"
    assert tpl["spec"]["nodeSelector"] == {"h": "node-1"}


def pod(ready: bool) -> dict[str, Any]:
    cond = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": {"name": "p", "labels": {}},
        "spec": {"nodeName": "n"},
        "status": {"phase": "Running", "conditions": cond},
    }


def test_status_counts_and_conditions() -> None:
    s = lws(replicas=2)
    groups = [Group(0, pod(True)), Group(1, pod(False))]
    states = [GroupState(True, True), GroupState(False, True)]
    st = lws_status.compute(s, groups, states, {"status": {"replicas": 2}}, None, None, "t")
    assert (st["replicas"], st["readyReplicas"], st["updatedReplicas"]) == (2, 1, 2)
    assert st["hpaPodSelector"] == f"{P}name=test,{P}worker-index=0"
    conds = {c["type"]: c for c in st["conditions"]}
    assert set(conds) == {"Progressing"}  # a condition appears once it is True; no update in progress
    assert (
        "with 1 groups ready of total 2 groups: group 1: leader pod test-1 is not Ready"
        in conds["Progressing"]["message"]
    )
    done = lws_status.compute(s, groups, [GroupState(True, True)] * 2, None, None, st, "t2")
    flags = {c["type"]: c["status"] for c in done["conditions"]}
    assert flags == {"Available": "True", "Progressing": "False"}


def test_status_reports_a_rolling_update() -> None:
    s = lws(replicas=2)
    groups = [Group(0, pod(True)), Group(1, pod(True))]
    st = lws_status.compute(
        s, groups, [GroupState(True, False), GroupState(False, True)], None, None, None, "t"
    )
    flags = {c["type"]: c["status"] for c in st["conditions"]}
    assert flags == {"Progressing": "True", "UpdateInProgress": "True"}


def test_no_update_in_progress_for_an_old_group_held_below_the_partition() -> None:
    s = lws(replicas=2)
    s.spec.rollout_strategy.rolling_update_configuration.partition = 1
    groups = [Group(0, pod(False)), Group(1, pod(True))]
    st = lws_status.compute(
        s, groups, [GroupState(False, False), GroupState(True, True)], None, None, None, "t"
    )
    flags = {c["type"]: c["status"] for c in st["conditions"]}
    assert "UpdateInProgress" not in flags
