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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rbg.coordination.planner import Cluster, Placed, PodNeeds
from rbg.coordination.resources import HOSTNAME, gated, node_info, pod_needs
from rbg.leaderworker import labels

Obj = dict[str, Any]
Used = Mapping[str, Mapping[str, Decimal]]


@dataclass
class GroupDecision:
    """What one pass does for one LeaderWorkerSet's gated leaders."""

    release: list[tuple[Obj, str, str | None]] = field(default_factory=list)  # (leader, domain, host)
    #: leader uid -> the nodes (and requests) its workers were planned on, held until they exist
    reserve: dict[str, list[tuple[str, dict[str, Decimal]]]] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)  # leader name -> why it is not placed
    assigned: dict[str, str] = field(default_factory=dict)  # leader name -> its planned node


def leaders_waiting(pods: Sequence[Obj], lws: str) -> list[Obj]:
    """The set's leaders still gated, in group order."""
    out = [
        p
        for p in pods
        if (p["metadata"].get("labels") or {}).get(labels.NAME) == lws
        and (p["metadata"].get("labels") or {}).get(labels.WORKER_INDEX) == "0"
        and gated(p)
        and not p["metadata"].get("deletionTimestamp")
    ]
    return sorted(out, key=lambda p: labels.ordinal(p["metadata"]["name"]) or 0)


def _domain(pod: Obj, key: str, node_labels: Mapping[str, Mapping[str, str]]) -> str | None:
    spec = pod.get("spec") or {}
    node = spec.get("nodeName")
    if node:
        return node_labels.get(node, {}).get(key)
    if gated(pod):
        return None
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
        reserved = [(result.nodes[n.name], dict(n.requests)) for n in needs if n.name != name]
        if reserved:
            out.reserve[leader["metadata"].get("uid", "")] = reserved
    return out
