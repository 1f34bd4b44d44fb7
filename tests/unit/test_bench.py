"""The benchmark's pure parts: the workload it creates and the side-by-side table it prints."""

from __future__ import annotations

import json
from pathlib import Path

from rbg.devcluster import bench


def test_the_floor_creates_exactly_the_operators_children_without_owners() -> None:
    children = bench.direct_children("g0001", "bench")
    assert sorted((c["kind"], c["metadata"]["name"]) for c in children) == [
        ("ConfigMap", "g0001"),
        ("Deployment", "g0001-router"),
        ("Service", "s-g0001-decode"),
        ("Service", "s-g0001-prefill"),
        ("Service", "s-g0001-router"),
        ("StatefulSet", "g0001-decode"),
        ("StatefulSet", "g0001-prefill"),
    ]
    assert all("ownerReferences" not in c["metadata"] for c in children)


def test_the_upstream_group_has_the_same_roles_as_ours() -> None:
    ours = [(r["name"], r["replicas"], r["workload"]["kind"]) for r in bench.group("g")["spec"]["roles"]]
    theirs = [
        (
            r["name"],
            r["replicas"],
            r["annotations"]["rbg.workloads.x-k8s.io/role-workload-type"].split("/")[-1],
        )
        for r in bench.upstream_group("g")["spec"]["roles"]
    ]
    assert (
        ours
        == theirs
        == [("router", 1, "Deployment"), ("prefill", 2, "StatefulSet"), ("decode", 1, "StatefulSet")]
    )


def test_nodes_have_room_for_every_pod_at_scale() -> None:
    assert bench.bench_topology(100).node.pods == 110
    topo = bench.bench_topology(1000)
    assert topo.node_count * topo.node.pods >= 4000


def test_table_puts_contenders_side_by_side_with_ratios() -> None:
    results = [
        {"contender": "floor", "all_ready_s": 8.0, "create_to_ready_s": {"p50": 5.0, "p95": 7.0}},
        {"contender": "rbg", "all_ready_s": 10.0, "operator_cpu_s": 3.0, "api_writes": 900, "idle_writes": 0},
        {
            "contender": "upstream",
            "all_ready_s": 12.5,
            "operator_cpu_s": 2.0,
            "api_writes": 1000,
            "idle_writes": 0,
        },
    ]
    lines = bench.table(results).splitlines()
    assert lines[0] == "| figure | floor | rbg | upstream | rbg / upstream |"
    assert "| all groups Ready (s) | 8.0 | 10.0 | 12.5 | 0.80 |" in lines
    assert "| operator CPU during convergence (s) | — | 3.00 | 2.00 | 1.50 |" in lines
    assert "| API writes | — | 900 | 1000 | 0.90 |" in lines
    assert "| idle writes | — | 0 | 0 | — |" in lines


def test_a_dry_run_in_the_audit_log_is_counted_apart_from_writes(tmp_path: Path) -> None:
    from rbg.devcluster.bench import DRY_RUN, WRITES, audit_requests

    log = tmp_path / "audit.log"
    uri = "/api/v1/namespaces/a/"
    events = [
        {"stage": "ResponseComplete", "verb": "create", "requestURI": uri + "podtemplates?dryRun=All"},
        {"stage": "ResponseComplete", "verb": "create", "requestURI": uri + "configmaps"},
        {"stage": "RequestReceived", "verb": "create", "requestURI": uri + "configmaps"},
    ]
    for e in events:
        e["objectRef"] = {"resource": e["requestURI"].split("/")[-1].split("?")[0]}
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    counts = audit_requests(log, 0)
    assert counts == {(DRY_RUN, "podtemplates"): 1, ("create", "configmaps"): 1}
    assert DRY_RUN not in WRITES
