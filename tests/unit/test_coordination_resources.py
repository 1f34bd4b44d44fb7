"""What placement reads of pods and nodes: effective requests with native sidecars, node affinity with
matchFields and empty terms, usage of pinned pods and gates, and the slim pod reading like the whole."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rbg.coordination.resources import (
    GATE,
    HOSTNAME,
    NodeInfo,
    PodNeeds,
    feasible,
    gated,
    pod_needs,
    pod_requests,
    slim_pod,
    usage,
)

D = Decimal
GI, MI = 2**30, 2**20
GPU = "nvidia.com/gpu"


def container(name: str, restart: str | None = None, **requests: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": "i", "resources": {"requests": requests}}
    if restart:
        out["restartPolicy"] = restart
    return out


def test_native_sidecars_add_to_the_containers_and_to_the_init_containers_after_them() -> None:
    spec = {
        "containers": [
            {"name": "c1", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {GPU: "2"}}},
            container("c2", cpu="500m"),
        ],
        "initContainers": [
            container("i1", cpu="2", memory="3Gi"),
            container("s1", "Always", cpu="250m", memory="512Mi"),
            container("i2", cpu="3", memory="1Gi"),
            container("s2", "Always", cpu="1"),
        ],
        "overhead": {"cpu": "100m", "memory": "64Mi"},
    }
    # cpu: containers + sidecars 1 + 0.5 + 0.25 + 1 = 2.75; init peak: i2 with s1 before it, 3 + 0.25
    # = 3.25; + overhead 0.1. memory: 1Gi + 512Mi = 1.5Gi, init peak i1's 3Gi; + 64Mi. GPUs: the limit.
    assert pod_requests({"spec": spec}) == {"cpu": D("3.35"), "memory": D(3 * GI + 64 * MI), GPU: D(2)}


def test_an_init_container_runs_beside_the_sidecars_declared_before_it_only() -> None:
    app = [container("app", cpu="2")]
    sidecar, init = container("proxy", "Always", cpu="1"), container("setup", cpu="2500m")
    after = {"spec": {"containers": app, "initContainers": [sidecar, init]}}
    before = {"spec": {"containers": app, "initContainers": [init, sidecar]}}
    assert pod_requests(after) == {"cpu": D("3.5")}  # setup 2.5 + proxy 1 > app 2 + proxy 1
    assert pod_requests(before) == {"cpu": D(3)}  # setup alone 2.5 < app 2 + proxy 1
    ordinary = {"spec": {"containers": app, "initContainers": [container("proxy", "Never", cpu="1"), init]}}
    assert pod_requests(ordinary) == {"cpu": D("2.5")}  # no sidecar: the larger of 2 and 2.5


def node(name: str, **labels: str) -> NodeInfo:
    return NodeInfo(name, labels, {GPU: D(8)})


def test_node_affinity_terms_with_match_fields_and_empty_terms() -> None:
    required = {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}],
                "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}],
            },
            {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n2", "n4"]}]},
            {},
        ]
    }
    pod = {
        "metadata": {"name": "p"},
        "spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}},
    }
    needs = pod_needs(pod)
    assert needs.affinity_terms == (
        (
            {"key": "zone", "operator": "In", "values": ["z1"]},
            {"field": "metadata.name", "operator": "In", "values": ["n1"]},
        ),
        ({"field": "metadata.name", "operator": "NotIn", "values": ["n2", "n4"]},),
        (),
    )
    assert feasible(needs, node("n1", zone="z1"))  # the first term
    assert not feasible(needs, node("n2", zone="z1"))  # not n1, excluded by the second, the third empty
    assert feasible(needs, node("n3", zone="z9"))  # the second term
    assert not feasible(needs, node("n4"))
    only_fields = PodNeeds(
        "q", {}, affinity_terms=(({"field": "metadata.name", "operator": "In", "values": ["n3"]},),)
    )
    assert [feasible(only_fields, node(n)) for n in ("n1", "n3")] == [False, True]
    empty = PodNeeds("e", {}, affinity_terms=((),))
    assert not feasible(empty, node("n1"))  # an empty term matches no node
    assert feasible(PodNeeds("f", {}), node("n1"))  # no required affinity: every node


def pod(uid: str, gpus: int, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": uid, "uid": uid},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {GPU: gpus}}}], **spec},
    }


def test_usage_counts_a_pinned_pod_only_when_no_gate_at_all_holds_it() -> None:
    pods = [
        pod("free-pin", 1, nodeSelector={HOSTNAME: "a"}),  # released: counts on a
        pod("our-gate", 2, nodeSelector={HOSTNAME: "a"}, schedulingGates=[{"name": GATE}]),
        pod("kueue", 4, nodeSelector={HOSTNAME: "a"}, schedulingGates=[{"name": "kueue.x-k8s.io/admission"}]),
        {
            **pod("leaving", 8, nodeSelector={HOSTNAME: "a"}),
            "metadata": {"name": "l", "uid": "l", "deletionTimestamp": "t"},
        },
        {
            **pod("bound-leaving", 16, nodeName="b"),
            "metadata": {"name": "bl", "uid": "bl", "deletionTimestamp": "t"},
        },
        {**pod("done", 32, nodeName="b"), "status": {"phase": "Succeeded"}},
        pod("rack-pin", 64, nodeSelector={"rack": "r1"}),  # pinned wider than a node: not counted
    ]
    assert usage(pods, {}) == {
        "a": {GPU: D(1), "pods": D(1)},
        "b": {GPU: D(16), "pods": D(1)},
    }
    # an assumption counts where nothing bound counts the pod; a pinned pod assumed is counted once
    assumed = {"free-pin": ("a", {GPU: D(1)}), "kueue": ("c", {GPU: D(4)}), "bl": ("z", {GPU: D(16)})}
    assert usage(pods, assumed) == {
        "a": {GPU: D(1), "pods": D(1)},
        "b": {GPU: D(16), "pods": D(1)},
        "c": {GPU: D(4), "pods": D(1)},
    }


def test_a_slim_pod_keeps_what_placement_reads_and_reads_the_same_as_the_whole_pod() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [{"key": "rack", "operator": "In", "values": ["r1"]}],
                        "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}],
                    }
                ]
            }
        },
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": HOSTNAME}]},
    }
    whole: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "g-prefill-0",
            "namespace": "ns",
            "uid": "u1",
            "resourceVersion": "7",
            "labels": {"app": "x"},
            "annotations": {"big": "x" * 1000},
            "managedFields": [{"manager": "m"}],
        },
        "spec": {
            "nodeSelector": {HOSTNAME: "n1"},
            "affinity": affinity,
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "overhead": {"cpu": "250m"},
            "volumes": [{"name": "v"}],
            "containers": [
                {
                    "name": "engine",
                    "image": "big",
                    "env": [{"name": "X", "value": "1" * 1000}],
                    "resources": {"requests": {"cpu": "4"}, "limits": {GPU: "2"}},
                }
            ],
            "initContainers": [
                {"name": "fetch", "image": "i", "resources": {"requests": {"cpu": "6"}}},
                {
                    "name": "proxy",
                    "image": "i",
                    "restartPolicy": "Always",
                    "resources": {"requests": {"cpu": "1"}},
                },
            ],
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes fit",
                },
                {"type": "Ready", "status": "False", "message": "not yet"},
            ],
        },
    }
    slim = slim_pod(whole)
    assert slim == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "g-prefill-0",
            "namespace": "ns",
            "uid": "u1",
            "resourceVersion": "7",
            "labels": {"app": "x"},
            "annotations": {},  # present (a release adds to it), placement's own keys only
        },
        "spec": {
            "nodeSelector": {HOSTNAME: "n1"},
            "affinity": affinity,
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "overhead": {"cpu": "250m"},
            "containers": [{"name": "engine", "resources": {"requests": {"cpu": "4"}, "limits": {GPU: "2"}}}],
            "initContainers": [
                {"name": "fetch", "resources": {"requests": {"cpu": "6"}}},
                {"name": "proxy", "resources": {"requests": {"cpu": "1"}}, "restartPolicy": "Always"},
            ],
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes fit",
                },
                {"type": "Ready", "status": "False"},
            ],
        },
    }
    # cpu: 4 + the proxy sidecar 1 = 5 < fetch 6; + overhead 0.25
    assert pod_requests(whole) == pod_requests(slim) == {"cpu": D("6.25"), GPU: D(2)}
    assert pod_needs(whole) == pod_needs(slim)
    assert pod_needs(slim).affinity_terms == (
        (
            {"key": "rack", "operator": "In", "values": ["r1"]},
            {"field": "metadata.name", "operator": "NotIn", "values": ["n9"]},
        ),
    )
    assert gated(whole) is gated(slim) is False
    assert usage([whole], {}) == usage([slim], {}) == {"n1": {"cpu": D("6.25"), GPU: D(2), "pods": D(1)}}
