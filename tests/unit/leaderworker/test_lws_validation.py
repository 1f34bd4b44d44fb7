"""LeaderWorkerSet admission rules and the effective placement."""

from __future__ import annotations

from lwsdata import lws

from rbg.leaderworker import labels
from rbg.leaderworker.validation import Placement, placement, validate, warnings

EXCL = labels.EXCLUSIVE


def test_a_default_set_is_valid() -> None:
    assert validate(lws()) == []


def test_replicas_times_size_must_fit_int32() -> None:
    (err,) = validate(lws(replicas=1_000_000, size=100_000))
    assert err.startswith("spec.replicas: replicas x size")


def test_subgroup_rules() -> None:
    assert validate(lws(size=5, subGroupPolicy={"subGroupSize": 3}))[0].endswith(
        "size (5) or size - 1 must be divisible by subGroupSize (3)"
    )
    assert (
        "LeaderExcluded"
        in validate(lws(size=4, subGroupPolicy={"subGroupSize": 2, "subGroupPolicyType": "LeaderExcluded"}))[
            0
        ]
    )
    assert validate(lws(size=5, subGroupPolicy={"subGroupSize": 2})) == []
    old = lws(size=4, subGroupPolicy={"subGroupSize": 2})
    assert "cannot be added, removed or changed" in validate(lws(size=4), old)[0]


def test_max_unavailable_and_surge() -> None:
    both_zero = lws()
    both_zero.spec.rollout_strategy.rolling_update_configuration.max_unavailable = "25%"
    both_zero.spec.rollout_strategy.rolling_update_configuration.max_surge = 0
    assert "are both 0 for 2 replicas" in validate(both_zero)[0]
    zero = lws(replicas=0)
    zero.spec.rollout_strategy.rolling_update_configuration.max_unavailable = 0
    assert validate(zero) == []


def test_placement_from_the_field_or_the_annotation() -> None:
    assert placement(lws()) == Placement()
    assert placement(lws(annotations={EXCL: "h"})) == Placement("Exclusive", "h")
    policy = {"type": "Colocated", "topologyKey": "rack"}
    assert placement(lws(topologyPlacementPolicy=policy)) == Placement("Colocated", "rack")


def test_annotation_and_field_must_agree_and_the_message_names_both() -> None:
    bad = lws(annotations={EXCL: "h"}, topologyPlacementPolicy={"type": "Exclusive", "topologyKey": "rack"})
    (err,) = validate(bad)
    assert f"metadata.annotations[{EXCL}]='h'" in err
    assert "topologyPlacementPolicy (type Exclusive, topologyKey 'rack')" in err
    good = lws(annotations={EXCL: "h"}, topologyPlacementPolicy={"type": "Exclusive", "topologyKey": "h"})
    assert validate(good) == []


def test_deprecated_default_restart_policy_warns() -> None:
    assert "deprecated" in warnings(lws(restartPolicy="Default"))[0]


def test_the_controller_does_not_stop_a_set_scaled_through_the_scale_subresource() -> None:
    # an HPA scales 4 -> 3: 25% of 3 rounds down to 0, with maxSurge 0 (never seen by the webhook)
    scaled = lws(replicas=3)
    scaled.spec.rollout_strategy.rolling_update_configuration.max_unavailable = "25%"
    assert validate(scaled) != []
    assert validate(scaled, replicas_dependent=False) == []
