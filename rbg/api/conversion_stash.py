"""What one version cannot hold of an object of the other, kept in an annotation: a list of field
changes that turn the converted object back into the original.

A stash is made once per conversion: the source, converted by the natural mapping, is converted back
the same way, and every place where that round trip does not give the source back becomes an entry
`{"at": [keys...], "value": v}` (or `"delete": true`), together with `"over"`: a fingerprint of what the
natural mapping puts at that place. Converting back applies the entries only while the natural mapping
still puts exactly that at each of their places: a change made meanwhile in the other version to any
of them wins over the whole stash.

Entries address dict keys only (a list is one value); their places never overlap, so they apply in any
order. Nothing here raises: an unreadable stash is no stash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

Obj = dict[str, Any]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: a field that is not there (a field can be there and be null)
MISSING: Any = _Missing()


def canonical(value: Any) -> str:
    """JSON with sorted keys, so that equal values (bool and int told apart) give equal strings."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # keys that cannot be sorted or written
        return repr(value)


def dump(value: Any) -> str:
    """Compact JSON of an annotation value, key order kept (as Go's encoding/json writes a struct)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return canonical(value)


def load(text: Any) -> Any:
    """The JSON in an annotation value, or MISSING when it is not JSON."""
    if not isinstance(text, str):
        return MISSING
    try:
        return json.loads(text)
    except ValueError:
        return MISSING


def same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or a != b:
        return False
    return not isinstance(a, (dict, list)) or canonical(a) == canonical(b)


def fingerprint(value: Any) -> str:
    text = "[]" if value is MISSING else "[" + canonical(value) + "]"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def diff(source: Any, natural: Any, at: list[str] | None = None) -> list[Obj]:
    """Entries that turn `natural` into `source`."""
    out: list[Obj] = []
    _diff(source, natural, at or [], out)
    return out


def _diff(source: Any, natural: Any, at: list[str], out: list[Obj]) -> None:
    if source is natural:
        return
    if isinstance(source, dict) and isinstance(natural, dict):
        for key in [*source, *(k for k in natural if k not in source)]:
            if isinstance(key, str):
                _diff(source.get(key, MISSING), natural.get(key, MISSING), [*at, key], out)
        return
    if source is MISSING and natural is MISSING:
        return
    if source is not MISSING and natural is not MISSING and same(source, natural):
        return
    entry: Obj = {"at": at}
    if source is MISSING:
        entry["delete"] = True
    else:
        entry["value"] = source
    entry["over"] = fingerprint(natural)
    out.append(entry)


def apply(natural: Obj, entries: list[Obj]) -> Obj:
    """`natural` with the entries applied (a new object; `natural` is not changed) — all of them, or
    none when any is stale: its entries describe one object together (a restart policy moved from one
    field to another is two entries), so a change made meanwhile to any of their places wins over all."""
    out = natural
    for entry in entries:
        changed = _apply(out, entry["at"], entry)
        if changed is None:
            return natural
        out = changed
    return out


def _apply(node: Any, at: list[str], entry: Obj) -> Obj | None:
    if not isinstance(node, dict):
        return None
    key = at[0]
    if len(at) > 1:
        child = _apply(node.get(key, MISSING), at[1:], entry)
        return None if child is None else {**node, key: child}
    if fingerprint(node.get(key, MISSING)) != entry["over"]:
        return None  # changed in the other version since: that change wins
    if entry.get("delete") is True:
        return {k: v for k, v in node.items() if k != key}
    return {**node, key: entry["value"]}


def _entries(data: Any) -> list[Obj]:
    if not isinstance(data, dict) or not isinstance(data.get("fields"), list):
        return []
    out = []
    for e in data["fields"]:
        if (
            isinstance(e, dict)
            and isinstance(e.get("at"), list)
            and e["at"]
            and all(isinstance(k, str) for k in e["at"])
            and isinstance(e.get("over"), str)
            and (("value" in e) != (e.get("delete") is True))
        ):
            out.append(e)
    return out


def pop(host: Obj, field: str, key: str) -> tuple[list[Obj], Obj]:
    """The stash under annotation `key` of `host[field]` and `host` without it; no stash when unreadable
    (the annotation then stays, as any other)."""
    annotations = host.get(field)
    if not isinstance(annotations, dict) or key not in annotations:
        return [], host
    data = load(annotations[key])
    if not isinstance(data, dict) or not isinstance(data.get("fields"), list):
        return [], host
    rest = {k: v for k, v in annotations.items() if k != key}
    out = dict(host)
    if rest or data.get("empty") is True:
        out[field] = rest
    else:
        del out[field]
    return _entries(data), out


def push(host: Obj, field: str, key: str, entries: list[Obj]) -> Obj:
    """`host` with the stash under annotation `key` of `host[field]` (which is made when missing)."""
    if not entries:
        return host
    annotations = host.get(field, MISSING)
    data: Obj = {"fields": entries}
    if annotations == {}:
        data["empty"] = True  # the map was there and empty: popping the stash leaves it so
    base = annotations if isinstance(annotations, dict) else {}
    return {**host, field: {**base, key: dump(data)}}
