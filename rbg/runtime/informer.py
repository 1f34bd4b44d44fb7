"""Informer: a local, always-current copy of one kind (list + watch), with change callbacks.

No Python Kubernetes library ships one (see docs/runtime.md). The semantics follow client-go's
reflector: a paginated LIST, then WATCH from its resourceVersion with bookmarks so that the resume point
stays fresh; on 410 Gone a re-list whose differences are replayed as synthetic events (objects deleted
while we were not watching produce DELETED); a client-side inactivity timeout because `timeoutSeconds`
is only enforced by the server and a half-dead connection can otherwise block a read forever.
`fresh()` re-lists on demand: a replica that becomes leader starts from a listing made after it took
the Lease, not from a watch that may be late (D46).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from rbg.runtime.errors import ApiError
from rbg.runtime.objects import Key, Kind, Obj, key_of, matches_labels, trim

if TYPE_CHECKING:
    from rbg.runtime.client import Kube

log = structlog.stdlib.get_logger(__name__)

#: the longest a failed list waits before the next try while a `fresh()` waits for it (the back-off
#: otherwise grows to `max_backoff`): a new leader is not kept waiting, nor does it hammer the API server
FRESH_BACKOFF = 4.0

Handler = Callable[[str, Obj, Obj | None], None]
"""(event in ADDED|MODIFIED|DELETED, object, previous object or None); synchronous and cheap."""


class Informer:
    def __init__(
        self,
        kube: Kube,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        transform: Callable[[Obj], Obj] = trim,
        *,
        metadata_only: bool = False,
        optional: bool = False,
        absent_recheck: float = 10.0,
        watch_timeout: tuple[int, int] = (240, 360),
        inactivity_timeout: float = 90.0,
        max_backoff: float = 30.0,
    ) -> None:
        """`watch_timeout`: server-side timeoutSeconds, drawn at random from this range per watch (spreads
        re-watches of many informers). `inactivity_timeout`: restart a watch that delivered neither an
        event nor a bookmark for this long (the API server sends bookmarks about once a minute).
        `optional`: the kind may not be served (its CRD not installed yet): the informer then counts as
        synced with an empty cache, so it stalls neither the controllers nor readiness, and looks again
        every `absent_recheck` seconds; objects appear once the CRD is installed, and are reported deleted
        if it is removed."""
        self.kube = kube
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.metadata_only = metadata_only
        self.optional = optional
        self.absent_recheck = absent_recheck
        self.absent = False  # an optional kind the API server does not serve (yet)
        self.transform = transform
        self.watch_timeout = watch_timeout
        self.inactivity_timeout = inactivity_timeout
        self.max_backoff = max_backoff
        self.store: dict[Key, Obj] = {}
        self.synced = asyncio.Event()
        self.last_activity = time.monotonic()
        self.resource_version: str | None = None
        self.relists = 0
        self.watch_restarts = 0
        self._lists_started = 0  # list attempts begun (an attempt that finds the kind unserved counts)
        self._fresh_through = 0  # the latest attempt whose listing (or absence) is in the store
        self._wanted_through = 0  # the attempt the latest `fresh()` waits for
        self._listed = asyncio.Condition()
        self._relist_wanted = asyncio.Event()
        self._handlers: list[Handler] = []
        self._by_owner: dict[str, set[Key]] = {}
        #: label -> (namespace, value) -> keys, for the labels `index_label` was asked for
        self._by_label: dict[str, dict[tuple[str, str], set[Key]]] = {}
        self._log = log.bind(kind=kind.kind, namespace=namespace or "", selector=label_selector or "")

    def __repr__(self) -> str:
        only = ", metadata only" if self.metadata_only else ""
        where = f"namespace={self.namespace!r}, selector={self.label_selector!r}"
        return f"Informer({self.kind.kind}, {where}{only})"

    # -- reading --------------------------------------------------------------------------------------

    def get(self, key: Key) -> Obj | None:
        return self.store.get(key)

    def list(
        self, namespace: str | None = None, selector: dict[str, str] | None = None
    ) -> builtins.list[Obj]:
        return [
            obj
            for key, obj in self.store.items()
            if (namespace is None or key.namespace == namespace)
            and (not selector or matches_labels(obj, selector))
        ]

    def by_owner(self, owner_uid: str) -> builtins.list[Obj]:
        """Objects with an ownerReference to this uid (controller or not)."""
        return [self.store[k] for k in self._by_owner.get(owner_uid, ()) if k in self.store]

    def index_label(self, label: str) -> None:
        """Keep an index of the objects by this label's value (for `by_label`); call before `run()`."""
        index = self._by_label.setdefault(label, {})
        for key, obj in self.store.items():
            value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
            if value is not None:
                index.setdefault((key.namespace, value), set()).add(key)

    def by_label(self, label: str, namespace: str, value: str) -> builtins.list[Obj]:
        """Objects of the namespace whose `label` is `value` (an indexed label: see `index_label`)."""
        keys = self._by_label[label].get((namespace, value), ())
        return [self.store[k] for k in keys if k in self.store]

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    # -- running --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled. Restartable: a second run resumes from the last resourceVersion."""
        failures = 0
        self.last_activity = time.monotonic()
        while True:
            try:
                if self.resource_version is None or self._relist_wanted.is_set():
                    await self._relist()
                await self._watch_until_relist_wanted()
                failures = 0
                continue
            except ApiError as exc:
                if exc.not_found and self.optional:
                    await self._absent()
                    continue
                if exc.gone and self.resource_version is not None:
                    self._log.info("watch expired, re-listing", reason=exc.message)
                    self.resource_version = None
                    continue
                # a 410 during the list itself (an expired continue token) backs off like any failure
                failures += 1
                self._log.warning("list/watch failed, retrying", error=str(exc), failures=failures)
            except Exception:
                # e.g. an undecodable event: never let one bad answer end the informer; start afresh
                failures += 1
                self._log.exception("list/watch failed unexpectedly, re-listing", failures=failures)
                self.resource_version = None
            delay = min(self.max_backoff, 0.5 * 2**failures) * random.uniform(0.8, 1.2)  # noqa: S311
            if self._relist_wanted.is_set():  # a `fresh()` waiter waits 4 s at most, not the back-off
                await asyncio.sleep(min(delay, FRESH_BACKOFF))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._relist_wanted.wait(), delay)

    async def fresh(self) -> None:
        """Return once the store holds a listing begun after this call (its differences replayed as
        events); the watch then resumes from that listing. Waits out list failures and their back-off."""
        want = self._lists_started + 1
        self._wanted_through = max(self._wanted_through, want)
        self._relist_wanted.set()
        async with self._listed:
            await self._listed.wait_for(lambda: self._fresh_through >= want)

    async def _listed_through(self, attempt: int) -> None:
        self._fresh_through = max(self._fresh_through, attempt)
        if self._fresh_through >= self._wanted_through:
            self._relist_wanted.clear()
        async with self._listed:
            self._listed.notify_all()

    async def _absent(self) -> None:
        """The optional kind is not served: an empty, synced cache (deleting what it held), then wait."""
        if not self.absent:
            self._log.info("kind not served (its CRD is not installed?): empty until it is")
        self.absent = True
        self.replace([], "")
        self.resource_version = None
        self.synced.set()
        self.last_activity = time.monotonic()  # looking again counts as activity for /healthz
        await self._listed_through(self._lists_started)  # not served is as fresh as a listing
        with contextlib.suppress(TimeoutError):
            wait = self.absent_recheck * random.uniform(0.8, 1.2)  # noqa: S311
            await asyncio.wait_for(self._relist_wanted.wait(), wait)

    async def _relist(self) -> None:
        self._lists_started += 1
        attempt = self._lists_started
        items, resource_version = await self.kube.list(
            self.kind, self.namespace, self.label_selector, self.metadata_only
        )
        self.last_activity = time.monotonic()
        if self.absent:
            self._log.info("kind now served")
            self.absent = False
        self.relists += 1
        self.replace([self.transform(item) for item in items], resource_version)
        self.synced.set()
        await self._listed_through(attempt)
        self._log.debug("listed", count=len(items), resource_version=resource_version)

    async def _watch_until_relist_wanted(self) -> None:
        """`_watch()`, ended early (its connection closed, what it had not delivered dropped) when
        `fresh()` asks for a listing."""
        watch = asyncio.create_task(self._watch())
        wanted = asyncio.create_task(self._relist_wanted.wait())
        try:
            await asyncio.wait({watch, wanted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, wanted):
                task.cancel()
            await asyncio.gather(watch, wanted, return_exceptions=True)
        error = watch.exception() if not watch.cancelled() else None
        if error is not None:
            raise error

    async def _watch(self) -> None:
        """One watch request: returns when the server ends it or it was idle too long; raises ApiError."""
        timeout = random.randint(*self.watch_timeout)  # noqa: S311
        stream = self.kube.watch_stream(
            self.kind, self.namespace, self.resource_version, timeout, self.label_selector, self.metadata_only
        )
        async with contextlib.aclosing(stream):
            while True:
                try:
                    async with asyncio.timeout(self.inactivity_timeout):
                        event_type, obj = await anext(stream)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    self.watch_restarts += 1
                    self._log.warning("watch silent, restarting it", silent_for=self.inactivity_timeout)
                    return
                self.last_activity = time.monotonic()
                self.resource_version = obj["metadata"]["resourceVersion"]
                if event_type != "BOOKMARK":
                    self.apply_event(event_type, self.transform(obj))

    # -- store updates (public for tests; also what a re-list does) -----------------------------------

    def apply_event(self, event_type: str, obj: Obj) -> None:
        """Update the store from one watch event and call the handlers."""
        obj.setdefault("apiVersion", self.kind.api_version)
        obj.setdefault("kind", self.kind.kind)
        key = key_of(obj)
        old = self.store.get(key)
        if event_type == "DELETED":
            if old is not None:
                self._remove(key, old)
            self._notify("DELETED", obj, old)
            return
        self._put(key, obj, old)
        self._notify("ADDED" if old is None else "MODIFIED", obj, old)

    def replace(self, items: builtins.list[Obj], resource_version: str) -> None:
        """Swap in a fresh listing and replay the differences as events."""
        fresh = {key_of(obj): obj for obj in items}
        for key, gone in [(k, o) for k, o in self.store.items() if k not in fresh]:
            self._remove(key, gone)
            self._notify("DELETED", gone, gone)
        for key, obj in fresh.items():
            previous = self.store.get(key)
            if previous is not None and _rv(previous) == _rv(obj):
                continue
            self._put(key, obj, previous)
            self._notify("ADDED" if previous is None else "MODIFIED", obj, previous)
        self.resource_version = resource_version

    def _put(self, key: Key, obj: Obj, old: Obj | None) -> None:
        if old is not None:
            self._unindex(key, old)
        self.store[key] = obj
        for uid in _owner_uids(obj):
            self._by_owner.setdefault(uid, set()).add(key)
        if self._by_label:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            for label, index in self._by_label.items():
                if label in labels:
                    index.setdefault((key.namespace, labels[label]), set()).add(key)

    def _remove(self, key: Key, old: Obj) -> None:
        self._unindex(key, old)
        del self.store[key]

    def _unindex(self, key: Key, obj: Obj) -> None:
        for uid in _owner_uids(obj):
            keys = self._by_owner.get(uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_owner[uid]
        if self._by_label:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            for label, index in self._by_label.items():
                if label in labels:
                    slot = (key.namespace, labels[label])
                    keys = index.get(slot)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[slot]

    def _notify(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        for handler in self._handlers:
            try:
                handler(event_type, obj, old)
            except Exception:
                self._log.exception("event handler failed", watch_event=event_type, object=str(key_of(obj)))


def _rv(obj: Obj) -> str | None:
    rv: str | None = obj.get("metadata", {}).get("resourceVersion")
    return rv


def _owner_uids(obj: Obj) -> list[str]:
    return [ref["uid"] for ref in obj.get("metadata", {}).get("ownerReferences") or () if "uid" in ref]
