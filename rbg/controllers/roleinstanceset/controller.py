"""RoleInstanceSet controller: read the caches, call the pure plan (rbg.instances.plan), apply the
difference: one StatefulSet per component of each instance (D42), and the set's status."""

from __future__ import annotations

import asyncio

from rbg.api.roleinstanceset import RoleInstanceSet
from rbg.controllers.kinds import RIS
from rbg.controllers.reading import read
from rbg.instances import labels
from rbg.instances.plan import Plan, plan
from rbg.lifecycle import conventions
from rbg.lifecycle.conventions import controller_uid
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.diff import stamp, up_to_date
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.manager import Manager
from rbg.runtime.objects import STATEFULSET, Key, Obj

FIELD_MANAGER = "rbg"
APPLIED_HASH = labels.PREFIX + "applied-hash"
#: sets with more StatefulSets than this are planned in a worker thread (about 1 ms per StatefulSet)
INLINE_STATEFULSETS = 64
FOREIGN: Obj = {}  # marks a StatefulSet of that name another owner controls


class RoleInstanceSetReconciler:
    def __init__(self, manager: Manager, kube: Kube, workers: int = 8) -> None:
        self.kube = kube
        self.sets = manager.informer(RIS)
        # only the StatefulSets of some set are cached
        self.statefulsets = manager.informer(STATEFULSET, label_selector=labels.SET)
        self.recorder: EventRecorder = manager.recorder("roleinstanceset-controller")
        self._threaded = asyncio.Semaphore(1)
        self.controller = Controller("roleinstanceset", self.reconcile, workers=workers)
        self.controller.for_informer(self.sets, predicate=not_status_only)
        self.controller.owns(self.statefulsets, RIS)
        manager.add(self.controller)

    async def reconcile(self, key: Key) -> Result | None:
        obj = self.sets.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None  # garbage collection removes the StatefulSets through their owner references
        annotations = obj["metadata"].get("annotations") or {}
        if annotations.get(labels.RUNS_AS) != labels.RUNS_AS_STATEFULSETS:
            # upstream's, left from before a migration: its RoleInstances are not ours to run (D42)
            return None
        ris = read(RoleInstanceSet, obj, self.recorder)
        if ris is None:
            return None
        meta = obj["metadata"]
        owner = conventions.owner_reference(obj["apiVersion"], obj["kind"], meta["name"], meta["uid"])
        owned = [s for s in self.statefulsets.by_owner(meta["uid"]) if controller_uid(s) == meta["uid"]]
        generation = int(meta.get("generation") or 0)
        size = ris.spec.replicas * len(ris.spec.role_instance_template.components)
        if size > INLINE_STATEFULSETS:  # the plan and its digests take a while: not on the event loop
            async with self._threaded:  # one at a time: several would hold the GIL against the loop
                result, todo = await asyncio.to_thread(self._decide, obj, ris, owner, owned, generation)
        else:
            result, todo = self._decide(obj, ris, owner, owned, generation)
        try:
            await self._write(obj, todo, result.delete, key.namespace)
        except ApiError as exc:
            if exc.namespace_terminating:
                return None
            raise
        if (obj.get("status") or {}) != result.status:
            await self.kube.write_status(
                RIS, key.name, key.namespace, result.status, field_manager=FIELD_MANAGER
            )
        return None

    def _decide(
        self, obj: Obj, ris: RoleInstanceSet, owner: Obj, owned: list[Obj], generation: int
    ) -> tuple[Plan, list[tuple[Obj, Obj | None]]]:
        """The plan, and its StatefulSets that differ from the cache (stamped bodies, what is cached)."""
        result = plan(ris, owner, owned, generation)
        ns = obj["metadata"]["namespace"]
        todo: list[tuple[Obj, Obj | None]] = []
        for d in result.apply:
            body = stamp(d, APPLIED_HASH)
            observed = self.statefulsets.get(Key(ns, d["metadata"]["name"]))
            if observed is not None and controller_uid(observed) != obj["metadata"]["uid"]:
                todo.append((body, FOREIGN))  # said by _write (events are sent from the loop)
                continue
            if not up_to_date(observed, body, APPLIED_HASH):
                todo.append((body, observed))
        return result, todo

    async def _write(self, obj: Obj, todo: list[tuple[Obj, Obj | None]], delete: list[Obj], ns: str) -> None:
        for body, observed in todo:
            if observed is FOREIGN:
                msg = f"StatefulSet {body['metadata']['name']} belongs to another owner"
                self.recorder.event(obj, "Warning", "FailedCreate", msg)
        todo = [(body, observed) for body, observed in todo if observed is not FOREIGN]

        async def one(body: Obj, observed: Obj | None) -> None:
            try:
                await self.kube.apply(body, field_manager=FIELD_MANAGER)
            except ApiError as exc:
                if not exc.invalid:
                    raise
                msg = f"StatefulSet {body['metadata']['name']}: {exc.message}"
                self.recorder.event(obj, "Warning", "FailedCreate", msg)
                return
            if observed is None:
                self.recorder.event(
                    obj, "Normal", "SuccessfulCreate", f"Created StatefulSet {body['metadata']['name']}"
                )

        async def gone(sts: Obj) -> None:
            meta = sts["metadata"]
            if meta.get("deletionTimestamp"):
                return
            await self.kube.delete(STATEFULSET, meta["name"], ns, preconditions_uid=meta.get("uid"))
            self.recorder.event(obj, "Normal", "SuccessfulDelete", f"Deleted StatefulSet {meta['name']}")

        results = await asyncio.gather(
            *(one(body, observed) for body, observed in todo),
            *(gone(sts) for sts in delete),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
