"""Scaling adapters, pure: the adapter a role gets, binding and scaling decisions, the replicas lock."""

from __future__ import annotations

from typing import Any

from rbg.api.hub import RoleBasedGroup
from rbg.api.hub_scaling import RoleBasedGroupScalingAdapter
from rbg.group.plan import plan
from rbg.scaling import adapter

NOW = "2026-01-01T00:00:00Z"
LWS = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"}


def group(replicas: int = 2, enable: bool = True, **role: Any) -> RoleBasedGroup:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    roles = [
        {
            "name": "prefill",
            "replicas": replicas,
            "template": tpl,
            "scalingAdapter": {"enable": enable, "labels": {"team": "a"}},
            **role,
        },
        {"name": "router", "replicas": 1, "template": tpl},
    ]
    return RoleBasedGroup.model_validate(
        {"metadata": {"name": "pd", "namespace": "ns", "uid": "u", "generation": 1}, "spec": {"roles": roles}}
    )


def sa(replicas: int | None, status: dict[str, Any] | None = None) -> RoleBasedGroupScalingAdapter:
    spec: dict[str, Any] = {"scaleTargetRef": {"name": "pd", "role": "prefill"}}
    if replicas is not None:
        spec["replicas"] = replicas
    return RoleBasedGroupScalingAdapter.model_validate(
        {"metadata": {"name": "pd-prefill"}, "spec": spec, "status": status}
    )


def test_only_an_enabled_role_gets_an_adapter_owned_by_the_group_and_it_goes_with_the_flag() -> None:
    made = [o for o in plan(group(), [], NOW).apply if o["kind"] == "RoleBasedGroupScalingAdapter"]
    assert [o["metadata"]["name"] for o in made] == ["pd-prefill"]
    (obj,) = made
    assert obj["spec"] == {"scaleTargetRef": {"name": "pd", "role": "prefill"}}  # replicas are the scaler's
    assert obj["metadata"]["labels"] == {
        "team": "a",
        "rbg.workloads.x-k8s.io/group-name": "pd",
        "rbg.workloads.x-k8s.io/role-name": "prefill",
    }
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "u"
    # the flag turned off: the adapter the group owns is deleted
    owned = {**obj, "metadata": {**obj["metadata"], "uid": "a1"}}
    gone = plan(group(enable=False), [owned], NOW)
    assert [o["metadata"]["name"] for o in gone.delete] == ["pd-prefill"]


def test_first_bind_copies_the_roles_replicas_then_the_adapter_drives_the_role() -> None:
    d = adapter.decide(sa(None), group(replicas=2), ready=2, owner_uid="u")
    assert d.bind_replicas == 2
    assert d.scale_role is None
    assert d.status["phase"] == "Bound"
    assert (
        d.status["selector"]
        == "rbg.workloads.x-k8s.io/group-name=pd,rbg.workloads.x-k8s.io/role-name=prefill"
    )
    assert [e[1] for e in d.events] == ["SuccessfulBound"]
    d = adapter.decide(sa(5, {"phase": "Bound"}), group(replicas=2), ready=2, owner_uid="u")
    assert d.scale_role == (0, "prefill", 5)
    assert d.events == []  # bound already: not told again


def test_a_missing_target_is_not_bound_and_a_lws_role_selects_its_leaders() -> None:
    d = adapter.decide(sa(3), None, ready=0, owner_uid="u")
    assert d.status["phase"] == "NotBound"
    assert d.scale_role is None
    lws = group(workload=LWS, leaderWorkerSet={"size": 2})
    assert (
        adapter.decide(sa(2), lws, ready=1, owner_uid="u")
        .status["selector"]
        .endswith(",leaderworkerset.sigs.k8s.io/worker-index=0")
    )


def test_a_bound_roles_replicas_cannot_be_changed_by_hand_but_other_edits_pass() -> None:
    adapters = {"pd-prefill": sa(4)}
    old, new = group(replicas=4), group(replicas=3)
    (message,) = adapter.lock_errors(old, new, adapters)
    assert message == (
        'spec.roles[0].replicas (role "prefill"): cannot be changed to 3 while scalingAdapter.enable is true '
        'and ScalingAdapter "pd-prefill" has spec.replicas 4'
    )
    assert adapter.lock_errors(group(replicas=3), group(replicas=4), adapters) == []  # to the adapter's value
    assert (
        adapter.lock_errors(old, group(replicas=4, minReadySeconds=5), adapters) == []
    )  # not a replicas change
    assert adapter.lock_errors(old, new, {}) == []  # no adapter yet


def test_only_the_adapter_the_group_made_drives_its_role() -> None:
    # a user's own adapter (or a second one) would fight the group's, or undo every edit made by hand
    d = adapter.decide(sa(5), group(replicas=2), ready=2, owner_uid=None)
    assert d.scale_role is None
    assert d.bind_replicas is None
    assert d.status["phase"] == "NotBound"
    assert "set scalingAdapter.enable" in d.status["message"]
    d = adapter.decide(sa(5), group(replicas=2, enable=False), ready=2, owner_uid="u")
    assert d.scale_role is None  # the flag is off: the group's adapter is going away
