"""A role's rolling update as the plan writes it (rbg.group.rollout): StatefulSet surge and unavailable
stepped by the operator, roll first and scale after, type Recreate, RollingUpdateInProgress."""

from __future__ import annotations

import copy
from typing import Any

from coordination_data import pd_group

from rbg.api.hub import RoleBasedGroup
from rbg.group import names
from rbg.group.plan import plan
from rbg.group.revision import ROLE_REVISION
from rbg.group.rollout import INSTANCES

NOW = "2026-12-02T00:00:00Z"
Obj = dict[str, Any]


def group(replicas: int, image: str = "e:1", kind: str = "StatefulSet", **update: Any) -> RoleBasedGroup:
    role: Obj = {
        "name": "prefill",
        "replicas": replicas,
        "workload": {"apiVersion": "apps/v1", "kind": kind},
        "template": {"spec": {"containers": [{"name": "c", "image": image}]}},
    }
    if update:
        role["rolloutStrategy"] = {"rollingUpdate": update}
    return RoleBasedGroup.model_validate(
        {"metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1}, "spec": {"roles": [role]}}
    )


def body(result: Any) -> Obj:
    return next(o for o in result.apply if o["kind"] in ("StatefulSet", "Deployment"))


def running(workload: Obj, replicas: int, updated: int | None = None) -> Obj:
    out = copy.deepcopy(workload)
    out["spec"]["replicas"] = replicas
    out["metadata"].update({"generation": 1, "uid": "w"})
    n = replicas if updated is None else updated
    out["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": n,
    }
    return out


def pods(workload: Obj, ordinals: range, ready: bool = True) -> list[Obj]:
    label = workload["spec"]["template"]["metadata"]["labels"][ROLE_REVISION]
    return [
        {
            "metadata": {
                "name": f"g-prefill-{i}",
                "uid": f"old-{i}-{label}",
                "labels": {names.ROLE_NAME: "prefill", names.POD_INDEX: str(i), ROLE_REVISION: label},
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }
        for i in ordinals
    ]


def partition(w: Obj) -> int:
    return int(((w["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)


def conditions(result: Any) -> dict[str, str]:
    return {c["type"]: c["status"] for c in result.status["conditions"]}


def test_a_statefulset_role_with_max_surge_surges_then_gives_the_surge_back() -> None:
    old = body(plan(group(4, maxSurge=1, maxUnavailable=0), [], NOW))
    assert old["metadata"]["annotations"][INSTANCES] == "4"
    new_group = group(4, image="e:2", maxSurge=1, maxUnavailable=0)
    seen = running(old, 4)
    first = plan(new_group, [seen], NOW, pods={"prefill": pods(old, range(4))})
    sts = body(first)
    assert (sts["spec"]["replicas"], partition(sts)) == (5, 4)  # one surge pod on the new template
    assert conditions(first)["RollingUpdateInProgress"] == "True"
    # the surge pod (ordinal 4) is ready on the new template: ordinal 3 may go
    surged = running(sts, 5, updated=1)
    step = body(
        plan(new_group, [surged], NOW, pods={"prefill": pods(old, range(4)) + pods(sts, range(4, 5))})
    )
    assert partition(step) == 3
    assert step["spec"]["replicas"] == 5
    done = running(step, 5)
    end = body(plan(new_group, [done], NOW, pods={"prefill": pods(sts, range(5))}))
    assert (end["spec"]["replicas"], partition(end)) == (4, 0)  # the surge given back


def test_max_unavailable_above_one_is_stepped_by_the_operator() -> None:
    old = body(plan(group(6, maxUnavailable=3), [], NOW))
    new_group = group(6, image="e:2", maxUnavailable=3)
    first = body(plan(new_group, [running(old, 6)], NOW, pods={"prefill": pods(old, range(6))}))
    assert partition(first) == 6  # a new revision starts at the top
    second = body(plan(new_group, [running(first, 6, updated=0)], NOW, pods={"prefill": pods(old, range(6))}))
    assert partition(second) == 3  # three pods at once


def test_a_template_change_with_a_scale_up_rolls_first_and_scales_after() -> None:
    old = body(plan(group(2), [], NOW))
    grown = group(5, image="e:2")
    first = body(plan(grown, [running(old, 2)], NOW, pods={"prefill": pods(old, range(2))}))
    assert first["spec"]["replicas"] == 2  # the two existing pods roll before three are added
    assert first["metadata"]["annotations"][INSTANCES] == "2"
    midway = body(plan(grown, [running(first, 2, updated=1)], NOW, pods={"prefill": pods(old, range(2))}))
    assert midway["spec"]["replicas"] == 2
    rolled = body(plan(grown, [running(first, 2)], NOW, pods={"prefill": pods(first, range(2))}))
    assert rolled["spec"]["replicas"] == 5
    # a scale-up alone is not held, nor a scale-down with a template change
    assert body(plan(group(5), [running(old, 2)], NOW))["spec"]["replicas"] == 5
    assert body(plan(group(1, image="e:2"), [running(old, 2)], NOW))["spec"]["replicas"] == 1


def test_a_scale_up_is_not_held_by_pods_a_partition_keeps() -> None:
    old = body(plan(group(4, partition=2), [], NOW))
    seen = running(old, 4, updated=2)  # ordinals 0-1 kept on the old template by the partition
    assert body(plan(group(6, partition=2), [seen], NOW))["spec"]["replicas"] == 6


def test_a_paused_statefulset_role_neither_steps_nor_surges() -> None:
    old = body(plan(group(4, maxSurge=2), [], NOW))
    paused = body(plan(group(4, image="e:2", maxSurge=2, paused=True), [running(old, 4)], NOW))
    assert (paused["spec"]["replicas"], partition(paused)) == (4, 4)


def test_recreate_deletes_every_old_pod_once_the_workload_holds_the_new_template() -> None:
    old = body(plan(group(3, type="Recreate"), [], NOW))
    assert old["spec"]["updateStrategy"] == {"type": "OnDelete"}
    new_group = group(3, image="e:2", type="Recreate")
    first = plan(new_group, [running(old, 3)], NOW, pods={"prefill": pods(old, range(3))})
    assert first.replace == []  # the StatefulSet does not hold the new template yet
    sts = body(first)
    second = plan(new_group, [running(sts, 3, updated=0)], NOW, pods={"prefill": pods(old, range(3))})
    assert sorted(p["metadata"]["name"] for p in second.replace) == [
        "g-prefill-0",
        "g-prefill-1",
        "g-prefill-2",
    ]
    third = plan(new_group, [running(sts, 3)], NOW, pods={"prefill": pods(sts, range(3))})
    assert third.replace == []
    assert conditions(third)["RollingUpdateInProgress"] == "False"


def test_deployment_recreate_uses_the_deployments_own_strategy() -> None:
    deployment = body(plan(group(3, kind="Deployment", type="Recreate"), [], NOW))
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_batched_roles_scale_with_their_template_change_at_once() -> None:
    """AffinityScheduling batches need their new members with the new layout: no roll-first hold."""

    def batched(prefill: int, decode: int, ratio: int) -> RoleBasedGroup:
        return pd_group(prefill, decode, ratios={"prefill": ratio, "decode": 1})

    before = {
        w["metadata"]["name"]: w for w in plan(batched(4, 2, 2), [], NOW).apply if w["kind"] == "StatefulSet"
    }
    seen = [running(before["g-prefill"], 4), running(before["g-decode"], 2)]
    after = {
        w["metadata"]["name"]: w
        for w in plan(batched(4, 4, 1), seen, NOW).apply
        if w["kind"] == "StatefulSet"
    }
    assert after["g-decode"]["spec"]["replicas"] == 4  # the layout changed and decode grew: not held


def test_rolling_update_in_progress_is_false_for_a_partitioned_rollout_and_true_while_paused() -> None:
    old = body(plan(group(4, partition=2), [], NOW))
    new = body(plan(group(4, image="e:2", partition=2), [running(old, 4)], NOW))
    parted = plan(group(4, image="e:2", partition=2), [running(new, 4, updated=2)], NOW)
    assert conditions(parted)["RollingUpdateInProgress"] == "False"  # as kubectl: partitioned, complete
    rolling = plan(group(4, image="e:2", partition=2), [running(new, 4, updated=1)], NOW)
    assert conditions(rolling)["RollingUpdateInProgress"] == "True"
    held = body(plan(group(4, image="e:2", paused=True), [running(old, 4)], NOW))
    paused = plan(group(4, image="e:2", paused=True), [running(held, 4, updated=2)], NOW)
    assert conditions(paused)["RollingUpdateInProgress"] == "True"  # held, not done
