"""Kubernetes resource quantities ("1.5Gi", "500m", "2E", 2) as exact decimals; no dependencies, so the
runtime and the pure cores can both use it."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from typing import Any

# Kubernetes' grammar (k8s.io/apimachinery resource.Quantity):
#   <quantity> ::= <signedNumber><suffix>
#   <number>   ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
#   <suffix>   ::= <binarySI> | <decimalSI> | <decimalExponent>
#   binarySI: Ki Mi Gi Ti Pi Ei; decimalSI: n u m "" k M G T P E; decimalExponent: e or E + an int64.
# The suffix tables come first, so "E" alone is 10^18 and "Ei" 2^60; only E/e followed by an integer
# ("1e3", "1E-3", "1E+3") is an exponent.
_BINARY = {s: 10 * (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}  # powers of 2
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}  # of 10
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")
# A value whose decimal exponent lies beyond ±_MAGNITUDE is refused (None). No resource comes near it
# (Kubernetes counts in int64, below 10^19), and it is far inside the default decimal context (Emax
# 999999), so sums and products of quantities in callers cannot overflow.
_MAGNITUDE = 10_000


def quantity(value: Any) -> Decimal | None:
    """The value of a Kubernetes resource quantity ("1.5Gi", "500m", "2E", 2), or None when it is not one.

    Never raises, whatever the value."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, int):  # str() of a very large int raises; Decimal() of it does not
        return _bounded(Decimal(value))
    m = _QUANTITY.fullmatch(str(value).strip())
    if not m:
        return None
    number, suffix = Decimal(m.group(1)), m.group(2) or ""
    if suffix in _BINARY:
        base, shift = 2, _BINARY[suffix]
    elif suffix in _DECIMAL:
        base, shift = 10, _DECIMAL[suffix]
    else:  # e/E and a signed integer, which Kubernetes reads as an int64
        exponent = suffix[1:].lstrip("+-").lstrip("0")
        if len(exponent) > 19 or (shift := int(suffix[1:])) not in range(-(2**63), 2**63):
            return None
        base = 10
    if not number:
        return Decimal(0)
    # bound the result before computing it: 2^shift has at most shift * 0.302 + 1 decimal digits
    if abs(number.adjusted() + (shift * 302 // 1000 if base == 2 else shift)) > _MAGNITUDE + 1:
        return None
    with localcontext() as ctx:  # exact: the coefficient's digits plus 2^60's 19 fit, in ample range
        ctx.prec = len(number.as_tuple().digits) + 20
        ctx.Emax, ctx.Emin = 4 * _MAGNITUDE, -4 * _MAGNITUDE
        result = number * Decimal(2) ** shift if base == 2 else number.scaleb(shift)
    return _bounded(result)


def _bounded(value: Decimal) -> Decimal | None:
    if not value:
        return Decimal(0)
    return value if -_MAGNITUDE <= value.adjusted() <= _MAGNITUDE else None
