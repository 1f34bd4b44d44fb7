"""What every kind reads of an observed object the same way: whether a workload's status describes its
current spec, whether a pod is ready, how often its containers restarted."""

from __future__ import annotations

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
