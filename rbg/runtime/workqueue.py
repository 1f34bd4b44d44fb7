"""Rate-limited work queue with client-go semantics, on asyncio.

Why these semantics (client-go `util/workqueue`): an item is queued at most once however many events
arrive for it (dirty set), and it is never handed to two workers at once — an item re-added while being
processed is parked and queued once more when `done()` is called. Reconcilers can therefore assume one
reconcile per key at a time and that bursts of events collapse into one reconcile.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram

T = TypeVar("T", bound=Hashable)

_LABELS = ["name", "controller"]
_WORK_BUCKETS = [10.0**e for e in range(-8, 4)]  # client-go: exponential from 1e-8, x10, 12 buckets

DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", _LABELS)
ADDS = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", _LABELS)
QUEUE_DURATION = Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested",
    _LABELS,
    buckets=_WORK_BUCKETS,
)
WORK_DURATION = Histogram(
    "workqueue_work_duration_seconds",
    "How long in seconds processing an item from workqueue takes.",
    _LABELS,
    buckets=_WORK_BUCKETS,
)
RETRIES = Counter("workqueue_retries_total", "Total number of retries handled by workqueue", _LABELS)
UNFINISHED = Gauge(
    "workqueue_unfinished_work_seconds",
    "How many seconds of work has been done that is in progress and hasn't been observed by "
    "work_duration. Large values indicate stuck threads.",
    _LABELS,
)
LONGEST = Gauge(
    "workqueue_longest_running_processor_seconds",
    "How many seconds has the longest running processor for workqueue been running.",
    _LABELS,
)


class RateLimiter:
    """client-go's DefaultControllerRateLimiter: the max of two limiters.

    Per item: exponential backoff `base_delay * 2**failures` capped at `max_delay` (5 ms … 1000 s), so
    one failing key backs off alone. Overall: a token bucket (10 qps, burst 100) so that many failing
    keys together cannot hammer the API server.
    """

    def __init__(
        self,
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        qps: float = 10.0,
        burst: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._failures: dict[Hashable, int] = {}
        self._tokens = float(burst)
        self._last = clock()

    def when(self, item: Hashable) -> float:
        """Seconds to wait before retrying `item`; counts one more failure for it."""
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        backoff = self.max_delay if failures > 1023 else min(self.max_delay, self.base_delay * 2.0**failures)
        return max(backoff, self._reserve())

    def _reserve(self) -> float:
        """Take one token (the balance may go negative, like golang.org/x/time/rate's Reserve)."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def retries(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class QueueShutDown(Exception):
    """Raised by `WorkQueue.get()` once the queue is shut down."""


class WorkQueue(Generic[T]):
    def __init__(self, name: str, rate_limiter: RateLimiter | None = None) -> None:
        self.name = name
        self.rate_limiter = rate_limiter or RateLimiter()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._waiting: dict[T, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._added_at: dict[T, float] = {}
        self._started_at: dict[T, float] = {}
        labels = {"name": name, "controller": name}
        self._depth = DEPTH.labels(**labels)
        self._adds = ADDS.labels(**labels)
        self._queue_duration = QUEUE_DURATION.labels(**labels)
        self._work_duration = WORK_DURATION.labels(**labels)
        self._retries = RETRIES.labels(**labels)
        UNFINISHED.labels(**labels).set_function(self._unfinished_seconds)
        LONGEST.labels(**labels).set_function(self._longest_running_seconds)

    def __len__(self) -> int:
        return len(self._queue)

    def len(self) -> int:
        """Items waiting to be handed out (not those being processed or delayed)."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, item: T) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._adds.inc()
        self._depth.inc()
        self._added_at.setdefault(item, time.monotonic())
        self._dirty.add(item)
        if item in self._processing:
            return  # queued again by done()
        self._queue.append(item)
        self._wake_one()

    def add_after(self, item: T, delay: float) -> None:
        """Add `item` after `delay` seconds; of several pending delays for one item the earliest wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        pending = self._waiting.get(item)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        self._waiting[item] = (ready_at, loop.call_at(ready_at, self._ready, item))

    def _ready(self, item: T) -> None:
        self._waiting.pop(item, None)
        self.add(item)

    def add_rate_limited(self, item: T) -> None:
        self._retries.inc()
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Stop tracking retries of `item` (it succeeded); does not remove it from the queue."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.retries(item)

    async def get(self) -> T:
        """The next item; the caller must call `done(item)` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled() and self._queue:
                    self._wake_one()  # we were woken for an item: pass the wake-up on
                raise
        item = self._queue.popleft()
        now = time.monotonic()
        self._depth.dec()
        self._queue_duration.observe(now - self._added_at.pop(item, now))
        self._started_at[item] = now
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: T) -> None:
        self._processing.discard(item)
        started = self._started_at.pop(item, None)
        if started is not None:
            self._work_duration.observe(time.monotonic() - started)
        if item in self._dirty:
            self._queue.append(item)
            self._wake_one()

    def shutdown(self) -> None:
        """Refuse new items; waiting and future `get()` calls raise QueueShutDown once the queue is empty."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def _unfinished_seconds(self) -> float:
        now = time.monotonic()
        return sum(now - t for t in self._started_at.values())

    def _longest_running_seconds(self) -> float:
        now = time.monotonic()
        return max((now - t for t in self._started_at.values()), default=0.0)
