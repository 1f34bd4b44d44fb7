"""LeaderWorkerSet controller: read the caches, call the pure core (rbg.leaderworker), apply the
difference.

One reconcile per set covers what upstream splits between its LWS and pod reconcilers: the revision,
the leader StatefulSet (partition and replicas of the rolling update), the Services, one worker
StatefulSet per group (owned by the group's leader pod), group restarts, and the status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from pydantic import ValidationError

from rbg.api.lws_v1 import API_VERSION, LeaderWorkerSet, LeaderWorkerTemplate
from rbg.controllers.kinds import LWS
from rbg.controllers.reading import read
from rbg.leaderworker import desired, labels, restart, validation
from rbg.leaderworker import status as lws_status
from rbg.leaderworker.restart import GonePod
from rbg.leaderworker.revision import (
    controller_revision,
    revision_data,
    revision_hash,
    revision_spec,
    same_revision,
)
from rbg.leaderworker.status import Group
from rbg.lifecycle import conventions, rollout
from rbg.lifecycle.conventions import controller_uid
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.diff import contains, stamp, up_to_date
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.informer import Informer
from rbg.runtime.manager import Manager
from rbg.runtime.objects import (
    CONTROLLERREVISION,
    NODE,
    POD,
    SERVICE,
    STATEFULSET,
    Key,
    Obj,
    rv_older,
    timestamp,
)

#: revisions a LeaderWorkerSet keeps, the current one included (as a Deployment's revisionHistoryLimit)
HISTORY_LIMIT = 10
log = logging.getLogger(__name__)
MISSING_REVISION_RETRY = 1.0


def _by_name_label(obj: Obj) -> list[Key]:
    name = (obj["metadata"].get("labels") or {}).get(labels.NAME)
    return [Key(obj["metadata"].get("namespace") or "", name)] if name else []


def _label(obj: Obj | None, key: str) -> str | None:
    return ((obj or {}).get("metadata", {}).get("labels") or {}).get(key)


class LeaderWorkerSetReconciler:
    def __init__(
        self, manager: Manager, kube: Kube, workers: int = 16, status_progress_interval: float = 5.0
    ) -> None:
        """`status_progress_interval`: seconds between status writes that only update counts (D19)."""
        self.kube = kube
        self.status_progress_interval = status_progress_interval
        self.sets = manager.informer(LWS)
        self.statefulsets = manager.informer(STATEFULSET, label_selector=labels.NAME)
        self.pods = manager.informer(POD, label_selector=labels.NAME)
        self.services = manager.informer(SERVICE, label_selector=labels.NAME)
        self.revisions = manager.informer(CONTROLLERREVISION, label_selector=labels.NAME)
        self.nodes: Informer = manager.informer(NODE, metadata_only=True)
        self.recorder: EventRecorder = manager.recorder("leaderworkerset-controller")
        self._gone: dict[Key, list[GonePod]] = defaultdict(list)
        self._recreating: dict[Key, set[str]] = defaultdict(set)  # leaders deleted to recreate their group
        self._written: dict[Key, tuple[str | None, Obj, float]] = {}  # (resourceVersion, status, when)
        # digests of bodies the API server stored without some of their fields (a field behind a feature
        # gate that is off): what it kept counts as up to date, so the body is not applied again and again
        self._lossy: set[str] = set()
        self._unplaced: set[str] = set()  # leaders whose node's domain was unknown (reported once)
        self.controller = Controller("leaderworkerset", self.reconcile, workers=workers)
        self.controller.for_informer(self.sets, predicate=not_status_only)
        # a worker pod deleted between two reconciles is gone from the cache: remember it for the restart
        # policy (a pod deleted by kwok or a node failure may never be seen terminating)
        self.pods.add_handler(self._on_pod)
        for informer in (self.statefulsets, self.pods, self.services, self.revisions):
            self.controller.watches(informer, _by_name_label)
        manager.add(self.controller)

    def _on_pod(self, event: str, obj: Obj, old: Obj | None) -> None:
        if event != "DELETED":
            return
        meta = obj["metadata"]
        pod_labels = meta.get("labels") or {}
        index = pod_labels.get(labels.GROUP_INDEX)
        leader = labels.LEADER_NAME not in (meta.get("annotations") or {})
        if leader or index is None or not index.isdigit():
            return
        for key in _by_name_label(obj):
            gone = GonePod(
                meta["name"], int(index), controller_uid(obj), pod_labels.get(labels.REVISION), leader
            )
            self._gone[key].append(gone)

    async def reconcile(self, key: Key) -> Result | None:
        gone = self._gone.pop(key, [])
        try:
            return await self._reconcile(key, gone)
        except ApiError as exc:
            if exc.namespace_terminating:
                return None  # the set goes with its namespace: nothing more to create
            self._gone[key] = gone + self._gone.get(key, [])  # the retry still sees those deletions
            raise
        except Exception:
            self._gone[key] = gone + self._gone.get(key, [])
            raise

    async def _reconcile(self, key: Key, gone: list[GonePod]) -> Result | None:
        obj = self.sets.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self._written.pop(key, None)
            self._recreating.pop(key, None)
            return None  # garbage collection removes what it owns
        lws = read(LeaderWorkerSet, obj, self.recorder)
        if lws is None:
            return None
        # (a replicas change through /scale never meets the webhook: what depends on replicas alone, like
        # maxUnavailable and maxSurge both rounding to 0, must not stop the set)
        errors = validation.validate(lws, replicas_dependent=False)
        if errors:  # admitted before the webhook ran (or with it off): say so, create nothing
            await self._write_status(key, obj, self._invalid_status(lws, obj, errors))
            return None
        place = validation.placement(lws)
        uid = lws.metadata.uid
        ns, name = key

        leader_sts = self.statefulsets.get(Key(ns, name))
        if leader_sts is not None and controller_uid(leader_sts) != uid:
            leader_sts = None  # an earlier set's of the same name, going away: not written (see _free)

        # the revision of the current template (upstream's data, hash and name)
        data = revision_data(lws)
        digest = revision_hash(data)
        revisions = {
            _label(r, labels.REVISION): r for r in self.revisions.by_owner(uid) if controller_uid(r) == uid
        }
        running = _label(leader_sts, labels.REVISION) if leader_sts is not None else None
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
            revisions[digest] = await self.kube.apply(body, field_manager=labels.FIELD_MANAGER)
            self.recorder.event(
                obj,
                "Normal",
                "CreatingRevision",
                f"Creating revision with key {digest} for a template update",
            )

        # what exists of each group
        groups = self._groups(lws, leader_sts)
        sizes = {h: _size(r, lws) for h, r in revisions.items()}
        for g in groups:
            g.size = sizes.get(_label(g.leader, labels.REVISION) or "", lws.spec.leader_worker_template.size)
        states = [lws_status.state(g, g.size or 1, digest) for g in groups]

        # restarts first: a group being recreated gets no new worker StatefulSet
        doomed_uids: set[str] = set()
        recreating = self._recreating[key]
        recreating &= {g.leader["metadata"]["uid"] for g in groups if g.leader is not None}
        for doomed, message in restart.recreate(lws, groups, gone):
            leader_uid = doomed["metadata"]["uid"]
            if leader_uid in recreating:
                continue
            recreating.add(leader_uid)
            if await self.kube.delete(
                POD, doomed["metadata"]["name"], ns, propagation="Foreground", preconditions_uid=leader_uid
            ):
                self.recorder.event(obj, "Normal", "RecreateGroup", message)
            doomed_uids.add(leader_uid)

        # the leader StatefulSet: partition and replicas of the rolling update
        ru = lws.spec.rollout_strategy.rolling_update_configuration
        current = _leader_set(leader_sts, digest)
        target = lws.spec.replicas
        if current is not None:  # a template change and a scale-up: roll the groups it has first (D36)
            base = (
                current.replicas_annotation if current.replicas_annotation is not None else current.replicas
            )
            floor = min(ru.partition or 0, base)
            unfinished = not current.template_current or not all(s.updated for s in states[floor:base])
            target = rollout.roll_first(lws.spec.replicas, base, unfinished)
        partition, replicas = rollout.parameters(
            target, ru.max_unavailable, ru.max_surge, ru.partition or 0, current, states
        )
        unavailable, surge = rollout.limits(ru.max_unavailable, ru.max_surge, target)
        want = desired.leader_statefulset(
            lws,
            data,
            digest,
            place,
            replicas=replicas,
            partition=partition,
            max_unavailable=unavailable + surge,
            groups=target,
        )
        unique = (
            lws.spec.network_config is not None
            and lws.spec.network_config.subdomain_policy == "UniquePerReplica"
        )
        writes: list[Obj] = []
        if self._free(Key(ns, name), self.statefulsets, obj):  # not an earlier set's of the same name
            writes.append(want)
        if not unique and self._free(Key(ns, name), self.services, obj):
            writes.append(desired.shared_service(lws))
        waits = False
        for group in groups:
            leader = group.leader
            if leader is None or leader["metadata"].get("deletionTimestamp"):
                continue
            if leader["metadata"]["uid"] in doomed_uids:
                continue
            if labels.LEADER_NAME in (leader["metadata"].get("annotations") or {}):
                continue  # a leader carrying a worker's annotation (Kubernetes < 1.27): never build on it
            if unique and self._free(Key(ns, leader["metadata"]["name"]), self.services, leader):
                writes.append(desired.group_service(lws, leader))
            leader_rev = _label(leader, labels.REVISION) or ""
            revision = revisions.get(leader_rev)
            if revision is None:
                waits = True  # created by a revision this cache has not seen yet
                continue
            if sizes[leader_rev] == 1:
                continue
            if lws.spec.startup_policy == "LeaderReady" and not lws_status.pod_ready(leader):
                continue
            workers_key = Key(ns, leader["metadata"]["name"])
            if self.statefulsets.get(workers_key) is not None:
                # created once from the leader's revision and never changed (as upstream), so a change of
                # node labels or annotations never rolls running workers; one of a previous leader of
                # the same name is left to the garbage collector (its deletion requeues the set)
                continue
            selector = self._node_selector(obj, leader)
            if selector is None:
                waits = waits or self._placement_pending(leader)
                continue
            writes.append(desired.worker_statefulset(lws, leader, revision["data"], selector))
        created = await self._apply_all(obj, writes, ns)
        if current is not None and partition < current.partition:
            first, last = partition, current.partition - 1
            msg = (
                f"Updating replica {first}"
                if first == last
                else f"Updating replicas {first} to {last} (inclusive)"
            )
            self.recorder.event(obj, "Normal", "GroupsUpdating", msg)
        for kind, child in created:
            if kind == "leader":
                self.recorder.event(obj, "Normal", "GroupsProgressing", f"Created leader statefulset {child}")
            elif kind == "worker":
                self.recorder.event(
                    obj, "Normal", "GroupsProgressing", f"Created worker statefulset for leader pod {child}"
                )

        before = self._status_now(key, obj)
        status = lws_status.compute(lws, groups, states, leader_sts, place.key, before, timestamp())
        wait = await self._write_status(key, obj, status)
        done = partition == 0 and replicas == lws.spec.replicas and all(s.ready and s.updated for s in states)
        if done and len(revisions) > HISTORY_LIMIT:
            await self._truncate(revisions, digest, groups, ns)
        if waits:
            return Result(requeue_after=MISSING_REVISION_RETRY)
        return Result(requeue_after=wait) if wait > 0 else None

    def _groups(self, lws: LeaderWorkerSet, leader_sts: Obj | None) -> list[Group]:
        ns, name = lws.metadata.namespace, lws.metadata.name
        n = ((leader_sts or {}).get("spec") or {}).get("replicas", 0)
        groups = [Group(i) for i in range(n)]
        sts_uid = (leader_sts or {}).get("metadata", {}).get("uid")
        for pod in self.pods.list(ns, {labels.NAME: name}):
            meta = pod["metadata"]
            is_leader = labels.LEADER_NAME not in (meta.get("annotations") or {})
            index = labels.ordinal(meta["name"]) if is_leader else None
            if is_leader:
                if index is not None and index < n and controller_uid(pod) == sts_uid:
                    groups[index].leader = pod
                continue
            g = _label(pod, labels.GROUP_INDEX)
            if g is not None and g.isdigit() and int(g) < n:
                groups[int(g)].worker_pods.append(pod)
        for group in groups:
            if group.leader is None:
                continue
            workers = self.statefulsets.get(Key(ns, group.leader["metadata"]["name"]))
            if workers is not None and controller_uid(workers) == group.leader["metadata"]["uid"]:
                group.workers = workers
                wuid = workers["metadata"]["uid"]
                group.worker_pods = [p for p in group.worker_pods if controller_uid(p) == wuid]
            else:
                group.worker_pods = []
        return groups

    def _node_selector(self, lws_obj: Obj, leader: Obj) -> dict[str, str] | None:
        """{} without placement; the leader's domain with Exclusive/Colocated; None: not known yet."""
        annotations = leader["metadata"].get("annotations") or {}
        key = annotations.get(labels.EXCLUSIVE) or annotations.get(labels.COLOCATED)
        if not key:
            return {}
        node_name = (leader.get("spec") or {}).get("nodeName")
        if not node_name:
            return None  # the leader's binding (a pod update) brings the next reconcile
        node = self.nodes.get(Key("", node_name))
        value = ((node or {}).get("metadata", {}).get("labels") or {}).get(key)
        if not value:
            uid = leader["metadata"]["uid"]
            if uid not in self._unplaced:  # said once per leader; retried until the label is there
                self._unplaced.add(uid)
                leader_name = leader["metadata"]["name"]
                what = "is not known yet" if node is None else f"has no label {key}"
                msg = f"node {node_name} of leader pod {leader_name} {what}: its workers cannot be placed yet"
                self.recorder.event(lws_obj, "Warning", "FailedPlacement", msg)
            return None
        self._unplaced.discard(leader["metadata"]["uid"])
        return {key: value}

    def _placement_pending(self, leader: Obj) -> bool:
        """True when the leader is bound but its node's domain is not known: look again later (nodes are
        not watched). A leader that is not bound yet brings the next reconcile itself."""
        return bool((leader.get("spec") or {}).get("nodeName"))

    @staticmethod
    def _free(key: Key, cache: Informer, owner: Obj) -> bool:
        """No object of that name, or one controlled by `owner` (never take a previous leader's)."""
        existing = cache.get(key)
        return existing is None or controller_uid(existing) == owner["metadata"]["uid"]

    async def _apply_all(self, owner: Obj, writes: list[Obj], ns: str) -> list[tuple[str, str]]:
        """Apply what differs from the caches, concurrently; (kind, name) of workloads created."""
        created: list[tuple[str, str]] = []
        todo: list[tuple[Obj, Obj | None]] = []
        for d in writes:
            body = stamp(d, labels.APPLIED_HASH)
            cache = self.statefulsets if d["kind"] == "StatefulSet" else self.services
            observed = cache.get(Key(ns, d["metadata"]["name"]))
            if not up_to_date(observed, body, labels.APPLIED_HASH) and not self._kept(observed, body):
                todo.append((body, observed))
        if not todo:
            return created

        async def one(body: Obj, observed: Obj | None) -> None:
            try:
                stored = await self.kube.apply(body, field_manager=labels.FIELD_MANAGER)
            except ApiError as exc:
                if exc.not_found or exc.conflict or exc.namespace_terminating:
                    return  # the owner (a leader pod) went away meanwhile: the next reconcile sees it
                if not exc.invalid:
                    raise
                self.recorder.event(
                    owner,
                    "Warning",
                    "FailedCreate",
                    f"{body['kind']} {body['metadata']['name']}: {exc.message}",
                )
                return
            if not contains(stored, body):
                digest = body["metadata"]["annotations"][labels.APPLIED_HASH]
                if digest not in self._lossy:
                    self._lossy.add(digest)
                    log.warning(
                        "the API server dropped fields of %s %s (a feature gate off?); what it kept is final",
                        body["kind"],
                        body["metadata"]["name"],
                    )
            if observed is None and body["kind"] == "StatefulSet":
                is_worker = labels.LEADER_NAME not in body["spec"]["template"]["metadata"].get(
                    "annotations", {}
                )
                created.append(("leader" if is_worker else "worker", body["metadata"]["name"]))

        async with asyncio.TaskGroup() as tg:
            for body, observed in todo:
                tg.create_task(one(body, observed))
        return created

    def _kept(self, observed: Obj | None, body: Obj) -> bool:
        """`observed` is what the API server kept of this very body, applied before (see `_lossy`)."""
        digest = body["metadata"]["annotations"][labels.APPLIED_HASH]
        have = ((observed or {}).get("metadata", {}).get("annotations") or {}).get(labels.APPLIED_HASH)
        return digest in self._lossy and have == digest

    async def _truncate(
        self, revisions: dict[str | None, Obj], digest: str, groups: list[Group], ns: str
    ) -> None:
        """Once a rollout is done, revisions beyond the history limit go (upstream deletes every one no
        group uses; history is kept here as for Deployments, D36); one a group still uses never does."""
        used = {_label(g.leader, labels.REVISION) for g in groups} | {digest}
        ordered = sorted(revisions.values(), key=lambda r: int(r.get("revision") or 0))
        unused = [r for r in ordered if _label(r, labels.REVISION) not in used]
        for r in unused[: max(0, len(unused) - (HISTORY_LIMIT - 1))]:
            await self.kube.delete(
                CONTROLLERREVISION, r["metadata"]["name"], ns, preconditions_uid=r["metadata"]["uid"]
            )

    def _invalid_status(self, lws: LeaderWorkerSet, obj: Obj, errors: list[str]) -> Obj:
        prev = obj.get("status") or {}
        return {
            **prev,
            "observedGeneration": lws.metadata.generation,
            "conditions": [
                {
                    **conventions.condition(
                        "Progressing", False, "InvalidSpec", "; ".join(errors), None, timestamp()
                    ),
                    "observedGeneration": lws.metadata.generation,
                }
            ],
        }

    def _status_now(self, key: Key, obj: Obj) -> Obj | None:
        """The status as it is now: our last write when the cache has not caught up with it yet."""
        last = self._written.get(key)
        if last is not None and rv_older(obj["metadata"].get("resourceVersion"), last[0]):
            return last[1]
        status: Obj | None = obj.get("status")
        return status

    async def _write_status(self, key: Key, obj: Obj, status: Obj) -> float:
        """Write the status if it changed. A change of counts and messages only (no condition flips) is
        written at most every `status_progress_interval` seconds (D19): the seconds left are returned."""
        before = self._status_now(key, obj)
        if lws_status.same(before, status):
            return 0.0
        last = self._written.get(key)
        if last is not None and lws_status.progress_only(before, status):
            since = time.monotonic() - last[2]
            if since < self.status_progress_interval:
                return self.status_progress_interval - since
        body = {
            "apiVersion": API_VERSION,
            "kind": "LeaderWorkerSet",
            "metadata": {"name": key.name, "namespace": key.namespace},
            "status": status,
        }
        try:
            written = await self.kube.apply_status(body, field_manager=labels.FIELD_MANAGER)
        except ApiError as exc:
            if exc.not_found:
                return 0.0
            raise
        self._written[key] = (written.get("metadata", {}).get("resourceVersion"), status, time.monotonic())
        old = {c["type"]: c.get("status") for c in (before or {}).get("conditions") or []}
        for c in status.get("conditions") or []:
            if c["status"] == "True" and old.get(c["type"]) != "True":
                self.recorder.event(obj, "Normal", c["reason"], c["message"])
            elif c.get("reason") == "InvalidSpec" and old.get(c["type"]) is None:
                self.recorder.event(obj, "Warning", "InvalidSpec", c["message"])
        return 0.0


def _size(revision: Obj, lws: LeaderWorkerSet) -> int:
    try:
        lwt = revision_spec(revision["data"])["leaderWorkerTemplate"]
        return LeaderWorkerTemplate.model_validate(lwt).size
    except (KeyError, TypeError, AttributeError, ValidationError):
        return lws.spec.leader_worker_template.size


def _leader_set(sts: Obj | None, digest: str) -> rollout.LeaderSet | None:
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
