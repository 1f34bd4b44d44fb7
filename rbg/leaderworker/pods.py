"""What the pod admission webhook adds to a LeaderWorkerSet pod when it is created: identity labels,
placement affinity and the LWS_* env vars. Everything is read from the pod itself (labels and
annotations its StatefulSet template carries), so the webhook needs no cache and no API call.

Leader (worker-index label "0", set by the leader StatefulSet): group-index (its ordinal), group-key;
Exclusive placement: a required podAffinity on its own group-key plus a required podAntiAffinity on any
other group-key, both on the topology key (so the terms refer to labels pods really carry); Colocated:
the podAffinity only; with either, the leader is created gated until the planner has found a domain
for its whole group (rbg.coordination.groups). Workers are pinned to their leader's domain by a
nodeSelector on their StatefulSet. Worker: worker-index (its ordinal). Subgroups: subgroup-index and
subgroup-key, and the Exclusive pair on the subgroup-key when `subgroup-exclusive-topology` is set.
"""

from __future__ import annotations

import json
from typing import Any

from rbg.coordination.resources import LWS_GATE
from rbg.leaderworker import labels

Obj = dict[str, Any]


def subgroup_index(size: int, subgroup_size: int, worker_index: int, leader_excluded: bool) -> int | None:
    """Upstream's numbering: the leader is "extra" in subgroup 0 when (size - 1) is a multiple of the
    subgroup size and size is not; with LeaderExcluded the leader has no subgroup."""
    if worker_index == 0 and leader_excluded:
        return None
    if ((size - 1) % subgroup_size == 0 and size % subgroup_size != 0) or leader_excluded:
        return max(0, (worker_index - 1) // subgroup_size)
    return worker_index // subgroup_size


def _term(key: str, value: str, topology: str, *, anti: bool) -> Obj:
    if anti:
        exprs = [
            {"key": key, "operator": "Exists"},
            {"key": key, "operator": "NotIn", "values": [value]},
        ]
    else:
        exprs = [{"key": key, "operator": "In", "values": [value]}]
    return {"labelSelector": {"matchExpressions": exprs}, "topologyKey": topology}


def _add_terms(spec: Obj, key: str, value: str, topology: str, *, exclusive: bool) -> None:
    """Append the placement terms unless terms on this topology key are there already (idempotent)."""
    affinity = spec.setdefault("affinity", {})
    pod_aff = affinity.setdefault("podAffinity", {})
    required = pod_aff.setdefault("requiredDuringSchedulingIgnoredDuringExecution", [])
    if not any(t.get("topologyKey") == topology and _selects(t, key) for t in required):
        required.append(_term(key, value, topology, anti=False))
    if exclusive:
        anti = affinity.setdefault("podAntiAffinity", {})
        anti_req = anti.setdefault("requiredDuringSchedulingIgnoredDuringExecution", [])
        if not any(t.get("topologyKey") == topology and _selects(t, key) for t in anti_req):
            anti_req.append(_term(key, value, topology, anti=True))


def _selects(term: Obj, key: str) -> bool:
    exprs = (term.get("labelSelector") or {}).get("matchExpressions") or []
    return any(e.get("key") == key for e in exprs)


def _env_first(container: Obj, env: list[Obj]) -> None:
    names = {e["name"] for e in env}
    container["env"] = [*env, *[e for e in container.get("env") or [] if e.get("name") not in names]]


def mutate(pod: Obj, namespace: str) -> Obj:
    """The pod as it must be created (a new dict; `pod` is not changed)."""
    out: Obj = json.loads(json.dumps(pod))
    meta = out.setdefault("metadata", {})
    pod_labels = meta.setdefault("labels", {})
    annotations = meta.get("annotations") or {}
    lws = pod_labels.get(labels.NAME)
    name = meta.get("name") or ""
    index = labels.ordinal(name)
    if not lws or index is None:
        return out  # not a pod of a LeaderWorkerSet StatefulSet: leave it alone
    spec = out.setdefault("spec", {})
    leader = labels.LEADER_NAME not in annotations
    if leader:
        pod_labels[labels.WORKER_INDEX] = "0"
        pod_labels[labels.GROUP_INDEX] = str(index)
        pod_labels[labels.GROUP_KEY] = labels.group_key(namespace, name)
        if annotations.get(labels.SUBDOMAIN_POLICY) == "UniquePerReplica":
            spec["subdomain"] = name
        leader_name, worker_index = name, 0
    else:
        pod_labels[labels.WORKER_INDEX] = str(index)
        leader_name, worker_index = annotations[labels.LEADER_NAME], index
    group_key = pod_labels.get(labels.GROUP_KEY, "")
    if leader and annotations.get(labels.EXCLUSIVE):
        _add_terms(spec, labels.GROUP_KEY, group_key, annotations[labels.EXCLUSIVE], exclusive=True)
    elif leader and annotations.get(labels.COLOCATED):
        _add_terms(spec, labels.GROUP_KEY, group_key, annotations[labels.COLOCATED], exclusive=False)
    if leader and (annotations.get(labels.EXCLUSIVE) or annotations.get(labels.COLOCATED)):
        # held until the planner finds a domain for the whole group (rbg.coordination.groups, D29)
        gates = spec.setdefault("schedulingGates", [])
        if not any(g.get("name") == LWS_GATE for g in gates):
            gates.append({"name": LWS_GATE})
    size = int(annotations.get(labels.SIZE, "1") or 1)
    sgs = annotations.get(labels.SUBGROUP_SIZE)
    if sgs and sgs.isdigit() and int(sgs) > 0:
        excluded = annotations.get(labels.SUBGROUP_POLICY_TYPE) == "LeaderExcluded"
        sub = subgroup_index(size, int(sgs), worker_index, excluded)
        if sub is not None:
            pod_labels[labels.SUBGROUP_INDEX] = str(sub)
            sub_key = labels.subgroup_key(leader_name, sub)
            pod_labels[labels.SUBGROUP_KEY] = sub_key
            if annotations.get(labels.SUBGROUP_EXCLUSIVE):
                _add_terms(
                    spec, labels.SUBGROUP_KEY, sub_key, annotations[labels.SUBGROUP_EXCLUSIVE], exclusive=True
                )
    group_index = pod_labels.get(labels.GROUP_INDEX, str(index))
    subdomain = spec.get("subdomain") or lws
    env = [
        {"name": labels.ENV_LEADER_ADDRESS, "value": f"{lws}-{group_index}.{subdomain}.{namespace}"},
        {"name": labels.ENV_GROUP_SIZE, "value": str(size)},
        {"name": labels.ENV_WORKER_INDEX, "value": str(worker_index)},
    ]
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            _env_first(container, env)
    return out
