"""KEP-162 placement of LeaderWorkerSet groups on the real scheduler: Exclusive and Colocated per
topology key, a group that cannot be placed reported in status, and the annotation/field rules."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType
from lws_helpers import HOST, LWS, RACK, ZONE, P, condition, create, get, lws, pods, wait_available

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")


def placement(kind: str, key: str) -> dict[str, Any]:
    return {"topologyPlacementPolicy": {"type": kind, "topologyKey": key}}


def domains(kube: Client, ns: str, name: str, key: str) -> dict[str, set[str]]:
    """group index -> the values of node label `key` its pods run on."""
    node_labels = {n.metadata.name: n.metadata.labels for n in kube.list(Node)}
    out: dict[str, set[str]] = defaultdict(set)
    for pod in pods(kube, ns, name).values():
        if pod.spec.nodeName:
            out[pod.metadata.labels[P + "group-index"]].add(node_labels[pod.spec.nodeName][key])
    return dict(out)


def test_exclusive_on_hostname_one_group_per_node_and_the_one_too_many_says_why(
    kube: Client, namespace: str
) -> None:
    doc = lws(
        "excl", replicas=3, size=4, gpus=1, node_selector={ZONE: "zone-a"}, **placement("Exclusive", HOST)
    )
    create(kube, doc, namespace)
    wait_available(kube, "excl", namespace)
    hosts = domains(kube, namespace, "excl", HOST)
    assert all(len(h) == 1 for h in hosts.values()), hosts  # each group on exactly one node
    assert len(set().union(*hosts.values())) == 3, hosts  # and no node with two groups
    # the leader's terms refer to the group-key label its group's pods carry
    terms = kube.get(Pod, "excl-0", namespace=namespace).spec.affinity
    key = kube.get(Pod, "excl-0", namespace=namespace).metadata.labels[P + "group-key"]
    aff = terms.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]
    assert aff.labelSelector.matchExpressions[0].values == [key]
    assert aff.topologyKey == HOST
    anti = terms.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]
    assert [e.operator for e in anti.labelSelector.matchExpressions] == ["Exists", "NotIn"]

    # zone-a has 8 nodes: one of 9 groups has nowhere to go; its leader waits, gated, for a domain that
    # holds its whole group (the planner's reason in the status), never binding where its workers cannot
    kube.patch(LWS, "excl", {"spec": {"replicas": 9}}, namespace=namespace, patch_type=PatchType.MERGE)
    pattern = re.compile(
        r"group (\d): leader pod excl-(\d) waits for a domain that holds its whole group: .+"
    )

    def reported() -> tuple[bool, Any]:
        cond = condition(get(kube, "excl", namespace), "Progressing") or {}
        found = pattern.search(cond.get("message", ""))
        settled = "with 8 groups ready of total 9 groups" in cond.get("message", "")
        return found is not None and found.group(1) == found.group(2) and settled, cond

    wait_until(reported, 90, "8 groups ready, the 9th reported unschedulable")
    hosts = domains(kube, namespace, "excl", HOST)
    assert len(hosts) == 8
    assert all(len(h) == 1 for h in hosts.values())
    assert len(set().union(*hosts.values())) == 8


def test_colocated_on_rack_keeps_each_group_in_one_rack_spanning_nodes(kube: Client, namespace: str) -> None:
    # 4 GPUs a pod, 8 a node: a group of 4 spans 2 nodes, and must stay inside one rack
    doc = lws(
        "col", replicas=2, size=4, gpus=4, node_selector={ZONE: "zone-a"}, **placement("Colocated", RACK)
    )
    create(kube, doc, namespace)
    wait_available(kube, "col", namespace)
    racks = domains(kube, namespace, "col", RACK)
    hosts = domains(kube, namespace, "col", HOST)
    assert all(len(r) == 1 for r in racks.values()), racks
    assert all(len(h) >= 2 for h in hosts.values()), hosts


def test_colocated_groups_share_a_rack_while_exclusive_ones_do_not(kube: Client, namespace: str) -> None:
    # zone-a has two racks; three small groups
    col = lws(
        "share", replicas=3, size=2, gpus=1, node_selector={ZONE: "zone-a"}, **placement("Colocated", RACK)
    )
    create(kube, col, namespace)
    wait_available(kube, "share", namespace)
    racks = domains(kube, namespace, "share", RACK)
    assert all(len(r) == 1 for r in racks.values())
    assert len(set().union(*racks.values())) < 3, racks  # two groups share a rack

    # Exclusive keeps out every other group of the namespace (upstream's semantics), so zone-b here
    exc = lws(
        "solo", replicas=3, size=2, gpus=1, node_selector={ZONE: "zone-b"}, **placement("Exclusive", RACK)
    )
    create(kube, exc, namespace)

    def two_placed() -> tuple[bool, Any]:
        placed = domains(kube, namespace, "solo", RACK)
        cond = condition(get(kube, "solo", namespace), "Progressing") or {}
        return len(placed) == 2 and "waits for a domain that holds its whole group" in cond.get(
            "message", ""
        ), (
            placed,
            cond,
        )

    placed, _ = wait_until(two_placed, 90, "two exclusive groups placed, the third reported")
    assert len(set().union(*placed.values())) == 2  # one rack each


def test_annotation_and_policy_must_agree(namespace: str, kubectl: Any) -> None:
    doc = lws("clash", annotations={P + "exclusive-topology": HOST}, **placement("Colocated", RACK))
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode != 0
    assert f"metadata.annotations[{P}exclusive-topology]='{HOST}'" in r.stderr
    assert "spec.leaderWorkerTemplate.topologyPlacementPolicy (type Colocated, topologyKey" in r.stderr
    assert RACK in r.stderr

    same = lws("agree", annotations={P + "exclusive-topology": HOST}, **placement("Exclusive", HOST))
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(same))
    assert r.returncode == 0, r.stderr

    doc = lws("nokey", **{"topologyPlacementPolicy": {"type": "Exclusive"}})
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode != 0
    assert "topologyPlacementPolicy.topologyKey: required for type Exclusive" in r.stderr

    doc = lws("nosub", annotations={P + "subgroup-exclusive-topology": HOST})
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode != 0
    assert "requires spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize" in r.stderr


def test_annotation_alone_means_exclusive(kube: Client, namespace: str) -> None:
    doc = lws(
        "annot",
        replicas=2,
        size=2,
        gpus=1,
        node_selector={ZONE: "zone-b"},
        annotations={P + "exclusive-topology": HOST},
    )
    create(kube, doc, namespace)
    wait_available(kube, "annot", namespace)
    hosts = domains(kube, namespace, "annot", HOST)
    assert all(len(h) == 1 for h in hosts.values())
    assert len(set().union(*hosts.values())) == 2


@pytest.fixture
def racks(kube: Client, namespace: str) -> Any:
    """Fake nodes of this test only, in racks of its own (label pool=<tag>), removed afterwards."""
    import contextlib

    from lightkube import codecs
    from lightkube.core.exceptions import ApiError

    from rbg.devcluster.cluster import K8S_VERSION
    from rbg.devcluster.topology import Topology, node_manifests

    tag = namespace[-6:]
    made: list[str] = []

    def add(rack: str, gpus: int = 8) -> str:
        topo = Topology.model_validate(
            {
                "zones": 1,
                "racksPerZone": 1,
                "nodesPerRack": 1,
                "nodesPerNVLinkDomain": 1,
                "node": {"gpus": gpus},
            }
        )
        (n,) = node_manifests(topo, K8S_VERSION)
        name = f"pool-{tag}-{len(made)}"
        n["metadata"]["name"] = name
        n["metadata"]["labels"].update({HOST: name, "pool": tag, RACK: f"{rack}-{tag}", ZONE: f"zone-{tag}"})
        kube.create(codecs.from_dict(n))
        made.append(name)
        return name

    yield tag, add
    for name in made:
        with contextlib.suppress(ApiError):
            kube.delete(Node, name)


def blocker(kube: Client, namespace: str, node: str, gpus: int) -> None:
    """A pod of nobody's group holding `gpus` GPUs on `node`."""
    from lightkube import codecs

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"blocker-{node}"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "i", "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
        },
    }
    kube.create(codecs.from_dict(pod), namespace=namespace)


def gated(pod: Any) -> bool:
    return any(g.name == "rbg.workloads.x-k8s.io/lws-placement" for g in pod.spec.schedulingGates or [])


def test_exclusive_with_a_node_too_few_binds_no_leader_where_its_workers_cannot_follow(
    kube: Client, namespace: str, racks: Any
) -> None:
    tag, add = racks
    add("r1")
    add("r1")
    half = add("r1")
    blocker(kube, namespace, half, 4)  # room for a leader (4 GPUs), not for its worker too
    doc = lws(
        "tight", replicas=3, size=2, gpus=4, node_selector={"pool": tag}, **placement("Exclusive", HOST)
    )
    create(kube, doc, namespace)

    def two_and_one_waiting() -> tuple[bool, Any]:
        placed = domains(kube, namespace, "tight", HOST)
        cond = condition(get(kube, "tight", namespace), "Progressing") or {}
        return len(placed) == 2 and "waits for a domain that holds its whole group" in cond.get(
            "message", ""
        ), (
            placed,
            cond,
        )

    placed, _cond = wait_until(two_and_one_waiting, 90, "two groups placed, the third waiting")
    assert half not in set().union(*placed.values())  # never the node its workers cannot follow to
    waiting = [
        p
        for p in pods(kube, namespace, "tight").values()
        if p.metadata.labels.get(P + "worker-index") == "0" and not p.spec.nodeName
    ]
    assert len(waiting) == 1
    assert gated(waiting[0])
    new = add("r1")  # a node arrives: the waiting group is placed there at once
    wait_available(kube, "tight", namespace, timeout=90)
    hosts = domains(kube, namespace, "tight", HOST)
    assert all(len(h) == 1 for h in hosts.values()), hosts
    assert new in set().union(*hosts.values())


def test_colocated_on_racks_partly_used_places_each_group_whole_in_a_rack_that_holds_it(
    kube: Client, namespace: str, racks: Any
) -> None:
    tag, add = racks
    busy = add("busy")
    add("busy")
    add("free")
    add("free")
    blocker(kube, namespace, busy, 6)  # rack busy: 2 + 8 GPUs free, rack free: 16
    # a group of 4 pods x 4 GPUs (16) fits only in rack free; a leader placed by affinity alone could take
    # the empty node of rack busy and leave its workers Pending
    doc = lws("fill", replicas=1, size=4, gpus=4, node_selector={"pool": tag}, **placement("Colocated", RACK))
    create(kube, doc, namespace)
    wait_available(kube, "fill", namespace, timeout=90)
    assert domains(kube, namespace, "fill", RACK) == {"0": {f"free-{tag}"}}
