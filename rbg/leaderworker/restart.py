"""Group restart (upstream's handleRestartPolicy): when a pod of a group restarts or is deleted, the
whole group is recreated by deleting its leader (the worker StatefulSet goes with it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.leaderworker import labels
from rbg.leaderworker.status import Group
from rbg.lifecycle.conventions import controller_uid
from rbg.lifecycle.observed import restart_of

Obj = dict[str, Any]


@dataclass(frozen=True)
class GonePod:
    """A pod of a group that was deleted before a reconcile saw it terminating."""

    name: str
    group_index: int
    controller_uid: str | None  # uid of the StatefulSet that owned it
    revision: str | None
    leader: bool


def restarted(pod: Obj) -> bool:
    """Deleted, or a container (init containers included) restarted while Pending or Running."""
    if pod["metadata"].get("deletionTimestamp"):
        return True
    if (pod.get("status") or {}).get("phase") not in ("Running", "Pending"):
        return False  # (so never a Failed pod: upstream's containerRestarted)
    return restart_of(pod) is not None


def recreate(lws: LeaderWorkerSet, groups: list[Group], gone: list[GonePod]) -> list[tuple[Obj, str]]:
    """Leaders to delete (foreground) and the event message for each."""
    policy = lws.spec.leader_worker_template.restart_policy
    if policy in ("None", "Default"):
        return []
    after_start = policy == "RecreateGroupAfterStart" or labels.AFTER_START in (
        lws.metadata.annotations or {}
    )
    out: list[tuple[Obj, str]] = []
    gone_by_group: dict[int, list[GonePod]] = {}
    for g in gone:
        gone_by_group.setdefault(g.group_index, []).append(g)
    for group in groups:
        leader = group.leader
        if leader is None or leader["metadata"].get("deletionTimestamp"):
            continue  # no group to recreate, or being recreated already
        leader_uid = leader["metadata"]["uid"]
        leader_rev = (leader["metadata"].get("labels") or {}).get(labels.REVISION)
        workers_uid = (group.workers or {}).get("metadata", {}).get("uid")
        workers_current = group.workers is not None and controller_uid(group.workers) == leader_uid

        # (owner uid, revision) of a current worker: a worker of a previous incarnation of the group, or
        # of an old revision being rolled away, never recreates the current group
        current = (workers_uid, leader_rev) if workers_current else None
        culprit: str | None = None
        gone_workers = [
            g
            for g in gone_by_group.get(group.index, [])
            if not g.leader and current == (g.controller_uid, g.revision)
        ]
        if restarted(leader):
            culprit = leader["metadata"]["name"]
        for pod in group.worker_pods:
            pod_labels = pod["metadata"].get("labels") or {}
            if (
                culprit is None
                and restarted(pod)
                and current == (controller_uid(pod), pod_labels.get(labels.REVISION))
            ):
                culprit = pod["metadata"]["name"]
        if culprit is None and gone_workers:
            culprit = gone_workers[0].name
        if culprit is None:
            continue
        if after_start:
            pods = [leader, *group.worker_pods]
            pending = any((p.get("status") or {}).get("phase") == "Pending" for p in pods)
            # a worker deleted outright counts as one of the group's (it had started)
            started = len(pods) + len({g.name for g in gone_workers} - {p["metadata"]["name"] for p in pods})
            size = group.size or lws.spec.leader_worker_template.size
            if pending or started != size:
                continue  # not started yet (image pulls, scheduling): no recreation before the start
        leader_name = leader["metadata"]["name"]
        msg = f"Worker pod {culprit} failed, deleted leader pod {leader_name} to recreate group {group.index}"
        out.append((leader, msg))
    return out
