"""RoleInstanceSet, workloads.x-k8s.io/v1alpha2: the workload of a customComponentsPattern role (D42).

An instance is several heterogeneous pods: `size` pods of each component. This operator runs each
component of each instance as a StatefulSet `{set}-{instance index}-{component}`, so the pods have
upstream's names and DNS records (`{set}-{i}-{component}-{id}.{service}`). The spec is the part of
upstream's RoleInstanceSet this operator acts on; the RoleBasedGroup controller writes it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from rbg.api.base import DNS_LABEL, ApiModel, ObjectMeta, PodTemplateSpec
from rbg.api.hub import MAX_ROLES

GROUP = "workloads.x-k8s.io"
VERSION = "v1alpha2"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RoleInstanceSet"
PLURAL = "roleinstancesets"

IntOrString = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]


class InstanceComponent(ApiModel):
    """One kind of pod in every instance."""

    name: str = Field(min_length=1, max_length=40, pattern=DNS_LABEL)
    """Name of the component, unique in the set; names its StatefulSets {set}-{index}-{name}."""
    size: int = Field(1, ge=0, le=1000)
    """Pods of this component in each instance."""
    service_name: str | None = Field(None, max_length=63)
    """The headless Service governing the component's pods (their DNS subdomain)."""
    template: PodTemplateSpec
    """The pod template of the component's pods."""


class RoleInstanceTemplate(ApiModel):
    """What every instance is made of."""

    components: list[InstanceComponent] = Field(min_length=1, max_length=MAX_ROLES)
    """The components of one instance, in the order they are listed for discovery."""


class UpdateStrategy(ApiModel):
    """How a changed template reaches the instances: instance by instance, highest index first."""

    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    """RollingUpdate: at most maxUnavailable instances are replaced at a time. Recreate: every instance
    at once."""
    partition: int = Field(0, ge=0)
    """Instances with an index below it keep the old template."""
    max_unavailable: IntOrString = 1
    """Instances that may be unavailable while they are updated: a number or a percentage of replicas
    (rounded down, at least 1)."""
    paused: bool = False
    """No instance starts updating while true; those updating finish."""


class RoleInstanceSetSpec(ApiModel):
    """The instances of the set and what each is made of."""

    replicas: int = Field(1, ge=0, le=100_000)
    """Number of instances."""
    selector: dict[str, str] = Field(default_factory=dict)
    """Labels every pod of the set carries."""
    role_instance_template: RoleInstanceTemplate
    """The components of each instance."""
    update_strategy: UpdateStrategy = Field(default_factory=UpdateStrategy)
    """How a template change rolls out across the instances."""
    min_ready_seconds: int = Field(0, ge=0)
    """Seconds a new pod must be ready before it counts as available."""


class RoleInstanceSetStatus(ApiModel):
    """What the set's StatefulSets report, counted in instances."""

    observed_generation: int | None = None
    """The generation this status describes."""
    replicas: int | None = None
    """Instances that exist (at least one of their StatefulSets)."""
    ready_replicas: int | None = None
    """Instances whose every component has all its pods available (an instance not yet updated counts
    with what it runs)."""
    updated_replicas: int | None = None
    """Instances on the current template."""
    updated_ready_replicas: int | None = None
    """Instances on the current template and ready."""
    update_revision: str | None = None
    """The current template's revision (the role-revision label of its pods)."""
    label_selector: str | None = None
    """The pods of the set, as a label selector (the scale subresource's)."""
    made_replicas: int | None = None
    """Instances made and not scaled away since: one below it with no StatefulSet left was lost (made
    again at once, counted unavailable in a rollout), not a new one."""
    waiting: list[str] | None = None
    """Components not created yet, `{index}-{component}`: waiting for the ones they start after, or (a
    new instance) for a rollout to finish first."""


class RoleInstanceSet(ApiModel):
    """A set of instances, each made of several components."""

    api_version: str = API_VERSION
    kind: Literal["RoleInstanceSet"] = "RoleInstanceSet"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RoleInstanceSetSpec
    status: RoleInstanceSetStatus | None = None
