"""RoleBasedGroup controller: read the caches, call the pure plan, apply the difference.

All decisions live in rbg.group.plan; this module only moves data between the API and that function.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pydantic import ValidationError

from rbg.api.v1alpha1 import API_VERSION, RoleBasedGroup
from rbg.group import names
from rbg.group.plan import plan
from rbg.group.status import same_status
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result
from rbg.runtime.diff import contains
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.informer import Informer
from rbg.runtime.manager import Manager
from rbg.runtime.objects import CONFIGMAP, DEPLOYMENT, SERVICE, STATEFULSET, Key, Kind, Obj

log = logging.getLogger(__name__)
RBG = Kube.register(Kind("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups"))
CHILD_KINDS = (STATEFULSET, DEPLOYMENT, SERVICE, CONFIGMAP)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RoleBasedGroupReconciler:
    def __init__(self, manager: Manager, kube: Kube, workers: int = 8) -> None:
        self.kube = kube
        self.rbgs = manager.informer(RBG)
        # only children carrying the group label are cached: our objects, not the whole cluster
        self.children: dict[str, Informer] = {
            k.kind: manager.informer(k, label_selector=names.GROUP_NAME) for k in CHILD_KINDS
        }
        self.recorder: EventRecorder = manager.recorder("rolebasedgroup-controller")
        self.controller = Controller("rolebasedgroup", self.reconcile, workers=workers)
        self.controller.for_informer(self.rbgs)
        for informer in self.children.values():
            self.controller.owns(informer, RBG)
        manager.add(self.controller)

    def _observed(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.children[kind].get(Key(namespace, name))

    async def reconcile(self, key: Key) -> Result | None:
        obj = self.rbgs.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None  # garbage collection removes the children through their owner references
        try:
            rbg = RoleBasedGroup.model_validate(obj)
        except ValidationError as exc:  # stored before the CRD schema tightened; never crash on it
            self.recorder.event(
                obj, "Warning", "InvalidSpec", f"cannot read the object: {exc.errors()[0]['msg']}"
            )
            return None
        uid = rbg.metadata.uid
        children = [c for inf in self.children.values() for c in inf.by_owner(uid)]
        result = plan(rbg, children, _now())

        if result.invalid:
            self.recorder.event(obj, "Warning", "InvalidSpec", "; ".join(result.invalid))
        for desired in result.apply:
            observed = self._observed(desired["kind"], key.namespace, desired["metadata"]["name"])
            if observed is not None and contains(observed, desired):
                continue
            await self.kube.apply(desired)
            if observed is None and desired["kind"] in ("StatefulSet", "Deployment"):
                self.recorder.event(
                    obj,
                    "Normal",
                    "SuccessfulCreate",
                    f"created {desired['kind']} {desired['metadata']['name']}",
                )
        for stale in result.delete:
            kind = next(k for k in CHILD_KINDS if k.kind == stale["kind"])
            await self.kube.delete(
                kind, stale["metadata"]["name"], key.namespace, preconditions_uid=stale["metadata"]["uid"]
            )
            self.recorder.event(
                obj,
                "Normal",
                "SuccessfulDelete",
                f"deleted {stale['kind']} {stale['metadata']['name']}: no role uses it",
            )
        for role, deps in sorted(result.waiting.items()):
            self.recorder.event(
                obj, "Normal", "DependencyNotMet", f"role {role} waits for {', '.join(deps)} to be Ready"
            )
        await self._write_status(obj, result.status)
        return None

    async def _write_status(self, obj: Obj, status: dict[str, Any]) -> None:
        if same_status(obj.get("status"), status):
            return
        body = {
            "apiVersion": API_VERSION,
            "kind": "RoleBasedGroup",
            "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]},
            "status": status,
        }
        try:
            await self.kube.apply_status(body)
        except ApiError as exc:
            if not exc.not_found:  # deleted meanwhile: nothing to report on
                raise
