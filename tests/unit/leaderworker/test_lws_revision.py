"""Revisions as upstream computes them: the template-revision-hash label, the ControllerRevision name and
data of sigs.k8s.io/lws, checked against values its own code printed (hack/lws-hash, upstream v0.9.0:
`cd hack/lws-hash && GOFLAGS=-mod=mod go run . -patch` and `go run . -quantities`).

Each fixture (hack/lws-hash/testdata) is the object as this operator's CRD stores it; the Go program
stores it through upstream's CRD (pruning, defaults) and defaulting webhook first, as upstream's API
server would, so a difference between the two CRDs shows here."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rbg.api.lws_v1 import LeaderWorkerSet
from rbg.leaderworker import desired, gojson, revision

HACK = Path(__file__).resolve().parents[3] / "hack" / "lws-hash"

# printed by upstream's revision.NewRevision for hack/lws-hash/testdata/<file>, as upstream stores it
UPSTREAM = {
    "01-minimal.json": ("77c886886b", "minimal-77c886886b-1"),
    "02-no-network-config.json": ("544c7875c8", "legacy-544c7875c8-1"),
    "03-rich-templates.json": ("74777ccb75", "rich-74777ccb75-1"),
    "04-subgroups-claims.json": ("56dfc97f6b", "claims-56dfc97f6b-1"),
}
# the ControllerRevision data upstream hashed (and stores), byte for byte
UPSTREAM_DATA = {
    "01-minimal.json": (
        '{"spec":{"leaderWorkerTemplate":{"$patch":"replace","restartPolicy":"RecreateGroupOnPodRestart",'
        '"size":3,"workerTemplate":{"metadata":{},"spec":{"containers":[{"image":"registry.local/engine:1",'
        '"name":"main","resources":{}}]}}},"networkConfig":{"$patch":"replace","subdomainPolicy":"Shared"}}}'
    ),
    "04-subgroups-claims.json": (
        '{"spec":{"leaderWorkerTemplate":{"$patch":"replace","persistentVolumeClaimRetentionPolicy":'
        '{"whenDeleted":"Delete","whenScaled":"Retain"},"restartPolicy":"None","size":5,"subGroupPolicy":'
        '{"subGroupPolicyType":"LeaderExcluded","subGroupSize":2},"volumeClaimTemplates":[{"metadata":'
        '{"name":"cache"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":'
        '"10Gi"}},"storageClassName":"fast"},"status":{}}],"workerTemplate":{"metadata":{},"spec":'
        '{"containers":[{"image":"registry.local/engine:1","name":"main","resources":{},"volumeMounts":'
        '[{"mountPath":"/cache","name":"cache"}]}]}}},"networkConfig":{"$patch":"replace",'
        '"subdomainPolicy":"UniquePerReplica"}}}'
    ),
}
# input (as JSON) -> what upstream's Go writes back for a resource.Quantity
UPSTREAM_QUANTITIES = {
    '"1000m"': "1", '"1024Mi"': "1Gi", '"1.5Gi"': "1536Mi", '"0.5Gi"': "512Mi", '"0.5"': "500m",
    '"0.1"': "100m", '"100m"': "100m", '"64M"': "64M", '"10Gi"': "10Gi", '"1e3"': "1e3", '"1E3"': "1E3",
    '"1.5e3"': "1500", '"2e-3"': "2e-3", '"1Ki"': "1Ki", '"1023Ki"': "1023Ki", '"1025Ki"': "1025Ki",
    '"1024"': "1024", '"2048"': "2048", '"1536Mi"': "1536Mi", '"0.0000000001"': "1n",
    '"-0.0000000001"': "-1n", '"1.0000000001"': "1000000001n", '"-1.5Gi"': "-1536Mi", '"+3k"': "+3k",
    '"0Gi"': "0", '"000"': "0", '"0.000"': "0", '"12000000000000000000000"': "12", '"1.G"': "1.G",
    '"7E"': "7E", '"1000000000000000000000000000000n"': "1", '".5"': "500m", '"3000u"': "3m",
    '"1000k"': "1M", '"123456789"': "123456789", '"100Mi"': "100Mi", '"0.25Ki"': "256",
    '"1.25Ki"': "1280", '"5e2"': "500", "1": "1", "2": "2", "1000": "1k", "0.5": "500m", "250": "250",
    "0": "0",
}  # fmt: skip


def manifest(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((HACK / "testdata" / name).read_text())
    return doc


def revision_of(doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    s = LeaderWorkerSet.model_validate(doc)
    data = revision.revision_data(s)
    digest = revision.revision_hash(data)
    body = revision.controller_revision(s, data, digest, 1)
    return digest, body["metadata"]["name"], body


def test_every_fixture_has_an_upstream_value() -> None:
    assert sorted(p.name for p in (HACK / "testdata").glob("*.json")) == sorted(UPSTREAM)


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_hash_label_and_revision_name_are_upstreams(name: str) -> None:
    digest, revision_name, body = revision_of(manifest(name))
    assert (digest, revision_name) == UPSTREAM[name]
    assert body["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/template-revision-hash"] == digest


@pytest.mark.parametrize("name", sorted(UPSTREAM_DATA))
def test_revision_data_is_upstreams_patch_byte_for_byte(name: str) -> None:
    _, _, body = revision_of(manifest(name))
    assert gojson.go_json(body["data"]) == UPSTREAM_DATA[name]
    assert body["data"] == json.loads(UPSTREAM_DATA[name])


def test_the_deprecated_default_restart_policy_hashes_as_the_none_upstream_stores() -> None:
    doc = manifest("04-subgroups-claims.json")
    assert doc["spec"]["leaderWorkerTemplate"]["restartPolicy"] == "None"
    doc["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Default"
    assert revision_of(doc)[0] == UPSTREAM["04-subgroups-claims.json"][0]


def test_only_the_template_and_network_config_count() -> None:
    doc = manifest("01-minimal.json")
    other = copy.deepcopy(doc)
    other["metadata"] = {"name": "minimal", "namespace": "elsewhere", "uid": "u2", "annotations": {"a": "b"}}
    other["spec"]["replicas"] = 7
    other["spec"]["startupPolicy"] = "LeaderReady"
    other["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"]["maxSurge"] = 2
    assert revision_of(other)[:2] == UPSTREAM["01-minimal.json"]
    other["spec"]["leaderWorkerTemplate"]["size"] = 4
    assert revision_of(other)[0] != UPSTREAM["01-minimal.json"][0]


def test_the_kep_162_placement_policy_is_part_of_the_revision() -> None:
    doc = manifest("01-minimal.json")
    doc["spec"]["leaderWorkerTemplate"]["topologyPlacementPolicy"] = {
        "type": "Exclusive",
        "topologyKey": "kubernetes.io/hostname",
    }
    digest, _, body = revision_of(doc)
    assert digest != UPSTREAM["01-minimal.json"][0]
    lwt = body["data"]["spec"]["leaderWorkerTemplate"]
    assert lwt["topologyPlacementPolicy"] == {"type": "Exclusive", "topologyKey": "kubernetes.io/hostname"}


@pytest.mark.parametrize(("given", "written"), sorted(UPSTREAM_QUANTITIES.items()))
def test_quantities_are_written_back_as_upstreams_go_does(given: str, written: str) -> None:
    assert gojson.go_quantity(json.loads(given)) == written


def test_the_go_type_table_is_the_one_hack_lws_hash_printed() -> None:
    def lines(text: str) -> list[str]:
        out: list[str] = []
        for line in text.splitlines():
            if line.startswith(" "):
                out[-1] += " " + line.strip()
            elif line.strip():
                out.append(line.strip())
        return out

    assert lines(gojson.GO_TYPES) == lines((HACK / "go-types.txt").read_text())


def test_a_revision_written_by_an_earlier_version_of_this_operator_is_the_same_template() -> None:
    """Earlier versions stored {leaderWorkerTemplate, networkConfig} as dumped by the API model, without
    Go's normalization; the controller keeps such a revision's key rather than rolling every group."""
    doc = manifest("03-rich-templates.json")
    s = LeaderWorkerSet.model_validate(doc)
    earlier = {
        "leaderWorkerTemplate": s.spec.leader_worker_template.wire(),
        "networkConfig": {"subdomainPolicy": "Shared"},
    }
    current = revision.revision_data(s)
    assert revision.same_revision(earlier, current)
    spec = revision.revision_spec(current)
    assert "$patch" not in spec["leaderWorkerTemplate"]
    assert spec["leaderWorkerTemplate"]["size"] == 4
    assert revision.revision_spec(earlier) == earlier
    changed = copy.deepcopy(doc)
    changed["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["image"] = "new:2"
    assert not revision.same_revision(
        earlier, revision.revision_data(LeaderWorkerSet.model_validate(changed))
    )
    unique = copy.deepcopy(earlier)
    unique["networkConfig"] = {"subdomainPolicy": "UniquePerReplica"}
    assert not revision.same_revision(unique, current)


def test_statefulsets_are_built_from_either_revision_format() -> None:
    s = LeaderWorkerSet.model_validate(manifest("04-subgroups-claims.json"))
    current = revision.revision_data(s)
    earlier = {
        "leaderWorkerTemplate": s.spec.leader_worker_template.wire(),
        "networkConfig": {"subdomainPolicy": "UniquePerReplica"},
    }
    leader = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "claims-0", "uid": "L0", "labels": {}, "annotations": {}},
    }
    for data in (current, earlier):
        workers = desired.worker_statefulset(s, leader, data, {})
        assert workers["spec"]["replicas"] == 4
        assert workers["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "cache"
        assert workers["spec"]["serviceName"] == "claims-0"  # UniquePerReplica: the group's own Service
        assert "$patch" not in workers["spec"]["template"]
