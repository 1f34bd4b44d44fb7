from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rbg.runtime.diff import contains

OBSERVED: dict[str, Any] = {
    "metadata": {"name": "a", "resourceVersion": "7", "labels": {"x": "1", "y": "2"}},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "IfNotPresent"}]}
        },
    },
}


def test_fields_the_server_added_are_ignored() -> None:
    desired = {
        "metadata": {"name": "a", "labels": {"x": "1"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }
    assert contains(OBSERVED, desired)


def test_a_changed_or_missing_value_is_a_difference() -> None:
    assert not contains(OBSERVED, {"spec": {"replicas": 3}})
    assert not contains(OBSERVED, {"metadata": {"labels": {"z": "1"}}})
    assert not contains(
        OBSERVED, {"spec": {"template": {"spec": {"containers": [{"name": "c"}, {"name": "d"}]}}}}
    )


def test_zero_values_match_fields_the_server_omits() -> None:
    assert contains(OBSERVED, {"spec": {"minReadySeconds": 0, "args": [], "serviceName": ""}})
    # false and {} are kept by the server on pointer fields, so their absence is a real difference
    assert not contains(OBSERVED, {"spec": {"automountServiceAccountToken": False}})
    assert not contains(OBSERVED, {"spec": {"emptyDir": {}}})
    assert not contains(OBSERVED, {"spec": {"minReadySeconds": 5}})
    assert not contains({"spec": {"minReadySeconds": 5}}, {"spec": {"minReadySeconds": 0}})


values = st.recursive(
    st.integers(0, 3) | st.text("ab", max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("kl", max_size=1), inner, max_size=3),
    max_leaves=10,
)


@given(values)
def test_every_object_contains_itself(v: Any) -> None:
    assert contains(v, v)


def test_stamp_detects_removed_fields_that_contains_cannot_see() -> None:
    from rbg.runtime.diff import stamp, up_to_date

    key = "example.com/applied"
    old = stamp({"metadata": {"name": "a"}, "spec": {"partition": 2, "replicas": 1}}, key)
    observed = {**old, "status": {"replicas": 1}}
    plain_new = {"metadata": {"name": "a"}, "spec": {"replicas": 1}}
    new = stamp(plain_new, key)
    assert contains(observed, plain_new)  # the removed partition is invisible to a subset check ...
    assert not up_to_date(observed, new, key)  # ... but not to the stamp
    assert up_to_date(observed, old, key)
    edited = {**observed, "spec": {"partition": 2, "replicas": 5}}
    assert not up_to_date(edited, old, key)  # a hand edit is caught by the subset check
    assert stamp(old, key) == old  # stamping is idempotent


def test_namespace_terminating_is_recognised_from_the_status_cause() -> None:
    import json as _json

    from rbg.runtime.errors import ApiError

    body = {
        "kind": "Status",
        "code": 403,
        "reason": "Forbidden",
        "message": 'configmaps "x" is forbidden: unable to create new content in namespace zz because it is '
        "being terminated",
        "details": {
            "name": "x",
            "kind": "configmaps",
            "causes": [{"type": "NamespaceTerminating", "message": "namespace zz is being terminated"}],
        },
    }
    err = ApiError.from_body(403, _json.dumps(body).encode())
    assert err.namespace_terminating
    assert not ApiError.from_body(
        403, b'{"kind": "Status", "reason": "Forbidden", "message": "rbac"}'
    ).namespace_terminating


def test_resource_quantities_compare_by_value_only_where_they_are_quantities() -> None:
    from rbg.runtime.diff import quantity

    assert quantity("1000m") == quantity("1") == quantity(1)
    assert quantity("1.5Gi") == 1536 * 2**20
    assert quantity("2e3") == 2000
    assert quantity("abc") is None
    stored = {"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "8"}, "requests": {"memory": "1536Mi"}}}
    assert contains(
        stored,
        {"resources": {"limits": {"cpu": "1000m", "nvidia.com/gpu": 8}, "requests": {"memory": "1.5Gi"}}},
    )
    assert not contains(stored, {"resources": {"limits": {"cpu": "2"}}})
    # outside resource maps a string is a string: "1k" is not "1000"
    assert not contains({"env": [{"name": "N", "value": "1000"}]}, {"env": [{"name": "N", "value": "1k"}]})
    assert contains({"emptyDir": {"sizeLimit": "1Gi"}}, {"emptyDir": {"sizeLimit": "1024Mi"}})
