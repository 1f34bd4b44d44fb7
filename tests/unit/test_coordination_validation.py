"""spec.coordination checks: the seed's rules, each message naming the coordination and the role."""

from __future__ import annotations

from typing import Any

from coordination_data import pd_group

from rbg.api.hub import RoleBasedGroup
from rbg.coordination.validation import batch_of
from rbg.group.validation import validate


def group(prefill: int, decode: int, **affinity: Any) -> RoleBasedGroup:
    return pd_group(prefill, decode, **affinity)


def errors(rbg: RoleBasedGroup) -> list[str]:
    return [str(e) for e in validate(rbg)]


def test_the_seeds_example_is_valid_and_its_type_is_inferred() -> None:
    rbg = group(6, 3)
    assert errors(rbg) == []
    assert rbg.spec.coordination is not None
    assert rbg.spec.coordination[0].kind == "AffinityScheduling"


def test_replicas_not_divisible_by_the_ratio_gives_the_seeds_exact_message() -> None:
    (err,) = errors(group(7, 3))
    assert err.endswith('role "prefill" has 7 replicas which is not divisible by ratio 2')
    assert err.startswith(
        'spec.coordination[0].strategy.affinityScheduling.ratios.prefill: coordination "pd"'
    )


def test_batch_counts_must_match() -> None:
    (err,) = errors(group(6, 2))
    assert "every role needs the same number of batches" in err
    assert "decode 2/1 = 2, prefill 6/2 = 3" in err


def test_missing_extra_and_non_positive_ratios_and_no_key() -> None:
    found = errors(group(6, 3, ratios={"prefill": 0, "router": 1}, topologyKey=""))
    assert any('role "decode" has no ratio' in e for e in found)
    assert any('ratio for role "router", which the coordination does not list' in e for e in found)
    assert any('role "prefill" has ratio 0; ratios are positive' in e for e in found)
    assert any("topologyKey is required" in e for e in found)


def test_one_role_is_not_a_coordination() -> None:
    rbg = group(6, 3, ratios={"prefill": 2})
    assert rbg.spec.coordination is not None
    rbg.spec.coordination[0].roles = ["prefill"]
    assert any("at least two roles" in e for e in errors(rbg))


def test_a_type_without_its_strategy_is_refused() -> None:
    rbg = group(6, 3)
    assert rbg.spec.coordination is not None
    rbg.spec.coordination[0].type = "RollingUpdate"
    assert any("type RollingUpdate needs strategy.rollingUpdate" in e for e in errors(rbg))


def test_max_unavailable_ratio_is_accepted_as_an_alias() -> None:
    rbg = group(6, 3)
    assert rbg.spec.coordination is not None
    doc = rbg.model_dump(by_alias=True)
    doc["spec"]["coordination"].append(
        {
            "name": "ru",
            "roles": ["prefill", "decode"],
            "strategy": {"rollingUpdate": {"maxUnavailableRatio": "5%"}},
        }
    )
    again = RoleBasedGroup.model_validate(doc)
    assert again.spec.coordination is not None
    ru = again.spec.coordination[1]
    assert ru.kind == "RollingUpdate"
    assert ru.strategy is not None
    assert ru.strategy.rolling_update is not None
    assert ru.strategy.rolling_update.max_unavailable_ratio == "5%"
    assert errors(again) == []


def test_batches_follow_ordinals() -> None:
    assert [batch_of(i, 2) for i in range(6)] == [0, 0, 1, 1, 2, 2]


def test_placements_that_could_never_start_are_refused() -> None:
    rbg = group(6, 3)
    doc = rbg.model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["roles"][1]["dependencies"] = ["prefill"]
    found = errors(RoleBasedGroup.model_validate(doc))
    assert any(
        'role "decode" waits for "prefill" to be Ready, but coordination "pd" starts' in e for e in found
    )

    doc = rbg.model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["podGroupPolicy"] = {"kubeScheduling": {}}
    found = errors(RoleBasedGroup.model_validate(doc))
    assert any("batchMode Sequential releases one batch at a time" in e for e in found)

    doc = rbg.model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["coordination"].append({**doc["spec"]["coordination"][0], "name": "again"})
    found = errors(RoleBasedGroup.model_validate(doc))
    assert any('role "prefill" is already placed by coordination "pd"' in e for e in found)

    doc = rbg.model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["coordination"][0]["roles"] = ["prefill", "decode", "prefill"]
    assert any("a role is listed twice" in e for e in errors(RoleBasedGroup.model_validate(doc)))


def test_exclusive_topology_set_on_a_running_group_with_a_deployment_role_is_refused_with_how() -> None:
    from rbg.api.hub import RoleBasedGroup
    from rbg.coordination.validation import update_errors

    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    doc = {
        "metadata": {"name": "g", "namespace": "ns"},
        "spec": {
            "roles": [
                {
                    "name": "router",
                    "replicas": 1,
                    "workload": {"apiVersion": "apps/v1", "kind": "Deployment"},
                    "template": tpl,
                },
                {"name": "prefill", "replicas": 2, "template": tpl},
            ]
        },
    }
    old = RoleBasedGroup.model_validate(doc)
    doc["metadata"]["annotations"] = {
        "rbg.workloads.x-k8s.io/group-exclusive-topology": "kubernetes.io/hostname"
    }
    new = RoleBasedGroup.model_validate(doc)
    ((path, message),) = update_errors(
        old, new
    )  # the StatefulSet role is re-batched; the Deployment cannot be
    assert path == "metadata.annotations"
    assert "role router (Deployment, 1 replicas) runs" in message
    assert "scale role router to 0 first" in message
    assert update_errors(new, new) == []
    doc["spec"]["roles"][0]["replicas"] = 0  # scaled to 0 first: the change is let through
    annotated_stopped = RoleBasedGroup.model_validate(doc)
    del doc["metadata"]["annotations"]
    assert update_errors(RoleBasedGroup.model_validate(doc), annotated_stopped) == []
