"""RoleBasedGroupSet, workloads.x-k8s.io/v1alpha2: `replicas` copies of one group, `{set}-{i}`.

Upstream's v1alpha2 shape (../shared/reference/upstream-rbg.md §1.4): the child groups are described by
`spec.groupTemplate {labels, annotations, spec}` (flat fields, not groupTemplate.metadata). The status is
v1alpha1's (rbg/api/groupset_v1alpha1.py), the same shape. rbg/api/conversion.py converts to and from
v1alpha1 (whose `template`, seed `roles` and `rolloutStrategy` have no field here and ride in
annotations).
"""

from __future__ import annotations

from pydantic import Field

from rbg.api import groupset_v1alpha1 as _v1
from rbg.api.base import ApiModel, ObjectMeta
from rbg.api.v1alpha2 import API_VERSION, RoleBasedGroupSpec

KIND = _v1.KIND
PLURAL = _v1.PLURAL

RoleBasedGroupSetStatus = _v1.RoleBasedGroupSetStatus
GroupSetCondition = _v1.GroupSetCondition


class GroupTemplate(ApiModel):
    labels: dict[str, str] | None = None
    """Labels of every child group."""
    annotations: dict[str, str] | None = None
    """Annotations of every child group (e.g. rbg.workloads.x-k8s.io/group-exclusive-topology: one
    topology domain per group, or the gang-scheduling annotations)."""
    spec: RoleBasedGroupSpec | None = None
    """The spec of every child group."""


class RoleBasedGroupSetSpec(ApiModel):
    """How many copies of the group, and the group."""

    replicas: int = Field(1, ge=0)
    """Child groups `{set}-0` … `{set}-{replicas-1}`."""
    group_template: GroupTemplate
    """The child groups' labels, annotations and spec."""


class RoleBasedGroupSet(ApiModel):
    """The whole object."""

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RoleBasedGroupSetSpec
    status: RoleBasedGroupSetStatus | None = None
