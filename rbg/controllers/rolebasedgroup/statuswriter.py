"""The RoleBasedGroup's status writer: a write only when the status changed, progress throttled (D19),
and a guard against the cache not having seen our last write yet."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rbg.api.hub import API_VERSION
from rbg.group.status import progress_only, same_status
from rbg.runtime.client import Kube
from rbg.runtime.errors import ApiError
from rbg.runtime.objects import Key, Obj, rv_older


@dataclass(frozen=True)
class _Written:
    """The last status this controller wrote for a group."""

    uid: str | None
    resource_version: str | None
    status: dict[str, Any]
    at: float  # time.monotonic() of the write


class StatusWriter:
    def __init__(self, kube: Kube, status_progress_interval: float) -> None:
        self.kube = kube
        self.status_progress_interval = status_progress_interval
        self._last: dict[Key, _Written] = {}

    def last(self, key: Key) -> _Written | None:
        """The status last written for the group (what the cache may not show yet)."""
        return self._last.get(key)

    def forget(self, key: Key) -> None:
        self._last.pop(key, None)

    def wait(self, key: Key, obj: Obj, status: dict[str, Any]) -> float:
        """Seconds to hold back a status that only reports progress (0: write it now if it changed).

        While pods come up, ready and updated counts change many times a second across a cluster; each
        write is an API write of the whole group. Progress is written at most once per
        `status_progress_interval` per group; a condition that flips (Ready, Progressing, InvalidSpec) is
        written at once.
        """
        last = self._last.get(key)
        if last is None or last.uid != obj["metadata"].get("uid"):
            return 0.0
        since = time.monotonic() - last.at
        if since >= self.status_progress_interval or not progress_only(last.status, status):
            return 0.0
        return 0.0 if same_status(obj.get("status"), status) else self.status_progress_interval - since

    async def write(self, key: Key, obj: Obj, status: dict[str, Any]) -> bool:
        """Write the status if it changed; True when it did.

        The cache may not have seen our last status write yet when the next reconcile runs: a status
        equal to the one written last, on an object the cache holds at an older resourceVersion than
        that write, is not written again.
        """
        last = self._last.get(key)
        if (
            last is not None
            and last.uid == obj["metadata"].get("uid")
            and same_status(last.status, status)
            and rv_older(obj["metadata"].get("resourceVersion"), last.resource_version)
        ):
            return False
        if same_status(obj.get("status"), status):
            return False
        body = {
            "apiVersion": API_VERSION,
            "kind": "RoleBasedGroup",
            "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]},
            "status": status,
        }
        try:
            written = await self.kube.apply_status(body)
        except ApiError as exc:
            if not exc.not_found:  # deleted meanwhile: nothing to report on
                raise
            return False
        meta = written.get("metadata") or {}
        self._last[key] = _Written(meta.get("uid"), meta.get("resourceVersion"), status, time.monotonic())
        return True
