"""Does an observed object already hold everything a desired (apply) body says?"""

from __future__ import annotations

from typing import Any


def contains(observed: Any, desired: Any) -> bool:
    """True when every field of `desired` is present with the same value in `observed`.

    Fields the API server adds (defaults, status, metadata it manages) are ignored because they are not
    in `desired`; a desired zero value (0, "", false, empty list or map) matches an absent field, since the
    API server omits those when it stores the object; lists must match item by item. Used to skip
    server-side applies that would change nothing, so a steady-state reconcile makes no write at all.
    """
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(
            contains(observed[k], v) if k in observed else _zero(v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(observed) == len(desired)
            and all(contains(o, d) for o, d in zip(observed, desired, strict=True))
        )
    return bool(observed == desired)


def _zero(value: Any) -> bool:
    return isinstance(value, bool | int | float | str | list | dict) and not value
