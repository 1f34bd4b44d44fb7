"""Ratio placement of coordinated roles (AffinityScheduling) on the real scheduler: batches planned by
the capacity-aware planner, released by removing a scheduling gate, each batch inside one domain."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.core_v1 import Event, Node, Pod
from tests_rbg_helpers import RBG, wait_rbg_ready

pytestmark = pytest.mark.usefixtures("operator")
HOST = "kubernetes.io/hostname"
RACK = "topology.rbg.workloads.x-k8s.io/rack"
BATCH = "coordination.workloads.x-k8s.io/pd"
GATE = "rbg.workloads.x-k8s.io/coordination"


def pd_group(
    name: str, prefill: int, decode: int, key: str = HOST, gpus: int = 1, **affinity: Any
) -> dict[str, Any]:
    def role(r: str, n: int) -> dict[str, Any]:
        c = {"name": r, "image": "vllm/vllm-openai:latest", "resources": {"limits": {"nvidia.com/gpu": gpus}}}
        return {"name": r, "replicas": n, "template": {"spec": {"containers": [c]}}}

    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {
            "coordination": [
                {
                    "name": "pd",
                    "type": "AffinityScheduling",
                    "roles": ["prefill", "decode"],
                    "strategy": {
                        "affinityScheduling": {
                            "topologyKey": key,
                            "ratios": {"prefill": 2, "decode": 1},
                            "batchMode": "Sequential",
                            **affinity,
                        }
                    },
                }
            ],
            "roles": [role("prefill", prefill), role("decode", decode)],
        },
    }


def batches_by_domain(kube: Client, ns: str, key: str) -> dict[str, set[str]]:
    labels = {n.metadata.name: n.metadata.labels for n in kube.list(Node)}
    out: dict[str, set[str]] = defaultdict(set)
    for p in kube.list(Pod, namespace=ns):
        if p.spec.nodeName and BATCH in (p.metadata.labels or {}):
            out[p.metadata.labels[BATCH]].add(labels[p.spec.nodeName][key])
    return dict(out)


class PodWatch:
    """Every change of the namespace's pods, in the API server's order: (pod, gated, bound)."""

    def __init__(self, kube: Client, ns: str) -> None:
        self.changes: list[tuple[str, bool, bool, str | None]] = []
        self._kube, self._ns = kube, ns

        def run() -> None:
            try:
                for _, pod in kube.watch(Pod, namespace=ns):
                    gated = any(g.name == GATE for g in pod.spec.schedulingGates or [])
                    batch = (pod.metadata.labels or {}).get(BATCH)
                    self.changes.append((pod.metadata.name, gated, bool(pod.spec.nodeName), batch))
            except Exception:  # noqa: S110 - the watch ends with the test
                pass

        threading.Thread(target=run, daemon=True).start()


def test_the_seeds_example_places_each_batch_on_its_own_node_one_after_another(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    watch = PodWatch(kube, namespace)
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("pd6", 6, 3)))
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr  # acted on
    wait_rbg_ready(kube, "pd6", namespace)
    placed = batches_by_domain(kube, namespace, HOST)
    assert sorted(placed) == ["0", "1", "2"]
    assert all(len(nodes) == 1 for nodes in placed.values()), placed  # each batch's 3 pods on one node
    assert len(set().union(*placed.values())) == 3, placed  # three different nodes
    for p in kube.list(Pod, namespace=namespace):  # batch k = ordinal // ratio
        i = int(p.metadata.name.rsplit("-", 1)[1])
        ratio = 2 if "prefill" in p.metadata.name else 1
        assert p.metadata.labels[BATCH] == str(i // ratio)

    # Sequential: no pod of batch k is released before every pod of batch k-1 is bound
    def first(pred: Any) -> int:
        return next(i for i, c in enumerate(watch.changes) if pred(c))

    for k in (1, 2):
        released = first(lambda c, k=k: c[3] == str(k) and not c[1])
        bound_before = max(i for i, c in enumerate(watch.changes) if c[3] == str(k - 1) and c[2])
        last_bound = max(
            first(lambda c, n=n: c[0] == n and c[2])
            for n in {c[0] for c in watch.changes if c[3] == str(k - 1)}
        )
        assert released > last_bound, (k, released, last_bound, bound_before)

    status = kube.get(RBG, "pd6", namespace=namespace).to_dict()["status"]["coordinationStatus"][0]
    assert (status["phase"], status["totalBatches"], status["placedBatches"]) == ("Completed", 3, 3)
    assert [b["phase"] for b in status["batches"]] == ["Bound"] * 3
    reasons = {e.reason for e in kube.list(Event, namespace=namespace)}
    assert {"BatchPlanned", "BatchBound"} <= reasons


def test_rack_as_the_key_keeps_each_batch_inside_one_rack(kube: Client, namespace: str, kubectl: Any) -> None:
    # 8 GPUs a pod: a batch of 3 needs three nodes, so only the rack can hold it
    r = kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("racks", 4, 2, key=RACK, gpus=8))
    )
    assert r.returncode == 0, r.stderr
    wait_rbg_ready(kube, "racks", namespace)
    placed = batches_by_domain(kube, namespace, RACK)
    assert sorted(placed) == ["0", "1"]
    assert all(len(racks) == 1 for racks in placed.values()), placed
    assert placed["0"] != placed["1"]


def test_replicas_not_divisible_by_the_ratio_is_rejected_at_apply_and_on_scale(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("odd", 7, 3)))
    assert r.returncode != 0
    assert 'role "prefill" has 7 replicas which is not divisible by ratio 2' in r.stderr
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("even", 6, 3)))
    assert r.returncode == 0, r.stderr
    scale = '[{"op": "replace", "path": "/spec/roles/0/replicas", "value": 7}]'
    r = kubectl("patch", "-n", namespace, "rbg", "even", "--type=json", "-p", scale)
    assert r.returncode != 0
    assert 'role "prefill" has 7 replicas which is not divisible by ratio 2' in r.stderr
