"""A leader whose Lease may be another's writes nothing (D47): the elector's verdict, and the fenced
client that asks for it before every write."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from rbg.runtime.client import Kube
from rbg.runtime.errors import ApiError
from rbg.runtime.fence import FENCED, FencedKube
from rbg.runtime.leaderelection import LeaderElector
from rbg.runtime.objects import CONFIGMAP
from tests.unit.runtime.test_runtime_misc import _kubeconfig


def test_a_leader_may_write_only_within_the_renew_deadline_of_its_last_renewal() -> None:
    elector = LeaderElector(None, "ns", "lease", "me", 15, 10, 2)  # type: ignore[arg-type]
    assert elector.write_refusal() == "this replica does not hold the Lease"
    elector._leader = True
    elector._renewed_at = time.monotonic() - 9.5
    assert elector.write_refusal() is None
    elector._renewed_at = time.monotonic() - 10.5  # e.g. the process was stopped since
    refusal = elector.write_refusal()
    assert refusal is not None
    assert "renewed 10.5s ago" in refusal


class _Sent:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str] | None]] = []

    async def __call__(self, method: str, path: str, params: Any, *rest: Any) -> Any:
        self.requests.append((method, path, params))
        raise ApiError(503, "ServiceUnavailable", "not a real server")


async def test_the_fenced_client_refuses_writes_but_reads_and_dry_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = Kube(_kubeconfig(tmp_path))
    refusal: list[str | None] = [None]
    fenced = FencedKube(inner, lambda: refusal[0])
    sent = _Sent()
    monkeypatch.setattr(fenced, "_send", sent)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}}

    with pytest.raises(ApiError, match="not a real server"):
        await fenced.apply(cm)  # allowed: sent
    refusal[0] = "another replica may lead now"
    for write in (fenced.apply(cm), fenced.create(cm), fenced.delete(CONFIGMAP, "a", "ns")):
        with pytest.raises(ApiError) as caught:
            await write
        assert caught.value.reason == FENCED
        assert "another replica may lead now" in caught.value.message
    for read in (fenced.get(CONFIGMAP, "a", "ns"), fenced.create(cm, dry_run=True)):
        with pytest.raises(ApiError, match="not a real server"):
            await read
    assert [m for m, _, _ in sent.requests] == ["PATCH", "GET", "POST"]
    # one pool: the view's session is the inner client's, and closing the view leaves it open
    assert fenced._open() is inner._open()
    await fenced.close()
    assert inner._session is not None
    await inner.close()
