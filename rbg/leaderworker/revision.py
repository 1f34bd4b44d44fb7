"""LeaderWorkerSet revisions as upstream makes them: data (a patch of spec.leaderWorkerTemplate and
spec.networkConfig), the template-revision-hash and the ControllerRevision name and object."""

from __future__ import annotations

from typing import Any

from rbg.api.lws_v1 import API_VERSION, LeaderWorkerSet
from rbg.leaderworker import labels
from rbg.leaderworker.gojson import go_json, go_struct
from rbg.lifecycle import conventions, revisions

Obj = dict[str, Any]


def _restart_policy(lwt: Obj) -> Obj:
    # upstream's defaulting webhook stores the deprecated "Default" as "None": hash what it stores
    return {**lwt, "restartPolicy": "None"} if lwt.get("restartPolicy") == "Default" else lwt


def _patch(lwt: Obj, network: Obj | None) -> Obj:
    network = network if network is not None else {"subdomainPolicy": "Shared"}
    return {
        "spec": {
            "leaderWorkerTemplate": {
                **go_struct(_restart_policy(lwt), "LeaderWorkerTemplate"),
                "$patch": "replace",
            },
            "networkConfig": {**go_struct(network, "NetworkConfig"), "$patch": "replace"},
        }
    }


def revision_data(lws: LeaderWorkerSet) -> Obj:
    """The ControllerRevision data of the set's current template, as upstream writes it."""
    spec = lws.spec
    network = spec.network_config.wire() if spec.network_config is not None else None
    return _patch(spec.leader_worker_template.wire(), network)


def revision_spec(data: Obj) -> Obj:
    """`{"leaderWorkerTemplate": …, "networkConfig": …}` of a revision's data: upstream's patch (also
    what this operator writes), or the plain form earlier versions of this operator wrote."""
    inner = data.get("spec")
    spec: Obj = inner if isinstance(inner, dict) else data
    out: Obj = {}
    for key in ("leaderWorkerTemplate", "networkConfig"):
        part = spec.get(key)
        if isinstance(part, dict):
            out[key] = {k: v for k, v in part.items() if k != "$patch"}
    return out


def same_revision(data: Obj, other: Obj) -> bool:
    """Whether two revisions' data hold the same template once both are written as upstream writes
    them (upstream's SetMatchesRevision): a revision of an earlier version of this operator, or one
    upstream wrote with another serialization, is not a template change."""

    def norm(d: Obj) -> Obj:
        spec = revision_spec(d)
        return _patch(spec.get("leaderWorkerTemplate") or {}, spec.get("networkConfig"))

    try:
        return norm(data) == norm(other)
    except (ValueError, TypeError, AttributeError):
        return False


def revision_hash(data: Obj) -> str:
    """Upstream's template-revision-hash of revision data: FNV-32 (not 1a) of the Go-marshalled bytes, its
    decimal digits mapped onto a vowel-free alphabet (rand.SafeEncodeString)."""
    return revisions.safe_encode(revisions.fnv32(go_json(data).encode()))


def revision_name(lws_name: str, digest: str, number: int) -> str:
    """Upstream's ControllerRevision name: `<set>-<hash>-<revision number>`, the set's name cut at 220."""
    return f"{lws_name[:220]}-{digest}-{number}"


def controller_revision(lws: LeaderWorkerSet, data: Obj, digest: str, number: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(lws.metadata.name, digest, number),
            "namespace": lws.metadata.namespace,
            "labels": {labels.NAME: lws.metadata.name, labels.REVISION: digest},
            "ownerReferences": [lws_owner(lws)],
        },
        "data": data,
        "revision": number,
    }


def lws_owner(lws: LeaderWorkerSet) -> Obj:
    """The owner reference to the set (its leader StatefulSet, shared Service and revisions)."""
    return conventions.owner_reference(API_VERSION, "LeaderWorkerSet", lws.metadata.name, lws.metadata.uid)
