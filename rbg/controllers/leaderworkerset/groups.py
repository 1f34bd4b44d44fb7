"""What exists of a set, read from the caches: the set an object belongs to (its name label), each group
(leader, worker StatefulSet, worker pods), and where a group's workers go (the leader's domain with
Exclusive/Colocated placement)."""

from __future__ import annotations

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.leaderworker import labels
from rbg.leaderworker.status import Group
from rbg.lifecycle.conventions import controller_uid
from rbg.runtime.events import EventRecorder
from rbg.runtime.informer import Informer
from rbg.runtime.objects import Key, Obj


def by_name_label(obj: Obj) -> list[Key]:
    """The set an object belongs to, by its name label."""
    name = (obj["metadata"].get("labels") or {}).get(labels.NAME)
    return [Key(obj["metadata"].get("namespace") or "", name)] if name else []


def label(obj: Obj | None, key: str) -> str | None:
    return ((obj or {}).get("metadata", {}).get("labels") or {}).get(key)


def read_groups(
    lws: LeaderWorkerSet, leader_sts: Obj | None, pods: Informer, statefulsets: Informer
) -> list[Group]:
    """One group per ordinal of the leader StatefulSet: its leader (owned by that StatefulSet), its
    worker StatefulSet (owned by the leader) and that StatefulSet's pods."""
    ns, name = lws.metadata.namespace, lws.metadata.name
    n = ((leader_sts or {}).get("spec") or {}).get("replicas", 0)
    groups = [Group(i) for i in range(n)]
    sts_uid = (leader_sts or {}).get("metadata", {}).get("uid")
    for pod in pods.list(ns, {labels.NAME: name}):
        meta = pod["metadata"]
        is_leader = labels.LEADER_NAME not in (meta.get("annotations") or {})
        index = labels.ordinal(meta["name"]) if is_leader else None
        if is_leader:
            if index is not None and index < n and controller_uid(pod) == sts_uid:
                groups[index].leader = pod
            continue
        g = label(pod, labels.GROUP_INDEX)
        if g is not None and g.isdigit() and int(g) < n:
            groups[int(g)].worker_pods.append(pod)
    for group in groups:
        if group.leader is None:
            continue
        workers = statefulsets.get(Key(ns, group.leader["metadata"]["name"]))
        if workers is not None and controller_uid(workers) == group.leader["metadata"]["uid"]:
            group.workers = workers
            wuid = workers["metadata"]["uid"]
            group.worker_pods = [p for p in group.worker_pods if controller_uid(p) == wuid]
        else:
            group.worker_pods = []
    return groups


class WorkerPlacement:
    def __init__(self, nodes: Informer, recorder: EventRecorder) -> None:
        self.nodes = nodes
        self.recorder = recorder
        self._unplaced: set[str] = set()  # leaders whose node's domain was unknown (reported once)

    def node_selector(self, lws_obj: Obj, leader: Obj) -> dict[str, str] | None:
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

    @staticmethod
    def pending(leader: Obj) -> bool:
        """True when the leader is bound but its node's domain is not known: look again later (nodes are
        not watched). A leader that is not bound yet brings the next reconcile itself."""
        return bool((leader.get("spec") or {}).get("nodeName"))
