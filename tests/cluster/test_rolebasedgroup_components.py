"""customComponentsPattern roles on the real control plane (D42): a RoleInstanceSet whose instances are
StatefulSets per component, pods named as upstream's; component ordering; scaling; a template change
rolled instance by instance; a failed pod recreating its whole instance and no other."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.core_v1 import ConfigMap, Pod
from test_rolebasedgroup import get_rbg, wait_ready
from test_rolebasedgroup_recovery import restart_container, uids

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "v1alpha2" / "custom-components.yaml"
GROUP = "v2-components"
RIS = f"{GROUP}-inference"


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return doc


def _apply(kubectl: Any, namespace: str, doc: dict[str, Any]) -> None:
    r = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode == 0, r.stderr


def _json(kubectl: Any, *args: str) -> Any:
    r = kubectl(*args, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _pods(kube: Client, namespace: str) -> dict[str, Pod]:
    return {
        p.metadata.name: p
        for p in kube.list(Pod, namespace=namespace, labels={"rbg.workloads.x-k8s.io/group-name": GROUP})
        if p.metadata.deletionTimestamp is None
    }


def _statefulsets(kubectl: Any, namespace: str) -> dict[str, int]:
    items = _json(kubectl, "get", "statefulsets", "-n", namespace)["items"]
    return {
        s["metadata"]["name"]: s["spec"]["replicas"]
        for s in items
        if [o["kind"] for o in s["metadata"].get("ownerReferences", [])] == ["RoleInstanceSet"]
    }


def _instance_pods(instances: range) -> set[str]:
    out = set()
    for i in instances:
        out |= {f"{RIS}-{i}-leader-0", f"{RIS}-{i}-worker-0", f"{RIS}-{i}-worker-1", f"{RIS}-{i}-router-0"}
    return out


def _up(pods: dict[str, Pod], instance: int) -> bool:
    """Told from the pods alone: a leader, at least two workers and a router of the instance, all Ready."""
    mine = [p for n, p in pods.items() if n.startswith(f"{RIS}-{instance}-")]
    kinds = [n.rsplit("-", 2)[1] for n in pods if n.startswith(f"{RIS}-{instance}-")]
    ready = all(
        any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])) for p in mine
    )
    enough = kinds.count("leader") == 1 and kinds.count("worker") >= 2 and kinds.count("router") == 1
    return ready and enough


def test_components_run_as_upstream_names_them_in_order_and_scale(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    _apply(kubectl, namespace, _doc())
    wait_ready(kube, GROUP, namespace, timeout=180)
    ris = _json(kubectl, "get", "roleinstancesets", RIS, "-n", namespace)
    assert ris["metadata"]["ownerReferences"][0]["kind"] == "RoleBasedGroup"
    assert (ris["status"]["replicas"], ris["status"]["readyReplicas"]) == (2, 2)
    assert _statefulsets(kubectl, namespace) == {
        f"{RIS}-{i}-{c}": n for i in (0, 1) for c, n in (("leader", 1), ("worker", 2), ("router", 1))
    }
    pods = _pods(kube, namespace)
    assert set(pods) == _instance_pods(range(2))
    # each pod knows its instance and component; its DNS name is {pod}.{role Service}
    for name, pod in pods.items():
        labels = pod.metadata.labels or {}
        instance = name.rsplit("-", 2)[0]
        assert labels["rbg.workloads.x-k8s.io/role-instance-name"] == instance
        assert labels["rbg.workloads.x-k8s.io/component-name"] == name.rsplit("-", 2)[1]
        assert pod.spec.subdomain == f"s-{RIS}"
        env = {e.name for e in pod.spec.containers[0].env or []}
        assert {
            "RBG_ROLE_INSTANCE_NAME",
            "RBG_COMPONENT_NAME",
            "RBG_COMPONENT_INDEX",
            "RBG_ROLE_INDEX",
        } <= env
    # the router of each instance started after that instance's leader and workers (startAfter)
    for i in (0, 1):
        router = pods[f"{RIS}-{i}-router-0"].metadata.creationTimestamp
        others = [
            pods[n].metadata.creationTimestamp for n in _instance_pods(range(i, i + 1)) if "router" not in n
        ]
        assert router >= max(others), (i, router, others)
    # KEP-173 discovery: each router is told its own instance's leader
    for i in (0, 1):
        env = {e.name: e.value for e in pods[f"{RIS}-{i}-router-0"].spec.containers[0].env or []}
        assert env["LEADER_ADDR"] == f"{RIS}-{i}-leader-0.s-{RIS}.{namespace}.svc.cluster.local"
    # the discovery config lists each instance's components
    config = yaml.safe_load(kube.get(ConfigMap, GROUP, namespace=namespace).data["config.yaml"])
    first = config["roles"]["inference"]["instances"][0]
    assert first["components"]["worker"] == [f"{RIS}-0-worker-{k}.s-{RIS}.{namespace}" for k in (0, 1)]
    # v1alpha2 reads it back as written (no workload annotation added)
    back = _json(kubectl, "get", "rbg", GROUP, "-n", namespace)
    assert "customComponentsPattern" in back["spec"]["roles"][0]
    assert back["spec"]["roles"][0].get("annotations") in (None, {})

    # scale in: instance 1 goes, instance 0 keeps its pods
    kept = {n: p.metadata.uid for n, p in pods.items() if n.startswith(f"{RIS}-0-")}
    doc = _doc()
    doc["spec"]["roles"][0]["replicas"] = 1
    _apply(kubectl, namespace, doc)
    wait_until(
        lambda: (set(_pods(kube, namespace)) == _instance_pods(range(1)), None), 120, "instance 1 gone"
    )
    wait_ready(kube, GROUP, namespace, timeout=120)
    assert {n: p.metadata.uid for n, p in _pods(kube, namespace).items()} == kept
    assert set(_statefulsets(kubectl, namespace)) == {f"{RIS}-0-{c}" for c in ("leader", "worker", "router")}
    # and out again
    _apply(kubectl, namespace, _doc())
    wait_ready(kube, GROUP, namespace, timeout=180)
    assert set(_pods(kube, namespace)) == _instance_pods(range(2))


def test_a_template_change_rolls_instance_by_instance_and_a_failed_pod_recreates_its_instance(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    _apply(kubectl, namespace, _doc())
    wait_ready(kube, GROUP, namespace, timeout=180)

    # a pod of instance 1 restarts: every pod of instance 1 is recreated, instance 0 untouched
    before = uids(kube, namespace, GROUP)
    restart_container(kube, namespace, f"{RIS}-1-worker-0")

    def instance_1_recreated() -> tuple[bool, Any]:
        now = uids(kube, namespace, GROUP)
        fresh = [n for n in _instance_pods(range(1, 2)) if n in now and now[n] != before[n]]
        return len(fresh) == 4, now

    wait_until(instance_1_recreated, 120, "instance 1 recreated")
    now = uids(kube, namespace, GROUP)
    assert {n: now[n] for n in _instance_pods(range(1))} == {n: before[n] for n in _instance_pods(range(1))}
    wait_ready(kube, GROUP, namespace, timeout=120)
    records = (get_rbg(kube, GROUP, namespace).get("status") or {}).get("restartStatus") or {}
    assert [r["scope"] for r in records.get("records") or []] == ["inference/1"]

    # a new image and a third worker: every pod ends on it, and at no moment are both instances
    # unavailable (maxUnavailable 1; an instance not yet rolled counts with the two workers it has)
    doc = _doc()
    for c in doc["spec"]["roles"][0]["customComponentsPattern"]["components"]:
        c["template"]["spec"]["containers"][0]["image"] = "lmsysorg/sglang:v0.5.6"
        if c["name"] == "worker":
            c["size"] = 3
    _apply(kubectl, namespace, doc)
    seen_both_down = False
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ris = _json(kubectl, "get", "roleinstancesets", RIS, "-n", namespace)
        st = ris.get("status") or {}
        now_pods = _pods(kube, namespace)
        if not _up(now_pods, 0) and not _up(now_pods, 1):
            seen_both_down = True
        images = {p.spec.containers[0].image for p in now_pods.values()}
        if st.get("updatedReadyReplicas") == 2 and images == {"lmsysorg/sglang:v0.5.6"}:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"the rollout did not finish: {st}")
    assert not seen_both_down
    wait_ready(kube, GROUP, namespace, timeout=120)
    pods = _pods(kube, namespace)
    assert set(pods) == _instance_pods(range(2)) | {f"{RIS}-{i}-worker-2" for i in (0, 1)}


def test_components_refused_at_apply_name_the_field(namespace: str, kubectl: Any) -> None:
    doc = _doc()
    components = doc["spec"]["roles"][0]["customComponentsPattern"]["components"]
    components.append(copy.deepcopy(components[0]))  # a second "leader"
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode != 0
    assert 'spec.roles[0].components[3].name: duplicate component "leader"' in r.stderr, r.stderr
    assert kubectl("get", "rbg", "-n", namespace, "-o", "name").stdout.strip() == ""
