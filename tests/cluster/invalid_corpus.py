"""A corpus of invalid manifests, made by mutating valid ones (issue 15): each case is one manifest, the
way it is sent (a create of a new object, or an update of a live one) and the field its refusal must
name. Deterministic: the same corpus every run (a seeded generator picks the combined mutations).

The bases are the project's own examples (a RoleBasedGroup with a Deployment, StatefulSets and role
templates, one with LeaderWorkerSet roles, one with ratio coordination) and a LeaderWorkerSet. Every
mutation is invalid by the API's rules, whoever enforces them: the CRD schema and its CEL rules, the
admission webhooks, or the server-side dry run of the pod templates (D16).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class Case:
    """`fields`: the refusal names at least one of these (a path as the API server or the webhook
    writes it); `live`: the name of the live object this case updates, None for a create."""

    id: str
    manifest: Obj
    fields: tuple[str, ...]
    live: str | None = None


def _load(name: str) -> Obj:
    doc: Obj = yaml.safe_load((EXAMPLES / name).read_text())
    return doc


def bases() -> dict[str, Obj]:
    return {
        "pd": _load("pd-disagg.yaml"),
        "lwsrole": _load("pd-lws.yaml"),
        "batches": _load("pd-batches.yaml"),
        "lws": _load("lws.yaml"),
    }


Mutation = Callable[[Obj, int], tuple[str, ...] | None]
"""Changes the manifest in place for role (or template) index i; returns the fields its refusal may
name, or None when it does not apply to this base and index."""


def _role(m: Obj, i: int) -> Obj | None:
    roles = m["spec"].get("roles") or []
    return roles[i] if i < len(roles) else None


def _pod_spec(m: Obj, i: int) -> tuple[Obj, str] | None:
    """The pod spec of role i where the user wrote it: the role's own template, or the role template
    it refers to (its errors are then named at the role that uses it or at the role template)."""
    role = _role(m, i)
    if role is None:
        return None
    if "template" in role:
        return role["template"]["spec"], f"spec.roles[{i}].template.spec"
    ref = (role.get("templateRef") or {}).get("name")
    for j, t in enumerate(m["spec"].get("roleTemplates") or []):
        if t["name"] == ref:
            return t["template"][
                "spec"
            ], f"spec.roles[{i}].template.spec|spec.roleTemplates[{j}].template.spec"
    return None


def _paths(prefix: str, suffix: str) -> tuple[str, ...]:
    return tuple(f"{p}{suffix}" for p in prefix.split("|"))


def _role_field(field: str, value: Any) -> Mutation:
    def mutate(m: Obj, i: int) -> tuple[str, ...] | None:
        role = _role(m, i)
        if role is None:
            return None
        role[field] = value
        return (f"spec.roles[{i}].{field}",)

    return mutate


def _drop_role_name(m: Obj, i: int) -> tuple[str, ...] | None:
    role = _role(m, i)
    if role is None:
        return None
    del role["name"]
    return (f"spec.roles[{i}].name",)


def _duplicate_name(m: Obj, i: int) -> tuple[str, ...] | None:
    roles = m["spec"].get("roles") or []
    if i == 0 or i >= len(roles):
        return None
    roles[i]["name"] = roles[0]["name"]
    return ("spec.roles", f"spec.roles[{i}].name")


def _container(change: Callable[[Obj], str]) -> Mutation:
    """A change to the first container of role i's pod spec; `change` returns the changed field's path
    under the container."""

    def mutate(m: Obj, i: int) -> tuple[str, ...] | None:
        found = _pod_spec(m, i)
        if found is None:
            return None
        spec, prefix = found
        suffix = change(spec["containers"][0])
        return _paths(prefix, f".containers[0]{suffix}")

    return mutate


def _no_image(c: Obj) -> str:
    c.pop("image", None)
    return ".image"


def _unknown_resource(c: Obj) -> str:
    c.setdefault("resources", {}).setdefault("limits", {})["gpu"] = "1"
    return ".resources.limits[gpu]"


def _bad_container_name(c: Obj) -> str:
    c["name"] = "Engine_1"
    return ".name"


def _bad_port(c: Obj) -> str:
    c["ports"] = [{"name": "http", "containerPort": 70000}]
    return ".ports[0].containerPort"


def _unmounted_volume(c: Obj) -> str:
    c["volumeMounts"] = [{"name": "not-a-volume", "mountPath": "/data"}]
    return ".volumeMounts[0].name"


def _bad_env(c: Obj) -> str:
    c["env"] = [{"name": "A=B", "value": "1"}]
    return ".env[0].name"


def _bad_pull_policy(c: Obj) -> str:
    c["imagePullPolicy"] = "Sometimes"
    return ".imagePullPolicy"


def _pod_field(field: str, value: Any) -> Mutation:
    def mutate(m: Obj, i: int) -> tuple[str, ...] | None:
        found = _pod_spec(m, i)
        if found is None:
            return None
        spec, prefix = found
        spec[field] = value
        return _paths(prefix, f".{field}")

    return mutate


def _no_containers(m: Obj, i: int) -> tuple[str, ...] | None:
    found = _pod_spec(m, i)
    if found is None:
        return None
    spec, prefix = found
    spec["containers"] = []
    # an update by server-side apply drops the emptied list and the maps left empty above it: the
    # object stored would have no template, which is what its refusal then names
    emptied = tuple(p.removesuffix(".spec") + ":" for p in prefix.split("|"))
    return (*_paths(prefix, ".containers"), *emptied, f"spec.roles[{i}]: Invalid value: template")


def _unknown_field(m: Obj, i: int) -> tuple[str, ...] | None:
    role = _role(m, i)
    if role is None:
        return None
    role["replicaCount"] = 2
    return (f"spec.roles[{i}].replicaCount",)


ROLE_MUTATIONS: dict[str, Mutation] = {
    "replicas-negative": _role_field("replicas", -1),
    "replicas-string": _role_field("replicas", "two"),
    "name-uppercase": _role_field("name", "Prefill_1"),
    "name-empty": _role_field("name", ""),
    "name-too-long": _role_field("name", "r" * 70),
    "name-missing": _drop_role_name,
    "name-duplicate": _duplicate_name,
    "dependency-unknown": _role_field("dependencies", ["no-such-role"]),
    "dependency-self-type": _role_field("dependencies", "prefill"),
    "workload-daemonset": _role_field("workload", {"apiVersion": "apps/v1", "kind": "DaemonSet"}),
    "unknown-field": _unknown_field,
    "image-missing": _container(_no_image),
    "resource-unknown": _container(_unknown_resource),
    "container-name": _container(_bad_container_name),
    "port-out-of-range": _container(_bad_port),
    "mount-unknown-volume": _container(_unmounted_volume),
    "env-name": _container(_bad_env),
    "pull-policy": _container(_bad_pull_policy),
    "restart-policy": _pod_field("restartPolicy", "Sometimes"),
    "dns-policy": _pod_field("dnsPolicy", "Anywhere"),
    "no-containers": _no_containers,
}


def _coordination(change: Callable[[Obj], tuple[str, ...]]) -> Mutation:
    def mutate(m: Obj, i: int) -> tuple[str, ...] | None:
        coordination = m["spec"].get("coordination")
        if not coordination or i != 0:
            return None
        return change(coordination[0])

    return mutate


def _ratio_unknown_role(c: Obj) -> tuple[str, ...]:
    c["strategy"]["affinityScheduling"]["ratios"]["router"] = 1
    return ("spec.coordination[0]",)


def _ratio_zero(c: Obj) -> tuple[str, ...]:
    c["strategy"]["affinityScheduling"]["ratios"]["decode"] = 0
    return ("spec.coordination[0].strategy.affinityScheduling.ratios",)


def _coordination_role_unknown(c: Obj) -> tuple[str, ...]:
    c["roles"] = ["prefill", "no-such-role"]
    return ("spec.coordination[0].roles",)


def _coordination_type(c: Obj) -> tuple[str, ...]:
    c["type"] = "Whatever"
    return ("spec.coordination[0].type",)


def _batch_mode(c: Obj) -> tuple[str, ...]:
    c["strategy"]["affinityScheduling"]["batchMode"] = "Sometimes"
    return ("spec.coordination[0].strategy.affinityScheduling.batchMode",)


def _topology_key(c: Obj) -> tuple[str, ...]:
    c["strategy"]["affinityScheduling"]["topologyKey"] = ""
    return ("spec.coordination[0].strategy.affinityScheduling.topologyKey",)


def _one_role(c: Obj) -> tuple[str, ...]:
    c["roles"] = ["prefill"]
    return ("spec.coordination[0]",)


COORDINATION_MUTATIONS: dict[str, Mutation] = {
    "ratio-unknown-role": _coordination(_ratio_unknown_role),
    "ratio-zero": _coordination(_ratio_zero),
    "coordination-unknown-role": _coordination(_coordination_role_unknown),
    "coordination-type": _coordination(_coordination_type),
    "batch-mode": _coordination(_batch_mode),
    "topology-key-empty": _coordination(_topology_key),
    "coordination-one-role": _coordination(_one_role),
}


def _lws(change: Callable[[Obj], tuple[str, ...]]) -> Mutation:
    def mutate(m: Obj, i: int) -> tuple[str, ...] | None:
        if m["kind"] != "LeaderWorkerSet" or i != 0:
            return None
        return change(m["spec"])

    return mutate


def _lws_template(which: str, change: Callable[[Obj], str]) -> Mutation:
    def mutate(m: Obj, i: int) -> tuple[str, ...] | None:
        if m["kind"] != "LeaderWorkerSet" or i != 0:
            return None
        container = m["spec"]["leaderWorkerTemplate"][which]["spec"]["containers"][0]
        return (f"spec.leaderWorkerTemplate.{which}.spec.containers[0]{change(container)}",)

    return mutate


def _set(path: str, value: Any) -> Callable[[Obj], tuple[str, ...]]:
    def change(spec: Obj) -> tuple[str, ...]:
        *parents, leaf = path.split(".")
        node = spec
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
        return (f"spec.{path}",)

    return change


LWS_MUTATIONS: dict[str, Mutation] = {
    "lws-size-zero": _lws(_set("leaderWorkerTemplate.size", 0)),
    "lws-size-negative": _lws(_set("leaderWorkerTemplate.size", -2)),
    "lws-size-string": _lws(_set("leaderWorkerTemplate.size", "three")),
    "lws-replicas-negative": _lws(_set("replicas", -1)),
    "lws-restart-policy": _lws(_set("leaderWorkerTemplate.restartPolicy", "Never")),
    "lws-startup-policy": _lws(_set("startupPolicy", "Whenever")),
    "lws-rollout-type": _lws(_set("rolloutStrategy.type", "Sideways")),
    "lws-max-surge": _lws(_set("rolloutStrategy.rollingUpdateConfiguration.maxSurge", "lots")),
    "lws-max-unavailable": _lws(_set("rolloutStrategy.rollingUpdateConfiguration.maxUnavailable", -1)),
    "lws-subgroup-size": _lws(_set("leaderWorkerTemplate.subGroupPolicy.subGroupSize", 0)),
    "lws-subdomain-policy": _lws(_set("networkConfig.subdomainPolicy", "Everywhere")),
    "lws-leader-no-image": _lws_template("leaderTemplate", _no_image),
    "lws-worker-no-image": _lws_template("workerTemplate", _no_image),
    "lws-worker-resource": _lws_template("workerTemplate", _unknown_resource),
    "lws-leader-port": _lws_template("leaderTemplate", _bad_port),
    "lws-worker-mount": _lws_template("workerTemplate", _unmounted_volume),
    "lws-worker-pull-policy": _lws_template("workerTemplate", _bad_pull_policy),
}

ALL_MUTATIONS = {**ROLE_MUTATIONS, **COORDINATION_MUTATIONS, **LWS_MUTATIONS}


def _named(m: Obj, name: str) -> Obj:
    m = copy.deepcopy(m)
    m["metadata"] = {"name": name}
    return m


def _singles(base_name: str, base: Obj) -> Iterator[tuple[str, Obj, tuple[str, ...]]]:
    roles = len(base["spec"].get("roles") or [None])
    for mutation_name, mutate in ALL_MUTATIONS.items():
        for i in range(roles):
            m = copy.deepcopy(base)
            fields = mutate(m, i)
            if fields is not None:
                yield f"{base_name}-{mutation_name}-{i}", m, fields


def corpus(seed: int = 15, pairs: int = 40, live: tuple[str, ...] = ("pd", "lws")) -> list[Case]:
    """Every mutation on every base and role it applies to (as creates), each again as an update of a
    live object for the bases in `live`, and `pairs` seeded combinations of two mutations (whose
    refusal may name either field)."""
    cases: list[Case] = []
    singles = {name: list(_singles(name, base)) for name, base in bases().items()}
    n = 0
    for name, found in singles.items():
        for case_id, m, fields in found:
            n += 1
            cases.append(Case(case_id, _named(m, f"c{n}"), fields))
            if name in live:
                cases.append(Case(f"{case_id}-update", _named(m, f"live-{name}"), fields, f"live-{name}"))
    rng = random.Random(seed)  # noqa: S311 - a reproducible corpus, not a secret
    for k in range(pairs):
        name = rng.choice(["pd", "lwsrole", "batches", "lws"])
        base = bases()[name]
        roles = len(base["spec"].get("roles") or [None])
        m = copy.deepcopy(base)
        fields: tuple[str, ...] = ()
        picked = []
        for mutation_name in rng.sample(sorted(ALL_MUTATIONS), len(ALL_MUTATIONS)):
            if len(picked) == 2:
                break
            i = rng.randrange(roles)
            trial = copy.deepcopy(m)
            try:
                got = ALL_MUTATIONS[mutation_name](trial, i)
            except (IndexError, KeyError, TypeError, AttributeError):  # the first mutation removed its target
                continue
            if got is not None and not (
                mutation_name.startswith("name-") and any("name" in p for p in picked)
            ):
                m, fields, picked = trial, fields + got, [*picked, f"{mutation_name}-{i}"]
        n += 1
        cases.append(Case(f"pair{k}-{name}-{'+'.join(picked)}", _named(m, f"c{n}"), fields))
    return cases


def live_bases() -> dict[str, Obj]:
    """The valid objects the update cases change (they stay as they are: every update is refused)."""
    return {f"live-{name}": _named(bases()[name], f"live-{name}") for name in ("pd", "lws")}
