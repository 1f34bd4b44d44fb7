"""Group restarts of the LeaderWorkerSet controller: worker pods deleted between two reconciles (gone from
the cache, remembered for the restart policy) and the leaders deleted to recreate their groups."""

from __future__ import annotations

from collections import defaultdict

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.controllers import decisions
from rbg.controllers.leaderworkerset.groups import by_name_label
from rbg.leaderworker import labels, restart
from rbg.leaderworker.restart import GonePod
from rbg.leaderworker.status import Group
from rbg.lifecycle.conventions import controller_uid
from rbg.runtime.client import Kube
from rbg.runtime.events import EventRecorder
from rbg.runtime.objects import POD, Key, Obj


class Restarts:
    def __init__(self, kube: Kube, recorder: EventRecorder) -> None:
        self.kube = kube
        self.recorder = recorder
        self._gone: dict[Key, list[GonePod]] = defaultdict(list)
        self._recreating: dict[Key, set[str]] = defaultdict(set)  # leaders deleted to recreate their group

    def on_pod(self, event: str, obj: Obj, old: Obj | None) -> None:
        """A worker pod deleted between two reconciles is gone from the cache: remember it for the restart
        policy (a pod deleted by kwok or a node failure may never be seen terminating)."""
        if event != "DELETED":
            return
        meta = obj["metadata"]
        pod_labels = meta.get("labels") or {}
        index = pod_labels.get(labels.GROUP_INDEX)
        leader = labels.LEADER_NAME not in (meta.get("annotations") or {})
        if leader or index is None or not index.isdigit():
            return
        for key in by_name_label(obj):
            gone = GonePod(
                meta["name"], int(index), controller_uid(obj), pod_labels.get(labels.REVISION), leader
            )
            self._gone[key].append(gone)

    def take_gone(self, key: Key) -> list[GonePod]:
        """The pods gone since the set's last reconcile (handed back with `give_back` when it fails)."""
        return self._gone.pop(key, [])

    def give_back(self, key: Key, gone: list[GonePod]) -> None:
        """The retry still sees those deletions."""
        self._gone[key] = gone + self._gone.get(key, [])

    def forget(self, key: Key) -> None:
        self._recreating.pop(key, None)

    async def recreate(
        self, key: Key, obj: Obj, lws: LeaderWorkerSet, groups: list[Group], gone: list[GonePod]
    ) -> set[str]:
        """Delete (foreground) the leaders of the groups the restart policy recreates, once per leader:
        the uids of those deleted now."""
        doomed_uids: set[str] = set()
        recreating = self._recreating[key]
        recreating &= {g.leader["metadata"]["uid"] for g in groups if g.leader is not None}
        for doomed, message in restart.recreate(lws, groups, gone):
            leader_uid = doomed["metadata"]["uid"]
            if leader_uid in recreating:
                continue
            recreating.add(leader_uid)
            if await self.kube.delete(
                POD,
                doomed["metadata"]["name"],
                key.namespace,
                propagation="Foreground",
                preconditions_uid=leader_uid,
            ):
                self.recorder.event(obj, "Normal", "RecreateGroup", message)
                decisions.deleted(f"LeaderWorkerSet/{key.name}", f"restart policy: {message}", [doomed])
            doomed_uids.add(leader_uid)
        return doomed_uids
