"""Failure recovery on the real control plane (restartPolicy): a container restart (kwok pods: the status
subresource is patched as a kubelet would) recreates the whole group exactly once; a second one within
the backoff waits; the bound marks the group Failed; RecreateRoleInstanceOnPodRestart replaces only the
pod that failed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType
from test_rolebasedgroup import create, get_rbg, simple, wait_ready

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
GROUP = "rbg.workloads.x-k8s.io/group-name"


def uids(kube: Client, namespace: str, group: str) -> dict[str, str]:
    return {
        p.metadata.name: p.metadata.uid
        for p in kube.list(Pod, namespace=namespace, labels={GROUP: group})
        if p.metadata.deletionTimestamp is None
    }


def restart_container(kube: Client, namespace: str, pod: str) -> None:
    """What a kubelet reports after the container crashed and was started again."""
    current = kube.get(Pod, pod, namespace=namespace)
    statuses = [
        {"name": c.name, "restartCount": (c.restartCount or 0) + 1}
        for c in current.status.containerStatuses or []
    ]
    assert statuses, "the pod has no container status yet"
    kube.patch(
        Pod.Status,
        pod,
        {"status": {"containerStatuses": statuses}},
        namespace=namespace,
        patch_type=PatchType.STRATEGIC,
    )


def records(kube: Client, namespace: str, group: str) -> dict[str, Any]:
    st = (get_rbg(kube, group, namespace).get("status") or {}).get("restartStatus") or {}
    return {r["scope"]: r for r in st.get("records") or []}


def condition(kube: Client, namespace: str, group: str, type_: str) -> dict[str, Any] | None:
    conditions = (get_rbg(kube, group, namespace).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), None)


def test_a_container_restart_recreates_the_group_once_backs_off_and_stops_at_the_bound(
    kube: Client, namespace: str
) -> None:
    doc = simple("rec", {"prefill": 2, "decode": 1})
    doc["spec"]["roles"][0]["restartPolicy"] = "RecreateRBGOnPodRestart"
    doc["spec"]["roles"][0]["restartPolicyConfig"] = {
        "baseDelaySeconds": 30,
        "maxDelaySeconds": 30,
        "maxRestarts": 2,
    }
    create(kube, doc, namespace)
    wait_ready(kube, "rec", namespace)
    before = uids(kube, namespace, "rec")
    assert len(before) == 3

    restart_container(kube, namespace, "rec-prefill-0")

    def all_new(previous: dict[str, str]) -> tuple[bool, Any]:
        now = uids(kube, namespace, "rec")
        return len(now) == 3 and not set(now.values()) & set(previous.values()), now

    wait_until(lambda: all_new(before), 120, "every pod of the group recreated")
    wait_ready(kube, "rec", namespace)
    first = uids(kube, namespace, "rec")
    time.sleep(3)  # exactly once: nothing recreates the recreated pods
    assert uids(kube, namespace, "rec") == first
    assert records(kube, namespace, "rec")[""]["count"] == 1
    assert "rec-prefill-0" in records(kube, namespace, "rec")[""]["trigger"]

    # a second restart within the backoff (30 s after the first recreation) waits, then recreates
    restart_container(kube, namespace, "rec-prefill-1")
    time.sleep(3)
    assert uids(kube, namespace, "rec") == first  # still waiting out the backoff
    assert records(kube, namespace, "rec")[""]["count"] == 1
    wait_until(lambda: all_new(first), 120, "recreated again after the backoff")
    assert records(kube, namespace, "rec")[""]["count"] == 2
    wait_ready(kube, "rec", namespace)
    second = uids(kube, namespace, "rec")

    # the bound (maxRestarts 2): the third restart marks the group Failed and leaves it for a person
    restart_container(kube, namespace, "rec-prefill-0")
    wait_until(
        lambda: ((c := condition(kube, namespace, "rec", "Failed")) is not None and c["status"] == "True", c),
        60,
        "Failed condition",
    )
    assert uids(kube, namespace, "rec") == second
    assert "left for a person" in (condition(kube, namespace, "rec", "Failed") or {})["message"]


def test_recreate_role_instance_replaces_only_the_failed_pod(kube: Client, namespace: str) -> None:
    doc = simple("inst", {"prefill": 3})
    doc["spec"]["roles"][0]["restartPolicy"] = "RecreateRoleInstanceOnPodRestart"
    create(kube, doc, namespace)
    wait_ready(kube, "inst", namespace)
    before = uids(kube, namespace, "inst")
    restart_container(kube, namespace, "inst-prefill-1")

    def replaced() -> tuple[bool, Any]:
        now = uids(kube, namespace, "inst")
        return len(now) == 3 and now["inst-prefill-1"] != before["inst-prefill-1"], now

    wait_until(replaced, 120, "inst-prefill-1 recreated")
    after = uids(kube, namespace, "inst")
    assert after["inst-prefill-0"] == before["inst-prefill-0"]
    assert after["inst-prefill-2"] == before["inst-prefill-2"]
    wait_ready(kube, "inst", namespace)
    assert records(kube, namespace, "inst")["prefill/1"]["count"] == 1
