"""`make bench`: N RoleBasedGroups at once, this operator beside the Go upstream, measured from outside.

One run measures, each on a fresh local cluster (same topology, same machine, one after another):
- `floor`: no operator; the same 7 children per group (ConfigMap, 3 Services, 2 StatefulSets, 1
  Deployment) created directly by 20 concurrent requests; "Ready" = all of a group's workloads Ready;
- `rbg`: this project's operator (its ServiceAccount, leader election on);
- `upstream`: the Go upstream at v0.8.0-alpha.5 with a tuned client (QPS 1000), when its binary is
  available (`RBG_UPSTREAM_DIR` or ../shared/bench/upstream-rbg); `--upstream-default-qps` adds a run
  with its default client throttling;
- `lws`: N LeaderWorkerSets of one group of 4 pods, run by this operator ("Ready" = Available);
- `rbg-lws`: N groups whose prefill role is a LeaderWorkerSet (one group of 2) instead of a StatefulSet.
  Upstream runs such roles with kubernetes-sigs/lws, which is not available here: no upstream column.
Figures per contender: time from the first create until all N groups are Ready; create -> Ready per
group (p50/p95); the operator's CPU seconds (utime+stime from /proc) during convergence and during the
idle window; its API requests from the API server's audit log (writes, reads, by verb and resource);
its peak RSS; its writes during the idle window after convergence (Lease renewals excluded). Before the
cluster runs, a micro-benchmark of one pure reconcile (`plan()`) in operations per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from lightkube import AsyncClient, KubeConfig, codecs
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.core_v1 import Namespace, ServiceAccount

from rbg.api.hub import RoleBasedGroup
from rbg.devcluster import microbench, operator, upstream
from rbg.devcluster.cluster import COMPONENTS, LocalCluster
from rbg.devcluster.topology import Topology
from rbg.group import desired, names

RBG_V1A1 = create_namespaced_resource("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups")
RBG_V1A2 = create_namespaced_resource("workloads.x-k8s.io", "v1alpha2", "RoleBasedGroup", "rolebasedgroups")
LWS_V1 = create_namespaced_resource("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets")
ROLES = (("router", 1, "Deployment"), ("prefill", 2, "StatefulSet"), ("decode", 1, "StatefulSet"))
LWS_SIZE = 4  # the `lws` contender: one group of 4 pods per LeaderWorkerSet (as many pods as a group)
IMAGE = "registry.local/engine:1"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
DRY_RUN = "dryrun"
READS = {"get", "list"}
CONCURRENCY = 20  # concurrent creating clients, for every contender
POLL_SECONDS = 3.0
Obj = dict[str, Any]


# -- the workload ---------------------------------------------------------------------------------


def _group(name: str, version: str, role: Callable[[str, int, str, Obj], Obj]) -> Obj:
    """A group of ROLES; `role(name, replicas, workload kind, pod template)` spells one role."""
    template = {"spec": {"containers": [{"name": "engine", "image": IMAGE}]}}
    return {
        "apiVersion": f"workloads.x-k8s.io/{version}",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {"roles": [role(r, n, k, template) for r, n, k in ROLES]},
    }


def group(name: str) -> Obj:
    """The benchmark's group in this project's API (v1alpha1, as upstream's v1alpha1 manifests)."""
    return _group(
        name,
        "v1alpha1",
        lambda r, n, k, t: {
            "name": r,
            "replicas": n,
            "template": t,
            "workload": {"apiVersion": "apps/v1", "kind": k},
        },
    )


def upstream_group(name: str) -> Obj:
    """The same group for the Go upstream (it stores v1alpha2; the annotation picks STS/Deployment)."""
    return _group(
        name,
        "v1alpha2",
        lambda r, n, k, t: {
            "name": r,
            "replicas": n,
            "annotations": {"rbg.workloads.x-k8s.io/role-workload-type": f"apps/v1/{k}"},
            "standalonePattern": {"template": t},
        },
    )


def lws_group(name: str) -> Obj:
    """The `rbg-lws` contender's group: prefill is one LeaderWorkerSet group of 2 (4 pods in all)."""
    doc = group(name)
    prefill = doc["spec"]["roles"][1]
    prefill.update(
        replicas=1,
        workload={"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"},
        leaderWorkerSet={"size": 2},
    )
    return doc


def leaderworkerset(name: str) -> Obj:
    """The `lws` contender: one LeaderWorkerSet of one group of LWS_SIZE pods."""
    template = {"spec": {"containers": [{"name": "engine", "image": IMAGE}]}}
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": LWS_SIZE, "workerTemplate": template}},
    }


def direct_children(name: str, namespace: str) -> list[Obj]:
    """What our operator would create for `group(name)`, without owner (nothing would own them)."""
    doc = group(name)
    doc["metadata"].update(namespace=namespace, uid="bench", generation=1)
    rbg = RoleBasedGroup.model_validate(doc)
    children = [desired.config_map(rbg)]
    children += [desired.service(rbg, i) for i in range(len(ROLES))]
    children += [desired.workload(rbg, i) for i in range(len(ROLES))]
    for child in children:
        del child["metadata"]["ownerReferences"]  # the garbage collector would delete an orphan's children
    return children


# -- contenders -----------------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    start: Callable[[LocalCluster], int | None]  # starts the operator; its pid (None: no operator)
    objects: Callable[[str, str], list[Obj]]  # (group name, namespace) -> what to create for it
    group_kind: Any | None  # the RoleBasedGroup resource to watch for Ready (None: workloads only)
    ready_condition: str = "Ready"  # the condition of a group_kind object that means done


def contenders(
    upstream_dir: Path | None, default_qps: bool, only: set[str] | None, operator_args: tuple[str, ...] = ()
) -> list[Contender]:
    def ours(lc: LocalCluster) -> int:
        return operator.start(lc, operator_args, supervise=False).pids[operator.COMPONENT]

    def ours_storing_v1alpha2(lc: LocalCluster) -> int:
        args = (*operator_args, "--storage-version=v1alpha2")
        return operator.start(lc, args, supervise=False).pids[operator.COMPONENT]

    def theirs(qps: int | None) -> Callable[[LocalCluster], int]:
        assert upstream_dir is not None
        return lambda lc: upstream.start(lc, upstream_dir, qps=qps).pids[upstream.COMPONENT]

    out = [
        Contender("floor", lambda _lc: None, direct_children, None),
        Contender("rbg", ours, lambda n, _ns: [group(n)], RBG_V1A1),
        # the same groups written in v1alpha2 (upstream's manifests): each client write and read converts
        Contender("rbg-v1alpha2", ours, lambda n, _ns: [upstream_group(n)], RBG_V1A2),
        # and stored as v1alpha2, as upstream stores them (D38): the operator's own reads convert too
        Contender("rbg-stored-v1alpha2", ours_storing_v1alpha2, lambda n, _ns: [upstream_group(n)], RBG_V1A2),
        # this operator's LeaderWorkerSet controller (upstream RBG runs LWS roles with kubernetes-sigs/lws,
        # which is not available here: these two have no upstream column)
        Contender("lws", ours, lambda n, _ns: [leaderworkerset(n)], LWS_V1, "Available"),
        Contender("rbg-lws", ours, lambda n, _ns: [lws_group(n)], RBG_V1A1),
    ]
    if upstream_dir is not None:
        out.append(Contender("upstream", theirs(1000), lambda n, _ns: [upstream_group(n)], RBG_V1A2))
        if default_qps:
            out.append(
                Contender("upstream-qps20", theirs(None), lambda n, _ns: [upstream_group(n)], RBG_V1A2)
            )
    return [c for c in out if only is None or c.name in only]


# -- measuring ------------------------------------------------------------------------------------


def audit_requests(log: Path, start: int, end: int | None = None) -> Counter[tuple[str, str]]:
    """(verb, resource) -> count of completed requests in the audit log between two byte offsets; a dry
    run (the admission's check of pod templates, D16: validated, stored nowhere) counts as verb
    `dryrun`, not as a write."""
    verbs: Counter[tuple[str, str]] = Counter()
    with open(log, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    for line in data.splitlines():
        event = json.loads(line)
        if event.get("stage") == "ResponseComplete":
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            verb = DRY_RUN if "dryRun=" in event.get("requestURI", "") else event["verb"]
            verbs[(verb, resource)] += 1
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float]) -> dict[str, float]:
    """p50 / p95 / max, in seconds rounded to milliseconds."""
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def bench_topology(n: int) -> Topology:
    """The default 16-node topology, with room for every pod of N groups (kwok pods need no more)."""
    pods = sum(r for _, r, _ in ROLES) * n
    return Topology.model_validate({"node": {"pods": max(110, math.ceil(pods * 1.5 / 16))}})


async def _wait_namespace_ready(client: AsyncClient, ns: str) -> None:
    for _ in range(300):  # the ServiceAccount admission plugin needs the namespace's default account
        try:
            await client.get(ServiceAccount, "default", namespace=ns)
            return
        except ApiError:
            await asyncio.sleep(0.1)


def profile_summary(collapsed: str, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """Top frames of py-spy's collapsed stacks ("f1;f2;f3 count" lines): by own samples and inclusive."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * v / total, 1)) for f, v in c.most_common(top)] if total else []

    return {"own": pct(own), "inclusive": pct(Counter({f: v for f, v in inclusive.items() if "rbg/" in f}))}


def _profiler(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the operator (100 Hz) into collapsed stacks, if py-spy is installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found: no profile", flush=True)
        return None
    args = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        "100",
        "--nonblocking",
        "-o",
        str(out),
    ]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _logged(watch: Coroutine[Any, Any, None]) -> None:
    """A watcher that says why it stopped (a silent death would only show as a missed convergence)."""
    try:
        await watch
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        print(f"watch failed: {exc!r}", file=sys.stderr, flush=True)
        raise


async def measure(
    lc: LocalCluster, who: Contender, n: int, idle: float, limit: float, profile: Path | None = None
) -> dict[str, Any]:
    """One contender on a fresh cluster; `profile`: where to write py-spy's stacks of the operator."""
    lc.down()
    state, _ = lc.up(topology=bench_topology(n), timeout=300)
    pid = who.start(lc)
    audit = lc.logs / "audit.log"
    client = AsyncClient(KubeConfig.from_file(state.kubeconfig).get(), field_manager="rbg-bench")
    ns = "bench"
    await client.create(Namespace(metadata=ObjectMeta(name=ns)))
    await _wait_namespace_ready(client, ns)

    created: dict[str, float] = {}
    wl_added: dict[str, dict[str, float]] = {}
    wl_ready: dict[str, dict[str, float]] = {}
    group_ready: dict[str, float] = {}
    all_ready = asyncio.Event()

    def note_ready(g: str, when: float) -> None:
        group_ready.setdefault(g, when)
        if len(group_ready) == n:
            all_ready.set()

    async def watch_workloads(kind: Any) -> None:
        async for _, obj in client.watch(kind, namespace=ns):
            g = (obj.metadata.labels or {}).get(names.GROUP_NAME)
            if g is None:
                continue
            now = time.monotonic()
            wl_added.setdefault(g, {}).setdefault(obj.metadata.name, now)
            st = obj.status
            if (
                st
                and (st.readyReplicas or 0) >= (obj.spec.replicas or 0)
                and st.replicas == obj.spec.replicas
            ):
                wl_ready.setdefault(g, {}).setdefault(obj.metadata.name, now)
                if who.group_kind is None and len(wl_ready[g]) == len(ROLES):
                    note_ready(g, now)

    def group_seen(obj: Any) -> None:
        conds = (obj.get("status") or {}).get("conditions") or []
        if any(c["type"] == who.ready_condition and c["status"] == "True" for c in conds):
            note_ready(obj["metadata"]["name"], time.monotonic())

    async def watch_groups(kind: Any) -> None:
        async for _, obj in client.watch(kind, namespace=ns):
            group_seen(obj)

    async def poll_groups(kind: Any) -> None:
        # a safety net: a watch that silently stalled once kept a run waiting for its whole timeout
        while True:
            await asyncio.sleep(POLL_SECONDS)
            async for obj in client.list(kind, namespace=ns):
                group_seen(obj)

    watches: list[Coroutine[Any, Any, None]] = [watch_workloads(StatefulSet), watch_workloads(Deployment)]
    if who.group_kind is not None:
        watches += [watch_groups(who.group_kind), poll_groups(who.group_kind)]
    watchers = [asyncio.create_task(_logged(w)) for w in watches]
    await asyncio.sleep(1)
    spy = _profiler(pid, profile) if profile and pid and who.name in ("rbg", "lws") else None
    components = [p for c, p in state.pids.items() if c in COMPONENTS]
    cluster0 = sum(cpu_seconds(p) for p in components)
    cpu0 = cpu_seconds(pid) if pid else 0.0
    start_offset = size(audit)
    t0 = time.monotonic()
    sem = asyncio.Semaphore(CONCURRENCY)

    create_latency: list[float] = []

    async def create(obj: Obj) -> None:
        async with sem:
            obj["metadata"]["namespace"] = ns
            began = time.monotonic()
            await client.create(cast(Any, codecs.from_dict(obj)))
            create_latency.append(time.monotonic() - began)

    async def create_group(name: str) -> None:
        await asyncio.gather(*(create(o) for o in who.objects(name, ns)))
        created[name] = time.monotonic()

    groups = [f"g{i:04d}" for i in range(n)]
    await asyncio.gather(*(create_group(g) for g in groups))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_ready.wait(), limit)
    t_all = time.monotonic() - t0
    cpu1 = cpu_seconds(pid) if pid else 0.0
    cluster1 = sum(cpu_seconds(p) for p in components)
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    await asyncio.sleep(2)  # the last writes of convergence reach the audit log
    converge_offset = size(audit)
    cpu2 = cpu_seconds(pid) if pid else 0.0
    await asyncio.sleep(idle)
    cpu3 = cpu_seconds(pid) if pid else 0.0
    idle_verbs = audit_requests(audit, converge_offset)
    verbs = audit_requests(audit, start_offset, converge_offset)
    lifecycle = await _lifecycle(client, who, groups, ns, audit, pid, limit)
    for w in watchers:
        w.cancel()
    rss_kib = peak_rss_kib(pid) if pid else 0
    await client.close()
    lc.down()

    to_ready = [group_ready[g] - created[g] for g in groups if g in group_ready]
    result: dict[str, Any] = {
        **lifecycle,
        "contender": who.name,
        "groups": n,
        "converged": len(group_ready),
        "all_ready_s": round(t_all, 2),
        "create_to_ready_s": spread(to_ready),
        "create_request_s": spread(create_latency),  # includes admission (our webhook, for rbg)
        "all_created_s": round(max(created.values()) - t0, 2),
        # etcd, API server, controller manager, schedulers, kwok: what the contender made them do
        "control_plane_cpu_s": round(cluster1 - cluster0, 2),
    }
    if pid is None:
        return result
    # (a LeaderWorkerSet role adds its leader and worker StatefulSets to the group's workloads)
    to_children = [max(wl_added[g].values()) - created[g] for g in groups if len(wl_added.get(g, {})) >= 3]
    to_group_ready = [
        group_ready[g] - max(wl_ready[g].values())
        for g in groups
        if g in group_ready and len(wl_ready.get(g, {})) >= 3
    ]
    result.update(
        {
            "created_to_children_s": spread(to_children),
            "children_ready_to_group_ready_s": spread(to_group_ready),
            "operator_cpu_s": round(cpu1 - cpu0, 2),
            "operator_cpu_idle_s": round(cpu3 - cpu2, 2),
            "api_writes": sum(c for (v, _), c in verbs.items() if v in WRITES),
            "api_reads": sum(c for (v, _), c in verbs.items() if v in READS),
            "api_dry_runs": sum(c for (v, _), c in verbs.items() if v == DRY_RUN),
            "api_requests_by_verb": by_verb(verbs),
            "api_requests_by_verb_and_resource": {f"{v} {r}": c for (v, r), c in sorted(verbs.items())},
            "operator_peak_rss_mib": round(rss_kib / 1024, 1),
            "idle_seconds": idle,
            "idle_requests_by_verb_and_resource": {f"{v} {r}": c for (v, r), c in sorted(idle_verbs.items())},
            # the leader's Lease renewals are leader election, not reconciling
            "idle_writes": sum(c for (v, r), c in idle_verbs.items() if v in WRITES and r != "leases"),
            "idle_lease_renewals": sum(
                c for (v, r), c in idle_verbs.items() if v in WRITES and r == "leases"
            ),
        }
    )
    return result


async def _lifecycle(
    client: AsyncClient,
    who: Contender,
    groups: list[str],
    ns: str,
    audit: Path,
    pid: int | None,
    limit: float,
) -> dict[str, Any]:
    """After convergence and the idle window: an image rollout of every group, then (this operator) the
    recovery of one group from a container restart (rbg.devcluster.lifecycle_bench)."""
    from rbg.devcluster import lifecycle_bench

    if pid is None or who.group_kind not in (RBG_V1A1, RBG_V1A2) or who.name == "rbg-lws":
        return {}
    offset = size(audit)

    def writes() -> int:
        return sum(c for (v, r), c in audit_requests(audit, offset).items() if v in WRITES and r != "leases")

    version = "v1alpha1" if who.group_kind is RBG_V1A1 else "v1alpha2"
    out = await lifecycle_bench.rollout(
        client, who.group_kind, version, groups, ns, len(ROLES), limit, lambda: cpu_seconds(pid), writes
    )
    if who.name == "rbg":
        out.update(await lifecycle_bench.recovery(client, who.group_kind, groups[0], ns, 300))
    return out


# -- reporting ------------------------------------------------------------------------------------

_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], float | None], str], ...] = (
    ("all groups Ready (s)", lambda r: r.get("all_ready_s"), "{:.1f}"),
    ("create -> Ready p50 (s)", lambda r: r.get("create_to_ready_s", {}).get("p50"), "{:.2f}"),
    ("create -> Ready p95 (s)", lambda r: r.get("create_to_ready_s", {}).get("p95"), "{:.2f}"),
    ("create request p50 (s)", lambda r: r.get("create_request_s", {}).get("p50"), "{:.3f}"),
    ("all creates done (s)", lambda r: r.get("all_created_s"), "{:.2f}"),
    (
        "create -> all workloads exist p50 (s)",
        lambda r: r.get("created_to_children_s", {}).get("p50"),
        "{:.2f}",
    ),
    (
        "workloads Ready -> group Ready p50 (s)",
        lambda r: r.get("children_ready_to_group_ready_s", {}).get("p50"),
        "{:.2f}",
    ),
    ("operator CPU during convergence (s)", lambda r: r.get("operator_cpu_s"), "{:.2f}"),
    ("control-plane CPU during convergence (s)", lambda r: r.get("control_plane_cpu_s"), "{:.1f}"),
    ("API writes", lambda r: r.get("api_writes"), "{:.0f}"),
    ("API reads (get + list)", lambda r: r.get("api_reads"), "{:.0f}"),
    ("API dry runs (admission's pod-template check, D16)", lambda r: r.get("api_dry_runs"), "{:.0f}"),
    ("peak RSS (MiB)", lambda r: r.get("operator_peak_rss_mib"), "{:.0f}"),
    ("idle writes", lambda r: r.get("idle_writes"), "{:.0f}"),
    ("operator CPU while idle (s)", lambda r: r.get("operator_cpu_idle_s"), "{:.2f}"),
    ("image rollout: all updated and Ready (s)", lambda r: r.get("rollout_s"), "{:.1f}"),
    ("image rollout: every workload on the new template (s)", lambda r: r.get("rollout_written_s"), "{:.1f}"),
    ("image rollout: operator CPU (s)", lambda r: r.get("rollout_operator_cpu_s"), "{:.2f}"),
    ("image rollout: API writes", lambda r: r.get("rollout_api_writes"), "{:.0f}"),
    ("recovery: restart -> all pods new, Ready (s)", lambda r: r.get("recovery_s"), "{:.1f}"),
)


def table(results: list[dict[str, Any]]) -> str:
    """A Markdown table: one column per contender, and rbg / upstream ratios when both ran."""
    names_ = [r["contender"] for r in results]
    by_name = {r["contender"]: r for r in results}
    ratio_to = [u for u in ("upstream", "upstream-qps20") if u in by_name and "rbg" in by_name]
    head = ["figure", *names_, *(f"rbg / {u}" for u in ratio_to)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, get, fmt in _ROWS:
        cells = [label]
        for r in results:
            v = get(r)
            cells.append("—" if v is None else fmt.format(v))
        for u in ratio_to:
            a, b = get(by_name["rbg"]), get(by_name[u])
            cells.append(f"{a / b:.2f}" if a is not None and b else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _placement(lc: LocalCluster, report: dict[str, Any], out: Path | None) -> int:
    from rbg.devcluster import placement_bench

    print("== placement: ratio batches on a fragmented cluster, planner vs affinity alone", flush=True)
    placed = placement_bench.run(lc)
    for r in placed:
        print(json.dumps(r), flush=True)
    report["placement"] = placed
    print()
    print(placement_bench.table(placed))
    if out:
        out.write_text(json.dumps(report, indent=2))
    planner = next(r for r in placed if r["mode"] == "planner")
    return 0 if planner["stranded_gpus"] == 0 and planner["intact"] == planner["placeable"] else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100, help="RoleBasedGroups to create at once")
    ap.add_argument("--idle", type=float, default=30, help="seconds to watch for writes after convergence")
    ap.add_argument("--cluster", default="rbg-bench")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for convergence")
    ap.add_argument(
        "--only",
        help="comma-separated contenders (floor,rbg,rbg-v1alpha2,upstream,upstream-qps20,lws,rbg-lws)",
    )
    ap.add_argument("--upstream-default-qps", action="store_true", help="also run upstream at QPS 20")
    ap.add_argument("--no-micro", action="store_true", help="skip the plan() micro-benchmark")
    ap.add_argument("--operator-arg", action="append", default=[], help="extra flag for our operator")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    ap.add_argument("--profile", type=Path, help="sample our operator with py-spy; stacks to this file")
    ap.add_argument(
        "--placement",
        choices=("yes", "no", "only"),
        default="yes",
        help="the placement benchmark (planner vs affinity alone on a fragmented cluster)",
    )
    args = ap.parse_args()

    report: dict[str, Any] = {}
    if not args.no_micro:
        report["micro"] = microbench.run()
        print("plan() micro-benchmark (ops/s):", json.dumps(report["micro"]), flush=True)
        from rbg.devcluster import loop_bench, planner_bench

        print("== planner: ms per batch placed (1,000 nodes x 100 batches)", flush=True)
        report["planner"] = planner_bench.run()
        print(planner_bench.table(report["planner"]), flush=True)
        print("== admission latency while a pass plans", flush=True)
        report["admission_while_planning"] = loop_bench.run()
        print(loop_bench.table(report["admission_while_planning"]), flush=True)
    upstream_dir, why = upstream.find_dir()
    if upstream_dir is None:
        print(f"{why}: measuring this operator and the floor only", flush=True)
    report["upstream"] = str(upstream_dir) if upstream_dir else why
    only = set(args.only.split(",")) if args.only else None
    lc = LocalCluster(args.cluster)
    results = []
    if args.placement == "only":
        return _placement(LocalCluster(args.cluster), report, args.json)
    for who in contenders(upstream_dir, args.upstream_default_qps, only, tuple(args.operator_arg)):
        print(f"== {who.name}: {args.n} groups on a fresh cluster", flush=True)
        result = asyncio.run(measure(lc, who, args.n, args.idle, args.timeout, args.profile))
        if who.name == "rbg" and args.profile and args.profile.exists():
            result["profile"] = profile_summary(args.profile.read_text())
        print(json.dumps(result), flush=True)
        results.append(result)
    report["results"] = results
    print()
    print(table(results))
    if args.placement == "yes":
        _placement(lc, report, None)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    ours = [r for r in results if r["contender"] in ("rbg", "rbg-v1alpha2", "lws", "rbg-lws")]
    ok = all(r["converged"] == args.n and r["idle_writes"] == 0 for r in ours)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
