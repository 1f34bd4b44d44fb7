"""Upstream's documented v1alpha2 shapes (examples/v1alpha2, written here from the reference) on the real
control plane: each reaches Ready with the children it documents, or is refused at apply with the reason
(D39, D42: a role without a workload annotation runs as the kind its pattern maps to)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_rolebasedgroup import wait_ready

pytestmark = pytest.mark.usefixtures("operator")
ROOT = Path(__file__).resolve().parents[2]
SHAPES = ROOT / "examples" / "v1alpha2"
#: the children each documented shape has: workloads (kind, name) -> replicas, and pods in all
CHILDREN: dict[str, tuple[dict[tuple[str, str], int], int]] = {
    "base": ({("StatefulSet", "v2-base-role-1"): 1, ("StatefulSet", "v2-base-role-2"): 2}, 3),
    "role-templates": (
        {("StatefulSet", "v2-templates-role-1"): 1, ("StatefulSet", "v2-templates-role-2"): 1},
        2,
    ),
    "dependencies": ({("StatefulSet", "v2-deps-role-1"): 1, ("StatefulSet", "v2-deps-role-2"): 1}, 2),
    "leader-worker": ({("LeaderWorkerSet", "v2-lwp-inference"): 2}, 6),
    "restart-policy": ({("LeaderWorkerSet", "v2-restart-inference"): 1}, 2),
    "rolling-update": ({("StatefulSet", "v2-rolling-app"): 2}, 2),
    "pd-disagg": (
        {
            ("Deployment", "v2-pd-router"): 1,
            ("StatefulSet", "v2-pd-prefill"): 2,
            ("StatefulSet", "v2-pd-decode"): 1,
        },
        4,
    ),
    "pd-disagg-lws": (
        {
            ("StatefulSet", "v2-pd-lws-router"): 1,
            ("LeaderWorkerSet", "v2-pd-lws-prefill"): 1,
            ("LeaderWorkerSet", "v2-pd-lws-decode"): 1,
        },
        5,
    ),
    # D42: one RoleInstanceSet; its StatefulSets (one per component of each instance) are its own
    "custom-components": ({("RoleInstanceSet", "v2-components-inference"): 2}, 8),
}


def _json(kubectl: Any, *args: str) -> Any:
    r = kubectl(*args, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _workloads(kubectl: Any, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    kinds = "statefulsets,deployments,leaderworkersets,roleinstancesets"
    found = _json(kubectl, "get", kinds, "-n", namespace)["items"]
    owned = [
        w
        for w in found
        if [o["kind"] for o in w["metadata"].get("ownerReferences", [])] == ["RoleBasedGroup"]
    ]
    return {
        (w["kind"], w["metadata"]["name"]): w for w in owned
    }  # a LeaderWorkerSet's own StatefulSets aside


def test_every_documented_v1alpha2_shape_reaches_ready_with_its_children(
    kube: Any, namespace: str, kubectl: Any
) -> None:
    docs = {shape: yaml.safe_load((SHAPES / f"{shape}.yaml").read_text()) for shape in CHILDREN}
    for shape in CHILDREN:
        r = kubectl("apply", "-n", namespace, "-f", str(SHAPES / f"{shape}.yaml"))
        assert r.returncode == 0, (shape, r.stderr)
    for doc in docs.values():
        wait_ready(kube, doc["metadata"]["name"], namespace, timeout=180)
    workloads = _workloads(kubectl, namespace)
    expected = {key: n for children, _ in CHILDREN.values() for key, n in children.items()}
    assert {key: w["spec"]["replicas"] for key, w in workloads.items()} == expected
    policies = {
        n: workloads[("StatefulSet", n)]["spec"]["podManagementPolicy"]
        for n in ("v2-base-role-1", "v2-base-role-2")
    }
    assert policies == {"v2-base-role-1": "Parallel", "v2-base-role-2": "OrderedReady"}
    for key, workload in workloads.items():
        # the API's own role annotations (conversion bookkeeping, the workload type) stay off children
        kept = workload["metadata"].get("annotations") or {}
        assert not [k for k in kept if k.startswith("conversion.workloads.x-k8s.io/")], key
        assert "rbg.workloads.x-k8s.io/role-workload-type" not in kept, key
    pods = _json(kubectl, "get", "pods", "-n", namespace)["items"]
    by_group: dict[str, int] = {}
    for pod in pods:
        group = pod["metadata"]["labels"].get("rbg.workloads.x-k8s.io/group-name", "")
        by_group[group] = by_group.get(group, 0) + 1
    assert by_group == {doc["metadata"]["name"]: CHILDREN[shape][1] for shape, doc in docs.items()}
    # a templateRef patch reaches the pods; the leader/worker patches reach their pods
    cpu = {
        w["metadata"]["name"]: w["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
        for (kind, _), w in workloads.items()
        if w["metadata"]["name"].startswith("v2-templates-")
    }
    assert cpu == {"v2-templates-role-1": "200m", "v2-templates-role-2": "100m"}
    tiers = sorted(
        p["metadata"]["labels"].get("tier", "")
        for p in pods
        if p["metadata"]["labels"].get("rbg.workloads.x-k8s.io/group-name") == "v2-lwp"
    )
    assert tiers == ["leader"] * 2 + ["worker"] * 4
    # sharedServiceSelection LeaderOnly: the role's Service selects the two leaders, not the workers
    selector = _json(kubectl, "get", "service", "s-v2-lwp-inference", "-n", namespace)["spec"]["selector"]
    chosen = [p for p in pods if selector.items() <= p["metadata"]["labels"].items()]
    assert sorted(p["metadata"]["labels"]["tier"] for p in chosen) == ["leader", "leader"]
    # each reads back in v1alpha2 as it was written: no workload annotation added to an unannotated role
    for shape, doc in docs.items():
        back = _json(kubectl, "get", "rbg", doc["metadata"]["name"], "-n", namespace)
        assert back["apiVersion"] == "workloads.x-k8s.io/v1alpha2"
        for written, read in zip(doc["spec"]["roles"], back["spec"]["roles"], strict=True):
            assert (read.get("annotations") or {}) == (written.get("annotations") or {}), (shape, read)


@pytest.mark.parametrize(
    ("two_patterns", "message"),
    [(True, "standalonePattern and leaderWorkerPattern are mutually exclusive")],
    ids=["two-patterns"],
)
def test_documented_refusals_name_the_reason(
    namespace: str, kubectl: Any, two_patterns: bool, message: str
) -> None:
    doc = yaml.safe_load((SHAPES / "custom-components.yaml").read_text())
    if two_patterns:
        role = doc["spec"]["roles"][0]
        template = role.pop("customComponentsPattern")["components"][0]["template"]
        role["leaderWorkerPattern"] = {"size": 2, "template": template}
        role["standalonePattern"] = {"template": template}
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert kubectl("get", "rbg", "-n", namespace, "-o", "name").stdout.strip() == ""
