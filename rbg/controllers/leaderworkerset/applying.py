"""Applying the set's children (leader and worker StatefulSets, Services): only what differs from the
caches, concurrently, and never a name another owner holds."""

from __future__ import annotations

import asyncio
import logging

from rbg.controllers import decisions
from rbg.leaderworker import labels
from rbg.lifecycle.conventions import controller_uid
from rbg.runtime.client import Kube
from rbg.runtime.diff import contains, stamp, up_to_date
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.informer import Informer
from rbg.runtime.objects import Key, Obj

# (the controller's logger, as before this module was split out of it)
log = logging.getLogger("rbg.controllers.leaderworkerset.controller")


def free(key: Key, cache: Informer, owner: Obj) -> bool:
    """No object of that name, or one controlled by `owner` (never take a previous leader's)."""
    existing = cache.get(key)
    return existing is None or controller_uid(existing) == owner["metadata"]["uid"]


class Applier:
    def __init__(
        self, kube: Kube, recorder: EventRecorder, statefulsets: Informer, services: Informer
    ) -> None:
        self.kube = kube
        self.recorder = recorder
        self.statefulsets = statefulsets
        self.services = services
        # digests of bodies the API server stored without some of their fields (a field behind a feature
        # gate that is off): what it kept counts as up to date, so the body is not applied again and again
        self._lossy: set[str] = set()

    async def apply_all(self, owner: Obj, writes: list[Obj], ns: str) -> list[tuple[str, str]]:
        """Apply what differs from the caches, concurrently; (kind, name) of workloads created."""
        created: list[tuple[str, str]] = []
        todo: list[tuple[Obj, Obj | None]] = []
        for d in writes:
            body = stamp(d, labels.APPLIED_HASH)
            cache = self.statefulsets if d["kind"] == "StatefulSet" else self.services
            observed = cache.get(Key(ns, d["metadata"]["name"]))
            if not up_to_date(observed, body, labels.APPLIED_HASH) and not self._kept(observed, body):
                todo.append((body, observed))
        if not todo:
            return created

        async def one(body: Obj, observed: Obj | None) -> None:
            try:
                stored = await self.kube.apply(body, field_manager=labels.FIELD_MANAGER)
            except ApiError as exc:
                if exc.not_found or exc.conflict or exc.namespace_terminating:
                    return  # the owner (a leader pod) went away meanwhile: the next reconcile sees it
                if not exc.invalid:
                    raise
                self.recorder.event(
                    owner,
                    "Warning",
                    "FailedCreate",
                    f"{body['kind']} {body['metadata']['name']}: {exc.message}",
                )
                return
            decisions.record(f"LeaderWorkerSet/{owner['metadata']['name']}", observed, body, labels.REVISION)
            if not contains(stored, body):
                digest = body["metadata"]["annotations"][labels.APPLIED_HASH]
                if digest not in self._lossy:
                    self._lossy.add(digest)
                    log.warning(
                        "the API server dropped fields of %s %s (a feature gate off?); what it kept is final",
                        body["kind"],
                        body["metadata"]["name"],
                    )
            if observed is None and body["kind"] == "StatefulSet":
                # (a worker StatefulSet's pod template names its leader; the leader StatefulSet's does not)
                is_leader = labels.LEADER_NAME not in body["spec"]["template"]["metadata"].get(
                    "annotations", {}
                )
                created.append(("leader" if is_leader else "worker", body["metadata"]["name"]))

        async with asyncio.TaskGroup() as tg:
            for body, observed in todo:
                tg.create_task(one(body, observed))
        return created

    def _kept(self, observed: Obj | None, body: Obj) -> bool:
        """`observed` is what the API server kept of this very body, applied before (see `_lossy`)."""
        digest = body["metadata"]["annotations"][labels.APPLIED_HASH]
        have = ((observed or {}).get("metadata", {}).get("annotations") or {}).get(labels.APPLIED_HASH)
        return digest in self._lossy and have == digest
