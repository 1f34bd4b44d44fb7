"""Desired objects of a LeaderWorkerSet: the leader StatefulSet, one worker StatefulSet per group,
headless Services (ControllerRevisions: rbg.leaderworker.revision). Pure functions of the set, its
revision and (for a group) its leader pod.

A revision holds `spec.leaderWorkerTemplate` and `spec.networkConfig` (upstream's revision scope), in
upstream's format and with upstream's hash and name: a group is always (re)built from the revision its
leader was created with, so an old group that restarts during an update keeps its old template and size.
"""

from __future__ import annotations

import json
from typing import Any

from rbg.api.lws_v1 import LeaderWorkerSet, LeaderWorkerTemplate
from rbg.leaderworker import labels
from rbg.leaderworker.revision import lws_owner, revision_spec
from rbg.leaderworker.validation import Placement
from rbg.lifecycle import conventions

Obj = dict[str, Any]


def owner(obj: Obj, *, block: bool = True) -> Obj:
    """The controlling ownerReference to `obj` (a cached object with apiVersion and kind)."""
    meta = obj["metadata"]
    return conventions.owner_reference(
        obj["apiVersion"], obj["kind"], meta["name"], meta["uid"], block_owner_deletion=block
    )


def _set_annotations(lws: LeaderWorkerSet) -> dict[str, str]:
    """The set's annotations its StatefulSets carry (as upstream), without kubectl's last-applied copy."""
    out = dict(lws.metadata.annotations or {})
    out.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return out


def _template(data: Obj, leader: bool) -> Obj:
    lwt = revision_spec(data)["leaderWorkerTemplate"]
    chosen = lwt.get("leaderTemplate") if leader else None
    copied: Obj = json.loads(json.dumps(chosen or lwt["workerTemplate"]))
    return copied


def _subgroup_annotations(lwt: LeaderWorkerTemplate, lws: LeaderWorkerSet) -> dict[str, str]:
    sgp = lwt.sub_group_policy
    if sgp is None or sgp.sub_group_size is None:
        return {}
    out = {
        labels.SUBGROUP_SIZE: str(sgp.sub_group_size),
        labels.SUBGROUP_POLICY_TYPE: sgp.sub_group_policy_type or "LeaderWorker",
    }
    sub = (lws.metadata.annotations or {}).get(labels.SUBGROUP_EXCLUSIVE)
    if sub:
        out[labels.SUBGROUP_EXCLUSIVE] = sub
    return out


def _placement_annotations(placement: Placement) -> dict[str, str]:
    if placement.type == "Exclusive" and placement.key:
        return {labels.EXCLUSIVE: placement.key}
    if placement.type == "Colocated" and placement.key:
        return {labels.COLOCATED: placement.key}
    return {}


def _pvc(lwt: LeaderWorkerTemplate) -> Obj:
    out: Obj = {}
    if lwt.volume_claim_templates:
        out["volumeClaimTemplates"] = [
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **json.loads(json.dumps(v))}
            for v in lwt.volume_claim_templates
        ]
    if lwt.persistent_volume_claim_retention_policy is not None:
        out["persistentVolumeClaimRetentionPolicy"] = lwt.persistent_volume_claim_retention_policy.wire()
    return out


def _set_meta(template: Obj, add_labels: dict[str, str], add_annotations: dict[str, str]) -> Obj:
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **add_labels}
    if add_annotations:
        meta["annotations"] = {**(meta.get("annotations") or {}), **add_annotations}
    return template


def leader_statefulset(
    lws: LeaderWorkerSet,
    data: Obj,
    digest: str,
    placement: Placement,
    *,
    replicas: int,
    partition: int,
    max_unavailable: int,
    groups: int | None = None,
) -> Obj:
    """The leader StatefulSet `{lws}`: one leader pod per group, built from revision `digest`; `groups`:
    the group count the rollout runs at (the set's replicas unless a scale-up waits for it, D36)."""
    name = lws.metadata.name
    spec = revision_spec(data)
    lwt = LeaderWorkerTemplate.model_validate(spec["leaderWorkerTemplate"])
    subdomain = (spec.get("networkConfig") or {}).get("subdomainPolicy", "Shared")
    annotations = {
        labels.SIZE: str(lwt.size),
        **_placement_annotations(placement),
        **_subgroup_annotations(lwt, lws),
    }
    if subdomain == "UniquePerReplica":
        annotations[labels.SUBDOMAIN_POLICY] = "UniquePerReplica"
    template = _set_meta(
        _template(data, leader=True),
        {labels.NAME: name, labels.WORKER_INDEX: "0", labels.REVISION: digest},
        annotations,
    )
    meta_labels = {**(lws.metadata.labels or {}), labels.NAME: name, labels.REVISION: digest}
    count = lws.spec.replicas if groups is None else groups
    meta_annotations = {**_set_annotations(lws), labels.REPLICAS: str(count)}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "namespace": lws.metadata.namespace,
            "labels": meta_labels,
            "annotations": meta_annotations,
            "ownerReferences": [lws_owner(lws)],
        },
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {labels.NAME: name, labels.WORKER_INDEX: "0"}},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"partition": partition, "maxUnavailable": max(1, max_unavailable)},
            },
            "template": template,
            **_pvc(lwt),
        },
    }


def worker_statefulset(
    lws: LeaderWorkerSet, leader: Obj, data: Obj, node_selector: dict[str, str] | None
) -> Obj:
    """The worker StatefulSet of one group, `{leader pod name}`, owned by the leader pod: deleting the
    leader removes the whole group. Built from the revision the leader was created with."""
    name = lws.metadata.name
    leader_name = leader["metadata"]["name"]
    leader_labels = leader["metadata"].get("labels") or {}
    group_index = leader_labels.get(labels.GROUP_INDEX) or str(labels.ordinal(leader_name))
    key = leader_labels.get(labels.GROUP_KEY) or labels.group_key(lws.metadata.namespace, leader_name)
    digest = leader_labels.get(labels.REVISION, "")
    spec = revision_spec(data)
    lwt = LeaderWorkerTemplate.model_validate(spec["leaderWorkerTemplate"])
    subdomain = (spec.get("networkConfig") or {}).get("subdomainPolicy", "Shared")
    leader_annotations = leader["metadata"].get("annotations") or {}
    annotations = {
        labels.SIZE: str(lwt.size),
        labels.LEADER_NAME: leader_name,
        **_subgroup_annotations(lwt, lws),
    }
    for placement_key in (labels.EXCLUSIVE, labels.COLOCATED):
        if placement_key in leader_annotations:
            annotations[placement_key] = leader_annotations[placement_key]
    selector = {labels.NAME: name, labels.GROUP_INDEX: group_index, labels.GROUP_KEY: key}
    template = _set_meta(_template(data, leader=False), {**selector, labels.REVISION: digest}, annotations)
    if node_selector:
        spec = template.setdefault("spec", {})
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **node_selector}
    meta_annotations = _set_annotations(lws)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": leader_name,
            "namespace": lws.metadata.namespace,
            "labels": {**(lws.metadata.labels or {}), **selector, labels.REVISION: digest},
            **({"annotations": meta_annotations} if meta_annotations else {}),
            "ownerReferences": [owner(leader)],
        },
        "spec": {
            "replicas": lwt.size - 1,
            "ordinals": {"start": 1},
            "serviceName": leader_name if subdomain == "UniquePerReplica" else name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": template,
            **_pvc(lwt),
        },
    }


def shared_service(lws: LeaderWorkerSet) -> Obj:
    name = lws.metadata.name
    return _service(name, lws.metadata.namespace, {labels.NAME: name}, lws_owner(lws))


def group_service(lws: LeaderWorkerSet, leader: Obj) -> Obj:
    """UniquePerReplica: the Service `{lws}-{g}` of one group, owned by its leader pod."""
    leader_name = leader["metadata"]["name"]
    index = (leader["metadata"].get("labels") or {}).get(labels.GROUP_INDEX) or str(
        labels.ordinal(leader_name)
    )
    selector = {labels.NAME: lws.metadata.name, labels.GROUP_INDEX: index}
    return _service(leader_name, lws.metadata.namespace, selector, owner(leader))


def _service(name: str, namespace: str, selector: dict[str, str], owner_ref: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {labels.NAME: selector[labels.NAME]},
            "ownerReferences": [owner_ref],
        },
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector},
    }
