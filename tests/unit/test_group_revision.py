"""RoleBasedGroup revisions (rbg.group.revision) and the CLI's history, diff and undo (rbg.cli.history)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rbg.api.hub import RoleBasedGroup
from rbg.cli import history
from rbg.group import desired, revision
from rbg.group.plan import plan

NOW = "2026-12-02T00:00:00Z"
Obj = dict[str, Any]


def group(image: str = "engine:1", replicas: int = 2, paused: bool | None = None, **extra: Any) -> Obj:
    update: Obj = {"maxUnavailable": 1}
    if paused is not None:
        update["paused"] = paused
    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1, "resourceVersion": "7"},
        "spec": {
            "roles": [
                {
                    "name": "prefill",
                    "replicas": replicas,
                    "rolloutStrategy": {"rollingUpdate": update},
                    "template": {"spec": {"containers": [{"name": "c", "image": image}]}},
                },
                {
                    "name": "decode",
                    "replicas": 1,
                    "template": {"spec": {"containers": [{"name": "c", "image": "decode:1"}]}},
                },
            ],
            **extra,
        },
    }


def model(obj: Obj) -> RoleBasedGroup:
    return RoleBasedGroup.model_validate(obj)


def stored(body: Obj, created: str = NOW) -> Obj:
    """A revision as the API returns it."""
    out = copy.deepcopy(body)
    out["metadata"]["creationTimestamp"] = created
    out["metadata"]["uid"] = "r-" + out["metadata"]["name"]
    return out


def history_of(*objs: Obj) -> list[Obj]:
    """The revisions the controller would have made, one spec after another."""
    revisions: list[Obj] = []
    for obj in objs:
        _, created, stale = revision.plan_revisions(
            model(obj), revisions, desired.owner_reference(model(obj))
        )
        if created is not None:
            revisions.append(stored(created))
        gone = {r["metadata"]["name"] for r in stale}
        revisions = [r for r in revisions if r["metadata"]["name"] not in gone]
    return revisions


def test_a_new_revision_only_when_the_roles_change_not_when_they_scale_or_pause() -> None:
    revisions = history_of(group(), group(replicas=5), group(paused=True), group(replicas=0, paused=False))
    assert [revision.number(r) for r in revisions] == [1]
    revisions = history_of(group(), group(image="engine:2"), group(image="engine:2", replicas=9))
    assert [revision.number(r) for r in revisions] == [1, 2]
    assert revisions[1]["metadata"]["name"].startswith("g-")
    assert revisions[1]["metadata"]["name"].endswith("-2")
    assert revisions[1]["metadata"]["labels"][revision.REVISION_LABEL] in revisions[1]["metadata"]["name"]


def test_going_back_to_an_old_template_is_a_new_higher_revision() -> None:
    revisions = history_of(group(image="a"), group(image="b"), group(image="a"))
    assert [revision.number(r) for r in revisions] == [1, 2, 3]
    assert revisions[0]["data"] == revisions[2]["data"]


def test_history_keeps_the_newest_five_and_always_the_current() -> None:
    revisions = history_of(*[group(image=f"engine:{i}") for i in range(8)])
    assert [revision.number(r) for r in revisions] == [4, 5, 6, 7, 8]
    _, _, stale = revision.plan_revisions(model(group(image="engine:7")), revisions, {}, limit=1)
    assert [revision.number(r) for r in stale] == [4, 5, 6, 7]


def test_the_plan_records_the_revision_before_the_workloads_and_names_it_in_status() -> None:
    result = plan(model(group()), [], NOW)
    assert result.apply[0]["kind"] == "ControllerRevision"
    assert result.status["currentRevision"] == result.apply[0]["metadata"]["name"]
    assert result.apply[0]["metadata"]["ownerReferences"][0]["uid"] == "u"


def test_a_change_of_one_role_changes_only_that_roles_revision_label() -> None:
    before = {
        w["metadata"]["name"]: w for w in plan(model(group()), [], NOW).apply if w["kind"] == "StatefulSet"
    }
    after = {
        w["metadata"]["name"]: w
        for w in plan(model(group(image="engine:2", replicas=7)), [], NOW).apply
        if w["kind"] == "StatefulSet"
    }

    def label(w: Obj) -> str:
        return str(w["spec"]["template"]["metadata"]["labels"][revision.ROLE_REVISION])

    assert label(before["g-prefill"]) != label(after["g-prefill"])
    assert label(before["g-decode"]) == label(after["g-decode"])  # decode's pods do not roll
    assert before["g-decode"]["spec"]["template"] == after["g-decode"]["spec"]["template"]
    assert after["g-prefill"]["metadata"]["labels"][revision.ROLE_REVISION] == label(after["g-prefill"])
    scaled = plan(model(group(replicas=7)), [], NOW).apply
    assert label(next(w for w in scaled if w["metadata"]["name"] == "g-prefill")) == label(
        before["g-prefill"]
    )


def test_undo_restores_the_roles_and_keeps_replicas_and_pause() -> None:
    revisions = history_of(group(image="engine:1"), group(image="engine:2"))
    live = group(image="engine:2", replicas=6, paused=True)
    live["status"] = {"currentRevision": revisions[-1]["metadata"]["name"]}
    target = history.undo_target(live, revisions, None)
    assert revision.number(target) == 1
    patch = history.undo_patch(live, target)
    assert patch["metadata"] == {"resourceVersion": "7"}  # a group changed meanwhile is not overwritten
    prefill = patch["spec"]["roles"][0]
    assert prefill["template"]["spec"]["containers"][0]["image"] == "engine:1"
    assert prefill["replicas"] == 6
    assert prefill["rolloutStrategy"]["rollingUpdate"]["paused"] is True
    assert patch["spec"]["roleTemplates"] is None  # a merge patch removes what the revision did not have


def test_undo_refusals_name_the_reason() -> None:
    one = history_of(group())
    with pytest.raises(history.HistoryError, match="no enough revision"):
        history.undo_target(group(), one, None)
    two = history_of(group(image="a"), group(image="b"))
    with pytest.raises(history.HistoryError, match="revision 9 not found"):
        history.undo_target(group(image="b"), two, 9)
    with pytest.raises(history.HistoryError, match="current revision: nothing to undo"):
        history.undo_target(group(image="b"), two, 2)
    with pytest.raises(history.HistoryError, match="cannot be negative"):
        history.find(two, -1)


def test_diff_shows_what_changed_since_a_revision() -> None:
    revisions = history_of(group(image="engine:1"), group(image="engine:2"))
    text = history.diff(revisions, 1, group(image="engine:2"))
    assert "-        image: engine:1" in text
    assert "+        image: engine:2" in text
    assert history.diff(revisions, 2, group(image="engine:2")) == ""
    with pytest.raises(history.HistoryError, match="must be positive"):
        history.diff(revisions, 0, group())
    with pytest.raises(history.HistoryError, match="--revision=5 not found"):
        history.diff(revisions, 5, group())


def test_history_rows_mark_the_current_and_ignore_revisions_of_another_group() -> None:
    revisions = history_of(group(image="engine:1"), group(image="engine:2"))
    foreign = copy.deepcopy(revisions[0])
    foreign["metadata"]["ownerReferences"][0]["uid"] = "an earlier group of the same name"
    mine = history.owned(group(), [revisions[1], foreign, revisions[0]])
    assert [revision.number(r) for r in mine] == [1, 2]
    rows = history.history_rows(group(), mine)
    assert [(r["revision"], r["current"]) for r in rows] == [(1, False), (2, True)]
    assert rows[1]["roles"] == "prefill=engine:2 decode=decode:1"
    assert "*2" in history.render_history(rows)


def test_an_unchanged_group_applies_no_revision_and_a_fast_second_edit_gets_the_next_number() -> None:
    revisions = history_of(group())
    steady = plan(model(group()), revisions, NOW)
    assert [o for o in steady.apply if o["kind"] == "ControllerRevision"] == []  # nothing to write when idle
    assert steady.status["currentRevision"] == revisions[0]["metadata"]["name"]
    # revision 2 was written but the cache still shows only revision 1: the next edit is numbered 3
    edited = group(image="engine:3")
    edited["status"] = {"currentRevision": "g-abc-2"}
    _, created, _ = revision.plan_revisions(model(edited), revisions, {})
    assert created is not None
    assert revision.number(created) == 3
