"""The leader StatefulSet of a set: the partition and replicas of its rolling update, from what it is now
and the groups' states (rbg.lifecycle.rollout), and the event of a partition that moves down."""

from __future__ import annotations

from dataclasses import dataclass

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.leaderworker import labels
from rbg.lifecycle import rollout
from rbg.lifecycle.rollout import GroupState
from rbg.runtime.objects import Obj


@dataclass(frozen=True)
class Rollout:
    current: rollout.LeaderSet | None  # the leader StatefulSet as it is (None: not created yet)
    target: int  # the groups to run now (a scale-up waits while groups roll, D36)
    partition: int
    replicas: int  # the leader StatefulSet's replicas (surge groups included)
    max_unavailable: int  # the StatefulSet's maxUnavailable: the set's maxUnavailable plus its maxSurge

    def updating_message(self) -> str | None:
        """The GroupsUpdating event of a partition that moved down, or None."""
        if self.current is None or self.partition >= self.current.partition:
            return None
        first, last = self.partition, self.current.partition - 1
        return (
            f"Updating replica {first}"
            if first == last
            else f"Updating replicas {first} to {last} (inclusive)"
        )


def leader_set(sts: Obj | None, digest: str) -> rollout.LeaderSet | None:
    if sts is None:
        return None
    spec = sts.get("spec") or {}
    ru = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
    annotation = (sts["metadata"].get("annotations") or {}).get(labels.REPLICAS)
    template_rev = ((spec.get("template") or {}).get("metadata", {}).get("labels") or {}).get(labels.REVISION)
    return rollout.LeaderSet(
        replicas=int(spec.get("replicas", 0)),
        partition=int(ru.get("partition", 0) or 0),
        replicas_annotation=int(annotation) if annotation and annotation.isdigit() else None,
        template_current=template_rev == digest,
    )


def plan(lws: LeaderWorkerSet, leader_sts: Obj | None, digest: str, states: list[GroupState]) -> Rollout:
    ru = lws.spec.rollout_strategy.rolling_update_configuration
    current = leader_set(leader_sts, digest)
    target = lws.spec.replicas
    if current is not None:  # a template change and a scale-up: roll the groups it has first (D36)
        base = current.replicas_annotation if current.replicas_annotation is not None else current.replicas
        floor = min(ru.partition or 0, base)
        unfinished = not current.template_current or not all(s.updated for s in states[floor:base])
        target = rollout.roll_first(lws.spec.replicas, base, unfinished)
    partition, replicas = rollout.parameters(
        target, ru.max_unavailable, ru.max_surge, ru.partition or 0, current, states
    )
    unavailable, surge = rollout.limits(ru.max_unavailable, ru.max_surge, target)
    return Rollout(current, target, partition, replicas, unavailable + surge)
