"""Coordinated rolling update and scaling on the real control plane (D34), and a rollout that survives
the operator being killed in the middle of it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType
from test_rolebasedgroup import RBG, create, get_rbg, simple, wait_ready

from rbg.devcluster import operator as op
from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
GROUP = "rbg.workloads.x-k8s.io/group-name"
ROLE = "rbg.workloads.x-k8s.io/role-name"
NEW = "registry.local/engine:2"


class Sampler:
    """Calls `probe` every 50 ms in a thread until stopped; keeps what it returned (and the last errors)."""

    def __init__(self, probe: Callable[[], Any]) -> None:
        self.seen: list[Any] = []
        self.errors: list[str] = []
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.seen.append(probe())
                except Exception as e:  # a missed sample, kept for the message
                    self.errors = [*self.errors[-3:], repr(e)]
                self._stop.wait(0.05)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> list[Any]:
        self._stop.set()
        self._thread.join()
        assert self.seen, f"the sampler saw nothing: {self.errors}"
        return self.seen


def test_coordinated_rolling_update_keeps_the_updated_fractions_within_max_skew(
    kube: Client, namespace: str
) -> None:
    doc = simple("skew", {"prefill": 6, "decode": 3})
    doc["spec"]["coordination"] = [
        {"name": "pd", "roles": ["prefill", "decode"], "strategy": {"rollingUpdate": {"maxSkew": "34%"}}}
    ]
    create(kube, doc, namespace)
    wait_ready(kube, "skew", namespace)

    def fractions() -> tuple[float, float]:
        on: dict[str, int] = {"prefill": 0, "decode": 0}
        for p in kube.list(Pod, namespace=namespace, labels={GROUP: "skew"}):
            if p.metadata.deletionTimestamp is None and p.spec.containers[0].image == NEW:
                on[p.metadata.labels[ROLE]] += 1
        return on["prefill"] / 6, on["decode"] / 3

    sampler = Sampler(fractions)
    ops = [
        {"op": "replace", "path": f"/spec/roles/{i}/template/spec/containers/0/image", "value": NEW}
        for i in (0, 1)
    ]
    kube.patch(RBG, "skew", ops, namespace=namespace, patch_type=PatchType.JSON)
    try:
        wait_until(lambda: (fractions() == (1.0, 1.0), fractions()), 240, "both roles rolled")
        wait_ready(kube, "skew", namespace)
    finally:
        seen = sampler.stop()
    worst = max(abs(p - d) for p, d in seen)
    assert worst <= 0.34, [s for s in seen if abs(s[0] - s[1]) > 0.34][:5]
    assert any(0 < p < 1 or 0 < d < 1 for p, d in seen)  # the sampler saw the rollout, not just its ends
    progress = get_rbg(kube, "skew", namespace)["status"]["coordinationProgress"]
    assert progress == [
        {"name": "pd", "type": "RollingUpdate", "phase": "Completed", "progress": "prefill 6/6, decode 3/3"}
    ]


def test_coordinated_scaling_steps_15_5_then_30_10(kube: Client, namespace: str) -> None:
    doc = simple("grow", {"prefill": 300, "decode": 100})
    doc["spec"]["coordination"] = [
        {
            "name": "pd",
            "roles": ["prefill", "decode"],
            "strategy": {"scaling": {"maxSkew": "5%", "progression": "OrderScheduled"}},
        }
    ]

    def replicas() -> tuple[int, int]:
        def of(role: str) -> int:
            try:
                return kube.get(StatefulSet, f"grow-{role}", namespace=namespace).spec.replicas or 0
            except Exception:
                return 0

        return of("prefill"), of("decode")

    sampler = Sampler(replicas)
    create(kube, doc, namespace)
    try:
        wait_until(lambda: (replicas()[0] >= 45, replicas()), 180, "three steps of scaling")
    finally:
        seen = sampler.stop()

    def values(i: int) -> list[int]:  # each role's replicas as written, in order (two GETs per sample)
        out: list[int] = []
        for sample in seen:
            if sample[i] and (not out or sample[i] != out[-1]):
                out.append(sample[i])
        return out

    assert values(0)[:2] == [15, 30], values(0)  # upstream's oracle: 15/5, then 30/10
    assert values(1)[:2] == [5, 10], values(1)


def test_the_operator_killed_mid_rollout_resumes_it(kube: Client, namespace: str, local_cluster: Any) -> None:
    doc = simple("resume", {"prefill": 4})
    doc["spec"]["roles"][0]["rolloutStrategy"] = {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    create(kube, doc, namespace)
    wait_ready(kube, "resume", namespace)
    ops = [{"op": "replace", "path": "/spec/roles/0/template/spec/containers/0/image", "value": NEW}]
    kube.patch(RBG, "resume", ops, namespace=namespace, patch_type=PatchType.JSON)

    def images() -> list[str]:
        return sorted(
            p.spec.containers[0].image
            for p in kube.list(Pod, namespace=namespace, labels={GROUP: "resume"})
            if p.metadata.deletionTimestamp is None
        )

    wait_until(lambda: (NEW in images(), images()), 120, "the rollout under way")
    op.stop(local_cluster)  # killed mid-rollout: the surge and the partition are where it left them
    try:
        assert images() != [NEW] * 4  # not finished: what follows is the new operator's doing
    finally:
        op.start(local_cluster)
    wait_until(lambda: (images() == [NEW] * 4, images()), 180, "the rollout finished by the new operator")
    wait_ready(kube, "resume", namespace)
    assert kube.get(StatefulSet, "resume-prefill", namespace=namespace).spec.replicas == 4  # surge given back
