"""RoleBasedGroupSets: `replicas` child groups, created, rolled one group at a time, scaled down from
the highest index. Thin: caches in, rbg.groupset.plan decides, writes out (server-side apply of the
children it creates or updates only; nothing written at idle)."""

from __future__ import annotations

from rbg.api.hub_groupset import RoleBasedGroupSet
from rbg.controllers.kinds import RBG, RBGSET
from rbg.controllers.reading import read
from rbg.groupset import plan as core
from rbg.lifecycle.conventions import condition, controller_uid, without_transition_times
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.manager import Manager
from rbg.runtime.objects import Key, Obj, owner_reference, timestamp

FIELD_MANAGER = "rbg-groupset"


class GroupSetReconciler:
    def __init__(self, manager: Manager, kube: Kube, workers: int = 4) -> None:
        self.kube = kube
        self.sets = manager.informer(RBGSET)
        self.rbgs = manager.informer(RBG)
        self.recorder: EventRecorder = manager.recorder("groupset-controller")
        self.controller = Controller("groupset", self.reconcile, workers=workers)
        self.controller.for_informer(self.sets, predicate=not_status_only)
        self.controller.owns(self.rbgs, RBGSET)
        manager.add(self.controller)

    async def reconcile(self, key: Key) -> Result | None:
        obj = self.sets.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None  # garbage collection removes the children
        gs = read(RoleBasedGroupSet, obj, self.recorder)
        if gs is None:
            return None
        children = self.rbgs.by_owner(gs.metadata.uid)
        p = core.plan(gs, children, owner_reference(obj), timestamp())
        for c in p.delete:
            meta = c["metadata"]
            try:
                await self.kube.delete(RBG, meta["name"], key.namespace, preconditions_uid=meta.get("uid"))
            except ApiError as exc:
                if not (exc.not_found or exc.conflict):
                    raise
        status = p.status
        for c in p.create + p.update:
            name = c["metadata"]["name"]
            existing = self.rbgs.get(Key(key.namespace, name))
            if existing is not None and controller_uid(existing) != gs.metadata.uid:
                # a group of that name that is not ours (made by hand, another owner's): never taken over
                why = f"RoleBasedGroup {name} already exists and does not belong to this set"
                status = _not_ready(status, why, timestamp())
                if (obj.get("status") or {}) != status:
                    self.recorder.event(obj, "Warning", "GroupTaken", why)
                continue
            try:
                await self.kube.apply(c, field_manager=FIELD_MANAGER)
            except ApiError as exc:
                if exc.namespace_terminating:
                    return None
                if exc.invalid or "denied the request" in exc.message:
                    # the group's schema or admission refuses the template: said in status, and as an
                    # event when that is news; tried again when the set or a child changes
                    why = f"{name}: {exc.message}"
                    status = _not_ready(status, why, timestamp())
                    if (obj.get("status") or {}) != status:
                        self.recorder.event(obj, "Warning", "InvalidTemplate", why)
                    break
                raise
        for c in p.update:
            self.recorder.event(
                obj, "Normal", "GroupUpdating", f"{c['metadata']['name']} rolls to the new template"
            )
        await self._write_status(key, obj, status)
        return None

    async def _write_status(self, key: Key, obj: Obj, status: Obj) -> None:
        def strip(st: Obj) -> Obj:
            return {**st, "conditions": without_transition_times(st.get("conditions") or [])}

        if strip(obj.get("status") or {}) == strip(status):
            return
        await self.kube.write_status(RBGSET, key.name, key.namespace, status, field_manager=FIELD_MANAGER)


def _not_ready(status: Obj, why: str, now: str) -> Obj:
    """The status with its Ready condition False for `why` (a flip from True is a transition now)."""
    conditions = [
        condition("Ready", False, "ReplicasNotReady", why, [c], now, same_reason=True)
        if c.get("type") == "Ready"
        else c
        for c in status.get("conditions") or []
    ]
    return {**status, "conditions": conditions}
