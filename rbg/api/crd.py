"""CustomResourceDefinitions generated from the pydantic models (structural schemas, CEL, columns).

`python -m rbg.api.crd DIR` writes them; a unit test fails when config/crd is stale.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rbg.api import (
    groupset_v1alpha1,
    hub,
    lws_v1,
    roleinstanceset,
    scaling_v1alpha1,
    v1alpha1,
    v1alpha2,
    v1alpha2_groupset,
    v1alpha2_scaling,
)
from rbg.api.base import EMBED
from rbg.api.k8s_schema import structural_schema

Schema = dict[str, Any]
#: label on our CRDs: a LeaderWorkerSet CRD without it belongs to an upstream LWS installation
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "rbg"
_DROP = {"title", "$defs"}
CONVERT_PATH = "/convert"


def _structural(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_structural(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if EMBED in node:
        embedded = structural_schema(node[EMBED])
        if "description" in node:  # the field's own docstring, not the embedded type's
            embedded = {**embedded, "description": node["description"]}
        return embedded
    if node.get("x-kubernetes-int-or-string"):
        return {
            "x-kubernetes-int-or-string": True,
            **({"description": node["description"]} if "description" in node else {}),
            **(
                {"x-kubernetes-validations": node["x-kubernetes-validations"]}
                if "x-kubernetes-validations" in node
                else {}
            ),
            **({"default": node["default"]} if node.get("default") is not None else {}),
        }
    any_of = node.get("anyOf")
    if any_of is not None:
        options = [o for o in any_of if o.get("type") != "null"]
        if len(options) == 1:  # Optional[X]: optional by not being required
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _structural({**options[0], **rest}, defs)
    out: Schema = {}
    for k, v in node.items():
        if k in _DROP or (k == "default" and v is None):
            continue
        if k == "properties":
            out[k] = {p: _structural(s, defs) for p, s in v.items()}
        elif k == "const":  # CRD schemas have no const
            out["enum"] = [v]
        elif k in ("items", "additionalProperties"):
            out[k] = _structural(v, defs) if isinstance(v, dict) else v
        else:
            out[k] = v
    return out


def openapi_schema(model: type[BaseModel]) -> Schema:
    """Structural OpenAPI v3 schema of a model: refs inlined, Optional flattened, embeds resolved."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: Schema = _structural(raw, raw.get("$defs", {}))
    return schema


@dataclass(frozen=True)
class Version:
    """One version a CRD serves: its name, schema models, and whether etcd keeps objects in it."""

    name: str
    spec: type[BaseModel]
    status: type[BaseModel]
    storage: bool = True


def _stored(version: str, storage: str) -> bool:
    return version == storage


def _root(description: str, spec: type[BaseModel], status: type[BaseModel]) -> Schema:
    return {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": openapi_schema(spec),
            "status": openapi_schema(status),
        },
        "required": ["spec"],
    }


def _crd(
    *,
    group: str,
    version: str = "",
    kind: str,
    plural: str,
    short: str,
    description: str,
    spec: type[BaseModel] | None = None,
    status: type[BaseModel] | None = None,
    subresources: Schema,
    columns: list[Schema],
    versions: list[Version] | None = None,
    same_schema: bool = False,
) -> Schema:
    """A namespaced CRD labelled as ours: one version (`version`, `spec`, `status`), or `versions`
    (exactly one of them stored; more than one are converted by the operator's webhook, D38, or, when
    they have the `same_schema`, by the API server setting apiVersion: strategy None)."""
    if versions is None:
        if spec is None or status is None:
            raise ValueError(f"{kind}: a version's spec and status models")
        versions = [Version(version, spec, status)]
    if sum(v.storage for v in versions) != 1:
        raise ValueError(f"{kind}: exactly one stored version")
    served = [
        {
            "name": v.name,
            "served": True,
            "storage": v.storage,
            "subresources": subresources,
            "additionalPrinterColumns": columns,
            "schema": {"openAPIV3Schema": _root(description, v.spec, v.status)},
        }
        for v in versions
    ]
    out = _one_crd(group, kind, plural, short, served)
    if len(served) > 1:
        out["spec"]["conversion"] = {"strategy": "None"} if same_schema else conversion()
    return out


def conversion(
    url: str | None = None, ca_bundle: bytes | None = None, service: Schema | None = None
) -> Schema:
    """The CRD's conversion stanza: the operator's `/convert` webhook, at `url` or behind `service`
    (namespace, name, port) with the CA that signs its certificate; a Service placeholder in the
    generated files (an installer fills it in)."""
    client: Schema
    if url is not None:
        client = {"url": f"{url.rstrip('/')}{CONVERT_PATH}"}
    else:
        svc = service or {"name": "rbg-webhook", "namespace": "rbg-system"}
        client = {"service": {**svc, "path": CONVERT_PATH}}
    if ca_bundle is not None:
        client["caBundle"] = base64.b64encode(ca_bundle).decode()
    return {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client}}


def _one_crd(group: str, kind: str, plural: str, short: str, versions: list[Schema]) -> Schema:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {MANAGED_BY: MANAGER}},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
            },
            "scope": "Namespaced",
            "versions": versions,
        },
    }


def rolebasedgroup_crd(storage: str = hub.STORAGE_VERSION) -> Schema:
    return _crd(
        group=v1alpha1.GROUP,
        version=v1alpha1.VERSION,
        kind="RoleBasedGroup",
        plural="rolebasedgroups",
        short="rbg",
        description="RoleBasedGroup runs the roles of one inference service (router, prefill, decode, "
        "...) as one unit: a workload and a headless Service per role, a discovery ConfigMap, roles started "
        "in dependency order.",
        versions=[
            Version(
                "v1alpha1",
                v1alpha1.RoleBasedGroupSpec,
                v1alpha1.RoleBasedGroupStatus,
                _stored("v1alpha1", storage),
            ),
            Version(
                "v1alpha2",
                v1alpha2.RoleBasedGroupSpec,
                v1alpha1.RoleBasedGroupStatus,
                _stored("v1alpha2", storage),
            ),
        ],
        subresources={"status": {}},
        columns=[
            {"name": "READY", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
            {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def leaderworkerset_crd() -> Schema:
    return _crd(
        group=lws_v1.GROUP,
        version=lws_v1.VERSION,
        kind="LeaderWorkerSet",
        plural="leaderworkersets",
        short="lws",
        description="LeaderWorkerSet runs groups of pods (a leader and its workers, e.g. one model served "
        "across several nodes) that are created, placed, restarted and updated as one; compatible with "
        "kubernetes-sigs/lws, plus the KEP-162 topologyPlacementPolicy.",
        spec=lws_v1.LeaderWorkerSetSpec,
        status=lws_v1.LeaderWorkerSetStatus,
        subresources={
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.hpaPodSelector",
            },
        },
        columns=[
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Up-to-date", "type": "integer", "jsonPath": ".status.updatedReplicas"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def scalingadapter_crd(storage: str = hub.STORAGE_VERSION) -> Schema:
    return _crd(
        group=v1alpha1.GROUP,
        version=v1alpha1.VERSION,
        kind=scaling_v1alpha1.KIND,
        plural=scaling_v1alpha1.PLURAL,
        short="rbgsa",
        description="RoleBasedGroupScalingAdapter exposes one role of a RoleBasedGroup through the scale "
        "subresource, so that a HorizontalPodAutoscaler or KEDA can drive that role's replicas.",
        # upstream serves and stores v1alpha2 too, with v1alpha1's schema: served both, so that the CRD
        # installs over upstream's (whose storedVersions keep v1alpha2) and its manifests apply
        versions=[
            Version(
                "v1alpha1",
                scaling_v1alpha1.ScalingAdapterSpec,
                scaling_v1alpha1.ScalingAdapterStatus,
                _stored("v1alpha1", storage),
            ),
            Version(
                "v1alpha2",
                v1alpha2_scaling.ScalingAdapterSpec,
                v1alpha2_scaling.ScalingAdapterStatus,
                _stored("v1alpha2", storage),
            ),
        ],
        same_schema=True,
        subresources={
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        columns=[
            {"name": "PHASE", "type": "string", "jsonPath": ".status.phase"},
            {"name": "REPLICAS", "type": "integer", "jsonPath": ".status.replicas"},
            {"name": "READY_REPLICAS", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def rolebasedgroupset_crd(storage: str = hub.STORAGE_VERSION) -> Schema:
    return _crd(
        group=v1alpha1.GROUP,
        version=v1alpha1.VERSION,
        kind=groupset_v1alpha1.KIND,
        plural=groupset_v1alpha1.PLURAL,
        short="rbgs",
        description="RoleBasedGroupSet runs `replicas` copies of one RoleBasedGroup, `{set}-{i}`; a "
        "template change rolls them one group at a time.",
        versions=[
            Version(
                "v1alpha1",
                groupset_v1alpha1.RoleBasedGroupSetSpec,
                groupset_v1alpha1.RoleBasedGroupSetStatus,
                _stored("v1alpha1", storage),
            ),
            Version(
                "v1alpha2",
                v1alpha2_groupset.RoleBasedGroupSetSpec,
                groupset_v1alpha1.RoleBasedGroupSetStatus,
                _stored("v1alpha2", storage),
            ),
        ],
        subresources={
            "status": {},
            "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
        },
        columns=[
            {"name": "DESIRED", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "READY", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "UPDATED", "type": "integer", "jsonPath": ".status.updatedReplicas"},
            {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def roleinstanceset_crd() -> Schema:
    return _crd(
        group=roleinstanceset.GROUP,
        version=roleinstanceset.VERSION,
        kind=roleinstanceset.KIND,
        plural=roleinstanceset.PLURAL,
        short="ris",
        description="RoleInstanceSet runs the instances of a customComponentsPattern role: each instance "
        "is `size` pods of every component, one StatefulSet {set}-{index}-{component} per component; "
        "written by the RoleBasedGroup controller.",
        spec=roleinstanceset.RoleInstanceSetSpec,
        status=roleinstanceset.RoleInstanceSetStatus,
        subresources={
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.labelSelector",
            },
        },
        columns=[
            {"name": "DESIRED", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "UPDATED", "type": "integer", "jsonPath": ".status.updatedReplicas"},
            {"name": "UPDATED_READY", "type": "integer", "jsonPath": ".status.updatedReadyReplicas"},
            {"name": "READY", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "TOTAL", "type": "integer", "jsonPath": ".status.replicas"},
            {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


ALL = {
    "workloads.x-k8s.io_rolebasedgroups.yaml": rolebasedgroup_crd,
    "workloads.x-k8s.io_rolebasedgroupsets.yaml": rolebasedgroupset_crd,
    "workloads.x-k8s.io_rolebasedgroupscalingadapters.yaml": scalingadapter_crd,
    "leaderworkerset.x-k8s.io_leaderworkersets.yaml": leaderworkerset_crd,
    "workloads.x-k8s.io_roleinstancesets.yaml": roleinstanceset_crd,
}


#: the CRDs whose stored version can be chosen (they serve v1alpha1 and v1alpha2)
_CHOOSE_STORAGE = {rolebasedgroup_crd, rolebasedgroupset_crd, scalingadapter_crd}


def build(name: str, storage: str = hub.STORAGE_VERSION) -> Schema:
    """The CRD of file `name` (a key of ALL), storing `storage` where it serves both versions."""
    builder = ALL[name]
    return builder(storage) if builder in _CHOOSE_STORAGE else builder()


def render(crd: Schema) -> str:
    header = "# Generated by `python -m rbg.api.crd config/crd` from rbg/api; do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=True, width=120)


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "config/crd")
    out.mkdir(parents=True, exist_ok=True)
    for name, build in ALL.items():
        (out / name).write_text(render(build()))
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
