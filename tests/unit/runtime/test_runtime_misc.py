"""Logging format, event spam filter, client construction — the parts that need no API server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import structlog

from rbg import __version__
from rbg.runtime.client import Kube
from rbg.runtime.errors import ApiError
from rbg.runtime.events import SPAM_BURST, EventRecorder, micro_time
from rbg.runtime.logging import configure_logging
from rbg.runtime.objects import CONFIGMAP, Kind


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_json_logs_have_the_agreed_keys_and_bound_context(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", json=True)
    with structlog.contextvars.bound_contextvars(controller="c", namespace="ns", name="n", reconcileID="r"):
        structlog.stdlib.get_logger("rbg.test").info("reconciled", children=3)
    logging.getLogger("some.library").warning("plain %s", "stdlib")
    structlog.stdlib.get_logger("rbg.test").debug("hidden below the level")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert {
        k: first[k] for k in ("level", "logger", "msg", "controller", "namespace", "name", "reconcileID")
    } == {
        "level": "info",
        "logger": "rbg.test",
        "msg": "reconciled",
        "controller": "c",
        "namespace": "ns",
        "name": "n",
        "reconcileID": "r",
    }
    assert first["children"] == 3
    assert first["ts"].endswith("Z")
    assert second["msg"] == "plain stdlib"
    assert second["logger"] == "some.library"
    assert second["level"] == "warning"


def test_spam_filter_allows_a_burst_then_one_event_per_five_minutes() -> None:
    recorder = EventRecorder(cast(Kube, None), "c", "i")
    allowed = [recorder._allow("uid-1", 0.0) for _ in range(SPAM_BURST + 5)]
    assert allowed == [True] * SPAM_BURST + [False] * 5
    assert recorder._allow("uid-2", 0.0)  # per object
    assert not recorder._allow("uid-1", 299.0)
    assert recorder._allow("uid-1", 301.0)


def test_micro_time_format() -> None:
    assert micro_time(0) == "1970-01-01T00:00:00.000000Z"


async def test_client_sets_user_agent_and_resolves_registered_kinds(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path, **{"insecure-skip-tls-verify": True})
    kube = Kube(kubeconfig)
    assert kube.user_agent == f"rbg-operator/{__version__}"
    assert kube.host == "127.0.0.1:6443"
    assert Kube.kind_of({"apiVersion": "v1", "kind": "ConfigMap"}) is CONFIGMAP
    gadget = Kind("example.com", "v1", "Gadget", "gadgets")
    with pytest.raises(ValueError, match="register"):
        Kube.kind_of({"apiVersion": "example.com/v1", "kind": "Gadget"})
    Kube.register(gadget)
    assert kube.kind_of({"apiVersion": "example.com/v1", "kind": "Gadget"}) is gadget
    await kube.close()


def test_api_error_keeps_cause_types_and_tells_refusals_apart() -> None:
    body = {
        "kind": "Status",
        "code": 422,
        "reason": "Invalid",
        "message": 'StatefulSet "x" is invalid: spec.template.spec.containers[0].image: Required value',
        "details": {
            "causes": [{"type": "FieldValueRequired", "field": "spec.template.spec.containers[0].image"}]
        },
    }
    exc = ApiError.from_body(422, json.dumps(body).encode())
    assert (exc.status, exc.causes, exc.invalid) == (422, ("FieldValueRequired",), True)
    assert ApiError(400, "BadRequest", "x").invalid
    assert not ApiError(409, "Conflict", "x").invalid


def _kubeconfig(tmp_path: Path, **cluster: object) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", **cluster}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


async def test_client_pool_size_is_the_operators_setting(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path)
    kube = Kube(kubeconfig, max_connections=64)
    session = kube._open()
    assert session.connector is not None
    assert session.connector.limit == 64
    await kube.close()


async def test_authorization_header_is_reused_and_refreshed_after_a_401(tmp_path: Path) -> None:
    from lightkube.config.client_adapter import BearerAuth, BearerTokenFileAuth

    from rbg.runtime.client import _Authorization

    token_file = tmp_path / "token"
    token_file.write_text("one")
    rotating = _Authorization(BearerTokenFileAuth(str(token_file)), "https://127.0.0.1:6443")
    assert await rotating.get() == "Bearer one"
    token_file.write_text("two")  # the kubelet rotated the projected token
    assert await rotating.get() == "Bearer one"  # no re-read without a 401
    assert await rotating.refresh("Bearer one") == "Bearer two"
    assert await rotating.get() == "Bearer two"

    fixed = _Authorization(BearerAuth("t"), "https://127.0.0.1:6443")
    assert await fixed.get() == "Bearer t"
    assert await fixed.refresh("Bearer t") is None  # nothing better to offer: the 401 stands
    assert await _Authorization(None, "https://127.0.0.1:6443").get() is None


def test_a_candidate_tries_as_the_lease_it_saw_expires_not_a_retry_later() -> None:
    import time as _time

    from rbg.runtime.leaderelection import LeaderElector

    elector = LeaderElector(None, "ns", "lease", "me", 15, 10, 2)  # type: ignore[arg-type]
    elector._observed_duration = 15
    elector._observed_at = _time.monotonic() - 14.5  # expires in 0.5 s
    assert 0.5 < elector._until_next_attempt() < 0.6
    elector._observed_at = _time.monotonic() - 5  # expires in 10 s: the usual retry period
    assert elector._until_next_attempt() == 2
    elector._observed_at = _time.monotonic() - 20  # expired: the usual retry period
    assert elector._until_next_attempt() == 2
