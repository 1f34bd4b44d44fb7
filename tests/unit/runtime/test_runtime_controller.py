"""Controller reconcile handling and informer store bookkeeping, with fake event sources.

The fakes here stand in for our own Informer (an object with add_handler); nothing imitates the
Kubernetes API — the real list/watch path is covered in tests/cluster/test_runtime.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, cast

from prometheus_client import REGISTRY

from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, generation_changed, not_status_only
from rbg.runtime.informer import Informer
from rbg.runtime.objects import CONFIGMAP, Key, Kind, Obj
from rbg.runtime.workqueue import RateLimiter

WIDGET = Kind("example.com", "v1", "Widget", "widgets")


class FakeSource:
    def __init__(self) -> None:
        self.handlers: list[Callable[[str, Obj, Obj | None], None]] = []

    def add_handler(self, handler: Callable[[str, Obj, Obj | None], None]) -> None:
        self.handlers.append(handler)

    def emit(self, event: str, obj: Obj, old: Obj | None = None) -> None:
        for handler in self.handlers:
            handler(event, obj, old)


def obj(name: str, ns: str = "ns", owner: str | None = None, generation: int = 1, **meta: Any) -> Obj:
    metadata: Obj = {"name": name, "namespace": ns, "uid": f"uid-{name}", "generation": generation, **meta}
    if owner:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "name": owner,
                "uid": f"uid-{owner}",
                "controller": True,
            }
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


def total(controller: str, result: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "controller_runtime_reconcile_total", {"controller": controller, "result": result}
        )
        or 0
    )


async def run_until(controller: Controller, condition: Callable[[], bool], within: float = 2) -> None:
    task = asyncio.create_task(controller.run())
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 - polling a test condition
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_for_owns_and_watches_enqueue_the_right_keys() -> None:
    seen: list[Key] = []

    async def reconcile(key: Key) -> None:
        seen.append(key)

    primary, children, other = FakeSource(), FakeSource(), FakeSource()
    c = Controller("ctl-sources", reconcile, workers=2)
    c.for_informer(primary).owns(children, WIDGET).watches(
        other, lambda o: [Key("ns", o["metadata"]["name"].upper())]
    )
    primary.emit("ADDED", obj("w1"))
    children.emit("ADDED", obj("child", owner="w2"))
    children.emit("ADDED", obj("orphan"))
    # a child moved from w3 to w4: both parents hear about it
    children.emit("MODIFIED", obj("moved", owner="w4"), obj("moved", owner="w3"))
    other.emit("DELETED", obj("x"))
    await run_until(c, lambda: len(seen) == 5)
    assert sorted(seen) == [
        Key("ns", "X"),
        Key("ns", "w1"),
        Key("ns", "w2"),
        Key("ns", "w3"),
        Key("ns", "w4"),
    ]


async def test_success_forgets_error_backs_off_and_requeue_after_requeues() -> None:
    calls: dict[str, int] = {"ok": 0, "flaky": 0, "periodic": 0}

    async def reconcile(key: Key) -> Result | None:
        calls[key.name] += 1
        if key.name == "flaky" and calls["flaky"] < 3:
            raise RuntimeError("transient")
        if key.name == "periodic" and calls["periodic"] < 3:
            return Result(requeue_after=0.02)
        return None

    c = Controller("ctl-results", reconcile, rate_limiter=RateLimiter(base_delay=0.01))
    for name in calls:
        c.enqueue(Key("ns", name))
    await run_until(c, lambda: calls == {"ok": 1, "flaky": 3, "periodic": 3})
    await asyncio.sleep(0.1)
    assert calls == {"ok": 1, "flaky": 3, "periodic": 3}  # nothing further is queued
    assert c.queue.num_requeues(Key("ns", "flaky")) == 0  # forgotten after the success
    assert total("ctl-results", "error") == 2
    assert total("ctl-results", "requeue_after") == 2
    assert total("ctl-results", "success") == 3
    assert (
        REGISTRY.get_sample_value("controller_runtime_reconcile_errors_total", {"controller": "ctl-results"})
        == 2
    )
    count = REGISTRY.get_sample_value(
        "controller_runtime_reconcile_time_seconds_count", {"controller": "ctl-results"}
    )
    assert count == 7
    assert (
        REGISTRY.get_sample_value(
            "controller_runtime_max_concurrent_reconciles", {"controller": "ctl-results"}
        )
        == 4
    )
    assert REGISTRY.get_sample_value("controller_runtime_active_workers", {"controller": "ctl-results"}) == 0


async def test_errors_back_off_exponentially() -> None:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def reconcile(key: Key) -> None:
        times.append(loop.time())
        raise ValueError("always")

    c = Controller("ctl-backoff", reconcile, rate_limiter=RateLimiter(base_delay=0.02))
    c.enqueue(Key("ns", "a"))
    await run_until(c, lambda: len(times) == 4)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.015
    assert gaps[1] >= 0.035
    assert gaps[2] >= 0.075
    assert c.queue.num_requeues(Key("ns", "a")) == 4


async def test_requeue_flag_uses_the_rate_limiter() -> None:
    calls = 0

    async def reconcile(key: Key) -> Result:
        nonlocal calls
        calls += 1
        return Result(requeue=calls < 3)

    c = Controller("ctl-requeue", reconcile, rate_limiter=RateLimiter(base_delay=0.01))
    c.enqueue(Key("ns", "a"))
    await run_until(c, lambda: calls == 3)
    assert total("ctl-requeue", "requeue") == 2


async def test_a_key_is_reconciled_by_one_worker_at_a_time_and_bursts_collapse() -> None:
    source = FakeSource()
    active: set[Key] = set()
    overlaps = 0
    calls = 0

    async def reconcile(key: Key) -> None:
        nonlocal overlaps, calls
        calls += 1
        overlaps += key in active
        active.add(key)
        await asyncio.sleep(0.02)
        active.discard(key)

    c = Controller("ctl-serial", reconcile, workers=8).for_informer(source)
    task = asyncio.create_task(c.run())
    for i in range(50):
        source.emit("MODIFIED", obj("hot", resourceVersion=str(i)))
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert overlaps == 0
    assert 2 <= calls < 20


async def test_generation_changed_predicate_ignores_status_only_updates() -> None:
    seen: list[Key] = []

    async def reconcile(key: Key) -> None:
        seen.append(key)

    source = FakeSource()
    c = Controller("ctl-pred", reconcile).for_informer(source, predicate=generation_changed)
    source.emit("MODIFIED", obj("same", generation=2), obj("same", generation=2))
    source.emit("MODIFIED", obj("bumped", generation=3), obj("bumped", generation=2))
    source.emit("DELETED", obj("gone"))
    await run_until(c, lambda: len(seen) == 2)
    assert sorted(k.name for k in seen) == ["bumped", "gone"]


# -- informer store (no API calls: only the event-application paths) -------------------------------------


def informer() -> tuple[Informer, list[tuple[str, str, str | None]]]:
    inf = Informer(cast(Kube, None), CONFIGMAP)
    events: list[tuple[str, str, str | None]] = []
    inf.add_handler(
        lambda e, o, old: events.append((e, o["metadata"]["name"], old["metadata"]["name"] if old else None))
    )
    return inf, events


def test_relist_replays_differences_including_deletions() -> None:
    inf, events = informer()
    inf.replace([obj("a", resourceVersion="1"), obj("b", resourceVersion="1")], "10")
    assert events == [("ADDED", "a", None), ("ADDED", "b", None)]
    events.clear()
    # while not watching: b deleted, a modified, c created; the relist must surface all three
    inf.replace([obj("a", resourceVersion="2"), obj("c", resourceVersion="3")], "20")
    assert sorted(events) == [("ADDED", "c", None), ("DELETED", "b", "b"), ("MODIFIED", "a", "a")]
    assert sorted(k.name for k in inf.store) == ["a", "c"]
    assert inf.resource_version == "20"
    events.clear()
    inf.replace([obj("a", resourceVersion="2"), obj("c", resourceVersion="3")], "30")
    assert events == []  # unchanged objects are not replayed


def test_watch_events_update_store_index_and_handlers() -> None:
    inf, events = informer()
    inf.apply_event("ADDED", obj("c1", owner="w1", labels={"app": "x"}))
    inf.apply_event("ADDED", obj("c2", owner="w1", ns="other"))
    assert {o["metadata"]["name"] for o in inf.by_owner("uid-w1")} == {"c1", "c2"}
    assert [o["metadata"]["name"] for o in inf.list(namespace="ns")] == ["c1"]
    assert [o["metadata"]["name"] for o in inf.list(selector={"app": "x"})] == ["c1"]
    # an ADDED for a known object (a resumed watch) is reported as MODIFIED
    inf.apply_event("ADDED", obj("c1", owner="w2"))
    assert [o["metadata"]["name"] for o in inf.by_owner("uid-w1")] == ["c2"]
    assert [o["metadata"]["name"] for o in inf.by_owner("uid-w2")] == ["c1"]
    inf.apply_event("DELETED", obj("c2", owner="w1", ns="other"))
    assert inf.by_owner("uid-w1") == []
    assert inf.get(Key("other", "c2")) is None
    assert inf.get(Key("ns", "c1")) is not None
    assert events == [
        ("ADDED", "c1", None),
        ("ADDED", "c2", None),
        ("MODIFIED", "c1", "c1"),
        ("DELETED", "c2", "c2"),
    ]


def test_a_failing_handler_does_not_stop_the_others() -> None:
    inf, events = informer()

    def broken(event: str, o: Obj, old: Obj | None) -> None:
        raise RuntimeError("bug in a handler")

    inf._handlers.insert(0, broken)
    inf.apply_event("ADDED", obj("a"))
    assert events == [("ADDED", "a", None)]


async def test_not_status_only_predicate_passes_metadata_changes_but_not_status_writes() -> None:
    seen: list[Key] = []

    async def reconcile(key: Key) -> None:
        seen.append(key)

    def with_(name: str, rv: str, status: dict[str, object], labels: dict[str, str] | None = None) -> Obj:
        o = obj(name, generation=1)
        o["metadata"].update(resourceVersion=rv, managedFields=[{"manager": rv}], labels=labels or {})
        o["status"] = status
        return o

    source = FakeSource()
    c = Controller("ctl-status", reconcile).for_informer(source, predicate=not_status_only)
    source.emit("MODIFIED", with_("status", "2", {"ready": True}), with_("status", "1", {}))
    source.emit("MODIFIED", with_("label", "2", {}, {"a": "b"}), with_("label", "1", {}))
    source.emit("ADDED", with_("new", "1", {}))
    await run_until(c, lambda: len(seen) == 2)
    assert sorted(k.name for k in seen) == ["label", "new"]


class _LateCrdKube:
    """A kind that is not served for the first `absent_lists` lists (404), then has one object."""

    def __init__(self, absent_lists: int) -> None:
        self.lists = 0
        self.absent_lists = absent_lists

    async def list(self, kind: Kind, *args: Any) -> tuple[list[Obj], str]:
        from rbg.runtime.errors import ApiError

        self.lists += 1
        if self.lists <= self.absent_lists:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return [{"metadata": {"name": "w1", "namespace": "ns", "resourceVersion": "5"}}], "5"

    async def watch_stream(self, *args: Any) -> Any:
        await asyncio.Event().wait()  # a quiet watch
        yield  # pragma: no cover


async def test_optional_informer_is_synced_while_its_kind_is_absent_and_fills_once_it_appears() -> None:
    kube = _LateCrdKube(absent_lists=3)
    gadgets = Kind("example.com", "v1", "Gadget", "gadgets")
    inf = Informer(cast(Kube, kube), gadgets, optional=True, absent_recheck=0.01)
    events: list[tuple[str, str]] = []
    inf.add_handler(lambda e, o, old: events.append((e, o["metadata"]["name"])))
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.synced.wait(), 1)
        assert inf.absent
        assert inf.store == {}
        for _ in range(200):
            if inf.get(Key("ns", "w1")) is not None:
                break
            await asyncio.sleep(0.01)
        assert not inf.absent
        assert events == [("ADDED", "w1")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_required_informer_stays_unsynced_while_its_kind_is_absent() -> None:
    kube = _LateCrdKube(absent_lists=1000)
    inf = Informer(cast(Kube, kube), Kind("example.com", "v1", "Gadget", "gadgets"), max_backoff=0.01)
    task = asyncio.create_task(inf.run())
    await asyncio.sleep(0.2)
    assert not inf.synced.is_set()
    assert kube.lists >= 2  # it keeps trying
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_a_label_index_follows_relabels_moves_and_deletions() -> None:
    inf, _ = informer()
    inf.index_label("group")
    a = obj("a", resourceVersion="1")
    a["metadata"]["labels"] = {"group": "g1"}
    inf.apply_event("ADDED", a)
    b = obj("b", resourceVersion="1")
    b["metadata"]["labels"] = {"group": "g1"}
    inf.apply_event("ADDED", b)
    assert sorted(o["metadata"]["name"] for o in inf.by_label("group", "ns", "g1")) == ["a", "b"]
    moved = obj("a", resourceVersion="2")
    moved["metadata"]["labels"] = {"group": "g2"}
    inf.apply_event("MODIFIED", moved)
    assert [o["metadata"]["name"] for o in inf.by_label("group", "ns", "g1")] == ["b"]
    assert [o["metadata"]["name"] for o in inf.by_label("group", "ns", "g2")] == ["a"]
    inf.apply_event("DELETED", b)
    assert inf.by_label("group", "ns", "g1") == []
    assert inf.by_label("group", "other-namespace", "g2") == []
