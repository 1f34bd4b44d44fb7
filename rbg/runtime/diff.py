"""Does an observed object already hold everything a desired (apply) body says?"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rbg.quantity import quantity


def contains(observed: Any, desired: Any, *, quantities: bool = False) -> bool:
    """True when every field of `desired` is present with the same value in `observed`.

    Fields the API server adds (defaults, status, metadata it manages) are ignored because they are not
    in `desired`; a desired zero value (0, "", false, empty list or map) matches an absent field, since the
    API server omits those when it stores the object; lists must match item by item; resource
    quantities (values under `limits`, `requests`, `capacity`, `allocatable`) are compared by value, as the
    server rewrites them in canonical form ("1000m" is stored as "1"). Used to skip server-side applies
    that would change nothing, so a steady-state reconcile makes no write at all.
    """
    if quantities and isinstance(desired, dict):  # a map of resource name -> quantity
        return isinstance(observed, dict) and all(
            k in observed and _same_quantity(observed[k], v) for k, v in desired.items()
        )
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(
            (
                _same_quantity(observed[k], v)
                if k in _QUANTITY_FIELDS
                else contains(observed[k], v, quantities=k in _QUANTITY_MAPS)
            )
            if k in observed
            else _zero(v)
            for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(observed) == len(desired)
            and all(contains(o, d) for o, d in zip(observed, desired, strict=True))
        )
    return bool(observed == desired)


_QUANTITY_MAPS = frozenset({"limits", "requests", "capacity", "allocatable"})
_QUANTITY_FIELDS = frozenset({"sizeLimit", "divisor"})


def _same_quantity(observed: Any, desired: Any) -> bool:
    if observed == desired:
        return True
    a, b = quantity(observed), quantity(desired)
    return a is not None and a == b


def _zero(value: Any) -> bool:
    # numbers, strings and lists the server drops when empty; not false or {}: Kubernetes keeps those on
    # pointer fields (automountServiceAccountToken: false, emptyDir: {}), so their absence is a change
    return (isinstance(value, int | float) and not isinstance(value, bool) and value == 0) or value in (
        "",
        [],
    )


def digest(obj: Any) -> str:
    """A short, stable hash of a JSON-like value."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def stamp(desired: dict[str, Any], annotation: str) -> dict[str, Any]:
    """`desired` with `annotation` set to the digest of everything else in it."""
    meta = desired.get("metadata") or {}
    body = {**desired, "metadata": {**meta, "annotations": dict(meta.get("annotations") or {})}}
    body["metadata"]["annotations"].pop(annotation, None)
    body["metadata"]["annotations"][annotation] = digest(body)
    return body


def up_to_date(observed: dict[str, Any] | None, desired: dict[str, Any], annotation: str) -> bool:
    """No apply needed: the last apply was of this same body, and nobody changed what it set since.

    The stamp catches fields removed from the desired state (which `contains` alone cannot see: SSA
    removes them only when applied again); `contains` catches edits made by hand after the last apply.
    """
    if observed is None:
        return False
    want = (desired.get("metadata") or {}).get("annotations", {}).get(annotation)
    have = (observed.get("metadata") or {}).get("annotations", {}).get(annotation)
    return want is not None and want == have and contains(observed, desired)
