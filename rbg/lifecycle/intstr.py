"""Kubernetes' int-or-string: a count, or a percentage of a total."""

from __future__ import annotations

import re

PERCENT = re.compile(r"^(\d+)%$")


def scaled(value: int | str, total: int, round_up: bool) -> int | None:
    """An int-or-percentage scaled against `total` (None when it is neither)."""
    if isinstance(value, int):
        return value
    m = PERCENT.match(value)
    if m is None:
        return int(value) if value.isdigit() else None
    pct = int(m.group(1))
    return -(-total * pct // 100) if round_up else total * pct // 100
