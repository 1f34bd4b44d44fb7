"""Admission latency while a big pass plans (pure, no cluster): the operator's webhooks share its event
loop with the coordination controller, so a plan that ran on the loop held every admission request.

One pass of `rbg.coordination.release.decide` for a Parallel coordination of 100 batches (2 prefill + 1
decode, 2 GPUs each) over 1,000 nodes of 8 GPUs, unevenly used, and of 500 batches over 5,000 nodes,
while an aiohttp server on loopback answers admission-sized POSTs (the pod webhook's own work:
gating.mutate and a JSON patch) sent one after another by a client thread. Measured twice: the pass on
the loop (as before D27) and in a worker thread (as the controller runs it now); the longest request is
the figure that matters (a webhook call the API server gives up on after 10 s); reported, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import threading
import time
import urllib.request
from decimal import Decimal
from typing import Any

from aiohttp import web

from rbg.api.hub import RoleBasedGroup
from rbg.coordination import batches, gating, release

HOST = "kubernetes.io/hostname"
Obj = dict[str, Any]


def scenario(
    nodes: int = 1000, groups: int = 100, seed: int = 1
) -> tuple[RoleBasedGroup, list[Obj], list[Obj], Any]:
    tpl = {
        "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"nvidia.com/gpu": 2}}}]}
    }
    rbg = RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": {
                "roles": [
                    {"name": "prefill", "replicas": 2 * groups, "template": tpl},
                    {"name": "decode", "replicas": groups, "template": tpl},
                ],
                "coordination": [
                    {
                        "name": "pd",
                        "roles": ["prefill", "decode"],
                        "strategy": {
                            "affinityScheduling": {
                                "topologyKey": HOST,
                                "ratios": {"prefill": 2, "decode": 1},
                                "batchMode": "Parallel",
                            }
                        },
                    }
                ],
            },
        }
    )
    rng = random.Random(seed)  # noqa: S311 - a benchmark's reproducible load, not a secret
    node_objs = [
        {
            "metadata": {"name": f"n{i:04d}", "labels": {HOST: f"n{i:04d}"}},
            "spec": {},
            "status": {
                "allocatable": {"nvidia.com/gpu": "8", "cpu": "64", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        for i in range(nodes)
    ]
    used_d = {f"n{i:04d}": {"nvidia.com/gpu": Decimal(rng.choice([0, 2, 4, 6, 8]))} for i in range(nodes)}
    pods = []
    for role, n in (("prefill", 2 * groups), ("decode", groups)):
        for i in range(n):
            pod = {
                "metadata": {
                    "name": f"g-{role}-{i}",
                    "uid": f"{role}{i}",
                    "labels": {
                        batches.GROUP_NAME: "g",
                        batches.ROLE_NAME: role,
                        batches.POD_INDEX: str(i),
                        batches.COORDINATED: batches.layout(rbg, role),
                    },
                },
                "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 2}}}]},
            }
            mutated = gating.mutate(pod, rbg)
            assert mutated is not None
            pods.append(mutated)
    return rbg, pods, node_objs, used_d


def _plan(case: tuple[RoleBasedGroup, list[Obj], list[Obj], Any]) -> release.Decision:
    rbg, pods, nodes, used = case
    coord, aff = batches.affinity_coordinations(rbg)[0]
    return release.decide(rbg, coord, aff, pods, nodes, used)


async def _measure(case: Any, off_loop: bool) -> dict[str, float]:
    rbg = case[0]
    pod = json.dumps(case[1][0])

    async def admit(request: web.Request) -> web.Response:
        body = await request.json()
        mutated = gating.mutate(body, rbg)
        return web.json_response({"allowed": True, "patch": mutated is not None})

    app = web.Application()
    app.router.add_post("/mutate", admit)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    latencies: list[float] = []
    done = threading.Event()

    def client() -> None:  # another thread, as the API server is another process: it sees the loop's stalls
        while not done.is_set() and len(latencies) < 5000:  # bounded in count and time
            t = time.perf_counter()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/mutate", data=pod.encode(), method="POST")
            with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback only
                r.read()
            latencies.append((time.perf_counter() - t) * 1000)
            time.sleep(0.005)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    await asyncio.sleep(0.3)
    start = time.perf_counter()
    if off_loop:
        d = await asyncio.to_thread(_plan, case)
    else:
        d = _plan(case)
    plan_ms = (time.perf_counter() - start) * 1000
    await asyncio.sleep(0.3)
    done.set()
    await asyncio.to_thread(thread.join, 30)
    await runner.cleanup()
    ordered = sorted(latencies)
    return {
        "plan_ms": plan_ms,
        "planned": float(len(d.planned)),
        "requests": float(len(ordered)),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


def run() -> dict[str, dict[str, float]]:
    out = {}
    for nodes, groups in ((1000, 100), (5000, 500)):
        case = scenario(nodes, groups)
        where = f"{groups} batches, {nodes:,} nodes"
        out[f"{where}: on the loop (before)"] = asyncio.run(_measure(case, off_loop=False))
        out[f"{where}: worker thread (now)"] = asyncio.run(_measure(case, off_loop=True))
    return out


def table(result: dict[str, dict[str, float]]) -> str:
    rows = [
        "| planning pass | plan ms | batches planned | admission requests | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in result.items():
        rows.append(
            f"| {name} | {r['plan_ms']:.0f} | {r['planned']:.0f} | {r['requests']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(run()))
