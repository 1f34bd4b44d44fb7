"""The RoleBasedGroup's status (v1alpha1): what the operator observed and keeps, written by it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rbg.api.base import ApiModel


class Condition(ApiModel):
    type: str = Field(max_length=316)
    """Ready (every role's pods are ready) or Progressing (the group is being created or changed)."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    observed_generation: int | None = Field(None, ge=0)
    """The metadata.generation this condition describes."""
    last_transition_time: str
    """When the status last changed."""
    reason: str = Field(max_length=1024)
    """Machine-readable reason, e.g. AllRolesReady, RoleNotReady, DependencyNotMet, InvalidSpec."""
    message: str = Field("", max_length=32768)
    """Human-readable details."""


class RoleStatus(ApiModel):
    name: str
    """The role."""
    ready_replicas: int = 0
    """Pods of the role that are ready."""
    replicas: int = 0
    """Pods the role should have."""
    updated_replicas: int = 0
    """Pods of the role on its current template."""


class BatchStatus(ApiModel):
    index: int
    """The batch: role pods with ordinals index*ratio .. index*ratio + ratio - 1."""
    domain: str | None = None
    """The value of the topology key its pods are pinned to."""
    phase: Literal["Pending", "Planned", "Bound", "Stuck"] = "Pending"
    """Pending (waiting for its turn or a domain), Planned (released into its domain), Bound (every pod
    scheduled), Stuck (waiting for a domain, room or the scheduler for longer than batchTimeoutSeconds)."""
    since: str | None = None
    """When the batch entered its phase in its domain (RFC 3339); the batch timeout counts from it, so a
    restart of the operator resumes the count."""
    message: str | None = None
    """Why the batch waits, moves or is Stuck (the planner's or the scheduler's reason)."""


class CoordinationStatus(ApiModel):
    name: str
    """The coordination."""
    type: str
    """AffinityScheduling."""
    phase: Literal["Pending", "InProgress", "Completed", "Stuck"]
    """Completed when every batch is bound; Stuck when a batch found no domain in time."""
    total_batches: int = 0
    """Batches of the coordination (replicas / ratio)."""
    placed_batches: int = 0
    """Batches released into a domain (planned or bound)."""
    batches: list[BatchStatus] | None = None
    """Per batch: its domain and phase."""
    message: str = ""
    """Why the coordination waits, e.g. the planner's reason for a batch without a domain."""
    last_transition_time: str | None = None
    """When the phase last changed."""


class RestartRecord(ApiModel):
    scope: str
    """Empty for the whole group, else `<role>/<instance>` (`<role>/*` for a Deployment role's pods)."""
    count: int = 0
    """Recreations since the scope was last stable."""
    last_restart_time: str | None = None
    """When the last recreation began."""
    failed: bool = False
    """The bound (restartPolicyConfig.maxRestarts) was reached."""
    trigger: str = ""
    """The pod and container that caused the last recreation."""


class RestartStatus(ApiModel):
    """Failure recovery's bookkeeping (a restarted operator resumes from it)."""

    recreating: list[str] | None = None
    """Uids of the pods the recreation in flight deletes."""
    records: list[RestartRecord] | None = None
    """Per scope: how often and when it was recreated."""
    revision: str | None = None
    """The group's revision when this was written (a change of the roles clears a Failed scope)."""
    baseline: dict[str, int] | None = None
    """Per pod uid, container restarts no recreation is owed for (seen before the policy applied, or
    while the role rolled)."""


class CoordinationProgress(ApiModel):
    name: str
    """The coordination."""
    type: Literal["RollingUpdate", "Scaling"]
    """What it coordinates."""
    phase: Literal["InProgress", "Completed"]
    """Completed when every role is updated (rolling update) or at its replicas (scaling)."""
    progress: str = ""
    """Per role: updated / replicas (rolling update) or replicas written / desired (scaling)."""


class RoleBasedGroupStatus(ApiModel):
    """What the operator observed, written by it."""

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    conditions: list[Condition] | None = Field(
        None, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    )
    """Ready and Progressing."""
    role_statuses: list[RoleStatus] | None = Field(
        None, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
    )
    """Per role: desired, ready and updated pods (counts are written at most every few seconds)."""
    coordination_status: list[CoordinationStatus] | None = Field(
        None, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
    )
    """Per AffinityScheduling coordination: its batches, where they are and whether they are bound."""
    coordination_progress: list[CoordinationProgress] | None = Field(
        None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "type"]},
    )
    """Per coordinated rolling update or scaling: how far each role is."""
    restart_status: RestartStatus | None = None
    """Failure recovery (restartPolicy): the recreation in flight and the count per scope."""
    current_revision: str | None = None
    """The ControllerRevision holding the group's current roles (`rbg rollout history` lists them)."""
