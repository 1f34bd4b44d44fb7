"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm and timings.

Only one replica may run controllers (two would fight over the same objects), yet standby replicas
should take over within seconds. Writes use optimistic concurrency (PUT with resourceVersion), so two
candidates can never both believe they acquired the lease. Expiry is judged by when *we* last saw the
record change, not by the holder's timestamps, so clock skew between nodes does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from prometheus_client import Gauge

from rbg.runtime.errors import ApiError
from rbg.runtime.events import micro_time
from rbg.runtime.objects import LEASE, Obj

if TYPE_CHECKING:
    from rbg.runtime.client import Kube

log = structlog.stdlib.get_logger(__name__)

MASTER_STATUS = Gauge(
    "leader_election_master_status",
    "Gauge of if the reporting system is master of the relevant lease, "
    "0 indicates backup, 1 indicates master.",
    ["name"],
)


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
    ) -> None:
        """Timings in seconds, as client-go's: `lease_duration` (a standby waits this long from the last
        renewal it saw), `renew_deadline` (the leader gives up after failing to renew this long),
        `retry_period` (between attempts); the Manager passes them."""
        # the Lease records whole seconds: the fence (D47) relies on what a standby reads there
        if not max(1, round(lease_duration)) > renew_deadline > 1.2 * retry_period:
            raise ValueError("need lease_duration (whole seconds) > renew_deadline > 1.2 * retry_period")
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._leader = False
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._observed_duration = 0.0  # the leaseDurationSeconds of the record last seen
        # when the last successful acquire/renew was sent, by the monotonic and the wall clock
        self._renewed_at = float("-inf")
        self._renewed_at_wall = float("-inf")
        self._doubt = asyncio.Event()  # a write was refused: renew (or give up) now, not a retry later
        self._log = log.bind(lease=f"{namespace}/{name}", identity=identity)
        MASTER_STATUS.labels(name).set(0)

    @property
    def is_leader(self) -> bool:
        return self._leader

    def write_window(self) -> float:
        """Seconds this replica may still send writes as the leader: until `renew_deadline` after it sent
        its last successful renewal (a standby takes the Lease `lease_duration` after it saw that
        renewal), by the monotonic clock (which counts the time the process was stopped) and by the wall
        clock (which a resumed VM's may count instead), whichever says less; <= 0 when not leading
        (D47). Asked as each write of the controllers is sent (rbg.runtime.fence)."""
        if not self._leader:
            return 0.0
        left = min(
            self._renewed_at + self.renew_deadline - time.monotonic(),
            self._renewed_at_wall + self.renew_deadline - time.time(),
        )
        if left <= 0:
            self._doubt.set()
        return left

    def write_refusal(self) -> str | None:
        """Why this replica may not write now (None: it may)."""
        if not self._leader:
            return "this replica does not hold the Lease"
        if self.write_window() <= 0:
            age = max(time.monotonic() - self._renewed_at, time.time() - self._renewed_at_wall)
            return (
                f"the Lease was last renewed {age:.1f}s ago (more than the {self.renew_deadline:g}s renew "
                "deadline): another replica may lead now"
            )
        return None

    async def run(
        self, on_started: Callable[[], Awaitable[None]], on_stopped: Callable[[], Awaitable[None]]
    ) -> None:
        """Campaign, then run `on_started()` as a task for as long as the lease is held.

        Returns after losing the lease (on_started cancelled, on_stopped awaited) — the caller should
        then exit, as controller-runtime does. When cancelled (graceful stop) the lease is released
        so a standby takes over at once instead of waiting for it to expire.
        """
        while True:
            if await self._try_acquire_or_renew():
                break
            await asyncio.sleep(self._until_next_attempt())
        self._set_leader(True)
        self._log.info("became leader")

        async def lead() -> None:
            await on_started()

        task = asyncio.create_task(lead())
        try:
            await self._renew_until_lost(task)
        finally:
            was_leader = self._leader
            self._set_leader(False)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if was_leader:
                await asyncio.shield(self._release())
            await on_stopped()
        error = task.exception() if not task.cancelled() else None
        if error is not None:
            raise error

    async def _renew_until_lost(self, task: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + self.renew_deadline
        while not task.done():
            with contextlib.suppress(TimeoutError):  # a refused write (D47) asks for a renewal now
                await asyncio.wait_for(self._doubt.wait(), self.retry_period)
            self._doubt.clear()
            # a renewal that hangs past the deadline must count as lost (as client-go bounds it): a
            # standby takes the Lease after lease_duration, and two leaders must never overlap
            renewed = False
            attempt = time.monotonic()  # the renewal is as old as its request, not its answer
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    renewed = await self._try_acquire_or_renew()
            if renewed:
                deadline = attempt + self.renew_deadline
            elif time.monotonic() > deadline or self._observed_holder not in ("", self.identity):
                self._set_leader(False)
                self._log.error("leader election lost")
                return

    def _until_next_attempt(self) -> float:
        """A candidate tries again after `retry_period`, or as the Lease it saw expires if that is sooner
        (a takeover then waits the lease duration, not up to one more retry period after it)."""
        expires_in = self._observed_at + self._observed_duration - time.monotonic()
        if 0 < expires_in < self.retry_period:
            return expires_in + 0.05
        return self.retry_period

    @property
    def _observed_holder(self) -> str:
        return self._observed[0] if self._observed else ""

    def _set_leader(self, leader: bool) -> None:
        self._leader = leader
        MASTER_STATUS.labels(self.name).set(1 if leader else 0)

    async def _try_acquire_or_renew(self) -> bool:
        sent, sent_wall = time.monotonic(), time.time()  # a renewal is as old as its request
        now = micro_time()
        try:
            lease = await self.kube.get(LEASE, self.name, self.namespace)
            if lease is None:
                await self.kube.create(self._lease(self._spec(now, now, 0)))
                self._observe(self.identity, now)
                self._renewed_at, self._renewed_at_wall = sent, sent_wall
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            self._observe(holder, spec.get("renewTime") or "")
            self._observed_duration = float(spec.get("leaseDurationSeconds") or 0)
            expired = time.monotonic() > self._observed_at + self._observed_duration
            if holder and holder != self.identity and not expired:
                return False
            transitions = spec.get("leaseTransitions") or 0
            if holder == self.identity:
                acquired = spec.get("acquireTime") or now
            else:
                acquired, transitions = now, transitions + 1
            updated = self._lease(self._spec(acquired, now, transitions))
            updated["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
            await self.kube.replace(updated)
            self._observe(self.identity, now)
            self._renewed_at, self._renewed_at_wall = sent, sent_wall
            return True
        except ApiError as exc:
            if not exc.conflict:
                self._log.warning("lease update failed", error=str(exc))
            return False

    def _observe(self, holder: str, renew_time: str) -> None:
        if self._observed != (holder, renew_time):
            self._observed = (holder, renew_time)
            self._observed_at = time.monotonic()

    async def _release(self) -> None:
        """Hand the lease back: empty holder and a 1 s duration, so anyone may take it now."""
        try:
            lease = await self.kube.get(LEASE, self.name, self.namespace)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            now = micro_time()
            spec = lease["spec"]
            released = self._lease(
                {
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": spec.get("leaseTransitions") or 0,
                }
            )
            released["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
            await self.kube.replace(released)
            self._log.info("released lease")
        except ApiError as exc:
            self._log.warning("could not release lease", error=str(exc))

    def _spec(self, acquired: str, renewed: str, transitions: int) -> Obj:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "acquireTime": acquired,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        }

    def _lease(self, spec: Obj) -> Obj:
        return {
            "apiVersion": LEASE.api_version,
            "kind": LEASE.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }
