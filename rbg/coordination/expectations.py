"""Expectations, as controller-runtime keeps them: the pods as this process's own writes (releases,
deletions) left them, where the cache does not show those writes yet, so a pass on a stale cache never
plans a batch (or a leader/worker group) twice. Pure; the controller keeps the records and their expiry.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from rbg.coordination.resources import GATE, HOSTNAME, LWS_GATE, gated

Obj = dict[str, Any]
#: uid -> (topology key, domain, planned host or None): a release this process made
Released = Mapping[str, tuple[str, str, str | None]]
OUR_GATES = (GATE, LWS_GATE)  # a batch member's, a leader's


def as_written(
    pods: Sequence[Obj], released: Released, deleted: Collection[str]
) -> tuple[list[Obj], set[str]]:
    """The pods as our writes left them (copies where they differ), and the uids of released pods the
    cache already shows released (their records can go)."""
    out: list[Obj] = []
    caught_up: set[str] = set()
    for pod in pods:
        uid = pod["metadata"].get("uid", "")
        if uid in deleted and not pod["metadata"].get("deletionTimestamp"):
            pod = {**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "expected"}}
        elif uid in released:
            if not any(gated(pod, gate) for gate in OUR_GATES):
                caught_up.add(uid)
            else:
                key, domain, host = released[uid]
                spec = dict(pod.get("spec") or {})
                spec["schedulingGates"] = [
                    g for g in spec.get("schedulingGates") or [] if g.get("name") not in OUR_GATES
                ]
                spec["nodeSelector"] = {
                    **(spec.get("nodeSelector") or {}),
                    key: domain,
                    **({HOSTNAME: host} if host else {}),
                }
                pod = {**pod, "spec": spec}
        out.append(pod)
    return out, caught_up
