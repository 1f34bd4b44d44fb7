"""EventRecorder: events.k8s.io/v1 Events, aggregated and rate limited, posted in the background.

Reconcilers run often; without aggregation a recurring condition writes a new Event per reconcile and
floods etcd (a known kopf complaint). Like client-go's event correlator, a repeat of the same
(object uid, reason, note) within 6 minutes bumps `series.count` / `series.lastObservedTime` on the
existing Event, and a per-object token bucket (burst 25, then one per 5 minutes) drops the rest.
Posting never blocks or fails a reconcile: events go through a bounded queue and errors are logged.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import structlog

from rbg.runtime.errors import ApiError
from rbg.runtime.objects import EVENT, Obj

if TYPE_CHECKING:
    from rbg.runtime.client import Kube

log = structlog.stdlib.get_logger(__name__)

AGGREGATION_WINDOW = 360.0  # seconds: client-go's events API finishTime (6 minutes)
CACHE_SIZE = 4096
SPAM_BURST = 25
SPAM_QPS = 1 / 300
MAX_NOTE = 1024


def micro_time(ts: float | None = None) -> str:
    """A metav1.MicroTime string."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    last_seen: float


@dataclass
class _Bucket:
    tokens: float
    last: float


class EventRecorder:
    def __init__(
        self, kube: Kube, controller_name: str, instance: str, *, queue_size: int = 1000, posters: int = 4
    ) -> None:
        """`posters` events are posted at once; those about one object always by the same poster, in
        order, so that aggregation into a series stays exact."""
        self.kube = kube
        self.controller_name = controller_name
        self.instance = instance
        self._queues: list[asyncio.Queue[tuple[Obj, str, str, str, str, float]]] = [
            asyncio.Queue(max(1, queue_size // posters)) for _ in range(posters)
        ]
        self._series: OrderedDict[tuple[str, str, str], _Series] = OrderedDict()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.dropped = 0

    def event(
        self,
        regarding: Obj,
        type: Literal["Normal", "Warning"],  # the Event field's name
        reason: str,
        note: str,
        action: str = "Reconcile",
    ) -> None:
        """Record an event about `regarding` (a full object with metadata.uid); returns immediately."""
        uid = regarding["metadata"].get("uid", "")
        queue = self._queues[hash(uid) % len(self._queues)]
        try:
            queue.put_nowait((regarding, type, reason, note[:MAX_NOTE], action, time.time()))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event queue full, dropping event", reason=reason)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for queue in self._queues:
                group.create_task(self._poster(queue))

    async def _poster(self, queue: asyncio.Queue[tuple[Obj, str, str, str, str, float]]) -> None:
        while True:
            item = await queue.get()
            try:
                await self._post(*item)
            except ApiError as exc:
                log.warning("could not post event", reason=item[2], error=str(exc))
            except Exception:
                log.exception("could not post event", reason=item[2])
            finally:
                queue.task_done()

    async def flush(self) -> None:
        """Wait until every recorded event has been posted (or failed); needs `run()` running."""
        for queue in self._queues:
            await queue.join()

    async def _post(self, regarding: Obj, type_: str, reason: str, note: str, action: str, ts: float) -> None:
        meta = regarding["metadata"]
        uid = meta.get("uid", "")
        now = time.monotonic()
        key = (uid, reason, note)
        series = self._series.get(key)
        if series is not None and now - series.last_seen <= AGGREGATION_WINDOW:
            series.count += 1
            series.last_seen = now
            self._series.move_to_end(key)
            patch = {"series": {"count": series.count, "lastObservedTime": micro_time(ts)}}
            try:
                await self.kube.patch(EVENT, series.name, series.namespace, patch)
                return
            except ApiError as exc:
                if not exc.not_found:
                    raise
                # the Event expired (TTL) or was deleted: start over with a new one
        if not self._allow(uid, now):
            self.dropped += 1
            log.debug("event rate-limited", reason=reason, object=meta.get("name"))
            return
        namespace = meta.get("namespace") or "default"
        event: Obj = {
            "apiVersion": EVENT.api_version,
            "kind": EVENT.kind,
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": namespace},
            "eventTime": micro_time(ts),
            "reportingController": self.controller_name,
            "reportingInstance": self.instance,
            "action": action,
            "reason": reason,
            "note": note,
            "type": type_,
            "regarding": {
                "apiVersion": regarding.get("apiVersion", ""),
                "kind": regarding.get("kind", ""),
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "uid": uid,
                "resourceVersion": meta.get("resourceVersion", ""),
            },
        }
        created = await self.kube.create(event)
        self._series[key] = _Series(created["metadata"]["name"], namespace, 1, now)
        self._series.move_to_end(key)
        while len(self._series) > CACHE_SIZE:
            self._series.popitem(last=False)

    def _allow(self, uid: str, now: float) -> bool:
        """Per-object token bucket for new Events (aggregated repeats are not limited: they are cheap)."""
        bucket = self._buckets.get(uid)
        if bucket is None:
            bucket = self._buckets[uid] = _Bucket(float(SPAM_BURST), now)
            if len(self._buckets) > CACHE_SIZE:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(uid)
        bucket.tokens = min(float(SPAM_BURST), bucket.tokens + (now - bucket.last) * SPAM_QPS)
        bucket.last = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True
