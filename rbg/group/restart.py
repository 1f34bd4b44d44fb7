"""Failure recovery of a RoleBasedGroup (`role.restartPolicy`): which pods to recreate after a container
restart or a failed pod, with upstream's per-scope exponential backoff and our bound on recreations.

Pure: the controller passes plain data on each reconcile and carries out the Decision. The bookkeeping lives
in the object's status (`status.restartStatus`, see to_status / from_status), never in process memory, so a
restarted operator resumes exactly where it was.

Scopes: "" is the whole group (RecreateRBGOnPodRestart); "<role>/<index>" one instance of a role with stable
pod identities (RecreateRoleInstanceOnPodRestart on a StatefulSet); "<role>/*" the pods of a role without
one (a Deployment's): such a pod comes back under a new name, so a record per name would never back off."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rbg.group import names
from rbg.lifecycle.observed import as_text, lookup, restart_of

RECREATE_GROUP = "RecreateRBGOnPodRestart"
RECREATE_INSTANCE = "RecreateRoleInstanceOnPodRestart"
LEADER_WORKER_SET = "LeaderWorkerSet"
ROLE_INSTANCE_SET = "RoleInstanceSet"  # an instance is several pods: recreated together (D42)
LWS_GROUP_INDEX = "leaderworkerset.sigs.k8s.io/group-index"
GROUP_SCOPE = ""
ANY_INSTANCE = "*"
STABLE_SECONDS = 600
RECREATING_GROUP = "RecreatingGroup"
RECREATING_INSTANCE = "ReCreateInstance"
LIMIT_REACHED = "RestartLimitReached"

Obj = dict[str, Any]
Event = tuple[str, str, str]


@dataclass(frozen=True)
class RolePolicy:
    role: str
    policy: str | None  # None / "None", RecreateRBGOnPodRestart, RecreateRoleInstanceOnPodRestart
    kind: str  # StatefulSet | Deployment | LeaderWorkerSet
    #: the role's rollout is in progress: a restart then is the rollout's business, not ours
    rolling: bool = False


@dataclass(frozen=True)
class Backoff:
    """Upstream's defaults; `max_restarts` is our bound (LWS KEP-820's maxGroupRestarts idea)."""

    base_seconds: int = 30
    max_seconds: int = 600
    max_restarts: int | None = None


@dataclass(frozen=True)
class RestartRecord:
    scope: str
    count: int
    last: float | None  # epoch seconds, whole (status keeps seconds)
    failed: bool = False
    trigger: str = ""


@dataclass(frozen=True)
class Bookkeeping:
    records: tuple[RestartRecord, ...] = ()
    #: uids of the pods deleted (or to delete) by the recreation in flight
    recreating: tuple[str, ...] = ()


@dataclass
class Decision:
    delete: list[Obj] = field(default_factory=list)
    bookkeeping: Bookkeeping = field(default_factory=Bookkeeping)
    events: list[Event] = field(default_factory=list)  # (Normal|Warning, reason, message)
    requeue_after: float | None = None
    restarting: bool = False
    failed: list[str] = field(default_factory=list)  # one message per scope marked failed


def _labels(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    labels = lookup(pod, "metadata", "labels")
    return labels if isinstance(labels, Mapping) else {}


def _name(pod: Mapping[str, Any]) -> str:
    return as_text(lookup(pod, "metadata", "name"))


def _uid(pod: Mapping[str, Any]) -> str:
    return as_text(lookup(pod, "metadata", "uid"))


def _deleting(pod: Mapping[str, Any]) -> bool:  # deletionTimestamp set
    return bool(lookup(pod, "metadata", "deletionTimestamp"))


def _index(pod: Mapping[str, Any]) -> str:
    labels = _labels(pod)
    for key in (LWS_GROUP_INDEX, names.ROLE_INSTANCE_INDEX, names.POD_INDEX):
        value = labels.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def instance_of(pod: Mapping[str, Any]) -> str:
    """The LWS group index, else the StatefulSet pod index, else the pod's name."""
    return _index(pod) or _name(pod)


def scope_of(pod: Mapping[str, Any]) -> str:
    """The instance scope of a pod: "<role>/<index>", or "<role>/*" for a pod without a stable index."""
    return f"{as_text(_labels(pod).get(names.ROLE_NAME))}/{_index(pod) or ANY_INSTANCE}"


def trigger_of(pod: Mapping[str, Any]) -> str | None:
    """Why the pod asks for a recreation (a failed pod, a restarted container), or None."""
    r = restart_of(pod)
    if r is None:
        return None
    name = _name(pod)
    if r.failed:
        return f"pod {name} failed (phase Failed{', reason ' + r.reason if r.reason else ''})"
    what = "init container" if r.init else "container"
    return f"pod {name} {what} {r.container} restarted (restartCount {r.count})"


def delay(backoff: Backoff, count: int) -> float:
    """Seconds to wait after the last recreation of a scope already recreated `count` times."""
    if count <= 0:
        return 0.0
    base, cap = max(backoff.base_seconds, 0), max(backoff.max_seconds, 0)
    return float(min(base * 2 ** min(count - 1, 256), cap))


def stable_seconds(backoff: Backoff) -> float:
    """A scope whose last recreation is this old starts afresh (count 0)."""
    return float(max(max(backoff.max_seconds, 0) * 2, STABLE_SECONDS))


def _whole(now: float) -> float:
    # status keeps seconds; rounding up keeps every wait at least its full delay
    try:
        return float(math.ceil(now))
    except (OverflowError, ValueError, TypeError):
        return 0.0


def _live(book: Bookkeeping, backoff: Backoff, now: float) -> dict[str, RestartRecord]:
    """The records still in force: a failed scope stays failed; a scope stable long enough starts afresh."""
    out: dict[str, RestartRecord] = {}
    for r in book.records or ():
        if not isinstance(r, RestartRecord) or r.scope in out:
            continue
        if not r.failed and (
            r.count <= 0 or (r.last is not None and now - r.last >= stable_seconds(backoff))
        ):
            continue
        out[r.scope] = r
    return out


def _subject(scope: str) -> str:
    return "the group" if scope == GROUP_SCOPE else f"role {scope.replace('/', ' instance ', 1)}"


def failed_message(record: RestartRecord) -> str:
    return (
        f"{record.trigger}; {_subject(record.scope)} recreated {record.count} times, "
        "the limit of restartPolicy: left for a person"
    )


def clear(book: Bookkeeping) -> Bookkeeping:
    """Forget every record (the spec generation changed); a recreation in flight goes on."""
    return Bookkeeping((), tuple(sorted(set(book.recreating or ()))))


@dataclass
class _Pass:
    backoff: Backoff
    now: float
    records: dict[str, RestartRecord]
    events: list[Event] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def failed(self, scope: str) -> bool:
        record = self.records.get(scope)
        return record is not None and record.failed

    def attempt(self, scope: str, trigger: str, reason: str, what: str) -> bool:
        """True: the scope recreates now (recorded, with its event); False: it waits, or is (now) failed."""
        record = self.records.get(scope)
        if record is not None and record.failed:
            return False
        count = record.count if record is not None else 0
        limit = self.backoff.max_restarts
        if limit is not None and count + 1 > limit:
            failed = RestartRecord(scope, count, record.last if record else None, True, trigger)
            self.records[scope] = failed
            self.events.append(("Warning", LIMIT_REACHED, failed_message(failed)))
            return False
        if record is not None and record.last is not None:
            left = record.last + delay(self.backoff, count) - self.now
            if left > 0:
                self.waits.append(left)
                return False
        self.records[scope] = RestartRecord(scope, count + 1, _whole(self.now), False, trigger)
        self.events.append(("Warning", reason, f"{trigger}: recreating {what} (recreation {count + 1})"))
        return True

    def finish(self, delete: list[Mapping[str, Any]], recreating: set[str] | None = None) -> Decision:
        uids = tuple(sorted(recreating if recreating is not None else {_uid(x) for x in delete} - {""}))
        scopes = sorted(self.records)
        return Decision(
            delete=[x if isinstance(x, dict) else dict(x) for x in delete],
            bookkeeping=Bookkeeping(tuple(self.records[s] for s in scopes), uids),
            events=self.events,
            requeue_after=min(self.waits) if self.waits else None,
            restarting=bool(uids),
            failed=[failed_message(self.records[s]) for s in scopes if self.records[s].failed],
        )


def decide(
    pods: Sequence[Mapping[str, Any]] | None,
    policies: Sequence[RolePolicy] | None,
    backoff: Backoff,
    book: Bookkeeping | None,
    now: float,
) -> Decision:
    """What to recreate now, given the group's pods, each role's policy and the bookkeeping from status."""
    book = book if isinstance(book, Bookkeeping) else Bookkeeping()
    listed = sorted((x for x in pods or () if isinstance(x, Mapping)), key=lambda x: (_name(x), _uid(x)))
    p = _Pass(backoff, now, _live(book, backoff, now))
    in_flight = set(book.recreating or ()) & ({_uid(x) for x in listed} - {""})
    if in_flight:  # (re)issue the deletes of the recreation in flight; nothing new starts meanwhile
        return p.finish([x for x in listed if _uid(x) in in_flight and not _deleting(x)], in_flight)

    by_role: dict[str, RolePolicy] = {}
    for rp in policies or ():
        if isinstance(rp, RolePolicy):
            by_role.setdefault(rp.role, rp)
    group_trigger: str | None = None
    instances: dict[str, list[tuple[Mapping[str, Any], str]]] = {}
    for x in listed:
        role = by_role.get(as_text(_labels(x).get(names.ROLE_NAME)))
        if role is None or role.rolling or _deleting(x) or (text := trigger_of(x)) is None:
            continue
        if role.policy == RECREATE_GROUP and group_trigger is None:
            group_trigger = text
        elif role.policy == RECREATE_INSTANCE and role.kind != LEADER_WORKER_SET:
            instances.setdefault(scope_of(x), []).append((x, text))

    if group_trigger is not None and not p.failed(GROUP_SCOPE):
        # the group scope wins: while it recreates or waits, no instance is recreated on its own (a failed
        # group scope, left for a person, does not hold the instance scopes back)
        everyone = [x for x in listed if not _deleting(x)]
        if p.attempt(GROUP_SCOPE, group_trigger, RECREATING_GROUP, f"all {len(everyone)} pods of the group"):
            return p.finish(everyone)
        if not p.failed(GROUP_SCOPE):
            return p.finish([])
    whole = {rp.role for rp in by_role.values() if rp.kind == ROLE_INSTANCE_SET}
    delete: list[Mapping[str, Any]] = []
    for scope in sorted(instances):
        of_scope = [x for x, _ in instances[scope]]
        if scope.partition("/")[0] in whole:  # every pod of the instance, the triggering ones first
            rest = [x for x in listed if scope_of(x) == scope and not _deleting(x) and x not in of_scope]
            of_scope += rest
        shown = f"pod{'s' if len(of_scope) > 1 else ''} {', '.join(_name(x) for x in of_scope)}"
        if p.attempt(
            scope, instances[scope][0][1], RECREATING_INSTANCE, f"{shown} of role {scope.partition('/')[0]}"
        ):
            delete.extend(of_scope)
    return p.finish(sorted(delete, key=lambda x: (_name(x), _uid(x))))


# --- status.restartStatus ---


def _format_time(t: float | None) -> str | None:
    if t is None:
        return None
    try:
        return datetime.fromtimestamp(math.floor(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError, TypeError):
        return None


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.strip())
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return t.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def to_status(book: Bookkeeping) -> Obj:
    """camelCase JSON for status.restartStatus."""
    records: list[Obj] = []
    for r in sorted(book.records, key=lambda r: r.scope):
        entry: Obj = {"scope": r.scope, "count": r.count, "failed": r.failed, "trigger": r.trigger}
        if (last := _format_time(r.last)) is not None:
            entry["lastRestartTime"] = last
        records.append(entry)
    return {"recreating": sorted(set(book.recreating)), "records": records}


def from_status(status: Any) -> Bookkeeping:
    """The bookkeeping from status.restartStatus; entries that do not parse are dropped, never raised on."""
    if not isinstance(status, Mapping):
        return Bookkeeping()
    raw_uids = status.get("recreating")
    uids = {u for u in raw_uids if isinstance(u, str) and u} if isinstance(raw_uids, list) else set()
    records: dict[str, RestartRecord] = {}
    raw_records = status.get("records")
    for e in raw_records if isinstance(raw_records, list) else ():
        scope, count = lookup(e, "scope"), lookup(e, "count")
        if not isinstance(scope, str) or scope in records:
            continue
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            continue
        failed = lookup(e, "failed")
        trigger = as_text(lookup(e, "trigger"))
        last = _parse_time(lookup(e, "lastRestartTime"))
        records[scope] = RestartRecord(scope, count, last, failed is True, trigger)
    return Bookkeeping(tuple(records[s] for s in sorted(records)), tuple(sorted(uids)))
