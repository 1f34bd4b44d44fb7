"""Group-wise rolling update of a LeaderWorkerSet: maxUnavailable steps, maxSurge, partition, and the
ControllerRevisions that record it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import ControllerRevision, StatefulSet
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType
from lws_helpers import LWS, P, condition, create, get, lws, pods, wait_available

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")


def change_template(kube: Client, name: str, ns: str, value: str, **spec: Any) -> None:
    env = [{"name": "VERSION", "value": value}]
    containers = [{"name": "main", "image": "registry.local/engine:1", "env": env}]
    body = {
        "spec": {"leaderWorkerTemplate": {"workerTemplate": {"spec": {"containers": containers}}}, **spec}
    }
    kube.patch(LWS, name, body, namespace=ns, patch_type=PatchType.MERGE)


def revisions(kube: Client, ns: str, name: str) -> list[str]:
    found = kube.list(ControllerRevision, namespace=ns, labels={P + "name": name})
    return sorted(
        r.metadata.labels[P + "template-revision-hash"]
        for r in found
        if r.metadata.ownerReferences[0].kind == "LeaderWorkerSet"
    )


def group_revisions(kube: Client, ns: str, name: str) -> dict[str, str]:
    """pod name -> the revision it runs."""
    return {n: p.metadata.labels[P + "template-revision-hash"] for n, p in pods(kube, ns, name).items()}


class LeaderSetRecorder:
    """Every (replicas, partition) the leader StatefulSet goes through, polled often. It starts only once
    it has read the StatefulSet (so `seen[0]` is the state before the change that follows), and `stop()`
    fails unless it saw that state and at least one change: a recorder that read nothing proves nothing."""

    def __init__(self, kube: Client, ns: str, name: str) -> None:
        self.seen: list[tuple[int, int]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        first = threading.Event()

        def run() -> None:
            while not self._stop.is_set():
                try:
                    sts = kube.get(StatefulSet, name, namespace=ns)
                    now = (sts.spec.replicas, sts.spec.updateStrategy.rollingUpdate.partition or 0)
                    if not self.seen or self.seen[-1] != now:
                        self.seen.append(now)
                    first.set()
                except Exception as e:  # a missed poll is just a missed sample, but kept for the message
                    self.errors = [*self.errors[-4:], repr(e)]
                time.sleep(0.05)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not first.wait(15):
            self._stop.set()
            raise AssertionError(
                f"the recorder read no leader StatefulSet {ns}/{name} in 15 s: {self.errors}"
            )

    def stop(self) -> list[tuple[int, int]]:
        self._stop.set()
        self._thread.join(5)
        assert len(self.seen) >= 2, f"the recorder saw no change of the leader StatefulSet: {self.seen}"
        return self.seen


def test_template_change_rolls_one_group_at_a_time(kube: Client, namespace: str) -> None:
    create(kube, lws("roll", replicas=4, size=2), namespace)
    wait_available(kube, "roll", namespace)
    old = revisions(kube, namespace, "roll")
    assert len(old) == 1
    recorder = LeaderSetRecorder(kube, namespace, "roll")
    change_template(kube, "roll", namespace, "2")

    def in_progress() -> tuple[bool, Any]:
        cond = condition(get(kube, "roll", namespace), "UpdateInProgress") or {}
        return cond.get("status") == "True", cond

    wait_until(in_progress, 30, "UpdateInProgress")
    status = wait_available(kube, "roll", namespace, timeout=180)
    seen = recorder.stop()
    assert seen[0] == (4, 0), seen  # at rest before the change
    assert status["updatedReplicas"] == 4
    kept = revisions(kube, namespace, "roll")
    assert len(kept) == 2  # the old revision is kept as history (D36), no group uses it
    new = [r for r in kept if r not in old]
    assert len(new) == 1
    assert set(group_revisions(kube, namespace, "roll").values()) == set(new)
    partitions = [p for _, p in seen[1:]]  # seen[0]: before the change
    assert partitions == sorted(partitions, reverse=True), seen  # the partition only goes down
    assert all(r == 4 for r, _ in seen), seen  # no surge by default
    steps = [e.message for e in kube.list(Event, namespace=namespace) if e.reason == "GroupsUpdating"]
    # maxUnavailable 1: one group at a time, from the highest
    assert {f"Updating replica {g}" for g in (3, 2, 1, 0)} <= set(steps), steps


def test_max_surge_adds_groups_during_the_update_and_gives_them_back(kube: Client, namespace: str) -> None:
    doc = lws("surge", replicas=2, size=2)
    doc["spec"]["rolloutStrategy"] = {"rollingUpdateConfiguration": {"maxUnavailable": 0, "maxSurge": 1}}
    create(kube, doc, namespace)
    wait_available(kube, "surge", namespace)
    recorder = LeaderSetRecorder(kube, namespace, "surge")
    change_template(kube, "surge", namespace, "2")
    time.sleep(1)
    wait_available(kube, "surge", namespace, timeout=180)

    def surge_given_back() -> tuple[bool, Any]:
        st = get(kube, "surge", namespace).get("status") or {}
        return (st.get("replicas"), st.get("updatedReplicas")) == (2, 2), st

    wait_until(surge_given_back, 60, "the surge group given back")
    seen = recorder.stop()
    assert seen[0] == (2, 0), seen  # at rest before the change
    assert max(r for r, _ in seen) == 3, seen  # one surge group
    assert seen[-1] == (2, 0), seen


def test_partition_holds_the_lower_groups_and_revisions_record_both(kube: Client, namespace: str) -> None:
    doc = lws("part", replicas=4, size=2)
    doc["spec"]["rolloutStrategy"] = {"rollingUpdateConfiguration": {"partition": 2}}
    create(kube, doc, namespace)
    wait_available(kube, "part", namespace)
    (old,) = revisions(kube, namespace, "part")
    change_template(kube, "part", namespace, "2")

    def upper_done() -> tuple[bool, Any]:
        st = get(kube, "part", namespace).get("status") or {}
        return st.get("updatedReplicas") == 2 and st.get("readyReplicas") == 4, st

    wait_until(upper_done, 120, "groups 2 and 3 updated")
    wait_available(kube, "part", namespace)  # partition reached: Available again
    time.sleep(2)  # and it stays there
    revs = revisions(kube, namespace, "part")
    assert len(revs) == 2
    assert old in revs
    (new,) = [r for r in revs if r != old]
    by_pod = group_revisions(kube, namespace, "part")
    for pod, rev in by_pod.items():
        group = int(pod.split("-")[1])
        assert rev == (old if group < 2 else new), by_pod

    kube.patch(
        LWS, "part", {"spec": {"rolloutStrategy": {"rollingUpdateConfiguration": {"partition": 0}}}},
        namespace=namespace, patch_type=PatchType.MERGE,
    )  # fmt: skip

    def all_done() -> tuple[bool, Any]:
        st = get(kube, "part", namespace).get("status") or {}
        return st.get("updatedReplicas") == 4 and sorted(revisions(kube, namespace, "part")) == sorted(
            [old, new]
        ), st

    wait_until(all_done, 120, "every group updated, the old revision kept as history")
    assert set(group_revisions(kube, namespace, "part").values()) == {new}


def stored_revisions(kube: Client, ns: str, name: str) -> list[dict[str, Any]]:
    found = kube.list(ControllerRevision, namespace=ns, labels={P + "name": name})
    return [r.to_dict() for r in found if r.metadata.ownerReferences[0].kind == "LeaderWorkerSet"]


def test_revisions_get_the_hash_and_name_upstream_gives_the_stored_object(
    kube: Client, namespace: str
) -> None:
    """Written without the defaulted fields: the API server's defaults must make the object upstream
    stores, whose revision upstream's own code printed (hack/lws-hash, testdata/01-minimal.json and
    04-subgroups-claims.json; the deprecated restartPolicy Default hashes as the None upstream stores)."""
    create(kube, lws("minimal", replicas=2, size=3), namespace)
    claims = lws("claims", replicas=1, size=5, restartPolicy="Default")
    lwt = claims["spec"]["leaderWorkerTemplate"]
    lwt["subGroupPolicy"] = {"subGroupPolicyType": "LeaderExcluded", "subGroupSize": 2}
    lwt["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "cache"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "fast",
                "resources": {"requests": {"storage": "10Gi"}},
            },
        }
    ]
    lwt["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Retain"}
    lwt["workerTemplate"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "cache", "mountPath": "/cache"}
    ]
    claims["spec"]["networkConfig"] = {"subdomainPolicy": "UniquePerReplica"}
    create(kube, claims, namespace)
    for name, digest in (("minimal", "77c886886b"), ("claims", "56dfc97f6b")):

        def revision_and_leader_set(name: str = name) -> tuple[bool, Any]:
            found = stored_revisions(kube, namespace, name)
            leaders = kube.list(StatefulSet, namespace=namespace, fields={"metadata.name": name})
            sets = [sts.metadata.labels.get(P + "template-revision-hash") for sts in leaders]
            return len(found) == 1 and len(sets) == 1, (found, sets)

        (rev,), (leader_digest,) = wait_until(revision_and_leader_set, 30, f"the revision of {name}")
        assert rev["metadata"]["name"] == f"{name}-{digest}-1", rev["metadata"]
        assert rev["metadata"]["labels"][P + "template-revision-hash"] == digest
        assert rev["data"]["spec"]["leaderWorkerTemplate"]["$patch"] == "replace"
        assert leader_digest == digest
