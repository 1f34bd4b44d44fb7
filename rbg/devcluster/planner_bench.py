"""Micro-benchmark of the placement planner (pure, no cluster): milliseconds per batch, placing batch
after batch with the capacity each takes counted for the next (as one pass of the coordination
controller does), each batch in a domain of its own.

- `hostname`: 1,000 nodes of 8 GPUs, unevenly used (0-8 GPUs, seeded), 100 batches of 2 prefill +
  1 decode (2 GPUs, 8 CPUs, 64Gi each) on the hostname key: every batch fits on one node.
- `racks`: 1,000 nodes of 16 GPUs in 100 racks of 10 on a rack key; 80 racks fragmented (each node
  0-11 GPUs free, seeded: most pass the total-capacity check, many cannot be packed), 20 racks empty;
  100 batches of 8 prefill (3 GPUs) + 4 decode (5 GPUs), 44 GPUs a batch.

Each is measured through the pass-level API (one `Cluster`, `take()` after each batch) and through the
one-batch wrapper `place()` (a fresh index per batch, as callers that have not moved do), best of a few
rounds; the figures are reported, never asserted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from rbg.coordination.planner import Cluster, NodeInfo, Placed, PodNeeds, Unplaceable, place

GPU = "nvidia.com/gpu"
HOST = "kubernetes.io/hostname"
GI = Decimal(2**30)
Scenario = tuple[list[NodeInfo], dict[str, dict[str, Decimal]], list[list[PodNeeds]], str]
PlaceFn = Callable[..., Placed | Unplaceable]


def _node(name: str, rack: str, gpus: int) -> NodeInfo:
    alloc = {GPU: Decimal(gpus), "cpu": Decimal(64), "memory": 512 * GI, "pods": Decimal(110)}
    return NodeInfo(name, {HOST: name, "rack": rack}, alloc)


def hostname_scenario(seed: int = 1) -> Scenario:
    rng = random.Random(seed)  # noqa: S311 - a benchmark's reproducible cluster, not a secret
    nodes = [_node(f"n{i:04d}", f"r{i // 10:02d}", 8) for i in range(1000)]
    used = {}
    for n in nodes:
        g = rng.choice([0, 2, 4, 6, 8])
        used[n.name] = {
            GPU: Decimal(g),
            "cpu": Decimal(4 * g),
            "memory": 32 * g * GI,
            "pods": Decimal(g // 2),
        }
    req = {GPU: Decimal(2), "cpu": Decimal(8), "memory": 64 * GI}
    batches = [
        [PodNeeds(f"b{b}-prefill-{i}", req) for i in range(2)] + [PodNeeds(f"b{b}-decode-0", req)]
        for b in range(100)
    ]
    return nodes, used, batches, HOST


def racks_scenario(seed: int = 1) -> Scenario:
    rng = random.Random(seed)  # noqa: S311 - a benchmark's reproducible cluster, not a secret
    nodes, used = [], {}
    for r in range(100):
        for j in range(10):
            n = _node(f"n{r:02d}-{j}", f"r{r:02d}", 16)
            nodes.append(n)
            if r % 5:  # 80 fragmented racks, 20 empty ones
                used[n.name] = {GPU: Decimal(16 - rng.choice([0, 2, 3, 4, 5, 6, 7, 9, 11]))}
    batches = [
        [PodNeeds(f"b{b}-prefill-{i}", {GPU: Decimal(3)}) for i in range(8)]
        + [PodNeeds(f"b{b}-decode-{i}", {GPU: Decimal(5)}) for i in range(4)]
        for b in range(100)
    ]
    return nodes, used, batches, "rack"


def pass_with_cluster(scenario: Scenario) -> tuple[int, float]:
    """Batches placed and seconds for one pass through the pass-level API."""
    nodes, used, batches, key = scenario
    start = time.perf_counter()
    cluster, taken, placed = Cluster(nodes, used), set[str](), 0
    for b, pods in enumerate(batches):
        result = cluster.place(pods, [key], b, taken)
        if isinstance(result, Placed):
            placed += 1
            taken.add(result.domain)
            cluster.take(result.nodes, pods)
    return placed, time.perf_counter() - start


def pass_with_place(scenario: Scenario, place_fn: PlaceFn = place) -> tuple[int, float]:
    """Batches placed and seconds for one pass through a one-batch `place(nodes, used, pods, key,
    batch, avoid)` (this planner's wrapper, or another planner's for a comparison)."""
    nodes, used, batches, key = scenario
    start = time.perf_counter()
    have = {n: dict(v) for n, v in used.items()}
    taken: set[str] = set()
    placed = 0
    for b, pods in enumerate(batches):
        result: Any = place_fn(nodes, have, pods, key, b, taken)
        if hasattr(result, "domain"):  # a Placed (of whichever planner)
            placed += 1
            taken.add(result.domain)
            for p in pods:
                room = have.setdefault(result.nodes[p.name], {})
                for res, v in {**p.requests, "pods": p.requests.get("pods", Decimal(0)) + 1}.items():
                    room[res] = room.get(res, Decimal(0)) + v
    return placed, time.perf_counter() - start


def _best(measure: Callable[[], tuple[int, float]], rounds: int) -> dict[str, Any]:
    runs = [measure() for _ in range(rounds)]
    placed, seconds = runs[0][0], min(s for _, s in runs)
    return {"placed": placed, "seconds": round(seconds, 4)}


def run(rounds: int = 3, place_fn: PlaceFn | None = None) -> dict[str, Any]:
    """ms per batch (attempted and placed) for each scenario and API, best of `rounds`."""
    out: dict[str, Any] = {}
    for name, build in (("hostname", hostname_scenario), ("racks", racks_scenario)):
        scenario = build()
        batches = len(scenario[2])
        rows: dict[str, Any] = {}
        measures: list[tuple[str, Callable[[], tuple[int, float]]]] = []
        if place_fn is None:
            measures.append(("Cluster", partial(pass_with_cluster, scenario)))
        measures.append(("place()", partial(pass_with_place, scenario, place_fn or place)))
        for api, measure in measures:
            r = _best(measure, rounds)
            r["ms_per_batch"] = round(1000 * r["seconds"] / batches, 2)
            r["ms_per_placed"] = round(1000 * r["seconds"] / r["placed"], 2) if r["placed"] else None
            rows[api] = r
        out[name] = {"nodes": len(scenario[0]), "batches": batches, "key": scenario[3], "apis": rows}
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        "| scenario | key | nodes | batches | API | placed | seconds | ms / batch | ms / batch placed |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name, s in result.items():
        for api, r in s["apis"].items():
            per_placed = "-" if r["ms_per_placed"] is None else f"{r['ms_per_placed']:.2f}"
            lines.append(
                f"| {name} | {s['key']} | {s['nodes']} | {s['batches']} | `{api}` | {r['placed']} | "
                f"{r['seconds']:.3f} | {r['ms_per_batch']:.2f} | {per_placed} |"
            )
    return "\n".join(lines)


def main() -> None:
    print(table(run()))


if __name__ == "__main__":
    main()
