"""Pure helpers of rbg.runtime.objects: REST paths, cache trimming, owner lookups."""

from __future__ import annotations

import copy

from rbg.runtime.objects import (
    CONFIGMAP,
    DEPLOYMENT,
    EVENT,
    LAST_APPLIED,
    NAMESPACE,
    Key,
    Kind,
    Obj,
    key_of,
    matches_labels,
    owner_keys,
    owner_reference,
    trim,
)

WIDGET = Kind("example.com", "v1alpha1", "Widget", "widgets")


def test_api_version_and_paths() -> None:
    assert CONFIGMAP.api_version == "v1"
    assert EVENT.api_version == "events.k8s.io/v1"
    assert CONFIGMAP.path() == "/api/v1/configmaps"
    assert CONFIGMAP.path("ns") == "/api/v1/namespaces/ns/configmaps"
    assert CONFIGMAP.path("ns", "a") == "/api/v1/namespaces/ns/configmaps/a"
    assert DEPLOYMENT.path("ns", "d", "status") == "/apis/apps/v1/namespaces/ns/deployments/d/status"
    assert WIDGET.path("ns", "w", "scale") == "/apis/example.com/v1alpha1/namespaces/ns/widgets/w/scale"
    # a cluster-scoped kind ignores the namespace
    assert NAMESPACE.path("ignored", "kube-system") == "/api/v1/namespaces/kube-system"


def test_trim_drops_managed_fields_and_last_applied_without_mutating() -> None:
    obj = {
        "kind": "ConfigMap",
        "metadata": {
            "name": "a",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {LAST_APPLIED: "{...}", "keep": "me"},
        },
        "data": {"k": "v"},
    }
    before = copy.deepcopy(obj)
    trimmed = trim(obj)
    assert obj == before
    assert trimmed == {
        "kind": "ConfigMap",
        "metadata": {"name": "a", "annotations": {"keep": "me"}},
        "data": {"k": "v"},
    }
    assert trimmed["data"] is obj["data"]  # no deep copy


def test_trim_returns_the_same_object_when_there_is_nothing_to_drop() -> None:
    obj = {"metadata": {"name": "a", "annotations": {"x": "y"}}}
    assert trim(obj) is obj


def test_key_of() -> None:
    assert key_of({"metadata": {"name": "a", "namespace": "ns"}}) == Key("ns", "a")
    assert key_of({"metadata": {"name": "node-1"}}) == Key("", "node-1")
    assert str(Key("ns", "a")) == "ns/a"
    assert str(Key("", "a")) == "a"


def _child(*refs: Obj) -> Obj:
    return {"metadata": {"name": "c", "namespace": "ns", "ownerReferences": list(refs)}}


def test_owner_keys_match_group_kind_and_controller_flag() -> None:
    ctrl = {
        "apiVersion": "example.com/v1alpha1",
        "kind": "Widget",
        "name": "w1",
        "uid": "1",
        "controller": True,
    }
    other = {"apiVersion": "example.com/v1alpha1", "kind": "Widget", "name": "w2", "uid": "2"}
    old_version = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": "w3",
        "uid": "3",
        "controller": True,
    }
    wrong_kind = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "4", "controller": True}
    child = _child(ctrl, other, old_version, wrong_kind)
    # another version of the same kind is the same owner (as controller-runtime matches: group + kind)
    assert owner_keys(child, WIDGET) == [Key("ns", "w1"), Key("ns", "w3")]
    assert owner_keys(child, WIDGET, controller_only=False) == [
        Key("ns", "w1"),
        Key("ns", "w2"),
        Key("ns", "w3"),
    ]
    assert owner_keys({"metadata": {"name": "x", "namespace": "ns"}}, WIDGET) == []


def test_owner_keys_of_a_cluster_scoped_owner_have_no_namespace() -> None:
    ref = {"apiVersion": "v1", "kind": "Namespace", "name": "team", "uid": "1", "controller": True}
    assert owner_keys(_child(ref), NAMESPACE) == [Key("", "team")]


def test_owner_reference_round_trips_through_owner_keys() -> None:
    owner = {"apiVersion": "example.com/v1alpha1", "kind": "Widget", "metadata": {"name": "w", "uid": "u-1"}}
    child = _child(owner_reference(owner))
    assert owner_keys(child, WIDGET) == [Key("ns", "w")]


def test_matches_labels() -> None:
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    assert matches_labels(obj, {"a": "1"})
    assert matches_labels(obj, {})
    assert not matches_labels(obj, {"a": "2"})
    assert not matches_labels({"metadata": {}}, {"a": "1"})


def test_owners_are_matched_by_group_and_kind_whatever_the_version() -> None:
    rbg = Kind("workloads.x-k8s.io", "v1alpha2", "RoleBasedGroup", "rolebasedgroups")
    refs = [
        {
            "apiVersion": "workloads.x-k8s.io/v1alpha1",
            "kind": "RoleBasedGroup",
            "name": "old",
            "controller": True,
        },
        {"apiVersion": "other.io/v1alpha2", "kind": "RoleBasedGroup", "name": "foreign", "controller": True},
        {
            "apiVersion": "workloads.x-k8s.io/v1alpha2",
            "kind": "RoleBasedGroupSet",
            "name": "set",
            "controller": True,
        },
    ]
    child = {"metadata": {"namespace": "ns", "ownerReferences": refs}}
    assert owner_keys(child, rbg) == [Key("ns", "old")]  # made under v1alpha1, owned under v1alpha2
    pod_owner = Kind("", "v1", "Pod", "pods")
    leader = {
        "metadata": {
            "namespace": "ns",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "l", "controller": True}],
        }
    }
    assert owner_keys(leader, pod_owner) == [Key("ns", "l")]
