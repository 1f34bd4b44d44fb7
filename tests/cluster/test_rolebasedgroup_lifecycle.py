"""Group lifecycle on the real control plane: startupPolicy Parallel, a paused rollout held where it is."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType
from test_rolebasedgroup import RBG, create, simple, wait_ready

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
GROUP = "rbg.workloads.x-k8s.io/group-name"


def test_parallel_startup_creates_a_role_whose_dependency_is_not_ready(kube: Client, namespace: str) -> None:
    doc = simple("par", {"prefill": 1, "decode": 1}, startupPolicy="Parallel")
    prefill, decode = doc["spec"]["roles"]
    prefill["template"]["spec"]["nodeSelector"] = {"no-such-label": "x"}  # never Ready
    decode["dependencies"] = ["prefill"]
    create(kube, doc, namespace)
    wait_until(
        lambda: (
            any(s.metadata.name == "par-decode" for s in kube.list(StatefulSet, namespace=namespace)),
            None,
        ),
        60,
        "decode created before prefill is Ready",
    )
    ordered = simple("ord", {"prefill": 1, "decode": 1})
    ordered["spec"]["roles"][0]["template"]["spec"]["nodeSelector"] = {"no-such-label": "x"}
    ordered["spec"]["roles"][1]["dependencies"] = ["prefill"]
    create(kube, ordered, namespace)
    wait_until(
        lambda: (
            any(s.metadata.name == "ord-prefill" for s in kube.list(StatefulSet, namespace=namespace)),
            None,
        ),
        60,
        "ord-prefill created",
    )
    names = {s.metadata.name for s in kube.list(StatefulSet, namespace=namespace)}
    assert "ord-decode" not in names  # Ordered (the default) still waits


def pods_by_name(kube: Client, namespace: str, group: str) -> dict[str, Any]:
    return {p.metadata.name: p for p in kube.list(Pod, namespace=namespace, labels={GROUP: group})}


def test_a_paused_rollout_holds_the_pods_and_resuming_rolls_them(kube: Client, namespace: str) -> None:
    doc = simple("hold", {"prefill": 3})
    create(kube, doc, namespace)
    wait_ready(kube, "hold", namespace)
    before = {n: p.metadata.uid for n, p in pods_by_name(kube, namespace, "hold").items()}
    patch = {
        "spec": {
            "roles": [
                {
                    **doc["spec"]["roles"][0],
                    "template": {
                        "spec": {"containers": [{"name": "main", "image": "registry.local/engine:2"}]}
                    },
                    "rolloutStrategy": {"rollingUpdate": {"paused": True}},
                }
            ]
        }
    }
    kube.patch(RBG, "hold", patch, namespace=namespace, patch_type=PatchType.MERGE)

    def held() -> tuple[bool, Any]:
        sts = kube.get(StatefulSet, "hold-prefill", namespace=namespace)
        st = sts.status
        image = sts.spec.template.spec.containers[0].image
        seen = (image, sts.spec.updateStrategy.rollingUpdate, st.observedGeneration, sts.metadata.generation)
        return (
            image == "registry.local/engine:2"
            and st.observedGeneration == sts.metadata.generation
            and st.updateRevision != st.currentRevision
        ), seen

    wait_until(held, 60, "the StatefulSet has the new template and has seen it")
    sts = kube.get(StatefulSet, "hold-prefill", namespace=namespace)
    assert sts.spec.updateStrategy.rollingUpdate.partition == 3  # held at replicas
    after = {n: p.metadata.uid for n, p in pods_by_name(kube, namespace, "hold").items()}
    assert after == before  # nothing rolled while paused
    patch["spec"]["roles"][0]["rolloutStrategy"] = {"rollingUpdate": {"paused": False}}
    kube.patch(RBG, "hold", patch, namespace=namespace, patch_type=PatchType.MERGE)

    def rolled() -> tuple[bool, Any]:
        pods = pods_by_name(kube, namespace, "hold")
        images = {n: p.spec.containers[0].image for n, p in pods.items()}
        fresh = all(before.get(n) != p.metadata.uid for n, p in pods.items())
        return len(pods) == 3 and fresh and set(images.values()) == {"registry.local/engine:2"}, images

    wait_until(rolled, 120, "every pod on the new template once resumed")
    wait_ready(kube, "hold", namespace)


def test_rbg_rollout_pause_status_and_resume(kube: Client, namespace: str, cluster: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}

    def rbg(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "rbg.cli.main", *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    doc = simple("cli", {"prefill": 2})
    create(kube, doc, namespace)
    wait_ready(kube, "cli", namespace)
    assert rbg("rollout", "pause", "cli", "-n", namespace).strip() == "rolebasedgroup/cli paused"
    role = kube.get(RBG, "cli", namespace=namespace).to_dict()["spec"]["roles"][0]
    assert role["rolloutStrategy"]["rollingUpdate"]["paused"] is True
    image = [
        {
            "op": "replace",
            "path": "/spec/roles/0/template/spec/containers/0/image",
            "value": "registry.local/engine:3",
        }
    ]
    kube.patch(RBG, "cli", image, namespace=namespace, patch_type=PatchType.JSON)

    def seen_paused() -> tuple[bool, Any]:
        rows = json.loads(rbg("rollout", "status", "cli", "-n", namespace, "-o", "json"))
        return rows[0]["paused"] and rows[0]["updated"] == 0, rows

    wait_until(seen_paused, 60, "paused, no pod on the new template")
    assert "rolebasedgroup/cli resumed" in rbg("rollout", "resume", "cli", "-n", namespace)

    def complete() -> tuple[bool, Any]:
        text = rbg("rollout", "status", "cli", "-n", namespace)
        return "prefill: 2/2 on the current template, 2 ready (complete)" in text, text

    wait_until(complete, 120, "the rollout completes once resumed")
