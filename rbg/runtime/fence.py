"""Writes fenced by a condition: a leader that may have lost its Lease writes nothing (D47).

Leader election in Kubernetes has no fencing token the API server checks: a leader that was paused (a
stopped process, a long pause of its event loop) past its Lease wakes with its caches and work queue from
before and may write before its renewal loop finds the Lease taken, while the new leader writes too. So
the controllers' client asks, as each write is about to be sent (after the wait for a token, before the
wait for a pooled connection), how long it may still write, and gives the connection no longer than that:
a write is on the wire within the window or not at all. Reads, watches and dry runs are not fenced.
Generic: the window is the caller's.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from rbg.runtime.client import Kube
from rbg.runtime.errors import FENCED, ApiError


class Fence(Protocol):
    def write_window(self) -> float:
        """Seconds within which a write may still be sent; <= 0: none may."""

    def write_refusal(self) -> str | None:
        """Why no write may be sent now; None when one may."""


class FencedKube(Kube):
    """A view of `inner` (same configuration, same connection pool) whose writes ask `fence` as they
    are sent: outside its window a write fails with `ApiError(0, "Fenced", why)`, sent nowhere."""

    def __init__(self, inner: Kube, fence: Fence) -> None:
        self.__dict__.update(inner.__dict__)
        self._inner = inner
        self._fence = fence

    def _open(self) -> aiohttp.ClientSession:
        return self._inner._open()

    async def close(self) -> None:
        """The pool is the inner client's, closed with it."""

    def _limits(
        self, method: str, params: dict[str, str] | None, limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientTimeout:
        if method == "GET" or (params and "dryRun" in params):
            return limits
        left = self._fence.write_window()
        if left <= 0:
            why = self._fence.write_refusal() or "outside the write window"
            raise ApiError(0, FENCED, f"{method} not sent: {why}")
        # aiohttp's connect limit covers the wait for a pooled connection and making a new one: past
        # the window the write is dropped unsent
        connect = min(left, limits.connect) if limits.connect else left
        return aiohttp.ClientTimeout(
            total=limits.total,
            connect=connect,
            sock_read=limits.sock_read,
            sock_connect=limits.sock_connect,
            ceil_threshold=limits.ceil_threshold,
        )
