"""`rbg controller run` takes every default from Settings (rbg/controllers/settings.py): what its --help
shows, what it runs with when given no flags, and each flag reaching its own field."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rbg.cli.main import app
from rbg.controllers.settings import Settings

WIDE = {"COLUMNS": "300", "TERMINAL_WIDTH": "300", "NO_COLOR": "1", "KUBECONFIG": None}
ROW = re.compile(r"^│ (--[a-z-]+)\s+(?:--no-[a-z-]+\s+)?<\w+>\s+(.*?)\s*│$")
FIELDS = {f.name for f in dataclasses.fields(Settings)}


def _help_defaults() -> dict[str, str | None]:
    """Option -> the default its --help shows (None: it shows none)."""
    result = CliRunner().invoke(app, ["controller", "run", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    shown: dict[str, str | None] = {}
    for line in result.output.splitlines():
        m = ROW.match(line.strip())
        if m and m.group(1) != "--help":
            default = re.search(r"\[default: ([^\]]*)\]", m.group(2))
            shown[m.group(1)] = default.group(1) if default else None
    return shown


def _rendered(flag: str, value: object) -> str | None:
    """How --help shows a default: a boolean as the flag it means, None as nothing."""
    if isinstance(value, bool):
        return flag.removeprefix("--") if value else "no-" + flag.removeprefix("--")
    return None if value is None or value == "" else str(value)


def test_every_option_is_a_settings_field_and_help_shows_its_default() -> None:
    shown = _help_defaults()
    assert len(shown) == 22
    defaults = Settings()
    for flag, default in shown.items():
        field = flag.removeprefix("--").replace("-", "_")
        assert field in FIELDS, flag
        assert default == _rendered(flag, getattr(defaults, field)), flag


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The Settings the operator would be run with, per invocation (nothing is run)."""
    seen: list[Settings] = []

    async def run(settings: Settings) -> None:
        seen.append(settings)

    monkeypatch.setattr("rbg.controllers.app.run", run)
    monkeypatch.setattr("rbg.runtime.logging.configure_logging", lambda *a, **k: None)
    return seen


def test_no_flags_run_with_the_settings_defaults(ran: list[Settings]) -> None:
    result = CliRunner().invoke(app, ["controller", "run"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert ran == [Settings()]


def test_each_flag_sets_its_own_field(ran: list[Settings]) -> None:
    defaults = Settings()
    changed: dict[str, Any] = {}
    args = []
    for flag in _help_defaults():
        field = flag.removeprefix("--").replace("-", "_")
        value = getattr(defaults, field)
        if isinstance(value, bool):
            changed[field] = not value
            args.append(flag if not value else "--no-" + flag.removeprefix("--"))
            continue
        new: object = f"x-{field}"
        if field == "storage_version":  # one of two values (the other tested below)
            new = "v1alpha2"
        elif field == "webhook_failure_policy":  # one of two values
            new = "Ignore"
        elif isinstance(value, Path):
            new = Path("/x", field)
        elif isinstance(value, int | float):
            new = value + 1
        changed[field] = new
        args.append(f"{flag}={new}")
    result = CliRunner().invoke(app, ["controller", "run", *args], env=WIDE)
    assert result.exit_code == 0, result.output
    assert ran == [dataclasses.replace(defaults, **changed)]


def test_a_failure_policy_that_is_neither_is_refused_naming_the_flag(ran: list[Settings]) -> None:
    result = CliRunner().invoke(app, ["controller", "run", "--webhook-failure-policy=fail"], env=WIDE)
    assert result.exit_code != 0
    assert "--webhook-failure-policy" in result.output
    assert ran == []


def test_a_storage_version_that_is_neither_is_refused_naming_the_flag(ran: list[Settings]) -> None:
    result = CliRunner().invoke(app, ["controller", "run", "--storage-version=v2"], env=WIDE)
    assert result.exit_code != 0
    assert "--storage-version" in result.output
    assert ran == []
