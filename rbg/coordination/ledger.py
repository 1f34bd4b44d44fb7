"""The capacity ledger: resources in use per node, kept up to date pod event by pod event (O(1) each),
so that a pass of the coordination controller reads them without a scan of every pod of the cluster.

Pure: the controller feeds it the informer's events of (slim) pods and the releases it makes. Counted on
a node, as rbg.coordination.resources.usage counts from scratch (each pod once, the first that applies):
- a pod bound to the node (spec.nodeName) and not finished (Succeeded, Failed); a terminating bound pod
  still holds its node until it is gone;
- a pod released to the node by a plan and not seen bound yet (`assume`); the assumption is dropped
  once the pod is seen bound, finished or deleted (or by `forget`, when the release failed);
- a pod not bound but pinned to a host by the `kubernetes.io/hostname` nodeSelector, with no scheduling
  gate at all (the scheduler runs no gated pod, whoever's the gate) and not being deleted: released
  by an operator that has restarted since.

`version` increases exactly when what a pod counts changes (a bound pod added, removed or finished, an
assumption added or dropped where nothing else counts the pod there), i.e. when `used()` changes: the
controller re-plans waiting groups only then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rbg.coordination.resources import HOSTNAME, pod_requests

Obj = dict[str, Any]
Count = tuple[str, dict[str, Decimal]]  # (node, requests and one pod)


@dataclass(frozen=True)
class _Seen:
    """What the ledger keeps of a live pod."""

    node: str | None  # bound there
    finished: bool
    pinned: str | None  # unbound, ungated, not deleting, pinned to this host
    requests: dict[str, Decimal]


def _uid(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def _seen(pod: Obj) -> _Seen:
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    node = spec.get("nodeName") or None
    host = (spec.get("nodeSelector") or {}).get(HOSTNAME)
    held = spec.get("schedulingGates") or meta.get("deletionTimestamp")
    pinned = host if not node and not held else None
    requests = pod_requests(pod)
    requests["pods"] = requests.get("pods", Decimal(0)) + 1
    return _Seen(node, (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"), pinned, requests)


class Ledger:
    """Per-node resources in use, from pod events and the releases in flight."""

    def __init__(self) -> None:
        self.version = 0
        self._pods: dict[str, _Seen] = {}  # live pods by uid
        self._assumed: dict[str, Count] = {}  # released, not seen bound: uid -> (node, requests + pod)
        self._counted: dict[str, Count] = {}  # what each uid adds to `_used` now
        self._used: dict[str, dict[str, Decimal]] = {}
        self._refs: dict[str, dict[str, int]] = {}  # how many counted pods name each resource, per node

    def observe(self, pod: Obj | None, old: Obj | None = None) -> None:
        """An informer event: ADDED (pod, None), MODIFIED (pod, old), DELETED (None, old)."""
        if pod is None:
            if old is not None:
                uid = _uid(old)
                self._pods.pop(uid, None)
                self._assumed.pop(uid, None)
                self._recount(uid)
            return
        uid = _uid(pod)
        if old is not None and _uid(old) != uid:  # (not an update of the same pod)
            self.observe(None, old)
        seen = self._pods[uid] = _seen(pod)
        if seen.node or seen.finished:
            self._assumed.pop(uid, None)
        self._recount(uid)

    def assume(self, uid: str, node: str, requests: Mapping[str, Decimal]) -> None:
        """The pod was released to `node` and takes `requests` there until it is seen bound (ignored for
        a pod already seen bound or finished)."""
        seen = self._pods.get(uid)
        if seen is not None and (seen.node or seen.finished):
            return
        self._assumed[uid] = (node, {**requests, "pods": requests.get("pods", Decimal(0)) + 1})
        self._recount(uid)

    def forget(self, uid: str) -> None:
        """Drop the pod's assumption (its release failed: the capacity is not taken)."""
        if self._assumed.pop(uid, None) is not None:
            self._recount(uid)

    def __contains__(self, uid: object) -> bool:
        """The pod is live (seen and not deleted)."""
        return uid in self._pods

    @property
    def assumed(self) -> dict[str, str]:
        """Pods released and not seen bound yet: uid -> node."""
        return {uid: node for uid, (node, _) in self._assumed.items()}

    def used(self) -> dict[str, dict[str, Decimal]]:
        """Requests in use per node (a copy), as resources.usage() computes them."""
        return {node: dict(have) for node, have in self._used.items()}

    def _recount(self, uid: str) -> None:
        seen = self._pods.get(uid)
        want: Count | None = None
        if seen is not None and seen.node and not seen.finished:
            want = (seen.node, seen.requests)
        elif uid in self._assumed:
            want = self._assumed[uid]
        elif seen is not None and seen.pinned and not seen.finished:
            want = (seen.pinned, seen.requests)
        have = self._counted.get(uid)
        if want == have:
            return
        nodes = {c[0] for c in (have, want) if c is not None}
        before = {n: dict(self._used.get(n) or {}) for n in nodes}
        if have is not None:
            self._add(have, -1)
            del self._counted[uid]
        if want is not None:
            self._add(want, 1)
            self._counted[uid] = want
        if any(self._used.get(n, {}) != before[n] for n in nodes):
            # (a release seen bound with the same requests moves nothing: no replanning for it)
            self.version += 1

    def _add(self, count: Count, sign: int) -> None:
        node, requests = count
        used, refs = self._used.setdefault(node, {}), self._refs.setdefault(node, {})
        for res, amount in requests.items():
            refs[res] = refs.get(res, 0) + sign
            if refs[res]:
                used[res] = used.get(res, Decimal(0)) + sign * amount
            else:  # no counted pod names it any more: gone, as from a count from scratch
                del refs[res], used[res]
        if not refs:
            del self._used[node], self._refs[node]
