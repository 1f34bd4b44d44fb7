"""An admission request that arrives before the operator's caches are synced is denied with "the operator is
starting" before the API server's webhook timeout, so that message, not a timeout, reaches the client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, cast

import pytest

from rbg.controllers.coordination.controller import POD_RULE as RBG_POD_RULE
from rbg.controllers.leaderworkerset import admission as lws_admission
from rbg.controllers.rolebasedgroup.admission import RULE
from rbg.runtime import certs
from rbg.runtime.manager import CACHE_WAIT, Manager
from rbg.runtime.objects import CONFIGMAP
from rbg.runtime.webhook import AdmissionServer, Verdict, webhook_configuration


def registered_timeouts() -> list[float]:
    """timeoutSeconds of every webhook the operator registers (as rbg.controllers.app does)."""
    validating = webhook_configuration(
        "Validating", "v", [RULE, lws_admission.RULE], b"CA", url_base="https://h"
    )
    mutating = webhook_configuration(
        "Mutating", "m", [lws_admission.POD_RULE, RBG_POD_RULE], b"CA", url_base="https://h"
    )
    return [float(h["timeoutSeconds"]) for cfg in (validating, mutating) for h in cfg["webhooks"]]


def test_the_cache_wait_is_clearly_shorter_than_the_api_servers_webhook_timeout() -> None:
    timeouts = registered_timeouts()
    assert len(timeouts) == 4
    assert CACHE_WAIT == 5.0  # today's webhook timeout is 10 s
    # at least 2 s (and half the timeout) are left for the handler, TLS and the network
    assert all(t - CACHE_WAIT >= max(t / 2, 2) for t in timeouts)


async def test_a_request_before_the_caches_sync_is_denied_before_the_api_server_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = Manager(cast(Any, None), name="t", metrics_port=None)
    manager.informer(CONFIGMAP)  # never synced: the manager is not running
    server = AdmissionServer("127.0.0.1", 0, certs.generate("w", ["localhost"], []), tmp_path)
    manager.serve_webhooks(server)
    handled: list[Any] = []

    async def handler(req: dict[str, Any]) -> Verdict:
        handled.append(req)
        return Verdict()

    manager.webhook("/h", handler)  # the default wait
    gated = server._validators["/h"]

    # a virtual clock on the event loop: the test moves time forward instead of sleeping
    loop = asyncio.get_running_loop()
    skew = 0.0
    monkeypatch.setattr(loop, "time", lambda: time.monotonic() + skew)

    async def settle() -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    request = asyncio.create_task(gated({"uid": "1"}))
    await settle()
    skew = 4.5  # before the wait is over the request is still waiting
    await settle()
    assert not request.done()
    skew = 5.1  # half of the API server's 10 s: denied, and the client sees why
    await settle()
    assert request.done()
    verdict = request.result()
    assert verdict.errors == ["the operator is starting (caches not synced after 5s)"]
    assert handled == []
    assert skew < min(registered_timeouts())
