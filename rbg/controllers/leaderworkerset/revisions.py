"""The set's ControllerRevisions: the revision of the current template (created when new, the running
one kept when only its serialization differs), the group size each revision holds, and the history limit
once a rollout is done."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from rbg.api.lws_v1 import LeaderWorkerSet, LeaderWorkerTemplate
from rbg.controllers import decisions
from rbg.controllers.leaderworkerset.groups import label
from rbg.leaderworker import labels
from rbg.leaderworker.revision import (
    controller_revision,
    revision_data,
    revision_hash,
    revision_spec,
    same_revision,
)
from rbg.leaderworker.status import Group
from rbg.lifecycle.conventions import controller_uid
from rbg.runtime.client import Kube
from rbg.runtime.events import EventRecorder
from rbg.runtime.objects import CONTROLLERREVISION, Obj

#: revisions a LeaderWorkerSet keeps, the current one included (as a Deployment's revisionHistoryLimit)
HISTORY_LIMIT = 10


async def current(
    kube: Kube,
    recorder: EventRecorder,
    obj: Obj,
    lws: LeaderWorkerSet,
    owned: Iterable[Obj],
    running: str | None,
) -> tuple[str, Obj, dict[str | None, Obj]]:
    """(digest, data) of the current template (upstream's data, hash and name) and the set's revisions
    by digest, that one included. `owned`: the cached revisions with an owner reference to the set;
    `running`: the revision the leader StatefulSet runs."""
    uid = lws.metadata.uid
    data = revision_data(lws)
    digest = revision_hash(data)
    revisions = {label(r, labels.REVISION): r for r in owned if controller_uid(r) == uid}
    if (
        digest not in revisions
        and running in revisions
        and same_revision(revisions[running].get("data") or {}, data)
    ):
        # the running template, written otherwise (by an earlier version of this operator, or by
        # upstream with another serialization): keep its key, as upstream does, so nothing rolls
        digest, data = str(running), revisions[running]["data"]
    if digest not in revisions:
        number = max((int(r.get("revision", 0)) for r in revisions.values()), default=0) + 1
        body = controller_revision(lws, data, digest, number)
        revisions[digest] = await kube.apply(body, field_manager=labels.FIELD_MANAGER)
        decisions.record(f"LeaderWorkerSet/{lws.metadata.name}", None, body)
        recorder.event(
            obj,
            "Normal",
            "CreatingRevision",
            f"Creating revision with key {digest} for a template update",
        )
    return digest, data, revisions


def size(revision: Obj, lws: LeaderWorkerSet) -> int:
    """The group size the revision holds (the set's own when it does not read)."""
    try:
        lwt = revision_spec(revision["data"])["leaderWorkerTemplate"]
        return LeaderWorkerTemplate.model_validate(lwt).size
    except (KeyError, TypeError, AttributeError, ValidationError):
        return lws.spec.leader_worker_template.size


async def truncate(
    kube: Kube, revisions: dict[str | None, Obj], digest: str, groups: list[Group], ns: str
) -> None:
    """Once a rollout is done, revisions beyond the history limit go (upstream deletes every one no
    group uses; history is kept here as for Deployments, D36); one a group still uses never does."""
    used = {label(g.leader, labels.REVISION) for g in groups} | {digest}
    ordered = sorted(revisions.values(), key=lambda r: int(r.get("revision") or 0))
    unused = [r for r in ordered if label(r, labels.REVISION) not in used]
    for r in unused[: max(0, len(unused) - (HISTORY_LIMIT - 1))]:
        await kube.delete(
            CONTROLLERREVISION, r["metadata"]["name"], ns, preconditions_uid=r["metadata"]["uid"]
        )
