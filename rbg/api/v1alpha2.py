"""RoleBasedGroup, workloads.x-k8s.io/v1alpha2 — upstream sgl-project/rbg's current (storage) version.

Field for field as upstream's v1alpha2 (../shared/reference/upstream-rbg.md §1.2): a role runs one of
three patterns (standalonePattern, leaderWorkerPattern, customComponentsPattern) and names its workload
kind in the role annotation `rbg.workloads.x-k8s.io/role-workload-type` instead of a `workload` field;
gang scheduling and the group exclusive topology are group annotations (§1.10). Leaf types whose shape
is the same in both versions (pod templates, rollout strategy, engine runtimes, scaling adapter, service
ports, role templates, the status) are v1alpha1's (rbg/api/v1alpha1.py), imported, so both versions
share one definition. The checks upstream makes by CEL are CEL rules here too (for the CRD) and model
validators with upstream's messages (for anything that reads the object through the model).

rbg/api/conversion.py converts these objects to and from v1alpha1.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from rbg.api import v1alpha1 as _v1
from rbg.api.base import ApiModel, FreeForm, ObjectMeta, PodTemplateSpec, ServicePort, cel

GROUP = _v1.GROUP
VERSION = "v1alpha2"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RoleBasedGroup"
MAX_ROLES = _v1.MAX_ROLES

#: role annotation naming the role's workload as "<apiVersion>/<kind>" (split at the last "/")
WORKLOAD_TYPE = "rbg.workloads.x-k8s.io/role-workload-type"
#: upstream's workload when a role has no WORKLOAD_TYPE annotation
DEFAULT_WORKLOAD = "workloads.x-k8s.io/v1alpha2/RoleInstanceSet"

# leaf types shared with v1alpha1 (the same shape in both versions)
IntOrString = _v1.IntOrString
RoleName = _v1.RoleName
RoleTemplate = _v1.RoleTemplate
RolloutStrategy = _v1.RolloutStrategy
RollingUpdate = _v1.RollingUpdate
InPlaceUpdateStrategy = _v1.InPlaceUpdateStrategy
EngineRuntime = _v1.EngineRuntime
ScalingAdapter = _v1.ScalingAdapter
RoleBasedGroupStatus = _v1.RoleBasedGroupStatus
RoleStatus = _v1.RoleStatus
Condition = _v1.Condition

# upstream's CEL messages (its CRD, api/workloads/v1alpha2/rolebasedgroup_types.go)
EXCLUSIVE_PATTERNS = "standalonePattern and leaderWorkerPattern are mutually exclusive"
EXCLUSIVE_TEMPLATES = "template and templateRef are mutually exclusive"
DELAYS = "maxDelaySeconds must be greater than or equal to baseDelaySeconds"
LEADER_ONLY = (
    "leaderWorkerPattern.sharedServiceSelection=LeaderOnly is only supported for RoleInstanceSet"
    " + leaderWorkerPattern"
)

RestartPolicyType = Literal["None", "RecreateRoleInstanceOnPodRestart"]


class TemplateRef(ApiModel):
    name: RoleName
    """Name of an entry in spec.roleTemplates whose pod template this role starts from."""
    patch: FreeForm | None = None
    """Strategic-merge patch applied to the referenced template (the controller requires it with a
    templateRef; {} for no change)."""


class RestartPolicyConfig(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.baseDelaySeconds) || !has(self.maxDelaySeconds)"
                    " || self.maxDelaySeconds >= self.baseDelaySeconds",
                    DELAYS,
                )
            ]
        }
    )

    type: RestartPolicyType | None = None
    """What is recreated when a pod of the role fails or a container restarts: None (only what
    Kubernetes does) or RecreateRoleInstanceOnPodRestart (the whole instance: every pod of the leader/worker
    group or of the components); unset: RecreateRoleInstanceOnPodRestart. Wins over the deprecated
    restartPolicy."""
    base_delay_seconds: int = Field(30, ge=0, le=86_400)
    """Wait before the second recreation of an instance (the first is immediate); doubled for each
    further one: min(base * 2^(restarts-1), maxDelaySeconds)."""
    max_delay_seconds: int = Field(600, ge=0, le=86_400)
    """The longest wait between two recreations of an instance."""

    @model_validator(mode="after")
    def _delays(self) -> RestartPolicyConfig:
        if self.max_delay_seconds < self.base_delay_seconds:
            raise ValueError(DELAYS)
        return self


_TEMPLATES_CEL = cel("!(has(self.template) && has(self.templateRef))", EXCLUSIVE_TEMPLATES)


class StandalonePattern(ApiModel):
    """One pod per instance."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_TEMPLATES_CEL]})

    template: PodTemplateSpec | None = None
    """The pod template, inline (exclusive with templateRef)."""
    template_ref: TemplateRef | None = None
    """Start from a template of spec.roleTemplates, changed by templateRef.patch."""

    @model_validator(mode="after")
    def _one_template(self) -> StandalonePattern:
        if self.template is not None and self.template_ref is not None:
            raise ValueError(EXCLUSIVE_TEMPLATES)
        return self


class LeaderWorkerPattern(ApiModel):
    """Each instance is a group of `size` pods: a leader and size - 1 workers."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_TEMPLATES_CEL]})

    size: int = Field(1, ge=1)
    """Pods per instance, the leader included (1: a leader alone)."""
    template: PodTemplateSpec | None = None
    """The pod template of leader and workers, inline (exclusive with templateRef)."""
    template_ref: TemplateRef | None = None
    """Start from a template of spec.roleTemplates, changed by templateRef.patch."""
    leader_template_patch: FreeForm | None = None
    """Strategic-merge patch applied to the template for the leader pod."""
    worker_template_patch: FreeForm | None = None
    """Strategic-merge patch applied to the template for the worker pods."""
    shared_service_selection: Literal["All", "LeaderOnly"] | None = None
    """Which pods the role's headless Service selects: All, or LeaderOnly (RoleInstanceSet roles only);
    unset: LeaderOnly for a RoleInstanceSet role, All for any other workload."""
    restart_policy: RestartPolicyType | None = None
    """Deprecated: use restartPolicyConfig.type (which wins); kept for manifests of upstream v0.7."""
    restart_policy_config: RestartPolicyConfig | None = None
    """What a pod failure recreates, and the backoff between recreations."""

    @model_validator(mode="after")
    def _one_template(self) -> LeaderWorkerPattern:
        if self.template is not None and self.template_ref is not None:
            raise ValueError(EXCLUSIVE_TEMPLATES)
        return self


class Component(ApiModel):
    name: str = Field(min_length=1)
    """Name of the component (e.g. leader, worker, router), unique in the role."""
    size: int | None = Field(None, ge=0)
    """Pods of this component in each instance."""
    service_name: str | None = None
    """The Service that governs this component's pods (default: the role's headless Service)."""
    labels: dict[str, str] | None = None
    """Labels merged into every pod of the component, over those of the template."""
    annotations: dict[str, str] | None = None
    """Annotations merged into every pod of the component, over those of the template (e.g. the port
    allocator's or component ordering's JSON)."""
    template: FreeForm
    """The pod template of the component's pods."""


class CustomComponentsPattern(ApiModel):
    """Each instance is several heterogeneous pods: `size` pods of each component."""

    components: list[Component] | None = Field(None, max_length=MAX_ROLES)
    """The components of one instance."""
    restart_policy: RestartPolicyType | None = None
    """Deprecated: use restartPolicyConfig.type (which wins); kept for manifests of upstream v0.7."""
    restart_policy_config: RestartPolicyConfig | None = None
    """What a pod failure recreates, and the backoff between recreations."""


class RoleSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("!(has(self.standalonePattern) && has(self.leaderWorkerPattern))", EXCLUSIVE_PATTERNS),
                cel(
                    "!has(self.leaderWorkerPattern) || !has(self.leaderWorkerPattern.sharedServiceSelection)"
                    " || self.leaderWorkerPattern.sharedServiceSelection != 'LeaderOnly'"
                    " || !has(self.annotations) || !('" + WORKLOAD_TYPE + "' in self.annotations)"
                    " || self.annotations['" + WORKLOAD_TYPE + "'] == '" + DEFAULT_WORKLOAD + "'",
                    LEADER_ONLY,
                ),
            ]
        }
    )

    name: RoleName
    """Name of the role, unique in the group; names its workload {group}-{role}."""
    labels: dict[str, str] | None = None
    """Labels added to the role's workload."""
    annotations: dict[str, str] | None = None
    """Annotations added to the role's workload; `rbg.workloads.x-k8s.io/role-workload-type:
    <apiVersion>/<kind>` chooses the workload (apps/v1/StatefulSet, apps/v1/Deployment,
    leaderworkerset.x-k8s.io/v1/LeaderWorkerSet; unset: upstream's RoleInstanceSet)."""
    replicas: int = Field(1, ge=0, le=100_000)
    """Number of instances of the role (an instance is one pod, a leader/worker group, or one set of
    components)."""
    rollout_strategy: RolloutStrategy | None = None
    """How a template change rolls out across the role's instances."""
    dependencies: list[Annotated[str, Field(max_length=63)]] | None = Field(None, max_length=MAX_ROLES)
    """Roles that must be Ready before this role starts."""
    min_ready_seconds: int = Field(0, ge=0)
    """Seconds a new pod or instance must be ready before it counts as available."""
    pod_management_policy: Literal["OrderedReady", "Parallel"] = "Parallel"
    """How instances are created on the first scale-up: Parallel (all at once) or OrderedReady (one at a
    time, each once the previous is Ready)."""
    standalone_pattern: StandalonePattern | None = None
    """One pod per instance (exclusive with leaderWorkerPattern)."""
    leader_worker_pattern: LeaderWorkerPattern | None = None
    """A leader and size - 1 workers per instance."""
    custom_components_pattern: CustomComponentsPattern | None = None
    """Several heterogeneous pods (components) per instance."""
    service_ports: list[ServicePort] | None = None
    """Ports listed for the role in the discovery config."""
    engine_runtimes: list[EngineRuntime] | None = None
    """Engine runtime profiles injected into the role's pods."""
    scaling_adapter: ScalingAdapter | None = None
    """Scaling adapter of the role."""

    @model_validator(mode="after")
    def _checks(self) -> RoleSpec:
        if self.standalone_pattern is not None and self.leader_worker_pattern is not None:
            raise ValueError(EXCLUSIVE_PATTERNS)
        lwp = self.leader_worker_pattern
        if (
            lwp is not None
            and lwp.shared_service_selection == "LeaderOnly"
            and self.workload_type != DEFAULT_WORKLOAD
        ):
            raise ValueError(LEADER_ONLY)
        return self

    @property
    def workload_type(self) -> str:
        """The workload as "<apiVersion>/<kind>": the role-workload-type annotation, or upstream's default."""
        return (self.annotations or {}).get(WORKLOAD_TYPE, DEFAULT_WORKLOAD)


class RoleBasedGroupSpec(ApiModel):
    """The roles of the group."""

    roles: list[RoleSpec] = Field(
        min_length=1,
        max_length=MAX_ROLES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """The roles of the group (router, prefill, decode, ...)."""
    role_templates: list[RoleTemplate] | None = Field(
        None,
        max_length=MAX_ROLES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Pod templates roles can share through templateRef."""


class RoleBasedGroup(ApiModel):
    """The whole object."""

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RoleBasedGroupSpec
    status: RoleBasedGroupStatus | None = None
