"""Revisions of a RoleBasedGroup (D33): a ControllerRevision per change of its roles, as upstream.

A revision holds the group's `spec.roles` and `spec.roleTemplates` with what never rolls pods left out
(each role's `replicas` and `rolloutStrategy.rollingUpdate.paused`): scaling or pausing a role is no new
revision, and undoing to a revision keeps today's replicas and pause. A new revision is made only when
the data differs from the newest one; the newest `HISTORY_LIMIT` are kept (upstream keeps 5), the one in
use always. Pure functions over plain objects: the controller applies and deletes what they return, the
CLI reads history, diffs and undoes with them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rbg.api.hub import RoleBasedGroup
from rbg.group import names
from rbg.lifecycle import revisions
from rbg.lifecycle.revisions import safe_hash

Obj = dict[str, Any]
HISTORY_LIMIT = 5
REVISION_LABEL = names.PREFIX + "group-revision"  # on the ControllerRevisions, the data's hash
ROLE_REVISION = names.PREFIX + "role-revision"  # on a role's workload and pods: its pod template's hash
_MAX_PREFIX = 220  # name: {group}-{hash}-{n} within 253


def _role_data(role: Obj) -> Obj:
    out = {k: v for k, v in role.items() if k != "replicas"}
    update = (out.get("rolloutStrategy") or {}).get("rollingUpdate")
    if isinstance(update, dict) and "paused" in update:
        update = {k: v for k, v in update.items() if k != "paused"}
        out["rolloutStrategy"] = {**out["rolloutStrategy"], "rollingUpdate": update}
    return out


def revision_data(rbg: RoleBasedGroup) -> Obj:
    """The revision of the group's current roles: `{"spec": {"roles": [...], "roleTemplates": [...]}}`."""
    spec = rbg.spec.wire()
    data: Obj = {"roles": [_role_data(r) for r in spec.get("roles") or []]}
    if spec.get("roleTemplates"):
        data["roleTemplates"] = spec["roleTemplates"]
    return {"spec": data}


def revision_data_of(obj: Obj) -> Obj:
    """`revision_data` of a group as the API returns it."""
    return revision_data(RoleBasedGroup.model_validate(obj))


def number(revision: Obj) -> int:
    try:
        return int(revision.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def history(revisions: Sequence[Obj]) -> list[Obj]:
    """The group's revisions, oldest first (by revision number, then name)."""
    return sorted(revisions, key=lambda r: (number(r), r["metadata"]["name"]))


def controller_revision(rbg: RoleBasedGroup, data: Obj, digest: str, n: int, owner: Obj) -> Obj:
    group = rbg.metadata.name
    annotations = {
        k: v for k, v in (rbg.metadata.annotations or {}).items() if k == "kubernetes.io/change-cause"
    }
    meta: Obj = {
        "name": f"{group[:_MAX_PREFIX]}-{digest}-{n}",
        "namespace": rbg.metadata.namespace,
        "labels": {names.GROUP_NAME: group, REVISION_LABEL: digest},
        "ownerReferences": [owner],
    }
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": meta,
        "data": data,
        "revision": n,
    }


def plan_revisions(
    rbg: RoleBasedGroup, existing: Sequence[Obj], owner: Obj, limit: int = HISTORY_LIMIT
) -> tuple[str, Obj | None, list[Obj]]:
    """(the name of the revision of the current spec; a new revision to create, None when the newest one
    already holds the same data (it is never re-applied: an idle group writes nothing); the revisions
    beyond the history limit, to delete). A new revision is numbered above the newest one the cache has
    and above the one the group's status names (two edits faster than the cache get two numbers)."""
    data = revision_data(rbg)
    ordered = history(existing)
    newest = ordered[-1] if ordered else None
    if newest is not None and newest.get("data") == data:
        return newest["metadata"]["name"], None, revisions.prune(ordered, newest, limit)
    named = rbg.status.current_revision if rbg.status is not None else None
    digest = safe_hash(data)
    if named and named.startswith(f"{rbg.metadata.name[:_MAX_PREFIX]}-{digest}-"):
        # written moments ago, not in the cache yet: it holds this data (its name holds the digest)
        return named, None, revisions.prune(ordered, newest, limit) if newest is not None else []
    known = int(named.rsplit("-", 1)[1]) if named and named.rsplit("-", 1)[-1].isdigit() else 0
    n = max(number(newest) if newest is not None else 0, known) + 1
    created = controller_revision(rbg, data, digest, n, owner)
    return created["metadata"]["name"], created, revisions.prune(ordered, created, limit)


def role_revision(template: Obj, role: Obj | None = None) -> str:
    """The hash of what a role's pods run: its pod template and, for leader/worker roles, the
    leader/worker settings (size, patches); the label pods and the workload carry."""
    return safe_hash({"template": template, "leaderWorkerSet": (role or {}).get("leaderWorkerSet")})


def undo_spec(current: Obj, revision: Obj) -> Obj:
    """The spec that restores a revision: its roles and role templates, each role keeping its current
    replicas and pause (a role the group no longer has comes back with 1 replica, as upstream)."""
    spec = dict(current.get("spec") or {})
    now = {r.get("name"): r for r in spec.get("roles") or []}
    data = (revision.get("data") or {}).get("spec") or {}
    roles = []
    for role in data.get("roles") or []:
        restored = json.loads(json.dumps(role))
        live = now.get(restored.get("name")) or {}
        restored["replicas"] = live.get("replicas", 1)
        paused = ((live.get("rolloutStrategy") or {}).get("rollingUpdate") or {}).get("paused")
        if paused is not None:
            strategy = restored.setdefault("rolloutStrategy", {})
            strategy.setdefault("rollingUpdate", {})["paused"] = paused
        roles.append(restored)
    spec["roles"] = roles
    if data.get("roleTemplates"):
        spec["roleTemplates"] = data["roleTemplates"]
    else:
        spec.pop("roleTemplates", None)
    return spec
