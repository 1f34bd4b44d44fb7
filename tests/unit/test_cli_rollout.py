"""`rbg rollout`: rows per role and the pause patch (guarded by the role's name)."""

from __future__ import annotations

from rbg.cli import rollout

OBJ = {
    "metadata": {"name": "g", "namespace": "ns"},
    "spec": {
        "roles": [
            {"name": "prefill", "replicas": 3},
            {
                "name": "decode",
                "replicas": 1,
                "rolloutStrategy": {"rollingUpdate": {"paused": True, "partition": 0}},
            },
            {"name": "router", "replicas": 1, "rolloutStrategy": {"type": "RollingUpdate"}},
        ]
    },
    "status": {"roleStatuses": [{"name": "prefill", "readyReplicas": 3, "updatedReplicas": 1}]},
}


def test_rows_and_text() -> None:
    rows = rollout.rows(OBJ)
    assert rows[0] == {"role": "prefill", "replicas": 3, "ready": 3, "updated": 1, "paused": False}
    assert rows[1]["paused"] is True
    text = rollout.render(OBJ)
    assert "prefill: 1/3 on the current template, 3 ready (rolling)" in text
    assert "decode: 0/1 on the current template, 0 ready (paused)" in text


def test_the_pause_patch_adds_what_is_missing_and_tests_each_roles_name() -> None:
    ops = rollout.pause_patch(OBJ, None, True)
    assert ops == [
        {"op": "test", "path": "/spec/roles/0/name", "value": "prefill"},
        {"op": "add", "path": "/spec/roles/0/rolloutStrategy", "value": {"rollingUpdate": {"paused": True}}},
        {"op": "test", "path": "/spec/roles/1/name", "value": "decode"},
        {"op": "add", "path": "/spec/roles/1/rolloutStrategy/rollingUpdate/paused", "value": True},
        {"op": "test", "path": "/spec/roles/2/name", "value": "router"},
        {"op": "add", "path": "/spec/roles/2/rolloutStrategy/rollingUpdate", "value": {"paused": True}},
    ]
    assert [o["path"] for o in rollout.pause_patch(OBJ, ["decode"], False)] == [
        "/spec/roles/1/name",
        "/spec/roles/1/rolloutStrategy/rollingUpdate/paused",
    ]
    assert rollout.pause_patch(OBJ, ["nope"], True) == []
