"""Ratio placement under change, on the real control plane: a node lost or drained under a bound batch,
a coordination added to a running group and its ratios changed, a released batch the scheduler refuses."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.core_v1 import Event, Node, Pod
from test_coordination import BATCH, HOST, RACK, batches_by_domain, pd_group, pool  # noqa: F401 - fixture
from tests_rbg_helpers import RBG, wait_rbg_ready

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")


def in_pool(doc: dict[str, Any], tag: str) -> dict[str, Any]:
    for role in doc["spec"]["roles"]:
        role["template"]["spec"]["nodeSelector"] = {"pool": tag}
    return doc


def apply(kubectl: Any, namespace: str, doc: dict[str, Any]) -> None:
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode == 0, r.stderr


def coordination(kube: Client, name: str, namespace: str) -> dict[str, Any]:
    status = kube.get(RBG, name, namespace=namespace).to_dict().get("status") or {}
    return (status.get("coordinationStatus") or [{}])[0]


def whole_and_bound(kube: Client, name: str, namespace: str, batches: int) -> tuple[bool, Any]:
    """Every pod of the group bound, each batch on one node, the coordination Completed."""
    pods = list(kube.list(Pod, namespace=namespace, labels={"rbg.workloads.x-k8s.io/group-name": name}))
    live = [p for p in pods if not p.metadata.deletionTimestamp]
    placed = batches_by_domain(kube, namespace, HOST)
    done = (
        all(p.spec.nodeName for p in live)
        and sorted(placed) == [str(k) for k in range(batches)]
        and all(len(nodes) == 1 for nodes in placed.values())
        and coordination(kube, name, namespace).get("phase") == "Completed"
    )
    return done, (
        placed,
        coordination(kube, name, namespace),
        [(p.metadata.name, p.spec.nodeName) for p in live],
    )


def node_of_batch(kube: Client, namespace: str, batch: str) -> str:
    (node,) = batches_by_domain(kube, namespace, HOST)[batch]
    return node


def test_a_deleted_node_under_a_bound_batch_moves_the_batch_whole(
    kube: Client,
    namespace: str,
    kubectl: Any,
    pool: Any,  # noqa: F811
) -> None:
    tag, add = pool
    add(3, 3)
    apply(kubectl, namespace, in_pool(pd_group("lost", 4, 2), tag))
    wait_rbg_ready(kube, "lost", namespace)
    dead = node_of_batch(kube, namespace, "0")
    kube.delete(Node, dead)
    # the pod GC removes the pods of the lost node; the batch comes back whole on the free node
    placed, _status, _pods = wait_until(
        lambda: whole_and_bound(kube, "lost", namespace, 2), 180, "batch 0 moved"
    )
    assert dead not in placed["0"]
    assert placed["0"] != placed["1"]


def test_a_drain_under_a_pod_disruption_budget_finishes_and_the_batch_lands_whole_elsewhere(
    kube: Client,
    namespace: str,
    kubectl: Any,
    pool: Any,  # noqa: F811
) -> None:
    tag, add = pool
    add(3, 3)
    apply(kubectl, namespace, in_pool(pd_group("drained", 4, 2), tag))
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "drained"},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"rbg.workloads.x-k8s.io/group-name": "drained"}},
        },
    }
    apply(kubectl, namespace, pdb)
    wait_rbg_ready(kube, "drained", namespace)
    node = node_of_batch(kube, namespace, "0")
    # one eviction at a time: the first evicted member is recreated gated and its node is cordoned, so
    # its batch moves whole (the rest replaced) instead of pinning it where it can never run
    r = kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=55s")
    assert r.returncode == 0, (r.stdout, r.stderr)
    placed, _status, _pods = wait_until(lambda: whole_and_bound(kube, "drained", namespace, 2), 120, "moved")
    assert node not in placed["0"]
    moved = [e.message for e in kube.list(Event, namespace=namespace) if e.reason == "BatchMoved"]
    assert any(f"moves whole from {HOST}={node}" in m and "cordoned" in m for m in moved), moved


def test_a_coordination_added_to_a_running_group_and_its_ratio_changed_converge(
    kube: Client,
    namespace: str,
    kubectl: Any,
    pool: Any,  # noqa: F811
) -> None:
    tag, add = pool
    add(5, 3)
    doc = in_pool(pd_group("live", 4, 2), tag)
    coordination_spec = doc["spec"].pop("coordination")
    apply(kubectl, namespace, doc)
    wait_rbg_ready(kube, "live", namespace)
    # added to the running group: the StatefulSets roll, each batch's old pods are replaced together
    doc["spec"]["coordination"] = coordination_spec
    apply(kubectl, namespace, doc)
    wait_until(
        lambda: whole_and_bound(kube, "live", namespace, 2), 180, "coordination added: 2 batches whole"
    )
    wait_rbg_ready(kube, "live", namespace, timeout=60)
    # 2 : 1 -> 1 : 1 with decode 2 -> 4: re-batched the same way, four batches of one prefill and one decode
    doc["spec"]["coordination"][0]["strategy"]["affinityScheduling"]["ratios"] = {"prefill": 1, "decode": 1}
    doc["spec"]["roles"][1]["replicas"] = 4
    apply(kubectl, namespace, doc)
    placed, _status, pods = wait_until(
        lambda: whole_and_bound(kube, "live", namespace, 4), 240, "ratio changed: 4 batches whole"
    )
    assert len(set().union(*placed.values())) == 4
    for name, _node in pods:
        pod = kube.get(Pod, name, namespace=namespace)
        assert pod.metadata.labels[BATCH] == name.rsplit("-", 1)[1]  # batch k = ordinal // 1
    wait_rbg_ready(kube, "live", namespace, timeout=60)


def test_a_released_batch_the_scheduler_refuses_turns_stuck_with_its_reason_then_binds_when_room_appears(
    kube: Client,
    namespace: str,
    kubectl: Any,
    pool: Any,  # noqa: F811
) -> None:
    tag, add = pool
    (only,) = add(1, 3)
    # a pod the planner does not see as a conflict: it holds the host port the decode pod asks for
    blocker = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "blocker"},
        "spec": {
            "nodeSelector": {"pool": tag},
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 9000, "hostPort": 9000}]}],
        },
    }
    apply(kubectl, namespace, blocker)
    wait_until(
        lambda: (bool(kube.get(Pod, "blocker", namespace=namespace).spec.nodeName), None), 60, "blocker"
    )
    doc = in_pool(pd_group("ports", 2, 1, batchTimeoutSeconds=3), tag)
    doc["spec"]["roles"][1]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 9000, "hostPort": 9000}
    ]
    apply(kubectl, namespace, doc)

    def stuck() -> tuple[bool, Any]:
        st = coordination(kube, "ports", namespace)
        return st.get("phase") == "Stuck", st

    status = wait_until(stuck, 90, "batch 0 Stuck with the scheduler's reason")
    assert status["batches"][0]["domain"] == only
    assert "ports-decode-0 is not scheduled in" in status["message"]
    assert "free ports" in status["message"]  # the scheduler's own words
    events = [e.message for e in kube.list(Event, namespace=namespace) if e.reason == "BatchStuck"]
    assert any("is not bound in" in m for m in events), events
    kube.delete(Pod, "blocker", namespace=namespace, grace_period=0)
    wait_until(lambda: whole_and_bound(kube, "ports", namespace, 1), 120, "bound once the port is free")


def test_inside_a_rack_each_pod_goes_to_its_planned_node_so_a_spread_cannot_strand_the_batch(
    kube: Client,
    namespace: str,
    kubectl: Any,
    pool: Any,  # noqa: F811
) -> None:
    # one rack of two 8-GPU nodes; a batch of 2 prefill x 4 GPUs and 1 decode x 8 GPUs fits only as
    # {decode} + {prefill, prefill}: a scheduler that spread the prefills would strand the decode pod
    tag, add = pool
    add(2, 8)
    doc = in_pool(pd_group("spread", 2, 1, key=RACK), tag)
    for role, gpus in zip(doc["spec"]["roles"], (4, 8), strict=True):
        role["template"]["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": gpus}}
    apply(kubectl, namespace, doc)
    wait_rbg_ready(kube, "spread", namespace, timeout=90)
    nodes = {p.metadata.name: p.spec.nodeName for p in kube.list(Pod, namespace=namespace)}
    assert nodes["spread-prefill-0"] == nodes["spread-prefill-1"] != nodes["spread-decode-0"]
    for name, node in nodes.items():
        selector = kube.get(Pod, name, namespace=namespace).spec.nodeSelector
        assert selector[HOST] == node  # pinned to the planned node, not only to the rack
        assert selector[RACK] == f"rack-{tag}"
