"""Upstream's v1alpha1 example manifests for the lifecycle (examples/basics/rolling-update.yaml,
rolling-update-with-partition.yaml, examples/deprecated/v1alpha1/basics/restart-policy.yaml), in their
shape: a StatefulSet, a Deployment and a LeaderWorkerSet role (size 2, leader/worker patches) of 4
replicas each; rolled by a change of the template's `appVersion` label, as their users do."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType
from test_rolebasedgroup import RBG, create, wait_ready
from test_rolebasedgroup_recovery import restart_container

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
GROUP = "rbg.workloads.x-k8s.io/group-name"
ROLE = "rbg.workloads.x-k8s.io/role-name"
LWS_GROUP = "leaderworkerset.sigs.k8s.io/group-index"


def example(
    name: str, update: dict[str, Any] | None, policies: dict[str, str] | None = None
) -> dict[str, Any]:
    def template(container: str) -> dict[str, Any]:
        return {
            "metadata": {"labels": {"appVersion": "v1"}},
            "spec": {
                "containers": [
                    {"name": container, "image": "registry.local/nginx:1", "ports": [{"containerPort": 80}]}
                ]
            },
        }

    roles: list[dict[str, Any]] = [
        {"name": "sts", "replicas": 4, "template": template("sts")},
        {
            "name": "deployment",
            "replicas": 4,
            "workload": {"apiVersion": "apps/v1", "kind": "Deployment"},
            "template": template("sts"),
        },
        {
            "name": "lws",
            "replicas": 4,
            "workload": {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"},
            "leaderWorkerSet": {
                "size": 2,
                "patchLeaderTemplate": {"metadata": {"labels": {"role": "leader"}}},
                "patchWorkerTemplate": {"metadata": {"labels": {"role": "worker"}}},
            },
            "template": template("nginx"),
        },
    ]
    for role in roles:
        if update is not None:
            role["rolloutStrategy"] = {"rollingUpdate": dict(update)}
        if policies and role["name"] in policies:
            role["restartPolicy"] = policies[role["name"]]
    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {"roles": roles},
    }


def versions(kube: Client, namespace: str, group: str) -> dict[str, dict[str, str]]:
    """role -> pod -> its appVersion label (live pods)."""
    out: dict[str, dict[str, str]] = {}
    for p in kube.list(Pod, namespace=namespace, labels={GROUP: group}):
        if p.metadata.deletionTimestamp is None:
            out.setdefault(p.metadata.labels[ROLE], {})[p.metadata.name] = p.metadata.labels.get(
                "appVersion", ""
            )
    return out


def bump(kube: Client, namespace: str, group: str) -> None:
    ops = [
        {"op": "replace", "path": f"/spec/roles/{i}/template/metadata/labels/appVersion", "value": "v2"}
        for i in range(3)
    ]
    kube.patch(RBG, group, ops, namespace=namespace, patch_type=PatchType.JSON)


def test_rolling_update_example_rolls_every_role_to_the_new_template(kube: Client, namespace: str) -> None:
    create(kube, example("rolling-update", {"maxUnavailable": 2, "maxSurge": 2}), namespace)
    wait_ready(kube, "rolling-update", namespace, timeout=180)
    bump(kube, namespace, "rolling-update")

    def all_v2() -> tuple[bool, Any]:
        seen = versions(kube, namespace, "rolling-update")
        counts = {r: len(p) for r, p in seen.items()}
        done = counts == {"sts": 4, "deployment": 4, "lws": 8} and all(
            v == "v2" for pods in seen.values() for v in pods.values()
        )
        return done, seen

    wait_until(all_v2, 240, "every pod of every role on appVersion v2")
    wait_ready(kube, "rolling-update", namespace, timeout=120)


def test_rolling_update_with_partition_example_keeps_the_lowest_instance(
    kube: Client, namespace: str
) -> None:
    doc = example("rolling-update-with-partition", {"maxUnavailable": 2, "maxSurge": 2, "partition": 1})
    doc["spec"]["roles"].pop(1)  # upstream's example has no Deployment role (a Deployment has no partition)
    create(kube, doc, namespace)
    wait_ready(kube, "rolling-update-with-partition", namespace, timeout=180)
    ops = [
        {"op": "replace", "path": f"/spec/roles/{i}/template/metadata/labels/appVersion", "value": "v2"}
        for i in range(2)
    ]
    kube.patch(RBG, "rolling-update-with-partition", ops, namespace=namespace, patch_type=PatchType.JSON)

    def split() -> tuple[bool, Any]:
        seen = versions(kube, namespace, "rolling-update-with-partition")
        sts = seen.get("sts", {})
        lws = seen.get("lws", {})
        sts_ok = sts == {
            "rolling-update-with-partition-sts-0": "v1",
            **{f"rolling-update-with-partition-sts-{i}": "v2" for i in (1, 2, 3)},
        }
        lws_ok = len(lws) == 8 and all(
            v == ("v1" if name.startswith("rolling-update-with-partition-lws-0") else "v2")
            for name, v in lws.items()
        )
        return sts_ok and lws_ok, seen

    wait_until(split, 240, "instance 0 of each role kept on v1 by partition 1, the others on v2")


def test_restart_policy_example_recreates_the_group_for_the_sts_role_only(
    kube: Client, namespace: str
) -> None:
    doc = example(
        "restart-policy", None, {"sts": "RecreateRBGOnPodRestart", "deployment": "None", "lws": "None"}
    )
    create(kube, doc, namespace)
    wait_ready(kube, "restart-policy", namespace, timeout=180)

    def uids() -> dict[str, str]:
        return {
            p.metadata.name: p.metadata.uid
            for p in kube.list(Pod, namespace=namespace, labels={GROUP: "restart-policy"})
            if p.metadata.deletionTimestamp is None
        }

    before = uids()
    assert len(before) == 16
    # a Deployment pod (restartPolicy None) restarting recreates nothing
    deployment_pod = sorted(n for n in before if n.startswith("restart-policy-deployment-"))[0]
    restart_container(kube, namespace, deployment_pod)
    # a StatefulSet pod (RecreateRBGOnPodRestart) restarting recreates all 16 pods of the group
    restart_container(kube, namespace, "restart-policy-sts-2")

    def renewed() -> tuple[bool, Any]:
        now = uids()
        return len(now) == 16 and not set(now.values()) & set(before.values()), len(now)

    wait_until(renewed, 240, "every pod of the group recreated")
    wait_ready(kube, "restart-policy", namespace, timeout=180)
