"""The pure half of `rbg rollout history | diff | undo`: rows, texts and the undo patch, from the group and
its ControllerRevisions as the API returns them (rbg.group.revision makes them, D33)."""

from __future__ import annotations

import difflib
import json
from typing import Any

import yaml

from rbg.group import revision

Obj = dict[str, Any]


class HistoryError(Exception):
    """What the user asked for cannot be done (the message says why)."""


def owned(obj: Obj, revisions: list[Obj]) -> list[Obj]:
    """The group's revisions, oldest first: those it controls (a revision of an earlier group of the same
    name is not its history)."""
    uid = obj["metadata"].get("uid")
    mine = [
        r
        for r in revisions
        if any(
            o.get("uid") == uid and o.get("controller") for o in r["metadata"].get("ownerReferences") or []
        )
    ]
    return revision.history(mine)


def current_name(obj: Obj, revisions: list[Obj]) -> str | None:
    """The revision the group runs: the one its status names, else the newest."""
    named = (obj.get("status") or {}).get("currentRevision")
    if named and any(r["metadata"]["name"] == named for r in revisions):
        return str(named)
    return revisions[-1]["metadata"]["name"] if revisions else None


def history_rows(obj: Obj, revisions: list[Obj]) -> list[Obj]:
    current = current_name(obj, revisions)
    return [
        {
            "revision": revision.number(r),
            "name": r["metadata"]["name"],
            "created": r["metadata"].get("creationTimestamp"),
            "changeCause": (r["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", ""),
            "roles": _role_summary(r),
            "current": r["metadata"]["name"] == current,
        }
        for r in revisions
    ]


def _role_summary(r: Obj) -> str:
    """Each role and its containers' images: what usually tells two revisions apart."""
    parts = []
    for role in ((r.get("data") or {}).get("spec") or {}).get("roles") or []:
        containers = ((role.get("template") or {}).get("spec") or {}).get("containers") or []
        images = ",".join(str(c.get("image")) for c in containers if c.get("image"))
        parts.append(f"{role.get('name')}={images}" if images else str(role.get("name")))
    return " ".join(parts)


def find(revisions: list[Obj], n: int) -> Obj:
    if n < 0:
        raise HistoryError("--revision cannot be negative")
    for r in revisions:
        if revision.number(r) == n:
            return r
    raise HistoryError(f"revision {n} not found")


def spec_yaml(r: Obj) -> str:
    """A revision's roles as YAML (what `history --revision N` prints and `diff` compares)."""
    return yaml.safe_dump(((r.get("data") or {}).get("spec")) or {}, sort_keys=False)


def diff(revisions: list[Obj], n: int, obj: Obj) -> str:
    """A unified diff from revision n to the revision the group runs ('' when they are the same)."""
    if n <= 0:
        raise HistoryError("--revision must be positive")
    try:
        old = find(revisions, n)
    except HistoryError:
        raise HistoryError(f"--revision={n} not found, please check the revision number") from None
    name = current_name(obj, revisions)
    current = next((r for r in revisions if r["metadata"]["name"] == name), None)
    if current is None:
        raise HistoryError("current revision not found, please try again later")
    lines = difflib.unified_diff(
        spec_yaml(old).splitlines(keepends=True),
        spec_yaml(current).splitlines(keepends=True),
        fromfile=f"revision {n}",
        tofile=f"revision {revision.number(current)} (current)",
    )
    return "".join(lines)


def undo_target(obj: Obj, revisions: list[Obj], to_revision: int | None) -> Obj:
    """The revision to go back to: the given one, or the one before the current."""
    if to_revision:
        target = find(revisions, to_revision)
    else:
        name = current_name(obj, revisions)
        at = next((i for i, r in enumerate(revisions) if r["metadata"]["name"] == name), len(revisions) - 1)
        if at < 1:
            raise HistoryError("no enough revision found, current revision is the latest one")
        target = revisions[at - 1]
    current = revision.revision_data_of(obj)
    if (target.get("data") or {}) == current:
        raise HistoryError(
            f"revision {revision.number(target)} is the group's current revision: nothing to undo"
        )
    return target


def undo_patch(obj: Obj, target: Obj) -> Obj:
    """A JSON merge patch restoring the target's roles, guarded by the group's resourceVersion (a group
    changed meanwhile is not overwritten: the API server answers 409)."""
    spec = revision.undo_spec(obj, target)
    patch_spec: Obj = {"roles": spec["roles"], "roleTemplates": spec.get("roleTemplates")}
    return {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "spec": patch_spec}


def render_history(rows: list[Obj]) -> str:
    if not rows:
        return "no revisions"
    out = ["REVISION  NAME" + " " * 28 + "CREATED               CHANGE-CAUSE"]
    for r in rows:
        mark = "*" if r["current"] else " "
        what = r["changeCause"] or r["roles"]
        out.append(f"{mark}{r['revision']:<8} {r['name']:<32} {r['created'] or '':<21} {what}")
    return "\n".join(out)


def as_json(rows: list[Obj]) -> str:
    return json.dumps(rows, indent=2)
