"""RoleBasedGroupSets, pure: children by index, scale down from the top, one group rolled at a time."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from rbg.api.hub_groupset import RoleBasedGroupSet
from rbg.groupset import plan as gsp

NOW = "2026-01-01T00:00:00Z"
OWNER = {
    "apiVersion": "workloads.x-k8s.io/v1alpha1",
    "kind": "RoleBasedGroupSet",
    "name": "s",
    "uid": "u",
    "controller": True,
}


def groupset(
    replicas: int, image: str = "i:1", shape: str = "groupTemplate", **rollout: Any
) -> RoleBasedGroupSet:
    spec = {
        "roles": [
            {
                "name": "prefill",
                "replicas": 2,
                "template": {"spec": {"containers": [{"name": "c", "image": image}]}},
            }
        ]
    }
    body: dict[str, Any] = {"replicas": replicas}
    if shape == "groupTemplate":
        body["groupTemplate"] = {"labels": {"app": "x"}, "annotations": {"note": "y"}, "spec": spec}
    else:
        body["template"] = spec
    if rollout:
        body["rolloutStrategy"] = rollout
    return RoleBasedGroupSet.model_validate(
        {"metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 2}, "spec": body}
    )


def existing(obj: dict[str, Any], ready: bool = True) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].update(uid=obj["metadata"]["name"], generation=1)
    out["status"] = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return out


def test_children_are_made_by_index_with_the_templates_labels_and_annotations() -> None:
    p = gsp.plan(groupset(3), [], OWNER, NOW)
    assert [c["metadata"]["name"] for c in p.create] == ["s-0", "s-1", "s-2"]
    c = p.create[1]
    assert c["metadata"]["labels"] == {"app": "x", gsp.SET_NAME: "s", gsp.SET_INDEX: "1"}
    assert c["metadata"]["annotations"]["note"] == "y"
    assert c["spec"]["roles"][0]["name"] == "prefill"
    assert c["metadata"]["ownerReferences"] == [OWNER]
    # upstream v1alpha1's spec.template makes the same children (and the same revision)
    assert gsp.plan(groupset(3, shape="template"), [], OWNER, NOW).create[0]["spec"] == p.create[0]["spec"]


def test_scale_down_removes_the_highest_index_first() -> None:
    children = [existing(c) for c in gsp.plan(groupset(5), [], OWNER, NOW).create]
    p = gsp.plan(groupset(2), children, OWNER, NOW)
    assert [c["metadata"]["name"] for c in p.delete] == ["s-4", "s-3", "s-2"]
    assert p.create == []
    assert p.update == []


def test_a_template_change_rolls_one_group_at_a_time_in_index_order() -> None:
    children = [existing(c) for c in gsp.plan(groupset(3), [], OWNER, NOW).create]
    new = groupset(3, image="i:2")
    p = gsp.plan(new, children, OWNER, NOW)
    assert [c["metadata"]["name"] for c in p.update] == ["s-0"]  # the others wait
    # s-0 updated, not Ready yet on the new template: nothing more rolls
    children[0] = existing(p.update[0], ready=False)
    assert gsp.plan(new, children, OWNER, NOW).update == []
    children[0] = existing(p.update[0], ready=True)
    assert [c["metadata"]["name"] for c in gsp.plan(new, children, OWNER, NOW).update] == ["s-1"]
    # mid-rollout a scale-down removes old groups (the highest), never the updated s-0
    assert [
        c["metadata"]["name"] for c in gsp.plan(groupset(1, image="i:2"), children, OWNER, NOW).delete
    ] == ["s-2", "s-1"]


def test_max_unavailable_and_partition() -> None:
    children = [existing(c) for c in gsp.plan(groupset(4), [], OWNER, NOW).create]
    p = gsp.plan(groupset(4, image="i:2", maxUnavailable=2, partition=1), children, OWNER, NOW)
    assert [c["metadata"]["name"] for c in p.update] == ["s-1", "s-2"]  # two at once, s-0 below the partition
    status = gsp.plan(groupset(4, image="i:2"), children, OWNER, NOW).status
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (4, 4, 0)
    assert status["conditions"][0]["status"] == "False"  # not Ready until every group runs the template
    done = gsp.plan(groupset(4), children, OWNER, NOW).status
    assert done["conditions"][0]["reason"] == "AllReplicasReady"


def test_the_seeds_shape_names_roles_by_role_and_needs_no_spec_level() -> None:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    gs = RoleBasedGroupSet.model_validate(
        {
            "metadata": {"name": "demo-group", "namespace": "ns", "uid": "u"},
            "spec": {
                "replicas": 2,
                "groupTemplate": {
                    "roles": [
                        {"role": "prefill", "replicas": 2, "template": tpl},
                        {"role": "decode", "replicas": 2, "dependencies": ["prefill"], "template": tpl},
                    ]
                },
            },
        }
    )
    (first, _second) = gsp.plan(gs, [], OWNER, NOW).create
    roles = first["spec"]["roles"]
    assert [(r["name"], r["replicas"]) for r in roles] == [("prefill", 2), ("decode", 2)]
    assert "role" not in roles[0]
    assert roles[1]["dependencies"] == ["prefill"]


def test_a_fix_reaches_groups_that_never_became_ready_and_a_partition_still_lets_the_set_be_ready() -> None:
    bad = [existing(c, ready=False) for c in gsp.plan(groupset(3, image="typo"), [], OWNER, NOW).create]
    fixed = gsp.plan(groupset(3, image="i:1"), bad, OWNER, NOW)
    assert [c["metadata"]["name"] for c in fixed.update] == ["s-0", "s-1", "s-2"]  # none of them was serving
    # one old group down for another reason: it is replaced, the healthy ones wait their turn
    children = [existing(c) for c in gsp.plan(groupset(3), [], OWNER, NOW).create]
    children[2] = existing(children[2], ready=False)
    assert [
        c["metadata"]["name"] for c in gsp.plan(groupset(3, image="i:2"), children, OWNER, NOW).update
    ] == ["s-2"]
    # groups a partition keeps on the old template do not stop the set from being Ready
    healthy = [existing(c) for c in gsp.plan(groupset(3), [], OWNER, NOW).create]
    kept = [existing(c) for c in gsp.plan(groupset(3, image="i:2"), [], OWNER, NOW).create]
    mixed = [healthy[0], kept[1], kept[2]]
    status = gsp.plan(groupset(3, image="i:2", partition=1), mixed, OWNER, NOW).status
    assert status["conditions"][0]["status"] == "True"


def test_a_malformed_max_unavailable_never_crashes() -> None:
    children = [existing(c) for c in gsp.plan(groupset(4), [], OWNER, NOW).create]
    for value in ("abc%", "2", -1, "50%"):
        p = gsp.plan(groupset(4, image="i:2", maxUnavailable=value), children, OWNER, NOW)
        assert 1 <= len(p.update) <= 2


def _update_types(child: dict[str, Any]) -> dict[str, Any]:
    return {
        r["name"]: ((r.get("rolloutStrategy") or {}).get("rollingUpdate") or {}).get("type")
        for r in child["spec"]["roles"]
    }


def test_inside_a_group_every_changed_role_is_replaced_at_once_unless_asked_otherwise() -> None:
    # the seed's atomic rollout, the default: each role of a child rolls by Recreate
    assert _update_types(gsp.plan(groupset(1), [], OWNER, NOW).create[0]) == {"prefill": "Recreate"}
    assert _update_types(gsp.plan(groupset(1, type="Recreate"), [], OWNER, NOW).create[0]) == {
        "prefill": "Recreate"
    }
    # InPlaceUpdate: the child's roles roll as the template says (here: no strategy at all)
    (kept,) = gsp.plan(groupset(1, type="InPlaceUpdate"), [], OWNER, NOW).create
    assert "rolloutStrategy" not in kept["spec"]["roles"][0]
    # a role's own type and its other limits are kept
    gs = groupset(1)
    own = gs.model_copy(deep=True)
    assert own.spec.group_template is not None
    assert own.spec.group_template.spec is not None
    role = own.spec.group_template.spec.roles[0]
    role.rollout_strategy = (
        type(role)
        .model_validate(
            {"name": "prefill", "rolloutStrategy": {"rollingUpdate": {"type": "RecreatePod", "partition": 1}}}
        )
        .rollout_strategy
    )
    (c,) = gsp.plan(own, [], OWNER, NOW).create
    assert c["spec"]["roles"][0]["rolloutStrategy"]["rollingUpdate"]["type"] == "RecreatePod"
    assert c["spec"]["roles"][0]["rolloutStrategy"]["rollingUpdate"]["partition"] == 1
    # the template (not the forced type) is the revision: children made before keep theirs untouched
    children = [existing(kept)]
    assert gsp.plan(groupset(1), children, OWNER, NOW).update == []


def test_a_partition_may_be_a_percentage_rounded_down() -> None:
    children = [existing(c) for c in gsp.plan(groupset(4), [], OWNER, NOW).create]
    p = gsp.plan(groupset(4, image="i:2", maxUnavailable=4, partition="60%"), children, OWNER, NOW)
    assert [c["metadata"]["name"] for c in p.update] == ["s-2", "s-3"]  # 60 % of 4 is 2.4: 2 kept
    for value in ("abc", "-5%", "50 %", -1):
        with pytest.raises(ValidationError):  # refused by the model (and the CRD's rule)
            groupset(4, image="i:2", partition=value)
    # one stored before that rule (read past the model): every group kept, a typo rolls nothing
    gs = groupset(4, image="i:2", maxUnavailable=4)
    assert gs.spec.rollout_strategy is not None
    gs.spec.rollout_strategy.partition = "half"
    assert gsp.plan(gs, children, OWNER, NOW).update == []


def test_a_roles_own_partition_does_not_hold_the_sets_rollout_forever() -> None:
    group = {
        "metadata": {"generation": 2},
        "spec": {"roles": [{"name": "prefill", "rolloutStrategy": {"rollingUpdate": {"partition": 1}}}]},
        "status": {
            "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True"}],
            "roleStatuses": [{"name": "prefill", "replicas": 3, "updatedReplicas": 2}],
        },
    }
    assert gsp.ready(group)  # ordinal 0 is kept old by the role's partition: rolled as far as it goes
    group["status"]["roleStatuses"][0]["updatedReplicas"] = 1
    assert not gsp.ready(group)
    group["spec"]["roles"][0]["rolloutStrategy"]["rollingUpdate"]["partition"] = "50%"  # 1 of 3
    group["status"]["roleStatuses"][0]["updatedReplicas"] = 2
    assert gsp.ready(group)
