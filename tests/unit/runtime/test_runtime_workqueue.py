"""Work queue and rate limiter: the client-go semantics controllers rely on."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from rbg.runtime.workqueue import QueueShutDown, RateLimiter, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_item_backoff_doubles_from_5ms_up_to_1000s() -> None:
    limiter = RateLimiter(clock=FakeClock())
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[17] == pytest.approx(0.005 * 2**17)  # 655.36 s
    assert delays[18] == delays[19] == 1000.0
    assert limiter.retries("a") == 20
    # an unrelated item has its own count (the bucket still has tokens)
    assert limiter.when("b") == 0.005
    limiter.forget("a")
    assert limiter.retries("a") == 0
    assert limiter.when("a") == 0.005


def test_very_many_failures_do_not_overflow() -> None:
    limiter = RateLimiter(clock=FakeClock(), qps=1e9, burst=10**9)
    for _ in range(1100):
        delay = limiter.when("a")
    assert delay == 1000.0


def test_token_bucket_limits_many_items_to_10_qps_after_a_burst_of_100() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    first = [limiter.when(i) for i in range(100)]
    assert first == [0.005] * 100  # the burst: only the per-item backoff applies
    assert limiter.when(100) == pytest.approx(0.1)
    assert limiter.when(101) == pytest.approx(0.2)
    clock.now += 60  # refills (the bucket was 2 tokens in debt), capped at the burst size
    assert [limiter.when(1000 + i) for i in range(100)] == [0.005] * 100
    assert limiter.when(2000) == pytest.approx(0.1)


def _sample(metric: str, name: str) -> float:
    return REGISTRY.get_sample_value(metric, {"name": name, "controller": name}) or 0.0


async def test_add_deduplicates_until_the_item_is_handed_out() -> None:
    q: WorkQueue[str] = WorkQueue("wq-dedup")
    for _ in range(3):
        q.add("a")
    q.add("b")
    assert q.len() == 2
    assert _sample("workqueue_adds_total", "wq-dedup") == 2
    assert _sample("workqueue_depth", "wq-dedup") == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert _sample("workqueue_depth", "wq-dedup") == 0
    q.add("a")  # being processed: not handed out again …
    q.add("a")
    assert q.len() == 0
    q.done("a")  # … until done, then exactly once
    assert q.len() == 1
    assert await q.get() == "a"
    q.done("a")
    q.done("b")
    assert q.len() == 0


async def test_an_item_is_never_processed_by_two_workers_at_once() -> None:
    q: WorkQueue[str] = WorkQueue("wq-serial")
    running: set[str] = set()
    overlaps: list[str] = []
    processed: list[str] = []

    async def worker() -> None:
        while True:
            try:
                item = await q.get()
            except QueueShutDown:
                return
            if item in running:
                overlaps.append(item)
            running.add(item)
            await asyncio.sleep(0.01)
            running.discard(item)
            processed.append(item)
            q.done(item)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for _ in range(20):
        q.add("hot")
        q.add("cold")
        await asyncio.sleep(0.003)
    await asyncio.sleep(0.05)
    q.shutdown()
    await asyncio.gather(*workers)
    assert overlaps == []
    assert processed.count("hot") >= 2  # re-added while processing → processed again
    assert processed.count("hot") < 20  # … but bursts collapsed


async def test_get_waits_for_an_add_and_shutdown_releases_waiters() -> None:
    q: WorkQueue[str] = WorkQueue("wq-wait")
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(waiting, 1)
    q.add("ignored")
    assert q.len() == 0


async def test_shutdown_still_hands_out_queued_items() -> None:
    q: WorkQueue[str] = WorkQueue("wq-drain")
    q.add("a")
    q.shutdown()
    assert await q.get() == "a"
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_a_cancelled_getter_does_not_swallow_a_wakeup() -> None:
    q: WorkQueue[str] = WorkQueue("wq-cancel")
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    q.add("a")  # wakes `first` …
    first.cancel()  # … which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "a"


async def test_add_after_delays_and_the_earliest_pending_delay_wins() -> None:
    q: WorkQueue[str] = WorkQueue("wq-after")
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 0.2)
    q.add_after("a", 0.05)  # earlier: replaces
    q.add_after("a", 0.5)  # later: ignored
    assert q.len() == 0
    assert await asyncio.wait_for(q.get(), 1) == "a"
    assert 0.04 <= loop.time() - start < 0.2
    q.done("a")
    await asyncio.sleep(0.6)
    assert q.len() == 0  # the replaced and ignored delays never fire
    q.add_after("b", 0)
    assert q.len() == 1


async def test_add_rate_limited_backs_off_per_item_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue("wq-rl", RateLimiter(base_delay=0.02))
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(3):
        start = loop.time()
        q.add_rate_limited("a")
        item = await asyncio.wait_for(q.get(), 1)
        delays.append(loop.time() - start)
        q.done(item)
    assert q.num_requeues("a") == 3
    assert delays[0] >= 0.015
    assert delays[1] >= 0.035
    assert delays[2] >= 0.075
    assert _sample("workqueue_retries_total", "wq-rl") == 3
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_processing_metrics() -> None:
    q: WorkQueue[str] = WorkQueue("wq-metrics")
    q.add("a")
    await q.get()
    await asyncio.sleep(0.02)
    labels = {"name": "wq-metrics", "controller": "wq-metrics"}
    assert (REGISTRY.get_sample_value("workqueue_longest_running_processor_seconds", labels) or 0) >= 0.02
    assert (REGISTRY.get_sample_value("workqueue_unfinished_work_seconds", labels) or 0) >= 0.02
    q.done("a")
    assert REGISTRY.get_sample_value("workqueue_work_duration_seconds_count", labels) == 1
    assert REGISTRY.get_sample_value("workqueue_queue_duration_seconds_count", labels) == 1
    assert REGISTRY.get_sample_value("workqueue_longest_running_processor_seconds", labels) == 0
