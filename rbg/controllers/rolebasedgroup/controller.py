"""RoleBasedGroup controller: read the caches, call the pure plan, apply the difference.

All decisions live in rbg.group.plan; this module only moves data between the API and that function.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rbg.api.v1alpha1 import API_VERSION, RoleBasedGroup
from rbg.controllers.kinds import LWS, PODGROUP, RBG, RBGSA, VOLCANO_PODGROUP
from rbg.group import names, workloads
from rbg.group.plan import plan
from rbg.group.status import progress_only, same_status
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.diff import stamp, up_to_date
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.informer import Informer
from rbg.runtime.manager import Manager
from rbg.runtime.objects import (
    CONFIGMAP,
    CONTROLLERREVISION,
    DEPLOYMENT,
    SERVICE,
    STATEFULSET,
    Key,
    Obj,
    rv_older,
    timestamp,
)

log = logging.getLogger(__name__)
CHILD_KINDS = (
    STATEFULSET,
    DEPLOYMENT,
    LWS,
    SERVICE,
    CONFIGMAP,
    PODGROUP,
    VOLCANO_PODGROUP,
    RBGSA,
    CONTROLLERREVISION,
)
#: kinds a user's object of the same name may exist of (a revision's name holds its hash: none)
NAMED_KINDS = tuple(k for k in CHILD_KINDS if k is not CONTROLLERREVISION)
#: kinds whose CRD may be absent (installed later, or by an upstream controller)
OPTIONAL_KINDS = (LWS, PODGROUP, VOLCANO_PODGROUP)
CHILD_KIND = {k.api_version + "/" + k.kind: k for k in CHILD_KINDS}


def _ref(obj: Obj) -> str:
    """apiVersion/kind: two kinds share the name PodGroup."""
    return f"{obj['apiVersion']}/{obj['kind']}"


WORKLOAD_KINDS = workloads.KINDS
TAKEN_RECHECK_SECONDS = 30.0


class RoleBasedGroupReconciler:
    def __init__(
        self, manager: Manager, kube: Kube, workers: int = 8, status_progress_interval: float = 5.0
    ) -> None:
        """`status_progress_interval`: seconds between status writes that only update counts (D19)."""
        self.kube = kube
        self.status_progress_interval = status_progress_interval
        self.rbgs = manager.informer(RBG)
        # only children carrying the group label are cached: our objects, not the whole cluster
        self.children: dict[str, Informer] = {
            k.api_version + "/" + k.kind: manager.informer(
                k, label_selector=names.GROUP_NAME, optional=k in OPTIONAL_KINDS
            )
            for k in CHILD_KINDS
        }
        # and the names of everyone else's objects of those kinds (metadata only), so that a group never
        # takes over a user's ConfigMap or Service of the same name, without a GET before each create
        self.others: dict[str, Informer] = {
            k.api_version + "/" + k.kind: manager.informer(
                k, label_selector=f"!{names.GROUP_NAME}", metadata_only=True, optional=k in OPTIONAL_KINDS
            )
            for k in NAMED_KINDS
        }
        self.recorder: EventRecorder = manager.recorder("rolebasedgroup-controller")
        self._written: dict[Key, _Written] = {}
        self.controller = Controller("rolebasedgroup", self.reconcile, workers=workers)
        # our own status writes come back as updates: they need no reconcile
        self.controller.for_informer(self.rbgs, predicate=not_status_only)
        for informer in self.children.values():
            self.controller.owns(informer, RBG)
        manager.add(self.controller)

    async def reconcile(self, key: Key) -> Result | None:
        obj = self.rbgs.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self._written.pop(key, None)
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
        now = timestamp()
        result = plan(rbg, children, now)
        stamped = [stamp(d, names.APPLIED_HASH) for d in result.apply]
        changed = [
            d for d in stamped if not up_to_date(self._observed_of(d, key.namespace), d, names.APPLIED_HASH)
        ]
        taken = self._taken(uid, changed, key.namespace)
        if taken:  # nothing is written: the plan that reports it applies and deletes nothing
            result, changed = plan(rbg, children, now, taken), []
        rejected: dict[tuple[str, str], str] = {}
        # the ConfigMap and Services first: a workload starts only once what its pods use exists
        first = [d for d in changed if d["kind"] not in WORKLOAD_KINDS]
        then = [d for d in changed if d["kind"] in WORKLOAD_KINDS]
        if not await self._write_all(obj, first, result.delete, key.namespace, rejected):
            return None  # the namespace is going away, and the group with it: no retries
        written = not rejected  # the workloads are written only once the rest was accepted
        if written and not await self._write_all(obj, then, [], key.namespace, rejected):
            return None
        rolled = {
            (d["kind"], d["metadata"]["name"])
            for d in (then if written else [])
            if (d["kind"], d["metadata"]["name"]) not in rejected
            and self._observed_of(d, key.namespace) is not None
        }
        if rejected or rolled:
            # what the spec produces is refused by the API server (e.g. a container without an image):
            # say so in status and events instead of retrying the same write forever. A workload just
            # changed has not caught up with its new spec (the cache still shows it as it was): its role
            # is not Ready until the workload says so (a RoleBasedGroupSet rolls its next group on it)
            seen = [
                _not_caught_up(c) if (c.get("kind"), c["metadata"]["name"]) in rolled else c for c in children
            ]
            result = plan(rbg, seen, now, taken, rejected)
        wait = self._status_wait(key, obj, result.status)
        if wait > 0:
            # progress (counts) only, and written moments ago: written once the interval has passed,
            # with whatever the counts are then
            return Result(requeue_after=wait)
        if await self._write_status(key, obj, result.status):
            # said once per change of state, not on every reconcile (events cost writes too)
            if result.invalid:
                reason = "FailedReconcileWorkload" if rejected else "InvalidSpec"
                self.recorder.event(obj, "Warning", reason, "; ".join(result.invalid))
            for role, deps in sorted(result.waiting.items()):
                msg = f"role {role} waits for {', '.join(deps)} to be Ready"
                self.recorder.event(obj, "Warning", "DependencyNotMet", msg)
        if taken:
            # the other owner's object may go away without any event reaching this group: look again
            return Result(requeue_after=TAKEN_RECHECK_SECONDS)
        return None

    async def _write_all(
        self,
        owner: Obj,
        apply: list[Obj],
        delete: list[Obj],
        namespace: str,
        rejected: dict[tuple[str, str], str],
    ) -> bool:
        """Apply and delete concurrently; False when the namespace is terminating.

        A TaskGroup cancels the siblings of a failed write, so no write outlives its reconcile.
        """
        if not apply and not delete:
            return True
        try:
            async with asyncio.TaskGroup() as tg:
                for d in apply:
                    tg.create_task(self._apply(owner, d, namespace, rejected))
                for stale in delete:
                    tg.create_task(self._delete(owner, stale, namespace))
        except ExceptionGroup as group:
            for extra in group.exceptions[1:]:
                log.warning("another write of the same reconcile failed: %s", extra)
            first = group.exceptions[0]
            if isinstance(first, ApiError) and first.namespace_terminating:
                return False
            raise first from None
        return True

    def _taken(self, uid: str, changed: list[Obj], namespace: str) -> dict[tuple[str, str], str]:
        """Objects about to be written that exist under another owner (another group, or a user).

        Read from the caches alone: the group-labelled cache and the metadata-only cache of every other
        object of the child kinds. An object created moments ago may not be cached yet; a GET before each
        create would narrow that window, not close it, and cost a request per child.
        """
        taken: dict[tuple[str, str], str] = {}
        for d in changed:
            ref = Key(namespace, d["metadata"]["name"])
            others = self.others.get(_ref(d))
            existing = self.children[_ref(d)].get(ref) or (others.get(ref) if others is not None else None)
            if existing is None:
                continue
            refs = [r for r in existing["metadata"].get("ownerReferences") or [] if r.get("controller")]
            if not refs or refs[0].get("uid") != uid:
                owner = f"{refs[0]['kind']} {refs[0]['name']}" if refs else "no controller (made by hand?)"
                taken[(d["kind"], d["metadata"]["name"])] = owner
        return taken

    def _observed_of(self, desired: Obj, namespace: str) -> Obj | None:
        """The cached object a desired body describes, if the cache has it."""
        return self.children[_ref(desired)].get(Key(namespace, desired["metadata"]["name"]))

    async def _apply(
        self, owner: Obj, desired: Obj, namespace: str, rejected: dict[tuple[str, str], str]
    ) -> None:
        existed = self._observed_of(desired, namespace) is not None
        try:
            await self.kube.apply(desired)
        except ApiError as exc:
            if exc.not_found and desired["kind"] == "PodGroup":  # e.g. no Volcano in this cluster
                rejected[(desired["kind"], desired["metadata"]["name"])] = (
                    f"the {desired['apiVersion']} PodGroup kind is not installed in this cluster"
                )
                return
            if not exc.invalid:
                raise
            rejected[(desired["kind"], desired["metadata"]["name"])] = exc.message
            return
        if not existed and desired["kind"] in WORKLOAD_KINDS:
            msg = f"created {desired['kind']} {desired['metadata']['name']}"
            self.recorder.event(owner, "Normal", "SuccessfulCreate", msg)

    async def _delete(self, owner: Obj, stale: Obj, namespace: str) -> None:
        name = stale["metadata"]["name"]
        await self.kube.delete(
            CHILD_KIND[_ref(stale)], name, namespace, preconditions_uid=stale["metadata"]["uid"]
        )
        if stale["kind"] == "ControllerRevision":
            log.debug("revision pruned", extra={"group": owner["metadata"]["name"], "revision": name})
            return
        self.recorder.event(
            owner, "Normal", "SuccessfulDelete", f"deleted {stale['kind']} {name}: no role uses it"
        )

    def _status_wait(self, key: Key, obj: Obj, status: dict[str, Any]) -> float:
        """Seconds to hold back a status that only reports progress (0: write it now if it changed).

        While pods come up, ready and updated counts change many times a second across a cluster; each
        write is an API write of the whole group. Progress is written at most once per
        `status_progress_interval` per group; a condition that flips (Ready, Progressing, InvalidSpec) is
        written at once.
        """
        last = self._written.get(key)
        if last is None or last.uid != obj["metadata"].get("uid"):
            return 0.0
        since = time.monotonic() - last.at
        if since >= self.status_progress_interval or not progress_only(last.status, status):
            return 0.0
        return 0.0 if same_status(obj.get("status"), status) else self.status_progress_interval - since

    async def _write_status(self, key: Key, obj: Obj, status: dict[str, Any]) -> bool:
        """Write the status if it changed; True when it did.

        The cache may not have seen our last status write yet when the next reconcile runs: a status
        equal to the one written last, on an object the cache holds at an older resourceVersion than
        that write, is not written again.
        """
        last = self._written.get(key)
        if (
            last is not None
            and last.uid == obj["metadata"].get("uid")
            and same_status(last.status, status)
            and rv_older(obj["metadata"].get("resourceVersion"), last.resource_version)
        ):
            return False
        if same_status(obj.get("status"), status):
            return False
        body = {
            "apiVersion": API_VERSION,
            "kind": "RoleBasedGroup",
            "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]},
            "status": status,
        }
        try:
            written = await self.kube.apply_status(body)
        except ApiError as exc:
            if not exc.not_found:  # deleted meanwhile: nothing to report on
                raise
            return False
        meta = written.get("metadata") or {}
        self._written[key] = _Written(meta.get("uid"), meta.get("resourceVersion"), status, time.monotonic())
        return True


@dataclass(frozen=True)
class _Written:
    """The last status this controller wrote for a group."""

    uid: str | None
    resource_version: str | None
    status: dict[str, Any]
    at: float  # time.monotonic() of the write


def _not_caught_up(workload: Obj) -> Obj:
    """The workload as it is once its new spec is stored: a generation its status has not observed."""
    meta = workload["metadata"]
    return {**workload, "metadata": {**meta, "generation": int(meta.get("generation") or 0) + 1}}
