"""Leader/worker groups as batches: a gated leader is released only where its whole group fits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from test_coordination_batches import node

from rbg.coordination import groups
from rbg.coordination.resources import LWS_GATE, PLANNED_WORKERS, usage
from rbg.leaderworker import labels, pods

HOST = "kubernetes.io/hostname"
Obj = dict[str, Any]


def lws(size: int = 2, gpus: int = 4) -> Obj:
    spec = {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}
    return {
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {"replicas": 3, "leaderWorkerTemplate": {"size": size, "workerTemplate": {"spec": spec}}},
    }


def leader(group: int, gpus: int = 4, exclusive: bool = True) -> Obj:
    annotation = labels.EXCLUSIVE if exclusive else labels.COLOCATED
    pod = {
        "metadata": {
            "name": f"s-{group}",
            "uid": f"u{group}",
            "labels": {labels.NAME: "s"},
            "annotations": {annotation: HOST, labels.SIZE: "2"},
        },
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]},
    }
    return pods.mutate(pod, "ns")


def test_a_placed_leader_is_created_gated() -> None:
    pod = leader(0)
    assert pod["spec"]["schedulingGates"] == [{"name": LWS_GATE}]
    assert pod["metadata"]["labels"][labels.WORKER_INDEX] == "0"
    assert pods.mutate({**pod, "metadata": {**pod["metadata"], "annotations": {}}}, "ns")["spec"][
        "schedulingGates"
    ] == [{"name": LWS_GATE}]  # idempotent: never a second gate
    plain = {"metadata": {"name": "t-0", "labels": {labels.NAME: "t"}, "annotations": {}}, "spec": {}}
    assert "schedulingGates" not in pods.mutate(plain, "ns")["spec"]  # no placement: not held


def test_a_leader_is_released_only_where_its_workers_fit_too_and_their_room_is_reserved() -> None:
    half = node("half")  # 8 GPUs, 4 in use: room for the leader alone
    nodes = [half, node("full")]
    used = {"half": {"nvidia.com/gpu": Decimal(4)}}
    leaders = [leader(0), leader(1)]
    d = groups.decide_groups(lws(), "Exclusive", HOST, leaders, leaders, nodes, used)
    assert [(p["metadata"]["name"], dom, host) for p, dom, host in d.release] == [("s-0", "full", "full")]
    assert d.plans == {"s-0": '{"nodes":["full"],"requests":{"nvidia.com/gpu":"4"}}'}
    assert d.waiting["s-1"].startswith("group 1: ")  # half cannot hold leader + worker; full is taken


def test_exclusive_keeps_out_of_domains_other_groups_use_colocated_shares() -> None:
    other = {
        "metadata": {"name": "x-0", "labels": {labels.GROUP_KEY: "other"}},
        "spec": {"nodeName": "a", "containers": []},
    }
    nodes = [node("a", 16), node("b", 8)]
    (mine,) = [leader(0)]
    d = groups.decide_groups(lws(), "Exclusive", HOST, [mine], [mine, other], nodes, usage([other], {}))
    assert [dom for _, dom, _ in d.release] == ["b"]
    col = leader(0, exclusive=False)
    d = groups.decide_groups(lws(), "Colocated", HOST, [col], [col, other], [node("a", 16), node("b", 4)], {})
    assert [dom for _, dom, _ in d.release] == ["a"]  # b cannot hold 8 GPUs; a is shared with x


def test_reserved_room_lasts_until_the_workers_exist_or_the_leader_goes() -> None:
    r = groups.Reservations()
    leader_pod = {
        "metadata": {
            "name": "s-0",
            "namespace": "ns",
            "uid": "L",
            "labels": {labels.GROUP_KEY: "k", labels.WORKER_INDEX: "0"},
            "annotations": {PLANNED_WORKERS: '{"nodes":["a","b"],"requests":{"nvidia.com/gpu":"4"}}'},
        }
    }
    r.observe(leader_pod)
    gpu4 = {"nvidia.com/gpu": Decimal(4)}
    assert r.room(0) == [("a", gpu4), ("b", gpu4)]
    worker = {
        "metadata": {
            "name": "s-0-1",
            "namespace": "ns",
            "uid": "W1",
            "labels": {labels.GROUP_KEY: "k", labels.WORKER_INDEX: "1"},
        }
    }
    r.observe(worker)
    assert r.room(0) == [("a", gpu4)]  # one worker exists: it counts for itself
    r.observe(None, worker)
    assert len(r.room(0)) == 2
    r.observe(None, leader_pod)  # the group is gone (a restart deletes the leader)
    assert r.room(0) == []
    # released by this process, not in the cache yet: expected until the cache shows it, or for a while
    r.expect("L2", "ns/k2", '{"nodes":["c"],"requests":{"nvidia.com/gpu":"8"}}', until=10)
    assert r.room(5) == [("c", {"nvidia.com/gpu": Decimal(8)})]
    assert r.room(11) == []
