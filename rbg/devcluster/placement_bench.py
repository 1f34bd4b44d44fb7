"""The placement benchmark of `make bench`: ratio batches on a fragmented cluster, placed by this
operator's planner and, in the same run, by pod affinity alone (correct per-batch labels, no planner).

Each mode runs on a fresh local cluster (16 nodes of 8 GPUs). Filler pods bound directly to nodes leave
them unevenly free (FREE GPUs per node); then GROUPS groups of prefill 4 + decode 2 (1 GPU each), ratio
2 : 1 per node, are created at once: 2 batches of 3 pods per group. Only the nodes with 3 or more free
GPUs can hold a batch. Measured after a fixed window: batches intact (all 3 pods bound on one node),
batches split or partly bound, GPUs held by pods whose batch is not intact (stranded), and the time the
last intact batch was bound.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from lightkube import codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Node, Pod, ServiceAccount

from rbg.devcluster import operator
from rbg.devcluster.cluster import LocalCluster

#: free GPUs left on node i (of 8) by the filler pods: 4 nodes can hold a batch of 3
FREE = (1, 2, 2, 1, 3, 1, 2, 4, 1, 2, 3, 1, 2, 1, 5, 2)
GROUPS = 4
HOST = "kubernetes.io/hostname"
IMAGE = "registry.local/engine:1"
BATCH = "coordination.workloads.x-k8s.io/pd"
GROUP = "rbg.workloads.x-k8s.io/group-name"


def _container(gpus: int) -> dict[str, Any]:
    return {"name": "c", "image": IMAGE, "resources": {"limits": {"nvidia.com/gpu": gpus}}}


def fillers(nodes: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"filler-{i}"},
            "spec": {"nodeName": node, "containers": [_container(8 - FREE[i])]},
        }
        for i, node in enumerate(nodes)
        if 8 - FREE[i] > 0
    ]


def planned_group(name: str) -> dict[str, Any]:
    def role(r: str, n: int) -> dict[str, Any]:
        return {"name": r, "replicas": n, "template": {"spec": {"containers": [_container(1)]}}}

    aff = {"topologyKey": HOST, "ratios": {"prefill": 2, "decode": 1}, "batchMode": "Parallel"}
    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {
            "roles": [role("prefill", 4), role("decode", 2)],
            "coordination": [
                {"name": "pd", "roles": ["prefill", "decode"], "strategy": {"affinityScheduling": aff}}
            ],
        },
    }


def affinity_pods(name: str) -> list[dict[str, Any]]:
    """The same group's pods with correct per-batch labels and a required podAffinity on the batch."""
    out = []
    for role, n, ratio in (("prefill", 4, 2), ("decode", 2, 1)):
        for i in range(n):
            k = str(i // ratio)
            term = {
                "labelSelector": {"matchLabels": {GROUP: name, BATCH: k}},
                "topologyKey": HOST,
            }
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"{name}-{role}-{i}", "labels": {GROUP: name, BATCH: k}},
                    "spec": {
                        "containers": [_container(1)],
                        "affinity": {
                            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
                        },
                    },
                }
            )
    return out


def measure(lc: LocalCluster, mode: str, window: float = 45.0) -> dict[str, Any]:
    lc.down()
    state, _ = lc.up(timeout=300)
    if mode == "planner":
        operator.start(lc)
    with lc.client(state) as client:
        ns = "place"
        client.create(Namespace(metadata=ObjectMeta(name=ns)))
        for _ in range(300):
            try:
                client.get(ServiceAccount, "default", namespace=ns)
                break
            except Exception:
                time.sleep(0.1)
        nodes = sorted(n.metadata.name for n in client.list(Node))
        for f in fillers(nodes):
            client.create(codecs.from_dict(f), namespace=ns)
        time.sleep(2)
        t0 = time.monotonic()
        for g in range(GROUPS):
            name = f"g{g}"
            objs = [planned_group(name)] if mode == "planner" else affinity_pods(name)
            for obj in objs:
                client.create(codecs.from_dict(obj), namespace=ns)
        bound_at: dict[str, float] = {}
        deadline = t0 + window
        while time.monotonic() < deadline:
            for p in client.list(Pod, namespace=ns):
                if p.spec.nodeName and p.metadata.name not in bound_at:
                    bound_at[p.metadata.name] = time.monotonic() - t0
            time.sleep(0.5)
        result = summarize(client.list(Pod, namespace=ns), bound_at)
    lc.down()
    return {"mode": mode, **result}


def summarize(pods: Any, bound_at: dict[str, float]) -> dict[str, Any]:
    batches: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for p in pods:
        labels = p.metadata.labels or {}
        if BATCH in labels:
            batches[(labels[GROUP], labels[BATCH])].append(p)
    intact = split = waiting = stranded_gpus = 0
    last_intact = 0.0
    for members in batches.values():
        nodes = {p.spec.nodeName for p in members if p.spec.nodeName}
        bound = [p for p in members if p.spec.nodeName]
        if len(bound) == len(members) == 3 and len(nodes) == 1:
            intact += 1
            last_intact = max(last_intact, *(bound_at.get(p.metadata.name, 0.0) for p in members))
        elif bound:
            split += 1
            stranded_gpus += len(bound)  # 1 GPU each
        else:
            waiting += 1
    placeable = sum(
        1 for free in FREE if free >= 3
    )  # one batch per node (different batches, different nodes)
    return {
        "batches": len(batches),
        "placeable": min(placeable, len(batches)),
        "intact": intact,
        "split_or_partial": split,
        "not_placed": waiting,
        "stranded_gpus": stranded_gpus,
        "last_intact_bound_s": round(last_intact, 2),
    }


def table(results: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("batches (placeable in one node)", lambda r: f"{r['batches']} ({r['placeable']})"),
        ("placed intact", lambda r: str(r["intact"])),
        ("split or partly bound", lambda r: str(r["split_or_partial"])),
        ("not placed (no pod bound)", lambda r: str(r["not_placed"])),
        ("GPUs held by incomplete batches", lambda r: str(r["stranded_gpus"])),
        ("last intact batch bound (s)", lambda r: f"{r['last_intact_bound_s']:.1f}"),
    ]
    head = ["figure", *(r["mode"] for r in results)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, get in rows:
        lines.append("| " + " | ".join([label, *(get(r) for r in results)]) + " |")
    return "\n".join(lines)


def run(lc: LocalCluster) -> list[dict[str, Any]]:
    return [measure(lc, "planner"), measure(lc, "affinity-only")]
