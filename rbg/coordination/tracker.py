"""Phases of batches over time: when a wait turns Stuck, which events to tell, the status to write.

Pure, driven by a clock: the controller passes the decision of this pass, the status it wrote before
(read back from the API, so a restart or a failover resumes every timer where it was, D27) and the time.
Each batch's `since` is when it entered its present phase in its present domain; a batch that waits for
something that may not come (no domain, no room, a member the scheduler refuses) for longer than the
coordination's batchTimeoutSeconds is Stuck, with the reason, and a Warning event is told once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from rbg.coordination.batches import EXCLUSIVE
from rbg.coordination.release import Decision

Obj = dict[str, Any]


def rfc3339(now: float) -> str:
    return datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(stamp: str | None) -> float | None:
    try:
        return datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass
class Tracked:
    status: Obj  # the coordinationStatus entry
    events: list[tuple[Literal["Normal", "Warning"], str, str]] = field(default_factory=list)
    wake: float | None = None  # seconds until a wait turns Stuck


def track(name: str, key: str, d: Decision, previous: Obj, now: float, timeout: float) -> Tracked:
    """The coordination's status and events after this pass; `key`: its topology key; `previous`: its
    status entry before."""
    before = {b.get("index"): b for b in previous.get("batches") or []}
    out = Tracked({})
    entries: list[Obj] = []
    for b in d.batches:
        prev = before.get(b.index) or {}
        same = (
            bool(prev)
            and prev.get("domain") == b.domain
            and (prev.get("phase") == b.phase or (prev.get("phase") == "Stuck" and b.phase != "Bound"))
        )  # a batch that stays in its phase keeps its `since`: no status write at idle
        since = prev.get("since") if same and _seconds(prev.get("since")) is not None else rfc3339(now)
        phase = b.phase
        if b.waiting:
            left = timeout - (now - (_seconds(since) or now))
            if left <= 0:
                phase = "Stuck"
            else:
                out.wake = left if out.wake is None else min(out.wake, left)
        if phase == "Stuck" and prev.get("phase") != "Stuck":
            what = "has no domain" if b.domain is None else f"is not bound in {b.domain}"
            out.events.append(
                ("Warning", "BatchStuck", f"batch {b.index} of coordination {name} {what}: {b.message}")
            )
        if phase == "Bound" and prev and prev.get("phase") != "Bound":
            msg = f"batch {b.index} of coordination {name}: every pod bound in {b.domain}"
            out.events.append(("Normal", "BatchBound", msg))
        entry: Obj = {"index": b.index, "phase": phase, "since": since}
        if b.domain:
            entry["domain"] = b.domain
        if b.message:
            entry["message"] = b.message
        entries.append(entry)
    for index, domain in d.planned:
        out.events.append(
            ("Normal", "BatchPlanned", f"batch {index} of coordination {name} planned on {key}={domain}")
        )
    for index, domain, why in d.moved:
        msg = f"batch {index} of coordination {name} moves whole from {key}={domain}: {why}"
        out.events.append(("Warning", "BatchMoved", msg))
    phases = [e["phase"] for e in entries]
    if phases and all(p == "Bound" for p in phases):
        phase = "Completed"
    elif "Stuck" in phases:
        phase = "Stuck"
    elif any(p in ("Planned", "Bound") for p in phases):
        phase = "InProgress"
    else:
        phase = "Pending"
    message = next((f"batch {e['index']}: {e['message']}" for e in entries if e.get("message")), "")
    keep = previous.get("phase") == phase and previous.get("lastTransitionTime")
    out.status = {
        "name": name,
        "type": "ExclusiveTopology" if name == EXCLUSIVE else "AffinityScheduling",
        "phase": phase,
        "totalBatches": len(entries),
        "placedBatches": sum(1 for e in entries if e.get("domain")),
        "batches": entries,
        "message": message,
        "lastTransitionTime": previous["lastTransitionTime"] if keep else rfc3339(now),
    }
    return out
