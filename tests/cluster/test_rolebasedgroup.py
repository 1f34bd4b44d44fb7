"""RoleBasedGroup behaviour on the real control plane, with the operator running under its own RBAC."""

from __future__ import annotations

import copy
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.core_v1 import ConfigMap, Event, Pod, Service
from lightkube.types import PatchType

from rbg.devcluster import operator as op
from rbg.devcluster.cluster import LocalCluster
from rbg.devcluster.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
RBG = create_namespaced_resource("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups")
GROUP = "rbg.workloads.x-k8s.io/group-name"
ROLE = "rbg.workloads.x-k8s.io/role-name"

pytestmark = pytest.mark.usefixtures("operator")


def manifest(path: str = "examples/pd-disagg.yaml") -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / path).read_text())
    return doc


def simple(name: str, roles: dict[str, int], **extra: Any) -> dict[str, Any]:
    tpl = {"spec": {"containers": [{"name": "main", "image": "registry.local/engine:1"}]}}
    return {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": name},
        "spec": {"roles": [{"name": r, "replicas": n, "template": tpl} for r, n in roles.items()], **extra},
    }


def create(kube: Client, doc: dict[str, Any], ns: str) -> None:
    kube.create(codecs.from_dict(doc), namespace=ns)


def get_rbg(kube: Client, name: str, ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.get(RBG, name, namespace=ns).to_dict()
    return obj


def wait_ready(kube: Client, name: str, ns: str, timeout: float = 120) -> dict[str, Any]:
    def probe() -> tuple[bool, Any]:
        obj = get_rbg(kube, name, ns)
        st = obj.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))
        current = st.get("observedGeneration") == obj["metadata"]["generation"]
        return ready and current, st

    result: dict[str, Any] = wait_until(probe, timeout, f"RoleBasedGroup {name} Ready")
    return result


def workloads(kube: Client, ns: str) -> set[tuple[str, str, int]]:
    out = {("StatefulSet", s.metadata.name, s.spec.replicas) for s in kube.list(StatefulSet, namespace=ns)}
    out |= {("Deployment", d.metadata.name, d.spec.replicas) for d in kube.list(Deployment, namespace=ns)}
    return out


def test_upstream_manifest_reaches_ready_with_documented_children(
    kube: Client, namespace: str, kubectl: Any, operator: Any
) -> None:
    r = kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples/pd-disagg.yaml"))
    assert r.returncode == 0, r.stderr
    status = wait_ready(kube, "pd-disagg", namespace)
    assert status["roleStatuses"] == [
        {"name": "router", "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
        {"name": "prefill", "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2},
        {"name": "decode", "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    ]
    assert workloads(kube, namespace) == {
        ("Deployment", "pd-disagg-router", 1), ("StatefulSet", "pd-disagg-prefill", 2),
        ("StatefulSet", "pd-disagg-decode", 1),
    }  # fmt: skip
    uid = get_rbg(kube, "pd-disagg", namespace)["metadata"]["uid"]
    sts = kube.get(StatefulSet, "pd-disagg-prefill", namespace=namespace)
    assert [(o.kind, o.uid, o.controller) for o in sts.metadata.ownerReferences] == [
        ("RoleBasedGroup", uid, True)
    ]
    assert sts.spec.serviceName == "s-pd-disagg-prefill"
    for role in ("router", "prefill", "decode"):
        svc = kube.get(Service, f"s-pd-disagg-{role}", namespace=namespace)
        assert svc.spec.clusterIP == "None"
        assert svc.spec.publishNotReadyAddresses is True
        assert svc.spec.selector == {GROUP: "pd-disagg", ROLE: role}

    pod = kube.get(Pod, "pd-disagg-prefill-1", namespace=namespace)
    engine = pod.spec.containers[0]
    env = {e.name: e for e in engine.env}
    assert env["RBG_GROUP_NAME"].value == "pd-disagg"
    assert env["RBG_ROLE_NAME"].value == "prefill"
    assert (
        env["RBG_ROLE_INDEX"].valueFrom.fieldRef.fieldPath
        == "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    assert pod.metadata.labels["apps.kubernetes.io/pod-index"] == "1"  # what RBG_ROLE_INDEX resolves to
    assert engine.args[-1] == "prefill"  # templatePatch applied over the roleTemplate
    assert engine.image == "lmsysorg/sglang:v0.5.5"
    assert any(m.mountPath == "/etc/rbg" and m.name == "rbg-cluster-config" for m in engine.volumeMounts)

    cfg = yaml.safe_load(kube.get(ConfigMap, "pd-disagg", namespace=namespace).data["config.yaml"])
    assert cfg["group"] == {"name": "pd-disagg", "roles": ["router", "prefill", "decode"], "size": 3}
    assert [i["address"] for i in cfg["roles"]["prefill"]["instances"]] == [
        f"pd-disagg-prefill-0.s-pd-disagg-prefill.{namespace}",
        f"pd-disagg-prefill-1.s-pd-disagg-prefill.{namespace}",
    ]
    assert cfg["roles"]["decode"]["instances"][0]["ports"] == {"http": 8000}

    out = subprocess_rbg_status(namespace, operator)
    assert "  prefill  2/2  [████████████████] 100%" in out
    assert "Ready: True (AllRolesReady: All roles are ready)" in out
    as_json = json.loads(subprocess_rbg_status(namespace, operator, "-o", "json"))
    assert as_json["status"]["roleStatuses"] == status["roleStatuses"]


def subprocess_rbg_status(namespace: str, state: Any, *extra: str) -> str:
    import subprocess
    import sys

    env = {**os.environ, "KUBECONFIG": str(state.kubeconfig)}
    cmd = [sys.executable, "-m", "rbg.cli.main", "status", "pd-disagg", "-n", namespace, *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_dependent_role_is_created_only_after_its_dependency_is_ready(kube: Client, namespace: str) -> None:
    doc = manifest()
    # hold the prefill pods back with a scheduling gate, so prefill stays not Ready until the test says so
    doc["spec"]["roles"][1]["templatePatch"]["spec"]["schedulingGates"] = [{"name": "test.rbg/hold"}]
    create(kube, doc, namespace)

    def waiting() -> tuple[bool, Any]:
        st = get_rbg(kube, "pd-disagg", namespace).get("status") or {}
        prog = next((c for c in st.get("conditions", []) if c["type"] == "Progressing"), {})
        return prog.get("reason") == "DependencyNotMet", prog

    cond = wait_until(waiting, 60, "Progressing=DependencyNotMet")
    assert cond["message"] == "decode waits for prefill"
    prefill_pods = lambda: list(kube.list(Pod, namespace=namespace, labels={ROLE: "prefill"}))  # noqa: E731
    wait_until(lambda: (len(prefill_pods()) == 2, "prefill pods"), 60, "prefill pods created")
    names = {n for _, n, _ in workloads(kube, namespace)}
    assert "pd-disagg-decode" not in names
    assert {"pd-disagg-prefill", "pd-disagg-router"} <= names

    def event() -> tuple[bool, Any]:
        events = kube.list(Event, namespace=namespace)
        found = [(e.type, e.message) for e in events if e.reason == "DependencyNotMet"]
        return bool(found), found

    assert wait_until(event, 30, "DependencyNotMet event")[0] == (
        "Warning",
        "role decode waits for prefill to be Ready",
    )

    for p in kube.list(Pod, namespace=namespace, labels={ROLE: "prefill"}):
        kube.patch(Pod, p.metadata.name, {"spec": {"schedulingGates": None}}, namespace=namespace)
    wait_ready(kube, "pd-disagg", namespace)
    assert ("StatefulSet", "pd-disagg-decode", 1) in workloads(kube, namespace)


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, "spec.roles[0].dependencies: dependency cycle: a -> b -> a"),
        ({"a": ["nope"]}, 'spec.roles[0].dependencies[0]: role "a" depends on unknown role "nope"'),
    ],
)
def test_bad_dependencies_are_rejected_at_apply(
    namespace: str, kubectl: Any, roles: dict[str, list[str]], message: str
) -> None:
    doc = simple("bad", dict.fromkeys(roles, 1))
    for r in doc["spec"]["roles"]:
        r["dependencies"] = roles[r["name"]]
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert result.returncode == 1
    assert 'admission webhook "vrolebasedgroup.workloads.x-k8s.io" denied the request' in result.stderr
    assert message in result.stderr
    assert kubectl("get", "rbg", "-n", namespace, "-o", "name").stdout == ""


def test_fields_not_acted_on_yet_are_accepted_with_a_warning(namespace: str, kubectl: Any) -> None:
    doc = simple("warned", {"prefill": 2, "decode": 1})
    doc["spec"]["roles"][1]["workload"] = {"apiVersion": "apps/v1", "kind": "Deployment"}
    doc["spec"]["coordination"] = [
        {"name": "pd", "roles": ["prefill", "decode"], "strategy": {"rollingUpdate": {"maxSkew": "10%"}}}
    ]
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert result.returncode == 0, result.stderr
    assert (
        "Warning: spec.coordination[0].strategy.rollingUpdate: accepted, but this operator does not act on "
        "it yet for Deployment role decode: it rolls at its own pace"
    ) in result.stderr
    assert (
        kubectl("get", "rbg", "-n", namespace, "-o", "name").stdout.strip()
        == "rolebasedgroup.workloads.x-k8s.io/warned"
    )


def test_kubectl_explain_explains_the_fields(operator: Any, kubectl: Any) -> None:
    v1 = "--api-version=workloads.x-k8s.io/v1alpha1"
    result = kubectl("explain", "rbg.spec.roles.replicas", v1)
    assert result.returncode == 0, result.stderr
    assert "Number of pods of the role." in " ".join(result.stdout.split())  # kubectl wraps lines
    roles = " ".join(kubectl("explain", "rbg.spec.roles", v1).stdout.split())
    assert "Roles that must be Ready before this role's workload is created." in roles
    # the storage and preferred version is upstream's current one, explained as well
    v2 = " ".join(kubectl("explain", "rbg.spec.roles.leaderWorkerPattern.size").stdout.split())
    assert "VERSION: v1alpha2" in v2, v2
    assert "DESCRIPTION:" in v2, v2
    assert "<integer>" in v2, v2


def test_scale_remove_role_repair_by_hand_and_delete(kube: Client, namespace: str) -> None:
    create(kube, simple("svc", {"prefill": 2, "decode": 1}), namespace)
    wait_ready(kube, "svc", namespace)

    def patch_roles(change: Any) -> None:
        obj = get_rbg(kube, "svc", namespace)
        spec = copy.deepcopy(obj["spec"])
        change(spec["roles"])
        kube.patch(
            RBG,
            "svc",
            {"spec": {"roles": spec["roles"]}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    patch_roles(lambda roles: roles[0].update(replicas=4))
    wait_ready(kube, "svc", namespace)
    assert ("StatefulSet", "svc-prefill", 4) in workloads(kube, namespace)
    assert len(list(kube.list(Pod, namespace=namespace, labels={ROLE: "prefill"}))) == 4

    patch_roles(lambda roles: roles[0].update(replicas=1))
    wait_ready(kube, "svc", namespace)
    wait_until(
        lambda: (len(p := list(kube.list(Pod, namespace=namespace, labels={ROLE: "prefill"}))) == 1, len(p)),
        60,
        "prefill scaled down to 1 pod",
    )

    patch_roles(lambda roles: roles.pop(1))
    wait_ready(kube, "svc", namespace)
    wait_until(
        lambda: (
            workloads(kube, namespace) == {("StatefulSet", "svc-prefill", 1)},
            workloads(kube, namespace),
        ),
        60,
        "decode's StatefulSet removed",
    )
    with pytest.raises(ApiError):
        kube.get(Service, "s-svc-decode", namespace=namespace)

    # a child deleted by hand comes back; replicas edited by hand are put back
    old_uid = kube.get(StatefulSet, "svc-prefill", namespace=namespace).metadata.uid
    kube.delete(StatefulSet, "svc-prefill", namespace=namespace)
    wait_until(
        lambda: (
            kube.get(StatefulSet, "svc-prefill", namespace=namespace).metadata.uid != old_uid,
            "same uid",
        ),
        60,
        "StatefulSet re-created",
    )
    kube.patch(StatefulSet, "svc-prefill", {"spec": {"replicas": 5}}, namespace=namespace)
    wait_until(
        lambda: ((r := kube.get(StatefulSet, "svc-prefill", namespace=namespace).spec.replicas) == 1, r),
        60,
        "replicas reverted to 1",
    )
    wait_ready(kube, "svc", namespace)

    kube.delete(RBG, "svc", namespace=namespace)
    wait_until(
        lambda: (not (w := workloads(kube, namespace)) and not list(kube.list(Pod, namespace=namespace)), w),
        90,
        "every child and pod garbage-collected",
    )
    assert not [s for s in kube.list(Service, namespace=namespace) if s.metadata.name.startswith("s-svc")]


def test_operator_restart_mid_reconcile_converges_without_duplicates(
    kube: Client, namespace: str, local_cluster: LocalCluster
) -> None:
    lc = local_cluster
    groups = [f"g{i}" for i in range(5)]
    for g in groups:
        create(kube, simple(g, {"prefill": 2, "decode": 1, "router": 1}), namespace)
    state = lc.load_state()
    assert state is not None
    os.killpg(state.pids[op.COMPONENT], signal.SIGKILL)  # no graceful shutdown: mid-reconcile
    op.start(lc)
    for g in groups:
        wait_ready(kube, g, namespace)
    assert workloads(kube, namespace) == {
        (k, f"{g}-{r}", n) for g in groups for r, n, k in
        (("prefill", 2, "StatefulSet"), ("decode", 1, "StatefulSet"), ("router", 1, "StatefulSet"))
    }  # fmt: skip
    assert len(list(kube.list(Pod, namespace=namespace))) == 5 * 4
    assert len(list(kube.list(Service, namespace=namespace))) == 5 * 3


def test_a_field_removed_from_the_spec_is_removed_from_the_child(kube: Client, namespace: str) -> None:
    doc = simple("upd", {"prefill": 4})
    doc["spec"]["roles"][0]["rolloutStrategy"] = {"rollingUpdate": {"partition": 2}}
    doc["spec"]["roles"][0]["template"]["spec"]["nodeSelector"] = {"topology.kubernetes.io/zone": "zone-a"}
    create(kube, doc, namespace)
    wait_ready(kube, "upd", namespace)
    sts = kube.get(StatefulSet, "upd-prefill", namespace=namespace)
    assert sts.spec.updateStrategy.rollingUpdate.partition == 2
    assert sts.spec.template.spec.nodeSelector == {"topology.kubernetes.io/zone": "zone-a"}

    role = get_rbg(kube, "upd", namespace)["spec"]["roles"][0]
    role.pop("rolloutStrategy")
    role["template"]["spec"].pop("nodeSelector")
    kube.patch(RBG, "upd", {"spec": {"roles": [role]}}, namespace=namespace, patch_type=PatchType.MERGE)

    def cleared() -> tuple[bool, Any]:
        s = kube.get(StatefulSet, "upd-prefill", namespace=namespace).spec
        partition = s.updateStrategy.rollingUpdate.partition if s.updateStrategy.rollingUpdate else 0
        return not partition and not s.template.spec.nodeSelector, (partition, s.template.spec.nodeSelector)

    wait_until(cleared, 60, "partition and nodeSelector removed from the StatefulSet")
    wait_ready(kube, "upd", namespace)


def test_a_users_object_with_the_same_name_is_not_taken_over(kube: Client, namespace: str) -> None:
    mine = codecs.from_dict(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "clash"}, "data": {"owner": "me"}}
    )
    kube.create(mine, namespace=namespace)
    create(kube, simple("clash", {"prefill": 1}), namespace)

    def reported() -> tuple[bool, Any]:
        st = get_rbg(kube, "clash", namespace).get("status") or {}
        ready = next((c for c in st.get("conditions", []) if c["type"] == "Ready"), {})
        return ready.get("reason") == "InvalidSpec", ready

    ready = wait_until(reported, 60, "Ready=False InvalidSpec")
    assert (
        ready["message"]
        == 'metadata.name: ConfigMap "clash" already exists and belongs to no controller (made by hand?)'
    )
    cm = kube.get(ConfigMap, "clash", namespace=namespace)
    assert cm.data == {"owner": "me"}
    assert not cm.metadata.ownerReferences
    assert workloads(kube, namespace) == set()


def test_a_child_the_api_server_refuses_is_reported_in_status(kube: Client, namespace: str) -> None:
    doc = simple("noimage", {"prefill": 1})
    # valid in a pod template (so the admission's dry run of the templates passes, D16), not in a
    # StatefulSet's: found only when the workload is created
    doc["spec"]["roles"][0]["template"]["spec"]["restartPolicy"] = "Never"
    create(kube, doc, namespace)

    def reported() -> tuple[bool, Any]:
        st = get_rbg(kube, "noimage", namespace).get("status") or {}
        ready = next((c for c in st.get("conditions", []) if c["type"] == "Ready"), {})
        return ready.get("reason") == "InvalidSpec", ready

    message = wait_until(reported, 60, "Ready=False InvalidSpec")["message"]
    assert message.startswith("spec.roles[0]: the API server rejected StatefulSet noimage-prefill: ")
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Never"' in message
    assert workloads(kube, namespace) == set()
