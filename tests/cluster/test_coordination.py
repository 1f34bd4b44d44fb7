"""Ratio placement of coordinated roles (AffinityScheduling) on the real scheduler: batches planned by
the capacity-aware planner, released by removing a scheduling gate, each batch inside one domain."""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Event, Node, Pod
from tests_rbg_helpers import RBG, wait_rbg_ready

from rbg.devcluster.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
HOST = "kubernetes.io/hostname"
RACK = "topology.rbg.workloads.x-k8s.io/rack"
BATCH = "coordination.workloads.x-k8s.io/pd"
GATE = "rbg.workloads.x-k8s.io/coordination"


def pd_group(
    name: str, prefill: int, decode: int, key: str = HOST, gpus: int = 1, **affinity: Any
) -> dict[str, Any]:
    def role(r: str, n: int) -> dict[str, Any]:
        c = {"name": r, "image": "vllm/vllm-openai:latest", "resources": {"limits": {"nvidia.com/gpu": gpus}}}
        return {"name": r, "replicas": n, "template": {"spec": {"containers": [c]}}}

    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {
            "coordination": [
                {
                    "name": "pd",
                    "type": "AffinityScheduling",
                    "roles": ["prefill", "decode"],
                    "strategy": {
                        "affinityScheduling": {
                            "topologyKey": key,
                            "ratios": {"prefill": 2, "decode": 1},
                            "batchMode": "Sequential",
                            **affinity,
                        }
                    },
                }
            ],
            "roles": [role("prefill", prefill), role("decode", decode)],
        },
    }


def batches_by_domain(kube: Client, ns: str, key: str) -> dict[str, set[str]]:
    labels = {n.metadata.name: n.metadata.labels for n in kube.list(Node)}
    out: dict[str, set[str]] = defaultdict(set)
    for p in kube.list(Pod, namespace=ns):
        if p.spec.nodeName and BATCH in (p.metadata.labels or {}):
            out[p.metadata.labels[BATCH]].add(labels[p.spec.nodeName][key])
    return dict(out)


class PodWatch:
    """Every change of the namespace's pods, in the API server's order: (pod, gated, bound)."""

    def __init__(self, kube: Client, ns: str) -> None:
        self.changes: list[tuple[str, bool, bool, str | None]] = []
        self._kube, self._ns = kube, ns

        def run() -> None:
            try:
                for _, pod in kube.watch(Pod, namespace=ns):
                    gated = any(g.name == GATE for g in pod.spec.schedulingGates or [])
                    batch = (pod.metadata.labels or {}).get(BATCH)
                    self.changes.append((pod.metadata.name, gated, bool(pod.spec.nodeName), batch))
            except Exception:  # noqa: S110 - the watch ends with the test
                pass

        threading.Thread(target=run, daemon=True).start()


def test_the_seeds_example_places_each_batch_on_its_own_node_one_after_another(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    watch = PodWatch(kube, namespace)
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("pd6", 6, 3)))
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr  # acted on
    wait_rbg_ready(kube, "pd6", namespace)
    placed = batches_by_domain(kube, namespace, HOST)
    assert sorted(placed) == ["0", "1", "2"]
    assert all(len(nodes) == 1 for nodes in placed.values()), placed  # each batch's 3 pods on one node
    assert len(set().union(*placed.values())) == 3, placed  # three different nodes
    for p in kube.list(Pod, namespace=namespace):  # batch k = ordinal // ratio
        i = int(p.metadata.name.rsplit("-", 1)[1])
        ratio = 2 if "prefill" in p.metadata.name else 1
        assert p.metadata.labels[BATCH] == str(i // ratio)

    # Sequential: no pod of batch k is released before every pod of batch k-1 is bound
    def first(pred: Any) -> int:
        return next(i for i, c in enumerate(watch.changes) if pred(c))

    for k in (1, 2):
        released = first(lambda c, k=k: c[3] == str(k) and not c[1])
        bound_before = max(i for i, c in enumerate(watch.changes) if c[3] == str(k - 1) and c[2])
        last_bound = max(
            first(lambda c, n=n: c[0] == n and c[2])
            for n in {c[0] for c in watch.changes if c[3] == str(k - 1)}
        )
        assert released > last_bound, (k, released, last_bound, bound_before)

    status = kube.get(RBG, "pd6", namespace=namespace).to_dict()["status"]["coordinationStatus"][0]
    assert (status["phase"], status["totalBatches"], status["placedBatches"]) == ("Completed", 3, 3)
    assert [b["phase"] for b in status["batches"]] == ["Bound"] * 3
    reasons = {e.reason for e in kube.list(Event, namespace=namespace)}
    assert {"BatchPlanned", "BatchBound"} <= reasons


def test_rack_as_the_key_keeps_each_batch_inside_one_rack(kube: Client, namespace: str, kubectl: Any) -> None:
    # 8 GPUs a pod: a batch of 3 needs three nodes, so only the rack can hold it
    r = kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("racks", 4, 2, key=RACK, gpus=8))
    )
    assert r.returncode == 0, r.stderr
    wait_rbg_ready(kube, "racks", namespace)
    placed = batches_by_domain(kube, namespace, RACK)
    assert sorted(placed) == ["0", "1"]
    assert all(len(racks) == 1 for racks in placed.values()), placed
    assert placed["0"] != placed["1"]


def test_replicas_not_divisible_by_the_ratio_is_rejected_at_apply_and_on_scale(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("odd", 7, 3)))
    assert r.returncode != 0
    assert 'role "prefill" has 7 replicas which is not divisible by ratio 2' in r.stderr
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("even", 6, 3)))
    assert r.returncode == 0, r.stderr
    scale = '[{"op": "replace", "path": "/spec/roles/0/replicas", "value": 7}]'
    r = kubectl("patch", "-n", namespace, "rbg", "even", "--type=json", "-p", scale)
    assert r.returncode != 0
    assert 'role "prefill" has 7 replicas which is not divisible by ratio 2' in r.stderr


@pytest.fixture
def pool(kube: Client, namespace: str) -> Any:
    """Fake nodes of this test only (label pool=<tag>), removed afterwards."""
    from lightkube import codecs

    from rbg.devcluster.cluster import K8S_VERSION
    from rbg.devcluster.topology import Topology, node_manifests

    tag = f"t{namespace[-6:]}"  # never all digits or 1e5-like: YAML would read a number
    made: list[str] = []

    def add(count: int, gpus: int) -> list[str]:
        topo = Topology.model_validate(
            {
                "zones": 1,
                "racksPerZone": 1,
                "nodesPerRack": count,
                "nodesPerNVLinkDomain": 1,
                "node": {"gpus": gpus},
            }
        )
        names = []
        for n in node_manifests(topo, K8S_VERSION):
            name = f"pool-{tag}-{len(made)}"
            labels = n["metadata"]["labels"]
            labels.update(
                {HOST: name, "pool": tag, "topology.kubernetes.io/zone": f"zone-{tag}", RACK: f"rack-{tag}"}
            )
            n["metadata"]["name"] = name
            kube.create(codecs.from_dict(n))
            made.append(name)
            names.append(name)
        return names

    yield tag, add
    for name in made:
        with contextlib.suppress(ApiError):
            kube.delete(Node, name)


def test_every_batch_is_placed_where_room_is_exact_and_a_stuck_one_is_placed_once_a_node_is_added(
    kube: Client, namespace: str, kubectl: Any, pool: Any
) -> None:
    tag, add = pool
    add(4, 3)  # four nodes, each with room for exactly one batch (2 prefill + 1 decode, 1 GPU each)
    doc = pd_group("exact", 8, 4, batchTimeoutSeconds=2)
    for role in doc["spec"]["roles"]:
        role["template"]["spec"]["nodeSelector"] = {"pool": tag}
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode == 0, r.stderr
    wait_rbg_ready(kube, "exact", namespace)
    placed = batches_by_domain(kube, namespace, HOST)
    assert sorted(placed) == ["0", "1", "2", "3"]
    assert all(len(nodes) == 1 for nodes in placed.values())
    assert len(set().union(*placed.values())) == 4  # all four batches placed, one per node

    # a fifth batch fits nowhere: Stuck, with the planner's reason, after the (short) batch timeout
    scale = (
        '[{"op": "replace", "path": "/spec/roles/0/replicas", "value": 10},'
        ' {"op": "replace", "path": "/spec/roles/1/replicas", "value": 5}]'
    )
    r = kubectl("patch", "-n", namespace, "rbg", "exact", "--type=json", "-p", scale)
    assert r.returncode == 0, r.stderr

    def stuck() -> tuple[bool, Any]:
        st = (kube.get(RBG, "exact", namespace=namespace).to_dict().get("status") or {}).get(
            "coordinationStatus"
        ) or [{}]
        return st[0].get("phase") == "Stuck", st[0]

    status = wait_until(stuck, 60, "batch 4 Stuck")
    assert status["batches"][4]["phase"] == "Stuck"
    assert status["message"].startswith("batch 4: ")
    assert "kubernetes.io/hostname" in status["message"]
    events = [e.message for e in kube.list(Event, namespace=namespace) if e.reason == "BatchStuck"]
    assert any("batch 4 of coordination pd has no domain" in m for m in events)
    gated = [p.metadata.name for p in kube.list(Pod, namespace=namespace) if p.spec.schedulingGates]
    assert sorted(gated) == ["exact-decode-4", "exact-prefill-8", "exact-prefill-9"]  # no GPU held by them

    (new,) = add(1, 3)  # capacity arrives: re-planned at once, no restart
    wait_rbg_ready(kube, "exact", namespace, timeout=60)
    placed = batches_by_domain(kube, namespace, HOST)
    assert placed["4"] == {new}


def gang_group(name: str, tag: str, gang: bool) -> dict[str, Any]:
    def role(r: str) -> dict[str, Any]:
        c = {"name": r, "image": "registry.local/engine:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}
        return {
            "name": r,
            "replicas": 2,
            "template": {"spec": {"nodeSelector": {"pool": tag}, "containers": [c]}},
        }

    doc: dict[str, Any] = {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {"roles": [role("prefill"), role("decode")]},
    }
    if gang:
        doc["spec"]["podGroupPolicy"] = {"kubeScheduling": {"scheduleTimeoutSeconds": 30}}
    return doc


def test_gang_schedules_no_pod_until_all_fit_and_without_it_the_partial_placement_happens(
    kube: Client, namespace: str, kubectl: Any, pool: Any
) -> None:
    from lightkube.generic_resource import create_namespaced_resource

    podgroup = create_namespaced_resource("scheduling.x-k8s.io", "v1alpha1", "PodGroup", "podgroups")
    tag, add = pool
    add(1, 3)  # 3 free GPUs; each group needs 4

    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(gang_group("gang", tag, gang=True)))
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr  # acted on now

    def four_pods(group: str) -> tuple[bool, Any]:
        found = [
            p for p in kube.list(Pod, namespace=namespace) if p.metadata.labels.get(batches_group) == group
        ]
        return len(found) == 4, [(p.metadata.name, p.spec.nodeName) for p in found]

    batches_group = "rbg.workloads.x-k8s.io/group-name"
    wait_until(lambda: four_pods("gang"), 30, "the gang's 4 pods")
    pg = kube.get(podgroup, "gang", namespace=namespace).to_dict()
    assert pg["spec"]["minMember"] == 4
    assert pg["spec"]["minResources"]["nvidia.com/gpu"] == "4"
    assert pg["metadata"]["ownerReferences"][0]["kind"] == "RoleBasedGroup"
    pods = [p for p in kube.list(Pod, namespace=namespace) if p.metadata.labels.get(batches_group) == "gang"]
    assert {p.spec.schedulerName for p in pods} == {"scheduler-plugins-scheduler"}
    assert {p.metadata.labels["scheduling.x-k8s.io/pod-group"] for p in pods} == {"gang"}

    def refused() -> tuple[bool, Any]:
        events = [
            e.message or "" for e in kube.list(Event, namespace=namespace) if e.reason == "FailedScheduling"
        ]
        return any("gang" in m for m in events), events

    wait_until(refused, 30, "the coscheduling scheduler to refuse the incomplete gang")
    assert not any(p.spec.nodeName for p in kube.list(Pod, namespace=namespace))  # no pod holds a GPU

    add(1, 3)  # now 6 GPUs: the whole gang fits
    wait_rbg_ready(kube, "gang", namespace, timeout=90)

    # without the policy the default scheduler places what fits (2 GPUs are left) and strands the rest
    r = kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(gang_group("loose", tag, gang=False))
    )
    assert r.returncode == 0, r.stderr

    def partial() -> tuple[bool, Any]:
        found = [
            p for p in kube.list(Pod, namespace=namespace) if p.metadata.labels.get(batches_group) == "loose"
        ]
        bound = [p.metadata.name for p in found if p.spec.nodeName]
        return len(found) == 4 and len(bound) == 2, bound

    wait_until(partial, 60, "two of the loose group's pods bound, two stranded")


def exclusive_group(name: str, key: str = HOST) -> dict[str, Any]:
    def role(r: str, n: int, kind: str = "StatefulSet", opt_out: bool = False) -> dict[str, Any]:
        c = {"name": r, "image": "registry.local/engine:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}
        tpl: dict[str, Any] = {
            "spec": {"nodeSelector": {"topology.kubernetes.io/zone": "zone-a"}, "containers": [c]}
        }
        if opt_out:
            tpl["metadata"] = {
                "annotations": {"rolebasedgroup.workloads.x-k8s.io/disable-exclusive-topology": "true"}
            }
        return {
            "name": r,
            "replicas": n,
            "workload": {"apiVersion": "apps/v1", "kind": kind},
            "template": tpl,
        }

    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name, "annotations": {"rbg.workloads.x-k8s.io/group-exclusive-topology": key}},
        "spec": {
            "roles": [
                role("router", 1, "Deployment"),
                role("prefill", 2),
                role("decode", 1),
                role("sidecar", 1, opt_out=True),
            ]
        },
    }


def test_group_exclusive_topology_puts_each_group_on_its_own_node(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    for g in ("ex-a", "ex-b", "ex-c"):
        r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(exclusive_group(g)))
        assert r.returncode == 0, r.stderr
        assert "Warning" not in r.stderr
    for g in ("ex-a", "ex-b", "ex-c"):
        wait_rbg_ready(kube, g, namespace)
    nodes_of: dict[str, set[str]] = defaultdict(set)
    for p in kube.list(Pod, namespace=namespace):
        if p.metadata.labels["rbg.workloads.x-k8s.io/role-name"] != "sidecar":
            nodes_of[p.metadata.labels["rbg.workloads.x-k8s.io/group-name"]].add(p.spec.nodeName)
        else:  # the role that opts out is neither gated nor pinned
            assert "rbg.workloads.x-k8s.io/coordinated" not in p.metadata.labels
    assert all(len(n) == 1 for n in nodes_of.values()), (
        nodes_of
    )  # each group (Deployment role too) on one node
    assert len(set().union(*nodes_of.values())) == 3, nodes_of  # no node shared
    st = kube.get(RBG, "ex-a", namespace=namespace).to_dict()["status"]["coordinationStatus"][0]
    assert (st["name"], st["type"], st["phase"]) == ("exclusive-topology", "ExclusiveTopology", "Completed")


def test_rbg_topology_shows_per_domain_the_pods_of_each_role_and_batch(
    kube: Client, namespace: str, kubectl: Any, cluster: Any
) -> None:
    import json
    import os
    import subprocess
    import sys

    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("seed", 6, 3)))
    assert r.returncode == 0, r.stderr
    wait_rbg_ready(kube, "seed", namespace)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}

    def rbg(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "rbg.cli.main", *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    as_json = json.loads(rbg("topology", "seed", "-n", namespace, "-o", "json"))
    assert as_json["topologyKey"] == HOST
    domains = as_json["domains"]
    assert len(domains) == 3
    for by_node in domains.values():
        (entries,) = by_node.values()  # hostname: one node per domain
        assert len({e["batch"] for e in entries}) == 1
        assert sorted(e["role"] for e in entries) == ["decode", "prefill", "prefill"]
    text = rbg("topology", "seed", "-n", namespace)
    assert text.splitlines()[0] == f"RoleBasedGroup seed by {HOST}"
    batch0 = next(d for d, n in domains.items() if next(iter(n.values()))[0]["batch"] == "0")
    line = (
        "seed-decode-0 (decode, batch 0), seed-prefill-0 (prefill, batch 0), "
        "seed-prefill-1 (prefill, batch 0)"
    )
    assert f"  {batch0}: {line}" in text
    status = rbg("status", "seed", "-n", namespace)
    assert "Coordination pd (AffinityScheduling): Completed, 3/3 batches placed" in status


def test_batch_metrics_are_exported(kube: Client, namespace: str, kubectl: Any, operator: Any) -> None:
    import httpx2 as httpx

    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("metered", 4, 2)))
    assert r.returncode == 0, r.stderr
    wait_rbg_ready(kube, "metered", namespace)
    port = operator.ports["rbg-operator-metrics"]

    def scraped() -> tuple[bool, Any]:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        lines = {
            ln.split(" ")[0]: float(ln.split(" ")[1])
            for ln in text.splitlines()
            if ln.startswith("rbg_coordination")
        }
        ok = (
            lines.get('rbg_coordination_batches{phase="Bound"}', 0) >= 2
            and lines.get("rbg_coordination_batch_wait_seconds_count", 0) >= 2
        )
        return ok, lines

    lines = wait_until(scraped, 30, "coordination metrics")
    assert lines["rbg_coordination_stranded_pods"] == 0


def test_volcano_gang_without_volcano_is_reported_not_half_made(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    doc = gang_group("volc", "none", gang=False)
    doc["spec"]["podGroupPolicy"] = {"volcanoScheduling": {"queue": "default"}}
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode == 0, r.stderr

    def reported() -> tuple[bool, Any]:
        st = kube.get(RBG, "volc", namespace=namespace).to_dict().get("status") or {}
        ready = next((c for c in st.get("conditions") or [] if c["type"] == "Ready"), {})
        return "scheduling.volcano.sh/v1beta1 PodGroup kind is not installed" in ready.get(
            "message", ""
        ), ready

    wait_until(reported, 30, "the missing Volcano PodGroup kind reported")
    from lightkube.resources.apps_v1 import StatefulSet

    assert list(kube.list(StatefulSet, namespace=namespace)) == []  # no workload without its gang


def test_a_recreated_pod_rejoins_its_batchs_domain(kube: Client, namespace: str, kubectl: Any) -> None:
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pd_group("again", 4, 2)))
    assert r.returncode == 0, r.stderr
    wait_rbg_ready(kube, "again", namespace)
    before = kube.get(Pod, "again-prefill-3", namespace=namespace)
    node, uid = before.spec.nodeName, before.metadata.uid
    kube.delete(Pod, "again-prefill-3", namespace=namespace)

    def back() -> tuple[bool, Any]:
        try:
            p = kube.get(Pod, "again-prefill-3", namespace=namespace)
        except ApiError as exc:
            return False, str(exc)
        return p.metadata.uid != uid and bool(p.spec.nodeName), (p.spec.nodeName, p.spec.nodeSelector)

    new_node, selector = wait_until(back, 60, "prefill-3 recreated and bound")
    assert new_node == node  # batch 1's domain, not wherever it would fit
    assert selector[HOST] == node
