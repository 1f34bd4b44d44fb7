"""RoleBasedGroupSet, workloads.x-k8s.io/v1alpha1: `replicas` copies of one group, `{set}-{i}`.

Both shapes in use are accepted: upstream v1alpha1's `spec.template` (a group's spec) and the seed's and
v1alpha2's `spec.groupTemplate {labels, annotations, spec}`.

The internal (hub) model of the kind, also its served v1alpha1 schema (rbg/api/groupset_v1alpha1.py re-
exports it, D38)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from rbg.api.base import ApiModel, ObjectMeta
from rbg.api.hub import GROUP, HUB_VERSION, MAX_ROLES, IntOrString, RoleBasedGroupSpec, RoleName, RoleSpec

KIND = "RoleBasedGroupSet"
PLURAL = "rolebasedgroupsets"
API_VERSION = f"{GROUP}/{HUB_VERSION}"


class SeedRole(RoleSpec):
    """A role as the seed's quick start writes it: named by `role` (or `name`)."""

    name: RoleName | None = None  # type: ignore[assignment]
    """The role's name (or `role`)."""
    role: RoleName | None = None
    """The role's name, as the seed's quick start spells it."""


class GroupTemplate(ApiModel):
    labels: dict[str, str] | None = None
    """Labels of every child group."""
    annotations: dict[str, str] | None = None
    """Annotations of every child group (e.g. the group exclusive topology: one domain per group)."""
    spec: RoleBasedGroupSpec | None = None
    """The spec of every child group."""
    roles: list[SeedRole] | None = Field(None, max_length=MAX_ROLES)
    """The roles of every child group, without `spec` (the seed's quick start); each named by `role` or
    `name`. Use spec or roles."""


Partition = Annotated[
    Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=r"^[0-9]+%$")],
    Field(
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [
                {
                    "rule": "type(self) == int ? self >= 0 : self.matches('^[0-9]+%$')",
                    "message": "must be a number of groups (0 or more) or a percentage such as 50%",
                }
            ],
        }
    ),
]


class GroupSetRollout(ApiModel):
    type: Literal["Recreate", "InPlaceUpdate"] | None = None
    """How the pods inside one child group change: Recreate (the default, the seed's atomic rollout):
    every pod of a role whose template changed is replaced at once, each role rolled with
    `rollingUpdate.type: Recreate` unless the role sets a type of its own; InPlaceUpdate: the child
    group's spec is updated and each role rolls as its own rolloutStrategy says (one pod at a time by
    default)."""
    max_unavailable: IntOrString | None = 1
    """How many child groups may be not Ready at once while a template change rolls (a number, or a
    percentage of replicas rounded down, at least 1)."""
    partition: Partition | None = None
    """Child groups with an index below it (a number, or a percentage of replicas rounded down) keep the
    old template."""


class RoleBasedGroupSetSpec(ApiModel):
    """How many copies of the group, and the group."""

    replicas: int = Field(1, ge=0)
    """Child groups `{set}-0` … `{set}-{replicas-1}`."""
    template: RoleBasedGroupSpec | None = None
    """The child groups' spec (upstream v1alpha1's shape); or use groupTemplate."""
    group_template: GroupTemplate | None = None
    """The child groups' labels, annotations and spec (the seed's and v1alpha2's shape)."""
    rollout_strategy: GroupSetRollout | None = None
    """How a template change rolls across the child groups: one group at a time by default, the next
    only once the previous is Ready on the new template."""


class GroupSetCondition(ApiModel):
    type: str
    """Ready."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = ""
    """AllReplicasReady or ReplicasNotReady."""
    message: str = ""
    """What is not ready."""
    last_transition_time: str | None = None
    """When the status last changed."""


class RoleBasedGroupSetStatus(ApiModel):
    """What the operator observed, written by it."""

    observed_generation: int | None = None
    """The generation of the spec this status is about."""
    replicas: int = 0
    """Child groups that exist."""
    ready_replicas: int = 0
    """Child groups that are Ready."""
    updated_replicas: int = 0
    """Child groups on the current template."""
    conditions: list[GroupSetCondition] | None = None
    """Ready when every child group is Ready on the current template."""


class RoleBasedGroupSet(ApiModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RoleBasedGroupSetSpec
    status: RoleBasedGroupSetStatus | None = None
