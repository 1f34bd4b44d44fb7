"""Batches: the pod mutation at creation and the release decisions (Sequential, Parallel, rejoin)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from coordination_data import pd_group

from rbg.api.hub import RoleBasedGroup
from rbg.coordination import batches, gating, release, resources

HOST = "kubernetes.io/hostname"
BATCH = "coordination.workloads.x-k8s.io/pd"


def group(mode: str = "Sequential", prefill: int = 4, decode: int = 2) -> RoleBasedGroup:
    return pd_group(prefill, decode, batchMode=mode)


def created(role: str, i: int, gpus: int = 1) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"g-{role}-{i}",
            "uid": f"{role}{i}",
            "labels": {batches.GROUP_NAME: "g", batches.ROLE_NAME: role, batches.POD_INDEX: str(i)},
        },
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]},
    }


def admitted(role: str, i: int, rbg: RoleBasedGroup, gpus: int = 1) -> dict[str, Any]:
    """A pod as its StatefulSet creates it from the role's template, after the webhook."""
    pod = created(role, i, gpus)
    pod["metadata"]["labels"][batches.COORDINATED] = batches.layout(rbg, role)
    pod["metadata"]["ownerReferences"] = [{"kind": "StatefulSet", "name": f"g-{role}", "controller": True}]
    mutated = gating.mutate(pod, rbg)
    assert mutated is not None
    return mutated


def node(name: str, gpus: int = 8) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {HOST: name}},
        "spec": {},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus), "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def test_a_coordinated_pod_is_created_gated_in_its_batch_with_a_guard_on_its_own_batch() -> None:
    rbg = group()
    pod = admitted("prefill", 3, rbg)
    assert pod["metadata"]["labels"][BATCH] == "1"  # 3 // 2
    assert pod["spec"]["schedulingGates"] == [{"name": resources.GATE}]
    (term,) = pod["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == HOST
    assert term["labelSelector"]["matchExpressions"] == [
        {"key": batches.GROUP_NAME, "operator": "In", "values": ["g"]},
        {"key": BATCH, "operator": "In", "values": ["1"]},
    ]
    assert gating.mutate(created("router", 0), rbg) is None  # not coordinated: untouched


def pods_of(rbg: RoleBasedGroup) -> list[dict[str, Any]]:
    return [admitted("prefill", i, rbg) for i in range(4)] + [admitted("decode", i, rbg) for i in range(2)]


def test_sequential_releases_the_next_batch_only_once_the_previous_is_bound() -> None:
    rbg = group()
    coord, aff = batches.affinity_coordinations(rbg)[0]
    pods = pods_of(rbg)
    nodes = [node("a"), node("b")]
    d = release.decide(rbg, coord, aff, pods, nodes, {})
    assert {p["metadata"]["name"] for p, _, _ in d.release} == {"g-prefill-0", "g-prefill-1", "g-decode-0"}
    assert [x for x in d.planned] == [(0, "a")]
    # batch 0 released (pinned, ungated) but not bound yet: batch 1 still waits
    for p in pods:
        if p["metadata"]["labels"][BATCH] == "0":
            p["spec"]["schedulingGates"] = []
            p["spec"]["nodeSelector"] = {HOST: "a"}
    d = release.decide(rbg, coord, aff, pods, nodes, {})
    assert d.release == []
    for p in pods:
        if p["metadata"]["labels"][BATCH] == "0":
            p["spec"]["nodeName"] = "a"
    d = release.decide(rbg, coord, aff, pods, nodes, resources.usage(pods, {}))
    assert d.planned == [(1, "b")]  # another domain than batch 0's
    assert d.batches[0].phase == "Bound"


def test_parallel_plans_every_batch_without_counting_capacity_twice() -> None:
    rbg = group("Parallel", prefill=6, decode=3)
    coord, aff = batches.affinity_coordinations(rbg)[0]
    pods = [admitted("prefill", i, rbg) for i in range(6)] + [admitted("decode", i, rbg) for i in range(3)]
    d = release.decide(rbg, coord, aff, pods, [node("a", 3), node("b", 3), node("c", 3)], {})
    assert sorted(d.planned) == [(0, "a"), (1, "b"), (2, "c")]
    d = release.decide(rbg, coord, aff, pods, [node("a", 3), node("b", 3)], {})
    assert len(d.planned) == 2
    assert "every kubernetes.io/hostname domain is taken by another batch" in d.unplaced[2]


def test_a_recreated_member_rejoins_its_batchs_domain() -> None:
    rbg = group()
    coord, aff = batches.affinity_coordinations(rbg)[0]
    pods = pods_of(rbg)
    for p in pods:
        if p["metadata"]["labels"][BATCH] == "0":
            p["spec"].update(schedulingGates=[], nodeSelector={HOST: "b"}, nodeName="b")
    pods[0] = admitted("prefill", 0, rbg)  # prefill-0 recreated: gated again
    d = release.decide(rbg, coord, aff, pods, [node("a"), node("b")], resources.usage(pods, {}))
    assert [(p["metadata"]["name"], dom) for p, dom, _ in d.release] == [("g-prefill-0", "b")]


def test_a_batch_waits_until_all_its_pods_exist() -> None:
    rbg = group()
    coord, aff = batches.affinity_coordinations(rbg)[0]
    d = release.decide(rbg, coord, aff, [admitted("prefill", 0, rbg)], [node("a")], {})
    assert d.release == []
    assert d.batches[0].message == "waiting for 2 more pods of the batch to be created"


def test_usage_counts_bound_and_assumed_pods() -> None:
    bound = created("prefill", 0, gpus=2)
    bound["spec"]["nodeName"] = "a"
    used = resources.usage([bound], {"other": ("b", {"nvidia.com/gpu": Decimal(1)})})
    assert used["a"]["nvidia.com/gpu"] == 2
    assert used["b"]["pods"] == 1


def exclusive_group(opt_out: bool = True) -> RoleBasedGroup:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    side = {
        "metadata": {"annotations": {"rolebasedgroup.workloads.x-k8s.io/disable-exclusive-topology": "true"}},
        **tpl,
    }
    return RoleBasedGroup.model_validate(
        {
            "metadata": {
                "name": "g",
                "namespace": "ns",
                "annotations": {batches.EXCLUSIVE_ANNOTATIONS[0]: HOST},
            },
            "spec": {
                "roles": [
                    {
                        "name": "router",
                        "replicas": 1,
                        "workload": {"apiVersion": "apps/v1", "kind": "Deployment"},
                        "template": tpl,
                    },
                    {"name": "prefill", "replicas": 2, "template": tpl},
                    {"name": "sidecar", "replicas": 1, "template": side if opt_out else tpl},
                ]
            },
        }
    )


def test_exclusive_topology_is_one_batch_of_every_member_with_guards_on_members_only() -> None:
    rbg = exclusive_group()
    found = batches.exclusive_coordination(rbg)
    assert found is not None
    _coord, aff = found
    assert aff.ratios == {"router": 1, "prefill": 2}  # the opted-out sidecar is not in it
    router = {
        "metadata": {
            "name": "g-router-7f9c-x2",
            "labels": {
                batches.GROUP_NAME: "g",
                batches.ROLE_NAME: "router",
                batches.COORDINATED: batches.layout(rbg, "router"),
            },
        },
        "spec": {},
    }
    pod = gating.mutate(router, rbg)  # a Deployment pod (no ordinal) takes part too
    assert pod is not None
    assert pod["metadata"]["labels"][batches.batch_label(batches.EXCLUSIVE)] == "0"
    anti = pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert {"key": batches.batch_label(batches.EXCLUSIVE), "operator": "Exists"} in anti["labelSelector"][
        "matchExpressions"
    ]
    sidecar = {
        "metadata": {
            "name": "g-sidecar-0",
            "labels": {batches.GROUP_NAME: "g", batches.ROLE_NAME: "sidecar"},
        },
        "spec": {},
    }
    assert gating.mutate(sidecar, rbg) is None


def test_other_groups_domains_count_only_their_exclusive_members() -> None:
    nodes = [node("a"), node("b")]
    member = {
        "metadata": {
            "name": "x",
            "labels": {batches.GROUP_NAME: "other", batches.batch_label(batches.EXCLUSIVE): "0"},
        },
        "spec": {"nodeName": "a"},
    }
    loose = {"metadata": {"name": "y", "labels": {batches.GROUP_NAME: "other"}}, "spec": {"nodeName": "b"}}
    mine = {
        "metadata": {
            "name": "z",
            "labels": {batches.GROUP_NAME: "g", batches.batch_label(batches.EXCLUSIVE): "0"},
        },
        "spec": {"nodeName": "b"},
    }
    assert batches.others_domains(nodes, [member, loose, mine], "g", HOST) == {"a"}


def test_a_slim_pod_keeps_what_placement_reads() -> None:
    rbg = group()
    pod = admitted("prefill", 1, rbg)
    pod["spec"].update(nodeName="a", volumes=[{"name": "v"}], tolerations=[{"key": "t"}])
    pod["spec"]["containers"][0].update(image="big", env=[{"name": "X", "value": "1" * 1000}])
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "message": "m"}]}
    slim = resources.slim_pod(pod)
    assert "volumes" not in slim["spec"]
    assert slim["spec"]["containers"] == [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 1}}}]
    assert slim["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
    # and every decision reads the same from it as from the whole pod
    assert resources.pod_requests(slim) == resources.pod_requests(pod)
    assert resources.pod_needs(slim) == resources.pod_needs(pod)
    assert resources.gated(slim) == resources.gated(pod)
    assert resources.usage([slim], {}) == resources.usage([pod], {})


def test_a_released_pod_pinned_to_a_host_counts_there_until_bound_even_without_memory() -> None:
    pinned = created("prefill", 0, gpus=3)
    pinned["spec"]["nodeSelector"] = {HOST: "a"}  # released by an operator that has restarted since
    gated_pod = created("prefill", 1, gpus=3)
    gated_pod["spec"].update(nodeSelector={HOST: "a"}, schedulingGates=[{"name": resources.GATE}])
    used = resources.usage([pinned, gated_pod], {})
    assert used["a"]["nvidia.com/gpu"] == 3  # the gated one does not count: the scheduler will not run it
    assert (
        resources.usage([pinned], {"prefill0": ("a", {"nvidia.com/gpu": Decimal(3)})})["a"]["nvidia.com/gpu"]
        == 3
    )  # counted once, from memory or from its pin
