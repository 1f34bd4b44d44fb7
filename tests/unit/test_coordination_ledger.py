"""The capacity ledger: per-node usage kept from pod events, against usage() recomputed from scratch."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rbg.coordination.ledger import Ledger
from rbg.coordination.resources import GATE, HOSTNAME, usage

D = Decimal
GPU = "nvidia.com/gpu"


def pod(uid: str, gpus: int = 1, cpu: str | None = None, **spec: Any) -> dict[str, Any]:
    requests: dict[str, Any] = {GPU: gpus}
    if cpu is not None:
        requests["cpu"] = cpu
    return {
        "metadata": {"name": f"pod-{uid}", "namespace": "ns", "uid": uid},
        "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}], **spec},
    }


def test_bound_pods_assumptions_and_pins_and_when_the_version_moves() -> None:
    ledger = Ledger()
    assert (ledger.used(), ledger.version) == ({}, 0)
    gated_pod = pod("a", 2, schedulingGates=[{"name": GATE}])
    ledger.observe(gated_pod, None)  # gated, unbound: takes nothing
    assert (ledger.used(), ledger.version) == ({}, 0)
    ledger.assume("a", "n1", {GPU: D(2)})  # released to n1
    assert (ledger.used(), ledger.version, ledger.assumed) == (
        {"n1": {GPU: D(2), "pods": D(1)}},
        1,
        {"a": "n1"},
    )
    released = pod("a", 2, nodeSelector={HOSTNAME: "n1"})
    ledger.observe(released, gated_pod)  # the release seen: counted once, still from the assumption
    assert (ledger.used(), ledger.version) == ({"n1": {GPU: D(2), "pods": D(1)}}, 1)
    bound = pod("a", 2, nodeSelector={HOSTNAME: "n1"}, nodeName="n1")
    ledger.observe(bound, released)  # bound where assumed: the assumption goes, the capacity is the same
    assert (ledger.used(), ledger.version, ledger.assumed) == ({"n1": {GPU: D(2), "pods": D(1)}}, 1, {})
    ledger.observe(pod("b", 1, cpu="500m", nodeName="n2"), None)
    assert ledger.version == 2
    finished = {**pod("b", 1, cpu="500m", nodeName="n2"), "status": {"phase": "Succeeded"}}
    ledger.observe(finished, pod("b", 1, cpu="500m", nodeName="n2"))
    assert (ledger.used(), ledger.version) == ({"n1": {GPU: D(2), "pods": D(1)}}, 3)
    terminating = {**bound, "metadata": {**bound["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    ledger.observe(terminating, bound)  # a bound pod being deleted still holds its node
    assert ledger.version == 3
    ledger.observe(None, terminating)
    assert (ledger.used(), ledger.version) == ({}, 4)
    # a pod pinned to a host and held by another gate (Kueue's) is not counted; once ungated it is
    held = pod("c", 4, nodeSelector={HOSTNAME: "n3"}, schedulingGates=[{"name": "kueue.x-k8s.io/admission"}])
    ledger.observe(held, None)
    assert (ledger.used(), ledger.version) == ({}, 4)
    ledger.observe(pod("c", 4, nodeSelector={HOSTNAME: "n3"}), held)
    assert (ledger.used(), ledger.version) == ({"n3": {GPU: D(4), "pods": D(1)}}, 5)
    # an assumption for a release that failed is forgotten; one for a pod already bound is ignored
    ledger.assume("d", "n4", {GPU: D(1)})
    ledger.forget("d")
    ledger.observe(pod("e", 1, nodeName="n5"), None)
    ledger.assume("e", "n6", {GPU: D(1)})
    assert (ledger.used(), ledger.version, ledger.assumed) == (
        {"n3": {GPU: D(4), "pods": D(1)}, "n5": {GPU: D(1), "pods": D(1)}},
        8,
        {},
    )


# -- against usage() from scratch over random event sequences -----------------------------------------

UIDS = ["u0", "u1", "u2", "u3"]
NODES = ["n0", "n1", "n2"]
pod_state = st.fixed_dictionaries(
    {
        "gpus": st.integers(0, 3),
        "cpu": st.sampled_from([None, "250m", "1", "0"]),
        "node": st.sampled_from([None, None, *NODES]),
        "pin": st.sampled_from([None, *NODES]),
        "gate": st.sampled_from([None, GATE, "kueue.x-k8s.io/admission"]),
        "phase": st.sampled_from(["Pending", "Running", "Succeeded", "Failed"]),
        "deleting": st.booleans(),
    }
)
event = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(UIDS), pod_state),
    st.tuples(st.just("delete"), st.sampled_from(UIDS), st.none()),
    st.tuples(st.just("assume"), st.sampled_from(UIDS), st.tuples(st.sampled_from(NODES), st.integers(0, 3))),
    st.tuples(st.just("forget"), st.sampled_from(UIDS), st.none()),
)


def build(uid: str, s: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if s["node"]:
        spec["nodeName"] = s["node"]
    if s["pin"]:
        spec["nodeSelector"] = {HOSTNAME: s["pin"]}
    if s["gate"]:
        spec["schedulingGates"] = [{"name": s["gate"]}]
    out = pod(uid, s["gpus"], s["cpu"], **spec)
    out["status"] = {"phase": s["phase"]}
    if s["deleting"]:
        out["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(event, max_size=40))
def test_after_every_event_the_ledger_reads_as_usage_from_scratch(events: list[tuple[str, str, Any]]) -> None:
    ledger = Ledger()
    pods: dict[str, dict[str, Any]] = {}  # the cluster as the informer shows it
    assumed: dict[str, tuple[str, dict[str, Decimal]]] = {}  # the model's releases in flight
    before = ledger.used()
    for kind, uid, arg in events:
        version = ledger.version
        if kind == "put":
            new = build(uid, arg)
            ledger.observe(new, pods.get(uid))
            pods[uid] = new
            if arg["node"] or arg["phase"] in ("Succeeded", "Failed"):
                assumed.pop(uid, None)  # seen bound or finished: no longer in flight
        elif kind == "delete":
            if uid in pods:
                ledger.observe(None, pods.pop(uid))
                assumed.pop(uid, None)
        elif kind == "assume":
            node, gpus = arg
            seen = pods.get(uid)
            done = seen is not None and (
                seen["spec"].get("nodeName") or seen["status"]["phase"] in ("Succeeded", "Failed")
            )
            ledger.assume(uid, node, {GPU: D(gpus)})
            if not done:
                assumed[uid] = (node, {GPU: D(gpus)})
        else:
            ledger.forget(uid)
            assumed.pop(uid, None)
        now = ledger.used()
        assert now == usage(list(pods.values()), assumed)
        assert ledger.assumed == {u: n for u, (n, _) in assumed.items()}
        assert (ledger.version > version) == (now != before)  # it moves exactly when capacity changed
        assert ledger.version - version in (0, 1)
        before = now
