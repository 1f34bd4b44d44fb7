"""The pod webhook's mutation: identity labels, placement terms, env vars."""

from __future__ import annotations

from typing import Any

import pytest

from rbg.leaderworker import labels, pods
from rbg.runtime.webhook import patch_between

P = labels.PREFIX


def pod(name: str, leader: bool = True, **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {P + "name": "test"}, "annotations": {P + "size": "4"}}
    if not leader:
        meta["labels"][P + "group-index"] = "1"
        meta["labels"][P + "group-key"] = "k"
        meta["annotations"][P + "leader-name"] = "test-1"
    else:
        meta["labels"][P + "worker-index"] = "0"
    meta["annotations"].update({P + k.replace("_", "-"): v for k, v in annotations.items()})
    return {
        "metadata": meta,
        "spec": {
            "subdomain": "test",
            "containers": [{"name": "a", "env": [{"name": "LWS_GROUP_SIZE", "value": "9"}, {"name": "X"}]}],
            "initContainers": [{"name": "i"}],
        },
    }


def test_leader_gets_its_group_index_key_and_env_first() -> None:
    out = pods.mutate(pod("test-1"), "ns")
    lab = out["metadata"]["labels"]
    assert (lab[P + "group-index"], lab[P + "worker-index"]) == ("1", "0")
    # upstream's key: sha1("<namespace>/<leader pod name>") in hex, here of "ns/test-1" (computed apart)
    assert lab[P + "group-key"] == "ca58dadfec2e6f3d620ff035ef0548d0a0fec978"
    for c in out["spec"]["containers"] + out["spec"]["initContainers"]:
        assert [e["name"] for e in c["env"][:3]] == [
            "LWS_LEADER_ADDRESS",
            "LWS_GROUP_SIZE",
            "LWS_WORKER_INDEX",
        ]
        assert c["env"][0]["value"] == "test-1.test.ns"
        assert c["env"][1]["value"] == "4"  # the user's LWS_GROUP_SIZE=9 is overridden, not duplicated
        assert [e["name"] for e in c["env"]].count("LWS_GROUP_SIZE") == 1
    assert "affinity" not in out["spec"]  # no placement, no terms


def test_worker_gets_its_index_from_its_name() -> None:
    out = pods.mutate(pod("test-1-3", leader=False), "ns")
    assert out["metadata"]["labels"][P + "worker-index"] == "3"
    env = out["spec"]["containers"][0]["env"]
    assert (env[0]["value"], env[2]["value"]) == ("test-1.test.ns", "3")


def test_exclusive_leader_terms_select_its_own_group_key_and_are_not_added_twice() -> None:
    out = pods.mutate(pod("test-1", exclusive_topology="kubernetes.io/hostname"), "ns")
    key = out["metadata"]["labels"][P + "group-key"]
    aff = out["spec"]["affinity"]
    (term,) = aff["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchExpressions"] == [
        {"key": P + "group-key", "operator": "In", "values": [key]}
    ]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    (anti,) = aff["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert [e["operator"] for e in anti["labelSelector"]["matchExpressions"]] == ["Exists", "NotIn"]
    again = pods.mutate(out, "ns")
    assert again["spec"]["affinity"] == aff


def test_colocated_leader_gets_affinity_only_and_user_terms_are_kept() -> None:
    p = pod("test-0", colocated_topology="rack")
    user = {"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": "zone"}
    p["spec"]["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [user]}}
    out = pods.mutate(p, "ns")
    terms = out["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0] == user
    assert terms[1]["topologyKey"] == "rack"
    assert "podAntiAffinity" not in out["spec"]["affinity"]


def test_workers_get_no_group_terms() -> None:
    out = pods.mutate(pod("test-1-2", leader=False, exclusive_topology="kubernetes.io/hostname"), "ns")
    assert "affinity" not in out["spec"]


@pytest.mark.parametrize(
    ("size", "sgs", "excluded", "expected"),
    [
        (4, 2, False, [0, 0, 1, 1]),
        (5, 2, False, [0, 0, 0, 1, 1]),
        (5, 2, True, [None, 0, 0, 1, 1]),
        (4, 1, False, [0, 1, 2, 3]),
    ],
)
def test_subgroup_numbering(size: int, sgs: int, excluded: bool, expected: list[int | None]) -> None:
    assert [pods.subgroup_index(size, sgs, w, excluded) for w in range(size)] == expected


def test_subgroup_exclusive_terms_on_every_pod_of_a_subgroup() -> None:
    out = pods.mutate(
        pod("test-1-3", leader=False, subgroup_size="2", subgroup_exclusive_topology="rack"), "ns"
    )
    lab = out["metadata"]["labels"]
    assert lab[P + "subgroup-index"] == "1"
    # upstream's key: sha1("<leader pod name>/<subgroup index>") in hex, here of "test-1/1"
    assert lab[P + "subgroup-key"] == "6fa5c1d471220852817373612b3482a8c03122f8"
    (term,) = out["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchExpressions"][0]["key"] == P + "subgroup-key"


def test_unique_per_replica_leader_gets_its_own_subdomain() -> None:
    out = pods.mutate(pod("test-2", subdomainPolicy="UniquePerReplica"), "ns")
    assert out["spec"]["subdomain"] == "test-2"
    assert out["spec"]["containers"][0]["env"][0]["value"] == "test-2.test-2.ns"


def test_a_pod_that_is_not_a_statefulset_pod_is_left_alone() -> None:
    p = {"metadata": {"name": "loose", "labels": {P + "name": "x"}}, "spec": {"containers": [{"name": "c"}]}}
    assert pods.mutate(p, "ns") == p
    assert patch_between(p, pods.mutate(p, "ns")) == []


def test_json_patch_replays_the_mutation() -> None:
    before = pod("test-1", exclusive_topology="h")
    after = pods.mutate(before, "ns")
    ops = patch_between(before, after)
    replay: dict[str, Any] = {"metadata": dict(before["metadata"]), "spec": dict(before["spec"])}
    for op in ops:
        section, field = op["path"].strip("/").split("/")
        replay[section][field.replace("~1", "/").replace("~0", "~")] = op["value"]
    assert replay == after
