"""The PodGroup of spec.podGroupPolicy: minMember and minResources count what the group's pods really request,
a LeaderWorkerSet replica as its leader and `size - 1` workers with their patches applied (upstream LWS:
minResources = leaderRequests + (size - 1) x workerRequests). Expected numbers are worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from rbg.api.hub import RoleBasedGroup
from rbg.group.plan import plan

LWS = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"}
GPU = "nvidia.com/gpu"
KUBE = {"kubeScheduling": {}}
VOLCANO = {"volcanoScheduling": {"queue": "q"}}


def container(**limits: str) -> dict[str, Any]:
    return {"name": "engine", "image": "i", "resources": {"limits": limits}}


def patch(**limits: str) -> dict[str, Any]:
    """A strategic-merge patch of the engine container's limits (other limits stay)."""
    return {"spec": {"containers": [{"name": "engine", "resources": {"limits": limits}}]}}


def lws_role(
    replicas: int, size: int, leader: dict[str, Any] | None, worker: dict[str, Any] | None, **base: str
) -> dict[str, Any]:
    lw: dict[str, Any] = {"size": size}
    if leader is not None:
        lw["patchLeaderTemplate"] = leader
    if worker is not None:
        lw["patchWorkerTemplate"] = worker
    return {
        "name": "decode",
        "replicas": replicas,
        "workload": LWS,
        "template": {"spec": {"containers": [container(**base)]}},
        "leaderWorkerSet": lw,
    }


def sts_role(replicas: int, **limits: str) -> dict[str, Any]:
    return {
        "name": "prefill",
        "replicas": replicas,
        "template": {"spec": {"containers": [container(**limits)]}},
    }


def group(roles: list[dict[str, Any]], policy: dict[str, Any] = KUBE) -> RoleBasedGroup:
    return RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {"podGroupPolicy": policy, "roles": roles},
        }
    )


def pod_group(roles: list[dict[str, Any]], policy: dict[str, Any] = KUBE) -> dict[str, Any]:
    result = plan(group(roles, policy), [], "t")
    assert not result.invalid
    (pg,) = [o for o in result.apply if o["kind"] == "PodGroup"]
    spec: dict[str, Any] = pg["spec"]
    return spec


@pytest.mark.parametrize("policy", [KUBE, VOLCANO])
def test_a_leaderworkerset_role_counts_its_patched_leader_and_workers(policy: dict[str, Any]) -> None:
    # size 4, 2 replicas; the base template asks 1 GPU and 2 CPU; the leader is patched to 0 GPU, the
    # workers to 8: per replica 0 + 3 x 8 = 24 GPU, and every pod keeps the base's 2 CPU (4 pods x 2)
    spec = pod_group(
        [lws_role(2, 4, patch(**{GPU: "0"}), patch(**{GPU: "8"}), cpu="2", **{GPU: "1"})], policy
    )
    assert spec["minMember"] == 8
    assert spec["minResources"] == {"cpu": "16", GPU: "48"}


def test_without_a_leader_patch_the_leader_is_what_the_leaderworkerset_runs() -> None:
    # size 3, 1 replica, base 1 GPU, workers patched to 8. The leader pod is the LeaderWorkerSet's
    # leaderTemplate, or its workerTemplate when it has none (LWS semantics): the PodGroup follows it.
    rbg = group([lws_role(1, 3, None, patch(**{GPU: "8"}), **{GPU: "1"})])
    result = plan(rbg, [], "t")
    (lws,) = [o for o in result.apply if o["kind"] == "LeaderWorkerSet"]
    lwt = lws["spec"]["leaderWorkerTemplate"]

    def gpus(template: dict[str, Any]) -> int:
        return int(template["spec"]["containers"][0]["resources"]["limits"][GPU])

    assert gpus(lwt["workerTemplate"]) == 8
    leader = gpus(lwt.get("leaderTemplate", lwt["workerTemplate"]))
    assert leader in (1, 8)  # 1: the role template (upstream RBG); 8: the worker template
    (pg,) = [o for o in result.apply if o["kind"] == "PodGroup"]
    assert pg["spec"]["minMember"] == 3
    assert pg["spec"]["minResources"] == {GPU: str(leader + 2 * 8)}


def test_without_a_worker_patch_the_workers_are_the_role_template() -> None:
    # size 3, 2 replicas: per replica leader 4 GPU + 2 workers x 1 GPU (base) = 6
    spec = pod_group([lws_role(2, 3, patch(**{GPU: "4"}), None, **{GPU: "1"})])
    assert spec["minMember"] == 6
    assert spec["minResources"] == {GPU: "12"}


def test_a_leaderworkerset_of_size_one_is_its_leader_only() -> None:
    spec = pod_group([lws_role(3, 1, patch(**{GPU: "4"}), patch(**{GPU: "8"}), **{GPU: "1"})])
    assert spec["minMember"] == 3
    assert spec["minResources"] == {GPU: "12"}


def test_a_statefulset_role_counts_replicas_times_its_template() -> None:
    spec = pod_group([sts_role(3, cpu="500m", **{GPU: "2"})])
    assert spec["minMember"] == 3
    assert spec["minResources"] == {"cpu": "1.5", GPU: "6"}


def test_roles_of_both_kinds_add_up() -> None:
    spec = pod_group(
        [
            sts_role(3, cpu="500m", **{GPU: "2"}),  # 3 pods: 1.5 CPU, 6 GPU
            lws_role(2, 4, patch(**{GPU: "0"}), patch(**{GPU: "8"}), cpu="2", **{GPU: "1"}),  # 8: 16, 48
        ]
    )
    assert spec["minMember"] == 11
    assert spec["minResources"] == {"cpu": "17.5", GPU: "54"}
