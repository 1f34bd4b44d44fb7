"""RoleBasedGroupScalingAdapter, workloads.x-k8s.io/v1alpha1: one role of a group exposed through the scale
subresource, so that a HorizontalPodAutoscaler or KEDA can drive its replicas (upstream's shape).

The internal (hub) model of the kind, also its served v1alpha1 schema (rbg/api/scaling_v1alpha1.py re-
exports it, D38)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rbg.api.base import ApiModel, ObjectMeta
from rbg.api.hub import GROUP, HUB_VERSION

KIND = "RoleBasedGroupScalingAdapter"
PLURAL = "rolebasedgroupscalingadapters"
API_VERSION = f"{GROUP}/{HUB_VERSION}"


class ScaleTargetRef(ApiModel):
    name: str = Field(min_length=1, max_length=253)
    """The RoleBasedGroup, in the adapter's namespace."""
    role: str = Field(min_length=1, max_length=63)
    """The role of that group whose replicas the adapter drives."""


class ScalingAdapterSpec(ApiModel):
    """Which role the adapter drives, and the replicas an autoscaler asks for."""

    replicas: int | None = Field(None, ge=0)
    """The role's replicas, written through /scale by an autoscaler (set from the role when the adapter is
    first bound)."""
    scale_target_ref: ScaleTargetRef
    """The group and role."""


class ScalingAdapterStatus(ApiModel):
    """What the operator observed, written by it."""

    phase: Literal["", "NotBound", "Bound"] = ""
    """Bound once the group and role exist; NotBound while either is missing."""
    replicas: int = 0
    """The role's replicas."""
    ready_replicas: int = 0
    """The role's ready replicas (LeaderWorkerSet roles: ready groups)."""
    selector: str = ""
    """Label selector of the role's pods (leaders only for LeaderWorkerSet roles), for the autoscaler's
    metrics."""
    last_scale_time: str | None = None
    """When the adapter last changed the role's replicas."""
    message: str = ""
    """Why the last scaling was refused, if it was (e.g. a coordination's ratio)."""


class RoleBasedGroupScalingAdapter(ApiModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ScalingAdapterSpec
    status: ScalingAdapterStatus | None = None
