"""Admission for LeaderWorkerSets (validation) and for their pods (identity labels, placement terms and
LWS_* env vars). The leader and worker templates are checked by the API server's Pod validation (a
server-side dry run, D16). The pod webhook is scoped by an objectSelector to pods carrying the LWS name
label, so when the operator is down nobody else's pods are blocked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rbg.api.lws_v1 import GROUP, VERSION, LeaderWorkerSet
from rbg.leaderworker import labels, pods, validation
from rbg.runtime.admission import typed, typed_async
from rbg.runtime.dryrun import Template, Verdicts, check_templates
from rbg.runtime.manager import CACHE_WAIT
from rbg.runtime.webhook import Request, Rule, Verdict, patch_between

if TYPE_CHECKING:
    from rbg.runtime.client import Kube

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

#: how long the API server's dry run of the pod templates may take within one admission call
DRY_RUN_TIMEOUT = CACHE_WAIT / 2


def templates(lws: LeaderWorkerSet) -> list[Template]:
    """The set's leader and worker templates, where the user wrote them, with the volumes its
    volumeClaimTemplates add to every pod; the worker template only when it makes pods (a size of 1 with
    a leader template makes none from it)."""
    wire = lws.wire()
    lwt = (wire.get("spec") or {}).get("leaderWorkerTemplate") or {}
    where = "spec.leaderWorkerTemplate"
    named = ((c.get("metadata") or {}).get("name") for c in lwt.get("volumeClaimTemplates") or [])
    claims = tuple(n for n in named if isinstance(n, str) and n)
    used = ["leaderTemplate", "workerTemplate"]
    if lwt.get("leaderTemplate") and lwt.get("size", 1) == 1:
        used.remove("workerTemplate")
    return [Template(f"{where}.{name}", lwt[name], volumes=claims) for name in used if lwt.get(name)]


class LeaderWorkerSetAdmission:
    """The validating webhook with the API client that dry-runs the templates."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.verdicts = Verdicts()
        self.validate = typed_async(LeaderWorkerSet, self._check)

    async def _check(
        self, new: LeaderWorkerSet, old: LeaderWorkerSet | None, request: Request
    ) -> tuple[list[str], list[str]]:
        errors, warnings = check(new, old)
        if errors:
            return errors, warnings
        fresh = templates(new)
        if old is not None:  # a scale or a partition change costs no dry run
            before = templates(old)
            fresh = [t for t in fresh if t not in before]
        namespace = request.get("namespace") or new.metadata.namespace or "default"
        checked = await check_templates(
            self.kube, namespace, fresh, within=DRY_RUN_TIMEOUT, verdicts=self.verdicts
        )
        return checked.errors, warnings + checked.warnings


async def mutate_pod(request: dict[str, Any]) -> Verdict:
    pod = request.get("object") or {}
    namespace = request.get("namespace") or pod.get("metadata", {}).get("namespace") or ""
    mutated = pods.mutate(pod, namespace)
    return Verdict(patch=patch_between(pod, mutated) or None)
