"""One strategy per workload kind a role can run as: everything that differs between the kinds.

The kind is decided here and nowhere else: the desired-state builders, validation, status and the
controller ask `strategy_of(role)`; a kind without a strategy is refused (validation), never run as
another kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rbg.api.hub import RoleSpec
from rbg.group import names
from rbg.group.strategicmerge import clone, merge

Obj = dict[str, Any]
LWS_GROUP_INDEX = "leaderworkerset.sigs.k8s.io/group-index"


@dataclass(frozen=True)
class Workload:
    """What every kind's spec is built from."""

    role: RoleSpec
    name: str  # the workload's name, {group}-{role}
    replicas: int
    selector: dict[str, str]
    template: Obj  # the role's pod template, RBG labels, env and config volume included
    service: str  # the role's headless Service
    #: customComponentsPattern roles: each component's name, size, serviceName and finished template
    components: tuple[Obj, ...] = ()


@dataclass(frozen=True)
class WorkloadStrategy:
    api_version: str
    kind: str
    stateful: bool  # instances have ordinals and stable DNS names
    max_name: int  # longest workload name that still works
    max_name_why: str
    spec: Callable[[Workload], Obj]  # the workload's whole spec
    #: label of a pod holding its instance index (RBG_ROLE_INDEX), for stateful kinds
    index_label: str | None = None
    dns1035: bool = False  # the workload name is also a Service name
    #: discovery entries of the role's instances: (workload, namespace, role) -> instances
    instances: Callable[[str, str, RoleSpec, Obj], list[Obj]] | None = None
    #: more RBG_* variables: (name, label of the pod holding the value)
    env_labels: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.api_version}/{self.kind}"


def _rolling(role: RoleSpec) -> Any:
    return role.rollout_strategy.rolling_update if role.rollout_strategy else None


def _statefulset_spec(w: Workload) -> Obj:
    # every value written, none left to the API server's defaults: a defaulted field is owned by
    # nobody, stays through a server-side apply, and makes a switch to Recreate invalid (D36)
    update: Obj = {"type": "RollingUpdate", "rollingUpdate": {"partition": role_partition(w.role)}}
    return {
        "replicas": w.replicas,
        "selector": {"matchLabels": w.selector},
        "template": w.template,
        "minReadySeconds": w.role.min_ready_seconds,
        "serviceName": w.service,
        "podManagementPolicy": pod_management(w.role),
        "updateStrategy": update,
    }


def pod_management(role: RoleSpec) -> str:
    """Parallel, as upstream's StatefulSets; a v1alpha2 role's OrderedReady (one instance at a time on
    the first scale-up) arrives through its conversion annotation (D39)."""
    wanted = (role.annotations or {}).get(names.POD_MANAGEMENT_POLICY)
    return "OrderedReady" if wanted == "OrderedReady" else "Parallel"


def _deployment_spec(w: Workload) -> Obj:
    ru = _rolling(w.role)
    # Kubernetes' own defaults written out (see _statefulset_spec)
    strategy: Obj = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    if ru is not None and ru.type == "Recreate":  # every pod replaced together (D36)
        strategy = {"type": "Recreate"}
    elif ru is not None:
        strategy["rollingUpdate"] = {"maxSurge": ru.max_surge or 0, "maxUnavailable": ru.max_unavailable or 0}
        if _zero(ru.max_surge) and _zero(ru.max_unavailable):
            strategy["rollingUpdate"]["maxUnavailable"] = 1
    return {
        "replicas": w.replicas,
        "selector": {"matchLabels": w.selector},
        "template": w.template,
        "minReadySeconds": w.role.min_ready_seconds,
        "strategy": strategy,
        **({"paused": True} if ru is not None and ru.paused else {}),
    }


def _lws_spec(w: Workload) -> Obj:
    """A LeaderWorkerSet of `replicas` groups: the role's template, patched for leader and workers."""
    lw = w.role.leader_worker_set
    size = (lw.size if lw else None) or 1
    leader = (
        merge(clone(w.template), clone(lw.patch_leader_template)) if lw and lw.patch_leader_template else None
    )
    if leader is None and lw and lw.patch_worker_template:
        leader = clone(w.template)  # as upstream RBG: the leader never runs the workers' patch
    worker = (
        merge(clone(w.template), clone(lw.patch_worker_template))
        if lw and lw.patch_worker_template
        else w.template
    )
    # as upstream RBG: every policy but None recreates the pod's group (an unset one included)
    restart = "None" if w.role.restart_policy == "None" else "RecreateGroupOnPodRestart"
    lwt: Obj = {"size": size, "restartPolicy": restart, "workerTemplate": worker}
    if leader is not None:
        lwt["leaderTemplate"] = leader
    spec: Obj = {"replicas": w.replicas, "leaderWorkerTemplate": lwt, "startupPolicy": "LeaderCreated"}
    ru = _rolling(w.role)
    if ru is not None:
        unavailable = ru.max_unavailable if ru.max_unavailable is not None else 1
        config: Obj = {
            # Recreate: every group at once (LeaderWorkerSet has no Recreate of its own, D36)
            "maxUnavailable": "100%" if ru.type == "Recreate" else unavailable,
            # paused: no surge group either (it would start on the new template)
            "maxSurge": 0 if ru.paused else (ru.max_surge if ru.max_surge is not None else 0),
        }
        partition = role_partition(w.role)
        if partition:
            config["partition"] = partition
        spec["rolloutStrategy"] = {"type": "RollingUpdate", "rollingUpdateConfiguration": config}
    return spec


def _lws_instances(workload: str, namespace: str, role: RoleSpec, ports: Obj) -> list[Obj]:
    """Each group: its leader's and its workers' DNS names under the LeaderWorkerSet's own headless
    Service `{workload}` (the pods' subdomain)."""
    size = (role.leader_worker_set.size if role.leader_worker_set else None) or 1
    out = []
    for g in range(role.replicas):
        entry: Obj = {"address": f"{workload}-{g}.{workload}.{namespace}"}
        if size > 1:
            entry["workers"] = [f"{workload}-{g}-{w}.{workload}.{namespace}" for w in range(1, size)]
        if ports:
            entry["ports"] = ports
        out.append(entry)
    return out


def role_partition(role: RoleSpec) -> int:
    """The role's partition (StatefulSet ordinals, LeaderWorkerSet groups): those below it keep the old
    template in a rollout. A paused rollout holds every one where it is (the partition is the replicas):
    pods already replaced stay replaced, the others keep the old template until it is resumed."""
    ru = _rolling(role)
    if ru is not None and ru.paused:
        return role.replicas
    return _partition(ru.partition if ru else None, role.replicas)


def _partition(value: int | str | None, replicas: int) -> int:
    """A StatefulSet partition: an ordinal, or a percentage of the replicas (rounded down)."""
    if isinstance(value, str) and value.endswith("%"):
        return replicas * int(value[:-1]) // 100
    return value if isinstance(value, int) else 0


def _zero(value: int | str | None) -> bool:
    return value in (None, 0, "0", "0%")


STATEFULSET = WorkloadStrategy(
    "apps/v1",
    "StatefulSet",
    stateful=True,
    max_name=names.MAX_STATEFULSET_NAME,
    max_name_why=(
        f"at most {names.MAX_STATEFULSET_NAME} (its pods' controller-revision-hash label must fit in 63)"
    ),
    spec=_statefulset_spec,
    index_label=names.POD_INDEX,
)
DEPLOYMENT = WorkloadStrategy(
    "apps/v1",
    "Deployment",
    stateful=False,
    max_name=names.MAX_NAME,
    max_name_why=f"at most {names.MAX_NAME}",
    spec=_deployment_spec,
)
#: a LeaderWorkerSet {name} has worker StatefulSets {name}-{group}: their pods' controller-revision-hash
#: label ({name}-{group}-{10 chars}) must fit in 63, for up to 99999 groups
MAX_LWS_NAME = names.MAX_STATEFULSET_NAME - 6
LEADERWORKERSET = WorkloadStrategy(
    "leaderworkerset.x-k8s.io/v1",
    "LeaderWorkerSet",
    stateful=True,
    max_name=MAX_LWS_NAME,
    max_name_why=f"at most {MAX_LWS_NAME} (its worker StatefulSets are named {{name}}-{{group index}})",
    spec=_lws_spec,
    index_label=LWS_GROUP_INDEX,
    dns1035=True,
    instances=_lws_instances,
)


def component_size(component: Obj) -> int:
    """A component's pods per instance: 1 unless set (validation refuses anything but a whole number)."""
    size = component.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) else 1


def _ris_spec(w: Workload) -> Obj:
    """A RoleInstanceSet of `replicas` instances, each one StatefulSet per component (D42)."""
    ru = _rolling(w.role)
    update: Obj = {"type": "Recreate" if ru is not None and ru.type == "Recreate" else "RollingUpdate"}
    update["partition"] = _partition(ru.partition if ru else None, w.role.replicas)
    update["maxUnavailable"] = ru.max_unavailable if ru is not None and ru.max_unavailable is not None else 1
    update["paused"] = bool(ru is not None and ru.paused)
    return {
        "replicas": w.replicas,
        "selector": w.selector,
        "roleInstanceTemplate": {"components": [dict(c) for c in w.components]},
        "updateStrategy": update,
        "minReadySeconds": w.role.min_ready_seconds,
    }


def _ris_instances(workload: str, namespace: str, role: RoleSpec, ports: Obj) -> list[Obj]:
    """Each instance: its components' pods' DNS names, `{workload}-{i}-{component}-{id}.{service}`."""
    out = []
    for i in range(role.replicas):
        components: Obj = {}
        for c in role.components or []:
            service = c.get("serviceName") or f"s-{workload}"  # the role's Service, names.service_name
            components[c["name"]] = [
                f"{workload}-{i}-{c['name']}-{k}.{service}.{namespace}" for k in range(component_size(c))
            ]
        first = next((a[0] for a in components.values() if a), None)
        entry: Obj = {"name": f"{workload}-{i}", "components": components}
        if first is not None:
            entry["address"] = first
        if ports:
            entry["ports"] = ports
        out.append(entry)
    return out


#: a RoleInstanceSet {name} has StatefulSets {name}-{index}-{component}: validation checks the longest
#: component against what is left (for up to 99999 instances)
MAX_RIS_NAME = names.MAX_STATEFULSET_NAME - 8
ROLEINSTANCESET = WorkloadStrategy(
    "workloads.x-k8s.io/v1alpha2",
    "RoleInstanceSet",
    stateful=True,
    max_name=MAX_RIS_NAME,
    max_name_why=f"at most {MAX_RIS_NAME} (its StatefulSets are named {{name}}-{{index}}-{{component}})",
    spec=_ris_spec,
    index_label=names.ROLE_INSTANCE_INDEX,
    instances=_ris_instances,
    env_labels=(
        ("RBG_ROLE_INSTANCE_NAME", names.ROLE_INSTANCE_NAME),
        ("RBG_COMPONENT_NAME", names.COMPONENT_NAME),
        ("RBG_COMPONENT_INDEX", names.POD_INDEX),
    ),
)
STRATEGIES: dict[str, WorkloadStrategy] = {
    s.ref: s for s in (STATEFULSET, DEPLOYMENT, LEADERWORKERSET, ROLEINSTANCESET)
}
KINDS = frozenset(s.kind for s in STRATEGIES.values())


def strategy_of(role: RoleSpec) -> WorkloadStrategy | None:
    """The role's strategy, or None for a kind this operator does not run."""
    return STRATEGIES.get(role.workload.ref)
