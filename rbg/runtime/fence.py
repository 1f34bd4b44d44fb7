"""Writes fenced by a condition: a leader that may have lost its Lease writes nothing (D47).

Leader election in Kubernetes has no fencing token the API server checks: a leader that was paused (a
stopped process, a frozen VM, a long GC) past its Lease wakes with its caches and work queue from before
and may write before its renewal loop finds the Lease taken, while the new leader writes too. So the
controllers' client asks, before every write it sends, whether it may still write; reads, watches and
dry runs are not fenced. Generic: the condition is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from rbg.runtime.client import Kube
from rbg.runtime.errors import ApiError

#: a fenced write's ApiError reason (status 0, as a transport failure: retried after a back-off)
FENCED = "Fenced"


class FencedKube(Kube):
    """A view of `inner` (same configuration, same connection pool) whose writes first call `refusal`:
    a message refuses the write with `ApiError(0, "Fenced", message)` before anything is sent."""

    def __init__(self, inner: Kube, refusal: Callable[[], str | None]) -> None:
        self.__dict__.update(inner.__dict__)
        self._inner = inner
        self._refusal = refusal

    def _open(self) -> aiohttp.ClientSession:
        return self._inner._open()

    async def close(self) -> None:
        """The pool is the inner client's, closed with it."""

    async def _request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, **rest: Any
    ) -> Any:
        if method != "GET" and not (params and "dryRun" in params):
            refused = self._refusal()
            if refused is not None:
                raise ApiError(0, FENCED, f"{method} {path} not sent: {refused}")
        return await super()._request(method, path, params=params, **rest)
