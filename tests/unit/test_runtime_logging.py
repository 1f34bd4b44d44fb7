"""The operator's log lines: one JSON schema, with the key-values of every decision."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from rbg.runtime.logging import configure_logging


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def test_stdlib_extras_and_structlog_key_values_are_both_in_the_line(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug")
    logging.getLogger("rbg.test").info("failure recovery", extra={"group": "g", "decision": "m"})
    structlog.stdlib.get_logger("rbg.test").debug("revision created", group="g", revision="g-1")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["msg"], x["level"], x["group"]) for x in lines] == [
        ("failure recovery", "info", "g"),
        ("revision created", "debug", "g"),
    ]
    assert lines[0]["decision"] == "m"
    assert lines[1]["revision"] == "g-1"
