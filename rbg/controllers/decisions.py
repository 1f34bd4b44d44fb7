"""Key-value debug records of what a reconcile decided to write, for RoleBasedGroups and
LeaderWorkerSets (a revision made, replicas or a partition moved, a template rolled, pods deleted):
events are rate-limited and aggregated, so they cannot be the only record of why something changed."""

from __future__ import annotations

from typing import Any

import structlog

from rbg.group import names
from rbg.group.revision import ROLE_REVISION
from rbg.group.rollout import INSTANCES, partition_of

Obj = dict[str, Any]
log = structlog.stdlib.get_logger("rbg.decisions")


def _template(workload: Obj, label: str) -> str | None:
    """The revision label of the workload's pod template."""
    spec = workload.get("spec") or {}
    tpl = spec.get("template") or ((spec.get("leaderWorkerTemplate") or {}).get("workerTemplate")) or {}
    value = ((tpl.get("metadata") or {}).get("labels") or {}).get(label)
    return str(value) if value is not None else None


def changes(
    observed: Obj | None, desired: Obj, template_label: str = ROLE_REVISION
) -> tuple[str, dict[str, Any]] | None:
    """What writing `desired` over `observed` decides, as a message and its key-values (None when it
    decides nothing a reader of the log needs: a Service or ConfigMap refreshed)."""
    kind, name = desired["kind"], desired["metadata"]["name"]
    if kind == "ControllerRevision":
        return ("revision created", {"revision": name}) if observed is None else None
    if kind not in ("StatefulSet", "Deployment", "LeaderWorkerSet"):
        return None
    if observed is None:
        return "workload created", {"workload": f"{kind}/{name}", "replicas": _replicas(desired)}
    out: dict[str, Any] = {}
    for key, before, after in (
        ("replicas", _replicas(observed), _replicas(desired)),
        ("partition", partition_of(observed), partition_of(desired)),
        ("template", _template(observed, template_label), _template(desired, template_label)),
        ("instances", _instances(observed), _instances(desired)),
    ):
        if before != after:
            out[key] = f"{before} -> {after}"
    if not out:
        return None
    return "workload changed", {"workload": f"{kind}/{name}", **out}


def record(owner: str, observed: Obj | None, desired: Obj, template_label: str = ROLE_REVISION) -> None:
    """`owner`: kind/name of the object whose reconcile wrote `desired`."""
    found = changes(observed, desired, template_label)
    if found is not None:
        log.debug(found[0], owner=owner, **found[1])


def deleted(owner: str, reason: str, pods: list[Obj]) -> None:
    """Pods deleted on a decision (a Recreate rollout, failure recovery, a group recreated)."""
    log.debug(
        "pods deleted",
        owner=owner,
        reason=reason,
        pods=sorted(p["metadata"]["name"] for p in pods),
        roles=sorted({(p["metadata"].get("labels") or {}).get(names.ROLE_NAME, "") for p in pods}),
    )


def _replicas(workload: Obj) -> int | None:
    value = (workload.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) else None


def _instances(workload: Obj) -> str | None:
    return ((workload.get("metadata") or {}).get("annotations") or {}).get(INSTANCES)
