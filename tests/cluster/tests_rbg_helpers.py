"""RoleBasedGroup helpers shared by test modules."""

from __future__ import annotations

from typing import Any

from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource

from rbg.devcluster.wait import wait_until

RBG = create_namespaced_resource("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups")


def wait_rbg_ready(kube: Client, name: str, ns: str, timeout: float = 120) -> dict[str, Any]:
    def probe() -> tuple[bool, Any]:
        obj = kube.get(RBG, name, namespace=ns).to_dict()
        st = obj.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))
        return ready and st.get("observedGeneration") == obj["metadata"]["generation"], st

    result: dict[str, Any] = wait_until(probe, timeout, f"RoleBasedGroup {name} Ready")
    return result
