"""A role's rolling update on the real control plane: a StatefulSet role surges (the operator steps it),
a partition holds the lower ordinals, a template change with a scale-up under tight capacity rolls first
instead of deadlocking, and type Recreate replaces the pods together."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import Event, Pod
from lightkube.types import PatchType
from test_coordination import pool  # noqa: F401 - the fixture
from test_rolebasedgroup import RBG, create, get_rbg, simple, wait_ready

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
GROUP = "rbg.workloads.x-k8s.io/group-name"
NEW = "registry.local/engine:2"


def live(kube: Client, namespace: str, group: str) -> list[Any]:
    return [
        p
        for p in kube.list(Pod, namespace=namespace, labels={GROUP: group})
        if p.metadata.deletionTimestamp is None
    ]


def set_image(kube: Client, namespace: str, group: str, index: int = 0, replicas: int | None = None) -> None:
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": f"/spec/roles/{index}/template/spec/containers/0/image", "value": NEW}
    ]
    if replicas is not None:
        ops.append({"op": "replace", "path": f"/spec/roles/{index}/replicas", "value": replicas})
    kube.patch(RBG, group, ops, namespace=namespace, patch_type=PatchType.JSON)


def images(kube: Client, namespace: str, group: str) -> dict[str, str]:
    return {p.metadata.name: p.spec.containers[0].image for p in live(kube, namespace, group)}


def test_max_surge_surges_and_a_partition_holds_the_lower_ordinals(kube: Client, namespace: str) -> None:
    doc = simple("surge", {"prefill": 3, "decode": 3})
    doc["spec"]["roles"][0]["rolloutStrategy"] = {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    doc["spec"]["roles"][1]["rolloutStrategy"] = {"rollingUpdate": {"partition": 2}}
    create(kube, doc, namespace)
    wait_ready(kube, "surge", namespace)
    seen: set[int] = set()  # prefill's StatefulSet replicas
    errors: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.add(kube.get(StatefulSet, "surge-prefill", namespace=namespace).spec.replicas)
            except Exception as e:  # a missed poll is a missed sample, kept for the message
                errors[:] = [*errors[-3:], repr(e)]
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    set_image(kube, namespace, "surge", 0)
    set_image(kube, namespace, "surge", 1)

    def rolled() -> tuple[bool, Any]:
        now = images(kube, namespace, "surge")
        prefill = sorted(v for k, v in now.items() if k.startswith("surge-prefill-"))
        return prefill == [NEW] * 3 and now.get("surge-decode-2") == NEW, now

    try:
        wait_until(rolled, 180, "prefill rolled with a surge pod, decode's ordinal 2 updated")
        wait_ready(kube, "surge", namespace)
    finally:
        stop.set()
        watcher.join()
    assert max(seen) == 4, (seen, errors)  # one surge pod beside the three, never more
    assert kube.get(StatefulSet, "surge-prefill", namespace=namespace).spec.replicas == 3  # given back
    now = images(kube, namespace, "surge")
    assert (
        now["surge-decode-0"] == now["surge-decode-1"] == "registry.local/engine:1"
    )  # kept by the partition
    conditions = {c["type"]: c for c in get_rbg(kube, "surge", namespace)["status"]["conditions"]}
    # decode's partition keeps ordinals 0-1 on the old template: a partitioned rollout is complete
    assert conditions["RollingUpdateInProgress"]["status"] == "False", conditions["RollingUpdateInProgress"]


def test_a_template_change_and_a_scale_up_under_tight_capacity_roll_first(
    kube: Client,
    namespace: str,
    pool: Any,  # noqa: F811 - the fixture imported above
) -> None:
    tag, add = pool
    add(1, 8)  # one node: room for two pods of 4 GPUs, not three
    doc = simple("tight", {"prefill": 2})
    spec = doc["spec"]["roles"][0]["template"]["spec"]
    spec["nodeSelector"] = {"pool": tag}
    spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "4"}}
    create(kube, doc, namespace)
    wait_ready(kube, "tight", namespace)
    set_image(kube, namespace, "tight", replicas=3)

    def rolled() -> tuple[bool, Any]:
        now = images(kube, namespace, "tight")
        return now.get("tight-prefill-0") == NEW and now.get("tight-prefill-1") == NEW, now

    wait_until(rolled, 180, "both existing pods on the new template although the third cannot fit")

    def third_pending() -> tuple[bool, Any]:
        pods = {p.metadata.name: p for p in live(kube, namespace, "tight")}
        third = pods.get("tight-prefill-2")
        return third is not None and not third.spec.nodeName, sorted(pods)

    wait_until(third_pending, 60, "the third pod added after the rollout, Pending for want of room")


def test_recreate_replaces_the_roles_pods_together(kube: Client, namespace: str) -> None:
    doc = simple("recr", {"prefill": 3})
    doc["spec"]["roles"][0]["rolloutStrategy"] = {"rollingUpdate": {"type": "Recreate"}}
    create(kube, doc, namespace)
    wait_ready(kube, "recr", namespace)
    set_image(kube, namespace, "recr")
    wait_until(
        lambda: (
            sorted(images(kube, namespace, "recr").values()) == [NEW] * 3,
            images(kube, namespace, "recr"),
        ),
        180,
        "all three pods on the new template",
    )
    wait_ready(kube, "recr", namespace)
    events = [e.message for e in kube.list(Event, namespace=namespace) if e.reason == "RecreatingRole"]
    assert events == ["recreating 3 pods of role prefill together (rollingUpdate type Recreate)"]


def test_a_live_role_switched_to_recreate_rolls_its_pods_together(kube: Client, namespace: str) -> None:
    # made with the default strategy (what the API server would default, the operator writes: so a
    # later switch to Recreate is valid for both kinds), then switched together with a new image
    doc = simple("switch", {"prefill": 2, "decode": 2})
    doc["spec"]["roles"][1]["workload"] = {"apiVersion": "apps/v1", "kind": "Deployment"}
    create(kube, doc, namespace)
    wait_ready(kube, "switch", namespace)
    ops: list[dict[str, Any]] = []
    for i in (0, 1):
        ops += [
            {
                "op": "add",
                "path": f"/spec/roles/{i}/rolloutStrategy",
                "value": {"rollingUpdate": {"type": "Recreate"}},
            },
            {"op": "replace", "path": f"/spec/roles/{i}/template/spec/containers/0/image", "value": NEW},
        ]
    kube.patch(RBG, "switch", ops, namespace=namespace, patch_type=PatchType.JSON)
    wait_until(
        lambda: (
            sorted(images(kube, namespace, "switch").values()) == [NEW] * 4,
            images(kube, namespace, "switch"),
        ),
        180,
        "every pod of both roles on the new template",
    )
    wait_ready(kube, "switch", namespace)
    refused = [
        e.message for e in kube.list(Event, namespace=namespace) if e.reason == "FailedReconcileWorkload"
    ]
    assert refused == []
    sts = kube.get(StatefulSet, "switch-prefill", namespace=namespace)
    assert sts.spec.updateStrategy.type == "OnDelete"
