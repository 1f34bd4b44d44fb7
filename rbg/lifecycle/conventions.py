"""Kubernetes object conventions every kind follows the same way (plain dicts): status conditions and
their transition times, and owner references."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Obj = dict[str, Any]

TRANSITION = "lastTransitionTime"


def condition(
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    previous: Sequence[Obj] | None,
    now: str,
    *,
    same_reason: bool = False,
) -> Obj:
    """A condition (`status`: True/False, or the string itself) whose lastTransitionTime is the previous
    condition's of that type when its status is unchanged (with `same_reason`, its reason too), else
    `now`. `previous`: the conditions written before (None: none)."""
    value = ("True" if status else "False") if isinstance(status, bool) else status
    prev = next((c for c in previous or () if c.get("type") == type_), None)
    since = now
    if prev is not None and prev.get("status") == value and (not same_reason or prev.get("reason") == reason):
        since = prev.get(TRANSITION, now)
    return {"type": type_, "status": value, "reason": reason, "message": message, TRANSITION: since}


def without_transition_times(conditions: Iterable[Obj]) -> list[Obj]:
    """The conditions (or any status entries) without their lastTransitionTime: what "did anything
    change" compares (a transition time alone never justifies a write)."""
    return [{k: v for k, v in c.items() if k != TRANSITION} for c in conditions]


def owner_reference(
    api_version: str,
    kind: str,
    name: str,
    uid: str,
    controller: bool = True,
    block_owner_deletion: bool = True,
) -> Obj:
    """The ownerReferences entry that makes the named object the (controlling) owner of a child."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def controller_uid(obj: Obj | None) -> str | None:
    """The uid of the object's controlling owner (None: it has none)."""
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None
