"""Both served versions on the real control plane: upstream's current v1alpha2 (the storage version)
and v1alpha1, one object read in either, converted by the operator's webhook (D38)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from test_rolebasedgroup import get_rbg, wait_ready

pytestmark = pytest.mark.usefixtures("operator")
TEMPLATE = {"spec": {"containers": [{"name": "engine", "image": "registry.local/engine:1"}]}}


def v1alpha2_group(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha2",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {
            "roles": [
                {
                    "name": "prefill",
                    "replicas": 2,
                    "annotations": {"rbg.workloads.x-k8s.io/role-workload-type": "apps/v1/StatefulSet"},
                    "standalonePattern": {"template": TEMPLATE},
                },
                {
                    "name": "decode",
                    "replicas": 1,
                    "dependencies": ["prefill"],
                    "annotations": {"rbg.workloads.x-k8s.io/role-workload-type": "apps/v1/Deployment"},
                    "standalonePattern": {"template": TEMPLATE},
                },
            ]
        },
    }


def read(kubectl: Any, namespace: str, resource: str, name: str) -> dict[str, Any]:
    r = kubectl("get", resource, name, "-n", namespace, "-o", "json")
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def test_a_v1alpha2_group_runs_and_reads_as_v1alpha1(kube: Any, namespace: str, kubectl: Any) -> None:
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(v1alpha2_group("pd2")))
    assert r.returncode == 0, r.stderr
    wait_ready(kube, "pd2", namespace)
    sts = read(kubectl, namespace, "statefulset", "pd2-prefill")
    assert sts["spec"]["replicas"] == 2
    assert read(kubectl, namespace, "deployment", "pd2-decode")["spec"]["replicas"] == 1
    as_v2 = read(kubectl, namespace, "rbg", "pd2")  # the preferred version
    assert as_v2["apiVersion"] == "workloads.x-k8s.io/v1alpha2"
    assert (
        as_v2["spec"]["roles"][0]["standalonePattern"]["template"]["spec"]["containers"][0]["name"]
        == "engine"
    )
    as_v1 = read(kubectl, namespace, "rolebasedgroups.v1alpha1.workloads.x-k8s.io", "pd2")
    assert as_v1["apiVersion"] == "workloads.x-k8s.io/v1alpha1"
    assert [(r["name"], r["workload"]["kind"]) for r in as_v1["spec"]["roles"]] == [
        ("prefill", "StatefulSet"),
        ("decode", "Deployment"),
    ]
    assert as_v1["status"] == as_v2["status"]


def test_a_v1alpha1_group_reads_as_v1alpha2_and_back_unchanged(
    kube: Any, namespace: str, kubectl: Any
) -> None:
    doc = {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": "pd1"},
        "spec": {
            "startupPolicy": "Parallel",
            "roles": [
                {
                    "name": "prefill",
                    "replicas": 1,
                    "template": TEMPLATE,
                    "restartPolicy": "RecreateRBGOnPodRestart",
                },
            ],
        },
    }
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode == 0, r.stderr
    wait_ready(kube, "pd1", namespace)
    as_v2 = read(kubectl, namespace, "rbg", "pd1")
    assert "standalonePattern" in as_v2["spec"]["roles"][0]
    # what v1alpha2 has no field for rides in an annotation and comes back
    as_v1 = get_rbg(kube, "pd1", namespace)
    assert as_v1["spec"]["startupPolicy"] == "Parallel"
    assert as_v1["spec"]["roles"][0]["restartPolicy"] == "RecreateRBGOnPodRestart"
    assert as_v1["spec"]["roles"][0]["template"] == TEMPLATE
