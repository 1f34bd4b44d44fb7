"""The generic controller runtime against the real API server: informers, SSA, leader election,
events and the manager's probes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
import pytest_asyncio
import yaml
from lightkube import Client
from stall_proxy import StallingProxy

from rbg.devcluster.cluster import State
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder, micro_time
from rbg.runtime.informer import Informer
from rbg.runtime.leaderelection import LeaderElector
from rbg.runtime.manager import LeaderElectionLost, Manager
from rbg.runtime.objects import (
    CONFIGMAP,
    CUSTOMRESOURCEDEFINITION,
    EVENT,
    LEASE,
    MUTATINGWEBHOOKCONFIGURATION,
    Key,
    Kind,
    Obj,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

WIDGET = Kind("runtimetest.example.com", "v1", "Widget", "widgets")


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def akube(cluster: State) -> AsyncIterator[Kube]:
    async with Kube(cluster.kubeconfig) as kube:
        yield kube


async def eventually(probe: Callable[[], Any], within: float = 15, what: str = "condition") -> Any:
    """Poll `probe` (sync or async) until it returns a truthy value."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value {last!r}")


def configmap(name: str, ns: str, data: dict[str, str] | None = None, **meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, **meta},
        "data": data or {},
    }


async def stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# -- client -------------------------------------------------------------------------------------------


async def test_metadata_only_list_and_watch(akube: Kube, namespace: str) -> None:
    await akube.create(configmap("big", namespace, {"payload": "x" * 1000}, labels={"team": "a"}))
    items, _ = await akube.list(CONFIGMAP, namespace, metadata_only=True)
    assert {i["kind"] for i in items} == {"PartialObjectMetadata"}
    big = next(i for i in items if i["metadata"]["name"] == "big")
    assert "data" not in big
    assert big["metadata"]["labels"] == {"team": "a"}

    inf = Informer(akube, CONFIGMAP, namespace, label_selector="!unwanted", metadata_only=True)
    task = asyncio.create_task(inf.run())
    try:
        await eventually(lambda: inf.synced.is_set(), what="metadata informer synced")
        await akube.create(configmap("later", namespace, {"k": "v"}))
        await akube.create(configmap("skipped", namespace, labels={"unwanted": "1"}))
        later = await eventually(lambda: inf.get(Key(namespace, "later")), what="metadata watch event")
        assert later["kind"] == "PartialObjectMetadata"
        assert "data" not in later
        assert inf.get(Key(namespace, "skipped")) is None
    finally:
        await stop(task)


async def test_client_verbs_and_errors(akube: Kube, namespace: str) -> None:
    assert await akube.get(CONFIGMAP, "missing", namespace) is None
    created = await akube.create(configmap("a", namespace, {"k": "v"}))
    with pytest.raises(ApiError) as err:
        await akube.create(configmap("a", namespace))
    assert err.value.status == 409
    assert err.value.conflict
    patched = await akube.patch(CONFIGMAP, "a", namespace, {"data": {"k": "w"}})
    assert patched["data"] == {"k": "w"}
    for i in range(3):
        await akube.create(configmap(f"page-{i}", namespace, labels={"set": "pages"}))
    items, rv = await akube.list(CONFIGMAP, namespace, label_selector="set=pages")
    assert sorted(i["metadata"]["name"] for i in items) == ["page-0", "page-1", "page-2"]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in items)
    assert int(rv) >= int(created["metadata"]["resourceVersion"])
    with pytest.raises(ApiError) as err:
        await akube.delete(CONFIGMAP, "a", namespace, preconditions_uid="not-the-uid")
    assert err.value.status == 409
    assert await akube.delete(CONFIGMAP, "a", namespace, preconditions_uid=created["metadata"]["uid"])
    assert not await akube.delete(CONFIGMAP, "a", namespace)


async def test_server_side_apply_twice_writes_once(akube: Kube, namespace: str) -> None:
    desired = configmap("ssa", namespace, {"a": "1"}, labels={"x": "y"})
    first = await akube.apply(desired)
    second = await akube.apply(desired)
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    managers = {(m["manager"], m["operation"]) for m in second["metadata"]["managedFields"]}
    assert ("rbg", "Apply") in managers
    changed = await akube.apply(configmap("ssa", namespace, {"a": "2"}, labels={"x": "y"}))
    assert changed["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    # fields dropped from the applied config are removed (the manager owned them)
    pruned = await akube.apply(configmap("ssa", namespace, {"a": "2"}))
    assert "x" not in (pruned["metadata"].get("labels") or {})


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def widget_crd(akube: Kube) -> Kind:
    """A throwaway CRD with a status subresource (kept after the run: applying it again is a no-op)."""
    crd: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{WIDGET.plural}.{WIDGET.group}"},
        "spec": {
            "group": WIDGET.group,
            "names": {
                "kind": WIDGET.kind,
                "plural": WIDGET.plural,
                "singular": "widget",
                "listKind": "WidgetList",
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": WIDGET.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                            },
                        }
                    },
                }
            ],
        },
    }
    await akube.apply(crd, field_manager="rbg-runtime-test")

    async def established() -> bool:
        got = await akube.get(CUSTOMRESOURCEDEFINITION, crd["metadata"]["name"])
        conditions = ((got or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    await eventually(established, 30, "CRD established")
    return Kube.register(WIDGET)


async def test_apply_status_writes_only_status(akube: Kube, namespace: str, widget_crd: Kind) -> None:
    def widget(size: int, phase: str | None = None) -> Obj:
        obj: Obj = {
            "apiVersion": WIDGET.api_version,
            "kind": WIDGET.kind,
            "metadata": {"name": "w", "namespace": namespace},
            "spec": {"size": size},
        }
        if phase:
            obj["status"] = {"phase": phase}
        return obj

    created = await akube.apply(widget(1, phase="IgnoredOnMainResource"))
    assert "status" not in created
    updated = await akube.apply_status(widget(99, phase="Ready"))
    assert updated["status"] == {"phase": "Ready"}
    assert updated["spec"] == {"size": 1}  # spec in a /status apply is ignored
    assert updated["metadata"]["generation"] == created["metadata"]["generation"]


# -- informer -----------------------------------------------------------------------------------------


async def test_informer_sees_create_update_delete(akube: Kube, namespace: str) -> None:
    await akube.create(configmap("before", namespace, {"v": "0"}))
    inf = Informer(akube, CONFIGMAP, namespace)
    events: list[tuple[str, str, str | None]] = []
    inf.add_handler(
        lambda e, o, old: events.append((e, o["metadata"]["name"], (old or {}).get("data", {}).get("v")))
    )
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.synced.wait(), 10)
        assert inf.get(Key(namespace, "before")) is not None
        await akube.create(configmap("cm", namespace, {"v": "1"}))
        await eventually(lambda: inf.get(Key(namespace, "cm")), what="ADDED")
        await akube.patch(CONFIGMAP, "cm", namespace, {"data": {"v": "2"}})
        await eventually(
            lambda: (inf.get(Key(namespace, "cm")) or {}).get("data") == {"v": "2"}, what="MODIFIED"
        )
        await akube.delete(CONFIGMAP, "cm", namespace)
        await eventually(lambda: inf.get(Key(namespace, "cm")) is None, what="DELETED")
        cm_events = [e for e in events if e[1] == "cm"]
        assert cm_events == [("ADDED", "cm", None), ("MODIFIED", "cm", "1"), ("DELETED", "cm", "2")]
        assert "managedFields" not in inf.get(Key(namespace, "before"))["metadata"]  # type: ignore[index]
        assert inf.relists == 1
    finally:
        await stop(task)


async def compact_etcd_history(cluster: State, up_to: int = 50) -> None:
    """Compact etcd below revision `up_to`, as the API server itself does every 5 minutes.

    A fresh cluster may not have compacted yet; this makes "resourceVersion 1 is gone" certain. Only
    the first few dozen revisions (cluster bootstrap) are dropped, so nothing else is affected.
    """
    url = f"http://127.0.0.1:{cluster.ports['etcd']}/v3/kv/compaction"
    async with httpx2.AsyncClient() as client:
        response = await client.post(url, json={"revision": str(up_to), "physical": True})
    if response.status_code != 200:
        assert "compacted" in response.text, response.text  # already compacted further: fine


def event_obj(name: str, ns: str) -> Obj:
    return {
        "apiVersion": EVENT.api_version,
        "kind": EVENT.kind,
        "metadata": {"name": name, "namespace": ns},
        "eventTime": micro_time(),
        "reportingController": "rbg-runtime-test",
        "reportingInstance": "test",
        "action": "Test",
        "reason": "Test",
        "type": "Normal",
        "note": name,
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "subject", "namespace": ns},
    }


async def test_informer_relists_after_410_and_reports_deletions_it_missed(
    akube: Kube, namespace: str, cluster: State
) -> None:
    """What this proves: a watch from a compacted resourceVersion gets a real 410 from the API server,
    the informer answers with a re-list, and the re-list replays what it missed — including a DELETED
    for an object removed while it was not watching.

    How: the informer is stopped, the world changes, and the informer resumes from resourceVersion "1"
    (injected; a long-disconnected informer would hold some other compacted version). Events are used
    because the API server serves them without a watch cache, so the watch reaches etcd and sees the
    compaction; for cached kinds the watch cache keeps a window of history and answers 410 only for
    versions older than that window — the same code path, harder to reach on demand.
    """
    await compact_etcd_history(cluster)
    inf = Informer(akube, EVENT, namespace)
    seen: list[tuple[str, str]] = []
    inf.add_handler(lambda e, o, old: seen.append((e, o["metadata"]["name"])))
    await akube.create(event_obj("keep", namespace))
    await akube.create(event_obj("drop", namespace))
    task = asyncio.create_task(inf.run())
    await asyncio.wait_for(inf.synced.wait(), 10)
    await eventually(lambda: len(inf.store) == 2, what="both events cached")
    await stop(task)

    await akube.delete(EVENT, "drop", namespace)
    await akube.create(event_obj("new", namespace))
    seen.clear()
    inf.resource_version = "1"
    with pytest.raises(ApiError) as gone:  # the precondition, checked directly
        async for _ in akube.watch_stream(EVENT, namespace, "1", timeout_seconds=5):
            pass
    assert gone.value.status == 410

    task = asyncio.create_task(inf.run())
    try:
        await eventually(lambda: inf.relists == 2, what="a second list")
        assert sorted(k.name for k in inf.store) == ["keep", "new"]
        assert sorted(seen) == [("ADDED", "new"), ("DELETED", "drop")]
        # and it watches again afterwards
        await akube.create(event_obj("later", namespace))
        await eventually(lambda: inf.get(Key(namespace, "later")), what="watch resumed after relist")
    finally:
        await stop(task)


async def test_silent_watch_is_restarted_without_relisting(akube: Kube, namespace: str) -> None:
    inf = Informer(akube, CONFIGMAP, namespace, inactivity_timeout=1.0)
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.synced.wait(), 10)
        await eventually(lambda: inf.watch_restarts >= 2, within=10, what="inactivity restarts")
        await akube.create(configmap("after-restart", namespace))
        await eventually(lambda: inf.get(Key(namespace, "after-restart")), what="event after restart")
        assert inf.relists == 1  # resumed from the last resourceVersion each time
    finally:
        await stop(task)


def _read(path: str | Path) -> str:
    return Path(path).read_text()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


@pytest_asyncio.fixture(loop_scope="session")
async def stalling(cluster: State, tmp_path: Path) -> AsyncIterator[tuple[StallingProxy, Kube]]:
    """A client whose connections go through a proxy that can stall them (tests/cluster/stall_proxy.py)."""
    config = yaml.safe_load(_read(cluster.kubeconfig))
    proxy = StallingProxy(config["clusters"][0]["cluster"]["server"])
    config["clusters"][0]["cluster"]["server"] = await proxy.start()
    path = tmp_path / "kubeconfig"
    _write(path, yaml.safe_dump(config))
    try:
        async with Kube(path) as kube:
            yield proxy, kube
    finally:
        await proxy.close()


async def test_a_stalled_watch_is_detected_restarted_and_misses_nothing(
    akube: Kube, stalling: tuple[StallingProxy, Kube], namespace: str
) -> None:
    """A watch whose connection stops delivering, without closing, is restarted after the inactivity
    timeout from its last resourceVersion: the change made during the stall arrives."""
    proxy, kube = stalling
    inf = Informer(kube, CONFIGMAP, namespace, inactivity_timeout=3.0)
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.synced.wait(), 10)
        await akube.create(configmap("before-stall", namespace))
        await eventually(lambda: inf.get(Key(namespace, "before-stall")), what="the watch delivering")
        assert proxy.stall() >= 1
        restarts = inf.watch_restarts
        await akube.create(configmap("during-stall", namespace))
        await eventually(
            lambda: inf.get(Key(namespace, "during-stall")),
            within=20,
            what="the change made during the stall",
        )
        assert inf.watch_restarts > restarts
        assert inf.relists == 1  # resumed from its resourceVersion, not re-listed
    finally:
        await stop(task)


async def test_fresh_relists_past_a_stalled_watch(
    akube: Kube, stalling: tuple[StallingProxy, Kube], namespace: str
) -> None:
    """What a new leader does (D46): `fresh()` returns once the cache holds a listing begun after the
    call, even while its watch is stalled and far from its inactivity timeout."""
    proxy, kube = stalling
    inf = Informer(kube, CONFIGMAP, namespace, inactivity_timeout=300.0)
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.synced.wait(), 10)
        assert proxy.stall() >= 1
        await akube.create(configmap("during-stall", namespace))
        await asyncio.sleep(1)
        assert inf.get(Key(namespace, "during-stall")) is None  # the stalled watch did not deliver it
        await asyncio.wait_for(inf.fresh(), 15)
        assert inf.get(Key(namespace, "during-stall")) is not None
        assert inf.relists == 2
        await akube.create(configmap("after-fresh", namespace))
        await eventually(lambda: inf.get(Key(namespace, "after-fresh")), what="the watch after the re-list")
    finally:
        await stop(task)


async def test_informer_survives_api_errors_with_backoff(akube: Kube) -> None:
    missing = Kind("missing.example.com", "v1", "Missing", "missings")  # the API answers 404
    inf = Informer(akube, missing, max_backoff=0.2)
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.sleep(1.5)
        assert not task.done()  # still retrying
        assert not inf.synced.is_set()
        assert inf.relists == 0
    finally:
        await stop(task)


# -- leader election ----------------------------------------------------------------------------------


class Candidate:
    def __init__(self, akube: Kube, namespace: str, identity: str) -> None:
        self.elector = LeaderElector(akube, namespace, "runtime-test", identity, 3, 2, 0.5)
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.task = asyncio.create_task(self.elector.run(self._lead, self._stopped))

    async def _lead(self) -> None:
        self.started.set()
        await asyncio.Event().wait()

    async def _stopped(self) -> None:
        self.stopped.set()


async def test_leader_election_one_leader_and_fast_handover(akube: Kube, namespace: str) -> None:
    a = Candidate(akube, namespace, "a")
    await asyncio.wait_for(a.started.wait(), 10)
    b = Candidate(akube, namespace, "b")
    try:
        await asyncio.sleep(2.5)  # five retry periods
        assert a.elector.is_leader
        assert not b.elector.is_leader
        assert not b.started.is_set()
        lease = await akube.get(LEASE, "runtime-test", namespace)
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "a"

        handover_start = time.monotonic()
        await stop(a.task)  # graceful: releases the lease
        assert a.stopped.is_set()
        assert not a.elector.is_leader
        await asyncio.wait_for(b.started.wait(), 10)
        assert time.monotonic() - handover_start < 3  # faster than the 3 s lease could expire
        lease = await akube.get(LEASE, "runtime-test", namespace)
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        await stop(a.task)
        await stop(b.task)


async def test_leader_gives_up_when_the_lease_is_taken(akube: Kube, namespace: str) -> None:
    a = Candidate(akube, namespace, "a")
    await asyncio.wait_for(a.started.wait(), 10)
    lease = await akube.get(LEASE, "runtime-test", namespace)
    assert lease is not None
    lease["spec"].update(holderIdentity="intruder", leaseDurationSeconds=60, renewTime=micro_time())
    await akube.replace(lease)
    await asyncio.wait_for(a.task, 10)  # run() returns: the process would exit
    assert a.stopped.is_set()
    assert not a.elector.is_leader
    lease = await akube.get(LEASE, "runtime-test", namespace)
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "intruder"


async def test_a_leader_paused_past_its_lease_sends_no_write_when_it_wakes(
    akube: Kube, kube: Client, namespace: str
) -> None:
    """The event loop blocked (as a stopped process is) for longer than the Lease while another replica
    takes the Lease over: the write the leader makes on waking is not sent (D47), and the leader steps
    down. Without the fence the ConfigMap would be created by a replica that no longer leads."""
    attempts: list[str] = []

    def take_over() -> None:
        from lightkube.resources.coordination_v1 import Lease

        time.sleep(3.2)  # the 3 s Lease has expired: another replica takes it
        lease = kube.get(Lease, "runtime-test-fence", namespace=namespace)
        assert lease.spec is not None
        lease.spec.holderIdentity = "the-other-replica"
        lease.spec.leaseDurationSeconds = 60
        lease.spec.renewTime = micro_time()  # type: ignore[assignment]
        kube.replace(lease)

    async def reconcile(key: Key) -> None:
        if key.name == "write-now":
            await mgr.controller_kube.create(configmap("written-while-leading", namespace))
        if key.name != "pause-then-write":
            return
        if not attempts:
            # a connection left idle in the pool: on waking, the write goes out before anything else
            # runs (no new connection to wait for), as a woken process's first writes do
            await mgr.controller_kube.get(CONFIGMAP, key.name, namespace)
            other = threading.Thread(target=take_over)
            other.start()
            time.sleep(4)  # noqa: ASYNC251 - the pause under test: nothing else runs meanwhile
            other.join()
        try:
            await mgr.controller_kube.create(configmap("written-after-the-pause", namespace))
            attempts.append("written")
        except BaseException as exc:
            attempts.append(repr(exc))
            raise

    mgr = Manager(
        akube,
        name="runtime-test-fence",
        leader_election=True,
        lease_namespace=namespace,
        health_port=0,
        metrics_port=None,
        bind_address="127.0.0.1",
        lease_duration=3,
        renew_deadline=2,
        retry_period=0.5,
    )
    mgr.add(Controller("runtime-test-fence", reconcile).for_informer(mgr.informer(CONFIGMAP, namespace)))
    task = asyncio.create_task(mgr.run())
    try:
        await asyncio.wait_for(mgr.leading.wait(), 15)
        await akube.create(configmap("write-now", namespace))
        await eventually(lambda: akube.get(CONFIGMAP, "written-while-leading", namespace), what="a write")
        await akube.create(configmap("pause-then-write", namespace))
        with pytest.raises(LeaderElectionLost):
            await asyncio.wait_for(task, 15)
        assert attempts, "the write after the pause was never attempted"
        assert await akube.get(CONFIGMAP, "written-after-the-pause", namespace) is None, attempts
        assert "Fenced" in attempts[0], attempts
    finally:
        await stop(task)


# -- events -------------------------------------------------------------------------------------------


async def test_repeated_events_are_aggregated_into_a_series(akube: Kube, namespace: str) -> None:
    cm = await akube.create(configmap("subject", namespace))
    recorder = EventRecorder(akube, "rbg-runtime-test", "test-instance")
    task = asyncio.create_task(recorder.run())
    try:
        recorder.event(cm, "Warning", "Failed", "could not do it")
        recorder.event(cm, "Warning", "Failed", "could not do it")
        recorder.event(cm, "Normal", "Done", "did it")
        await asyncio.wait_for(recorder.flush(), 10)
    finally:
        await stop(task)
    items, _ = await akube.list(EVENT, namespace)
    mine = {e["reason"]: e for e in items if e["regarding"].get("uid") == cm["metadata"]["uid"]}
    assert set(mine) == {"Failed", "Done"}
    failed = mine["Failed"]
    assert failed["series"]["count"] == 2
    assert failed["type"] == "Warning"
    assert failed["note"] == "could not do it"
    assert failed["reportingController"] == "rbg-runtime-test"
    assert failed["action"] == "Reconcile"
    assert failed["regarding"]["kind"] == "ConfigMap"
    assert failed["regarding"]["name"] == "subject"
    assert "series" not in mine["Done"]


# -- manager ------------------------------------------------------------------------------------------


async def test_manager_probes_metrics_controllers_and_lease(akube: Kube, namespace: str) -> None:
    reconciled: list[Key] = []

    async def reconcile(key: Key) -> None:
        reconciled.append(key)

    mgr = Manager(
        akube,
        name="runtime-test-manager",
        leader_election=True,
        lease_namespace=namespace,
        health_port=0,
        metrics_port=0,
        bind_address="127.0.0.1",
        retry_period=0.5,
    )
    assert mgr._readiness_problems()  # not ready before it runs
    cms = mgr.informer(CONFIGMAP, namespace)
    assert mgr.informer(CONFIGMAP, namespace) is cms  # shared
    mgr.add(Controller("runtime-test-configmaps", reconcile, workers=2).for_informer(cms))
    task = asyncio.create_task(mgr.run())
    try:
        await asyncio.wait_for(mgr.leading.wait(), 15)
        base = f"http://127.0.0.1:{mgr.server.health_port}"
        async with httpx2.AsyncClient(base_url=base) as http:
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/healthz")).status_code == 200
            await akube.create(configmap("reconcile-me", namespace))
            await eventually(lambda: Key(namespace, "reconcile-me") in reconciled, what="reconcile")

            metrics = (await http.get("/metrics")).text
            assert (
                'controller_runtime_reconcile_total{controller="runtime-test-configmaps",result="success"}'
                in metrics
            )
            assert (
                'workqueue_depth{controller="runtime-test-configmaps",name="runtime-test-configmaps"}'
                in metrics
            )
            assert 'leader_election_master_status{name="runtime-test-manager"} 1.0' in metrics
            assert "rest_client_requests_total{" in metrics

            # nothing happens in the namespace: with a tiny threshold the watch counts as stale …
            mgr.health_stale_after = 0.5
            await asyncio.sleep(1.0)
            stale = await http.get("/healthz")
            assert stale.status_code == 503
            assert "no watch activity" in stale.text
            # … and an event makes it fresh again
            await akube.create(configmap("wake-up", namespace))
            await eventually(lambda: cms.get(Key(namespace, "wake-up")), what="event")
            assert (await http.get("/healthz")).status_code == 200

        lease = await akube.get(LEASE, "runtime-test-manager", namespace)
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == mgr.identity
        await mgr.stop()
        await asyncio.wait_for(task, 10)
        lease = await akube.get(LEASE, "runtime-test-manager", namespace)
        assert lease is not None
        assert lease["spec"].get("holderIdentity", "") == ""
    finally:
        await stop(task)


async def test_an_optional_informer_does_not_stall_the_manager_until_its_crd_is_installed(
    akube: Kube, namespace: str
) -> None:
    sprocket = Kind("optionaltest.example.com", "v1", "Sprocket", "sprockets")
    crd_name = f"{sprocket.plural}.{sprocket.group}"
    await akube.delete(CUSTOMRESOURCEDEFINITION, crd_name)  # a previous run's, if any
    await eventually(lambda: _gone(akube, crd_name), 30, "old CRD gone")
    mgr = Manager(akube, name="optional-test", health_port=0, metrics_port=None, bind_address="127.0.0.1")
    cms = mgr.informer(CONFIGMAP, namespace)
    sprockets = mgr.informer(sprocket, namespace, optional=True)
    sprockets.absent_recheck = 0.5
    task = asyncio.create_task(mgr.run())
    try:
        await asyncio.wait_for(mgr.leading.wait(), 15)  # controllers started although sprockets are absent
        assert sprockets.absent
        assert cms.synced.is_set()
        base = f"http://127.0.0.1:{mgr.server.health_port}"
        async with httpx2.AsyncClient(base_url=base) as http:
            assert (await http.get("/readyz")).status_code == 200

        crd: Obj = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": crd_name},
            "spec": {
                "group": sprocket.group,
                "names": {"kind": sprocket.kind, "plural": sprocket.plural, "singular": "sprocket"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": sprocket.version,
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
        await akube.apply(crd, field_manager="rbg-runtime-test")
        Kube.register(sprocket)

        async def created() -> bool:
            try:
                await akube.create(
                    {
                        "apiVersion": sprocket.api_version,
                        "kind": sprocket.kind,
                        "metadata": {"name": "s1", "namespace": namespace},
                    }
                )
            except ApiError:
                return False  # not served yet
            return True

        await eventually(created, 30, "sprocket created")
        await eventually(lambda: sprockets.get(Key(namespace, "s1")), 30, "sprocket in the optional informer")
        assert not sprockets.absent
        await mgr.stop()
        await asyncio.wait_for(task, 10)
    finally:
        await stop(task)
        await akube.delete(CUSTOMRESOURCEDEFINITION, crd_name)


async def _gone(akube: Kube, crd_name: str) -> bool:
    return await akube.get(CUSTOMRESOURCEDEFINITION, crd_name) is None


async def test_a_mutating_webhook_sees_only_its_objects_and_blocks_nobody_else_when_down(
    akube: Kube, namespace: str, tmp_path: Path
) -> None:
    from rbg.devcluster.processes import free_port
    from rbg.runtime import certs
    from rbg.runtime.webhook import AdmissionServer, Rule, Verdict, webhook_configuration

    seen: list[str] = []

    async def label(req: dict[str, Any]) -> Verdict:
        seen.append(req["object"]["metadata"]["name"])
        return Verdict(patch=[{"op": "add", "path": "/metadata/annotations", "value": {"mutated": "yes"}}])

    port = free_port()
    cert = certs.generate("runtime-test-webhook", ["localhost"], ["127.0.0.1"])
    server = AdmissionServer("127.0.0.1", port, cert, tmp_path)
    server.add("/mutate-configmaps", label)
    rule = Rule(
        "/mutate-configmaps",
        "mconfigmaps.runtimetest.example.com",
        "",
        "v1",
        "configmaps",
        ("CREATE",),
        object_selector={"matchLabels": {"runtimetest.example.com/managed": "true"}},
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
    )
    config = webhook_configuration(
        "Mutating", f"runtime-test-{namespace}", [rule], cert.ca_pem, url_base=f"https://127.0.0.1:{port}"
    )
    managed = {"runtimetest.example.com/managed": "true"}
    await server.start()
    try:
        await akube.apply(config, field_manager="rbg-runtime-test")

        async def mutated() -> bool:
            try:
                await akube.create(configmap(f"ours-{len(seen)}", namespace, labels=managed))
            except ApiError:
                return False
            return bool(seen)

        await eventually(mutated, 30, "the webhook configuration in effect")
        ours = await akube.get(CONFIGMAP, seen[-1], namespace) or {}
        assert ours["metadata"]["annotations"] == {"mutated": "yes"}
        theirs = await akube.create(configmap("theirs", namespace))
        assert "annotations" not in theirs["metadata"]
        assert "theirs" not in seen

        await server.stop()  # the operator is down: its own objects wait, nobody else's do
        await akube.create(configmap("theirs-while-down", namespace))
        with pytest.raises(ApiError) as refused:
            await akube.create(configmap("ours-while-down", namespace, labels=managed))
        assert "mconfigmaps.runtimetest.example.com" in refused.value.message
    finally:
        await server.stop()
        await akube.delete(MUTATINGWEBHOOKCONFIGURATION, config["metadata"]["name"])
