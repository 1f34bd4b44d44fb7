"""Release decisions under change: lost, cordoned and relabelled nodes, recreated members that no longer
fit, layouts changed on a live group, per-node pins inside a wider domain; and the tracker's timers."""

from __future__ import annotations

from typing import Any

from coordination_data import pd_group
from test_coordination_batches import BATCH, HOST, admitted, node

from rbg.api.hub import RoleBasedGroup
from rbg.coordination import batches, gating, release, tracker
from rbg.coordination.resources import GATE, usage

Obj = dict[str, Any]


def group(mode: str = "Sequential", prefill: int = 4, decode: int = 2, **extra: Any) -> RoleBasedGroup:
    return pd_group(prefill, decode, batchMode=mode, **extra)


def decide(rbg: RoleBasedGroup, pods: list[Obj], nodes: list[Obj]) -> release.Decision:
    coord, aff = batches.affinity_coordinations(rbg)[0]
    return release.decide(rbg, coord, aff, pods, nodes, usage(pods, {}))


def bind(pod: Obj, node: str, **pins: str) -> Obj:
    pod["spec"]["schedulingGates"] = []
    pod["spec"]["nodeSelector"] = {HOST: node, **pins}
    pod["spec"]["nodeName"] = node
    return pod


def names(items: list[Any]) -> set[str]:
    return {x[0]["metadata"]["name"] for x in items}


def bound_batch0_on(node_name: str, rbg: RoleBasedGroup) -> list[Obj]:
    """prefill 0,1 and decode 0 bound on `node_name`, prefill-0 recreated (gated) since."""
    pods = [bind(admitted("prefill", i, rbg), node_name) for i in (0, 1)]
    pods.append(bind(admitted("decode", 0, rbg), node_name))
    pods[0] = admitted("prefill", 0, rbg)
    return pods


def test_a_batch_whose_node_is_gone_moves_whole_instead_of_pinning_a_recreated_member_there() -> None:
    rbg = group(prefill=2, decode=1)
    pods = bound_batch0_on("dead", rbg)
    d = decide(rbg, pods, [node("a"), node("b")])
    assert d.release == []  # never pinned to the dead node
    assert names(d.delete) == {"g-prefill-1", "g-decode-0"}  # the rest are replaced to move together
    assert [(i, dom) for i, dom, _ in d.moved] == [(0, "dead")]
    assert "node dead is gone" in d.moved[0][2]


def test_a_cordoned_node_moves_its_batch_once_a_member_is_evicted() -> None:
    rbg = group(prefill=2, decode=1)
    pods = bound_batch0_on("a", rbg)
    cordoned = node("a")
    cordoned["spec"]["unschedulable"] = True
    d = decide(rbg, pods, [cordoned, node("b")])
    assert d.release == []
    assert names(d.delete) == {"g-prefill-1", "g-decode-0"}
    assert "cordoned" in d.moved[0][2]


def test_a_batch_that_cannot_move_keeps_running_and_says_why() -> None:
    rbg = group(prefill=2, decode=1)
    pods = bound_batch0_on("dead", rbg)
    d = decide(rbg, pods, [node("a", gpus=1)])  # no node holds the three pods
    assert d.delete == []
    assert d.release == []
    (b,) = d.batches
    assert b.waiting
    assert b.message.startswith("kubernetes.io/hostname=dead can no longer hold batch 0 (node dead is gone;")
    assert "no other domain can" in b.message


def test_a_recreated_member_that_no_longer_fits_its_node_moves_the_batch() -> None:
    rbg = group(prefill=2, decode=1)
    pods = [bind(admitted("prefill", i, rbg, gpus=3), "a") for i in (0, 1)]
    pods.append(bind(admitted("decode", 0, rbg, gpus=2), "a"))
    pods[0] = admitted("prefill", 0, rbg, gpus=5)  # a template change asks for more: 5 + 3 + 2 > 8
    d = decide(rbg, pods, [node("a"), node("b", gpus=16)])
    assert d.release == []
    assert names(d.delete) == {"g-prefill-1", "g-decode-0"}
    assert "has no room for 1 recreated pods" in d.moved[0][2]


def test_a_recreated_member_that_fits_rejoins_and_its_capacity_is_assigned() -> None:
    rbg = group(prefill=2, decode=1)
    pods = bound_batch0_on("a", rbg)
    d = decide(rbg, pods, [node("a"), node("b")])
    assert [(p["metadata"]["name"], dom, host) for p, dom, host in d.release] == [("g-prefill-0", "a", "a")]
    assert d.assigned == {"g-prefill-0": "a"}  # counted as used until bound (review A10)
    assert d.delete == []


def test_a_relabelled_rack_splits_the_batch_and_it_moves() -> None:
    rbg = group(prefill=2, decode=1, topologyKey="rack")
    a, b, c = node("a"), node("b"), node("c")
    a["metadata"]["labels"]["rack"] = "r1"
    b["metadata"]["labels"]["rack"] = "r2"  # was r1 when the batch was placed
    c["metadata"]["labels"]["rack"] = "r3"
    pods = [
        bind(admitted("prefill", 0, rbg), "a", rack="r1"),
        bind(admitted("prefill", 1, rbg), "b", rack="r1"),
    ]
    pods.append(admitted("decode", 0, rbg))
    d = decide(rbg, pods, [a, b, c])
    assert "split across rack domains r1, r2" in d.moved[0][2]
    assert names(d.delete) == {"g-prefill-0", "g-prefill-1"}


def test_inside_a_rack_every_pod_is_pinned_to_the_node_the_plan_chose() -> None:
    # a rack of two 8-GPU nodes, a batch of 2 prefill x 4 GPUs and 1 decode x 8 GPUs: only
    # {decode} + {prefill, prefill} fits; a scheduler spreading the prefills would strand the decode
    rbg = group(prefill=2, decode=1, topologyKey="rack")
    n1, n2 = node("n1"), node("n2")
    for n in (n1, n2):
        n["metadata"]["labels"]["rack"] = "r1"
    pods = [admitted("prefill", i, rbg, gpus=4) for i in (0, 1)] + [admitted("decode", 0, rbg, gpus=8)]
    d = decide(rbg, pods, [n1, n2])
    hosts = {p["metadata"]["name"]: host for p, dom, host in d.release}
    assert {dom for _, dom, _ in d.release} == {"r1"}
    assert hosts["g-prefill-0"] == hosts["g-prefill-1"] != hosts["g-decode-0"]
    assert None not in hosts.values()


def test_a_coordination_added_to_a_running_group_replaces_each_batchs_members_together() -> None:
    rbg = group(prefill=4, decode=2)
    running = []
    for role, n in (("prefill", 4), ("decode", 2)):
        for i in range(n):
            pod = admitted(role, i, rbg)
            del pod["metadata"]["labels"][BATCH]  # created before the coordination existed
            pod["metadata"]["labels"][batches.COORDINATED] = "0123456789"  # another layout's
            running.append(bind(pod, "a"))
    # the StatefulSets replace their highest ordinals first: prefill-3 and decode-1 come back gated
    pods = [p for p in running if p["metadata"]["name"] not in ("g-prefill-3", "g-decode-1")]
    pods += [admitted("prefill", 3, rbg), admitted("decode", 1, rbg)]
    d = decide(rbg, pods, [node("a", 64), node("b"), node("c")])
    assert names(d.delete) == {"g-prefill-2"}  # only batch 1's member of the old layout
    assert d.release == []  # batch 1 waits for prefill-2 to come back gated
    assert "replacing 1 pods created under an earlier layout" in d.batches[1].message
    assert not d.batches[1].waiting
    # once it is back, batch 1 is planned whole, before batch 0 (whose pods still serve, unreplaced)
    pods = [p for p in pods if p["metadata"]["name"] != "g-prefill-2"] + [admitted("prefill", 2, rbg)]
    d = decide(rbg, pods, [node("a", 64), node("b"), node("c")])
    assert names(d.release) == {"g-prefill-2", "g-prefill-3", "g-decode-1"}
    assert d.delete == []


def test_members_a_partition_keeps_on_the_old_template_are_never_deleted() -> None:
    data = group(prefill=4, decode=2).model_dump(by_alias=True, exclude_none=True)
    data["spec"]["roles"][0]["rolloutStrategy"] = {"rollingUpdate": {"partition": 3}}  # prefill 0-2 stay old
    rbg = RoleBasedGroup.model_validate(data)
    old = admitted("prefill", 2, rbg)
    old["metadata"]["labels"][batches.COORDINATED] = "0123456789"  # an earlier layout's hash
    pods = [bind(old, "a"), admitted("prefill", 3, rbg), admitted("decode", 1, rbg)]
    pods += [bind(admitted("prefill", 0, rbg), "b"), bind(admitted("prefill", 1, rbg), "b")]
    pods += [bind(admitted("decode", 0, rbg), "b")]
    d = decide(rbg, pods, [node("a"), node("b")])
    assert d.delete == []  # it would come back on the old template, outside any batch
    assert d.batches[1].waiting
    assert "g-prefill-2" in d.batches[1].message
    assert "partition" in d.batches[1].message


def test_a_released_member_the_scheduler_refuses_is_reported_with_its_reason() -> None:
    rbg = group(prefill=2, decode=1)
    pods = [bind(admitted("prefill", i, rbg), "a") for i in (0, 1)]
    decode = admitted("decode", 0, rbg)
    decode["spec"].update(schedulingGates=[], nodeSelector={HOST: "a"})
    decode["status"] = {
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/2 nodes are available: 1 node(s) didn't have free ports",
            }
        ]
    }
    d = decide(rbg, [*pods, decode], [node("a"), node("b")])
    (b,) = d.batches
    assert b.phase == "Planned"
    assert b.waiting
    assert b.message == (
        "g-decode-0 is not scheduled in a: Unschedulable: 0/2 nodes are available: 1 node(s) didn't have "
        "free ports"
    )


def test_exclusive_groups_waiting_for_the_same_domain_do_not_block_each_other() -> None:
    member = {
        "metadata": {
            "name": "x",
            "labels": {batches.GROUP_NAME: "other", batches.batch_label(batches.EXCLUSIVE): "0"},
        },
        "spec": {"nodeSelector": {HOST: "a"}, "schedulingGates": [{"name": GATE}]},
    }
    assert batches.others_domains([node("a")], [member], "g", HOST) == set()


# -- the tracker --------------------------------------------------------------------------------------


def waiting_decision() -> release.Decision:
    return release.Decision(batches=[release.BatchState(0, message="no room", waiting=True)])


def test_a_wait_turns_stuck_after_the_timeout_counted_from_the_status_and_is_told_once() -> None:
    t0 = 1_800_000_000.0
    first = tracker.track("pd", HOST, waiting_decision(), {}, t0, timeout=60)
    assert first.status["batches"][0]["phase"] == "Pending"
    assert first.wake == 60
    # a restarted operator reads the status written before: the count goes on from t0
    later = tracker.track("pd", HOST, waiting_decision(), first.status, t0 + 61, timeout=60)
    assert later.status["batches"][0]["phase"] == "Stuck"
    assert later.status["phase"] == "Stuck"
    assert later.status["batches"][0]["since"] == tracker.rfc3339(t0)
    assert [e[1] for e in later.events] == ["BatchStuck"]
    again = tracker.track("pd", HOST, waiting_decision(), later.status, t0 + 120, timeout=60)
    assert again.events == []  # said once, not at every pass or restart


def test_a_new_domain_restarts_the_count_and_binding_is_told() -> None:
    t0 = 1_800_000_000.0
    stuck = tracker.track("pd", HOST, waiting_decision(), {}, t0 - 100, timeout=60)
    stuck = tracker.track("pd", HOST, waiting_decision(), stuck.status, t0, timeout=60)
    planned = release.Decision(
        batches=[release.BatchState(0, domain="b", phase="Planned")], planned=[(0, "b")]
    )
    after = tracker.track("pd", HOST, planned, stuck.status, t0 + 1, timeout=60)
    assert after.status["batches"][0] == {
        "index": 0,
        "phase": "Planned",
        "since": tracker.rfc3339(t0 + 1),
        "domain": "b",
    }
    assert ("Normal", "BatchPlanned", f"batch 0 of coordination pd planned on {HOST}=b") in after.events
    bound = release.Decision(batches=[release.BatchState(0, domain="b", phase="Bound")])
    done = tracker.track("pd", HOST, bound, after.status, t0 + 2, timeout=60)
    assert done.status["phase"] == "Completed"
    assert [e[1] for e in done.events] == ["BatchBound"]


def test_a_cordoned_or_relabelled_domain_whose_members_all_run_moves_nothing() -> None:
    rbg = group(prefill=2, decode=1)
    pods = [bind(admitted("prefill", i, rbg), "a") for i in (0, 1)] + [bind(admitted("decode", 0, rbg), "a")]
    cordoned = node("a")
    cordoned["spec"]["unschedulable"] = True
    cordoned["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    d = decide(rbg, pods, [cordoned, node("b")])
    assert d.delete == []
    assert d.moved == []
    assert d.batches[0].phase == "Bound"
    assert not d.batches[0].waiting


def test_an_evicted_pod_is_no_member() -> None:
    rbg = group(prefill=2, decode=1)
    members = [bind(admitted("prefill", i, rbg), "a") for i in (0, 1)] + [
        bind(admitted("decode", 0, rbg), "a")
    ]
    evicted = admitted("decode", 0, rbg)
    evicted["metadata"]["uid"] = "evicted"
    evicted["status"] = {"phase": "Failed"}
    d = decide(rbg, [*members, evicted], [node("a"), node("b")])
    assert d.batches[0].phase == "Bound"  # the Failed object is not counted as a fourth member


def test_a_gated_pod_of_an_earlier_layout_that_a_partition_keeps_is_let_run_as_it_was() -> None:
    data = group(prefill=4, decode=2).model_dump(by_alias=True, exclude_none=True)
    data["spec"]["roles"][0]["rolloutStrategy"] = {"rollingUpdate": {"partition": 3}}
    rbg = RoleBasedGroup.model_validate(data)
    # recreated from the old template after its node died; the webhook gates every coordinated pod
    old = admitted("prefill", 0, rbg)
    old["metadata"]["labels"][batches.COORDINATED] = "0123456789"
    pods = [old, bind(admitted("prefill", 1, rbg), "b"), bind(admitted("decode", 0, rbg), "b")]
    d = decide(rbg, pods, [node("a"), node("b")])
    assert [p["metadata"]["name"] for p in d.ungate] == ["g-prefill-0"]
    assert d.delete == []


def exclusive_router_group(replicas: int = 2) -> RoleBasedGroup:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    return RoleBasedGroup.model_validate(
        {
            "metadata": {
                "name": "g",
                "namespace": "ns",
                "annotations": {batches.EXCLUSIVE_ANNOTATIONS[0]: HOST},
            },
            "spec": {
                "roles": [
                    {
                        "name": "router",
                        "replicas": replicas,
                        "workload": {"apiVersion": "apps/v1", "kind": "Deployment"},
                        "template": tpl,
                    }
                ]
            },
        }
    )


def router(rbg: RoleBasedGroup, name: str, gpus: int = 4) -> Obj:
    pod = {
        "metadata": {
            "name": name,
            "uid": name,
            "labels": {
                batches.GROUP_NAME: "g",
                batches.ROLE_NAME: "router",
                batches.COORDINATED: batches.layout(rbg, "router"),
            },
        },
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]},
    }
    out = gating.mutate(pod, rbg)
    assert out is not None
    return out


def test_a_deployment_rollout_under_exclusive_topology_waits_for_the_room_its_old_pod_frees() -> None:
    rbg = exclusive_router_group()
    coord, aff = batches.exclusive_coordination(rbg)  # type: ignore[misc]
    running = bind(router(rbg, "g-router-a"), "a")
    old = bind(router(rbg, "g-router-b"), "a")
    old["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"  # replaced, still terminating
    new = router(rbg, "g-router-c")
    pods = [running, old, new]
    d = release.decide(rbg, coord, aff, pods, [node("a"), node("b")], usage(pods, {}), total=1)
    assert d.delete == []  # the group is not restarted for a pod that frees its room in a moment
    assert d.moved == []
    assert d.batches[0].message == "waiting for 1 terminating pods of the batch to free their room"


def test_a_bound_batch_keeps_its_since_so_an_idle_pass_writes_nothing() -> None:
    t0 = 1_800_000_000.0
    bound = release.Decision(batches=[release.BatchState(0, domain="b", phase="Bound")])
    first = tracker.track("pd", HOST, bound, {}, t0, timeout=60)
    later = tracker.track("pd", HOST, bound, first.status, t0 + 500, timeout=60)
    assert later.status == first.status
