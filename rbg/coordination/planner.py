"""The placement planner: a topology domain that can hold a whole batch of pods, or why none can.

Pure: nodes, the resources used on them, the batch's pods and the topology keys in; a domain and a node
per pod out. The scheduler binds; the planner only picks a domain where a binding of every pod exists,
so a batch never strands half its pods (placing by affinity alone lets the first pod pick a domain that
may not hold the rest).

- Capacity: allocatable minus the requests of the pods bound or assigned (each also takes one of `pods`);
  nodes not schedulable count for nothing. A pod fits when each resource it requests (> 0) is free, as
  in the scheduler's NodeResourcesFit. Feasibility: rbg.coordination.resources.feasible (nodeSelector,
  required node affinity, taints; pod affinity, ports and volumes are not modelled, as in Kueue's TAS).
- Best fit: of the domains that hold the batch, the one with the least free primary resource left (the
  first of nvidia.com/gpu, cpu, memory the batch requests, else pods), then the fewest nodes, then the
  domain value in lexicographic order. The rank does not depend on the packing, so domains are packed in
  rank order and the first that holds the batch is the answer; the others are never packed.
- Exact within a domain, up to a budget (rbg.coordination.packing). Each domain has its own
  (`domain_steps`), the call one over all domains and keys (`call_steps`); once the call's is spent,
  each domain left still gets its greedy first descent, so an easy domain is found after any number of
  hard ones. A refusal says in how
  many domains the search gave up instead of claiming that none can hold the batch.
- `Cluster`, the index of one pass: nodes by domain per key; free capacity per node as ints in a fixed
  unit per resource (its finest decimal step seen, e.g. milli-CPU after "500m"); per-domain totals for
  the quick refusal; feasibility per pod constraints; domain states refuted for a batch shape. `take()`
  counts a placed batch for the next plans. `place()` plans one batch on an index of its own.
- `avoid`: domains other batches use; a batch never shares one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rbg.coordination.packing import pack
from rbg.coordination.resources import (
    NodeInfo,
    PodNeeds,
    Resources,
    constraints_key,
    exponent,
    feasible,
    free,
    units,
)

__all__ = ["Cluster", "NodeInfo", "Placed", "PodNeeds", "Unplaceable", "feasible", "free", "place"]

PRIMARY = ("nvidia.com/gpu", "cpu", "memory")
DOMAIN_STEPS = 10_000  # search steps per domain (~20 ms): far above what batches of tens of pods need
CALL_STEPS = 50_000  # per call, over all domains and keys (beyond it: one greedy descent per domain)


@dataclass(frozen=True)
class Placed:
    domain: str
    nodes: Mapping[str, str]  # pod name -> node name
    key: str = ""  # the topology key whose domain it is
    #: domains ranked before it whose search gave up (step budget): when > 0, maybe not the best fit
    gave_up: int = 0


@dataclass(frozen=True)
class Unplaceable:
    reason: str


def _fmt(n: int, exp: int) -> str:
    return format(Decimal(n).scaleb(exp).normalize(), "f")


def _needs(pod: PodNeeds) -> dict[str, Decimal]:
    """What the pod takes of a node: the resources it requests (> 0) and one pod."""
    need = {r: v for r, v in pod.requests.items() if v > 0 and r != "pods"}
    need["pods"] = pod.requests.get("pods", Decimal(0)) + 1
    return need


class _Layer:
    """The domains of one topology key: members, per-resource totals (raw and of positive free room)."""

    def __init__(self, key: str, nodes: Sequence[NodeInfo], free_: Mapping[str, list[int]]) -> None:
        self.values = sorted({n.labels[key] for n in nodes if key in n.labels})
        self.pos = {v: d for d, v in enumerate(self.values)}
        self.of = [self.pos[n.labels[key]] if key in n.labels else -1 for n in nodes]
        self.members: list[list[int]] = [[] for _ in self.values]
        for x, d in enumerate(self.of):
            if d >= 0:
                self.members[d].append(x)
        self.raw: dict[str, list[int]] = {}
        self.room: dict[str, list[int]] = {}
        for res, column in free_.items():
            self.raw[res] = [sum(column[x] for x in m) for m in self.members]
            self.room[res] = [sum(max(column[x], 0) for x in m) for m in self.members]
        self.admits: dict[str, list[bool]] = {}  # constraints -> some member admits them, per domain


class _Batch:
    """A batch's pods as the search reads them: shapes (constraints and needs alike), in fixed units."""

    def __init__(self, pods: Sequence[PodNeeds], exp: Mapping[str, int]) -> None:
        needs = [{r: units(v, exp[r]) for r, v in _needs(p).items()} for p in pods]
        self.rel = sorted({r for need in needs for r in need})
        self.total = [sum(need.get(r, 0) for need in needs) for r in self.rel]
        shapes: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        for i, (p, need) in enumerate(zip(pods, needs, strict=True)):
            shapes.setdefault((constraints_key(p), tuple(need.get(r, 0) for r in self.rel)), []).append(i)
        self.shapes = sorted(shapes)  # canonical order: (constraints, need vector)
        self.members = [sorted(shapes[s], key=lambda i: pods[i].name) for s in self.shapes]
        self.pods = list(pods)
        self.sig = (
            tuple(self.rel),
            tuple((s, len(m)) for s, m in zip(self.shapes, self.members, strict=True)),
        )
        self.primary = next((r for r in PRIMARY if any(p.requests.get(r, 0) > 0 for p in pods)), "pods")


class Cluster:
    """The capacity index of one pass; `place()` a batch, `take()` what was placed."""

    def __init__(
        self,
        nodes: Iterable[NodeInfo],
        used: Mapping[str, Resources],
        *,
        domain_steps: int = DOMAIN_STEPS,
        call_steps: int = CALL_STEPS,
    ) -> None:
        self.nodes = sorted((n for n in nodes if n.schedulable), key=lambda n: n.name)
        self.domain_steps, self.call_steps = domain_steps, call_steps
        self._at = {n.name: x for x, n in enumerate(self.nodes)}
        have = free(self.nodes, used)
        rows = [have[n.name] for n in self.nodes]
        self._exp: dict[str, int] = {}
        for row in rows:
            for res, v in row.items():
                self._exp[res] = min(self._exp.get(res, 0), exponent(v))
        self._exp.setdefault("pods", 0)
        self._free = {r: [units(row.get(r, Decimal(0)), e) for row in rows] for r, e in self._exp.items()}
        self._layers: dict[str, _Layer] = {}
        self._feasible: dict[str, list[bool]] = {}  # constraints -> admitted, per node
        self._refuted: dict[Any, bool] = {}  # (batch shape, domain state) -> refuted (True) / gave up

    # -- units and the index ------------------------------------------------------------------------

    def _unit(self, res: str, v: Decimal) -> None:
        """Make `res` exist, in units fine enough for v (rescaling every figure kept of it if not)."""
        e = exponent(v)
        if res not in self._exp:
            self._exp[res] = e
            self._free[res] = [0] * len(self.nodes)
            for layer in self._layers.values():
                layer.raw[res], layer.room[res] = [0] * len(layer.values), [0] * len(layer.values)
        elif e < self._exp[res]:
            f, self._exp[res] = 10 ** (self._exp[res] - e), e
            self._free[res] = [x * f for x in self._free[res]]
            for cols in [c for layer in self._layers.values() for c in (layer.raw, layer.room)]:
                cols[res] = [x * f for x in cols[res]]
            self._refuted.clear()  # remembered states are in the old units

    def _layer(self, key: str) -> _Layer:
        if key not in self._layers:
            self._layers[key] = _Layer(key, self.nodes, self._free)
        return self._layers[key]

    def _admitted(self, ckey: str, pod: PodNeeds) -> list[bool]:
        if ckey not in self._feasible:
            if ckey:
                self._feasible[ckey] = [feasible(pod, n) for n in self.nodes]
            else:  # no selector, affinity or toleration: any node without a NoSchedule/NoExecute taint
                self._feasible[ckey] = [
                    not any(t.get("effect") in ("NoSchedule", "NoExecute") for t in n.taints)
                    for n in self.nodes
                ]
        return self._feasible[ckey]

    def _admits(self, layer: _Layer, ckey: str, pod: PodNeeds) -> list[bool]:
        if ckey not in layer.admits:
            ok = self._admitted(ckey, pod)
            layer.admits[ckey] = [any(ok[x] for x in m) for m in layer.members]
        return layer.admits[ckey]

    def take(self, assignment: Mapping[str, str], pods: Iterable[PodNeeds]) -> None:
        """Count the pods' requests (and one pod each) on the nodes `assignment` gives them (pod name ->
        node): a batch placed or rejoined, so later plans of the pass see that capacity taken."""
        for pod in pods:
            x = self._at.get(assignment[pod.name])
            if x is None:  # not schedulable: it has no capacity to take
                continue
            for res, v in _needs(pod).items():
                self._unit(res, v)
                amount, column = units(v, self._exp[res]), self._free[res]
                old, column[x] = column[x], column[x] - amount
                for layer in self._layers.values():
                    if (d := layer.of[x]) >= 0:
                        layer.raw[res][d] -= amount
                        layer.room[res][d] += max(column[x], 0) - max(old, 0)

    # -- planning ---------------------------------------------------------------------------------------

    def place(
        self,
        pods: Sequence[PodNeeds],
        topology_keys: Sequence[str],
        batch: int,
        avoid: Iterable[str | tuple[str, str]] = (),
        within: str | None = None,
    ) -> Placed | Unplaceable:
        """The best-fit domain of the first key (in order) that has one for the whole batch, with a node
        per pod; or why none can hold it. `avoid`: domain values no batch may use (a value alone, at
        every key; a (key, value) pair, at that key). `within`: plan only inside this domain of the
        first key (avoid does not apply; the other keys are not tried)."""
        keys = [topology_keys] if isinstance(topology_keys, str) else list(topology_keys)
        if not keys:
            raise ValueError("place() needs at least one topology key")
        for p in pods:
            for res, v in _needs(p).items():
                self._unit(res, v)
        b = _Batch(pods, self._exp)
        budget = [self.call_steps, 0]  # steps left in the call, domains given up in
        reasons = []
        for key in keys[:1] if within is not None else keys:
            result = self._place_in(key, b, batch, set(avoid), within, budget)
            if isinstance(result, Placed):
                return result
            reasons.append(result.reason)
        return Unplaceable("; ".join(reasons))

    def _place_in(
        self, key: str, b: _Batch, batch: int, avoid: set[Any], within: str | None, budget: list[int]
    ) -> Placed | Unplaceable:
        layer = self._layer(key)
        if not layer.values:
            return Unplaceable(f"no schedulable node has the label {key}")
        if within is not None:
            if within not in layer.pos:
                return Unplaceable(f"no schedulable node is in the {key} domain {within}")
            open_ = [layer.pos[within]]
        else:
            open_ = [d for d, v in enumerate(layer.values) if v not in avoid and (key, v) not in avoid]
        if not open_:
            return Unplaceable(
                f"every {key} domain is taken by another batch ({len(layer.values)} taken by other batches); "
                f"batch {batch} needs one of its own"
            )
        fit = open_  # the quick refusal: total free room per resource, nodes that admit each shape
        for res, want in zip(b.rel, b.total, strict=True):
            room = layer.room[res]
            fit = [d for d in fit if room[d] >= want]
        for s, m in zip(b.shapes, b.members, strict=True):
            admits = self._admits(layer, s[0], b.pods[m[0]])
            fit = [d for d in fit if admits[d]]
        raw = layer.raw[b.primary]
        heap = [(raw[d], len(layer.members[d]), layer.values[d], d) for d in fit]
        heapq.heapify(heap)
        searched: list[tuple[int, bool]] = []
        while heap:
            *_, d = heapq.heappop(heap)
            found = self._search(layer, d, b, budget)
            if isinstance(found, dict):
                return Placed(layer.values[d], found, key, budget[1])
            searched.append((d, found is False))
            budget[1] += found is False
        return Unplaceable(self._why(layer, b, batch, key, open_, within, searched))

    def _search(self, layer: _Layer, d: int, b: _Batch, budget: list[int]) -> dict[str, str] | bool | None:
        """Pack the batch into domain d: a node per pod, None when it cannot fit, False when the search
        gave up (its budget spent)."""
        members = layer.members[d]
        left = [[self._free[r][x] for r in b.rel] for x in members]
        ok = [self._admitted(s[0], b.pods[m[0]]) for s, m in zip(b.shapes, b.members, strict=True)]
        admit = [sum(1 << s for s in range(len(b.shapes)) if ok[s][x]) for x in members]
        state = (b.sig, tuple(sorted(zip(map(tuple, left), admit, strict=True))))
        if state in self._refuted:
            return None if self._refuted[state] else False
        k = len(members)
        allowed = max(min(self.domain_steps, budget[0]), 2 * k + 2)  # at least the first descent
        # shapes with the fewest candidate nodes first, then the largest
        order = sorted(
            range(len(b.shapes)),
            key=lambda s: (sum(ok[s][x] for x in members), [-a for a in b.shapes[s][1]], s),
        )
        needs = [[(j, a) for j, a in enumerate(b.shapes[s][1]) if a > 0] for s in order]
        bits = [sum(1 << t for t, s in enumerate(order) if a >> s & 1) for a in admit]
        counts = [len(b.members[s]) for s in order]
        chosen, used, cut = pack(needs, counts, bits, left, allowed)
        budget[0] -= used
        if chosen is None:
            if not cut or allowed >= self.domain_steps:
                self._refuted[state] = not cut
            return False if cut else None
        names = [b.pods[i].name for s in order for i in b.members[s]]
        return {name: self.nodes[members[x]].name for name, x in zip(names, chosen, strict=True)}

    def _why(
        self,
        layer: _Layer,
        b: _Batch,
        batch: int,
        key: str,
        open_: list[int],
        within: str | None,
        searched: list[tuple[int, bool]],
    ) -> str:
        """Why no domain of `open_` holds the batch; `searched`: (domain, gave up) of those packed."""
        n, total, gave = len(b.pods), dict(zip(b.rel, b.total, strict=True)), sum(g for _, g in searched)
        one, none, avoided = f"the {key} domain {within}", f"no {key} domain", len(layer.values) - len(open_)
        taken = f" ({avoided} taken by other batches)" if within is None and avoided else ""
        if gave and within is not None:
            return f"the search for the {n} pods of batch {batch} in {one} gave up (step budget)"
        if gave:
            rest = ", the others cannot fit them onto their nodes" if len(searched) > gave else ""
            return (
                f"{none} was found for the {n} pods of batch {batch}: the search gave up in {gave} of the "
                f"{len(searched)} {key} domains with room for them (step budget){rest}{taken}"
            )
        split = f"fit the {n} pods of batch {batch} onto its nodes (free capacity is split across nodes)"
        if searched and within is not None:
            return f"{one} cannot {split}"
        if searched:
            room = layer.room[b.primary]
            d = max((d for d, _ in searched), key=lambda d: (room[d], layer.values[d]))
            have = _fmt(room[d], self._exp[b.primary])
            return f"{none} can {split}{taken}; largest free {b.primary}: {layer.values[d]} with {have}"
        for res in [r for r in PRIMARY if r in total] + [r for r in b.rel if r not in PRIMARY]:
            room = layer.room[res]
            d = max(open_, key=lambda d: (room[d], layer.values[d]))
            if room[d] < total[res]:
                have, need = _fmt(room[d], self._exp[res]), _fmt(total[res], self._exp[res])
                if within is not None:
                    return f"{one} has {have} free {res}; batch {batch} needs {need}"
                largest = f"largest free: {layer.values[d]} with {have}"
                return f"{none} has {need} free {res} for batch {batch}{taken}; {largest}"
        admitted = [self._admits(layer, s[0], b.pods[m[0]]) for s, m in zip(b.shapes, b.members, strict=True)]
        if not all(any(a[d] for d in open_) for a in admitted):
            return (
                f"{one + ' has no' if within else none + ' has'} nodes that admit every pod of batch {batch} "
                f"(node selector, node affinity or taints){taken}"
            )
        needs = ", ".join(f"{_fmt(total[r], self._exp[r])} {r}" for r in total)
        return f"{none} both admits the pods of batch {batch} and has {needs} free{taken}"


def place(
    nodes: Sequence[NodeInfo],
    used: Mapping[str, Resources],
    pods: Sequence[PodNeeds],
    topology_key: str,
    batch: int,
    avoid: Iterable[str] = (),
) -> Placed | Unplaceable:
    """The best-fit domain for the whole batch, with a node per pod; or the reason none can hold it (one
    batch: a Cluster of its own)."""
    return Cluster(nodes, used).place(pods, [topology_key], batch, avoid)
