"""The local control plane behaves like a real cluster: KCM controllers, scheduler, kwok, GC."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import ConfigMap, Event, Node, Pod

from rbg.devcluster.topology import Topology
from rbg.devcluster.wait import wait_until

RACK = Topology().label_keys.rack


def pod(name: str, labels: dict[str, str] | None = None, gpus: int = 0, affinity: Any = None) -> Any:
    container: dict[str, Any] = {"name": "main", "image": "registry.local/engine:1"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    spec: dict[str, Any] = {"containers": [container]}
    if affinity:
        spec["affinity"] = affinity
    return codecs.from_dict(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}
    )


def running_pod(kube: Client, name: str, ns: str) -> Pod:
    def probe() -> tuple[bool, Any]:
        p = kube.get(Pod, name, namespace=ns)
        ready = any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
        return bool(p.spec.nodeName) and ready, (p.status.phase, p.spec.nodeName)

    wait_until(probe, 60, f"pod {name} scheduled and Ready")
    return kube.get(Pod, name, namespace=ns)


def test_all_default_nodes_are_ready_untainted_gpu_nodes(kube: Client, cluster: Any) -> None:
    nodes = list(kube.list(Node))
    assert len(nodes) == 16
    for n in nodes:
        assert n.status.allocatable["nvidia.com/gpu"] == "8"
        assert any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
        assert not n.spec.taints


def test_statefulset_of_three_reaches_ready(kube: Client, namespace: str) -> None:
    sts = codecs.from_dict(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "main", "image": "registry.local/engine:1"}]},
                },
            },
        }
    )
    kube.create(sts, namespace=namespace)

    def ready() -> tuple[bool, Any]:
        s = kube.get(StatefulSet, "web", namespace=namespace).status
        return (s.readyReplicas or 0) == 3, f"ready {s.readyReplicas}/{s.replicas}"

    wait_until(ready, 90, "statefulset web 3/3 ready")
    names = sorted(p.metadata.name for p in kube.list(Pod, namespace=namespace))
    assert names == ["web-0", "web-1", "web-2"]


def test_required_anti_affinity_on_hostname_spreads_over_nodes(kube: Client, namespace: str) -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "spread"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    for i in range(4):
        kube.create(pod(f"spread-{i}", {"app": "spread"}, affinity=anti), namespace=namespace)
    nodes = {running_pod(kube, f"spread-{i}", namespace).spec.nodeName for i in range(4)}
    assert len(nodes) == 4


def test_required_affinity_on_rack_lands_in_the_same_rack(kube: Client, namespace: str) -> None:
    kube.create(pod("anchor", {"app": "anchor"}), namespace=namespace)
    anchor_node = running_pod(kube, "anchor", namespace).spec.nodeName
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "anchor"}}, "topologyKey": RACK}
            ]
        }
    }
    racks = set()
    for i in range(3):
        kube.create(pod(f"follower-{i}", affinity=affinity, gpus=8), namespace=namespace)
        node = running_pod(kube, f"follower-{i}", namespace).spec.nodeName
        racks.add(kube.get(Node, node).metadata.labels[RACK])
    # 3 followers each needing a whole 8-GPU node: all in the anchor's rack, on 3 of its 4 nodes
    assert racks == {kube.get(Node, anchor_node).metadata.labels[RACK]}


def test_nine_gpus_stay_pending_with_failed_scheduling_event(kube: Client, namespace: str) -> None:
    kube.create(pod("too-big", gpus=9), namespace=namespace)

    def failed_event() -> tuple[bool, Any]:
        events = [e for e in kube.list(Event, namespace=namespace) if e.involvedObject.name == "too-big"]
        reasons = [(e.reason, e.message) for e in events]
        return any(r == "FailedScheduling" for r, _ in reasons), reasons

    reasons = wait_until(failed_event, 60, "FailedScheduling event for too-big")
    assert any("Insufficient nvidia.com/gpu" in (m or "") for _, m in reasons)
    p = kube.get(Pod, "too-big", namespace=namespace)
    assert p.status.phase == "Pending"
    assert not p.spec.nodeName


def test_deleting_an_owner_garbage_collects_dependents(kube: Client, namespace: str) -> None:
    owner = kube.create(
        codecs.from_dict({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}),
        namespace=namespace,
    )
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    for i in range(3):
        kube.create(
            codecs.from_dict(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"dep-{i}", "ownerReferences": [ref]},
                }
            ),
            namespace=namespace,
        )
    kube.delete(ConfigMap, "owner", namespace=namespace)

    def gone() -> tuple[bool, Any]:
        left = [
            c.metadata.name
            for c in kube.list(ConfigMap, namespace=namespace)
            if c.metadata.name.startswith("dep-")
        ]
        return not left, left

    wait_until(gone, 60, "dependents garbage-collected")
    with pytest.raises(ApiError) as exc:
        kube.get(ConfigMap, "dep-0", namespace=namespace)
    assert exc.value.status.code == 404


def test_coscheduling_scheduler_binds_a_gang_only_when_it_is_complete(kube: Client, namespace: str) -> None:
    from lightkube.generic_resource import create_namespaced_resource

    podgroup = create_namespaced_resource("scheduling.x-k8s.io", "v1alpha1", "PodGroup", "podgroups")
    kube.create(
        podgroup(metadata={"name": "gang"}, spec={"minMember": 3, "scheduleTimeoutSeconds": 30}),
        namespace=namespace,
    )

    def member(i: int) -> Any:
        p = pod(f"gang-{i}", {"scheduling.x-k8s.io/pod-group": "gang"}, gpus=1)
        p.spec.schedulerName = "scheduler-plugins-scheduler"
        return p

    for i in range(2):
        kube.create(member(i), namespace=namespace)

    def rejected() -> tuple[bool, Any]:
        events = [
            (e.reason, e.message)
            for e in kube.list(Event, namespace=namespace)
            if e.involvedObject.name in ("gang-0", "gang-1")
        ]
        # both members counted (the first refusal may come before the second pod exists)
        wanted = "cannot find enough sibling pods, current pods number: 2, minMember of group: 3"
        return any(r == "FailedScheduling" and wanted in (m or "") for r, m in events), events

    wait_until(rejected, 60, "the incomplete gang of 2 to be refused")
    assert all(not kube.get(Pod, f"gang-{i}", namespace=namespace).spec.nodeName for i in range(2))

    kube.create(member(2), namespace=namespace)
    for i in range(3):
        running_pod(kube, f"gang-{i}", namespace)
