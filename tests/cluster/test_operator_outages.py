"""The operator through API-server outages and a leader crash, supervised as a kubelet would (issue 15).

Two replicas run under the local cluster's supervisor (D43), as `rbg cluster operator up --replicas 2`
does. First the leader is killed and the change made at that moment is converged by the standby within
20 s. Then the leader is frozen (SIGSTOP) past its Lease and woken once the standby has taken over: it
must not write. Then the kube-apiserver is killed (SIGKILL) and started again with the same command line after
5 s, 30 s and 120 s; after each outage a change made to a group is converged with no manual action;
after the last one the leader is killed once more (measured, loosely bounded). All along, a
watcher records every holder of the Lease, and the audit log tells which replica made each write (each
replica has its own token): a write by a replica that did not hold the Lease then is a duplicate writer.

A cluster of its own (`rbg-outage`): outages must not disturb the suite's cluster. The times measured
are written to the cluster directory (outages.json) for docs/benchmarks.md, not asserted, except the
failover bound the issue sets (20 s).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from rbg.devcluster import operator as op
from rbg.devcluster.cluster import LocalCluster, State
from rbg.devcluster.errors import DevClusterError
from rbg.devcluster.supervisor import Record
from rbg.devcluster.wait import wait_until

CLUSTER = "rbg-outage"
#: a SIGKILLed leader does not release the Lease: the standby takes it 15 s (lease duration) after the
#: last renewal it saw (seen up to one 2 s retry late), re-lists its caches and reconciles: the issue's
#: 20 s, on a healthy API server (after an outage, see the test)
FAILOVER_BOUND = 20
SA = "system:serviceaccount:rbg-system:rbg-controller"
#: written by every replica at start, as upstream's replicas do: not the leader's work
START_UP_WRITES = {
    "customresourcedefinitions",
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "secrets",
    "leases",
    "events",
}
GROUP = {
    "apiVersion": "workloads.x-k8s.io/v1alpha1",
    "kind": "RoleBasedGroup",
    "metadata": {"name": "pd", "namespace": "default"},
    "spec": {
        "roles": [
            {
                "name": "prefill",
                "replicas": 1,
                "template": {"spec": {"containers": [{"name": "e", "image": "registry.local/e:1"}]}},
            }
        ]
    },
}


class LeaseWatcher(threading.Thread):
    """Polls the operator's Lease and keeps every (acquireTime, holder) it sees; API errors (the
    outage) are skipped."""

    def __init__(self, lc: LocalCluster, state: State) -> None:
        super().__init__(daemon=True)
        from lightkube.resources.coordination_v1 import Lease

        self.client, self.kind = lc.client(state), Lease
        self.terms: dict[str, str] = {}  # acquireTime -> holderIdentity
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                spec = self.client.get(self.kind, "rbg-controller", namespace="rbg-system").spec
                if spec is not None and spec.acquireTime is not None:
                    self.terms[spec.acquireTime.isoformat()] = spec.holderIdentity or ""
            except Exception:  # noqa: S110 - the API server is down on purpose; the next poll sees it
                pass
            time.sleep(0.2)

    def holder_at(self, t: datetime) -> str:
        """The replica (POD_NAME, the identity's prefix) that held the Lease at `t`; '' if none."""
        held = [(datetime.fromisoformat(a), h) for a, h in self.terms.items()]
        before = [h for a, h in sorted(held) if a <= t]
        return before[-1].rsplit("_", 1)[0] if before and before[-1] else ""


@pytest.fixture(scope="module")
def outage_cluster() -> Iterator[tuple[LocalCluster, State]]:
    lc = LocalCluster(CLUSTER)
    try:
        lc.up(timeout=180)
        state = op.start(lc, replicas=2, timeout=90)
    except DevClusterError as exc:
        lc.down()
        pytest.fail(f"could not start the cluster and operator: {exc}", pytrace=False)
    try:
        yield lc, state
    finally:
        op.stop(lc)
        lc.down()


def _jti(kubeconfig_text: str) -> str:
    token = yaml.safe_load(kubeconfig_text)["users"][0]["user"]["token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


def _ready(state: State) -> int:
    """Ready replicas of the role's StatefulSet, -1 until it matches spec.replicas."""
    out = op.kubectl(state, "get", "statefulset", "pd-prefill", "-o", "json")
    sts = json.loads(out)
    if sts["spec"]["replicas"] != (sts.get("status") or {}).get("readyReplicas"):
        return -1
    return int(sts["spec"]["replicas"])


def _converged(state: State) -> tuple[int, int]:
    """What the operator did with the latest spec: (StatefulSet replicas it wrote, or -1 while the
    group's status has not observed the latest generation). Pods are the kube-controller-manager's and
    kwok's work: after an outage the KCM may take minutes to see its own pods again (seen here: "pods
    pd-prefill-2 already exists" for 4 minutes), which is not the operator's to fix."""
    group = json.loads(op.kubectl(state, "get", "rolebasedgroup", "pd", "-o", "json"))
    observed = (group.get("status") or {}).get("observedGeneration")
    sts = json.loads(op.kubectl(state, "get", "statefulset", "pd-prefill", "-o", "json"))
    if observed != group["metadata"]["generation"]:
        return -1, observed or 0
    return int(sts["spec"]["replicas"]), observed


def _scale(state: State, replicas: int, within: float) -> None:
    """Ask for `replicas` (retried while the API server or the webhooks are not back yet)."""
    patch = json.dumps([{"op": "replace", "path": "/spec/roles/0/replicas", "value": replicas}])

    def patched() -> tuple[bool, str]:
        op.kubectl(state, "patch", "rolebasedgroup", "pd", "--type=json", f"-p={patch}")
        return True, "patched"

    wait_until(patched, within, f"the group patched to {replicas} replicas", interval=0.5)


def _writes(lc: LocalCluster, jtis: dict[str, str]) -> list[tuple[datetime, str, str]]:
    """(time, replica, what) of every write the operator's replicas made, from the audit log."""
    out = []
    for line in (lc.logs / "audit.log").read_text().splitlines():
        ev = json.loads(line)
        user = ev.get("user") or {}
        ref = ev.get("objectRef") or {}
        if user.get("username") != SA or ev.get("verb") not in ("create", "update", "patch", "delete"):
            continue
        if ref.get("resource") in START_UP_WRITES or "dryRun=" in ev.get("requestURI", ""):
            continue  # a webhook's dry run (D16), made by whichever replica serves it, writes nothing
        jti = ((user.get("extra") or {}).get("authentication.kubernetes.io/credential-id") or [""])[0]
        replica = jtis.get(jti.removeprefix("JTI="), f"unknown token {jti}")
        when = datetime.fromisoformat(ev["requestReceivedTimestamp"])
        out.append((when, replica, f"{ev['verb']} {ref.get('resource')}/{ref.get('name')}"))
    return sorted(out)


def _restarts(lc: LocalCluster) -> dict[str, int]:
    return {name: op.restarts(lc, name) for name in op.replica_names(2)}


def _both_ready(state: State) -> tuple[bool, Any]:
    seen = {}
    for name in op.replica_names(2):
        try:
            seen[name] = httpx.get(f"http://127.0.0.1:{state.ports[name]}/readyz", timeout=2).status_code
        except httpx.HTTPError as exc:
            seen[name] = type(exc).__name__
    return all(v == 200 for v in seen.values()), seen


def _now() -> datetime:
    return datetime.now().astimezone()


def _leader_with_a_standby(lc: LocalCluster, state: State, watcher: LeaseWatcher) -> tuple[str, Record]:
    """The leader (POD_NAME) and its supervisor record, once both replicas are ready and the standby has
    seen the current renewals: after an outage a replica may still wait out its back-off, and with no
    standby a takeover waits for it."""
    wait_until(lambda: _both_ready(state), 120, "both replicas ready")
    time.sleep(4)  # the standby has seen the current renewals (2 s retry)
    wait_until(lambda: (bool(watcher.holder_at(_now())), watcher.terms), 60, "a leader")
    leader = watcher.holder_at(_now())
    rec = Record.read(op.record_file(lc, leader))
    assert rec is not None, f"no supervisor record for {leader}"
    return leader, rec


def _kill_leader_and_scale(
    lc: LocalCluster, state: State, watcher: LeaseWatcher, replicas: int, within: float
) -> float:
    """SIGKILL the leader's process (no Lease release) with a live standby, ask for `replicas` at that
    moment, and return how long until the StatefulSet has them (written by whichever replica leads
    first: the standby or the restarted one)."""
    _, rec = _leader_with_a_standby(lc, state, watcher)
    killed = time.monotonic()
    os.kill(rec.pid, signal.SIGKILL)
    _scale(state, replicas, within=within)

    def made() -> tuple[bool, Any]:
        sts = json.loads(op.kubectl(state, "get", "statefulset", "pd-prefill", "-o", "json"))
        return sts["spec"]["replicas"] == replicas, sts["spec"]["replicas"]

    wait_until(made, within - (time.monotonic() - killed), f"the change within {within:.0f}s of the kill")
    return round(time.monotonic() - killed, 1)


def _freeze_leader_past_its_lease(lc: LocalCluster, state: State, watcher: LeaseWatcher) -> float:
    """SIGSTOP the leader for longer than its Lease; meanwhile delete the role's StatefulSet, which the
    standby, once it has taken the Lease, makes again. Then SIGCONT: the old leader wakes with caches
    and a work queue from before the takeover and events of what happened since, and must write nothing
    (its writes are fenced, D47) until it finds the Lease lost and exits. Returns how long until the
    StatefulSet was made again."""
    leader, rec = _leader_with_a_standby(lc, state, watcher)
    old = json.loads(op.kubectl(state, "get", "statefulset", "pd-prefill", "-o", "json"))["metadata"]["uid"]
    frozen = time.monotonic()
    os.kill(rec.pid, signal.SIGSTOP)
    try:
        op.kubectl(state, "delete", "statefulset", "pd-prefill", "--wait=false")

        def made_again() -> tuple[bool, Any]:
            out = op.kubectl(state, "get", "statefulset", "pd-prefill", "-o", "json", "--ignore-not-found")
            uid = json.loads(out)["metadata"]["uid"] if out.strip() else None
            return uid not in (None, old), uid

        wait_until(made_again, 60, "the StatefulSet made again by the new leader")
        took = round(time.monotonic() - frozen, 1)
        assert watcher.holder_at(_now()) not in ("", leader), watcher.terms
    finally:
        os.kill(rec.pid, signal.SIGCONT)

    def exited() -> tuple[bool, Any]:
        after = Record.read(op.record_file(lc, leader))
        return after is not None and after.restarts > rec.restarts, after

    wait_until(exited, 60, f"{leader} finds its Lease lost, exits and is started again")
    return took


def test_outages_and_leader_failover_converge_with_one_writer_at_a_time(
    outage_cluster: tuple[LocalCluster, State],
) -> None:
    lc, state = outage_cluster
    jtis = {_jti((lc.dir / f"{n}.kubeconfig").read_text()): n for n in op.replica_names(2)}
    watcher = LeaseWatcher(lc, state)
    watcher.start()
    results: dict[str, Any] = {"outages": []}
    try:
        op.kubectl(state, "apply", "--server-side", "-f", "-", stdin=json.dumps(GROUP))
        wait_until(lambda: (_ready(state) == 1, _ready(state)), 90, "the group converged")
        replicas = 2
        results["failover_s"] = _kill_leader_and_scale(lc, state, watcher, replicas, FAILOVER_BOUND)
        wait_until(lambda: (_converged(state)[0] == replicas, _converged(state)), 90, "the scale observed")
        results["frozen_leader_replaced_s"] = _freeze_leader_past_its_lease(lc, state, watcher)
        for seconds in (5, 30, 120):
            lc.stop_component("kube-apiserver")
            time.sleep(seconds)
            lc.start_component("kube-apiserver", timeout=120)
            back = time.monotonic()
            replicas += 1
            _scale(state, replicas, within=180)
            wait_until(
                lambda n=replicas: (_converged(state)[0] == n, _converged(state)),  # type: ignore[misc]
                240,
                f"{replicas} replicas written and observed after a {seconds}s outage",
            )
            results["outages"].append(
                {
                    "outage_s": seconds,
                    "recovered_s": round(time.monotonic() - back, 1),
                    "restarts_so_far": _restarts(lc),
                }
            )
        # a failover soon after the restarted API server: measured, bounded loosely. Its watch cache
        # was seen serving a stale group for up to 50 s after a restart (lists and watches alike, the
        # kube-controller-manager's too), which no client can see past (D46)
        replicas += 1
        results["failover_after_outage_s"] = _kill_leader_and_scale(lc, state, watcher, replicas, 180)
        wait_until(lambda: (_converged(state)[0] == replicas, _converged(state)), 90, "the scale observed")
    finally:
        watcher.done.set()
        watcher.join(5)
        results["restarts"] = _restarts(lc)
        results["lease_terms"] = watcher.terms
        (lc.dir / "outages.json").write_text(json.dumps(results, indent=2))

    # no duplicate writers: every write was made by the replica holding the Lease at that moment
    writes = _writes(lc, jtis)
    assert writes, "the audit log shows no write by the operator"
    strays = [(t.isoformat(), who, what, watcher.holder_at(t)) for t, who, what in writes]
    strays = [s for s in strays if s[1] != s[3]]
    assert not strays, (
        f"writes by a replica not holding the Lease (time, writer, write, holder): {strays[:10]}"
    )
    # the operator recovered by itself: the supervisor restarted what exited, nothing else was done
    assert sum(results["restarts"].values()) >= 1  # the killed leader, at least
