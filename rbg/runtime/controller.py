"""Controller: event sources → work queue of keys → N workers calling a level-triggered reconciler.

Sources only enqueue keys; the reconciler reads the current state from informer caches. Because the
queue de-duplicates and serialises per key, a burst of child events becomes one reconcile of the parent,
and failures back off per key (see workqueue.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import structlog
from prometheus_client import Counter, Gauge, Histogram

from rbg.runtime.errors import ApiError
from rbg.runtime.objects import Key, Kind, Obj, key_of, owner_keys
from rbg.runtime.workqueue import QueueShutDown, RateLimiter, WorkQueue

log = structlog.stdlib.get_logger(__name__)

# fmt: off
RECONCILE_BUCKETS = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
]  # controller-runtime's reconcile_time_seconds buckets
# fmt: on
RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller",
    ["controller", "result"],
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller",
    ["controller"],
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller",
    ["controller"],
    buckets=RECONCILE_BUCKETS,
)
ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers", "Number of currently used workers per controller", ["controller"]
)
MAX_CONCURRENT = Gauge(
    "controller_runtime_max_concurrent_reconciles",
    "Maximum number of concurrent reconciles per controller",
    ["controller"],
)


@dataclass
class Result:
    """What a reconcile asks for besides success: `requeue_after` seconds, or `requeue` with backoff."""

    requeue_after: float | None = None
    requeue: bool = False


Reconciler = Callable[[Key], Awaitable[Result | None]]

Predicate = Callable[[str, Obj, Obj | None], bool]
"""Filter on (event, object, old object): False drops the event before it is mapped to keys."""


class Source(Protocol):
    """What a controller needs from an informer."""

    def add_handler(self, handler: Callable[[str, Obj, Obj | None], None]) -> None: ...


def generation_changed(event: str, obj: Obj, old: Obj | None) -> bool:
    """Drop updates that did not change metadata.generation (status-only writes of the primary)."""
    if event != "MODIFIED" or old is None:
        return True
    generation = obj.get("metadata", {}).get("generation")
    return generation is None or generation != old.get("metadata", {}).get("generation")


_VOLATILE_META = frozenset({"resourceVersion", "managedFields"})


def not_status_only(event: str, obj: Obj, old: Obj | None) -> bool:
    """Drop updates that changed nothing but status (and the bookkeeping metadata every write bumps).

    Unlike `generation_changed`, label, annotation, owner and deletion changes still pass.
    """
    if event != "MODIFIED" or old is None:
        return True

    def rest(o: Obj) -> tuple[Obj, Obj]:
        meta = {k: v for k, v in (o.get("metadata") or {}).items() if k not in _VOLATILE_META}
        return meta, {k: v for k, v in o.items() if k not in ("metadata", "status")}

    return rest(obj) != rest(old)


class Controller:
    def __init__(
        self, name: str, reconcile: Reconciler, workers: int = 4, rate_limiter: RateLimiter | None = None
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.queue: WorkQueue[Key] = WorkQueue(name, rate_limiter)
        self._log = log.bind(controller=name)

    # -- sources --------------------------------------------------------------------------------------

    def for_informer(self, informer: Source, predicate: Predicate | None = None) -> Controller:
        """Reconcile the objects of this informer themselves."""
        return self.watches(informer, lambda obj: (key_of(obj),), predicate)

    def owns(self, informer: Source, owner_kind: Kind, predicate: Predicate | None = None) -> Controller:
        """Reconcile the controlling owner (of `owner_kind`) of each object of this informer."""
        return self.watches(informer, lambda obj: owner_keys(obj, owner_kind), predicate)

    def watches(
        self, informer: Source, mapper: Callable[[Obj], Iterable[Key]], predicate: Predicate | None = None
    ) -> Controller:
        """Reconcile whatever `mapper` returns; on updates both the old and the new object are mapped, so
        a child that changed owner (or label) reaches the previous parent too."""

        def handler(event: str, obj: Obj, old: Obj | None) -> None:
            if predicate is not None and not predicate(event, obj, old):
                return
            keys = set(mapper(obj))
            if old is not None and event == "MODIFIED":
                keys.update(mapper(old))
            for key in keys:
                self.queue.add(key)

        informer.add_handler(handler)
        return self

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    # -- running --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the workers until cancelled; on cancellation the queue is shut down."""
        MAX_CONCURRENT.labels(self.name).set(self.workers)
        self._log.info("starting workers", workers=self.workers)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.workers):
                    group.create_task(self._worker())
        finally:
            self.queue.shutdown()
            self._log.info("workers stopped")

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: Key) -> None:
        """One reconcile of `key` with its bookkeeping: metrics, logs, requeue decisions."""
        active = ACTIVE_WORKERS.labels(self.name)
        active.inc()
        start = time.monotonic()
        with structlog.contextvars.bound_contextvars(
            controller=self.name, namespace=key.namespace, name=key.name, reconcileID=str(uuid.uuid4())
        ):
            try:
                result = await self.reconcile(key)
            except Exception as exc:
                RECONCILE_ERRORS.labels(self.name).inc()
                RECONCILE_TOTAL.labels(self.name, "error").inc()
                if isinstance(exc, ApiError) and exc.fenced:  # the Lease may be another's (D47)
                    log.warning("write not sent: not leading for sure", error=exc.message)
                else:
                    log.exception("Reconciler error", retries=self.queue.num_requeues(key))
                self.queue.add_rate_limited(key)
                return
            finally:
                RECONCILE_TIME.labels(self.name).observe(time.monotonic() - start)
                active.dec()
        if result is not None and result.requeue_after is not None and result.requeue_after > 0:
            RECONCILE_TOTAL.labels(self.name, "requeue_after").inc()
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
        elif result is not None and result.requeue:
            RECONCILE_TOTAL.labels(self.name, "requeue").inc()
            self.queue.add_rate_limited(key)
        else:
            RECONCILE_TOTAL.labels(self.name, "success").inc()
            self.queue.forget(key)
