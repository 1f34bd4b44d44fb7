"""Leader/worker groups placed by the planner (KEP-162 Exclusive and Colocated, D29).

Thin: per LeaderWorkerSet with a placement, reads its gated leaders, the namespace's pods and the nodes
from the coordination controller's caches, asks rbg.coordination.groups where each group goes (off the
event loop, under the same lock and capacity ledger as the ratio batches), releases each leader pinned
to its planned node and reserves its workers' capacity until they exist. A leader that no domain can
hold with its workers stays gated and the set gets a Warning event with the planner's reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from pydantic import ValidationError

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.controllers.coordination.controller import CoordinationReconciler
from rbg.controllers.coordination.pods import EXPECT_FOR
from rbg.controllers.kinds import LWS
from rbg.coordination import groups
from rbg.coordination.resources import LWS_GATE, PLANNED_WORKERS, gate_removal, pod_requests
from rbg.leaderworker import labels
from rbg.leaderworker.validation import placement
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, generation_changed
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.manager import Manager
from rbg.runtime.objects import POD, Key, Obj

RETRY_AFTER = 30.0  # a waiting group is also looked at again this often (capacity may come unseen)


class LeaderWorkerPlacement:
    def __init__(
        self, manager: Manager, kube: Kube, coordination: CoordinationReconciler, *, workers: int
    ) -> None:
        self.kube = kube
        self.c = coordination
        self.sets = manager.informer(LWS)
        self.recorder: EventRecorder = manager.recorder("lws-placement")
        self._waiting: set[Key] = set()
        self._told: dict[str, str] = {}  # leader uid -> the reason last told (an event once per reason)
        self.controller = Controller("lws-placement", self.reconcile, workers=workers)
        self.controller.for_informer(self.sets, predicate=generation_changed)
        self.controller.watches(self.c.pods, self._leader_keys)
        self.c.listeners.append(self._capacity_changed)
        manager.add(self.controller)

    def _leader_keys(self, pod: Obj) -> Iterable[Key]:
        pod_labels = pod["metadata"].get("labels") or {}
        lws = pod_labels.get(labels.NAME)
        if lws and pod_labels.get(labels.WORKER_INDEX) == "0":
            return [Key(pod["metadata"].get("namespace") or "", lws)]
        return []

    def _capacity_changed(self) -> None:
        for key in self._waiting:
            self.controller.enqueue(key)

    async def reconcile(self, key: Key) -> Result | None:
        obj = self.sets.get(key)
        if obj is None:
            self._waiting.discard(key)
            return None
        try:
            where = placement(LeaderWorkerSet.model_validate(obj))
        except ValidationError:
            return None
        leaders = groups.leaders_waiting(self.c.pods.list(key.namespace, {labels.NAME: key.name}), key.name)
        if where.type == "None" or where.key is None or not leaders:
            self._waiting.discard(key)
            if where.type == "None":
                await self._ungate(leaders)  # placement removed: nothing holds them any more
            return None
        async with self.c.plan_lock:
            nodes = self.c.nodes.list()
            used = self.c.used()
            # as this process's own releases left them (a group released a moment ago holds its domain)
            ns_pods = self.c.expected(self.c.pods.list(key.namespace))
            leaders = groups.leaders_waiting(ns_pods, key.name)
            d = await asyncio.to_thread(
                lambda: groups.decide_groups(obj, where.type, str(where.key), leaders, ns_pods, nodes, used)
            )
            until = time.monotonic() + EXPECT_FOR
            for leader, domain, host in d.release:
                uid, name = leader["metadata"].get("uid", ""), leader["metadata"]["name"]
                self.c.writes.released[uid] = (str(where.key), domain, host, until)
                self.c.ledger.assume(uid, d.assigned[name], pod_requests(leader))
                if name in d.plans:
                    group_key = (leader["metadata"].get("labels") or {}).get(labels.GROUP_KEY, "")
                    group = f"{key.namespace}/{group_key}"
                    self.c.reservations.expect(uid, group, d.plans[name], until)
        for i, (leader, domain, host) in enumerate(d.release):
            plan = d.plans.get(leader["metadata"]["name"])
            try:
                await self.c.writes.release_pod(
                    leader,
                    str(where.key),
                    domain,
                    host,
                    gate=LWS_GATE,
                    annotations={PLANNED_WORKERS: plan} if plan else None,
                )
            except BaseException:
                for later, _, _ in d.release[i:]:  # failed or not attempted: seen as they are by the retry
                    self.c.writes.released.pop(later["metadata"].get("uid", ""), None)
                    self.c.ledger.forget(later["metadata"].get("uid", ""))
                    self.c.reservations.drop(later["metadata"].get("uid", ""))
                raise
            self.recorder.event(
                obj,
                "Normal",
                "GroupPlanned",
                f"{leader['metadata']['name']} and its workers planned on {where.key}={domain}",
            )
        for uid in [u for u in self._told if u not in self.c.ledger]:
            del self._told[uid]  # leaders gone
        for leader in leaders:
            uid = leader["metadata"].get("uid", "")
            why = d.waiting.get(leader["metadata"]["name"])
            if why is not None and self._told.get(uid) != why:
                self._told[uid] = why
                self.recorder.event(obj, "Warning", "FailedPlacement", f"{leader['metadata']['name']}: {why}")
                # on the leader too, where the set's status reads why its group is not scheduled
                note = {"metadata": {"annotations": {labels.PLACEMENT_WHY: why}}}
                try:
                    await self.kube.patch(
                        POD, leader["metadata"]["name"], key.namespace, note, field_manager="rbg-lws"
                    )
                except ApiError as exc:
                    if not exc.not_found:
                        raise
        if d.waiting:
            self._waiting.add(key)
            return Result(requeue_after=RETRY_AFTER)
        self._waiting.discard(key)
        return None

    async def _ungate(self, leaders: list[Obj]) -> None:
        for leader in leaders:
            await self.c.writes.ungate(leader, LWS_GATE)


async def let_go(kube: Kube) -> int:
    """Remove our placement gate from every leader that carries it (an upstream LeaderWorkerSet install
    took over, D23: nothing of ours would ever release them); how many were let go."""
    pods, _ = await kube.list(POD, label_selector=f"{labels.WORKER_INDEX}=0")
    count = 0
    for pod in pods:
        patch = gate_removal(pod, LWS_GATE)
        if patch is None:
            continue
        try:
            await kube.patch(POD, pod["metadata"]["name"], pod["metadata"].get("namespace"), patch, "json")
            count += 1
        except ApiError as exc:
            if not (exc.not_found or exc.conflict or exc.invalid):
                raise
    return count
