"""Leader/worker groups on the planner (KEP-162 Exclusive and Colocated, D29): a group is a batch.

A leader of a LeaderWorkerSet with Exclusive or Colocated placement is created gated (the LWS pod
webhook). Its workers do not exist yet: the LWS controller makes their StatefulSet, pinned to the
leader's domain, once the leader is bound. So a group is planned from its leader and the set's worker
template: the planner finds a domain (and a node per pod) that holds the leader and its size-1
workers, the leader is released there, pinned to its planned node, and the workers' capacity is
reserved on their planned nodes until they exist. A leader never binds where its workers cannot follow.

Exclusive: no other group's pod (any pod carrying another group-key in the namespace, the same pods the
leader's anti-affinity guard names) may be in the domain; Colocated: groups may share a domain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rbg.coordination.planner import Cluster, Placed, PodNeeds
from rbg.coordination.resources import HOSTNAME, LWS_GATE, PLANNED_WORKERS, gated, node_info, pod_needs
from rbg.leaderworker import labels
from rbg.quantity import quantity

Obj = dict[str, Any]
Used = Mapping[str, Mapping[str, Decimal]]


@dataclass
class GroupDecision:
    """What one pass does for one LeaderWorkerSet's gated leaders."""

    release: list[tuple[Obj, str, str | None]] = field(default_factory=list)  # (leader, domain, host)
    #: leader name -> the value of its PLANNED_WORKERS annotation (written with its release)
    plans: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)  # leader name -> why it is not placed
    assigned: dict[str, str] = field(default_factory=dict)  # leader name -> its planned node


def leaders_waiting(pods: Sequence[Obj], lws: str) -> list[Obj]:
    """The set's leaders still gated, in group order."""
    out = [
        p
        for p in pods
        if (p["metadata"].get("labels") or {}).get(labels.NAME) == lws
        and (p["metadata"].get("labels") or {}).get(labels.WORKER_INDEX) == "0"
        and gated(p, LWS_GATE)
        and not p["metadata"].get("deletionTimestamp")
    ]
    return sorted(out, key=lambda p: labels.ordinal(p["metadata"]["name"]) or 0)


def _domain(pod: Obj, key: str, node_labels: Mapping[str, Mapping[str, str]]) -> str | None:
    spec = pod.get("spec") or {}
    node = spec.get("nodeName")
    if node:
        return node_labels.get(node, {}).get(key)
    if spec.get("schedulingGates"):
        return None  # a gated pod holds no domain yet
    return (spec.get("nodeSelector") or {}).get(key)


def others(pods: Sequence[Obj], key: str, nodes: Sequence[Obj], mine: str) -> set[str]:
    """Domains where pods of other leader/worker groups of the namespace run or are pinned."""
    node_labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in nodes}
    out = set()
    for p in pods:
        group = (p["metadata"].get("labels") or {}).get(labels.GROUP_KEY)
        if group and group != mine and not p["metadata"].get("deletionTimestamp"):
            domain = _domain(p, key, node_labels)
            if domain is not None:
                out.add(domain)
    return out


def decide_groups(
    lws: Obj,
    placement_type: str,
    key: str,
    leaders: Sequence[Obj],
    namespace_pods: Sequence[Obj],
    nodes: Sequence[Obj],
    used: Used,
) -> GroupDecision:
    """Where each gated leader goes, with room for its workers; or why it waits."""
    lwt = (lws.get("spec") or {}).get("leaderWorkerTemplate") or {}
    size = int(lwt.get("size") or 1)
    worker_spec = (lwt.get("workerTemplate") or {}).get("spec") or {}
    infos = [node_info(n) for n in nodes]
    hosts = {i.name: i.labels.get(HOSTNAME) for i in infos}
    index = Cluster(infos, used)  # one planner index for the pass, each group's room taken
    out = GroupDecision()
    taken: set[str] = set()
    for leader in leaders:
        name = leader["metadata"]["name"]
        mine = (leader["metadata"].get("labels") or {}).get(labels.GROUP_KEY, "")
        workers = [
            pod_needs({"metadata": {"name": f"{name}-{w}"}, "spec": worker_spec}) for w in range(1, size)
        ]
        needs: list[PodNeeds] = [pod_needs(leader), *workers]
        avoid: set[str] = set()
        if placement_type == "Exclusive":
            avoid = others(namespace_pods, key, nodes, mine) | taken
        group = labels.ordinal(name) or 0
        result = index.place(needs, [key], group, avoid)
        if not isinstance(result, Placed):
            out.waiting[name] = f"group {group}: {result.reason}"
            continue
        node = result.nodes[name]
        out.release.append((leader, result.domain, hosts.get(node)))
        out.assigned[name] = node
        taken.add(result.domain)
        index.take(result.nodes, needs)
        if workers:
            out.plans[name] = json.dumps(
                {
                    "nodes": [result.nodes[w.name] for w in workers],
                    "requests": {
                        k: format(v.normalize(), "f") for k, v in sorted(workers[0].requests.items())
                    },
                },
                separators=(",", ":"),
            )
    return out


class Reservations:
    """The room of workers planned with their leader and not created yet, kept pod event by pod event
    from the leaders' PLANNED_WORKERS annotations and the workers that exist: it lives in the API, so an
    operator restart or a slow leader (LeaderReady) never gives it away, and it ends as its workers
    appear or its leader goes."""

    def __init__(self) -> None:
        self._plans: dict[str, tuple[str, list[str], dict[str, Decimal]]] = {}  # leader uid -> key, nodes
        self._workers: dict[str, set[str]] = {}  # namespace/group-key -> uids of workers that exist
        self._expected: dict[str, tuple[str, list[str], dict[str, Decimal], float]] = {}

    @staticmethod
    def _group(pod: Obj) -> str | None:
        pod_labels = pod["metadata"].get("labels") or {}
        key = pod_labels.get(labels.GROUP_KEY)
        return f"{pod['metadata'].get('namespace', '')}/{key}" if key else None

    def observe(self, pod: Obj | None, old: Obj | None = None) -> None:
        """An informer event: ADDED (pod, None), MODIFIED (pod, old), DELETED (None, old)."""
        gone = pod is None or bool(pod["metadata"].get("deletionTimestamp"))
        target = old if pod is None else pod
        if target is None:
            return
        uid = target["metadata"].get("uid", "")
        group = self._group(target)
        worker = (target["metadata"].get("labels") or {}).get(labels.WORKER_INDEX) not in (None, "0")
        if worker and group is not None:
            members = self._workers.setdefault(group, set())
            (members.discard if gone else members.add)(uid)
            if not members:
                del self._workers[group]
            return
        plan = parse_plan((target["metadata"].get("annotations") or {}).get(PLANNED_WORKERS))
        if gone or plan is None or group is None:
            self._plans.pop(uid, None)
            if gone:
                self._expected.pop(uid, None)
            return
        self._plans[uid] = (group, *plan)
        self._expected.pop(uid, None)  # the cache caught up

    def expect(self, uid: str, group: str, value: str, until: float) -> None:
        """A leader released by this process, whose annotation the cache does not show yet."""
        plan = parse_plan(value)
        if plan is not None:
            self._expected[uid] = (group, *plan, until)

    def drop(self, uid: str) -> None:
        """Forget an expectation (the release failed: nothing is planned for its workers)."""
        self._expected.pop(uid, None)

    def room(self, now: float) -> list[tuple[str, dict[str, Decimal]]]:
        """(node, requests) for each worker planned and not created yet."""
        for uid in [u for u, e in self._expected.items() if e[3] < now]:
            del self._expected[uid]
        plans = [*self._plans.values(), *((g, n, r) for g, n, r, _ in self._expected.values())]
        out = []
        for group, nodes, req in plans:
            missing = len(nodes) - len(self._workers.get(group, ()))
            out += [(node, req) for node in nodes[: max(0, missing)]]
        return out


def parse_plan(value: str | None) -> tuple[list[str], dict[str, Decimal]] | None:
    """The planned nodes and one worker's requests of a PLANNED_WORKERS value, or None."""
    if not value:
        return None
    try:
        data = json.loads(value)
        nodes = [str(n) for n in data["nodes"]]
        req = {str(k): q for k, v in data["requests"].items() if (q := quantity(v)) is not None}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return nodes, req
