"""LeaderWorkerSet on the real control plane: an upstream sample, labels and env vars, Services, status,
scale, startup policy, group restart, admission, and the webhook's scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Node, Pod, Service
from lightkube.types import PatchType
from lws_helpers import (
    LWS,
    P,
    condition,
    container,
    create,
    get,
    lws,
    pods,
    statefulsets,
    wait_available,
)

from rbg.devcluster import operator as op
from rbg.devcluster.cluster import LocalCluster
from rbg.devcluster.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
ENV = ["LWS_LEADER_ADDRESS", "LWS_GROUP_SIZE", "LWS_WORKER_INDEX"]

pytestmark = pytest.mark.usefixtures("operator")


def test_upstream_sample_reaches_available_with_labels_services_and_env_first(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    r = kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples/lws.yaml"))
    assert r.returncode == 0, r.stderr
    name = "leaderworkerset-sample"
    status = wait_available(kube, name, namespace)
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 2, 2)
    assert status["hpaPodSelector"] == f"{P}name={name},{P}worker-index=0"

    sets = statefulsets(kube, namespace)
    assert set(sets) == {name, f"{name}-0", f"{name}-1"}
    leader_set = sets[name]
    assert leader_set.spec.replicas == 2
    assert leader_set.metadata.ownerReferences[0].kind == "LeaderWorkerSet"
    for g in (0, 1):
        workers = sets[f"{name}-{g}"]
        assert workers.spec.replicas == 2
        assert workers.spec.ordinals.start == 1
        owner = workers.metadata.ownerReferences[0]
        assert (owner.kind, owner.name) == ("Pod", f"{name}-{g}")  # the group goes with its leader

    svc = kube.get(Service, name, namespace=namespace)
    assert svc.spec.clusterIP == "None"
    assert svc.spec.selector == {P + "name": name}

    found = pods(kube, namespace, name)
    assert set(found) == {f"{name}-{g}{w}" for g in (0, 1) for w in ("", "-1", "-2")}
    for pod_name, pod in found.items():
        g = pod_name.split("-")[2]
        w = pod_name.split("-")[3] if pod_name.count("-") == 3 else "0"
        labels = pod.metadata.labels
        assert labels[P + "group-index"] == g
        assert labels[P + "worker-index"] == w
        assert labels[P + "group-key"] == found[f"{name}-{g}"].metadata.labels[P + "group-key"]
        assert labels[P + "template-revision-hash"]
        assert pod.metadata.annotations[P + "size"] == "3"
        env = pod.spec.containers[0].env
        assert [e.name for e in env[:3]] == ENV
        assert env[0].value == f"{name}-{g}.{name}.{namespace}"
        assert (env[1].value, env[2].value) == ("3", w)
    assert found[f"{name}-0"].metadata.labels["role"] == "leader"  # the leaderTemplate
    assert "role" not in found[f"{name}-0-1"].metadata.labels

    # kubectl scale through the scale subresource (what an HPA uses)
    r = kubectl("scale", "-n", namespace, "lws", name, "--replicas=3")
    assert r.returncode == 0, r.stderr
    status = wait_available(kube, name, namespace)
    assert status["readyReplicas"] == 3
    assert f"{name}-2" in statefulsets(kube, namespace)


def test_env_vars_come_first_in_every_container_and_override_the_users(kube: Client, namespace: str) -> None:
    doc = lws("envs", replicas=1, size=2)
    spec = doc["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    spec["initContainers"] = [container(name="init", env=[{"name": "X", "value": "1"}])]
    spec["containers"].append(container(name="sidecar", env=[{"name": "LWS_GROUP_SIZE", "value": "99"}]))
    create(kube, doc, namespace)
    wait_available(kube, "envs", namespace)
    for pod in pods(kube, namespace, "envs").values():
        for c in [*pod.spec.initContainers, *pod.spec.containers]:
            names = [e.name for e in c.env]
            assert names[:3] == ENV, (pod.metadata.name, c.name, names)
            assert names.count("LWS_GROUP_SIZE") == 1
            assert c.env[1].value == "2"


def test_unique_per_replica_gives_each_group_its_own_service(kube: Client, namespace: str) -> None:
    doc = lws("uniq", replicas=2, size=2)
    doc["spec"]["networkConfig"] = {"subdomainPolicy": "UniquePerReplica"}
    create(kube, doc, namespace)
    wait_available(kube, "uniq", namespace)
    for g in (0, 1):
        svc = kube.get(Service, f"uniq-{g}", namespace=namespace)
        assert svc.spec.selector == {P + "name": "uniq", P + "group-index": str(g)}
        worker = kube.get(Pod, f"uniq-{g}-1", namespace=namespace)
        assert worker.spec.subdomain == f"uniq-{g}"
        assert worker.spec.containers[0].env[0].value == f"uniq-{g}.uniq-{g}.{namespace}"


@pytest.fixture
def node_label(kube: Client, namespace: str) -> Any:
    """Label nodes for one test; the labels are removed afterwards (the cluster is shared)."""
    key = f"test.rbg/{namespace}"[:63]
    labelled: list[str] = []

    def label(node: str) -> str:
        kube.patch(Node, node, {"metadata": {"labels": {key: "yes"}}})
        labelled.append(node)
        return key

    yield label
    for node in labelled:
        kube.patch(Node, node, {"metadata": {"labels": {key: None}}})


def test_leader_ready_creates_workers_only_for_groups_whose_leader_is_ready(
    kube: Client, namespace: str, node_label: Any
) -> None:
    # the leaders fit only on labelled nodes, one per node (8 GPUs each): unlabelled, they stay Pending
    key = f"test.rbg/{namespace}"[:63]
    doc = lws("ready", replicas=2, size=2, startupPolicy="LeaderReady")
    doc["spec"]["startupPolicy"] = "LeaderReady"
    doc["spec"]["leaderWorkerTemplate"].pop("startupPolicy")
    doc["spec"]["leaderWorkerTemplate"]["leaderTemplate"] = {
        "spec": {"nodeSelector": {key: "yes"}, "containers": [container(gpus=8)]}
    }
    create(kube, doc, namespace)

    def leaders_pending() -> tuple[bool, Any]:
        found = pods(kube, namespace, "ready")
        return set(found) == {"ready-0", "ready-1"}, sorted(found)

    wait_until(leaders_pending, 30, "two Pending leaders")
    assert set(statefulsets(kube, namespace)) == {"ready"}  # no worker StatefulSet yet

    def says_why() -> tuple[bool, Any]:
        cond = condition(get(kube, "ready", namespace), "Progressing") or {}
        return "leader pod ready-0 cannot be scheduled" in cond.get("message", ""), cond

    wait_until(says_why, 30, "the status to say why the leaders wait")  # progress is written every 5 s

    node_label("node-b2-3")

    def one_group() -> tuple[bool, Any]:
        found = pods(kube, namespace, "ready")
        ready_leaders = [n for n in ("ready-0", "ready-1") if n in found and found[n].spec.nodeName]
        return len(ready_leaders) == 1 and len(statefulsets(kube, namespace)) == 2, sorted(found)

    wait_until(one_group, 60, "one leader scheduled, one worker StatefulSet")
    sets = statefulsets(kube, namespace)
    scheduled = next(n for n, p in pods(kube, namespace, "ready").items() if p.spec.nodeName)
    assert set(sets) == {"ready", scheduled}  # only the group whose leader is Ready has workers

    node_label("node-b2-2")
    status = wait_available(kube, "ready", namespace)
    assert status["readyReplicas"] == 2
    assert set(statefulsets(kube, namespace)) == {
        "ready",
        "ready-0",
        "ready-1",
    }


def _uids(kube: Client, ns: str, name: str) -> dict[str, str]:
    return {n: str(p.metadata.uid) for n, p in pods(kube, ns, name).items()}


def test_deleting_a_worker_recreates_its_whole_group(kube: Client, namespace: str) -> None:
    create(kube, lws("rg", replicas=2, size=3), namespace)
    wait_available(kube, "rg", namespace)
    before = _uids(kube, namespace, "rg")
    kube.delete(Pod, "rg-0-1", namespace=namespace)

    def recreated() -> tuple[bool, Any]:
        now = _uids(kube, namespace, "rg")
        group0 = [n for n in before if n.startswith("rg-0")]
        fresh = all(n in now and now[n] != before[n] for n in group0)
        return fresh and len(now) == 6, now

    wait_until(recreated, 90, "group 0 recreated")
    wait_available(kube, "rg", namespace)
    now = _uids(kube, namespace, "rg")
    assert all(now[n] == before[n] for n in before if n.startswith("rg-1"))  # group 1 untouched
    events = [e.message for e in kube.list(Event, namespace=namespace) if e.reason == "RecreateGroup"]
    assert "Worker pod rg-0-1 failed, deleted leader pod rg-0 to recreate group 0" in events


def test_restart_policy_none_replaces_only_the_deleted_pod(kube: Client, namespace: str) -> None:
    create(kube, lws("rn", replicas=1, size=3, restartPolicy="None"), namespace)
    wait_available(kube, "rn", namespace)
    before = _uids(kube, namespace, "rn")
    kube.delete(Pod, "rn-0-1", namespace=namespace)

    def replaced() -> tuple[bool, Any]:
        now = _uids(kube, namespace, "rn")
        return "rn-0-1" in now and now["rn-0-1"] != before["rn-0-1"], now

    wait_until(replaced, 60, "worker rn-0-1 replaced")
    wait_available(kube, "rn", namespace)
    now = _uids(kube, namespace, "rn")
    assert now["rn-0"] == before["rn-0"]
    assert now["rn-0-2"] == before["rn-0-2"]


def test_admission_rejects_what_upstream_rejects_naming_the_field(namespace: str, kubectl: Any) -> None:
    import yaml

    cases = [
        (
            {"size": 2, "subGroupPolicy": {"subGroupSize": 3}},
            {},
            "spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: 3 is larger than size 2",
        ),
        (
            {"size": 2},
            {"rolloutStrategy": {"rollingUpdateConfiguration": {"maxUnavailable": 0, "maxSurge": 0}}},
            "maxUnavailable (0) and maxSurge (0) are both 0",
        ),
        (
            {"size": 2},
            {"rolloutStrategy": {"rollingUpdateConfiguration": {"maxUnavailable": "120%"}}},
            "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: must not be more than 100%",
        ),
    ]
    for i, (lwt, spec, message) in enumerate(cases):
        doc = lws(f"bad-{i}", replicas=2)
        doc["spec"]["leaderWorkerTemplate"].update(lwt)
        doc["spec"].update(spec)
        r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
        assert r.returncode != 0, doc
        assert message in r.stderr, r.stderr


def test_kubectl_explain_explains_the_lws_fields(kubectl: Any) -> None:
    r = kubectl("explain", "lws.spec.leaderWorkerTemplate")
    assert r.returncode == 0, r.stderr
    assert "topologyPlacementPolicy" in r.stdout
    assert "Pod template of the workers" in r.stdout
    assert "restartPolicy" in r.stdout
    assert "recreates the whole group" in r.stdout
    r = kubectl("explain", "lws.spec.leaderWorkerTemplate.topologyPlacementPolicy")
    assert "Exclusive: every pod of a group in one domain, and no two groups share a domain" in " ".join(
        r.stdout.split()
    )


def test_with_the_operator_stopped_other_pods_are_created_normally(
    kube: Client, namespace: str, local_cluster: LocalCluster
) -> None:
    op.stop(local_cluster)
    try:
        plain = Pod(
            metadata=ObjectMeta(name="plain"),
            spec=PodSpec(containers=[Container(name="c", image="registry.local/x:1")]),
        )
        kube.create(plain, namespace=namespace)  # the pod webhook does not see it: no failure
        lws_pod = Pod(
            metadata=ObjectMeta(name="x-0", labels={P + "name": "x"}),
            spec=PodSpec(containers=[Container(name="c", image="registry.local/x:1")]),
        )
        with pytest.raises(ApiError) as err:  # ...while a pod of a LeaderWorkerSet waits for the operator
            kube.create(lws_pod, namespace=namespace)
        assert "mpod.leaderworkerset.x-k8s.io" in str(err.value.status.message)
    finally:
        op.start(local_cluster)


def test_scale_down_removes_the_highest_groups(kube: Client, namespace: str) -> None:
    create(kube, lws("sd", replicas=3, size=2), namespace)
    wait_available(kube, "sd", namespace)
    kube.patch(LWS, "sd", {"spec": {"replicas": 1}}, namespace=namespace, patch_type=PatchType.MERGE)
    wait_available(kube, "sd", namespace)

    def one_group() -> tuple[bool, Any]:
        st = get(kube, "sd", namespace).get("status") or {}
        return st.get("replicas") == 1, st

    wait_until(one_group, 30, "status replicas 1")  # counts are written at most every 5 s (D19)

    def gone() -> tuple[bool, Any]:
        return set(pods(kube, namespace, "sd")) == {"sd-0", "sd-0-1"}, sorted(pods(kube, namespace, "sd"))

    wait_until(gone, 60, "groups 1 and 2 removed")


def test_rbg_with_a_leaderworkerset_role_reaches_ready_with_real_addresses(
    kube: Client, namespace: str, kubectl: Any
) -> None:
    import yaml
    from lightkube.resources.core_v1 import ConfigMap
    from tests_rbg_helpers import wait_rbg_ready

    r = kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples/pd-lws.yaml"))
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr  # restartPolicy is acted on for LeaderWorkerSet roles
    status = wait_rbg_ready(kube, "pd-lws", namespace)
    assert {s["name"]: s["readyReplicas"] for s in status["roleStatuses"]} == {"prefill": 2, "decode": 1}

    prefill = get(kube, "pd-lws-prefill", namespace)
    lwt = prefill["spec"]["leaderWorkerTemplate"]
    assert (lwt["size"], lwt["restartPolicy"]) == (2, "RecreateGroupOnPodRestart")
    assert prefill["metadata"]["ownerReferences"][0]["kind"] == "RoleBasedGroup"

    found = pods(kube, namespace, "pd-lws-prefill")
    assert set(found) == {"pd-lws-prefill-0", "pd-lws-prefill-0-1", "pd-lws-prefill-1", "pd-lws-prefill-1-1"}
    for name, pod in found.items():
        leader = name.count("-") == 3
        assert pod.metadata.labels["tier"] == ("leader" if leader else "worker")
        assert pod.metadata.labels["rbg.workloads.x-k8s.io/role-name"] == "prefill"
        engine = pod.spec.containers[0]
        assert engine.args == (["--role", "prefill", "--leader"] if leader else ["--role", "prefill"])
        env = {e.name: e for e in engine.env}
        assert [e.name for e in engine.env[:3]] == ENV
        assert env["RBG_ROLE_NAME"].value == "prefill"
        # the group's index, for leaders and workers alike (not the worker's ordinal)
        assert env["RBG_ROLE_INDEX"].valueFrom.fieldRef.fieldPath == f"metadata.labels['{P}group-index']"
        assert pod.metadata.labels[P + "group-index"] == name.split("-")[3]

    cfg = yaml.safe_load(kube.get(ConfigMap, "pd-lws", namespace=namespace).data["config.yaml"])
    assert cfg["roles"]["prefill"]["instances"] == [
        {
            "address": f"pd-lws-prefill-{g}.pd-lws-prefill.{namespace}",
            "workers": [f"pd-lws-prefill-{g}-1.pd-lws-prefill.{namespace}"],
            "ports": {"http": 8000},
        }
        for g in (0, 1)
    ]
    # those names are the pods' real DNS names: hostname.subdomain with a headless Service of that name
    worker = found["pd-lws-prefill-1-1"]
    assert (worker.spec.hostname, worker.spec.subdomain) == ("pd-lws-prefill-1-1", "pd-lws-prefill")
    assert kube.get(Service, "pd-lws-prefill", namespace=namespace).spec.clusterIP == "None"
    assert cfg["roles"]["decode"]["instances"] == [
        {"address": f"pd-lws-decode-0.s-pd-lws-decode.{namespace}", "ports": {"http": 8000}}
    ]


UPSTREAM_KINDS = {
    # the shapes of upstream's v1alpha1 examples refused before LeaderWorkerSet roles existed
    "exclusive-topology": {
        "metadata": {
            "annotations": {"rolebasedgroup.workloads.x-k8s.io/exclusive-topology": "kubernetes.io/hostname"}
        },
        "role": {"leaderWorkerSet": {"size": 1}},
    },
    "rbg-with-lws-workload": {"role": {"leaderWorkerSet": {"size": 2}}},
    "restart-policy": {
        "role": {
            "restartPolicy": "None",
            "leaderWorkerSet": {
                "size": 2,
                "patchLeaderTemplate": {"metadata": {"labels": {"role": "leader"}}},
                "patchWorkerTemplate": {"metadata": {"labels": {"role": "worker"}}},
            },
        }
    },
    "rolling-update": {
        "role": {
            "leaderWorkerSet": {"size": 2},
            "rolloutStrategy": {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
        }
    },
    "rolling-update-with-partition": {
        "role": {
            "replicas": 3,
            "leaderWorkerSet": {"size": 2},
            "rolloutStrategy": {"rollingUpdate": {"partition": 1, "maxUnavailable": 1}},
        }
    },
}


@pytest.mark.parametrize("kind", sorted(UPSTREAM_KINDS))
def test_upstream_example_kinds_with_leaderworkerset_roles_are_accepted(
    kube: Client, namespace: str, kubectl: Any, kind: str
) -> None:
    import yaml
    from tests_rbg_helpers import wait_rbg_ready

    shape = UPSTREAM_KINDS[kind]
    role = {
        "name": "lws",
        "replicas": 2,
        "workload": {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"},
        "template": {"spec": {"containers": [container()]}},
        **shape["role"],
    }
    doc = {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": kind, **shape.get("metadata", {})},
        "spec": {"roles": [role, {"name": "sts", "template": {"spec": {"containers": [container()]}}}]},
    }
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert r.returncode == 0, r.stderr
    wait_rbg_ready(kube, kind, namespace)


def test_with_an_upstream_lws_installed_the_operator_leaves_leaderworkersets_to_it(
    kube: Client, namespace: str, kubectl: Any, local_cluster: LocalCluster
) -> None:
    """A LeaderWorkerSet CRD that is not ours stands for kubernetes-sigs/lws: the operator then runs no
    LWS controller and no LWS webhooks, and RBG roles of that kind only create the LWS object."""
    import time

    import yaml

    ours = ROOT / "config/crd/leaderworkerset.x-k8s.io_leaderworkersets.yaml"
    theirs = yaml.safe_load(ours.read_text())  # upstream's: no KEP-162 field, not labelled by us
    del theirs["metadata"]["labels"]
    lwt = theirs["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    del lwt["leaderWorkerTemplate"]["properties"]["topologyPlacementPolicy"]
    op.stop(local_cluster)
    try:
        r = kubectl("replace", "-f", "-", stdin=yaml.safe_dump(theirs))
        assert r.returncode == 0, r.stderr
        log_file = local_cluster.logs / f"{op.COMPONENT}.log"
        seen = log_file.stat().st_size if log_file.exists() else 0
        op.start(local_cluster)
        log = log_file.read_text()[seen:]
        assert "installed by someone else (kubernetes-sigs/lws?)" in log
        r = kubectl("get", "mutatingwebhookconfiguration", "rbg-mutating-webhook-configuration", "-o", "yaml")
        # only the RoleBasedGroup pod webhook (batches of coordinated roles); no LWS pod webhook
        assert [w["name"] for w in yaml.safe_load(r.stdout)["webhooks"]] == ["mpod.workloads.x-k8s.io"]
        r = kubectl(
            "get", "validatingwebhookconfiguration", "rbg-validating-webhook-configuration", "-o", "yaml"
        )
        assert [w["name"] for w in yaml.safe_load(r.stdout)["webhooks"]] == [
            "vrolebasedgroup.workloads.x-k8s.io"
        ]

        doc = yaml.safe_load((ROOT / "examples/pd-lws.yaml").read_text())
        r = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
        assert r.returncode == 0, r.stderr

        def handed_over() -> tuple[bool, Any]:
            try:
                return True, get(kube, "pd-lws-prefill", namespace)
            except ApiError as exc:
                return False, str(exc)

        lws_obj = wait_until(handed_over, 30, "the RBG to create its LeaderWorkerSet")
        assert lws_obj["spec"]["leaderWorkerTemplate"]["size"] == 2
        time.sleep(3)  # nobody here runs it: no leader StatefulSet appears
        assert "pd-lws-prefill" not in statefulsets(kube, namespace)
        assert "pd-lws-decode" in statefulsets(kube, namespace)
    finally:
        op.stop(local_cluster)
        r = kubectl("replace", "-f", str(ours))
        op.start(local_cluster)
    assert r.returncode == 0, r.stderr
    wait_available(kube, "pd-lws-prefill", namespace)  # and ours picks the LWS up


def test_volume_claim_templates_give_every_pod_of_a_group_its_claim(kube: Client, namespace: str) -> None:
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    doc = lws("vct", replicas=1, size=2, volumeClaimTemplates=[claim])
    doc["spec"]["leaderWorkerTemplate"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete"}
    create(kube, doc, namespace)

    def claims() -> tuple[bool, Any]:
        names = {c.metadata.name for c in kube.list(PersistentVolumeClaim, namespace=namespace)}
        return names == {"data-vct-0", "data-vct-0-1"}, names

    wait_until(claims, 60, "a claim for the leader and for the worker")  # (no provisioner: they stay Pending)
    for sts in statefulsets(kube, namespace).values():
        assert [t.metadata.name for t in sts.spec.volumeClaimTemplates] == ["data"]
        assert sts.spec.persistentVolumeClaimRetentionPolicy.whenDeleted == "Delete"
