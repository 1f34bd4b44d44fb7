"""Batch placement of coordinated roles: release gated pods batch by batch into planned domains.

Thin: reads the group, its pods, all bound pods and the nodes from caches, asks the pure core
(rbg.coordination.batches.decide, which asks the planner) and patches the released pods: a nodeSelector
on the batch's domain and the gate removed, in one update (allowed while gated). Groups with a batch
still waiting are re-planned on any node or pod change (capacity freed, node added), with no restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from prometheus_client import Gauge, Histogram
from pydantic import ValidationError

from rbg.api.v1alpha1 import API_VERSION, RoleBasedGroup
from rbg.controllers.kinds import PODGROUP, RBG
from rbg.coordination import batches, resources
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.manager import Manager
from rbg.runtime.objects import NODE, POD, Key, Obj, timestamp, trim
from rbg.runtime.webhook import Rule, Verdict, patch_between

log = logging.getLogger(__name__)
FIELD_MANAGER = "rbg-coordination"
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
        self.pods = manager.informer(POD, transform=_slim)
        self.nodes = manager.informer(NODE)
        self.recorder: EventRecorder = manager.recorder("coordination-controller")
        self._assumed: dict[str, tuple[str, dict[str, Decimal]]] = {}  # released, not bound: uid -> node
        self._waiting: set[Key] = set()  # groups with a batch not placed yet
        self._unplaced_since: dict[tuple[Key, str, int], float] = {}
        self._phases: dict[tuple[Key, str, int], str] = {}
        self._complete_since: dict[tuple[Key, str, int], float] = {}  # batch complete and gated, since
        self._stranded: dict[Key, int] = {}
        self._claims: dict[tuple[str, str, str], str] = {}  # (namespace, key, domain) -> exclusive group
        self.controller = Controller("coordination", self.reconcile, workers=workers)
        self.controller.for_informer(self.rbgs, predicate=not_status_only)
        self.controller.watches(self.pods, self._pod_keys)
        self.controller.watches(self.nodes, lambda _node: list(self._waiting))
        # capacity arriving (a node added, or its allocatable grown) is what a stalled gang waits for
        self._capacity_epoch = 0
        self._nudged: dict[Key, tuple[int, float]] = {}  # group -> (epoch, when) of its last touch
        self._capacity_at = 0.0
        self.nodes.add_handler(self._on_node)
        manager.add(self.controller)

    def _on_node(self, event: str, obj: Obj, old: Obj | None) -> None:
        def alloc(n: Obj | None) -> Any:
            return ((n or {}).get("status") or {}).get("allocatable")

        if event == "ADDED" or (event == "MODIFIED" and alloc(obj) != alloc(old)):
            self._capacity_epoch += 1
            self._capacity_at = time.monotonic()

    def _pod_keys(self, pod: Obj) -> Iterable[Key]:
        labels = pod["metadata"].get("labels") or {}
        keys = list(self._waiting)  # capacity may have changed for every group still waiting
        group = labels.get(batches.GROUP_NAME)
        if group and (POD_GROUP_LABEL in labels or any(k.startswith(batches.LABEL_PREFIX) for k in labels)):
            keys.append(Key(pod["metadata"].get("namespace") or "", group))
        return keys

    # -- admission --------------------------------------------------------------------------------

    async def mutate_pod(self, request: dict[str, Any]) -> Verdict:
        """Gate a coordinated pod at creation and label it with its batch (reads the group's cache)."""
        pod = request.get("object") or {}
        ns = request.get("namespace") or (pod.get("metadata") or {}).get("namespace") or ""
        group = ((pod.get("metadata") or {}).get("labels") or {}).get(batches.GROUP_NAME)
        obj = self.rbgs.get(Key(ns, group)) if group else None
        if obj is None:
            return Verdict()
        try:
            rbg = RoleBasedGroup.model_validate(obj)
        except ValidationError:
            return Verdict()
        mutated = batches.mutate(pod, rbg)
        if mutated is None:
            return Verdict()
        return Verdict(patch=patch_between(pod, mutated))

    # -- reconcile --------------------------------------------------------------------------------

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
        nodes = self.nodes.list()
        if exclusive is not None:  # the whole group is one batch, in a domain no other group uses
            coord, aff = exclusive
            others = batches.others_domains(nodes, self.pods.list(key.namespace), key.name, aff.topology_key)
            # domains other groups were given moments ago, whose pins the cache may not show yet
            others |= {
                domain
                for (ns, tkey, domain), group in self._claims.items()
                if ns == key.namespace and tkey == aff.topology_key and group != key.name
            }
            coords.append((coord, aff, {"total": 1, "avoid": others}))
        statuses: list[Obj] = []
        stranded = 0
        waiting = False
        wake: float | None = None
        for coord, aff, extra in coords:
            # a fresh look for each coordination: releases of other passes may have landed meanwhile
            everyone = self.pods.list()
            bound_uids = {p["metadata"].get("uid") for p in everyone if (p.get("spec") or {}).get("nodeName")}
            live = {p["metadata"].get("uid") for p in everyone}
            for uid in [u for u in self._assumed if u in bound_uids or u not in live]:
                del self._assumed[uid]
            used = resources.usage(everyone, self._assumed)
            d = batches.decide(rbg, coord, aff, pods, nodes, used, **extra)
            # what this pass gives away is recorded before its first await: a concurrent pass for another
            # group must not plan the same capacity (or, for exclusive topology, the same domain)
            for pod, _domain in d.release:
                node = d.assigned.get(pod["metadata"]["name"])
                if node is not None:
                    self._assumed[pod["metadata"].get("uid", "")] = (node, resources.pod_requests(pod))
            if coord.name == batches.EXCLUSIVE and d.planned:
                # the group's claim moves with it: a re-planned group frees the domain it had
                for claim in [c for c, g in self._claims.items() if c[0] == key.namespace and g == key.name]:
                    del self._claims[claim]
                for _index, domain in d.planned:
                    self._claims[(key.namespace, aff.topology_key, domain)] = key.name
            for pod, domain in d.release:
                await self._release(pod, aff.topology_key, domain)
            now = time.monotonic()
            for index, domain in d.planned:
                msg = f"batch {index} of coordination {coord.name} planned on {aff.topology_key}={domain}"
                self.recorder.event(obj, "Normal", "BatchPlanned", msg)
                since = self._complete_since.pop((key, coord.name, index), None)
                if since is not None:
                    BATCH_WAIT.observe(now - since)
            for b in d.batches:
                if b.domain is None and b.members and all(resources.gated(p) for p in b.members):
                    self._complete_since.setdefault((key, coord.name, b.index), now)
                stranded += _stranded(b)
            for b in d.batches:
                ref = (key, coord.name, b.index)
                if b.index in d.unplaced:
                    since = self._unplaced_since.setdefault(ref, now)
                    if now - since >= aff.batch_timeout_seconds:
                        b.phase = "Stuck"
                    else:
                        left = aff.batch_timeout_seconds - (now - since)
                        wake = left if wake is None else min(wake, left)
                else:
                    self._unplaced_since.pop(ref, None)
                before = self._phases.get(ref)
                if b.phase != before:
                    self._phases[ref] = b.phase
                    if before is None and b.phase == "Bound":
                        continue  # bound before this process saw it (a restart): nothing new to say
                    if b.phase == "Bound":
                        msg = f"batch {b.index} of coordination {coord.name}: every pod bound in {b.domain}"
                        self.recorder.event(obj, "Normal", "BatchBound", msg)
                    elif b.phase == "Stuck":
                        msg = f"batch {b.index} of coordination {coord.name} has no domain: {b.message}"
                        self.recorder.event(obj, "Warning", "BatchStuck", msg)
            current = {b.index for b in d.batches}
            for ref in [
                r for r in self._phases if r[0] == key and r[1] == coord.name and r[2] not in current
            ]:
                self._phases.pop(ref, None)  # batches scaled away
            waiting = waiting or any(b.phase in ("Pending", "Stuck") for b in d.batches)
            statuses.append(self._status(coord.name, d, obj))
        self._stranded[key] = stranded
        self._update_gauges()
        if waiting or gang_wait is not None:
            self._waiting.add(key)
        else:
            self._waiting.discard(key)
        await self._write_status(key, obj, statuses)
        if gang_wait:
            wake = gang_wait if wake is None else min(wake, gang_wait)
        return Result(requeue_after=wake + 0.1) if wake is not None else None

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
            gates = (pod.get("spec") or {}).get("schedulingGates") or []
            index = next((i for i, g in enumerate(gates) if g.get("name") == resources.GATE), None)
            if index is None:
                continue
            patch = [
                {"op": "test", "path": f"/spec/schedulingGates/{index}/name", "value": resources.GATE},
                {"op": "remove", "path": f"/spec/schedulingGates/{index}"},
            ]
            try:
                await self.kube.patch(
                    POD, pod["metadata"]["name"], key.namespace, patch, "json", field_manager=FIELD_MANAGER
                )
            except ApiError as exc:
                if not (exc.not_found or exc.conflict or exc.invalid):
                    raise
        if (obj.get("status") or {}).get("coordinationStatus"):
            await self._write_status(key, obj, [])

    def _forget(self, key: Key) -> None:
        self._waiting.discard(key)
        for claim in [c for c, g in self._claims.items() if c[0] == key.namespace and g == key.name]:
            del self._claims[claim]
        self._stranded.pop(key, None)
        for ref in [r for r in self._phases if r[0] == key]:
            self._phases.pop(ref, None)
            self._unplaced_since.pop(ref, None)
            self._complete_since.pop(ref, None)
        self._update_gauges()

    def _update_gauges(self) -> None:
        counts = dict.fromkeys(PHASES, 0)
        for phase in self._phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, n in counts.items():
            BATCHES.labels(phase).set(n)
        STRANDED.set(sum(self._stranded.values()))

    async def _release(self, pod: Obj, topology_key: str, domain: str) -> None:
        """One update: pin to the domain (an addition, allowed while gated) and remove our gate.

        A JSON patch whose `test` guards the gate's position, not a resourceVersion precondition: the
        scheduler writes the status of gated pods, and a conflict there would leave a member of a planned
        batch gated while its capacity goes to someone else."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        gates = spec.get("schedulingGates") or []
        index = next((i for i, g in enumerate(gates) if g.get("name") == resources.GATE), None)
        if index is None:
            return
        selector = spec.get("nodeSelector")
        pin: Obj = (
            {
                "op": "add",
                "path": f"/spec/nodeSelector/{topology_key.replace('~', '~0').replace('/', '~1')}",
                "value": domain,
            }
            if selector
            else {"op": "add", "path": "/spec/nodeSelector", "value": {topology_key: domain}}
        )
        patch = [
            {"op": "test", "path": f"/spec/schedulingGates/{index}/name", "value": resources.GATE},
            {"op": "remove", "path": f"/spec/schedulingGates/{index}"},
            pin,
        ]
        try:
            await self.kube.patch(
                POD, meta["name"], meta.get("namespace"), patch, "json", field_manager=FIELD_MANAGER
            )
        except ApiError as exc:
            if exc.not_found:
                self._assumed.pop(meta.get("uid", ""), None)  # gone: its capacity is not taken
                return
            if exc.conflict or exc.invalid:
                # the test failed: most likely an earlier pass released it and the cache has not seen
                # that yet, so its capacity stays assumed (dropped once it is bound or gone)
                return
            raise

    def _status(self, name: str, d: batches.Decision, obj: Obj) -> Obj:
        phases = [b.phase for b in d.batches]
        if phases and all(p == "Bound" for p in phases):
            phase = "Completed"
        elif "Stuck" in phases:
            phase = "Stuck"
        elif any(p in ("Planned", "Bound") for p in phases):
            phase = "InProgress"
        else:
            phase = "Pending"
        message = next((f"batch {b.index}: {b.message}" for b in d.batches if b.message), "")
        previous: Obj = next(
            (c for c in (obj.get("status") or {}).get("coordinationStatus") or [] if c.get("name") == name),
            {},
        )
        since = previous.get("lastTransitionTime") if previous.get("phase") == phase else timestamp()
        return {
            "name": name,
            "type": "ExclusiveTopology" if name == batches.EXCLUSIVE else "AffinityScheduling",
            "phase": phase,
            "totalBatches": len(d.batches),
            "placedBatches": sum(1 for p in phases if p in ("Planned", "Bound")),
            "batches": [
                {"index": b.index, "phase": b.phase, **({"domain": b.domain} if b.domain else {})}
                for b in d.batches
            ],
            "message": message,
            "lastTransitionTime": since or timestamp(),
        }

    async def _write_status(self, key: Key, obj: Obj, statuses: list[Obj]) -> None:
        def strip(items: list[Obj]) -> list[Obj]:
            return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in items]

        if strip((obj.get("status") or {}).get("coordinationStatus") or []) == strip(statuses):
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


def _stranded(b: batches.BatchState) -> int:
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


def _slim(pod: Obj) -> Obj:
    return resources.slim_pod(trim(pod))
