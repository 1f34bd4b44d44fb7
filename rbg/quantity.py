"""Kubernetes resource quantities ("1.5Gi", "500m", 2) as exact decimals; no dependencies, so the
runtime and the pure cores can both use it."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_SUFFIXES = {
    **{s: Decimal(2) ** (10 * (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{
        s: Decimal(10) ** e
        for s, e in (
            ("n", -9),
            ("u", -6),
            ("m", -3),
            ("", 0),
            ("k", 3),
            ("M", 6),
            ("G", 9),
            ("T", 12),
            ("P", 15),
            ("E", 18),
        )
    },
}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$")


def quantity(value: Any) -> Decimal | None:
    """The value of a Kubernetes resource quantity ("1.5Gi", "500m", 2), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    m = _QUANTITY.match(str(value).strip())
    if not m:
        return None
    number, suffix = Decimal(m.group(1)), m.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIXES[suffix]
