"""RoleBasedGroupScalingAdapters: bind an adapter to its group's role, set the role's replicas to the
adapter's (what an autoscaler wrote through /scale), and report status. Thin: caches in, the pure
core (rbg.scaling.adapter) decides, writes out."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import ValidationError

from rbg.api.hub import RoleBasedGroup
from rbg.api.hub_scaling import RoleBasedGroupScalingAdapter
from rbg.controllers.kinds import RBG, RBGSA
from rbg.lifecycle.conventions import controller_uid
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.manager import Manager
from rbg.runtime.objects import Key, Obj, timestamp
from rbg.scaling import adapter as core

log = logging.getLogger(__name__)
FIELD_MANAGER = "rbg-scaling-adapter"
UNBOUND_RETRY = 10.0  # seconds: an adapter whose group or role is missing looks again (as upstream)
REFUSED_RETRY = 30.0  # seconds: a step the group refused is tried again (its spec may have changed)


class ScalingAdapterReconciler:
    def __init__(self, manager: Manager, kube: Kube, workers: int = 4) -> None:
        self.kube = kube
        self.adapters = manager.informer(RBGSA)
        self.rbgs = manager.informer(RBG)
        self.recorder: EventRecorder = manager.recorder("scalingadapter-controller")
        self.controller = Controller("scalingadapter", self.reconcile, workers=workers)
        self.controller.for_informer(self.adapters, predicate=not_status_only)
        self.controller.watches(self.rbgs, self._adapters_of)
        manager.add(self.controller)

    def _adapters_of(self, rbg: Obj) -> Iterable[Key]:
        ns, name = rbg["metadata"].get("namespace") or "", rbg["metadata"]["name"]
        return [
            Key(ns, a["metadata"]["name"])
            for a in self.adapters.list(ns)
            if ((a.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name
        ]

    async def reconcile(self, key: Key) -> Result | None:
        obj = self.adapters.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        try:
            adapter = RoleBasedGroupScalingAdapter.model_validate(obj)
        except ValidationError:
            return None
        target = self.rbgs.get(Key(key.namespace, adapter.spec.scale_target_ref.name))
        rbg = None
        if target is not None and not target["metadata"].get("deletionTimestamp"):
            try:
                rbg = RoleBasedGroup.model_validate(target)
            except ValidationError:
                rbg = None
        role = adapter.spec.scale_target_ref.role
        statuses = ((target or {}).get("status") or {}).get("roleStatuses") or []
        ready = next((int(s.get("readyReplicas") or 0) for s in statuses if s.get("name") == role), 0)
        d = core.decide(adapter, rbg, ready, controller_uid(obj))
        status = dict(d.status)
        refused = False
        if d.bind_replicas is not None:
            patch = {"spec": {"replicas": d.bind_replicas}}
            await self.kube.patch(RBGSA, key.name, key.namespace, patch, field_manager=FIELD_MANAGER)
        if d.scale_role is not None and target is not None:
            index, name, replicas = d.scale_role
            ops = [
                {"op": "test", "path": f"/spec/roles/{index}/name", "value": name},
                {"op": "replace", "path": f"/spec/roles/{index}/replicas", "value": replicas},
            ]
            try:
                await self.kube.patch(
                    RBG, target["metadata"]["name"], key.namespace, ops, "json", field_manager=FIELD_MANAGER
                )
            except ApiError as exc:
                if "denied the request" not in exc.message:
                    raise  # throttled, conflicting, a stale role index, the server: retried with back-off
                # refused by the group's admission (e.g. a coordination's ratio): said, and tried again
                # later (an autoscaler that keeps wanting the same replicas writes nothing new)
                message = f"role {name} cannot be scaled to {replicas}: {exc.message}"
                if status.get("message") != message:
                    self.recorder.event(obj, "Warning", "FailedScale", message)
                status["message"] = message
                refused = True
            else:
                msg = f"role {name} of {target['metadata']['name']} scaled to {replicas}"
                self.recorder.event(obj, "Normal", "SuccessfulScale", msg)
                status.update(lastScaleTime=timestamp(), message="")
        elif status.get("phase") == "Bound":
            status["message"] = ""
        for kind, reason, message in d.events:
            self.recorder.event(obj, kind, reason, message)
        await self._write_status(key, obj, status)
        if refused:
            return Result(requeue_after=REFUSED_RETRY)
        return Result(requeue_after=UNBOUND_RETRY) if status.get("phase") == "NotBound" else None

    async def _write_status(self, key: Key, obj: Obj, status: Obj) -> None:
        if (obj.get("status") or {}) == status:
            return  # no write when nothing changed
        await self.kube.write_status(RBGSA, key.name, key.namespace, status, field_manager=FIELD_MANAGER)
