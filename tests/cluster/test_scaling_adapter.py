"""Scaling adapters on the real control plane: made for a role, driven through /scale (kubectl scale, an
HPA's target), the role's replicas locked to the adapter's, removed with the flag."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.types import PatchType
from test_rolebasedgroup import RBG, create, simple, wait_ready

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
RBGSA = create_namespaced_resource(
    "workloads.x-k8s.io", "v1alpha1", "RoleBasedGroupScalingAdapter", "rolebasedgroupscalingadapters"
)


def adapter(kube: Client, name: str, ns: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = kube.get(RBGSA, name, namespace=ns).to_dict()
    except ApiError:
        return None
    return obj


def test_a_scaling_adapter_drives_its_role_and_locks_its_replicas(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    doc = simple("auto", {"prefill": 2, "router": 1})
    doc["spec"]["roles"][0]["scalingAdapter"] = {"enable": True}
    create(kube, doc, namespace)
    wait_ready(kube, "auto", namespace)

    def bound() -> tuple[bool, Any]:
        obj = adapter(kube, "auto-prefill", namespace) or {}
        st = obj.get("status") or {}
        return st.get("phase") == "Bound" and (obj.get("spec") or {}).get("replicas") == 2, obj

    obj = wait_until(bound, 60, "adapter auto-prefill bound")
    assert obj["status"]["replicas"] == 2
    assert (
        obj["status"]["selector"]
        == "rbg.workloads.x-k8s.io/group-name=auto,rbg.workloads.x-k8s.io/role-name=prefill"
    )
    assert adapter(kube, "auto-router", namespace) is None  # only the enabled role

    # an autoscaler's write through /scale
    r = kubectl("scale", "-n", namespace, "rbgsa/auto-prefill", "--replicas=3")
    assert r.returncode == 0, r.stderr

    def scaled() -> tuple[bool, Any]:
        role = kube.get(RBG, "auto", namespace=namespace).to_dict()["spec"]["roles"][0]["replicas"]
        sts = kube.get(StatefulSet, "auto-prefill", namespace=namespace).spec.replicas
        st = (adapter(kube, "auto-prefill", namespace) or {}).get("status") or {}
        return (role, sts, st.get("replicas")) == (3, 3, 3), (role, sts, st)

    wait_until(scaled, 60, "role, StatefulSet and adapter at 3")
    wait_ready(kube, "auto", namespace)
    scale = json.loads(
        kubectl(
            "get",
            "-n",
            namespace,
            "--raw",
            f"/apis/workloads.x-k8s.io/v1alpha1/namespaces/{namespace}/rolebasedgroupscalingadapters/auto-prefill/scale",
        ).stdout
    )
    assert scale["status"]["replicas"] == 3
    assert scale["status"]["selector"].startswith("rbg.workloads.x-k8s.io/group-name=auto")

    # by hand, the role's replicas are the adapter's: refused with upstream's message
    patch = [{"op": "replace", "path": "/spec/roles/0/replicas", "value": 1}]
    with pytest.raises(ApiError) as refused:
        kube.patch(RBG, "auto", patch, namespace=namespace, patch_type=PatchType.JSON)
    assert "cannot be changed to 1 while scalingAdapter.enable is true and ScalingAdapter " in str(
        refused.value
    )
    assert '"auto-prefill" has spec.replicas 3' in str(refused.value)

    # an HPA may target it
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "auto-prefill"},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "workloads.x-k8s.io/v1alpha1",
                "kind": "RoleBasedGroupScalingAdapter",
                "name": "auto-prefill",
            },
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(hpa))
    assert r.returncode == 0, r.stderr
    kubectl("delete", "-n", namespace, "hpa", "auto-prefill")

    # the flag turned off: the adapter goes
    patch = [{"op": "replace", "path": "/spec/roles/0/scalingAdapter/enable", "value": False}]
    kube.patch(RBG, "auto", patch, namespace=namespace, patch_type=PatchType.JSON)
    wait_until(lambda: (adapter(kube, "auto-prefill", namespace) is None, None), 60, "adapter deleted")
