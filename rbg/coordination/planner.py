"""The placement planner: a topology domain that can hold a whole batch of pods, or why none can.

Pure: nodes, the resources already used on them, the batch's pods and the topology key in; a domain and a
node for every pod out. The scheduler does the binding; the planner only picks a domain where a binding
of every pod exists, so a batch never strands half its pods (the flaw of placing by affinity alone: the
first pod picks a domain that may not hold the rest).

- Capacity: a node's allocatable minus the requests of the pods bound or assigned to it (every pod also
  takes one of `pods`). Nodes that are not schedulable (not Ready, cordoned) count for nothing.
- Feasibility of a pod on a node: its nodeSelector, required node affinity (matchExpressions on labels)
  and NoSchedule/NoExecute taints against its tolerations. Pod (anti-)affinity, ports and volumes are not
  modelled (as in Kueue's TAS).
- Exact within a domain: the pods are packed onto the domain's nodes by a depth-first search (pods with
  the fewest candidate nodes first, identical nodes tried once), so a domain is found whenever one exists.
- Best fit: of the domains that hold the batch, the one with the least free primary resource left (the
  first of nvidia.com/gpu, cpu, memory the batch requests), then the fewest nodes, then the domain value in
  lexicographic order — a batch takes the tightest hole and keeps large domains free for large batches.
- `avoid`: domains other batches of the same coordination use; a batch never shares one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Resources = Mapping[str, Decimal]
PRIMARY = ("nvidia.com/gpu", "cpu", "memory")
MAX_STEPS = 50_000  # search steps per plan (all domains): far above what batches of tens of pods need


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str]
    allocatable: Resources
    taints: tuple[Mapping[str, Any], ...] = ()
    schedulable: bool = True


@dataclass(frozen=True)
class PodNeeds:
    name: str
    requests: Resources
    tolerations: tuple[Mapping[str, Any], ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    #: required node affinity: nodeSelectorTerms (any term) of matchExpressions (all of them)
    affinity_terms: tuple[tuple[Mapping[str, Any], ...], ...] = ()


@dataclass(frozen=True)
class Placed:
    domain: str
    nodes: Mapping[str, str]  # pod name -> node name


@dataclass(frozen=True)
class Unplaceable:
    reason: str


def _with_pod(requests: Resources) -> dict[str, Decimal]:
    out = dict(requests)
    out["pods"] = out.get("pods", Decimal(0)) + 1
    return out


def free(nodes: Iterable[NodeInfo], used: Mapping[str, Resources]) -> dict[str, dict[str, Decimal]]:
    """Free resources per schedulable node: allocatable minus what is used there."""
    out: dict[str, dict[str, Decimal]] = {}
    for n in nodes:
        if not n.schedulable:
            continue
        have = dict(n.allocatable)
        for res, amount in (used.get(n.name) or {}).items():
            have[res] = have.get(res, Decimal(0)) - amount
        out[n.name] = have
    return out


def _tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t.get("key") != taint.get("key"):
            continue
        if op == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _expression(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    key, op, values = str(expr.get("key")), expr.get("operator"), list(expr.get("values") or [])
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            have, limit = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > limit if op == "Gt" else have < limit
    return False


def feasible(pod: PodNeeds, node: NodeInfo) -> bool:
    """The pod may run on the node (selector, required node affinity, taints), capacity aside."""
    if any(node.labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    if pod.affinity_terms and not any(
        all(_expression(node.labels, e) for e in term) for term in pod.affinity_terms
    ):
        return False
    return all(
        taint.get("effect") not in ("NoSchedule", "NoExecute") or _tolerates(pod.tolerations, taint)
        for taint in node.taints
    )


def _fits(need: Mapping[str, Decimal], have: Mapping[str, Decimal]) -> bool:
    return all(amount <= have.get(res, Decimal(0)) for res, amount in need.items() if amount > 0)


class _Budget:
    """Search steps left for one `place()` call, shared by its domains."""

    def __init__(self, steps: int) -> None:
        self.left = steps


def _pack(
    pods: Sequence[PodNeeds],
    nodes: Sequence[NodeInfo],
    have: dict[str, dict[str, Decimal]],
    budget: _Budget | None = None,
) -> dict[str, str] | None:
    """A node for every pod within these nodes, or None (exact unless the step budget runs out)."""
    budget = budget or _Budget(MAX_STEPS)
    needs = {p.name: _with_pod(p.requests) for p in pods}
    # quick refusal: the domain's total free capacity cannot hold the batch
    for res in {r for need in needs.values() for r in need}:
        total = sum((needs[p.name].get(res, Decimal(0)) for p in pods), Decimal(0))
        if total > sum((have.get(n.name, {}).get(res, Decimal(0)) for n in nodes), Decimal(0)):
            return None
    candidates = {p.name: [n for n in nodes if feasible(p, n)] for p in pods}
    if any(not c for c in candidates.values()):
        return None
    order = sorted(
        pods, key=lambda p: (len(candidates[p.name]), [-v for v in needs[p.name].values()], p.name)
    )
    # which pods (by position in `order`) each node admits, computed once
    admits = {n.name: 0 for n in nodes}
    for i, p in enumerate(order):
        for n in candidates[p.name]:
            admits[n.name] |= 1 << i
    room = {n.name: dict(have.get(n.name, {})) for n in nodes}
    chosen: dict[str, str] = {}

    def dfs(i: int) -> bool:
        if i == len(order):
            return True
        pod = order[i]
        need = needs[pod.name]
        rest = ~((1 << i) - 1)  # the pods still to place
        tried: set[tuple[tuple[tuple[str, Decimal], ...], int]] = set()
        for node in candidates[pod.name]:
            budget.left -= 1
            if budget.left < 0:
                return False
            left = room[node.name]
            if not _fits(need, left):
                continue
            # nodes alike in what is left (and in what they admit) lead to the same outcome: try one
            signature = (tuple(sorted(left.items())), admits[node.name] & rest)
            if signature in tried:
                continue
            tried.add(signature)
            for res, amount in need.items():
                left[res] = left.get(res, Decimal(0)) - amount
            chosen[pod.name] = node.name
            if dfs(i + 1):
                return True
            for res, amount in need.items():
                left[res] += amount
            del chosen[pod.name]
        return False

    return dict(chosen) if dfs(0) else None


def _primary(pods: Sequence[PodNeeds]) -> str:
    for res in PRIMARY:
        if any(p.requests.get(res, Decimal(0)) > 0 for p in pods):
            return res
    return "pods"


def _fmt(amount: Decimal) -> str:
    text = format(amount.normalize(), "f")
    return text


def place(
    nodes: Sequence[NodeInfo],
    used: Mapping[str, Resources],
    pods: Sequence[PodNeeds],
    topology_key: str,
    batch: int,
    avoid: Iterable[str] = (),
) -> Placed | Unplaceable:
    """The best-fit domain for the whole batch, with a node per pod; or the reason none can hold it."""
    have = free(nodes, used)
    avoided = set(avoid)
    domains: dict[str, list[NodeInfo]] = {}
    for n in sorted(nodes, key=lambda n: n.name):
        value = n.labels.get(topology_key)
        if value is not None and n.name in have:
            domains.setdefault(value, []).append(n)
    if not domains:
        return Unplaceable(f"no schedulable node has the label {topology_key}")
    primary = _primary(pods)
    best: tuple[tuple[Any, ...], Placed] | None = None
    budget = _Budget(MAX_STEPS)  # one budget for the whole call: a plan never blocks for long
    for value, members in domains.items():
        if value in avoided:
            continue
        packed = _pack(pods, members, have, budget)
        if packed is None:
            continue
        need = (
            sum((p.requests.get(primary, Decimal(0)) for p in pods), Decimal(0))
            if primary != "pods"
            else Decimal(len(pods))
        )
        left = sum((have[n.name].get(primary, Decimal(0)) for n in members), Decimal(0)) - need
        rank = (left, len(members), value)
        if best is None or rank < best[0]:
            best = (rank, Placed(value, packed))
    if best is not None:
        return best[1]
    return Unplaceable(_why(domains, avoided, have, pods, topology_key, batch))


def _why(
    domains: Mapping[str, list[NodeInfo]],
    avoided: set[str],
    have: Mapping[str, Mapping[str, Decimal]],
    pods: Sequence[PodNeeds],
    key: str,
    batch: int,
) -> str:
    open_ = {v: m for v, m in domains.items() if v not in avoided}
    taken = f" ({len(domains) - len(open_)} taken by other batches)" if avoided & set(domains) else ""
    if not open_:
        return f"every {key} domain is taken by another batch{taken}; batch {batch} needs one of its own"
    totals: dict[str, Decimal] = {}
    for p in pods:
        for res, amount in _with_pod(p.requests).items():
            totals[res] = totals.get(res, Decimal(0)) + amount
    order = [r for r in PRIMARY if r in totals] + sorted(r for r in totals if r not in PRIMARY)
    for res in order:
        room = {v: sum((have[n.name].get(res, Decimal(0)) for n in m), Decimal(0)) for v, m in open_.items()}
        largest = max(room, key=lambda v: (room[v], v))
        if room[largest] < totals[res]:
            return (
                f"no {key} domain has {_fmt(totals[res])} free {res} for batch {batch}{taken}; "
                f"largest free: {largest} with {_fmt(max(room[largest], Decimal(0)))}"
            )
    admitting = [v for v, m in open_.items() if all(any(feasible(p, n) for n in m) for p in pods)]
    if not admitting:
        return (
            f"no {key} domain has nodes that admit every pod of batch {batch} (node selector, node affinity "
            f"or taints){taken}"
        )
    primary = _primary(pods)
    room = {v: sum((have[n.name].get(primary, Decimal(0)) for n in open_[v]), Decimal(0)) for v in admitting}
    largest = max(room, key=lambda v: (room[v], v))
    return (
        f"no {key} domain can fit the {len(pods)} pods of batch {batch} onto its nodes (free capacity is "
        f"split across nodes){taken}; largest free {primary}: {largest} with {_fmt(room[largest])}"
    )
