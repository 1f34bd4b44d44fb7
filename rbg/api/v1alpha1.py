"""RoleBasedGroup, workloads.x-k8s.io/v1alpha1 — a superset of upstream sgl-project/rbg v1alpha1.

Upstream manifests are accepted as they are; fields this operator does not act on yet (coordination,
podGroupPolicy behaviour, engineRuntimes, leaderWorkerSet, components) are validated and stored.
The CRD in config/crd is generated from these models (rbg/api/crd.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from rbg.api.base import (
    DNS_LABEL,
    PERCENT,
    ApiModel,
    Container,
    FreeForm,
    PodTemplateSpec,
    ServicePort,
    cel,
)

GROUP = "workloads.x-k8s.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MAX_ROLES = 64  # bounds every list CEL walks, so the API server can cost the rules

IntOrString = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]
RoleName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


class TemplateRef(ApiModel):
    name: RoleName


class RoleTemplate(ApiModel):
    name: RoleName
    template: PodTemplateSpec


class WorkloadSpec(ApiModel):
    api_version: str = Field(
        "apps/v1",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/v[0-9]+((alpha|beta)[0-9]+)?$",
    )
    kind: str = Field("StatefulSet", min_length=1, max_length=63)

    @property
    def ref(self) -> str:
        return f"{self.api_version}/{self.kind}"


class InPlaceUpdateStrategy(ApiModel):
    grace_period_seconds: int | None = Field(None, ge=0)


class RollingUpdate(ApiModel):
    """Values are checked by the admission webhook (CEL cannot bound an int-or-string's cost)."""

    type: Literal["InPlaceIfPossible", "Recreate", "RecreatePod", "InPlaceOnly"] | None = None
    partition: IntOrString | None = 0
    max_unavailable: IntOrString | None = 1
    max_surge: IntOrString | None = 0
    paused: bool | None = None
    in_place_update_strategy: InPlaceUpdateStrategy | None = None


class RolloutStrategy(ApiModel):
    type: Literal["RollingUpdate"] = "RollingUpdate"
    rolling_update: RollingUpdate | None = None


class LeaderWorkerTemplate(ApiModel):
    size: int | None = Field(1, ge=1)
    patch_leader_template: FreeForm | None = None
    patch_worker_template: FreeForm | None = None


class EngineRuntime(ApiModel):
    profile_name: str = Field(min_length=1, max_length=253)
    inject_containers: list[str] | None = None
    containers: list[Container] | None = None


class ScalingAdapter(ApiModel):
    enable: bool = False
    labels: dict[str, str] | None = None


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
                cel(
                    "!has(self.templateRef) || !has(self.workload)"
                    " || self.workload.kind != 'LeaderWorkerSet'",
                    "templateRef is not supported for LeaderWorkerSet workloads",
                ),
                cel(
                    "!has(self.workload) || self.workload.kind == 'InstanceSet'"
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
                    " && self.workload.kind in ['StatefulSet', 'Deployment'])",
                    "workload must be apps/v1 StatefulSet or apps/v1 Deployment"
                    " (LeaderWorkerSet and InstanceSet are not supported by this operator yet)",
                    ".workload",
                ),
            ]
        }
    )

    name: RoleName
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    replicas: int = Field(1, ge=0, le=100_000)
    rollout_strategy: RolloutStrategy | None = None
    restart_policy: Literal["None", "RecreateRBGOnPodRestart", "RecreateRoleInstanceOnPodRestart"] | None = (
        None
    )
    dependencies: list[Annotated[str, Field(max_length=63)]] | None = Field(None, max_length=MAX_ROLES)
    workload: WorkloadSpec = Field(
        default_factory=WorkloadSpec,
        json_schema_extra={"default": {"apiVersion": "apps/v1", "kind": "StatefulSet"}},
    )
    template: PodTemplateSpec | None = None
    template_ref: TemplateRef | None = None
    template_patch: FreeForm | None = None
    leader_worker_set: LeaderWorkerTemplate | None = None
    components: list[FreeForm] | None = None
    service_ports: list[ServicePort] | None = None
    engine_runtimes: list[EngineRuntime] | None = None
    scaling_adapter: ScalingAdapter | None = None
    min_ready_seconds: int = Field(0, ge=0)


class KubeSchedulingPolicy(ApiModel):
    schedule_timeout_seconds: int | None = Field(60, ge=0)


class VolcanoSchedulingPolicy(ApiModel):
    priority_class_name: str | None = None
    queue: str | None = None


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
    volcano_scheduling: VolcanoSchedulingPolicy | None = None


class CoordinationRollingUpdate(ApiModel):
    max_skew: str | None = Field(None, pattern=PERCENT)
    partition: str | None = Field(None, pattern=PERCENT)
    max_unavailable: str | None = Field(None, pattern=PERCENT)


class CoordinationScaling(ApiModel):
    max_skew: str | None = Field(None, pattern=PERCENT)
    progression: Literal["OrderScheduled", "OrderReady"] | None = None


class CoordinationStrategy(ApiModel):
    rolling_update: CoordinationRollingUpdate | None = None
    scaling: CoordinationScaling | None = None


class Coordination(ApiModel):
    name: RoleName
    roles: list[Annotated[str, Field(max_length=63)]] = Field(min_length=1, max_length=MAX_ROLES)
    strategy: CoordinationStrategy | None = None


class RoleBasedGroupSpec(ApiModel):
    roles: list[RoleSpec] = Field(
        min_length=1,
        max_length=MAX_ROLES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    role_templates: list[RoleTemplate] | None = Field(
        None,
        max_length=MAX_ROLES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    pod_group_policy: PodGroupPolicy | None = None
    coordination: list[Coordination] | None = Field(
        None,
        max_length=MAX_ROLES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class Condition(ApiModel):
    type: str = Field(max_length=316)
    status: Literal["True", "False", "Unknown"]
    observed_generation: int | None = Field(None, ge=0)
    last_transition_time: str
    reason: str = Field(max_length=1024)
    message: str = Field("", max_length=32768)


class RoleStatus(ApiModel):
    name: str
    ready_replicas: int = 0
    replicas: int = 0
    updated_replicas: int = 0


class RoleBasedGroupStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(
        None, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    )
    role_statuses: list[RoleStatus] | None = Field(
        None, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
    )


class ObjectMeta(ApiModel):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class RoleBasedGroup(ApiModel):
    """The whole object, as the controller reads it from its cache."""

    api_version: str = API_VERSION
    kind: str = "RoleBasedGroup"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RoleBasedGroupSpec
    status: RoleBasedGroupStatus | None = None
