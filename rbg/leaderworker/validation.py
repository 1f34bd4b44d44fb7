"""What the LeaderWorkerSet CRD schema cannot check, as upstream's webhook checks it, plus the KEP-162
placement rules. Every message starts with the field path it is about."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.leaderworker import labels
from rbg.lifecycle.intstr import PERCENT as _PERCENT
from rbg.lifecycle.intstr import scaled

MAX_INT32 = 2**31 - 1
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

PlacementType = Literal["Exclusive", "Colocated", "None"]


@dataclass(frozen=True)
class Placement:
    """The placement of a set's groups: from spec.leaderWorkerTemplate.topologyPlacementPolicy or the
    upstream annotation (which alone means Exclusive)."""

    type: PlacementType = "None"
    key: str | None = None


def placement(lws: LeaderWorkerSet) -> Placement:
    """The effective placement (assumes `validate` passed: annotation and field agree)."""
    policy = lws.spec.leader_worker_template.topology_placement_policy
    if policy is not None and policy.type != "None" and policy.topology_key:
        return Placement(policy.type, policy.topology_key)
    annotation = (lws.metadata.annotations or {}).get(labels.EXCLUSIVE)
    if annotation:
        return Placement("Exclusive", annotation)
    return Placement()


def _int_or_percent(path: str, value: int | str) -> list[str]:
    if isinstance(value, int):
        return [f"{path}: must be >= 0, got {value}"] if value < 0 else []
    m = _PERCENT.match(value)
    if m is None:
        return [f"{path}: must be a non-negative integer or a percentage like '25%', got {value!r}"]
    if int(m.group(1)) > 100:
        return [f"{path}: must not be more than 100%, got {value!r}"]
    return []


def validate(
    lws: LeaderWorkerSet, old: LeaderWorkerSet | None = None, *, replicas_dependent: bool = True
) -> list[str]:
    """Errors of a create (old None) or update; empty when admissible.

    `replicas_dependent=False` leaves out what depends on spec.replicas alone (the controller's re-check:
    a scale through /scale, e.g. by an HPA, never meets the webhook and must not stop the set)."""
    errors: list[str] = []
    name = lws.metadata.name
    if name and (len(name) > 63 or not _DNS1035.match(name)):
        errors.append(
            f"metadata.name: {name!r} must be a DNS-1035 label (lowercase letters, digits and '-', starting "
            "with a letter, at most 63 characters): it names the headless Service"
        )
    spec = lws.spec
    lwt = spec.leader_worker_template
    size = lwt.size
    if replicas_dependent and spec.replicas * size > MAX_INT32:
        errors.append(f"spec.replicas: replicas x size = {spec.replicas} x {size} exceeds {MAX_INT32} pods")
    sgp = lwt.sub_group_policy
    sgs = sgp.sub_group_size if sgp else None
    if sgs is not None:
        path = "spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize"
        if sgs > size:
            errors.append(f"{path}: {sgs} is larger than size {size}")
        elif size % sgs != 0 and (size - 1) % sgs != 0:
            errors.append(f"{path}: size ({size}) or size - 1 must be divisible by subGroupSize ({sgs})")
        if sgp is not None and sgp.sub_group_policy_type == "LeaderExcluded" and (size - 1) % sgs != 0:
            errors.append(
                f"{path}: with subGroupPolicyType LeaderExcluded, size - 1 ({size - 1}) must be divisible "
                f"by subGroupSize ({sgs})"
            )
    if old is not None:
        old_sgp = old.spec.leader_worker_template.sub_group_policy
        old_sgs = old_sgp.sub_group_size if old_sgp else None
        if old_sgs != sgs:
            errors.append(
                "spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: cannot be added, removed or changed "
                f"after creation (was {old_sgs}, now {sgs})"
            )
    ru = spec.rollout_strategy.rolling_update_configuration
    base = "spec.rolloutStrategy.rollingUpdateConfiguration"
    bad = _int_or_percent(f"{base}.maxUnavailable", ru.max_unavailable)
    bad += _int_or_percent(f"{base}.maxSurge", ru.max_surge)
    errors += bad
    if not bad and spec.replicas > 0 and replicas_dependent:
        unavailable = scaled(ru.max_unavailable, spec.replicas, round_up=False)
        surge = scaled(ru.max_surge, spec.replicas, round_up=True)
        if unavailable == 0 and surge == 0:
            errors.append(
                f"{base}: maxUnavailable ({ru.max_unavailable!r}) and maxSurge ({ru.max_surge!r}) are both 0 "
                f"for {spec.replicas} replicas: the update could never make progress"
            )
    errors += _placement_errors(lws)
    return errors


def _placement_errors(lws: LeaderWorkerSet) -> list[str]:
    errors: list[str] = []
    lwt = lws.spec.leader_worker_template
    annotations = lws.metadata.annotations or {}
    policy = lwt.topology_placement_policy
    field = "spec.leaderWorkerTemplate.topologyPlacementPolicy"
    if policy is not None and policy.type != "None" and not policy.topology_key:
        errors.append(f"{field}.topologyKey: required for type {policy.type}")
    annotation = annotations.get(labels.EXCLUSIVE)
    if annotation is not None and not annotation:
        errors.append(f"metadata.annotations[{labels.EXCLUSIVE}]: must name a node label, not be empty")
    if (
        annotation
        and policy is not None
        and policy.type != "None"
        and (policy.type != "Exclusive" or policy.topology_key != annotation)
    ):
        errors.append(
            f"metadata.annotations[{labels.EXCLUSIVE}]={annotation!r} conflicts with {field} "
            f"(type {policy.type}, topologyKey {policy.topology_key!r}): when both are set the policy "
            "must be type Exclusive with the same topologyKey"
        )
    if annotation and policy is not None and policy.type == "None" and policy.topology_key:
        errors.append(
            f"metadata.annotations[{labels.EXCLUSIVE}]={annotation!r} conflicts with {field} "
            f"(type None, topologyKey {policy.topology_key!r}): set type Exclusive, or drop one of them"
        )
    sub = annotations.get(labels.SUBGROUP_EXCLUSIVE)
    if sub is not None:
        if lwt.sub_group_policy is None or lwt.sub_group_policy.sub_group_size is None:
            errors.append(
                f"metadata.annotations[{labels.SUBGROUP_EXCLUSIVE}]: requires "
                "spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize"
            )
        elif not sub:
            errors.append(f"metadata.annotations[{labels.SUBGROUP_EXCLUSIVE}]: must name a node label")
    return errors


def warnings(lws: LeaderWorkerSet) -> list[str]:
    out = []
    if lws.spec.leader_worker_template.restart_policy == "Default":
        out.append(
            "spec.leaderWorkerTemplate.restartPolicy: Default is deprecated and means None (only the pod "
            "restarts); use None"
        )
    return out
