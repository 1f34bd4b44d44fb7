"""Manager: owns the shared informers, controllers, event recorders, probes and leader election.

Start order matters: caches first (controllers must never reconcile from an empty cache and delete
"missing" children), then — only on the elected leader — the controllers. Informers and the probe
server run on every replica, so standbys have warm caches and answer probes. A replica that becomes
leader re-lists every cache first (D46): a standby's watch may be late (seen for 50 s after an API
server restart), and a leader acting on it would write back what its predecessor had just changed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from rbg.runtime.controller import Controller
from rbg.runtime.events import EventRecorder
from rbg.runtime.fence import FencedKube
from rbg.runtime.health import HealthServer
from rbg.runtime.informer import Informer
from rbg.runtime.leaderelection import LeaderElector
from rbg.runtime.objects import Kind, Obj, trim
from rbg.runtime.webhook import AdmissionServer, Request, Rule, Validator, Verdict, webhook_configuration

if TYPE_CHECKING:
    from rbg.runtime.client import Kube

log = structlog.stdlib.get_logger(__name__)


def _webhook_timeout() -> float:
    """The API server's timeout for a call to our webhooks: the timeoutSeconds of the configurations
    rbg.runtime.webhook builds (read from what it builds, so there is one value to change)."""
    probe = Rule("/", "probe.rbg", "", "v1", "pods")
    (hook,) = webhook_configuration("Validating", "probe", [probe], b"", url_base="https://x")["webhooks"]
    return float(hook["timeoutSeconds"])


#: How long an admission request that arrives before the caches are synced waits for them before it is
#: denied ("the operator is starting"): half the API server's timeout, so that denial reaches the client
#: instead of the API server's own timeout, with the other half left for the handler, TLS and the network.
CACHE_WAIT = _webhook_timeout() / 2
#: lists at a time when a new leader re-lists its caches (D46), and how long it waits for them
FRESH_CONCURRENCY = 4
FRESH_TIMEOUT = 30.0
#: the Lease's own connections (its renewals must not wait behind the controllers' requests)
ELECTOR_CONNECTIONS = 2


class LeaderElectionLost(Exception):
    """The lease was lost while leading; the process should exit and restart as a candidate."""


class Manager:
    def __init__(
        self,
        kube: Kube,
        *,
        name: str,
        leader_election: bool = False,
        lease_namespace: str = "default",
        health_port: int = 8082,
        metrics_port: int | None = 8080,
        health_stale_after: float = 120.0,
        bind_address: str = "0.0.0.0",  # noqa: S104 - probes must be reachable by the kubelet
        identity: str | None = None,
        lease_duration: float = 15,
        renew_deadline: float = 10,
        retry_period: float = 2,
    ) -> None:
        """`metrics_port == health_port` serves /metrics on the probe port; None serves no metrics.
        Times in seconds. The defaults are for direct users (tests); the operator passes every value from
        its settings (rbg/controllers/settings.py)."""
        self.kube = kube
        self.name = name
        self.health_stale_after = health_stale_after
        self.identity = identity or f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4()}"
        self.elector = (
            LeaderElector(
                kube.with_own_pool(ELECTOR_CONNECTIONS),
                lease_namespace,
                name,
                self.identity,
                lease_duration,
                renew_deadline,
                retry_period,
            )
            if leader_election
            else None
        )
        #: the client controllers write with: fenced by the Lease when leader election is on (D47)
        self.controller_kube: Kube = FencedKube(kube, self.elector) if self.elector is not None else kube
        self.server = HealthServer(
            healthy=self._health_problems,
            ready=self._readiness_problems,
            bind=bind_address,
            health_port=health_port,
            metrics_port=metrics_port,
        )
        self._informers: dict[tuple[Kind, str | None, str | None, bool], Informer] = {}
        self._controllers: list[Controller] = []
        self._recorders: dict[str, EventRecorder] = {}
        self._stop = asyncio.Event()
        self._started = False
        self._running = False
        self._late_tasks: list[asyncio.Task[None]] = []
        self._webhooks: AdmissionServer | None = None
        self._run_called = asyncio.Event()
        self.leading = asyncio.Event()

    # -- wiring ---------------------------------------------------------------------------------------

    def informer(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        metadata_only: bool = False,
        optional: bool = False,
        transform: Callable[[Obj], Obj] | None = None,
    ) -> Informer:
        """The shared informer for (kind, namespace, selector, metadata only); create informers before
        `run()`. A metadata-only informer caches PartialObjectMetadata: names, labels, owners. An
        optional one is for a kind whose CRD may be installed later (see `Informer`)."""
        key = (kind, namespace, label_selector, metadata_only)
        if key not in self._informers:
            if self._started:
                raise RuntimeError("informers must be created before Manager.run()")
            self._informers[key] = Informer(
                self.kube,
                kind,
                namespace,
                label_selector,
                transform if transform is not None else trim,
                metadata_only=metadata_only,
                optional=optional,
            )
        elif transform is not None and self._informers[key].transform is not transform:
            raise RuntimeError(f"the informer {self._informers[key]!r} is shared: it cannot take a transform")
        return self._informers[key]

    def add(self, controller: Controller) -> Controller:
        self._controllers.append(controller)
        return controller

    def recorder(self, controller_name: str) -> EventRecorder:
        """The event recorder for one controller (reportingController); usable before or during run()."""
        if controller_name not in self._recorders:
            recorder = self._recorders[controller_name] = EventRecorder(
                self.controller_kube, controller_name, self.identity
            )
            if self._running:
                self._late_tasks.append(asyncio.create_task(recorder.run(), name=f"events {controller_name}"))
        return self._recorders[controller_name]

    def serve_webhooks(self, server: AdmissionServer) -> None:
        """Admission handlers registered with `webhook()` are served by `server`; the manager stops it."""
        self._webhooks = server

    def webhook(self, path: str, handler: Validator, *, cache_wait: float = CACHE_WAIT) -> None:
        """Serve `handler` at `path`. A request that arrives before the caches are synced waits for them
        (at most `cache_wait` seconds, then it is denied with a reason), so handlers read synced caches."""
        if self._webhooks is None:
            raise RuntimeError("serve_webhooks() first")

        async def gated(request: Request) -> Verdict:
            if not self.caches_synced():
                try:
                    await asyncio.wait_for(self.wait_for_caches(), cache_wait)
                except TimeoutError:
                    return Verdict([f"the operator is starting (caches not synced after {cache_wait:.0f}s)"])
            return await handler(request)

        self._webhooks.add(path, gated)

    async def start_webhooks(self) -> None:
        """Start serving admission (before run(): the API server may call as soon as it is registered)."""
        if self._webhooks is not None:
            await self._webhooks.start()

    def caches_synced(self) -> bool:
        return self._started and all(inf.synced.is_set() for inf in self._informers.values())

    async def wait_for_caches(self) -> None:
        await self._run_called.wait()  # informers are created before run(); run() starts them
        await asyncio.gather(*(inf.synced.wait() for inf in self._informers.values()))

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    # -- probes ---------------------------------------------------------------------------------------

    def _health_problems(self) -> list[str]:
        now = time.monotonic()
        return [
            f"{inf!r}: no watch activity for {now - inf.last_activity:.0f}s"
            for inf in self._informers.values()
            if now - inf.last_activity > self.health_stale_after
        ]

    def _readiness_problems(self) -> list[str]:
        problems = [f"{inf!r}: not synced" for inf in self._informers.values() if not inf.synced.is_set()]
        return problems if self._started else ["manager not started", *problems]

    # -- running --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until `stop()` (or cancellation); raises LeaderElectionLost if the lease was lost."""
        self._started = True
        self._run_called.set()
        await self.server.start()
        log.info(
            "manager started",
            health_port=self.server.health_port,
            metrics_port=self.server.metrics_port,
            identity=self.identity,
        )
        tasks = [asyncio.create_task(inf.run(), name=repr(inf)) for inf in self._informers.values()]
        tasks += [asyncio.create_task(rec.run(), name=f"events {n}") for n, rec in self._recorders.items()]
        self._running = True
        main = asyncio.create_task(self._run_controllers(), name="controllers")
        stop = asyncio.create_task(self._stop.wait(), name="stop")
        try:
            await asyncio.wait([main, stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # controllers first (the elector then releases the lease), then the caches and the server
            for task in (stop, main):
                task.cancel()
            await asyncio.gather(stop, main, return_exceptions=True)
            self._running = False
            tasks += self._late_tasks
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.server.stop()
            if self._webhooks is not None:
                await self._webhooks.stop()
            if self.elector is not None:
                await self.elector.kube.close()  # its own pool
            log.info("manager stopped")
        for task in (main, *tasks):
            error = task.exception() if task.done() and not task.cancelled() else None
            if error is not None:
                raise error
        if main.done() and not main.cancelled() and not self._stop.is_set():
            raise LeaderElectionLost(self.name)

    async def stop(self) -> None:
        self._stop.set()

    async def _run_controllers(self) -> None:
        await asyncio.gather(*(inf.synced.wait() for inf in self._informers.values()))
        log.info("caches synced", informers=len(self._informers))
        if self.elector is None:
            await self._controllers_forever()
            return
        await self.elector.run(self._lead, self._on_stopped_leading)

    async def _lead(self) -> None:
        """Caches listed anew since the Lease was taken (FRESH_CONCURRENCY lists at a time, so that a
        failover does not burst every list at a just-restarted API server), then the controllers. After
        FRESH_TIMEOUT they start anyway, on the caches as they are, with a warning: a leader that never
        acts is worse than one that acts on a late cache, which the next events correct."""
        started = time.monotonic()
        gate = asyncio.Semaphore(FRESH_CONCURRENCY)
        late = set(self._informers.values())

        async def fresh(informer: Informer) -> None:
            async with gate:
                await informer.fresh()
            late.discard(informer)

        try:
            async with asyncio.timeout(FRESH_TIMEOUT):
                await asyncio.gather(*(fresh(inf) for inf in self._informers.values()))
            log.info("caches re-listed for leading", seconds=round(time.monotonic() - started, 3))
        except TimeoutError:
            log.warning(
                "caches not re-listed in time; leading on them as they are",
                late=sorted(repr(inf) for inf in late),
            )
        await self._controllers_forever()

    async def _controllers_forever(self) -> None:
        self.leading.set()
        try:
            async with asyncio.TaskGroup() as group:
                for controller in self._controllers:
                    group.create_task(controller.run(), name=f"controller {controller.name}")
                if not self._controllers:
                    group.create_task(asyncio.Event().wait())
        finally:
            self.leading.clear()

    async def _on_stopped_leading(self) -> None:
        log.info("stopped leading")
