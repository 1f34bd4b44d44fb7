"""The LeaderWorkerSet's status writer: a write only when the status changed, progress throttled (D19),
events for conditions that turn True, and a guard against the cache not having seen our last write yet."""

from __future__ import annotations

import time

from rbg.api.lws_v1 import API_VERSION, LeaderWorkerSet
from rbg.leaderworker import labels
from rbg.leaderworker import status as lws_status
from rbg.lifecycle import conventions
from rbg.runtime.client import Kube
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.objects import Key, Obj, rv_older, timestamp


def invalid_status(lws: LeaderWorkerSet, obj: Obj, errors: list[str]) -> Obj:
    """The status of a set admitted with errors: Progressing False, InvalidSpec."""
    prev = obj.get("status") or {}
    return {
        **prev,
        "observedGeneration": lws.metadata.generation,
        "conditions": [
            {
                **conventions.condition(
                    "Progressing",
                    False,
                    "InvalidSpec",
                    "; ".join(errors),
                    prev.get("conditions"),
                    timestamp(),
                    same_reason=True,
                ),
                "observedGeneration": lws.metadata.generation,
            }
        ],
    }


class StatusWriter:
    def __init__(self, kube: Kube, recorder: EventRecorder, status_progress_interval: float) -> None:
        self.kube = kube
        self.recorder = recorder
        self.status_progress_interval = status_progress_interval
        self._written: dict[Key, tuple[str | None, Obj, float]] = {}  # (resourceVersion, status, when)

    def forget(self, key: Key) -> None:
        self._written.pop(key, None)

    def now(self, key: Key, obj: Obj) -> Obj | None:
        """The status as it is now: our last write when the cache has not caught up with it yet."""
        last = self._written.get(key)
        if last is not None and rv_older(obj["metadata"].get("resourceVersion"), last[0]):
            return last[1]
        status: Obj | None = obj.get("status")
        return status

    async def write(self, key: Key, obj: Obj, status: Obj) -> float:
        """Write the status if it changed. A change of counts and messages only (no condition flips) is
        written at most every `status_progress_interval` seconds (D19): the seconds left are returned."""
        before = self.now(key, obj)
        if lws_status.same(before, status):
            return 0.0
        last = self._written.get(key)
        if last is not None and lws_status.progress_only(before, status):
            since = time.monotonic() - last[2]
            if since < self.status_progress_interval:
                return self.status_progress_interval - since
        body = {
            "apiVersion": API_VERSION,
            "kind": "LeaderWorkerSet",
            "metadata": {"name": key.name, "namespace": key.namespace},
            "status": status,
        }
        try:
            written = await self.kube.apply_status(body, field_manager=labels.FIELD_MANAGER)
        except ApiError as exc:
            if exc.not_found:
                return 0.0
            raise
        self._written[key] = (written.get("metadata", {}).get("resourceVersion"), status, time.monotonic())
        old = {c["type"]: c for c in (before or {}).get("conditions") or []}
        for c in status.get("conditions") or []:
            was = old.get(c["type"]) or {}
            if c["status"] == "True" and was.get("status") != "True":
                self.recorder.event(obj, "Normal", c["reason"], c["message"])
            elif c.get("reason") == "InvalidSpec" and (was.get("reason"), was.get("message")) != (
                "InvalidSpec",
                c["message"],
            ):
                # news: a set that ran before and is now invalid, or invalid for another reason
                self.recorder.event(obj, "Warning", "InvalidSpec", c["message"])
        return 0.0
