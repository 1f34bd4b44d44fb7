"""Migration (issue 14): a cluster where the Go upstream stored v1alpha2 RoleBasedGroups and made their
children gets this operator's CRDs installed over it; the stored groups are then reconciled by this
operator, which takes the children over (owners matched by group and kind, D38).

A cluster of its own (`rbg-migrate`): the CRDs are swapped, which the suite's shared cluster must not see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from rbg.devcluster import operator as op
from rbg.devcluster import upstream
from rbg.devcluster.cluster import LocalCluster, State
from rbg.devcluster.errors import DevClusterError
from rbg.devcluster.wait import wait_until

CLUSTER = "rbg-migrate"
TEMPLATE = {"spec": {"containers": [{"name": "engine", "image": "registry.local/engine:1"}]}}
GROUP = {
    "apiVersion": "workloads.x-k8s.io/v1alpha2",
    "kind": "RoleBasedGroup",
    "metadata": {"name": "pd", "namespace": "default"},
    "spec": {
        "roles": [
            {
                "name": "router",
                "replicas": 1,
                "annotations": {"rbg.workloads.x-k8s.io/role-workload-type": "apps/v1/Deployment"},
                "standalonePattern": {"template": TEMPLATE},
            },
            {
                "name": "prefill",
                "replicas": 2,
                "annotations": {"rbg.workloads.x-k8s.io/role-workload-type": "apps/v1/StatefulSet"},
                "standalonePattern": {"template": TEMPLATE},
            },
            # no workload annotation: upstream runs it on its RoleInstanceSet, this operator on a
            # StatefulSet (D39); upstream's RoleInstanceSet is replaced (D42)
            {"name": "decode", "replicas": 1, "standalonePattern": {"template": TEMPLATE}},
            # upstream's RoleInstanceSet with its RoleInstances: replaced by ours, StatefulSets (D42)
            {
                "name": "engine",
                "replicas": 1,
                "customComponentsPattern": {
                    "components": [
                        {"name": "leader", "size": 1, "template": TEMPLATE},
                        {"name": "worker", "size": 1, "template": TEMPLATE},
                    ]
                },
            },
        ]
    },
}


@pytest.fixture(scope="module")
def migrated() -> Iterator[tuple[LocalCluster, State]]:
    source, why = upstream.find_dir()
    if source is None:
        pytest.fail(why, pytrace=False)  # never skipped: the baseline is part of the environment
    lc = LocalCluster(CLUSTER)
    try:
        state, _ = lc.up(timeout=180)
        upstream.start(lc, source)
    except DevClusterError as exc:
        upstream.stop(lc)
        lc.down()  # no cluster left running for the next run to find
        pytest.fail(f"could not make the upstream cluster: {exc}", pytrace=False)
    try:
        yield lc, state
    finally:
        upstream.stop(lc)
        op.stop(lc)
        lc.down()


def _json(state: State, *args: str) -> Any:
    return json.loads(op.kubectl(state, *args, "-o", "json"))


def _ready(obj: Any) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def test_groups_upstream_stored_as_v1alpha2_are_reconciled_after_the_crds_are_replaced(
    migrated: tuple[LocalCluster, State],
) -> None:
    lc, state = migrated
    op.kubectl(state, "apply", "-f", "-", stdin=yaml.safe_dump(GROUP))
    # upstream makes the children and reports Ready
    wait_until(lambda: (_ready(g := _json(state, "get", "rbg", "pd")), g), 120, "upstream's group Ready")
    made = _json(state, "get", "statefulset", "pd-prefill")
    router = _json(state, "get", "deployment", "pd-router")
    theirs = _json(state, "get", "roleinstancesets.workloads.x-k8s.io", "pd-decode")
    their_engine = _json(state, "get", "roleinstancesets.workloads.x-k8s.io", "pd-engine")
    decode_pods = _json(state, "get", "pods", "-l", "rbg.workloads.x-k8s.io/role-name=decode")["items"]
    assert len(decode_pods) == 1, decode_pods
    crd = _json(state, "get", "crd", "rolebasedgroups.workloads.x-k8s.io")
    assert crd["status"]["storedVersions"] == ["v1alpha2"]
    upstream.stop(lc)

    op.start(lc)  # installs this operator's CRDs over upstream's, then reconciles
    crd = _json(state, "get", "crd", "rolebasedgroups.workloads.x-k8s.io")
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1", "v1alpha2"]
    assert "v1alpha2" in crd["status"]["storedVersions"]  # what upstream stored is still there
    # reconciled by this operator: its status, a change made now converges on the children upstream made
    op.kubectl(state, "patch", "rbg", "pd", "--type=json", "-p",
               '[{"op": "replace", "path": "/spec/roles/1/replicas", "value": 3}]')  # fmt: skip

    def converged() -> tuple[bool, Any]:
        sts = _json(state, "get", "statefulset", "pd-prefill")
        group = _json(state, "get", "rbg", "pd")
        done = sts["spec"]["replicas"] == 3 and _ready(group)
        done = done and group["status"].get("observedGeneration") == group["metadata"]["generation"]
        return done, (sts["spec"]["replicas"], group.get("status"))

    wait_until(converged, 180, "the migrated group scaled by this operator")
    # the role upstream ran on its RoleInstanceSet runs on a StatefulSet; upstream's set and its pod went
    decode = _json(state, "get", "statefulset", "pd-decode")
    assert decode["status"].get("readyReplicas") == 1
    left = _json(state, "get", "roleinstancesets.workloads.x-k8s.io")["items"]
    assert [r["metadata"]["uid"] for r in left if r["metadata"]["uid"] == theirs["metadata"]["uid"]] == []
    now = _json(state, "get", "pods", "-l", "rbg.workloads.x-k8s.io/role-name=decode")["items"]
    now = [p for p in now if not p["metadata"].get("deletionTimestamp")]
    assert [p["metadata"]["uid"] for p in now] != [p["metadata"]["uid"] for p in decode_pods]
    assert [p["metadata"]["ownerReferences"][0]["kind"] for p in now] == ["StatefulSet"]
    # the components role: upstream's RoleInstanceSet replaced by one of ours, its pods StatefulSets'
    engine = _json(state, "get", "roleinstancesets.workloads.x-k8s.io", "pd-engine")
    assert engine["metadata"]["uid"] != their_engine["metadata"]["uid"]
    assert engine["status"]["readyReplicas"] == 1
    for component in ("leader", "worker"):
        assert _json(state, "get", "statefulset", f"pd-engine-0-{component}")["status"]["readyReplicas"] == 1
    sts = _json(state, "get", "statefulset", "pd-prefill", "--show-managed-fields")
    assert sts["metadata"]["uid"] == made["metadata"]["uid"]  # taken over, not made again
    # the Deployment too, though upstream's selector differs from ours and is immutable (D39)
    assert _json(state, "get", "deployment", "pd-router")["metadata"]["uid"] == router["metadata"]["uid"]
    managers = {f["manager"] for f in sts["metadata"]["managedFields"]}
    assert "rbg" in managers
    # one object, both versions: v1alpha2 as the preferred one, v1alpha1 on asking
    as_v2 = _json(state, "get", "rbg", "pd")
    assert as_v2["apiVersion"] == "workloads.x-k8s.io/v1alpha2"
    as_v1 = _json(state, "get", "rolebasedgroups.v1alpha1.workloads.x-k8s.io", "pd")
    assert [(r["name"], r["workload"]["kind"], r["replicas"]) for r in as_v1["spec"]["roles"]] == [
        ("router", "Deployment", 1),
        ("prefill", "StatefulSet", 3),
        ("decode", "StatefulSet", 1),
        ("engine", "RoleInstanceSet", 1),
    ]

    # stored as upstream stores it (--storage-version=v1alpha2, D38): the CRDs switch, the group keeps
    # converging, and both versions still read the one object
    op.start(lc, ("--storage-version=v1alpha2",))
    versions = _json(state, "get", "crd", "rolebasedgroups.workloads.x-k8s.io")["spec"]["versions"]
    assert {v["name"]: v["storage"] for v in versions} == {"v1alpha1": False, "v1alpha2": True}
    op.kubectl(state, "patch", "rbg", "pd", "--type=json", "-p",
               '[{"op": "replace", "path": "/spec/roles/2/replicas", "value": 2}]')  # fmt: skip

    def decode_scaled() -> tuple[bool, Any]:
        sts = _json(state, "get", "statefulset", "pd-decode")
        group = _json(state, "get", "rbg", "pd")
        done = sts["status"].get("readyReplicas") == 2 and _ready(group)
        done = done and group["status"].get("observedGeneration") == group["metadata"]["generation"]
        return done, (sts["status"], group.get("status"))

    wait_until(decode_scaled, 120, "the group scaled while stored as v1alpha2")
    as_v1 = _json(state, "get", "rolebasedgroups.v1alpha1.workloads.x-k8s.io", "pd")
    assert as_v1["spec"]["roles"][2]["replicas"] == 2
