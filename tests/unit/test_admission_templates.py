"""Which pod templates the validating webhooks have the API server dry-run (D16), and with what."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from rbg.api.hub import RoleBasedGroup
from rbg.controllers.leaderworkerset.admission import templates as lws_templates
from rbg.controllers.rolebasedgroup.admission import templates as rbg_templates
from rbg.runtime.dryrun import with_stand_ins
from tests.unit.leaderworker.lwsdata import lws

EXAMPLES = Path(__file__).parents[2] / "examples"
LEADER = {"spec": {"containers": [{"name": "leader", "image": "i"}]}}


def _pd_lws() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / "pd-lws.yaml").read_text())
    return doc


def test_a_leader_worker_sets_claims_are_stood_in_for_in_both_templates() -> None:
    claim = {"metadata": {"name": "cache"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    found = lws_templates(lws(leaderTemplate=LEADER, volumeClaimTemplates=[claim]))
    assert [(t.path, t.volumes) for t in found] == [
        ("spec.leaderWorkerTemplate.leaderTemplate", ("cache",)),
        ("spec.leaderWorkerTemplate.workerTemplate", ("cache",)),
    ]
    volumes = with_stand_ins(found[1].body, found[1].volumes)["spec"]["volumes"]
    assert volumes == [{"name": "cache", "emptyDir": {}}]


def test_the_worker_template_of_a_size_one_set_with_a_leader_template_makes_no_pod() -> None:
    assert [t.path for t in lws_templates(lws(size=1, leaderTemplate=LEADER))] == [
        "spec.leaderWorkerTemplate.leaderTemplate"
    ]
    # without a leader template the worker template makes the leaders
    assert [t.path for t in lws_templates(lws(size=1))] == ["spec.leaderWorkerTemplate.workerTemplate"]


def test_every_role_template_gets_the_discovery_volume_stood_in_for() -> None:
    doc = _pd_lws()
    found = rbg_templates(RoleBasedGroup.model_validate(doc))
    assert found
    assert {t.volumes for t in found} == {("rbg-cluster-config",)}
    # the user's template as written: no env var or volume of the operator's in it
    assert all("rbg-cluster-config" not in str(t.body) for t in found)


def _notes(doc: dict[str, Any], index: int) -> list[str]:
    made = rbg_templates(RoleBasedGroup.model_validate(doc))
    return [t.note for t in made if t.path.startswith(f"spec.roles[{index}]")]


def test_a_size_one_leader_worker_role_has_no_worker_template_to_check() -> None:
    doc = _pd_lws()
    index = next(i for i, r in enumerate(doc["spec"]["roles"]) if r.get("leaderWorkerSet"))
    assert _notes(doc, index) == ["the leader's pods", "the workers' pods"]
    one = copy.deepcopy(doc)
    one["spec"]["roles"][index]["leaderWorkerSet"]["size"] = 1
    assert _notes(one, index) == ["the leader's pods"]
    # no replicas: nothing runs, every template is still checked
    one["spec"]["roles"][index]["replicas"] = 0
    assert _notes(one, index) == ["the leader's pods", "the workers' pods"]
