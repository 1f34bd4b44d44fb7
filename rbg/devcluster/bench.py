"""`make bench`: N RoleBasedGroups created at once on the local cluster, measured from the outside.

Figures: time until every group is Ready; controller-attributable latencies per group (created -> all
its workloads exist; all its workloads Ready -> group Ready); the operator's API requests by verb, as the
API server's audit log recorded them (the operator's ServiceAccount is audited, see devcluster.cluster);
the operator's peak RSS; and its API writes during an idle minute after convergence (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

from lightkube import AsyncClient, KubeConfig, codecs
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.core_v1 import Namespace

from rbg.devcluster import operator
from rbg.devcluster.cluster import LocalCluster

RBG = create_namespaced_resource("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups")
ROLES = (("router", 1, "Deployment"), ("prefill", 2, "StatefulSet"), ("decode", 1, "StatefulSet"))
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def group(name: str) -> dict[str, Any]:
    tpl = {"spec": {"containers": [{"name": "engine", "image": "registry.local/engine:1"}]}}
    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {
            "roles": [
                {"name": r, "replicas": n, "template": tpl, "workload": {"apiVersion": "apps/v1", "kind": k}}
                for r, n, k in ROLES
            ]
        },
    }


def audit_requests(log: Path, start: int, end: int | None = None) -> Counter[tuple[str, str]]:
    """(verb, resource) -> count of completed requests in the audit log between two byte offsets."""
    verbs: Counter[tuple[str, str]] = Counter()
    with open(log, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    for line in data.splitlines():
        event = json.loads(line)
        if event.get("stage") == "ResponseComplete":
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            verbs[(event["verb"], resource)] += 1
    return verbs


def size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def by_verb(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for (verb, _), n in counts.items():
        out[verb] += n
    return dict(sorted(out.items()))


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1])
    return 0


def spread(values: list[float]) -> dict[str, float]:
    """p50 / p95 / max, in seconds rounded to milliseconds."""
    if not values:
        return {}
    return {
        "p50": round(statistics.median(values), 3),
        "p95": round(pct(values, 0.95), 3),
        "max": round(max(values), 3),
    }


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def run(n: int, idle: float, cluster_name: str, limit: float) -> dict[str, Any]:
    lc = LocalCluster(cluster_name)
    state, _ = lc.up()
    state = operator.start(lc)  # a fresh operator process, so RSS is this run's
    pid = state.pids[operator.COMPONENT]
    audit = lc.logs / "audit.log"
    client = AsyncClient(KubeConfig.from_file(state.kubeconfig).get(), field_manager="rbg-bench")
    ns = f"bench-{int(time.time())}"
    await client.create(Namespace(metadata=ObjectMeta(name=ns)))
    for _ in range(100):  # the ServiceAccount admission plugin needs the namespace's default account
        try:
            from lightkube.resources.core_v1 import ServiceAccount

            await client.get(ServiceAccount, "default", namespace=ns)
            break
        except Exception:
            await asyncio.sleep(0.1)

    created: dict[str, float] = {}
    wl_added: dict[str, dict[str, float]] = {}
    wl_ready: dict[str, dict[str, float]] = {}
    rbg_ready: dict[str, float] = {}
    all_ready = asyncio.Event()

    def owner(obj: Any) -> str | None:
        return (obj.metadata.labels or {}).get("rbg.workloads.x-k8s.io/group-name")

    async def watch_workloads(kind: Any) -> None:
        async for _, obj in client.watch(kind, namespace=ns):
            g, name, now = owner(obj), obj.metadata.name, time.monotonic()
            if g is None:
                continue
            wl_added.setdefault(g, {}).setdefault(name, now)
            st = obj.status
            if (
                st
                and (st.readyReplicas or 0) >= (obj.spec.replicas or 0)
                and (st.replicas or 0) == obj.spec.replicas
            ):
                wl_ready.setdefault(g, {}).setdefault(name, now)

    async def watch_groups() -> None:
        async for _, obj in client.watch(RBG, namespace=ns):
            conds = (obj.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                rbg_ready.setdefault(obj["metadata"]["name"], time.monotonic())
                if len(rbg_ready) == n:
                    all_ready.set()

    watchers = [
        asyncio.create_task(w)
        for w in (watch_workloads(StatefulSet), watch_workloads(Deployment), watch_groups())
    ]
    await asyncio.sleep(1)
    start_offset = size(audit)
    t0 = time.monotonic()
    sem = asyncio.Semaphore(20)

    async def create(name: str) -> None:
        async with sem:
            doc = group(name)
            doc["metadata"]["namespace"] = ns
            await client.create(cast(Any, codecs.from_dict(doc)))
            created[name] = time.monotonic()

    names = [f"g{i:03d}" for i in range(n)]
    await asyncio.gather(*(create(x) for x in names))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_ready.wait(), limit)
    t_all = time.monotonic() - t0
    converged = len(rbg_ready)
    await asyncio.sleep(2)  # let the last status writes land in the audit log
    converge_offset = size(audit)
    await asyncio.sleep(idle)
    idle_verbs = audit_requests(audit, converge_offset)
    verbs = audit_requests(audit, start_offset, converge_offset)
    for w in watchers:
        w.cancel()
    rss_kib = peak_rss_kib(pid)
    await client.delete(Namespace, ns)
    for _ in range(600):  # so that a following run does not measure this namespace's deletion
        try:
            await client.get(Namespace, ns)
        except ApiError:
            break
        await asyncio.sleep(0.5)
    await client.close()

    to_children = [max(wl_added[g].values()) - created[g] for g in names if len(wl_added.get(g, {})) == 3]
    to_ready = [
        rbg_ready[g] - max(wl_ready[g].values())
        for g in names
        if g in rbg_ready and len(wl_ready.get(g, {})) == 3
    ]
    return {
        "groups": n,
        "converged": converged,
        "all_ready_s": round(t_all, 1),
        "created_to_children_s": spread(to_children),
        "children_ready_to_group_ready_s": spread(to_ready),
        "api_requests_by_verb": by_verb(verbs),
        "api_requests_by_verb_and_resource": {f"{v} {r}": n for (v, r), n in sorted(verbs.items())},
        "api_writes": sum(n for (v, _), n in verbs.items() if v in WRITES),
        "operator_peak_rss_mib": round(rss_kib / 1024, 1),
        "idle_seconds": idle,
        "idle_requests_by_verb_and_resource": {f"{v} {r}": n for (v, r), n in sorted(idle_verbs.items())},
        # the leader's Lease renewals (get + update every retry period) are leader election, not reconciling
        "idle_writes": sum(n for (v, r), n in idle_verbs.items() if v in WRITES and r != "leases"),
        "idle_lease_renewals": sum(n for (v, r), n in idle_verbs.items() if v in WRITES and r == "leases"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=100, help="RoleBasedGroups to create at once")
    ap.add_argument("--idle", type=float, default=60, help="seconds to watch for writes after convergence")
    ap.add_argument("--cluster", default="rbg-bench")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    result = asyncio.run(run(args.n, args.idle, args.cluster, args.timeout))
    print(json.dumps(result, indent=2))
    return 0 if result["converged"] == args.n and result["idle_writes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
