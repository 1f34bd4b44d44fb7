"""A leader whose Lease may be another's writes nothing (D47): the elector's window, and the fenced
client that asks for it as each write is sent."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rbg.runtime.client import Kube
from rbg.runtime.errors import ApiError
from rbg.runtime.fence import FencedKube
from rbg.runtime.leaderelection import LeaderElector
from rbg.runtime.objects import CONFIGMAP
from tests.unit.runtime.test_runtime_misc import _kubeconfig


def _elector() -> LeaderElector:
    return LeaderElector(None, "ns", "lease", "me", 15, 10, 2)  # type: ignore[arg-type]


def test_a_leader_may_write_within_the_renew_deadline_of_its_last_renewal_by_either_clock() -> None:
    elector = _elector()
    assert elector.write_window() <= 0
    assert elector.write_refusal() == "this replica does not hold the Lease"
    elector._leader = True
    elector._renewed_at, elector._renewed_at_wall = time.monotonic() - 9.5, time.time() - 9.5
    assert 0.4 < elector.write_window() <= 0.5
    assert elector.write_refusal() is None
    assert not elector._doubt.is_set()
    elector._renewed_at = time.monotonic() - 10.5  # e.g. the process was stopped since
    assert elector.write_window() < 0
    refusal = elector.write_refusal()
    assert refusal is not None
    assert "renewed 10.5s ago" in refusal
    assert elector._doubt.is_set()  # the renewal loop is woken to renew or give up now
    # a clock that stood still while the machine was frozen: the other one decides
    elector._renewed_at, elector._renewed_at_wall = time.monotonic(), time.time() - 11
    assert elector.write_window() < 0


def test_a_lease_duration_that_rounds_down_to_the_renew_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match="whole seconds"):
        LeaderElector(None, "ns", "lease", "me", 10.4, 10.3, 2)  # type: ignore[arg-type]


class _Window:
    def __init__(self) -> None:
        self.left = 5.0

    def write_window(self) -> float:
        return self.left

    def write_refusal(self) -> str | None:
        return None if self.left > 0 else "another replica may lead now"


class _Session:
    """Records what would be sent, and the time limits it would be sent with."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, aiohttp.ClientTimeout]] = []

    async def request(self, method: str, url: str, **kw: Any) -> Any:
        self.sent.append((method, kw["timeout"]))
        raise aiohttp.ClientConnectionError("not a real server")


async def test_the_fenced_client_refuses_writes_outside_the_window_and_bounds_them_within(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = Kube(_kubeconfig(tmp_path), timeout=30)
    window = _Window()
    fenced = FencedKube(inner, window)
    session = _Session()
    monkeypatch.setattr(inner, "_open", lambda: session)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}}

    with pytest.raises(ApiError, match="not a real server"):
        await fenced.apply(cm)  # within the window: sent, with no longer than the window to connect
    ((method, limits),) = session.sent
    assert method == "PATCH"
    assert limits.connect == 5.0
    assert limits.total == 30
    window.left = 0
    for write in (fenced.apply(cm), fenced.create(cm), fenced.delete(CONFIGMAP, "a", "ns")):
        with pytest.raises(ApiError) as caught:
            await write
        assert caught.value.fenced
        assert "another replica may lead now" in caught.value.message
    for read in (fenced.get(CONFIGMAP, "a", "ns"), fenced.create(cm, dry_run=True)):
        with pytest.raises(ApiError, match="not a real server"):
            await read
    assert [m for m, _ in session.sent] == ["PATCH", "GET", "POST"]
    # the view's pool is the inner client's, and closing the view leaves it open
    assert fenced._open() is session  # type: ignore[comparison-overlap]
    await fenced.close()
    await inner.close()


async def test_an_own_pool_is_opened_and_closed_apart(tmp_path: Path) -> None:
    inner = Kube(_kubeconfig(tmp_path))
    own = inner.with_own_pool(2)
    assert own._open() is not inner._open()
    assert own._open().connector.limit == 2  # type: ignore[union-attr]
    await own.close()
    assert inner._session is not None
    await inner.close()
