"""The placement planner: exact against a brute-force search on small clusters, best fit, reasons."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rbg.coordination.planner import NodeInfo, Placed, PodNeeds, Unplaceable, feasible, free, place

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
    assert isinstance(result, Unplaceable)
    assert "can fit the 2 pods of batch 0 onto its nodes" in result.reason


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


def test_unschedulable_nodes_count_for_nothing() -> None:
    cordoned = NodeInfo("c", {HOST: "c"}, {GPU: D(8)}, schedulable=False)
    assert isinstance(place([cordoned], {}, batch(1), HOST, 0), Unplaceable)


# -- exact against brute force ---------------------------------------------------------------------


def brute_force(
    nodes: list[NodeInfo],
    used: dict[str, dict[str, Decimal]],
    pods: list[PodNeeds],
    key: str,
    avoid: set[str],
) -> bool:
    have = free(nodes, used)
    names = [n.name for n in nodes if n.name in have]
    by_name = {n.name: n for n in nodes}
    for assignment in itertools.product(names, repeat=len(pods)):
        domains = {by_name[n].labels.get(key) for n in assignment}
        if len(domains) != 1 or None in domains or domains & avoid:
            continue
        room = {n: dict(have[n]) for n in names}
        ok = True
        for p, n in zip(pods, assignment, strict=True):
            if not feasible(p, by_name[n]):
                ok = False
                break
            need = {**p.requests, "pods": p.requests.get("pods", D(0)) + 1}
            for res, amount in need.items():
                room[n][res] = room[n].get(res, D(0)) - amount
                if room[n][res] < 0:
                    ok = False
        if ok:
            return True
    return False


cluster = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(["r1", "r2"]), st.booleans(), st.integers(0, 3)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    cluster,
    st.lists(st.integers(0, 3), min_size=1, max_size=4),
    st.booleans(),
    st.sets(st.sampled_from(["r1", "r2", "n0", "n1"]), max_size=1),
)
def test_finds_a_domain_whenever_one_exists(
    spec: list[tuple[int, str, bool, int]], gpus: list[int], by_rack: bool, avoid: set[str]
) -> None:
    nodes = [
        NodeInfo(
            f"n{i}",
            {HOST: f"n{i}", "rack": rack, **({"fast": "yes"} if fast else {})},
            {GPU: D(g), "pods": D(3)},
        )
        for i, (g, rack, fast, _) in enumerate(spec)
    ]
    used = {f"n{i}": {GPU: D(min(u, spec[i][0]))} for i, (_, _, _, u) in enumerate(spec)}
    pods = [
        PodNeeds(f"p{i}", {GPU: D(g)}, node_selector={"fast": "yes"} if i == 0 and g == 3 else {})
        for i, g in enumerate(gpus)
    ]
    key = "rack" if by_rack else HOST
    result = place(nodes, used, pods, key, 0, avoid=avoid)
    exists = brute_force(nodes, used, pods, key, avoid)
    assert isinstance(result, Placed) == exists, result
    if isinstance(result, Placed):  # and what it returns is a real placement
        have = free(nodes, used)
        by_name = {n.name: n for n in nodes}
        assert result.domain not in avoid
        for p in pods:
            n = by_name[result.nodes[p.name]]
            assert n.labels[key] == result.domain
            assert feasible(p, n)
            for res, amount in {**p.requests, "pods": D(1)}.items():
                have[n.name][res] = have[n.name].get(res, D(0)) - amount
        assert all(v >= 0 for room in have.values() for v in room.values())
