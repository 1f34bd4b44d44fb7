"""The placement planner: exact against independent brute-force and counting oracles, best fit, the
search budget (per domain, per call) and what a refusal says, the pass-level index and its options."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rbg.coordination.planner import Cluster, NodeInfo, Placed, PodNeeds, Unplaceable, feasible, place

GPU = "nvidia.com/gpu"
HOST = "kubernetes.io/hostname"
D = Decimal


def node(name: str, gpus: int, rack: str = "r1", **labels: str) -> NodeInfo:
    return NodeInfo(name, {HOST: name, "rack": rack, **labels}, {GPU: D(gpus), "cpu": D(64), "pods": D(110)})


def pod(name: str, gpus: int) -> PodNeeds:
    return PodNeeds(name, {GPU: D(gpus)})


def batch(*gpus: int) -> list[PodNeeds]:
    return [pod(f"p{i}", g) for i, g in enumerate(gpus)]


def test_best_fit_takes_the_tightest_node() -> None:
    nodes = [node("a", 8), node("b", 4), node("c", 3)]
    result = place(nodes, {}, batch(1, 1, 1), HOST, 0)
    assert isinstance(result, Placed)
    assert result.domain == "c"  # 3 free, exactly the batch
    assert result.key == HOST


def test_used_capacity_and_avoided_domains_count() -> None:
    nodes = [node("a", 8), node("b", 8)]
    result = place(nodes, {"a": {GPU: D(6)}}, batch(2, 2), HOST, 1)
    assert isinstance(result, Placed)
    assert result.domain == "b"
    assert isinstance(place(nodes, {}, batch(2, 2), HOST, 1, avoid={"a"}), Placed)
    assert isinstance(place(nodes, {}, batch(2, 2), HOST, 1, avoid={"a", "b"}), Unplaceable)


def test_the_reason_names_the_key_the_batch_and_the_largest_domain() -> None:
    nodes = [node("node-a1-1", 1), node("node-a1-2", 2)]
    result = place(nodes, {}, batch(1, 1, 1), HOST, 2)
    assert isinstance(result, Unplaceable)
    assert (
        result.reason == "no kubernetes.io/hostname domain has 3 free nvidia.com/gpu for batch 2; "
        "largest free: node-a1-2 with 2"
    )


def test_split_capacity_is_explained() -> None:
    # the rack has 4 GPUs in all, but two pods of 2 cannot share a node of 3 and a node of 1
    nodes = [node("a", 3, rack="r1"), node("b", 1, rack="r1")]
    result = place(nodes, {}, batch(2, 2), "rack", 0)
    assert result == Unplaceable(
        "no rack domain can fit the 2 pods of batch 0 onto its nodes (free capacity is split across nodes); "
        "largest free nvidia.com/gpu: r1 with 4"
    )


def test_selectors_and_taints_decide_where_a_pod_may_go() -> None:
    tainted = NodeInfo(
        "t", {HOST: "t"}, {GPU: D(8), "pods": D(10)}, taints=({"key": "gpu", "effect": "NoSchedule"},)
    )
    plain = node("p", 8, zone="z1")
    assert not feasible(pod("x", 1), tainted)
    tolerant = PodNeeds("x", {GPU: D(1)}, tolerations=({"key": "gpu", "operator": "Exists"},))
    assert feasible(tolerant, tainted)
    picky = PodNeeds("y", {}, affinity_terms=(({"key": "zone", "operator": "In", "values": ["z2"]},),))
    assert not feasible(picky, plain)
    assert feasible(PodNeeds("z", {}, node_selector={"zone": "z1"}), plain)
    result = place([tainted, plain], {}, [tolerant, PodNeeds("w", {GPU: D(1)})], HOST, 0)
    assert isinstance(result, Placed)
    assert result.domain == "p"  # w does not tolerate t's taint
    assert place([tainted], {}, [PodNeeds("w", {GPU: D(1)})], HOST, 3) == Unplaceable(
        "no kubernetes.io/hostname domain has nodes that admit every pod of batch 3 (node selector, node "
        "affinity or taints)"
    )


def test_unschedulable_nodes_count_for_nothing() -> None:
    cordoned = NodeInfo("c", {HOST: "c"}, {GPU: D(8)}, schedulable=False)
    assert place([cordoned], {}, batch(1), HOST, 0) == Unplaceable(
        "no schedulable node has the label kubernetes.io/hostname"
    )


def test_an_overcommitted_resource_blocks_only_pods_that_request_it() -> None:
    # node a is 2 CPUs over (used > allocatable): a pod asking no CPU still fits its GPUs, as in the
    # scheduler; and the rack's total room counts a's CPU as 0, not as -2 against b's
    a, b = node("a", 4, rack="r"), node("b", 4, rack="r")
    used = {"a": {"cpu": D(66)}}
    assert isinstance(place([a], used, [pod("g", 4)], HOST, 0), Placed)
    assert isinstance(place([a], used, [PodNeeds("c", {"cpu": D(1)})], HOST, 0), Unplaceable)
    result = place([a, b], used, [PodNeeds("c", {"cpu": D(64)})], "rack", 0)
    assert isinstance(result, Placed)
    assert dict(result.nodes) == {"c": "b"}
    # and inside the rack: a's negative CPU does not count against b's for the CPU pod, while a still
    # takes the GPU pod
    result = place(
        [a, b], {**used, "b": {GPU: D(4)}}, [PodNeeds("c", {"cpu": D(63)}), pod("g", 4)], "rack", 0
    )
    assert isinstance(result, Placed)
    assert dict(result.nodes) == {"c": "b", "g": "a"}


def test_fractional_requests_are_exact_whatever_unit_comes_first() -> None:
    # the index counts CPU in whole units until "250m" shows up, then in thousandths: 4 x 250m = 1 CPU
    cluster = Cluster([NodeInfo("n", {HOST: "n"}, {"cpu": D(1), "pods": D(10)})], {})
    assert isinstance(
        cluster.place([PodNeeds(f"q{i}", {"cpu": D("0.25")}) for i in range(4)], [HOST], 0), Placed
    )
    assert isinstance(
        cluster.place([PodNeeds(f"q{i}", {"cpu": D("0.25")}) for i in range(5)], [HOST], 0), Unplaceable
    )
    cluster.take({"h": "n"}, [PodNeeds("h", {"cpu": D("0.5")})])
    assert isinstance(cluster.place([PodNeeds("x", {"cpu": D("0.5")})], [HOST], 1), Placed)
    assert cluster.place([PodNeeds("y", {"cpu": D("0.501")})], [HOST], 2) == Unplaceable(
        "no kubernetes.io/hostname domain has 0.501 free cpu for batch 2; largest free: n with 0.5"
    )


# -- the pass-level index ---------------------------------------------------------------------------


def test_take_counts_a_placed_batch_for_the_next_plans_of_the_pass() -> None:
    nodes = [node("a", 4, rack="r1"), node("b", 4, rack="r1"), node("c", 8, rack="r2")]
    cluster = Cluster(nodes, {"c": {GPU: D(2)}})
    first = cluster.place(batch(3, 3), ["rack"], 0)
    assert first == Placed("r2", {"p0": "c", "p1": "c"}, "rack")  # r2: 6 free, tighter than r1's 8
    cluster.take(first.nodes, batch(3, 3))
    second = cluster.place(batch(3, 3), ["rack"], 1)
    assert isinstance(second, Placed)
    assert second.domain == "r1"
    assert sorted(second.nodes.values()) == ["a", "b"]
    cluster.take(second.nodes, batch(3, 3))
    assert cluster.place(batch(1), ["rack"], 2) == Placed("r1", {"p0": "a"}, "rack")  # 2 left there, 0 in r2


def test_the_next_topology_key_is_tried_when_no_domain_of_the_first_holds_the_batch() -> None:
    nodes = [node("a", 4, rack="r1"), node("b", 4, rack="r1"), node("c", 2, rack="r2")]
    cluster = Cluster(nodes, {})
    result = cluster.place(batch(3, 3), [HOST, "rack"], 0)
    assert isinstance(result, Placed)
    assert (result.domain, result.key) == ("r1", "rack")
    assert cluster.place(batch(2), [HOST, "rack"], 1) == Placed("c", {"p0": "c"}, HOST)
    refused = cluster.place(batch(5, 5), [HOST, "rack"], 2)
    assert refused == Unplaceable(
        "no kubernetes.io/hostname domain has 10 free nvidia.com/gpu for batch 2; largest free: b with 4; "
        "no rack domain has 10 free nvidia.com/gpu for batch 2; largest free: r1 with 8"
    )


def test_avoid_takes_a_value_at_every_key_or_a_key_and_value_pair() -> None:
    nodes = [node("a", 8, rack="x"), node("x", 8, rack="r2")]
    cluster = Cluster(nodes, {})
    assert cluster.place(batch(1), [HOST], 0, avoid={"x"}) == Placed("a", {"p0": "a"}, HOST)
    assert cluster.place(batch(1), ["rack"], 0, avoid={"x"}) == Placed("r2", {"p0": "x"}, "rack")
    assert cluster.place(batch(1), ["rack"], 0, avoid={("rack", "r2")}) == Placed("x", {"p0": "a"}, "rack")
    assert cluster.place(batch(1), ["rack"], 0, avoid={(HOST, "r2")}) == Placed("r2", {"p0": "x"}, "rack")


def test_within_plans_only_inside_one_domain_with_a_node_per_pod() -> None:
    nodes = [node("a", 2, rack="r1"), node("b", 8, rack="r1"), node("c", 4, rack="r2")]
    cluster = Cluster(nodes, {"b": {GPU: D(5)}})
    assert cluster.place(batch(2, 3), ["rack"], 0, within="r1") == Placed(
        "r1", {"p0": "a", "p1": "b"}, "rack"
    )
    assert cluster.place(batch(4, 1), ["rack"], 0, within="r1") == Unplaceable(
        "the rack domain r1 cannot fit the 2 pods of batch 0 onto its nodes (free capacity is split across "
        "nodes)"
    )
    assert cluster.place(batch(4, 3), ["rack"], 0, within="r1") == Unplaceable(
        "the rack domain r1 has 5 free nvidia.com/gpu; batch 0 needs 7"
    )
    assert cluster.place(batch(1), ["rack"], 0, within="gone") == Unplaceable(
        "no schedulable node is in the rack domain gone"
    )
    # avoid does not apply to the domain asked for, nor are other domains or keys tried
    assert cluster.place(batch(4), ["rack", "zone"], 0, avoid={"r2"}, within="r2") == Placed(
        "r2", {"p0": "c"}, "rack"
    )
    selective = PodNeeds("s", {GPU: D(1)}, node_selector={"disk": "ssd"})
    assert cluster.place([selective], ["rack"], 4, within="r2") == Unplaceable(
        "the rack domain r2 has no nodes that admit every pod of batch 4 (node selector, node affinity or "
        "taints)"
    )


# -- the search budget (review A5) -------------------------------------------------------------------


def p3_nodes(caps: Sequence[int], big: int = 64) -> list[NodeInfo]:
    """Review probe p3: rack a of eight nodes with these free GPUs, rack b of one empty node of `big`."""
    out = [NodeInfo(f"a{i:02d}", {"rack": "a"}, {GPU: D(c), "pods": D(110)}) for i, c in enumerate(caps)]
    return [*out, NodeInfo("b0", {"rack": "b"}, {GPU: D(big), "pods": D(110)})]


P3_SIZES = (3, 3, 5, 4, 6, 7, 6, 7, 4, 6, 4, 3)  # 58 GPUs


def test_p3_a_hard_rack_is_searched_to_the_end_and_an_empty_one_after_it_still_found() -> None:
    pods = batch(*P3_SIZES)
    # the probe's rack a (61 free) does hold the batch: the old shared budget ran out before finding it
    result = place(p3_nodes([9, 7, 10, 11, 5, 8, 5, 6]), {}, pods, "rack", 0)
    assert isinstance(result, Placed)
    assert result.domain == "a"  # 3 GPUs left: tighter than b's 6
    room = dict(zip([f"a{i:02d}" for i in range(8)], [9, 7, 10, 11, 5, 8, 5, 6], strict=True))
    for p in pods:
        room[result.nodes[p.name]] -= int(p.requests[GPU])
    assert min(room.values()) >= 0  # a real placement
    # eight nodes of 8 (64 free, ranked before b's 70): the 7s and 6s need a node each, 5+3 one more,
    # 18 GPUs for the last two nodes' 16: rack a cannot hold it, b does
    result = place(p3_nodes([8] * 8, 70), {}, pods, "rack", 0)
    assert isinstance(result, Placed)
    assert (result.domain, set(result.nodes.values()), result.gave_up) == ("b", {"b0"}, 0)
    refused = place(p3_nodes([8] * 8, 70), {}, pods, "rack", 0, avoid={"b"})
    assert refused == Unplaceable(
        "no rack domain can fit the 12 pods of batch 0 onto its nodes (free capacity is split across nodes) "
        "(1 taken by other batches); largest free nvidia.com/gpu: a with 64"
    )


def test_p3_a_search_cut_by_its_budget_is_reported_as_such() -> None:
    cluster = Cluster(p3_nodes([8] * 8, 70), {}, domain_steps=30, call_steps=30)
    result = cluster.place(batch(*P3_SIZES), ["rack"], 0)
    assert isinstance(result, Placed)
    assert (result.domain, result.gave_up) == ("b", 1)  # a's search was cut, b then found
    assert cluster.place(batch(*P3_SIZES), ["rack"], 0, avoid={"b"}) == Unplaceable(
        "no rack domain was found for the 12 pods of batch 0: the search gave up in 1 of the 1 rack domains "
        "with room for them (step budget) (1 taken by other batches)"
    )
    assert cluster.place(batch(*P3_SIZES), ["rack"], 0, within="a") == Unplaceable(
        "the search for the 12 pods of batch 0 in the rack domain a gave up (step budget)"
    )


HARD = (7, 4, 2, 9, 6, 7, 4, 2, 6, 7)  # probe p6: free GPUs of a fragmented rack's ten 16-GPU nodes


def p6(racks: int = 49, vary: bool = False) -> tuple[list[NodeInfo], dict[str, dict[str, Decimal]]]:
    """Probe p6: fragmented racks r00… (54 GPUs free each) and an empty rack r99 (160 free)."""
    nodes, used = [], {}
    for r in range(racks):
        # vary: each rack a little less free (never more than HARD) on its 2- and 9-GPU nodes, so that
        # no two racks are alike and none is refuted by an earlier one's memory
        cut = (r % 3, r // 3 % 3, r // 9 % 2) if vary else (0, 0, 0)
        for j, c in enumerate(HARD):
            less = cut[0] if j == 2 else cut[1] if j == 7 else cut[2] if j == 3 else 0
            name = f"n{r:02d}-{j}"
            nodes.append(NodeInfo(name, {HOST: name, "rack": f"r{r:02d}"}, {GPU: D(16), "pods": D(110)}))
            used[name] = {GPU: D(16 - c + less)}
    for j in range(10):
        nodes.append(NodeInfo(f"n99-{j}", {HOST: f"n99-{j}", "rack": "r99"}, {GPU: D(16), "pods": D(110)}))
    return nodes, used


def p6_batch(b: int) -> list[PodNeeds]:
    prefill = [PodNeeds(f"b{b}-prefill-{i}", {GPU: D(3)}) for i in range(8)]
    return prefill + [PodNeeds(f"b{b}-decode-{i}", {GPU: D(5)}) for i in range(4)]


def fits_by_counting(free_gpus: Sequence[int], sizes: Mapping[int, int]) -> bool:
    """Oracle: can pods of these GPU sizes (size -> count) go onto nodes with these free GPUs? Every
    share of pods per node, node after node, counting the shares reachable (no search order at all)."""
    kinds = sorted(sizes)
    reach = {tuple(0 for _ in kinds)}
    for have in free_gpus:
        shares = [
            s
            for s in itertools.product(*(range(sizes[k] + 1) for k in kinds))
            if sum(c * k for c, k in zip(s, kinds, strict=True)) <= have
        ]
        reach = {
            tuple(a + b for a, b in zip(r, s, strict=True))
            for r in reach
            for s in shares
            if all(a + b <= sizes[k] for a, b, k in zip(r, s, kinds, strict=True))
        }
    return tuple(sizes[k] for k in kinds) in reach


def test_p6_fragmented_racks_then_an_empty_one() -> None:
    assert not fits_by_counting(HARD, {3: 8, 5: 4})  # the oracle's word: no fragmented rack holds a batch
    nodes, used = p6()
    cluster = Cluster(nodes, used)
    first = cluster.place(p6_batch(0), ["rack"], 0)
    assert isinstance(first, Placed)
    assert (first.domain, first.gave_up) == ("r99", 0)
    cluster.take(first.nodes, p6_batch(0))
    assert cluster.place(p6_batch(1), ["rack"], 1, avoid={"r99"}) == Unplaceable(
        "no rack domain can fit the 12 pods of batch 1 onto its nodes (free capacity is split across nodes) "
        "(1 taken by other batches); largest free nvidia.com/gpu: r48 with 54"
    )
    # with budgets too small for any fragmented rack, the empty rack is still found, and the refusal
    # says the search gave up rather than that nothing fits
    cluster = Cluster(nodes, used, domain_steps=40, call_steps=100)
    first = cluster.place(p6_batch(0), ["rack"], 0)
    assert isinstance(first, Placed)
    assert (first.domain, first.gave_up) == ("r99", 49)
    assert cluster.place(p6_batch(1), ["rack"], 1, avoid={"r99"}) == Unplaceable(
        "no rack domain was found for the 12 pods of batch 1: the search gave up in 49 of the 49 rack "
        "domains with room for them (step budget) (1 taken by other batches)"
    )


def test_a_search_cut_by_the_calls_budget_is_searched_in_full_by_a_later_call() -> None:
    # rack ra: probe p6's fragmented rack; rack rb (55 free) holds the batch, but not at the first
    # descent: cut in the first call (the call's budget spent on ra), found in full in the next
    free = {"ra": HARD, "rb": (0, 2, 2, 3, 7, 7, 7, 7, 10, 10)}
    assert not fits_by_counting(free["ra"], {3: 8, 5: 4})
    assert fits_by_counting(free["rb"], {3: 8, 5: 4})
    nodes = [
        NodeInfo(f"{r}-{j}", {"rack": r}, {GPU: D(g), "pods": D(110)})
        for r, f in free.items()
        for j, g in enumerate(f)
    ]
    cluster = Cluster(nodes, {}, domain_steps=100, call_steps=100)
    assert cluster.place(p6_batch(0), ["rack"], 0) == Unplaceable(
        "no rack domain was found for the 12 pods of batch 0: the search gave up in 2 of the 2 rack domains "
        "with room for them (step budget)"
    )
    result = cluster.place(p6_batch(0), ["rack"], 0, within="rb")
    assert isinstance(result, Placed)
    assert result.domain == "rb"


def test_p6_the_empty_rack_is_found_after_the_calls_budget_is_spent_on_distinct_hard_racks() -> None:
    nodes, used = p6(vary=True)
    frees: dict[str, list[int]] = {}
    for n in nodes:
        frees.setdefault(n.labels["rack"], []).append(16 - int(used.get(n.name, {}).get(GPU, D(0))))
    assert len({tuple(f) for r, f in frees.items() if r != "r99"}) == 18  # racks alike in threes at most
    assert not any(fits_by_counting(f, {3: 8, 5: 4}) for r, f in frees.items() if r != "r99")
    # two searches of 60 steps spend the call's 120; every rack after them gets its first descent only
    cluster = Cluster(nodes, used, domain_steps=60, call_steps=120)
    result = cluster.place(p6_batch(0), ["rack"], 0)
    assert isinstance(result, Placed)
    assert (result.domain, result.gave_up) == ("r99", 49)
    assert cluster.place(p6_batch(1), ["rack"], 1, avoid={"r99"}) == Unplaceable(
        "no rack domain was found for the 12 pods of batch 1: the search gave up in 49 of the 49 rack "
        "domains with room for them (step budget) (1 taken by other batches)"
    )


# -- exact against brute force, with an oracle of its own (review C2) ---------------------------------


def oracle_admits(p: PodNeeds, n: NodeInfo) -> bool:
    """Kubernetes' rules as the test reads them: nodeSelector, required node affinity terms (ORed; a
    term's requirements ANDed; an empty term matches nothing), NoSchedule/NoExecute taints."""
    if any(n.labels.get(k) != v for k, v in p.node_selector.items()):
        return False
    if p.affinity_terms:

        def holds(r: Mapping[str, Any]) -> bool:
            value = n.name if "field" in r else n.labels.get(r["key"])
            if r["operator"] == "In":
                return value is not None and value in r["values"]
            if r["operator"] == "NotIn":
                return value is None or value not in r["values"]
            return value is not None  # Exists

        if not any(len(term) > 0 and all(holds(r) for r in term) for term in p.affinity_terms):
            return False
    for taint in n.taints:
        if taint["effect"] not in ("NoSchedule", "NoExecute"):
            continue
        if not any(
            (t.get("effect") in (None, taint["effect"]))
            and (t.get("key") in (None, taint["key"]))
            and (t.get("operator") == "Exists" or t.get("value") == taint.get("value"))
            for t in p.tolerations
        ):
            return False
    return True


def oracle_best(
    nodes: list[NodeInfo],
    used: dict[str, dict[str, Decimal]],
    pods: list[PodNeeds],
    key: str,
    avoid: set[str],
) -> str | None:
    """The best-fit domain by trying every assignment of pods to schedulable nodes, or None."""
    up = [n for n in nodes if n.schedulable]
    left = {
        n.name: {
            r: n.allocatable.get(r, D(0)) - used.get(n.name, {}).get(r, D(0)) for r in (GPU, "cpu", "pods")
        }
        for n in up
    }
    fits: set[str] = set()
    for assignment in itertools.product(up, repeat=len(pods)):
        domains = {n.labels.get(key) for n in assignment}
        if len(domains) != 1 or None in domains or domains & avoid:
            continue
        if not all(oracle_admits(p, n) for p, n in zip(pods, assignment, strict=True)):
            continue
        ok = True
        for n in {m.name: m for m in assignment}.values():
            mine = [p for p, m in zip(pods, assignment, strict=True) if m is n]
            for r in (GPU, "cpu"):
                want = sum((p.requests.get(r, D(0)) for p in mine), D(0))
                if want > 0 and want > left[n.name][r]:
                    ok = False
            if len(mine) > left[n.name]["pods"]:
                ok = False
        if ok:
            fits.add(str(domains.pop()))
    if not pods:
        fits = {str(n.labels[key]) for n in up if key in n.labels and n.labels[key] not in avoid}
    primary = next((r for r in (GPU, "cpu") if any(p.requests.get(r, D(0)) > 0 for p in pods)), "pods")

    def rank(domain: str) -> tuple[Decimal, int, str]:
        members = [n for n in up if n.labels.get(key) == domain]
        return sum((left[n.name][primary] for n in members), D(0)), len(members), domain

    return min(fits, key=rank) if fits else None


node_spec = st.tuples(
    st.integers(0, 4),  # GPUs
    st.sampled_from([D(2), D("1.5"), D("0.5")]),  # CPUs
    st.sampled_from(["r1", "r2"]),
    st.booleans(),  # label fast=yes
    st.booleans(),  # tainted gpu:NoSchedule
    st.integers(0, 5),  # GPUs used (may exceed the allocatable: overcommitted)
    st.sampled_from([D(0), D(0), D(1), D(3)]),  # CPUs used (3: overcommitted)
    st.sampled_from([True, True, True, False]),  # schedulable
)
pod_spec = st.tuples(
    st.integers(0, 3),  # GPUs
    st.sampled_from([D(0), D("0.25"), D("0.5"), D(1)]),  # CPUs
    st.sampled_from(["none", "selector", "rack-in", "name-in", "not-n0", "empty-term", "tolerates"]),
)
CONSTRAINTS: dict[str, dict[str, Any]] = {
    "none": {},
    "selector": {"node_selector": {"fast": "yes"}},
    "rack-in": {"affinity_terms": (({"key": "rack", "operator": "In", "values": ["r2"]},),)},
    "name-in": {"affinity_terms": (({"field": "metadata.name", "operator": "In", "values": ["n0", "n2"]},),)},
    "not-n0": {"affinity_terms": ((), ({"field": "metadata.name", "operator": "NotIn", "values": ["n0"]},))},
    "empty-term": {"affinity_terms": ((),)},
    "tolerates": {"tolerations": ({"key": "gpu", "operator": "Exists"},)},
}


@settings(max_examples=400, deadline=None)
@given(
    st.lists(node_spec, min_size=1, max_size=5),
    st.lists(pod_spec, min_size=0, max_size=4),
    st.booleans(),
    st.sets(st.sampled_from(["r1", "r2", "n0", "n1"]), max_size=1),
)
def test_finds_the_best_fit_domain_whenever_one_exists(
    spec: list[tuple[int, Decimal, str, bool, bool, int, Decimal, bool]],
    pod_specs: list[tuple[int, Decimal, str]],
    by_rack: bool,
    avoid: set[str],
) -> None:
    nodes = [
        NodeInfo(
            f"n{i}",
            {HOST: f"n{i}", "rack": rack, **({"fast": "yes"} if fast else {})},
            {GPU: D(g), "cpu": cpu, "pods": D(3)},
            ({"key": "gpu", "effect": "NoSchedule"},) if tainted else (),
            schedulable=up,
        )
        for i, (g, cpu, rack, fast, tainted, _, _, up) in enumerate(spec)
    ]
    used = {f"n{i}": {GPU: D(u), "cpu": c} for i, (*_, u, c, _) in enumerate(spec)}
    pods = [
        PodNeeds(f"p{i}", {GPU: D(g), "cpu": c}, **CONSTRAINTS[k]) for i, (g, c, k) in enumerate(pod_specs)
    ]
    key = "rack" if by_rack else HOST
    result = place(nodes, used, pods, key, 0, avoid=avoid)
    best = oracle_best(nodes, used, pods, key, avoid)
    assert (result.domain if isinstance(result, Placed) else None) == best, result
    if isinstance(result, Placed):  # and what it returns is a real placement
        assert result.gave_up == 0
        assert sorted(result.nodes) == sorted(p.name for p in pods)
        by_name = {n.name: n for n in nodes}
        for p in pods:
            n = by_name[result.nodes[p.name]]
            assert n.schedulable
            assert n.labels[key] == result.domain
            assert oracle_admits(p, n)
        for n in nodes:
            mine = [p for p in pods if result.nodes[p.name] == n.name]
            for r in (GPU, "cpu"):
                want = sum((p.requests.get(r, D(0)) for p in mine), D(0))
                assert want == 0 or want <= n.allocatable[r] - used[n.name].get(r, D(0))
            assert len(mine) <= 3
    else:
        assert "gave up" not in result.reason  # such small batches never reach the budget


# -- at the budget's boundary -------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 12), min_size=1, max_size=8), min_size=1, max_size=3),
    st.dictionaries(st.integers(2, 7), st.integers(1, 4), min_size=1, max_size=3),
    st.sampled_from([(1, 1), (40, 80), (400, 2_000), (None, None)]),
    st.booleans(),
)
def test_at_any_budget_a_refusal_is_true_and_an_easy_domain_is_found(
    racks: list[list[int]], sizes: dict[int, int], budget: tuple[int | None, int | None], easy: bool
) -> None:
    """Racks of nodes with these free GPUs, a batch of GPU sizes (size -> count); budgets from one step
    (every search cut at once) to the defaults. Whatever the budget: a placement is real, a refusal that
    does not say the search gave up is true (the counting oracle finds no rack), a Placed with no search
    given up is the best fit, and an easy rack (one node with room for the whole batch) is always found."""
    if easy:
        racks = [*racks, [sum(k * c for k, c in sizes.items())]]
    nodes = [
        NodeInfo(f"r{r}-n{j}", {"rack": f"r{r}"}, {GPU: D(g), "pods": D(110)})
        for r, frees in enumerate(racks)
        for j, g in enumerate(frees)
    ]
    pods = [PodNeeds(f"s{k}-{i}", {GPU: D(k)}) for k, c in sorted(sizes.items()) for i in range(c)]
    domain_steps, call_steps = budget
    cluster = (
        Cluster(nodes, {})
        if domain_steps is None
        else Cluster(nodes, {}, domain_steps=domain_steps, call_steps=call_steps or 0)
    )
    result = cluster.place(pods, ["rack"], 0)
    holds = {f"r{r}" for r, frees in enumerate(racks) if fits_by_counting(frees, sizes)}
    if isinstance(result, Placed):
        assert result.domain in holds
        room = {n.name: int(n.allocatable[GPU]) for n in nodes}
        for p in pods:
            assert result.nodes[p.name].startswith(result.domain + "-")
            room[result.nodes[p.name]] -= int(p.requests[GPU])
        assert min(room.values()) >= 0
        if result.gave_up == 0:
            total = {f"r{r}": (sum(f), len(f), f"r{r}") for r, f in enumerate(racks)}
            assert result.domain == min(holds, key=lambda d: total[d])
    else:
        assert not easy
        if "gave up" not in result.reason:
            assert not holds
