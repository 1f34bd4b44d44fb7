"""Shared pieces of the API models: base class, embedded Kubernetes types, CRD schema hints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema
from pydantic.alias_generators import to_camel

#: JSON-schema key the CRD generator replaces with the published Kubernetes schema of that definition
EMBED = "x-rbg-embed"


class ApiModel(BaseModel):
    """camelCase on the wire; unknown fields are ignored (the API server prunes them already)."""

    # a field's docstring (the string literal under it) becomes its description in the generated CRD
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", use_attribute_docstrings=True
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectMeta(ApiModel):
    """What the controllers read of an object's metadata."""

    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


def embedded(definition: str) -> Any:
    """Annotation for a field holding a core Kubernetes object (kept as a plain dict in Python)."""
    return Annotated[dict[str, Any], WithJsonSchema({"type": "object", EMBED: definition})]


PodTemplateSpec = embedded("io.k8s.api.core.v1.PodTemplateSpec")
ServicePort = embedded("io.k8s.api.core.v1.ServicePort")
Container = embedded("io.k8s.api.core.v1.Container")
PersistentVolumeClaimTemplate = embedded("io.k8s.api.core.v1.PersistentVolumeClaimTemplate")
#: any JSON object, kept as written (strategic-merge patches, upstream fields we accept but do not act on)
FreeForm = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
]
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
PERCENT = r"^([0-9]|[1-9][0-9]|100)%$"


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One x-kubernetes-validations entry."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry
