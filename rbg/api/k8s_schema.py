"""Kubernetes core/v1 schemas, as the API server publishes them, for CRD embedding and merge patches.

`data/core-v1-openapi.json` is the transitive closure of a few core/v1 definitions taken from a real
kube-apiserver's `/openapi/v3/api/v1` (refresh it with hack/update-k8s-schemas.py). Two consumers:
- the CRD generator, which needs *structural* schemas: every `$ref` inlined, extensions that CRDs do not
  accept removed, `ObjectMeta` reduced to what an embedded object's metadata may carry;
- the strategic-merge patcher, which needs the patch strategy and merge key of each list.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

ROOTS = (
    "io.k8s.api.core.v1.PodTemplateSpec",
    "io.k8s.api.core.v1.ServicePort",
    "io.k8s.api.core.v1.Container",
)
_PREFIX = "#/components/schemas/"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# extensions a CRD's structural schema accepts; the rest (patch strategy, unions, GVK) are dropped
_CRD_EXTENSIONS = {
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
}
_NUM = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
_QUANTITY_PATTERN = rf"^(\+|-)?{_NUM}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_NUM}))?$"
_EMBEDDED_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
}

Schema = dict[str, Any]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"].removeprefix(_PREFIX)] if "$ref" in node else []
        for k, v in node.items():
            if k != "$ref":
                out += _refs(v)
        return out
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


def extract_definitions(openapi_v3: Schema, roots: tuple[str, ...]) -> dict[str, Schema]:
    """The definitions reachable from `roots`, without descriptions."""
    schemas = openapi_v3["components"]["schemas"]
    seen: dict[str, Schema] = {}
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen[name] = _strip_descriptions(schemas[name])
            stack += _refs(schemas[name])
    return dict(sorted(seen.items()))


@cache
def _data() -> Schema:
    text = resources.files("rbg.api").joinpath("data/core-v1-openapi.json").read_text()
    data: Schema = json.loads(text)
    return data


def kubernetes_version() -> str:
    return str(_data()["kubernetesVersion"])


def definitions() -> dict[str, Schema]:
    defs: dict[str, Schema] = _data()["definitions"]
    return defs


def _ref_target(node: Schema) -> str | None:
    if "$ref" in node:
        return str(node["$ref"]).removeprefix(_PREFIX)
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        return str(all_of[0]["$ref"]).removeprefix(_PREFIX)
    return None


def _structural(node: Schema, defs: dict[str, Schema], list_map_key: bool = False) -> Schema:
    target = _ref_target(node)
    if target is not None:
        if target == _OBJECT_META:
            return copy.deepcopy(_EMBEDDED_META)
        if target == _INT_OR_STRING:
            return {"x-kubernetes-int-or-string": True}
        if target == _QUANTITY:
            return {
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "pattern": _QUANTITY_PATTERN,
                "x-kubernetes-int-or-string": True,
            }
        return _structural(defs[target], defs)
    out: Schema = {}
    for k, v in node.items():
        if k.startswith("x-") and k not in _CRD_EXTENSIONS:  # includes our own x-rbg-list-map-keys marker
            continue
        if k == "default" and not list_map_key and not (isinstance(v, str) and v):
            # `{}`/`0`/`""` defaults in the published spec describe Go zero values; real API defaults
            # (protocol TCP) and those of list-map keys (a CRD needs them) are kept
            continue
        if k == "properties":
            # a list-map key needs a default unless it is required
            keys = set(node.get("x-rbg-list-map-keys", ())) - set(node.get("required", ()))
            out[k] = {p: _structural(s, defs, p in keys) for p, s in v.items()}
        elif k == "items":
            map_keys = node.get("x-kubernetes-list-map-keys")
            item = resolve(v)
            out[k] = _structural({**item, "x-rbg-list-map-keys": map_keys} if map_keys else item, defs)
        elif k == "additionalProperties" and isinstance(v, dict):
            out[k] = _structural(v, defs)
        elif k in ("oneOf", "anyOf", "allOf"):
            continue
        else:
            out[k] = copy.deepcopy(v)
    return out


def structural_schema(name: str) -> Schema:
    """A structural (fully inlined) schema for definition `name`, fit for a CRD (a copy: callers may
    change it)."""
    return copy.deepcopy(_compiled(name))


@cache
def _compiled(name: str) -> Schema:
    """The structural schema of `name`, built once per process and shared: read it, never change it.

    Building it inlines every `$ref` of the pod template (about 1,400 nodes); a reconcile checks each
    role's template against it, so it must not be rebuilt per call.
    """
    defs = definitions()
    return _structural(defs[name], defs)


def patch_meta(schema: Schema) -> tuple[str | None, str | None]:
    """(patch strategy, merge key) of a list property in the published spec."""
    return schema.get("x-kubernetes-patch-strategy"), schema.get("x-kubernetes-patch-merge-key")


def resolve(node: Schema) -> Schema:
    """Follow a `$ref`/`allOf[$ref]` wrapper to the definition it names (or return the node)."""
    target = _ref_target(node)
    return definitions()[target] if target else node


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def type_errors(value: Any, definition: str, path: str = "", limit: int = 5) -> list[str]:
    """Where `value` does not have the JSON types the definition's structural schema requires.

    Not a full validation (the API server does that when the object is written); enough to refuse a
    pod template whose shape would break the code that builds on it, e.g. `env: "x"` or `spec: "x"`.
    """
    errors: list[str] = []

    def walk(v: Any, schema: Schema, where: str) -> None:
        if len(errors) >= limit or v is None:
            return
        if schema.get("x-kubernetes-int-or-string"):
            if not isinstance(v, int | str) or isinstance(v, bool):
                errors.append(f"{where or '.'}: must be an integer or a string")
            return
        expected = schema.get("type")
        if expected in _JSON_TYPES:
            ok = isinstance(v, _JSON_TYPES[expected]) and not (expected != "boolean" and isinstance(v, bool))
            if not ok:
                errors.append(f"{where or '.'}: must be {'an' if expected[0] in 'aeiou' else 'a'} {expected}")
                return
        if isinstance(v, dict):
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            for k, item in v.items():
                if k in props:
                    walk(item, props[k], f"{where}.{k}" if where else k)
                elif isinstance(extra, dict):
                    walk(item, extra, f"{where}.{k}" if where else k)
        elif isinstance(v, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(v):
                if item is None:
                    errors.append(f"{where}[{i}]: must not be null")
                else:
                    walk(item, schema["items"], f"{where}[{i}]")

    walk(value, _compiled(definition), path)
    return errors
