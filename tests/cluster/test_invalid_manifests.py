"""Bad input at scale (issue 15): a corpus of invalid manifests (tests/cluster/invalid_corpus.py), each
applied as a user would (`kubectl apply --server-side`) to the suite's cluster with its operator.

Each one is refused at apply, and the refusal names the field; the operator is never restarted by it
(its supervisor's record); no object is made from a refused create, and a refused update leaves the
live object as it was (same generation, still Ready).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from invalid_corpus import Case, corpus, live_bases
from lightkube import Client

from rbg.devcluster import operator as op
from rbg.devcluster.cluster import LocalCluster, State
from rbg.devcluster.supervisor import Record
from rbg.devcluster.wait import wait_until

CHILD_KINDS = (
    "statefulsets",
    "deployments",
    "services",
    "configmaps",
    "pods",
    "controllerrevisions",
    "leaderworkersets.leaderworkerset.x-k8s.io",
    "roleinstancesets.workloads.x-k8s.io",
)


def _generation_and_ready(kubectl: Any, ns: str, kind: str, name: str) -> tuple[int, bool]:
    out = kubectl("get", kind, name, "-n", ns, "-o", "json")
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    st = obj.get("status") or {}
    if kind == "rolebasedgroup":
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or [])
    else:
        ready = (st.get("readyReplicas") or 0) == obj["spec"].get("replicas", 1)
    return int(obj["metadata"]["generation"]), ready


def _normalized(message: str, manifest: dict[str, Any]) -> str:
    """Server-side apply names a list element by its key (`.spec.roles[name="router"].replicas`, and
    `.spec.roles: element 0: ... omits all key fields ["name"]`): the same field, written by index."""
    for i, role in enumerate(manifest["spec"].get("roles") or []):
        if isinstance(role.get("name"), str):
            message = message.replace(f'spec.roles[name="{role["name"]}"]', f"spec.roles[{i}]")
    return re.sub(
        r"spec\.roles: element (\d+): associative list with keys has an element that omits all key "
        r'fields \["name"\]',
        r"spec.roles[\1].name: required (the list's key)",
        message,
    )


def _refusal(kubectl: Any, ns: str, case: Case) -> tuple[int, str]:
    body = yaml.safe_dump(case.manifest)
    out = kubectl("apply", "--server-side", "--field-manager=corpus", "-n", ns, "-f", "-", stdin=body)
    return out.returncode, (out.stderr + out.stdout).strip()


def test_every_invalid_manifest_is_refused_naming_its_field(
    operator: State, local_cluster: LocalCluster, kube: Client, kubectl: Any, namespace: str
) -> None:
    cases = corpus()
    assert len(cases) >= 200, len(cases)
    record = Record.read(op.record_file(local_cluster, op.COMPONENT))
    assert record is not None, "the suite's operator runs under its supervisor"

    live = live_bases()
    for manifest in live.values():
        # the manager the updates are sent with: a field an update leaves out is then removed
        body = yaml.safe_dump(manifest)
        out = kubectl(
            "apply", "--server-side", "--field-manager=corpus", "-n", namespace, "-f", "-", stdin=body
        )
        assert out.returncode == 0, out.stderr
    kinds = {name: m["kind"].lower() for name, m in live.items()}
    before = {}
    for name in live:

        def ready(n: str = name) -> tuple[bool, Any]:
            generation, is_ready = _generation_and_ready(kubectl, namespace, kinds[n], n)
            return is_ready, generation

        before[name] = wait_until(ready, 120, f"{name} Ready")

    accepted, unnamed, seen = [], [], []
    for case in cases:
        code, message = _refusal(kubectl, namespace, case)
        seen.append({"case": case.id, "code": code, "message": message})
        if code == 0:
            accepted.append(case.id)
        elif not any(field in _normalized(message, case.manifest) for field in case.fields):
            unnamed.append(f"{case.id}: wanted one of {case.fields} in: {message[:400]}")
    (local_cluster.dir / "invalid-corpus.json").write_text(json.dumps(seen, indent=1))
    assert (accepted, unnamed) == ([], []), (
        f"{len(accepted)} of {len(cases)} invalid manifests were accepted: {accepted}; "
        f"{len(unnamed)} refusals do not name the field:\n" + "\n".join(unnamed)
    )

    # no object made from a refused create: the namespace holds the live objects and their children only
    made = []
    for kind in CHILD_KINDS:
        out = kubectl("get", kind, "-n", namespace, "-o", "json")
        assert out.returncode == 0, out.stderr
        for item in json.loads(out.stdout)["items"]:
            meta = item["metadata"]
            labelled = meta.get("labels") or {}
            group = labelled.get("rbg.workloads.x-k8s.io/group-name") or labelled.get(
                "leaderworkerset.sigs.k8s.io/name"
            )
            if meta["name"] in ("kube-root-ca.crt",) or group in live or meta["name"] in live:
                continue
            made.append(f"{kind}/{meta['name']}")
    assert made == [], f"objects left from refused manifests: {made}"
    for kind in ("rolebasedgroups", "leaderworkersets.leaderworkerset.x-k8s.io"):
        out = kubectl("get", kind, "-n", namespace, "-o", "name")
        names = sorted(line.rsplit("/", 1)[-1] for line in out.stdout.split())
        assert set(names) <= set(live), names

    # refused updates changed nothing
    for name in live:
        generation, ready = _generation_and_ready(kubectl, namespace, kinds[name], name)
        assert (generation, ready) == (before[name], True), name

    after = Record.read(op.record_file(local_cluster, op.COMPONENT))
    assert after is not None
    assert (after.restarts, after.pid) == (record.restarts, record.pid), "the operator was restarted"


@pytest.mark.parametrize("kind", ["RoleBasedGroup", "LeaderWorkerSet"])
def test_an_invalid_pod_template_is_refused_at_apply_by_the_dry_run(
    operator: State, kubectl: Any, namespace: str, kind: str
) -> None:
    """D16: what Pod validation requires and the CRD schema cannot know is refused at apply, naming the
    field where the user wrote it, instead of being found after the object is stored."""
    container = {"name": "e", "resources": {"limits": {"gpu": "1"}}}  # no image, an unknown resource
    template = {"spec": {"containers": [container]}}
    if kind == "RoleBasedGroup":
        manifest = {
            "apiVersion": "workloads.x-k8s.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": "tpl"},
            "spec": {"roles": [{"name": "a", "replicas": 1, "template": template}]},
        }
        where = "spec.roles[0].template.spec.containers[0]"
    else:
        manifest = {
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": kind,
            "metadata": {"name": "tpl"},
            "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2, "workerTemplate": template}},
        }
        where = "spec.leaderWorkerTemplate.workerTemplate.spec.containers[0]"
    out = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    assert out.returncode != 0
    assert f"{where}.image: Required value" in out.stderr, out.stderr
    assert f"{where}.resources.limits[gpu]" in out.stderr, out.stderr
    got = kubectl("get", kind.lower(), "tpl", "-n", namespace)
    assert got.returncode != 0
    assert "NotFound" in got.stderr
