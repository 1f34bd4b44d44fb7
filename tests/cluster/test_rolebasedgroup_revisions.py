"""Revisions on the real control plane: a role's template change rolls only that role, the group keeps a
ControllerRevision per change, and `rbg rollout history | diff | undo` read and restore them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import ControllerRevision
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType
from test_rolebasedgroup import RBG, create, simple, wait_ready

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
GROUP = "rbg.workloads.x-k8s.io/group-name"
ROLE = "rbg.workloads.x-k8s.io/role-name"
ROLE_REVISION = "rbg.workloads.x-k8s.io/role-revision"


def _pods(kube: Client, namespace: str, role: str) -> dict[str, Any]:
    return {
        p.metadata.name: p
        for p in kube.list(Pod, namespace=namespace, labels={GROUP: "rev", ROLE: role})
        if p.metadata.deletionTimestamp is None
    }


def _image(kube: Client, namespace: str, image: str, replicas: int) -> tuple[bool, Any]:
    pods = _pods(kube, namespace, "prefill")
    images = sorted(p.spec.containers[0].image for p in pods.values())
    return images == [image] * replicas, images


def test_an_image_change_rolls_one_role_is_recorded_and_undone(
    kube: Client, namespace: str, cluster: Any
) -> None:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}

    def rbg(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "rbg.cli.main", "rollout", *args, "-n", namespace],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    doc = simple("rev", {"prefill": 3, "decode": 2})
    doc["spec"]["roles"][0]["rolloutStrategy"] = {"rollingUpdate": {"maxUnavailable": 1}}
    create(kube, doc, namespace)
    wait_ready(kube, "rev", namespace)
    decode = {n: p.metadata.uid for n, p in _pods(kube, namespace, "decode").items()}
    old_label = {p.metadata.labels[ROLE_REVISION] for p in _pods(kube, namespace, "prefill").values()}
    assert len(old_label) == 1

    image = [
        {"op": "test", "path": "/spec/roles/0/name", "value": "prefill"},
        {
            "op": "replace",
            "path": "/spec/roles/0/template/spec/containers/0/image",
            "value": "registry.local/engine:2",
        },
    ]
    kube.patch(RBG, "rev", image, namespace=namespace, patch_type=PatchType.JSON)
    wait_until(lambda: _image(kube, namespace, "registry.local/engine:2", 3), 180, "prefill on engine:2")
    wait_ready(kube, "rev", namespace)
    assert {n: p.metadata.uid for n, p in _pods(kube, namespace, "decode").items()} == decode
    new_label = {p.metadata.labels[ROLE_REVISION] for p in _pods(kube, namespace, "prefill").values()}
    assert len(new_label) == 1
    assert new_label != old_label

    # scaling is no new revision
    kube.patch(
        RBG,
        "rev",
        [
            {"op": "test", "path": "/spec/roles/0/name", "value": "prefill"},
            {"op": "replace", "path": "/spec/roles/0/replicas", "value": 4},
        ],
        namespace=namespace,
        patch_type=PatchType.JSON,
    )
    wait_until(lambda: _image(kube, namespace, "registry.local/engine:2", 4), 120, "prefill scaled to 4")
    rows = json.loads(rbg("history", "rev", "-o", "json"))
    assert [(r["revision"], r["current"]) for r in rows] == [(1, False), (2, True)], rows
    owned = kube.list(ControllerRevision, namespace=namespace, labels={GROUP: "rev"})
    ours = [r for r in owned if any(o.kind == "RoleBasedGroup" for o in r.metadata.ownerReferences or [])]
    assert sorted(r.revision for r in ours) == [1, 2]  # the StatefulSets keep revisions of their own
    assert "registry.local/engine:1" in rbg("history", "rev", "--revision", "1")
    text = rbg("diff", "rev", "--revision", "1").splitlines()
    assert [line for line in text if line.startswith("-") and "engine:1" in line], text
    assert [line for line in text if line.startswith("+") and "engine:2" in line], text

    assert "rolled back to revision 1" in rbg("undo", "rev")
    wait_until(lambda: _image(kube, namespace, "registry.local/engine:1", 4), 180, "prefill back on engine:1")
    wait_ready(kube, "rev", namespace)
    spec = kube.get(RBG, "rev", namespace=namespace).to_dict()["spec"]
    assert spec["roles"][0]["replicas"] == 4  # undo keeps today's replicas
    assert {p.metadata.labels[ROLE_REVISION] for p in _pods(kube, namespace, "prefill").values()} == old_label
    rows = json.loads(rbg("history", "rev", "-o", "json"))
    assert [(r["revision"], r["current"]) for r in rows] == [(1, False), (2, False), (3, True)], rows
    assert {n: p.metadata.uid for n, p in _pods(kube, namespace, "decode").items()} == decode
