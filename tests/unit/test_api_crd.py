from pathlib import Path

import pytest
import yaml

from rbg.api import crd, k8s_schema
from rbg.api.hub import RoleBasedGroup
from rbg.devcluster.binaries import K8S_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_are_generated_from_the_models() -> None:
    for name, build in crd.ALL.items():
        committed = (ROOT / "config" / "crd" / name).read_text()
        assert committed == crd.render(build()), f"config/crd/{name} is stale: run `make crds`"


def test_embedded_schemas_come_from_the_kubernetes_version_we_run() -> None:
    assert k8s_schema.kubernetes_version() == K8S_VERSION


def _walk(node: object, path: str = "") -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = []
    if isinstance(node, dict):
        out.append((path, node))
        for k, v in node.items():
            out += _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _walk(v, f"{path}/{i}")
    return out


def _served() -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    """(CRD file, version, root schema) of every version of every CRD this operator installs."""
    return [
        (name, v["name"], v["schema"]["openAPIV3Schema"])
        for name, build in crd.ALL.items()
        for v in build()["spec"]["versions"]
    ]


def test_every_crd_serves_its_versions_and_stores_one() -> None:
    served = {name: [v for n, v, _ in _served() if n == name] for name in crd.ALL}
    assert served == {
        "workloads.x-k8s.io_rolebasedgroups.yaml": ["v1alpha1", "v1alpha2"],
        "workloads.x-k8s.io_rolebasedgroupsets.yaml": ["v1alpha1", "v1alpha2"],
        "workloads.x-k8s.io_rolebasedgroupscalingadapters.yaml": ["v1alpha1", "v1alpha2"],
        "leaderworkerset.x-k8s.io_leaderworkersets.yaml": ["v1"],
        "workloads.x-k8s.io_roleinstancesets.yaml": ["v1alpha2"],
    }
    for name, build in crd.ALL.items():
        versions = build()["spec"]["versions"]
        assert sum(v["storage"] for v in versions) == 1, name
        assert all(v["served"] for v in versions), name


@pytest.mark.parametrize(
    ("name", "version", "schema"), _served(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_crd_schema_is_structural(name: str, version: str, schema: dict) -> None:  # type: ignore[type-arg]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert not {"oneOf", "allOf", "const"} & node.keys(), path
        for key in node:
            assert not key.startswith("x-") or key in {
                "x-kubernetes-list-map-keys",
                "x-kubernetes-list-type",
                "x-kubernetes-map-type",
                "x-kubernetes-int-or-string",
                "x-kubernetes-preserve-unknown-fields",
                "x-kubernetes-validations",
            }, (path, key)


def test_pod_template_is_the_published_schema() -> None:
    schema = crd.rolebasedgroup_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    role = schema["properties"]["spec"]["properties"]["roles"]["items"]
    containers = role["properties"]["template"]["properties"]["spec"]["properties"]["containers"]
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    ports = containers["items"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert ports["items"]["properties"]["protocol"]["default"] == "TCP"


def test_example_manifest_parses_into_the_models() -> None:
    doc = yaml.safe_load((ROOT / "examples" / "pd-disagg.yaml").read_text())
    rbg = RoleBasedGroup.model_validate(doc)
    assert [r.name for r in rbg.spec.roles] == ["router", "prefill", "decode"]
    assert rbg.spec.roles[0].workload.kind == "Deployment"
    assert rbg.spec.roles[1].workload.ref == "apps/v1/StatefulSet"
    assert rbg.spec.roles[2].dependencies == ["prefill"]


def test_every_field_of_the_crd_is_explained() -> None:
    # `kubectl explain rbg.spec.roles` shows these; the embedded Kubernetes types carry the API server's own
    import inspect

    from rbg.api import hub, hub_groupset, hub_scaling, hub_status, lws_v1, v1alpha2, v1alpha2_groupset
    from rbg.api.base import ApiModel, ObjectMeta

    modules = (hub, hub_groupset, hub_scaling, hub_status, lws_v1, v1alpha2, v1alpha2_groupset)
    roots = {"RoleBasedGroup", "RoleBasedGroupSet", "RoleBasedGroupScalingAdapter", "LeaderWorkerSet"}
    models = [
        m
        for module in modules
        for _, m in inspect.getmembers(module, inspect.isclass)
        if issubclass(m, ApiModel) and m is not ApiModel and m.__module__ == module.__name__
    ]
    not_in_crd = {ObjectMeta, *(m for m in models if m.__name__ in roots)}
    assert len(models) > 40
    undocumented = [
        f"{m.__name__}.{name}"
        for m in models
        if m not in not_in_crd
        for name, info in m.model_fields.items()
        if not info.description
    ]
    assert undocumented == []
    described = {"spec", "status"}
    for name, version, schema in _served():  # every version of every CRD: its own fields are explained
        for part in described:
            assert schema["properties"][part].get("description"), (name, version, part)
            for field, node in (schema["properties"][part].get("properties") or {}).items():
                assert node.get("description"), (name, version, f"{part}.{field}")
    crd = yaml.safe_load((ROOT / "config/crd/workloads.x-k8s.io_rolebasedgroups.yaml").read_text())
    role = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "roles"
    ]
    assert role["items"]["properties"]["replicas"]["description"] == "Number of pods of the role."


def test_a_crd_of_several_versions_stores_one_and_converts_through_the_operator() -> None:
    from pydantic import BaseModel

    class Spec(BaseModel):
        size: int = 1

    class Status(BaseModel):
        ready: int = 0

    built = crd._crd(
        group="example.com",
        kind="Widget",
        plural="widgets",
        short="wd",
        description="d",
        subresources={"status": {}},
        columns=[],
        versions=[crd.Version("v1", Spec, Status, storage=False), crd.Version("v2", Spec, Status)],
    )
    assert [(v["name"], v["served"], v["storage"]) for v in built["spec"]["versions"]] == [
        ("v1", True, False),
        ("v2", True, True),
    ]
    hook = built["spec"]["conversion"]["webhook"]
    assert built["spec"]["conversion"]["strategy"] == "Webhook"
    assert hook["clientConfig"]["service"]["path"] == "/convert"
    served = crd.conversion("https://10.0.0.1:9443/", b"CA")["webhook"]["clientConfig"]
    assert served == {"url": "https://10.0.0.1:9443/convert", "caBundle": "Q0E="}
    with pytest.raises(ValueError, match="exactly one stored version"):
        crd._crd(
            group="example.com",
            kind="Widget",
            plural="widgets",
            short="wd",
            description="d",
            subresources={},
            columns=[],
            versions=[crd.Version("v1", Spec, Status), crd.Version("v2", Spec, Status)],
        )


def test_the_stored_version_can_be_upstreams() -> None:
    """--storage-version=v1alpha2 (D38): the CRDs that serve both versions store v1alpha2; the others
    keep their one version; the committed files store v1alpha1."""
    for name in crd.ALL:
        built = crd.build(name, "v1alpha2")
        stored = [v["name"] for v in built["spec"]["versions"] if v["storage"]]
        served = [v["name"] for v in built["spec"]["versions"]]
        assert stored == (["v1alpha2"] if served == ["v1alpha1", "v1alpha2"] else served[:1]), name
        default = [v["name"] for v in crd.build(name)["spec"]["versions"] if v["storage"]]
        assert default == served[:1], name
