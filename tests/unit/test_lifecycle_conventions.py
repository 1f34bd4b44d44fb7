"""Kubernetes object conventions (rbg.lifecycle.conventions): conditions and their transition times,
owner references, the controlling owner."""

from __future__ import annotations

from rbg.lifecycle.conventions import condition, controller_uid, owner_reference, without_transition_times

T0, T1 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"


def _prev(status: str, reason: str = "R", type_: str = "Ready") -> list[dict[str, str]]:
    return [
        {"type": "Other", "status": status, "reason": reason, "lastTransitionTime": "elsewhere"},
        {"type": type_, "status": status, "reason": reason, "message": "m", "lastTransitionTime": T0},
    ]


def test_condition_without_a_previous_one_transitions_now() -> None:
    expected = {"type": "Ready", "status": "True", "reason": "R", "message": "m", "lastTransitionTime": T1}
    assert condition("Ready", True, "R", "m", None, T1) == expected
    assert condition("Ready", True, "R", "m", [], T1) == expected
    assert condition("Ready", True, "R", "m", _prev("True", type_="Progressing"), T1) == expected


def test_condition_keeps_the_transition_time_while_its_status_holds() -> None:
    assert condition("Ready", True, "R", "new message", _prev("True"), T1)["lastTransitionTime"] == T0
    assert condition("Ready", False, "R", "m", _prev("False"), T1)["lastTransitionTime"] == T0
    # a reason alone is no transition unless asked
    assert condition("Ready", True, "Other", "m", _prev("True"), T1)["lastTransitionTime"] == T0


def test_condition_transitions_when_its_status_flips() -> None:
    assert condition("Ready", False, "R", "m", _prev("True"), T1)["lastTransitionTime"] == T1
    assert condition("Ready", True, "R", "m", _prev("False"), T1)["lastTransitionTime"] == T1


def test_condition_with_same_reason_also_transitions_on_a_new_reason() -> None:
    assert condition("Ready", True, "R", "m", _prev("True"), T1, same_reason=True)["lastTransitionTime"] == T0
    assert (
        condition("Ready", True, "Other", "m", _prev("True"), T1, same_reason=True)["lastTransitionTime"]
        == T1
    )


def test_condition_takes_a_status_string_as_it_is() -> None:
    c = condition("Ready", "Unknown", "R", "m", _prev("Unknown"), T1)
    assert c["status"] == "Unknown"
    assert c["lastTransitionTime"] == T0


def test_condition_whose_previous_lacks_a_transition_time_transitions_now() -> None:
    previous = [{"type": "Ready", "status": "True"}]
    assert condition("Ready", True, "R", "m", previous, T1)["lastTransitionTime"] == T1


def test_without_transition_times_drops_only_those() -> None:
    conditions = _prev("True")
    assert without_transition_times(conditions) == [
        {"type": "Other", "status": "True", "reason": "R"},
        {"type": "Ready", "status": "True", "reason": "R", "message": "m"},
    ]
    assert conditions[1]["lastTransitionTime"] == T0  # the input is left as it was
    assert without_transition_times([]) == []
    assert without_transition_times(_prev("True")) == without_transition_times(
        [{**c, "lastTransitionTime": T1} for c in _prev("True")]
    )


def test_owner_reference() -> None:
    assert owner_reference("apps/v1", "StatefulSet", "s", "u1") == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "s",
        "uid": "u1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    ref = owner_reference("v1", "Pod", "p", "u2", controller=False, block_owner_deletion=False)
    assert ref["controller"] is False
    assert ref["blockOwnerDeletion"] is False


def test_controller_uid_reads_the_controlling_owner() -> None:
    def obj(*refs: dict[str, object]) -> dict[str, object]:
        return {"metadata": {"name": "x", "ownerReferences": list(refs)}}

    controlling = owner_reference("apps/v1", "StatefulSet", "s", "u1")
    other = owner_reference("v1", "Pod", "p", "u2", controller=False)
    assert controller_uid(obj(other, controlling)) == "u1"
    assert controller_uid(obj(other)) is None
    assert controller_uid(obj()) is None
    assert controller_uid({"metadata": {"name": "x"}}) is None
    assert controller_uid({}) is None
    assert controller_uid(None) is None
