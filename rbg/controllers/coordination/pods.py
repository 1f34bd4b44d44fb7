"""The coordination controller's writes to pods: releases (pins + gate removal), gate removal alone,
deletions of members a batch replaces, with the expectations each write leaves (rbg.coordination.
expectations) and the capacity it assumes in the ledger, forgotten again when a write fails."""

from __future__ import annotations

import logging
import time

from rbg.coordination import release, resources
from rbg.coordination.ledger import Ledger
from rbg.runtime.client import Kube
from rbg.runtime.errors import ApiError
from rbg.runtime.objects import POD, Obj
from rbg.runtime.webhook import json_pointer

log = logging.getLogger(__name__)
FIELD_MANAGER = "rbg-coordination"
EXPECT_FOR = 30.0  # seconds a write of ours is assumed done while the cache does not show it


class PodWrites:
    def __init__(self, kube: Kube, ledger: Ledger) -> None:
        self.kube = kube
        self.ledger = ledger
        # expectations: writes this process made that the cache may not show yet (uid -> what, until)
        self.released: dict[str, tuple[str, str, str | None, float]] = {}  # uid -> key, domain, host
        self.deleted: dict[str, float] = {}

    def expect(self, d: release.Decision, topology_key: str) -> None:
        """Record what the pass gives away before its first await (under the planning lock)."""
        deadline = time.monotonic() + EXPECT_FOR
        for pod, domain, host in d.release:
            uid = pod["metadata"].get("uid", "")
            node = d.assigned.get(pod["metadata"]["name"])
            if node is not None:
                self.ledger.assume(uid, node, resources.pod_requests(pod))
            self.released[uid] = (topology_key, domain, host, deadline)
        for pod, _why in d.delete:
            self.deleted[pod["metadata"].get("uid", "")] = deadline

    async def ungate(self, pod: Obj, gate: str = resources.GATE) -> None:
        """Remove the gate, pinning nothing: the pod is scheduled as it is, outside any batch."""
        patch = resources.gate_removal(pod, gate)
        if patch is None:
            return
        meta = pod["metadata"]
        try:
            await self.kube.patch(
                POD, meta["name"], meta.get("namespace"), patch, "json", field_manager=FIELD_MANAGER
            )
        except ApiError as exc:
            if not (exc.not_found or exc.conflict or exc.invalid):
                raise

    async def release_pod(
        self,
        pod: Obj,
        topology_key: str,
        domain: str,
        host: str | None,
        *,
        gate: str = resources.GATE,
        annotations: dict[str, str] | None = None,
    ) -> None:
        """One update: pin to the domain, and to the planned node inside it (additions, allowed while
        gated: the scheduler could otherwise spread a batch inside its domain and strand a pod), add
        `annotations`, and remove the gate.

        A JSON patch whose `test`s guard the pod's uid (never a pod recreated under the same name) and the
        gate's position, not a resourceVersion precondition: the scheduler writes the status of gated
        pods, and a conflict there would leave a member of a planned batch gated while its capacity goes to
        someone else."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        removal = resources.gate_removal(pod, gate)
        if removal is None:
            return
        pins = {topology_key: domain, **({resources.HOSTNAME: host} if host else {})}
        patch = [
            *removal,
            *_adds("/spec/nodeSelector", spec.get("nodeSelector"), pins),
            *_adds("/metadata/annotations", meta.get("annotations"), annotations or {}),
        ]
        try:
            await self.kube.patch(
                POD, meta["name"], meta.get("namespace"), patch, "json", field_manager=FIELD_MANAGER
            )
        except ApiError as exc:
            if exc.not_found:
                self.ledger.forget(meta.get("uid", ""))  # gone: its capacity is not taken
                self.released.pop(meta.get("uid", ""), None)
                return
            if exc.conflict or exc.invalid:
                # the test failed: most likely an earlier pass released it and the cache has not seen
                # that yet, so its capacity stays assumed (dropped once it is bound or gone)
                return
            # not released: the pod stays gated and a later pass rejoins it to the batch's domain (the
            # members released already give it), so a failure half-way never splits the batch
            self.released.pop(meta.get("uid", ""), None)
            self.ledger.forget(meta.get("uid", ""))
            raise

    async def apply(self, d: release.Decision, topology_key: str) -> None:
        """The pass's releases, then its deletions; an API error half-way forgets the expectations of
        what was not attempted, so the next pass (the work queue's retry) sees those pods as they are."""
        done = 0
        try:
            for pod, domain, host in d.release:
                await self.release_pod(pod, topology_key, domain, host)
                done += 1
            for pod, why in d.delete:
                await self.replace(pod, why)
                done += 1
            for pod in d.ungate:
                await self.ungate(pod)
        except BaseException:
            pending = [p for p, _, _ in d.release] + [p for p, _ in d.delete]
            for pod in pending[done:]:
                uid = pod["metadata"].get("uid", "")
                self.released.pop(uid, None)
                self.ledger.forget(uid)
                self.deleted.pop(uid, None)
            raise

    async def replace(self, pod: Obj, why: str) -> None:
        """Delete a member so that its workload recreates it, gated, with the rest of its batch."""
        meta = pod["metadata"]
        try:
            await self.kube.delete(
                POD, meta["name"], meta.get("namespace"), preconditions_uid=meta.get("uid")
            )
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):  # gone, or a new pod of that name already
                self.deleted.pop(meta.get("uid", ""), None)
                raise
        log.info("replaced pod %s/%s: %s", meta.get("namespace"), meta["name"], why)


def _adds(path: str, current: Obj | None, values: dict[str, str]) -> list[Obj]:
    """JSON patch operations adding `values` to the map at `path` (made when the object has none)."""
    if not values:
        return []
    if current is None:
        return [{"op": "add", "path": path, "value": values}]
    return [{"op": "add", "path": f"{path}/{json_pointer(k)}", "value": v} for k, v in values.items()]
