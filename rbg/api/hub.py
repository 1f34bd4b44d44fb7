"""The internal (hub) model of a RoleBasedGroup: what the pure cores and the controllers work on (D38).

Its shape is this operator's v1alpha1 (a superset of upstream sgl-project/rbg v1alpha1: upstream
manifests are accepted as they are), which is also the served v1alpha1 schema (rbg/api/v1alpha1.py
re-exports it, so that conversion between them is the identity); every other served version converts
to and from it (rbg/api/conversion.py). No core module imports a served version (import-linter).
`HUB_VERSION` is the one place that says which version the operator reads and writes, `STORAGE_VERSION`
which one etcd keeps.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from rbg.api import hub_status as _status
from rbg.api.base import (
    DNS_LABEL,
    PERCENT,
    ApiModel,
    Container,
    FreeForm,
    ObjectMeta,
    PodTemplateSpec,
    ServicePort,
    cel,
)

# the status models (rbg/api/v1alpha1_status.py) are part of this API
BatchStatus = _status.BatchStatus
Condition = _status.Condition
CoordinationProgress = _status.CoordinationProgress
CoordinationStatus = _status.CoordinationStatus
RestartRecord = _status.RestartRecord
RestartStatus = _status.RestartStatus
RoleBasedGroupStatus = _status.RoleBasedGroupStatus
RoleStatus = _status.RoleStatus

GROUP = "workloads.x-k8s.io"
#: the served version whose schema is the hub's: the operator reads, writes, validates and owns
#: children under it; the API server converts any other version to it (a webhook rule with
#: matchPolicy Equivalent sees every version as this one)
HUB_VERSION = "v1alpha1"
#: the version etcd keeps (the CRD's `storage: true`: rbg/api/crd.py): the hub's, so that the
#: operator's own reads, watches and status writes never go through the conversion webhook (stored as
#: v1alpha2, as upstream, they all did: twice the operator CPU, D38); v1alpha2 clients are converted
STORAGE_VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{HUB_VERSION}"
VERSION = HUB_VERSION
MAX_ROLES = 64  # bounds every list CEL walks, so the API server can cost the rules

IntOrString = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]
RoleName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


class TemplateRef(ApiModel):
    name: RoleName
    """Name of an entry in spec.roleTemplates whose template this role starts from."""


class RoleTemplate(ApiModel):
    name: RoleName
    """Name the roles refer to in templateRef.name; unique within spec.roleTemplates."""
    template: PodTemplateSpec
    """A pod template shared by several roles; each role changes it with its templatePatch."""


class WorkloadSpec(ApiModel):
    api_version: str = Field(
        "apps/v1",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/v[0-9]+((alpha|beta)[0-9]+)?$",
    )
    """API version of the workload that runs the role's pods: apps/v1, or leaderworkerset.x-k8s.io/v1."""
    kind: str = Field("StatefulSet", min_length=1, max_length=63)
    """Kind of the workload: StatefulSet (stable names, the default), Deployment, or LeaderWorkerSet (each
    replica is a group: a leader pod and size - 1 workers)."""

    @property
    def ref(self) -> str:
        return f"{self.api_version}/{self.kind}"


class InPlaceUpdateStrategy(ApiModel):
    grace_period_seconds: int | None = Field(None, ge=0)
    """Seconds between marking a pod not ready and updating it in place (accepted, not acted on yet)."""


class RollingUpdate(ApiModel):
    """Limits of a role's rolling update."""

    # values are checked by the admission webhook (CEL cannot bound an int-or-string's cost)

    type: Literal["InPlaceIfPossible", "Recreate", "RecreatePod", "InPlaceOnly"] | None = None
    """Recreate: the role's pods are replaced all together (StatefulSet: every old pod deleted at once;
    Deployment: its Recreate strategy; LeaderWorkerSet: every group at once). The other values roll pods
    one step at a time by recreating them (in-place updates are not done)."""
    partition: IntOrString | None = 0
    """StatefulSet roles: ordinals below this (a number, or a percentage of replicas) keep the old template;
    LeaderWorkerSet roles: groups below it do."""
    max_unavailable: IntOrString | None = 1
    """How many pods (a number or a percentage) may be unavailable during an update (StatefulSet roles:
    above 1, the operator steps the partition)."""
    max_surge: IntOrString | None = 0
    """How many pods (a number or a percentage) may be created above replicas during an update
    (StatefulSet roles: the operator adds them with the new template and gives them back at the end)."""
    paused: bool | None = None
    """Stop the role's rollout where it is: pods already on the new template stay, the others keep the
    old one until it is set back to false (StatefulSet and LeaderWorkerSet roles: the partition is held at
    replicas; Deployment roles: the Deployment is paused)."""
    in_place_update_strategy: InPlaceUpdateStrategy | None = None
    """Settings of in-place updates (accepted, not acted on yet)."""


class RolloutStrategy(ApiModel):
    type: Literal["RollingUpdate"] = "RollingUpdate"
    """Only RollingUpdate."""
    rolling_update: RollingUpdate | None = None
    """Limits of the rolling update."""


class LeaderWorkerTemplate(ApiModel):
    size: int | None = Field(1, ge=1)
    """Pods per group (a leader and size-1 workers) for LeaderWorkerSet roles."""
    patch_leader_template: FreeForm | None = None
    """Strategic-merge patch applied to the role's template for the leader pod."""
    patch_worker_template: FreeForm | None = None
    """Strategic-merge patch applied to the role's template for worker pods."""


class EngineRuntime(ApiModel):
    profile_name: str = Field(min_length=1, max_length=253)
    """Name of the engine runtime profile to inject (accepted, not acted on yet)."""
    inject_containers: list[str] | None = None
    """Names of the role's containers the profile applies to."""
    containers: list[Container] | None = None
    """Container overrides for the injected runtime."""


class ScalingAdapter(ApiModel):
    enable: bool = False
    """Create a RoleBasedGroupScalingAdapter `{group}-{role}` so that an autoscaler (HPA, KEDA) can drive
    this role's replicas through its scale subresource; the role's replicas then follow the adapter's."""
    labels: dict[str, str] | None = None
    """Labels for the scaling adapter object."""


class RestartPolicyConfig(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.baseDelaySeconds) || !has(self.maxDelaySeconds)"
                    " || self.maxDelaySeconds >= self.baseDelaySeconds",
                    "maxDelaySeconds must be greater than or equal to baseDelaySeconds",
                )
            ]
        }
    )

    type: Literal["None", "RecreateRBGOnPodRestart", "RecreateRoleInstanceOnPodRestart"] | None = None
    """The policy (upstream v1alpha2's place for it); wins over restartPolicy when both are set."""
    base_delay_seconds: int | None = Field(None, ge=0, le=86_400)
    """Wait before the second recreation (the first is immediate); doubled for each further one (default
    30; 0 with maxDelaySeconds 0: no backoff)."""
    max_delay_seconds: int | None = Field(None, ge=0, le=86_400)
    """The longest wait between recreations (default 600). The count of recreations starts again once
    the pods ran without one for twice this (at least 10 minutes)."""
    max_restarts: int | None = Field(None, ge=0, le=10_000)
    """Recreations allowed before the group is marked Failed (condition Failed, event RestartLimitReached)
    and left for a person; unset: no bound. Cleared by any change of the group's spec."""


class RoleSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.template) && has(self.templateRef))",
                    "template and templateRef are mutually exclusive",
                ),
                cel(
                    "!has(self.templateRef) || !has(self.workload) || self.workload.kind != 'InstanceSet'",
                    "templateRef is not supported for InstanceSet workloads",
                ),
                # upstream v1alpha1 refuses templateRef for LeaderWorkerSet roles; v1alpha2's
                # leaderWorkerPattern has it and converts to one, so this superset takes it (D39)
                cel(
                    "!has(self.workload) || self.workload.kind in ['InstanceSet', 'RoleInstanceSet']"
                    " || (has(self.template) != has(self.templateRef))",
                    "template or templateRef must be set for non-InstanceSet workloads",
                ),
                cel(
                    "!has(self.templateRef) || has(self.templatePatch)",
                    "templatePatch is required when templateRef is set (use {} for no changes)",
                    ".templatePatch",
                ),
                cel(
                    "!has(self.templatePatch) || has(self.templateRef)",
                    "templatePatch is only valid when templateRef is set",
                    ".templatePatch",
                ),
                cel(
                    "!has(self.workload) || (self.workload.apiVersion == 'apps/v1'"
                    " && self.workload.kind in ['StatefulSet', 'Deployment'])"
                    " || (self.workload.apiVersion == 'leaderworkerset.x-k8s.io/v1'"
                    " && self.workload.kind == 'LeaderWorkerSet')"
                    " || (self.workload.apiVersion == 'workloads.x-k8s.io/v1alpha2'"
                    " && self.workload.kind == 'RoleInstanceSet')",
                    "workload must be apps/v1 StatefulSet or Deployment, leaderworkerset.x-k8s.io/v1"
                    " LeaderWorkerSet, or workloads.x-k8s.io/v1alpha2 RoleInstanceSet (InstanceSet is"
                    " deprecated: use RoleInstanceSet)",
                    ".workload",
                ),
            ]
        }
    )

    name: RoleName
    """Name of the role, unique in the group; names its workload {group}-{role} and its Service
    s-{group}-{role}."""
    labels: dict[str, str] | None = None
    """Labels added to the role's workload."""
    annotations: dict[str, str] | None = None
    """Annotations added to the role's workload."""
    replicas: int = Field(1, ge=0, le=100_000)
    """Number of pods of the role."""
    rollout_strategy: RolloutStrategy | None = None
    """How a template change rolls out across the role's pods."""
    restart_policy: Literal["None", "RecreateRBGOnPodRestart", "RecreateRoleInstanceOnPodRestart"] | None = (
        None
    )
    """What else is recreated when a container of the role's pods restarts or a pod fails: None (only what
    Kubernetes does), RecreateRBGOnPodRestart (every pod of the group) or RecreateRoleInstanceOnPodRestart
    (the instance: the pod, or for LeaderWorkerSet roles its whole leader/worker group)."""
    restart_policy_config: RestartPolicyConfig | None = None
    """Backoff between recreations and their bound."""
    dependencies: list[Annotated[str, Field(max_length=63)]] | None = Field(None, max_length=MAX_ROLES)
    """Roles that must be Ready before this role's workload is created."""
    workload: WorkloadSpec = Field(
        default_factory=WorkloadSpec,
        json_schema_extra={"default": {"apiVersion": "apps/v1", "kind": "StatefulSet"}},
    )
    """The workload kind that runs the role: apps/v1 StatefulSet (default) or Deployment,
    leaderworkerset.x-k8s.io/v1 LeaderWorkerSet, or workloads.x-k8s.io/v1alpha2 RoleInstanceSet (with
    components)."""
    template: PodTemplateSpec | None = None
    """The role's pod template (exclusive with templateRef)."""
    template_ref: TemplateRef | None = None
    """Start from a template of spec.roleTemplates instead of an inline template."""
    template_patch: FreeForm | None = None
    """Strategic-merge patch applied to the referenced template (required with templateRef; {} for no
    change)."""
    leader_worker_set: LeaderWorkerTemplate | None = None
    """Leader/worker settings for LeaderWorkerSet roles: each of the role's replicas is a group of `size`
    pods."""
    components: list[FreeForm] | None = None
    """Components of a RoleInstanceSet role: each instance is `size` pods of every component, each
    {name, size, serviceName, labels, annotations, template} (D42)."""
    service_ports: list[ServicePort] | None = None
    """Ports of the role's headless Service; also listed in the discovery config."""
    engine_runtimes: list[EngineRuntime] | None = None
    """Engine runtime profiles injected into the role's pods (accepted, not acted on yet)."""
    scaling_adapter: ScalingAdapter | None = None
    """Scaling adapter of the role."""
    min_ready_seconds: int = Field(0, ge=0)
    """Seconds a new pod must be ready before it counts as available."""


class KubeSchedulingPolicy(ApiModel):
    schedule_timeout_seconds: int | None = Field(60, ge=0)
    """Seconds the gang may wait for all its pods to be schedulable."""


class VolcanoSchedulingPolicy(ApiModel):
    priority_class_name: str | None = None
    """PriorityClass of the Volcano PodGroup."""
    queue: str | None = None
    """Volcano queue of the PodGroup."""


class PodGroupPolicy(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.kubeScheduling) && has(self.volcanoScheduling))",
                    "kubeScheduling and volcanoScheduling are mutually exclusive",
                )
            ]
        }
    )
    kube_scheduling: KubeSchedulingPolicy | None = None
    """Gang scheduling by the scheduler-plugins coscheduling scheduler: a PodGroup {group} with minMember =
    every pod of the group and its summed requests; the pods are labelled for it and sent to that
    scheduler (scheduler-plugins-scheduler), which binds none of them until all of them fit."""
    volcano_scheduling: VolcanoSchedulingPolicy | None = None
    """Gang scheduling by Volcano: a scheduling.volcano.sh PodGroup {group} (queue, priorityClassName) and
    the pods annotated with it; reported in status when Volcano is not installed."""


class CoordinationRollingUpdate(ApiModel):
    max_skew: str | None = Field(None, pattern=PERCENT)
    """Largest difference in update progress between the coordinated roles, as a percentage."""
    partition: str | None = Field(None, pattern=PERCENT)
    """Percentage of each role's pods kept on the old template."""
    max_unavailable: str | None = Field(None, pattern=PERCENT)
    """Percentage of each role's pods that may be unavailable at once."""
    max_unavailable_ratio: str | None = Field(None, pattern=PERCENT)
    """Alias of maxUnavailable (the name the coordination design uses); maxUnavailable wins when both are
    set."""


class CoordinationScaling(ApiModel):
    max_skew: str | None = Field(None, pattern=PERCENT)
    """Largest difference in scaling progress between the coordinated roles, as a percentage."""
    progression: Literal["OrderScheduled", "OrderReady"] | None = None
    """When the next step starts: once pods are scheduled (OrderScheduled) or Ready (OrderReady)."""


class AffinityScheduling(ApiModel):
    """Pods of several roles placed together, batch by batch, each batch in one topology domain."""

    topology_key: str = Field("", max_length=316)
    """Node label whose values are the domains a batch must stay inside, e.g. kubernetes.io/hostname."""
    ratios: dict[str, int] = Field(default_factory=dict)
    """Pods of each coordinated role per batch, e.g. {prefill: 2, decode: 1}: batch k holds that role's
    pods with ordinals k*ratio .. k*ratio+ratio-1."""
    batch_mode: Literal["Sequential", "Parallel"] = "Sequential"
    """Sequential: batch k+1 is released once every pod of batch k is bound. Parallel: every batch is
    planned at once (without counting free capacity twice)."""
    batch_timeout_seconds: int = Field(300, ge=1)
    """Seconds a batch may wait for a domain before it is reported Stuck (it keeps being re-planned)."""


class CoordinationStrategy(ApiModel):
    rolling_update: CoordinationRollingUpdate | None = None
    """Coordinated rolling update of the roles."""
    scaling: CoordinationScaling | None = None
    """Coordinated scaling of the roles."""
    affinity_scheduling: AffinityScheduling | None = None
    """Ratio placement of the roles' pods per topology domain."""


class Coordination(ApiModel):
    name: RoleName
    """Name of the coordination, unique in the group."""
    type: Literal["AffinityScheduling", "RollingUpdate", "Scaling"] | None = None
    """What is coordinated; may be left out when exactly one strategy is set."""
    roles: list[Annotated[str, Field(max_length=63)]] = Field(min_length=1, max_length=MAX_ROLES)
    """Roles of the group that move together."""
    strategy: CoordinationStrategy | None = None
    """How they move together."""

    @property
    def kind(self) -> str | None:
        """The type, or the one strategy set when the type is left out."""
        if self.type is not None:
            return self.type
        st = self.strategy
        set_ = [
            t
            for t, v in (
                ("AffinityScheduling", st.affinity_scheduling if st else None),
                ("RollingUpdate", st.rolling_update if st else None),
                ("Scaling", st.scaling if st else None),
            )
            if v is not None
        ]
        return set_[0] if len(set_) == 1 else None


class RoleBasedGroupSpec(ApiModel):
    """The roles of the group and how they are run together."""

    roles: list[RoleSpec] = Field(
        min_length=1,
        max_length=MAX_ROLES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """The roles of the group (router, prefill, decode, ...); each becomes a workload and a headless
    Service."""
    role_templates: list[RoleTemplate] | None = Field(
        None,
        max_length=MAX_ROLES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Pod templates roles can share through templateRef."""
    pod_group_policy: PodGroupPolicy | None = None
    """Gang scheduling of all the group's pods: all of them are scheduled, or none."""
    coordination: list[Coordination] | None = Field(
        None,
        max_length=MAX_ROLES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Roles placed (AffinityScheduling), updated (rollingUpdate maxSkew) or scaled (scaling maxSkew)
    together."""
    startup_policy: Literal["Ordered", "Parallel"] | None = None
    """Ordered (the default): a role is created once every role it depends on is Ready; Parallel: every
    role is created at once, its dependencies still listed in the discovery config."""


class RoleBasedGroup(ApiModel):
    """The whole object, as the controller reads it from its cache."""

    api_version: str = API_VERSION
    kind: str = "RoleBasedGroup"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RoleBasedGroupSpec
    status: RoleBasedGroupStatus | None = None
