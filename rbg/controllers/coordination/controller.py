"""Batch placement of coordinated roles: release gated pods batch by batch into planned domains.

Thin: reads the group, its pods, all bound pods and the nodes from caches, asks the pure core
(rbg.coordination.release.decide, which asks the planner; off the event loop) and the tracker
(rbg.coordination.tracker: Stuck, events, status), deletes the members a batch replaces and patches
the released pods: a nodeSelector on the batch's domain (and planned node) and the gate removed, in
one update (allowed while gated). Groups with a batch still waiting are re-planned when capacity changes
(a pod bound, gone or finished; a node added, gone or changed), with no restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from prometheus_client import Gauge, Histogram
from pydantic import ValidationError

from rbg.api.hub import API_VERSION, RoleBasedGroup
from rbg.controllers import podcache
from rbg.controllers.coordination.pods import FIELD_MANAGER, PodWrites
from rbg.controllers.kinds import PODGROUP, RBG
from rbg.coordination import batches, expectations, gating, groups, release, resources, tracker
from rbg.coordination.ledger import Ledger
from rbg.lifecycle.conventions import without_transition_times
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.manager import Manager
from rbg.runtime.objects import NODE, Key, Obj
from rbg.runtime.webhook import Rule, Verdict, patch_between

log = logging.getLogger(__name__)
REQUEUE_ANNOTATION = "rbg.workloads.x-k8s.io/capacity-epoch"
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
BATCH_WAIT = Histogram(
    "rbg_coordination_batch_wait_seconds",
    "Seconds from a batch being complete (every pod created, gated) to its release into a domain",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)
BATCHES = Gauge(
    "rbg_coordination_batches", "Batches of coordinations and group exclusive topologies, by phase", ["phase"]
)
STRANDED = Gauge(
    "rbg_coordination_stranded_pods",
    "Pods bound while another pod of their batch cannot be scheduled (held for an incomplete batch)",
)
PHASES = ("Pending", "Planned", "Bound", "Stuck")
NUDGE_EVERY = 5.0
NUDGE_FOR = 60.0
POD_RULE = Rule(
    path="/mutate-rbg-pod",
    name="mpod.workloads.x-k8s.io",
    group="",
    version="v1",
    resource="pods",
    operations=("CREATE",),
    # only pods of coordinated roles: nobody else's pods, nor other RBG pods, wait for this webhook
    object_selector={"matchExpressions": [{"key": batches.COORDINATED, "operator": "Exists"}]},
)


class CoordinationReconciler:
    def __init__(self, manager: Manager, kube: Kube, workers: int = 4) -> None:
        self.kube = kube
        self.rbgs = manager.informer(RBG)
        # every pod: the capacity in use, and the coordinated ones (slimmed to what placement reads)
        self.pods = podcache.pods(manager)
        self.nodes = manager.informer(NODE)
        self.recorder: EventRecorder = manager.recorder("coordination-controller")
        # capacity in use per node, kept event by event (pods bound or pinned, releases in flight)
        self.ledger = Ledger()
        # releases, deletions and gate removals, with the expectations they leave
        self.writes = PodWrites(kube, self.ledger)
        self.plan_lock = asyncio.Lock()  # one plan at a time: capacity is given away exactly once
        #: room of leader/worker groups' workers planned and not created yet (from the API, D29)
        self.reservations = groups.Reservations()
        self.listeners: list[Callable[[], None]] = []
        self._waiting: set[Key] = set()  # groups with a batch not placed yet
        self._stranded: dict[Key, int] = {}
        self._phases: dict[Key, list[str]] = {}  # for the gauges only
        self._complete_since: dict[tuple[Key, str, int], float] = {}  # batch complete and gated, since
        self._claims: dict[tuple[str, str, str], str] = {}  # (namespace, key, domain) -> exclusive group
        self.controller = Controller("coordination", self.reconcile, workers=workers)
        self.controller.for_informer(self.rbgs, predicate=not_status_only)
        self.controller.watches(self.pods, self._pod_keys)
        self.nodes.add_handler(self._on_node_change)
        # capacity arriving (a node added, or its allocatable grown) is what a stalled gang waits for
        self._capacity_epoch = 0
        self._nudged: dict[Key, tuple[int, float]] = {}  # group -> (epoch, when) of its last touch
        self._capacity_at = 0.0
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)
        manager.add(self.controller)

    def _on_node(self, event: str, obj: Obj, old: Obj | None) -> None:
        def alloc(n: Obj | None) -> Any:
            return ((n or {}).get("status") or {}).get("allocatable")

        if event == "ADDED" or (event == "MODIFIED" and alloc(obj) != alloc(old)):
            self._capacity_epoch += 1
            self._capacity_at = time.monotonic()

    def _on_node_change(self, event: str, obj: Obj, old: Obj | None) -> None:
        if _node_capacity(event, obj, old):
            self.notify_capacity()

    def _on_pod(self, event: str, obj: Obj, old: Obj | None) -> None:
        """Waiting groups are looked at again only when capacity changed (a pod bound, gone or finished)."""
        before = self.ledger.version
        if event == "DELETED":
            self.ledger.observe(None, obj)
            self.reservations.observe(None, obj)
        else:
            self.ledger.observe(obj, old)
            self.reservations.observe(obj, old)
        if self.ledger.version != before:  # a pod bound, released, finished or gone
            self.notify_capacity()

    def _pod_keys(self, pod: Obj) -> Iterable[Key]:
        labels = pod["metadata"].get("labels") or {}
        group = labels.get(batches.GROUP_NAME)
        if group and (POD_GROUP_LABEL in labels or any(k.startswith(batches.LABEL_PREFIX) for k in labels)):
            return [Key(pod["metadata"].get("namespace") or "", group)]
        if group and labels.get(batches.COORDINATED):  # a member of an earlier layout (D27)
            return [Key(pod["metadata"].get("namespace") or "", group)]
        return []

    # -- admission --------------------------------------------------------------------------------

    async def mutate_pod(self, request: dict[str, Any]) -> Verdict:
        """Gate a coordinated pod at creation and label it with its batch (reads the group's cache).

        A pod of a coordinated role whose group the cache does not hold (or cannot read) is refused, not
        let through ungated: placed at random, no batch would ever track it; its workload retries."""
        pod = request.get("object") or {}
        ns = request.get("namespace") or (pod.get("metadata") or {}).get("namespace") or ""
        group = ((pod.get("metadata") or {}).get("labels") or {}).get(batches.GROUP_NAME)
        obj = self.rbgs.get(Key(ns, group)) if group else None
        if obj is None:
            return Verdict(
                [f"metadata.labels: the RoleBasedGroup {ns}/{group} of this coordinated pod is not known"]
            )
        try:
            rbg = RoleBasedGroup.model_validate(obj)
        except ValidationError as exc:
            return Verdict([f"the RoleBasedGroup {ns}/{group} cannot be read: {exc.errors()[0]['msg']}"])
        mutated = gating.mutate(pod, rbg)
        if mutated is None:
            return Verdict()
        return Verdict(patch=patch_between(pod, mutated))

    # -- reconcile --------------------------------------------------------------------------------

    def expected(self, pods: list[Obj]) -> list[Obj]:
        """The pods as this process's own writes left them, where the cache does not show them yet
        (expectations, as controller-runtime keeps them): a stale pass never plans a batch twice."""
        now = time.monotonic()
        w = self.writes
        for uid in [u for u, v in w.released.items() if v[3] < now]:
            del w.released[uid]
        for uid in [u for u, t in w.deleted.items() if t < now]:
            del w.deleted[uid]
        out, caught_up = expectations.as_written(pods, {u: v[:3] for u, v in w.released.items()}, w.deleted)
        for uid in caught_up:
            del w.released[uid]
        return out

    async def reconcile(self, key: Key) -> Result | None:
        obj = self.rbgs.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self._forget(key)
            return None
        try:
            rbg = RoleBasedGroup.model_validate(obj)
        except ValidationError:
            return None
        coords: list[tuple[Any, Any, dict[str, Any]]] = [
            (c, a, {}) for c, a in batches.affinity_coordinations(rbg)
        ]
        exclusive = batches.exclusive_coordination(rbg)
        pods = self.pods.list(key.namespace, {batches.GROUP_NAME: key.name})
        gang_wait = await self._requeue_gang(key, rbg, pods)
        if not coords and exclusive is None:
            self._forget(key)
            await self._wind_down(key, obj, pods)
            if gang_wait is not None:
                self._waiting.add(key)
            return Result(requeue_after=gang_wait) if gang_wait else None
        statuses: list[Obj] = []
        previous = {c.get("name"): c for c in (obj.get("status") or {}).get("coordinationStatus") or []}
        stranded = 0
        waiting = False
        phases: list[str] = []
        wake: float | None = None
        for coord, aff, extra in coords + ([(*exclusive, {"total": 1})] if exclusive else []):
            async with self.plan_lock:
                # a fresh look for each coordination: releases of other passes may have landed meanwhile
                nodes = self.nodes.list()
                mine = self.expected(self.pods.list(key.namespace, {batches.GROUP_NAME: key.name}))
                used = self.used()  # on the loop: the ledger changes with every event
                if coord.name == batches.EXCLUSIVE:  # one batch, in a domain no other group uses
                    others = batches.others_domains(
                        nodes, self.pods.list(key.namespace), key.name, aff.topology_key
                    )
                    # domains other groups were given moments ago, whose pins the cache may not show yet
                    others |= {
                        domain
                        for (ns, tkey, domain), group in self._claims.items()
                        if ns == key.namespace and tkey == aff.topology_key and group != key.name
                    }
                    extra = {**extra, "avoid": others}
                d = await asyncio.to_thread(release.decide, rbg, coord, aff, mine, nodes, used, **extra)
                # what this pass gives away is recorded before the lock is let go: a pass for another
                # group must not plan the same capacity (or, for exclusive topology, the same domain)
                self.writes.expect(d, aff.topology_key)
                if coord.name == batches.EXCLUSIVE and (d.planned or d.moved):
                    # the group's claim moves with it: a re-planned group frees the domain it had
                    for claim in [
                        c for c, g in self._claims.items() if c[0] == key.namespace and g == key.name
                    ]:
                        del self._claims[claim]
                    for _index, domain in d.planned:
                        self._claims[(key.namespace, aff.topology_key, domain)] = key.name
            await self.writes.apply(d, aff.topology_key)
            now = time.monotonic()
            for index, _domain in d.planned:
                since = self._complete_since.pop((key, coord.name, index), None)
                if since is not None:
                    BATCH_WAIT.observe(now - since)
            for b in d.batches:
                if b.domain is None and b.members and all(resources.gated(p) for p in b.members):
                    self._complete_since.setdefault((key, coord.name, b.index), now)
                stranded += _stranded(b)
            tracked = tracker.track(
                coord.name,
                aff.topology_key,
                d,
                previous.get(coord.name) or {},
                time.time(),
                aff.batch_timeout_seconds,
            )
            for kind, reason, message in tracked.events:
                self.recorder.event(obj, kind, reason, message)
            if tracked.wake is not None:
                wake = tracked.wake if wake is None else min(wake, tracked.wake)
            batch_phases = [b["phase"] for b in tracked.status["batches"]]
            phases += batch_phases
            waiting = waiting or any(p != "Bound" for p in batch_phases)
            statuses.append(tracked.status)
        self._stranded[key] = stranded
        self._phases[key] = phases
        self._update_gauges()
        if waiting or gang_wait is not None:
            self._waiting.add(key)
        else:
            self._waiting.discard(key)
        await self._write_status(key, obj, statuses)
        if gang_wait:
            wake = gang_wait if wake is None else min(wake, gang_wait)
        return Result(requeue_after=wake + 0.1) if wake is not None else None

    def used(self) -> dict[str, dict[str, Decimal]]:
        """Capacity in use per node (a copy): the ledger's, plus the room reserved for leader/worker
        groups' workers not created yet (call on the event loop, under the lock)."""
        out = self.ledger.used()
        for node, req in self.reservations.room(time.monotonic()):
            have = out.setdefault(node, {})
            for res, amount in {**req, "pods": Decimal(1)}.items():
                have[res] = have.get(res, Decimal(0)) + amount
        return out

    def notify_capacity(self) -> None:
        """Capacity changed: every waiting group and every listener (leader/worker placement) looks again."""
        for key in self._waiting:
            self.controller.enqueue(key)
        for listener in self.listeners:
            listener()

    async def _requeue_gang(self, key: Key, rbg: RoleBasedGroup, pods: list[Obj]) -> float | None:
        """While a coscheduled gang has pods not bound: seconds until it should be looked at again (None:
        nothing waits). When capacity arrived, touch its PodGroup: the coscheduling plugin requeues a
        rejected gang on PodGroup updates, not on node events (it would wait for the scheduler's 5-minute
        flush). A gang may still be inside its Permit wait when the node arrives, so the touch is repeated
        every NUDGE_EVERY seconds for NUDGE_FOR seconds after a capacity change, then never."""
        gang = rbg.spec.pod_group_policy
        pending = [p for p in pods if not (p.get("spec") or {}).get("nodeName") and not resources.gated(p)]
        if gang is None or gang.kube_scheduling is None or not pending:
            self._nudged.pop(key, None)
            return None
        now = time.monotonic()
        # first sight: capacity that was there before the gang is not news
        epoch, last = self._nudged.setdefault(key, (self._capacity_epoch, 0.0))
        repeating = last > 0 and now - self._capacity_at < NUDGE_FOR
        if self._capacity_epoch == epoch and not (repeating and now - last >= NUDGE_EVERY):
            return NUDGE_EVERY - (now - last) if repeating else 0.0
        self._nudged[key] = (self._capacity_epoch, now)
        patch = {"metadata": {"annotations": {REQUEUE_ANNOTATION: f"{self._capacity_epoch}-{int(now)}"}}}
        try:
            await self.kube.patch(PODGROUP, key.name, key.namespace, patch, field_manager=FIELD_MANAGER)
        except ApiError as exc:
            if not exc.not_found:
                raise
        return NUDGE_EVERY

    async def _wind_down(self, key: Key, obj: Obj, pods: list[Obj]) -> None:
        """No coordination (nor exclusive topology) any more: release what is still gated, unpinned, and
        clear the coordination status."""
        for pod in pods:
            await self.writes.ungate(pod)
        if (obj.get("status") or {}).get("coordinationStatus"):
            await self._write_status(key, obj, [])

    def _forget(self, key: Key) -> None:
        self._waiting.discard(key)
        for claim in [c for c, g in self._claims.items() if c[0] == key.namespace and g == key.name]:
            del self._claims[claim]
        self._stranded.pop(key, None)
        self._phases.pop(key, None)
        for ref in [r for r in self._complete_since if r[0] == key]:
            self._complete_since.pop(ref, None)
        self._update_gauges()

    def _update_gauges(self) -> None:
        counts = dict.fromkeys(PHASES, 0)
        for phases in self._phases.values():
            for phase in phases:
                counts[phase] = counts.get(phase, 0) + 1
        for phase, n in counts.items():
            BATCHES.labels(phase).set(n)
        STRANDED.set(sum(self._stranded.values()))

    async def _write_status(self, key: Key, obj: Obj, statuses: list[Obj]) -> None:
        before = (obj.get("status") or {}).get("coordinationStatus") or []
        if without_transition_times(before) == without_transition_times(statuses):
            return
        body = {
            "apiVersion": API_VERSION,
            "kind": "RoleBasedGroup",
            "metadata": {"name": key.name, "namespace": key.namespace},
            "status": {"coordinationStatus": statuses},
        }
        try:
            await self.kube.apply_status(body, field_manager=FIELD_MANAGER)
        except ApiError as exc:
            if not exc.not_found:
                raise


def _stranded(b: release.BatchState) -> int:
    """Bound members of a batch another member of which the scheduler cannot place."""

    def unschedulable(p: Obj) -> bool:
        return any(
            c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == "Unschedulable"
            for c in (p.get("status") or {}).get("conditions") or []
        )

    if not any(unschedulable(p) for p in b.members):
        return 0
    return sum(1 for p in b.members if (p.get("spec") or {}).get("nodeName"))


def _node_capacity(event: str, obj: Obj, old: Obj | None) -> bool:
    """A node event that changes where batches can go: added, gone, or its schedulability, labels,
    taints or allocatable changed (heartbeats and images do not)."""
    if event != "MODIFIED" or old is None:
        return True

    def view(n: Obj) -> tuple[Any, ...]:
        spec, status = n.get("spec") or {}, n.get("status") or {}
        ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        labels = n["metadata"].get("labels")
        return (labels, spec.get("unschedulable"), spec.get("taints"), status.get("allocatable"), ready)

    return view(obj) != view(old)
