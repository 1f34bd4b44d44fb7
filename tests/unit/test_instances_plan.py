"""The RoleInstanceSet plan (rbg.instances.plan): its StatefulSets, rolling update, ordering and status.

The oracles count instances from the StatefulSet names and labels written, not from the plan's own
helpers."""

from __future__ import annotations

import copy
import json
import math
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rbg.api.roleinstanceset import RoleInstanceSet, RoleInstanceSetStatus
from rbg.instances import labels
from rbg.instances.plan import plan, start_order

Obj = dict[str, Any]
OWNER = {"apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleInstanceSet", "name": "s", "uid": "u"}


def _component(name: str, size: int, image: str = "img:1", after: list[str] | None = None) -> Obj:
    meta: Obj = {}
    if after is not None:
        meta["annotations"] = {labels.DEPENDS_ON: json.dumps({"startAfter": after})}
    return {
        "name": name,
        "size": size,
        "serviceName": "svc",
        "template": {"metadata": meta, "spec": {"containers": [{"name": "c", "image": image}]}},
    }


def _set(replicas: int, components: list[Obj], **update: Any) -> RoleInstanceSet:
    return RoleInstanceSet.model_validate(
        {
            "metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 3},
            "spec": {
                "replicas": replicas,
                "selector": {"app": "x"},
                "roleInstanceTemplate": {"components": components},
                "updateStrategy": update,
            },
        }
    )


def _running(bodies: list[Obj], ready: bool = True) -> list[Obj]:
    """The StatefulSets as the API server would show them once their pods are (or are not) ready."""
    out = []
    for b in bodies:
        o = copy.deepcopy(b)
        o["metadata"]["generation"] = 1
        n = o["spec"]["replicas"]
        o["status"] = {
            "observedGeneration": 1,
            "replicas": n,
            "readyReplicas": n if ready else 0,
            "updatedReplicas": n,
        }
        out.append(o)
    return out


def _converged(ris: RoleInstanceSet, observed: list[Obj] | None = None) -> list[Obj]:
    """Run the plan until it writes nothing new, every StatefulSet ready."""
    by_name = {o["metadata"]["name"]: o for o in observed or []}
    for _ in range(20):
        result = plan(ris, OWNER, list(by_name.values()), 3)
        for d in result.delete:
            by_name.pop(d["metadata"]["name"], None)
        new = {b["metadata"]["name"]: b for b in _running(result.apply)}
        if all(by_name.get(k, {}).get("spec") == v["spec"] for k, v in new.items()) and not result.delete:
            return list(by_name.values())
        by_name.update(new)
    raise AssertionError("did not converge")


def _index(sts: Obj) -> int:
    # from the name {set}-{index}-{component}
    return int(sts["metadata"]["name"].split("-")[1])


def test_each_component_of_each_instance_is_a_statefulset_named_as_upstream_pods() -> None:
    ris = _set(2, [_component("leader", 1), _component("worker", 2)])
    result = plan(ris, OWNER, [], 3)
    names = sorted(b["metadata"]["name"] for b in result.apply)
    assert names == ["s-0-leader", "s-0-worker", "s-1-leader", "s-1-worker"]
    worker = next(b for b in result.apply if b["metadata"]["name"] == "s-1-worker")
    assert worker["spec"]["replicas"] == 2
    assert worker["spec"]["serviceName"] == "svc"
    assert worker["metadata"]["ownerReferences"] == [OWNER]
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[labels.INSTANCE_NAME] == "s-1"
    assert pod_labels[labels.INSTANCE_INDEX] == "1"
    assert pod_labels[labels.COMPONENT_NAME] == "worker"
    assert pod_labels[labels.COMPONENT_SIZE] == "2"
    assert pod_labels["app"] == "x"
    # the selector picks this StatefulSet's pods only, never its sibling component's
    sel = worker["spec"]["selector"]["matchLabels"]
    assert sel == {"app": "x", labels.INSTANCE_NAME: "s-1", labels.COMPONENT_NAME: "worker"}
    assert result.status["replicas"] == 0
    assert result.status["labelSelector"] == "app=x"


def test_status_counts_ready_instances_once_all_their_components_are() -> None:
    ris = _set(2, [_component("leader", 1), _component("worker", 2)])
    observed = _running(plan(ris, OWNER, [], 3).apply)
    observed[0]["status"]["readyReplicas"] = 0  # s-0-leader not ready
    status = plan(ris, OWNER, observed, 3).status
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 1, 2)
    assert status["observedGeneration"] == 3


def test_start_after_waits_for_the_listed_components_of_the_same_instance() -> None:
    ris = _set(
        2,
        [
            _component("leader", 1),
            _component("worker", 2),
            _component("router", 1, after=["leader", "worker"]),
        ],
    )
    first = plan(ris, OWNER, [], 3)
    assert not any(b["metadata"]["name"].endswith("router") for b in first.apply)
    assert first.status["waiting"] == ["0-router", "1-router"]
    observed = _running(first.apply)
    for o in observed:  # instance 1's worker not ready yet
        if o["metadata"]["name"] == "s-1-worker":
            o["status"]["readyReplicas"] = 1
    second = plan(ris, OWNER, observed, 3)
    routers = sorted(b["metadata"]["name"] for b in second.apply if b["metadata"]["name"].endswith("router"))
    assert routers == ["s-0-router"]
    assert second.status["waiting"] == ["1-router"]


def test_an_order_with_a_cycle_or_an_unknown_name_is_no_order() -> None:
    ris = _set(1, [_component("a", 1, after=["b"]), _component("b", 1, after=["a"])])
    assert start_order(ris.spec.role_instance_template.components) == {"a": [], "b": []}
    ris = _set(1, [_component("a", 1, after=["nope"]), _component("b", 1)])
    assert len(plan(ris, OWNER, [], 3).apply) == 2


def test_scale_down_deletes_the_statefulsets_of_the_instances_above_the_replicas() -> None:
    ris = _set(3, [_component("leader", 1), _component("worker", 2)])
    observed = _converged(ris)
    result = plan(_set(1, [_component("leader", 1), _component("worker", 2)]), OWNER, observed, 3)
    assert sorted(d["metadata"]["name"] for d in result.delete) == [
        "s-1-leader",
        "s-1-worker",
        "s-2-leader",
        "s-2-worker",
    ]
    assert all(_index(b) == 0 for b in result.apply)


def test_a_removed_component_is_deleted_and_an_added_one_created() -> None:
    observed = _converged(_set(1, [_component("leader", 1), _component("worker", 1)]))
    result = plan(_set(1, [_component("leader", 1), _component("monitor", 1)]), OWNER, observed, 3)
    assert [d["metadata"]["name"] for d in result.delete] == ["s-0-worker"]
    assert "s-0-monitor" in [b["metadata"]["name"] for b in result.apply]


@settings(max_examples=150, deadline=None)
@given(
    replicas=st.integers(1, 8),
    max_unavailable=st.one_of(st.integers(1, 4), st.sampled_from(["25%", "50%", "100%"])),
    partition=st.integers(0, 8),
    broken=st.sets(st.integers(0, 7)),
    paused=st.booleans(),
)
def test_a_template_change_moves_exactly_what_the_budget_allows_highest_first(
    replicas: int, max_unavailable: int | str, partition: int, broken: set[int], paused: bool
) -> None:
    old = [_component("leader", 1), _component("worker", 2)]
    new = [_component("leader", 1, image="img:2"), _component("worker", 2, image="img:2")]
    observed = _converged(_set(replicas, old))
    for o in observed:
        if _index(o) in broken:
            o["status"]["readyReplicas"] = 0
    ris = _set(replicas, new, maxUnavailable=max_unavailable, partition=partition, paused=paused)
    result = plan(ris, OWNER, observed, 3)
    moved = {_index(b) for b in result.apply}
    assert not result.delete
    unhealthy = {i for i in broken if i < replicas}
    if paused:
        assert moved == set()
        return
    assert all(i >= partition for i in moved)
    # every unhealthy instance at or above the partition moves; healthy ones exactly as the budget allows
    assert unhealthy & set(range(partition, replicas)) <= moved
    if isinstance(max_unavailable, str):  # a percentage of the replicas, rounded down, at least one
        budget = max(math.floor(Fraction(replicas * int(max_unavailable[:-1]), 100)), 1)
    else:
        budget = max_unavailable
    candidates = sorted((set(range(partition, replicas)) - unhealthy), reverse=True)
    healthy_moved = sorted(moved - unhealthy, reverse=True)
    assert healthy_moved == candidates[: max(min(len(candidates), budget - len(unhealthy)), 0)]
    # a moved instance moves whole: every component on the new template
    for b in result.apply:
        assert b["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"
    assert len(result.apply) == 2 * len(moved)


EDITS = ("image", "size", "add", "remove", "rename", "service", "service-all")


def _edited(edit: str) -> list[Obj]:
    leader, worker = _component("leader", 1), _component("worker", 2)
    if edit == "image":
        worker = _component("worker", 2, image="img:2")
    elif edit == "size":
        worker = _component("worker", 3)
    elif edit == "add":
        return [leader, worker, _component("monitor", 1)]
    elif edit == "remove":
        return [leader]
    elif edit == "rename":
        worker = _component("engine", 2)
    elif edit == "service":
        worker = {**worker, "serviceName": "other"}
    elif edit == "service-all":  # every StatefulSet of every instance must be made again
        leader, worker = {**leader, "serviceName": "other"}, {**worker, "serviceName": "other"}
    return [leader, worker]


@settings(max_examples=120, deadline=None)
@given(
    replicas=st.integers(1, 6),
    max_unavailable=st.integers(1, 3),
    edit=st.sampled_from(EDITS),
    grow=st.integers(0, 2),
)
def test_any_edit_rolls_to_the_end_never_more_than_max_unavailable_instances_down(
    replicas: int, max_unavailable: int, edit: str, grow: int
) -> None:
    """A whole rollout, step by step: a StatefulSet just written is unavailable until the next step;
    instances are counted unavailable from the StatefulSets alone (any of them not ready)."""
    components = _edited(edit)
    state = {
        o["metadata"]["name"]: o
        for o in _converged(_set(replicas, [_component("leader", 1), _component("worker", 2)]))
    }
    ris = _set(replicas + grow, components, maxUnavailable=max_unavailable)
    ris = ris.model_copy(update={"status": RoleInstanceSetStatus(madeReplicas=replicas)})
    for _step in range(60):
        for o in state.values():  # what was written last step has come up
            o["status"]["readyReplicas"] = o["spec"]["replicas"]
        result = plan(ris, OWNER, list(state.values()), 3)
        ris = ris.model_copy(update={"status": RoleInstanceSetStatus.model_validate(result.status)})
        same = all(state.get(b["metadata"]["name"], {}).get("spec") == b["spec"] for b in result.apply)
        if same and not result.delete:
            break
        for d in result.delete:
            state.pop(d["metadata"]["name"])
        for b in _running(result.apply, ready=False):
            have = state.get(b["metadata"]["name"])
            if have is None or have["spec"] != b["spec"]:
                state[b["metadata"]["name"]] = b
            elif have is not None:
                state[b["metadata"]["name"]] = have
        present = {_index(o) for o in state.values()}
        down = {_index(o) for o in state.values() if o["status"]["readyReplicas"] < o["spec"]["replicas"]}
        down |= set(range(replicas)) - present  # an instance with no StatefulSet at all is down too
        old_down = {i for i in down if i < replicas}  # instances that were up before the edit
        assert len(old_down) <= max_unavailable, (edit, _step, sorted(down))
    else:
        raise AssertionError("the rollout did not end")
    want = sorted(f"s-{i}-{c['name']}" for i in range(replicas + grow) for c in components)
    assert sorted(state) == want
    final = plan(ris, OWNER, list(state.values()), 3).status
    assert final["updatedReadyReplicas"] == final["readyReplicas"] == replicas + grow


def test_a_service_name_change_replaces_the_statefulset_it_cannot_change() -> None:
    observed = _converged(_set(1, [_component("leader", 1), _component("worker", 1)]))
    edited = _set(1, [_component("leader", 1), {**_component("worker", 1), "serviceName": "other"}])
    result = plan(edited, OWNER, observed, 3)
    assert [d["metadata"]["name"] for d in result.delete] == ["s-0-worker"]
    assert "s-0-worker" not in [b["metadata"]["name"] for b in result.apply]
    rest = [o for o in observed if o["metadata"]["name"] != "s-0-worker"]
    again = plan(edited, OWNER, rest, 3)
    worker = next(b for b in again.apply if b["metadata"]["name"] == "s-0-worker")
    assert worker["spec"]["serviceName"] == "other"


def test_a_lost_statefulset_is_rebuilt_even_while_the_rollout_is_paused() -> None:
    observed = _converged(_set(2, [_component("leader", 1), _component("worker", 1)]))
    paused = _set(2, [_component("leader", 1, image="img:2"), _component("worker", 1)], paused=True)
    assert plan(paused, OWNER, observed, 3).apply == []  # nothing moves while paused
    lost = [o for o in observed if o["metadata"]["name"] != "s-0-worker"]
    result = plan(paused, OWNER, lost, 3)
    assert sorted(b["metadata"]["name"] for b in result.apply) == ["s-0-leader", "s-0-worker"]
    assert result.status["readyReplicas"] == 1


def test_a_scale_up_during_a_rollout_waits_until_the_old_instances_rolled() -> None:
    observed = _converged(_set(3, [_component("leader", 1)]))
    ris = _set(5, [_component("leader", 1, image="img:2")], maxUnavailable=1)
    result = plan(ris, OWNER, observed, 3)
    assert [b["metadata"]["name"] for b in result.apply] == ["s-2-leader"]
    assert result.status["waiting"] == ["3-leader", "4-leader"]


@settings(max_examples=60, deadline=None)
@given(
    replicas=st.integers(0, 6),
    scale_to=st.integers(0, 6),
    sizes=st.lists(st.integers(0, 3), min_size=1, max_size=3),
)
def test_converged_sets_have_exactly_one_statefulset_per_component_and_instance(
    replicas: int, scale_to: int, sizes: list[int]
) -> None:
    components = [_component(f"c{k}", size) for k, size in enumerate(sizes)]
    observed = _converged(_set(replicas, components))
    observed = _converged(_set(scale_to, components), observed)
    names = sorted(o["metadata"]["name"] for o in observed)
    assert names == sorted(f"s-{i}-c{k}" for i in range(scale_to) for k in range(len(sizes)))
    status = plan(_set(scale_to, components), OWNER, observed, 3).status
    assert status["replicas"] == status["readyReplicas"] == status["updatedReplicas"] == scale_to
    assert not plan(_set(scale_to, components), OWNER, observed, 3).delete


def test_an_instance_waiting_to_start_a_component_is_not_lost_and_keeps_its_template_while_paused() -> None:
    components = [_component("a", 1), _component("b", 1, after=["a"])]
    first = plan(_set(1, components), OWNER, [], 3)
    observed = _running(first.apply, ready=False)  # a is loading: b waits for it
    assert first.status["waiting"] == ["0-b"]
    edited = [_component("a", 1, image="img:2"), _component("b", 1, after=["a"])]
    assert plan(_set(1, edited, paused=True), OWNER, observed, 3).apply == []


def test_an_instance_that_lost_every_statefulset_is_made_again_at_once_and_counts_as_down() -> None:
    old = [_component("leader", 1)]
    observed = _converged(_set(3, old))
    gone = [o for o in observed if _index(o) != 0]  # someone deleted instance 0's only StatefulSet
    new = [_component("leader", 1, image="img:2")]
    ris = _set(3, new, maxUnavailable=1).model_copy(update={"status": RoleInstanceSetStatus(madeReplicas=3)})
    result = plan(ris, OWNER, gone, 3)
    # instance 0 is made again (on the current template); the budget is spent on it: nothing else moves
    assert [b["metadata"]["name"] for b in result.apply] == ["s-0-leader"]
    assert result.status["madeReplicas"] == 3


def test_discovery_gives_each_pod_its_own_instances_addresses_and_ports() -> None:
    leader = _component("leader", 1)
    leader["template"]["spec"]["containers"][0]["ports"] = [{"name": "grpc", "containerPort": 50051}]
    worker = _component("worker", 2)
    refs = {
        "addressRefs": [{"env": "LEADER_ADDR", "component": "leader", "index": 0}],
        "portRefs": [
            {"env": "LEADER_PORT", "component": "leader", "portName": "grpc"},
            {"env": "NOWHERE", "component": "leader", "portName": "http"},  # no such port: no variable
        ],
    }
    worker["template"]["metadata"] = {"annotations": {labels.DISCOVERY: json.dumps(refs)}}
    worker["template"]["spec"]["containers"][0]["env"] = [{"name": "LEADER_PORT", "value": "1"}]
    result = plan(_set(2, [leader, worker]), OWNER, [], 3)
    for i in (0, 1):
        sts = next(b for b in result.apply if b["metadata"]["name"] == f"s-{i}-worker")
        env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        assert env == [
            {"name": "LEADER_ADDR", "value": f"s-{i}-leader-0.svc.ns.svc.cluster.local"},
            {"name": "LEADER_PORT", "value": "1"},  # the user's own value wins
        ]
    leader_env = next(b for b in result.apply if b["metadata"]["name"] == "s-0-leader")["spec"]["template"]
    assert "env" not in leader_env["spec"]["containers"][0]
