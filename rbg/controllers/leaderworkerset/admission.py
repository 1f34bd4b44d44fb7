"""Admission for LeaderWorkerSets (validation) and for their pods (identity labels, placement terms and
LWS_* env vars). The pod webhook is scoped by an objectSelector to pods carrying the LWS name label, so
when the operator is down nobody else's pods are blocked."""

from __future__ import annotations

from typing import Any

from rbg.api.lws_v1 import GROUP, VERSION, LeaderWorkerSet
from rbg.leaderworker import labels, pods, validation
from rbg.runtime.admission import typed
from rbg.runtime.webhook import Rule, Verdict, patch_between

RULE = Rule(
    path="/validate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
    name="vleaderworkerset.leaderworkerset.x-k8s.io",
    group=GROUP,
    version=VERSION,
    resource="leaderworkersets",
)
POD_RULE = Rule(
    path="/mutate--v1-pod",
    name="mpod.leaderworkerset.x-k8s.io",
    group="",
    version="v1",
    resource="pods",
    operations=("CREATE",),
    object_selector={"matchExpressions": [{"key": labels.NAME, "operator": "Exists"}]},
)


def check(new: LeaderWorkerSet, old: LeaderWorkerSet | None) -> tuple[list[str], list[str]]:
    """(errors, warnings) of a create (old None) or update."""
    return validation.validate(new, old), validation.warnings(new)


validate_leaderworkerset = typed(LeaderWorkerSet, check)


async def mutate_pod(request: dict[str, Any]) -> Verdict:
    pod = request.get("object") or {}
    namespace = request.get("namespace") or pod.get("metadata", {}).get("namespace") or ""
    mutated = pods.mutate(pod, namespace)
    return Verdict(patch=patch_between(pod, mutated) or None)
