"""LeaderWorkerSet controller: read the caches, call the pure core (rbg.leaderworker), apply the
difference.

One reconcile per set covers what upstream splits between its LWS and pod reconcilers: the revision
(`revisions`), the leader StatefulSet (partition and replicas of the rolling update, `leaderset`), the
Services, one worker StatefulSet per group (owned by the group's leader pod; `groups` reads what exists
and places workers, `applying` writes what differs), group restarts (`restarts`), and the status
(`statuswriter`). This module only sequences them.
"""

from __future__ import annotations

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.controllers.kinds import LWS
from rbg.controllers.leaderworkerset import leaderset, revisions
from rbg.controllers.leaderworkerset.applying import Applier, free
from rbg.controllers.leaderworkerset.groups import WorkerPlacement, by_name_label, label, read_groups
from rbg.controllers.leaderworkerset.restarts import Restarts
from rbg.controllers.leaderworkerset.revisions import HISTORY_LIMIT
from rbg.controllers.leaderworkerset.statuswriter import StatusWriter, invalid_status
from rbg.controllers.reading import read
from rbg.leaderworker import desired, labels, validation
from rbg.leaderworker import status as lws_status
from rbg.leaderworker.restart import GonePod
from rbg.leaderworker.status import Group
from rbg.lifecycle.conventions import controller_uid
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.informer import Informer
from rbg.runtime.manager import Manager
from rbg.runtime.objects import CONTROLLERREVISION, NODE, POD, SERVICE, STATEFULSET, Key, Obj, timestamp

__all__ = ["HISTORY_LIMIT", "MISSING_REVISION_RETRY", "LeaderWorkerSetReconciler"]

MISSING_REVISION_RETRY = 1.0


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
        self.restarts = Restarts(kube, self.recorder)
        self.status_writer = StatusWriter(kube, self.recorder, status_progress_interval)
        self.applier = Applier(kube, self.recorder, self.statefulsets, self.services)
        self.placement = WorkerPlacement(self.nodes, self.recorder)
        self.controller = Controller("leaderworkerset", self.reconcile, workers=workers)
        self.controller.for_informer(self.sets, predicate=not_status_only)
        # a worker pod deleted between two reconciles is gone from the cache: remember it for the restart
        # policy (a pod deleted by kwok or a node failure may never be seen terminating)
        self.pods.add_handler(self.restarts.on_pod)
        for informer in (self.statefulsets, self.pods, self.services, self.revisions):
            self.controller.watches(informer, by_name_label)
        manager.add(self.controller)

    async def reconcile(self, key: Key) -> Result | None:
        gone = self.restarts.take_gone(key)
        try:
            return await self._reconcile(key, gone)
        except ApiError as exc:
            if exc.namespace_terminating:
                return None  # the set goes with its namespace: nothing more to create
            self.restarts.give_back(key, gone)  # the retry still sees those deletions
            raise
        except Exception:
            self.restarts.give_back(key, gone)
            raise

    async def _reconcile(self, key: Key, gone: list[GonePod]) -> Result | None:
        obj = self.sets.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.status_writer.forget(key)
            self.restarts.forget(key)
            return None  # garbage collection removes what it owns
        lws = read(LeaderWorkerSet, obj, self.recorder)
        if lws is None:
            return None
        # (a replicas change through /scale never meets the webhook: what depends on replicas alone, like
        # maxUnavailable and maxSurge both rounding to 0, must not stop the set)
        errors = validation.validate(lws, replicas_dependent=False)
        if errors:  # admitted before the webhook ran (or with it off): say so, create nothing
            await self.status_writer.write(key, obj, invalid_status(lws, obj, errors))
            return None
        place = validation.placement(lws)
        uid = lws.metadata.uid
        ns, name = key

        leader_sts = self.statefulsets.get(Key(ns, name))
        if leader_sts is not None and controller_uid(leader_sts) != uid:
            leader_sts = None  # an earlier set's of the same name, going away: not written (see free)

        running = label(leader_sts, labels.REVISION) if leader_sts is not None else None
        digest, data, revs = await revisions.current(
            self.kube, self.recorder, obj, lws, self.revisions.by_owner(uid), running
        )

        # what exists of each group
        groups = read_groups(lws, leader_sts, self.pods, self.statefulsets)
        sizes = {h: revisions.size(r, lws) for h, r in revs.items()}
        for g in groups:
            g.size = sizes.get(label(g.leader, labels.REVISION) or "", lws.spec.leader_worker_template.size)
        states = [lws_status.state(g, g.size or 1, digest) for g in groups]

        # restarts first: a group being recreated gets no new worker StatefulSet
        doomed_uids = await self.restarts.recreate(key, obj, lws, groups, gone)

        # the leader StatefulSet: partition and replicas of the rolling update
        plan = leaderset.plan(lws, leader_sts, digest, states)
        want = desired.leader_statefulset(
            lws,
            data,
            digest,
            place,
            replicas=plan.replicas,
            partition=plan.partition,
            max_unavailable=plan.max_unavailable,
            groups=plan.target,
        )
        writes, waits = self._writes(key, obj, lws, want, groups, revs, sizes, doomed_uids)
        created = await self.applier.apply_all(obj, writes, ns)
        message = plan.updating_message()
        if message is not None:
            self.recorder.event(obj, "Normal", "GroupsUpdating", message)
        for kind, child in created:
            if kind == "leader":
                self.recorder.event(obj, "Normal", "GroupsProgressing", f"Created leader statefulset {child}")
            elif kind == "worker":
                self.recorder.event(
                    obj, "Normal", "GroupsProgressing", f"Created worker statefulset for leader pod {child}"
                )

        before = self.status_writer.now(key, obj)
        status = lws_status.compute(lws, groups, states, leader_sts, place.key, before, timestamp())
        wait = await self.status_writer.write(key, obj, status)
        done = (
            plan.partition == 0
            and plan.replicas == lws.spec.replicas
            and all(s.ready and s.updated for s in states)
        )
        if done and len(revs) > HISTORY_LIMIT:
            await revisions.truncate(self.kube, revs, digest, groups, ns)
        if waits:
            return Result(requeue_after=MISSING_REVISION_RETRY)
        return Result(requeue_after=wait) if wait > 0 else None

    def _writes(
        self,
        key: Key,
        obj: Obj,
        lws: LeaderWorkerSet,
        want: Obj,
        groups: list[Group],
        revs: dict[str | None, Obj],
        sizes: dict[str | None, int],
        doomed_uids: set[str],
    ) -> tuple[list[Obj], bool]:
        """The children to write: the leader StatefulSet, the Service(s), a worker StatefulSet per group
        that has none yet; and whether a group waits for something the caches have not seen yet."""
        ns, name = key
        unique = (
            lws.spec.network_config is not None
            and lws.spec.network_config.subdomain_policy == "UniquePerReplica"
        )
        writes: list[Obj] = []
        if free(Key(ns, name), self.statefulsets, obj):  # not an earlier set's of the same name
            writes.append(want)
        if not unique and free(Key(ns, name), self.services, obj):
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
            if unique and free(Key(ns, leader["metadata"]["name"]), self.services, leader):
                writes.append(desired.group_service(lws, leader))
            leader_rev = label(leader, labels.REVISION) or ""
            revision = revs.get(leader_rev)
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
            selector = self.placement.node_selector(obj, leader)
            if selector is None:
                waits = waits or self.placement.pending(leader)
                continue
            writes.append(desired.worker_statefulset(lws, leader, revision["data"], selector))
        return writes, waits
