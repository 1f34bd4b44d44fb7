"""Desired child objects of a RoleBasedGroup: workloads, headless Services, the discovery ConfigMap.

Everything returned is a complete server-side-apply body owned by field manager `rbg`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import yaml

from rbg.api.hub import API_VERSION, RoleBasedGroup, RoleSpec
from rbg.coordination.batches import layout
from rbg.coordination.resources import pod_requests
from rbg.group import names
from rbg.group.revision import ROLE_REVISION, role_revision
from rbg.group.strategicmerge import clone
from rbg.group.templates import component_templates, resolve
from rbg.group.workloads import Workload, component_size, strategy_of
from rbg.instances import labels as instance_labels
from rbg.lifecycle import conventions

Obj = dict[str, Any]
# libyaml's emitter writes the same text as the pure-Python one at a tenth of the CPU
_YAML_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def child_refs(rbg: RoleBasedGroup) -> list[tuple[str, str, str]]:
    """(kind, name, the spec field that decides it) of every object the group may own."""
    group = rbg.metadata.name
    refs = [("ConfigMap", names.config_map_name(group), "metadata.name")]
    for i, role in enumerate(rbg.spec.roles):
        refs.append((workload_kind(role), names.workload_name(group, role.name), f"spec.roles[{i}].name"))
        refs.append(("Service", names.service_name(group, role.name), f"spec.roles[{i}].name"))
        if role.scaling_adapter is not None and role.scaling_adapter.enable:
            refs.append(
                (
                    "RoleBasedGroupScalingAdapter",
                    names.adapter_name(group, role.name),
                    f"spec.roles[{i}].scalingAdapter",
                )
            )
    if rbg.spec.pod_group_policy is not None:
        refs.append(("PodGroup", group, "spec.podGroupPolicy"))
    return refs


def owner_reference(rbg: RoleBasedGroup) -> Obj:
    return conventions.owner_reference(API_VERSION, "RoleBasedGroup", rbg.metadata.name, rbg.metadata.uid)


def _meta(
    rbg: RoleBasedGroup, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> Obj:
    meta: Obj = {
        "name": name,
        "namespace": rbg.metadata.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(rbg)],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def common_labels(rbg: RoleBasedGroup, role: str) -> dict[str, str]:
    return {
        **names.selector(rbg.metadata.name, role),
        names.GROUP_UID: names.group_uid(rbg.metadata.namespace, rbg.metadata.name),
    }


def is_stateful(role: RoleSpec) -> bool:
    strategy = strategy_of(role)
    return strategy is not None and strategy.stateful


def workload_kind(role: RoleSpec) -> str:
    """The kind of the role's workload as the spec names it (never replaced by another kind)."""
    return role.workload.kind


def _env(rbg: RoleBasedGroup, role: RoleSpec) -> list[Obj]:
    env: list[Obj] = [
        {"name": "RBG_GROUP_NAME", "value": rbg.metadata.name},
        {"name": "RBG_ROLE_NAME", "value": role.name},
    ]
    strategy = strategy_of(role)
    if strategy is not None and strategy.index_label:
        # the instance's index: the pod's ordinal, or its group's index for leader/worker roles
        env.append(
            {
                "name": "RBG_ROLE_INDEX",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{strategy.index_label}']"}},
            }
        )
    for name, label in strategy.env_labels if strategy is not None else ():
        env.append({"name": name, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{label}']"}}})
    return env


def pod_template(rbg: RoleBasedGroup, index: int, template: Obj | None = None) -> Obj:
    """The role's template with group labels, RBG_* env vars and the discovery config mounted.

    `template`: the role's resolved template when the caller has it (it is taken over and changed).
    """
    role = rbg.spec.roles[index]
    if template is None:
        template = resolve(rbg.spec, index)  # a fresh copy
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **common_labels(rbg, role.name)}
    batched = layout(rbg, role.name)
    if batched is not None:  # its pods go through the batch webhook (and only they), D27
        meta["labels"][names.COORDINATED] = batched
    gang = rbg.spec.pod_group_policy
    if gang is not None and gang.kube_scheduling is not None:
        # the coscheduling plugin schedules none of the group's pods until all of them can be
        meta["labels"][names.POD_GROUP_LABEL] = rbg.metadata.name
        template.setdefault("spec", {})["schedulerName"] = names.COSCHEDULER
    elif gang is not None and gang.volcano_scheduling is not None:
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            names.VOLCANO_GROUP_ANNOTATION: rbg.metadata.name,
        }
    spec = template.setdefault("spec", {})
    injected = _env(rbg, role)
    mount = {"name": names.CONFIG_VOLUME, "mountPath": names.CONFIG_MOUNT, "readOnly": True}
    for container in spec.get("containers", []):
        user_env = container.get("env") or []
        user_names = {e.get("name") for e in user_env}
        # injected first, user variables after (so $(RBG_...) expands in them); a user value wins
        container["env"] = [e for e in injected if e["name"] not in user_names] + user_env
        mounts = container.get("volumeMounts") or []
        if not any(m.get("name") == names.CONFIG_VOLUME for m in mounts):
            container["volumeMounts"] = [*mounts, mount]
    volumes = spec.get("volumes") or []
    if not any(v.get("name") == names.CONFIG_VOLUME for v in volumes):
        spec["volumes"] = [
            *volumes,
            {"name": names.CONFIG_VOLUME, "configMap": {"name": names.config_map_name(rbg.metadata.name)}},
        ]
    # what the pods run, hashed: the pods and the workload say which revision of the role they carry
    meta["labels"][ROLE_REVISION] = role_revision(template, _leader_worker(role))
    return template


def _leader_worker(role: RoleSpec) -> Obj | None:
    lw = role.leader_worker_set
    return {"leaderWorkerSet": lw.wire()} if lw is not None else None


def workload(
    rbg: RoleBasedGroup, index: int, replicas: int | None = None, template: Obj | None = None
) -> Obj:
    role = rbg.spec.roles[index]
    group = rbg.metadata.name
    labels = {**(role.labels or {}), **common_labels(rbg, role.name)}
    annotations = {**names.workload_annotations(role.annotations), names.ROLE_SIZE: str(role.replicas)}
    strategy = strategy_of(role)
    if strategy is not None and strategy.kind == "RoleInstanceSet":  # ours to run (D42)
        annotations[instance_labels.RUNS_AS] = instance_labels.RUNS_AS_STATEFULSETS
    if strategy is None:  # validate() refuses such roles before anything is built
        raise ValueError(f"spec.roles[{index}].workload: {role.workload.ref} is not supported")
    name = names.workload_name(group, role.name)
    components: tuple[Obj, ...] = ()
    if strategy.kind == "RoleInstanceSet":  # one revision for the whole instance: every component's
        components = _components(rbg, index)
        revision = role_revision({"components": list(components)})
        for c in components:
            c["template"]["metadata"]["labels"][ROLE_REVISION] = revision
        pods = components[0]["template"]  # (the spec lists the components; no role template is built)
    else:  # components on another kind are only warned about (validation.not_acted_on)
        pods = pod_template(rbg, index, template)
    labels[ROLE_REVISION] = pods["metadata"]["labels"][ROLE_REVISION]
    spec = strategy.spec(
        Workload(
            role=role,
            name=name,
            replicas=role.replicas if replicas is None else replicas,
            selector=names.selector(group, role.name),
            template=pods,
            service=names.service_name(group, role.name),
            components=components,
        )
    )
    return {
        "apiVersion": strategy.api_version,
        "kind": strategy.kind,
        "metadata": _meta(rbg, name, labels, annotations),
        "spec": spec,
    }


def made_elsewhere(observed: Obj | None) -> bool:
    """A RoleInstanceSet of the group that upstream's controller made (a migrated group): its
    RoleInstances and pods are not StatefulSets this operator can take over, so it is replaced, never
    written over (D42)."""
    if observed is None or observed.get("kind") != "RoleInstanceSet":
        return False
    annotations = (observed.get("metadata") or {}).get("annotations") or {}
    return annotations.get(instance_labels.RUNS_AS) != instance_labels.RUNS_AS_STATEFULSETS


def _components(rbg: RoleBasedGroup, index: int) -> tuple[Obj, ...]:
    """A customComponentsPattern role's components as its RoleInstanceSet lists them: each template
    finished like a role's (group labels, RBG_* variables, the discovery config)."""
    group, role = rbg.metadata.name, rbg.spec.roles[index]
    out = []
    for component, template in component_templates(rbg.spec, index):
        finished = pod_template(rbg, index, template)
        out.append(
            {
                "name": component["name"],
                "size": component_size(component),
                "serviceName": component.get("serviceName") or names.service_name(group, role.name),
                "template": finished,
            }
        )
    return tuple(out)


def governing_services(rbg: RoleBasedGroup, observed: Mapping[str, Obj | None]) -> dict[str, str]:
    """Per StatefulSet role, the serviceName its existing StatefulSet keeps when it differs from ours."""
    out = {}
    for role in rbg.spec.roles:
        spec = (observed.get(role.name) or {}).get("spec") or {}
        kept = spec.get("serviceName")
        ours = names.service_name(rbg.metadata.name, role.name)
        if role.workload.kind == "StatefulSet" and isinstance(kept, str) and kept and kept != ours:
            out[role.name] = kept
    return out


def keep_immutable(body: Obj, observed: Obj | None) -> None:
    """An existing Deployment or StatefulSet keeps what the API server never lets change: its selector
    (one adopted from the Go upstream selects on more labels than ours, D39; its pods are labelled to
    match, so the workload stays valid; a selector of expressions is left for the API server to
    report) and a StatefulSet's podManagementPolicy (a role's changed policy applies to a new one) and
    serviceName."""
    if observed is None or body["kind"] not in ("Deployment", "StatefulSet"):
        return
    spec = observed.get("spec") or {}
    if body["kind"] == "StatefulSet":
        if spec.get("podManagementPolicy") in ("Parallel", "OrderedReady"):
            body["spec"]["podManagementPolicy"] = spec["podManagementPolicy"]
        if isinstance(spec.get("serviceName"), str) and spec["serviceName"]:
            body["spec"]["serviceName"] = spec["serviceName"]  # upstream's legacy `{rbg}-{role}` one stays
    seen = spec.get("selector")
    if not isinstance(seen, dict) or seen == body["spec"].get("selector"):
        return
    match = seen.get("matchLabels") or {}
    if seen.get("matchExpressions") or not isinstance(match, dict):
        return
    body["spec"]["selector"] = {"matchLabels": dict(match)}
    body["spec"]["template"]["metadata"].setdefault("labels", {}).update(match)


def role_pod_templates(rbg: RoleBasedGroup, index: int, template: Obj) -> list[tuple[Obj, int, str, str]]:
    """The role's distinct pod templates: (template, how many pods run it, where the user wrote it, which
    pods those are: '' for all of the role's). A LeaderWorkerSet replica is a leader and `size - 1`
    workers, built from the role's template and its leader and worker patches exactly as the
    LeaderWorkerSet is (the strategy's spec, which merges them); a RoleInstanceSet instance runs `size`
    pods of each component. `template`: the role's pod template (`pod_template`)."""
    role = rbg.spec.roles[index]
    where = f"spec.roles[{index}]"
    if role.workload.kind == "RoleInstanceSet":  # an instance: `size` pods of each component
        return [
            (t, role.replicas * component_size(c), f"{where}.components[{i}].template", "")
            for i, (c, t) in enumerate(component_templates(rbg.spec, index))
        ]
    if role.workload.kind != "LeaderWorkerSet" or (strategy := strategy_of(role)) is None:
        return [(template, role.replicas, f"{where}.template", "")]
    group = rbg.metadata.name
    lwt = strategy.spec(
        Workload(
            role=role,
            name=names.workload_name(group, role.name),
            replicas=role.replicas,
            selector=names.selector(group, role.name),
            template=template,  # merged into copies, not changed
            service=names.service_name(group, role.name),
        )
    )["leaderWorkerTemplate"]
    size, worker = lwt["size"], lwt["workerTemplate"]
    return [
        (lwt.get("leaderTemplate", worker), role.replicas, f"{where}.template", "the leader's pods"),
        (worker, role.replicas * (size - 1), f"{where}.template", "the workers' pods"),
    ]


def _pods_and_requests(rbg: RoleBasedGroup, templates: list[Obj]) -> tuple[int, dict[str, Decimal]]:
    """All pods of the group, and the sum of their requests (per LeaderWorkerSet replica: the leader's
    and `size - 1` workers', as upstream's minResources)."""
    count = 0
    total: dict[str, Decimal] = {}
    for index, template in zip(range(len(rbg.spec.roles)), templates, strict=True):
        for pod, pods, _, _ in role_pod_templates(rbg, index, template):
            count += pods
            for k, v in pod_requests(pod).items():  # a template has a pod's spec
                total[k] = total.get(k, Decimal(0)) + v * pods
    return count, total


def pod_group(rbg: RoleBasedGroup, templates: list[Obj]) -> Obj | None:
    """The group's PodGroup for spec.podGroupPolicy: scheduler-plugins (kubeScheduling) or Volcano."""
    gang = rbg.spec.pod_group_policy
    if gang is None or (gang.kube_scheduling is None and gang.volcano_scheduling is None):
        return None
    members, requests = _pods_and_requests(rbg, templates)
    min_resources = {k: format(v.normalize(), "f") for k, v in sorted(requests.items())}
    meta = _meta(rbg, rbg.metadata.name, {names.GROUP_NAME: rbg.metadata.name})
    if gang.kube_scheduling is not None:
        spec: Obj = {"minMember": members, "minResources": min_resources}
        if gang.kube_scheduling.schedule_timeout_seconds is not None:
            spec["scheduleTimeoutSeconds"] = gang.kube_scheduling.schedule_timeout_seconds
        return {
            "apiVersion": "scheduling.x-k8s.io/v1alpha1",
            "kind": "PodGroup",
            "metadata": meta,
            "spec": spec,
        }
    assert gang.volcano_scheduling is not None
    spec = {"minMember": members, "minResources": min_resources}
    if gang.volcano_scheduling.queue:
        spec["queue"] = gang.volcano_scheduling.queue
    if gang.volcano_scheduling.priority_class_name:
        spec["priorityClassName"] = gang.volcano_scheduling.priority_class_name
    return {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup", "metadata": meta, "spec": spec}


def service(rbg: RoleBasedGroup, index: int) -> Obj:
    role = rbg.spec.roles[index]
    group = rbg.metadata.name
    selector = names.selector(group, role.name)
    leader_only = (role.annotations or {}).get(names.SHARED_SERVICE_SELECTION) == "LeaderOnly"
    if leader_only and role.workload.kind == "LeaderWorkerSet":  # v1alpha2's LeaderOnly (D39)
        selector[names.LWS_WORKER_INDEX] = "0"
    spec: Obj = {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector}
    if role.service_ports:
        spec["ports"] = clone(role.service_ports)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(rbg, names.service_name(group, role.name), common_labels(rbg, role.name)),
        "spec": spec,
    }


def _port_key(port: Obj) -> str:
    name = port.get("name")
    return str(name).lower().replace("-", "_") if name else f"port{port.get('port')}"


def discovery_config(rbg: RoleBasedGroup, governing: Mapping[str, str] | None = None) -> Obj:
    """The `config.yaml` document: per role its size and each instance's stable address and ports.

    `governing`: per role, the Service an existing StatefulSet keeps as its pods' subdomain when it is
    not ours (upstream's legacy `{rbg}-{role}`, immutable on an adopted StatefulSet, D39)."""
    group, ns = rbg.metadata.name, rbg.metadata.namespace
    roles: Obj = {}
    for role in rbg.spec.roles:
        svc = (governing or {}).get(role.name) or names.service_name(group, role.name)
        ports = {_port_key(p): p.get("port") for p in role.service_ports or []}
        entry: Obj = {"size": role.replicas, "service": f"{svc}.{ns}"}
        strategy = strategy_of(role)
        if strategy is not None and strategy.instances is not None:
            entry["instances"] = strategy.instances(names.workload_name(group, role.name), ns, role, ports)
        elif is_stateful(role):
            wl = names.workload_name(group, role.name)
            entry["instances"] = [
                {"address": f"{wl}-{i}.{svc}.{ns}", **({"ports": ports} if ports else {})}
                for i in range(role.replicas)
            ]
        elif ports:
            entry["ports"] = ports
        roles[role.name] = entry
    return {
        "group": {"name": group, "roles": [r.name for r in rbg.spec.roles], "size": len(rbg.spec.roles)},
        "roles": roles,
    }


@functools.lru_cache(maxsize=4096)
def _yaml_text(document_json: str) -> str:
    """YAML text of a JSON document; cached, as every reconcile of an unchanged group renders the same."""
    return yaml.dump(json.loads(document_json), Dumper=_YAML_DUMPER, sort_keys=False)


def config_map(rbg: RoleBasedGroup, governing: Mapping[str, str] | None = None) -> Obj:
    group = rbg.metadata.name
    labels = {names.GROUP_NAME: group, names.GROUP_UID: names.group_uid(rbg.metadata.namespace, group)}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(rbg, names.config_map_name(group), labels),
        "data": {names.CONFIG_KEY: _yaml_text(json.dumps(discovery_config(rbg, governing)))},
    }
