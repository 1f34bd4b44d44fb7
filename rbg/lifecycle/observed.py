"""What every kind reads of an observed object the same way: whether a workload's status describes its
current spec, whether a pod is ready, how often its containers restarted, and whether it restarted or
failed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


def caught_up(workload: Obj) -> bool:
    """The workload's status describes its current spec (observedGeneration has reached generation)."""
    status = workload.get("status") or {}
    generation = int((workload.get("metadata") or {}).get("generation") or 0)
    return int(status.get("observedGeneration") or 0) >= generation


def pod_ready(pod: Obj | None) -> bool:
    """Running, Ready and not being deleted."""
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return False
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
    )


def restarts(pod: Obj) -> int:
    """Container restarts of the pod, init containers (native sidecars) included."""
    status = pod.get("status") or {}
    return sum(
        int(c.get("restartCount") or 0)
        for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    )


@dataclass(frozen=True)
class Restart:
    """Why a pod reads as restarted: it failed (phase Failed, with its status.reason), or a container of it
    restarted (its name, whether it is an init container, its restartCount)."""

    failed: bool
    reason: str = ""
    container: str = ""
    init: bool = False
    count: int = 0


def lookup(obj: Any, *path: str) -> Any:
    """The value at `path` in nested mappings, None where anything on the way is missing or no mapping
    (what a pod read from an informer may be)."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def as_text(value: Any) -> str:
    """`value` when it is a string, else ""."""
    return value if isinstance(value, str) else ""


def restart_of(pod: Mapping[str, Any]) -> Restart | None:
    """The pod failed, or a container of it (init containers, read first, included) restarted; None when
    neither. Deletion and the phase a policy acts in are each policy's own. Any shape is read (never
    raised on): a restartCount that is not a whole number is no restart."""
    status = lookup(pod, "status")
    if lookup(status, "phase") == "Failed":
        return Restart(failed=True, reason=as_text(lookup(status, "reason")))
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        statuses = lookup(status, key)
        if not isinstance(statuses, list | tuple):
            continue
        for cs in statuses:
            count = lookup(cs, "restartCount")
            if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                return Restart(failed=False, container=as_text(lookup(cs, "name")), init=init, count=count)
    return None
