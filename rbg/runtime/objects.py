"""Plain-dict Kubernetes objects: kinds, keys, owner references.

The runtime keeps objects as dicts (what the API sends) instead of typed models: the cache holds
thousands of them, and controllers mostly read a few fields and write server-side-apply patches.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

Obj = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class Key(NamedTuple):
    """What a work queue carries: a namespaced name ("" namespace for cluster-scoped objects)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Kind:
    """Enough of a GroupVersionResource to build REST paths and match apiVersion/kind."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """REST path; without a namespace a namespaced kind gives the all-namespaces collection."""
        parts = ["/api", self.version] if not self.group else ["/apis", self.group, self.version]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        elif subresource:
            raise ValueError("a subresource needs an object name")
        return "/".join(parts)


POD = Kind("", "v1", "Pod", "pods")
SERVICE = Kind("", "v1", "Service", "services")
CONFIGMAP = Kind("", "v1", "ConfigMap", "configmaps")
SECRET = Kind("", "v1", "Secret", "secrets")
PODTEMPLATE = Kind("", "v1", "PodTemplate", "podtemplates")
NAMESPACE = Kind("", "v1", "Namespace", "namespaces", namespaced=False)
NODE = Kind("", "v1", "Node", "nodes", namespaced=False)
STATEFULSET = Kind("apps", "v1", "StatefulSet", "statefulsets")
DEPLOYMENT = Kind("apps", "v1", "Deployment", "deployments")
CONTROLLERREVISION = Kind("apps", "v1", "ControllerRevision", "controllerrevisions")
LEASE = Kind("coordination.k8s.io", "v1", "Lease", "leases")
EVENT = Kind("events.k8s.io", "v1", "Event", "events")
CUSTOMRESOURCEDEFINITION = Kind(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False
)
VALIDATINGWEBHOOKCONFIGURATION = Kind(
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    namespaced=False,
)
MUTATINGWEBHOOKCONFIGURATION = Kind(
    "admissionregistration.k8s.io",
    "v1",
    "MutatingWebhookConfiguration",
    "mutatingwebhookconfigurations",
    namespaced=False,
)

BUILTIN_KINDS = (
    POD,
    PODTEMPLATE,
    SERVICE,
    CONFIGMAP,
    SECRET,
    NAMESPACE,
    NODE,
    STATEFULSET,
    DEPLOYMENT,
    CONTROLLERREVISION,
    LEASE,
    EVENT,
    CUSTOMRESOURCEDEFINITION,
    VALIDATINGWEBHOOKCONFIGURATION,
    MUTATINGWEBHOOKCONFIGURATION,
)


def trim(obj: Obj) -> Obj:
    """Drop what a controller never reads but that dominates cache memory.

    managedFields and the kubectl last-applied annotation are often larger than the object itself.
    Copies only the dicts it changes (the input is not modified).
    """
    meta = obj.get("metadata")
    if not meta:
        return obj
    annotations = meta.get("annotations")
    has_last_applied = bool(annotations) and LAST_APPLIED in annotations
    if "managedFields" not in meta and not has_last_applied:
        return obj
    meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if has_last_applied:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**obj, "metadata": meta}


def key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return Key(meta.get("namespace") or "", meta["name"])


def owner_keys(obj: Obj, owner_kind: Kind, controller_only: bool = True) -> list[Key]:
    """Keys of the owners of `obj` of the given kind (ownerReferences never cross namespaces). Matched
    by API group and kind, not version, as controller-runtime does: a child made under one served
    version of its owner still wakes the owner's controller under another."""
    meta = obj.get("metadata", {})
    namespace = (meta.get("namespace") or "") if owner_kind.namespaced else ""
    return [
        Key(namespace, ref["name"])
        for ref in meta.get("ownerReferences") or ()
        if ref.get("kind") == owner_kind.kind
        and str(ref.get("apiVersion") or "").rpartition("/")[0] == owner_kind.group
        and (ref.get("controller") or not controller_only)
    ]


def owner_reference(owner: Obj, *, controller: bool = True, block_owner_deletion: bool = True) -> Obj:
    """The ownerReferences entry that makes `owner` the (controlling) owner of a child."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def matches_labels(obj: Obj, selector: dict[str, str]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def rv_older(rv: str | None, than: str | None) -> bool:
    """resourceVersion `rv` is older than `than` (both etcd revisions; False when not comparable)."""
    if not rv or not than or not rv.isdigit() or not than.isdigit():
        return False
    return int(rv) < int(than)


def timestamp() -> str:
    """Now, as a Kubernetes condition time (RFC 3339, seconds, UTC)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
