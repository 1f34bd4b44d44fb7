from typing import Any

from rbg.cli.status import render as render_status
from rbg.cli.topology import layout, render, topology_key


def test_layout_groups_pods_by_domain_and_node_with_role_batch_and_gate() -> None:
    rbg = {
        "metadata": {"name": "g"},
        "spec": {"coordination": [{"strategy": {"affinityScheduling": {"topologyKey": "rack"}}}]},
    }
    nodes = [{"metadata": {"name": "n1", "labels": {"rack": "r1"}}}]

    def pod(name: str, role: str, batch: str, node: str | None) -> dict[str, Any]:
        labels = {
            "rbg.workloads.x-k8s.io/group-name": "g",
            "rbg.workloads.x-k8s.io/role-name": role,
            "coordination.workloads.x-k8s.io/pd": batch,
        }
        spec: dict[str, Any] = {"nodeName": node} if node else {"schedulingGates": [{"name": "x"}]}
        return {"metadata": {"name": name, "labels": labels}, "spec": spec}

    pods = [pod("g-prefill-0", "prefill", "0", "n1"), pod("g-prefill-2", "prefill", "1", None)]
    assert topology_key(rbg) == "rack"
    placed = layout(rbg, pods, nodes, "rack")
    assert placed == {
        "(pending)": {"-": [{"pod": "g-prefill-2", "role": "prefill", "batch": "1", "gated": True}]},
        "r1": {"n1": [{"pod": "g-prefill-0", "role": "prefill", "batch": "0"}]},
    }
    assert render("g", "rack", placed).splitlines() == [
        "RoleBasedGroup g by rack",
        "(pending)",
        "  -: g-prefill-2 (prefill, batch 1, gated)",
        "r1",
        "  n1: g-prefill-0 (prefill, batch 0)",
    ]


def test_status_lists_coordinations() -> None:
    batches = [{"index": 0, "domain": "n1", "phase": "Bound"}, {"index": 1, "phase": "Stuck"}]
    coordination = {
        "name": "pd",
        "type": "AffinityScheduling",
        "phase": "Stuck",
        "placedBatches": 1,
        "totalBatches": 2,
        "batches": batches,
        "message": "batch 1: no room",
    }
    obj = {
        "metadata": {"name": "g", "namespace": "ns"},
        "spec": {"roles": []},
        "status": {"coordinationStatus": [coordination]},
    }
    out = render_status(obj).splitlines()
    assert "Coordination pd (AffinityScheduling): Stuck, 1/2 batches placed  0:n1(Bound) 1:-(Stuck)" in out
    assert "  batch 1: no room" in out
