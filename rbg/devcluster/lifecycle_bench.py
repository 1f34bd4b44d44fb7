"""The lifecycle part of `make bench`, run after a contender's groups converged (rbg.devcluster.bench):

- **image rollout**: every group's roles get a new image at once; the time until every workload of the
  namespace is on it and Ready, the operator's CPU seconds and the API writes meanwhile;
- **failure recovery** (this operator; upstream removed RecreateRBGOnPodRestart and never recreates a
  standalone role's group): one group gets `restartPolicy: RecreateRBGOnPodRestart`, a container
  restart is reported on one of its pods (as a kubelet would, through the status subresource), and the
  time until every pod of the group is new and the group Ready again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from rbg.group import names

NEW_IMAGE = "registry.local/engine:2"
POLL = 0.5


def _image_ops(version: str, roles: int) -> list[dict[str, Any]]:
    where = "template" if version == "v1alpha1" else "standalonePattern/template"
    return [
        {"op": "replace", "path": f"/spec/roles/{i}/{where}/spec/containers/0/image", "value": NEW_IMAGE}
        for i in range(roles)
    ]


def _rolled(obj: Any) -> bool:
    st = obj.status
    want = obj.spec.replicas or 0
    if st is None or (st.observedGeneration or 0) < (obj.metadata.generation or 0):
        return False
    if obj.spec.template.spec.containers[0].image != NEW_IMAGE:
        return False
    done = (
        (st.updatedReplicas or 0) == want and (st.readyReplicas or 0) == want and (st.replicas or 0) == want
    )
    if isinstance(obj, StatefulSet):
        return done and st.currentRevision == st.updateRevision
    return done


async def _all_rolled(client: AsyncClient, ns: str, workloads: int) -> tuple[bool, bool]:
    """(every workload carries the new image: the operator's part is done; and every one is rolled)"""
    seen: list[Any] = [o async for o in client.list(StatefulSet, namespace=ns)]
    seen += [o async for o in client.list(Deployment, namespace=ns)]
    enough = len(seen) >= workloads
    written = enough and all(o.spec.template.spec.containers[0].image == NEW_IMAGE for o in seen)
    return written, enough and all(_rolled(o) for o in seen)


async def rollout(
    client: AsyncClient,
    kind: Any,
    version: str,
    groups: list[str],
    ns: str,
    roles: int,
    limit: float,
    cpu: Callable[[], float],
    writes: Callable[[], int],
) -> dict[str, Any]:
    """Every group's image changed at once; figures until all workloads are rolled and Ready."""
    cpu0, writes0, t0 = cpu(), writes(), time.monotonic()
    sem = asyncio.Semaphore(20)
    ops = _image_ops(version, roles)

    async def patch(name: str) -> None:
        async with sem:
            await client.patch(kind, name, ops, namespace=ns, patch_type=PatchType.JSON)

    await asyncio.gather(*(patch(g) for g in groups))
    done = False
    written_s: float | None = None
    while time.monotonic() - t0 < limit:
        written, rolled = await _all_rolled(client, ns, len(groups) * roles)
        if written and written_s is None:
            written_s = time.monotonic() - t0
        if rolled:
            done = True
            break
        await asyncio.sleep(POLL)
    elapsed = time.monotonic() - t0
    await asyncio.sleep(2)  # the last writes reach the audit log
    return {
        "rollout_done": done,
        "rollout_s": round(elapsed, 2),
        # the operator's share: until every workload has the new template (the rest is KCM and kwok)
        "rollout_written_s": round(written_s, 2) if written_s is not None else None,
        "rollout_operator_cpu_s": round(cpu() - cpu0, 2),
        "rollout_api_writes": writes() - writes0,
    }


async def _group_pods(client: AsyncClient, ns: str, group: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async for p in client.list(Pod, namespace=ns, labels={names.GROUP_NAME: group}):
        meta: Any = p.metadata
        if meta.deletionTimestamp is None:
            out[meta.name] = p
    return out


def _ready(obj: Any) -> bool:
    status = obj.get("status") or {}
    current = status.get("observedGeneration") == obj["metadata"].get("generation")
    return current and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    )


async def recovery(client: AsyncClient, kind: Any, group: str, ns: str, limit: float) -> dict[str, Any]:
    """A container restart in a RecreateRBGOnPodRestart group: time until all its pods are new and Ready."""
    policy = [{"op": "add", "path": "/spec/roles/1/restartPolicy", "value": "RecreateRBGOnPodRestart"}]
    await client.patch(kind, group, policy, namespace=ns, patch_type=PatchType.JSON)
    t_policy = time.monotonic()
    while time.monotonic() - t_policy < limit:
        obj = (await client.get(kind, group, namespace=ns)).to_dict()
        if _ready(obj):
            break
        await asyncio.sleep(POLL)
    before = await _group_pods(client, ns, group)
    victim = sorted(n for n in before if "-prefill-" in n)[0]
    statuses = [
        {"name": c.name, "restartCount": (c.restartCount or 0) + 1}
        for c in before[victim].status.containerStatuses or []
    ]
    t0 = time.monotonic()
    await client.patch(
        Pod.Status,
        victim,
        {"status": {"containerStatuses": statuses}},
        namespace=ns,
        patch_type=PatchType.STRATEGIC,
    )
    old = {p.metadata.uid for p in before.values()}
    while time.monotonic() - t0 < limit:
        now = await _group_pods(client, ns, group)
        renewed = len(now) == len(before) and not {p.metadata.uid for p in now.values()} & old
        if renewed and _ready((await client.get(kind, group, namespace=ns)).to_dict()):
            return {"recovery_s": round(time.monotonic() - t0, 2), "recovery_pods": len(now)}
        await asyncio.sleep(POLL)
    return {"recovery_s": None, "recovery_pods": len(before)}
