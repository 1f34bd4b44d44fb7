"""RoleBasedGroupSets on the real control plane: copies of a group, scaled through /scale, a template
change rolled strictly one group at a time."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType
from test_rolebasedgroup import RBG

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
RBGSET = create_namespaced_resource(
    "workloads.x-k8s.io", "v1alpha1", "RoleBasedGroupSet", "rolebasedgroupsets"
)
REVISION = "rbg.workloads.x-k8s.io/groupset-revision"
GROUP = "rbg.workloads.x-k8s.io/group-name"
ROLE = "rbg.workloads.x-k8s.io/role-name"
ROLE_REVISION = "rbg.workloads.x-k8s.io/role-revision"


def groupset(name: str, replicas: int, image: str) -> dict[str, Any]:
    tpl = {"spec": {"containers": [{"name": "engine", "image": image}]}}
    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroupSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "groupTemplate": {
                "labels": {"app": name},
                "spec": {
                    "roles": [
                        {"name": "prefill", "replicas": 2, "template": tpl},
                        {"name": "decode", "replicas": 1, "template": tpl},
                    ]
                },
            },
        },
    }


def ready(group: dict[str, Any]) -> bool:
    """Ready on its current spec, every pod on the current template (written here, not imported)."""
    st = group.get("status") or {}
    roles = st.get("roleStatuses") or []
    return (
        st.get("observedGeneration") == group["metadata"].get("generation")
        and all(r.get("updatedReplicas", 0) >= r.get("replicas", 0) for r in roles)
        and any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
    )


def children(kube: Client, ns: str) -> dict[str, dict[str, Any]]:
    return {g.metadata.name: g.to_dict() for g in kube.list(RBG, namespace=ns)}


def settled(kube: Client, ns: str, name: str, n: int) -> tuple[bool, Any]:
    st = kube.get(RBGSET, name, namespace=ns).to_dict().get("status") or {}
    groups = children(kube, ns)
    ok = (
        sorted(groups) == [f"{name}-{i}" for i in range(n)]
        and all(ready(g) for g in groups.values())
        and (st.get("readyReplicas"), st.get("replicas"), st.get("updatedReplicas")) == (n, n, n)
    )
    return ok, (sorted(groups), st)


def test_a_groupset_scales_and_rolls_one_group_at_a_time(kube: Client, namespace: str, kubectl: Any) -> None:
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(groupset("svc", 3, "engine:1")))
    assert r.returncode == 0, r.stderr
    wait_until(lambda: settled(kube, namespace, "svc", 3), 120, "3 groups Ready")
    assert children(kube, namespace)["svc-1"]["metadata"]["labels"]["app"] == "svc"
    for n in (5, 2):
        r = kubectl("scale", "-n", namespace, "rbgs/svc", f"--replicas={n}")
        assert r.returncode == 0, r.stderr
        wait_until(lambda n=n: settled(kube, namespace, "svc", n), 120, f"{n} groups Ready")

    # a template change: a watcher sees at most one group not Ready at any moment
    states: dict[str, tuple[str, bool]] = {}
    worst = [0]
    stop = threading.Event()

    def watch() -> None:
        try:
            for _, obj in kube.watch(RBG, namespace=namespace):
                g = obj.to_dict()
                revision = (g["metadata"].get("annotations") or {}).get(REVISION, "")
                states[g["metadata"]["name"]] = (revision, ready(g))
                worst[0] = max(worst[0], sum(1 for _, ok in states.values() if not ok))
                if stop.is_set():
                    return
        except Exception:  # noqa: S110 - the watch ends with the test's namespace
            pass

    # inside a group every pod of a changed role is replaced at once (the seed's atomic rollout): a
    # watcher on the pods never sees a role of one group with live pods of two templates
    pods: dict[str, tuple[str, str, str, bool]] = {}
    mixed: list[Any] = []

    def watch_pods() -> None:
        try:
            for kind, obj in kube.watch(Pod, namespace=namespace):
                labels = obj.metadata.labels or {}
                key = (labels.get(GROUP, ""), labels.get(ROLE, ""))
                if kind == "DELETED":
                    pods.pop(obj.metadata.name, None)
                else:
                    live = obj.metadata.deletionTimestamp is None
                    pods[obj.metadata.name] = (*key, labels.get(ROLE_REVISION, ""), live)
                live_revisions = {p[2] for p in pods.values() if (p[0], p[1]) == key and p[3]}
                if len(live_revisions) > 1:
                    mixed.append((key, sorted(live_revisions)))
                if stop.is_set():
                    return
        except Exception:  # noqa: S110 - the watch ends with the test's namespace
            pass

    threading.Thread(target=watch, daemon=True).start()
    threading.Thread(target=watch_pods, daemon=True).start()

    def serving() -> dict[str, str]:
        return {n: p[2] for n, p in list(pods.items()) if p[3] and p[0] in ("svc-0", "svc-1")}

    wait_until(lambda: (len(states) == 2 and len(serving()) == 6, (states, pods)), 30, "both groups seen")
    first = serving()
    before = {k: v[0] for k, v in states.items()}
    patch = {"spec": {"groupTemplate": groupset("svc", 2, "engine:2")["spec"]["groupTemplate"]}}
    kube.patch(RBGSET, "svc", patch, namespace=namespace, patch_type=PatchType.MERGE)

    def rolled() -> tuple[bool, Any]:
        done = all(states.get(n, ("", False))[0] not in ("", before[n]) and states[n][1] for n in before)
        return done, states

    wait_until(rolled, 120, "both groups on the new template and Ready")
    stop.set()
    assert worst[0] == 1, worst  # strictly one group at a time (and one did roll)
    assert mixed == []  # never two templates live in one role of one group
    replaced = {name for name, p in pods.items() if p[3] and name in first and p[2] != first[name]}
    assert len(replaced) == 6, pods  # and every pod did change (same names: StatefulSet pods)
    wait_until(lambda: settled(kube, namespace, "svc", 2), 60, "the set Ready on the new template")


def test_the_seeds_quick_start_manifest_runs(kube: Client, namespace: str, kubectl: Any) -> None:
    # the seed's example as written (roles named by `role`, right under groupTemplate), with this API's
    # group and a template for its `{ ... }`
    tpl = {"spec": {"containers": [{"name": "engine", "image": "lmsysorg/sglang:latest"}]}}
    doc = {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroupSet",
        "metadata": {"name": "demo-group"},
        "spec": {
            "replicas": 2,
            "groupTemplate": {
                "roles": [
                    {"role": "prefill", "replicas": 2, "template": tpl},
                    {"role": "decode", "replicas": 2, "dependencies": ["prefill"], "template": tpl},
                ]
            },
        },
    }
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode == 0, r.stderr
    wait_until(lambda: settled(kube, namespace, "demo-group", 2), 120, "the seed's 2 groups Ready")
    roles = children(kube, namespace)["demo-group-0"]["spec"]["roles"]
    assert [r["name"] for r in roles] == ["prefill", "decode"]


def test_a_malformed_partition_is_refused_at_apply(kubectl: Any, namespace: str) -> None:
    for value in ("half", -1, "50 %"):
        doc = groupset("typo", 2, "engine:1")
        doc["spec"]["rolloutStrategy"] = {"partition": value}
        r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
        assert r.returncode != 0, value
        assert "spec.rolloutStrategy.partition" in r.stderr, r.stderr
        assert "percentage such as 50%" in r.stderr, r.stderr
    doc = groupset("typo", 2, "engine:1")
    doc["spec"]["rolloutStrategy"] = {"partition": "50%"}
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode == 0, r.stderr
