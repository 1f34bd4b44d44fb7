"""LeaderWorkerSet, leaderworkerset.x-k8s.io/v1 — compatible with kubernetes-sigs/lws, plus KEP-162.

Unmodified upstream manifests are accepted. The one addition is
`spec.leaderWorkerTemplate.topologyPlacementPolicy` (KEP-162, never merged upstream): Exclusive, Colocated
or None per topology key. Defaults are those of upstream's defaulting webhook, set here by the CRD schema;
what a schema cannot check is checked by the admission webhook (rbg.leaderworker.validation).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from rbg.api.base import ApiModel, ObjectMeta, PersistentVolumeClaimTemplate, PodTemplateSpec

GROUP = "leaderworkerset.x-k8s.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"

IntOrString = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]


class SubGroupPolicy(ApiModel):
    """Subgroups of a group: consecutive pods that belong together (e.g. one per accelerator slice)."""

    sub_group_policy_type: Literal["LeaderWorker", "LeaderExcluded"] | None = "LeaderWorker"
    """LeaderWorker: the leader is in subgroup 0. LeaderExcluded: the leader is in no subgroup, and
    (size - 1) must be a multiple of subGroupSize."""
    sub_group_size: int | None = Field(None, ge=1)
    """Pods per subgroup; size or size - 1 must be a multiple of it. Cannot change after creation."""


class TopologyPlacementPolicy(ApiModel):
    """Where the pods of a group go, per domain of a node label (KEP-162)."""

    type: Literal["Exclusive", "Colocated", "None"] = "None"
    """Exclusive: every pod of a group in one domain, and no two groups share a domain. Colocated: every
    pod of a group in one domain; several groups may share one. None: no constraint."""
    topology_key: str | None = Field(None, max_length=316)
    """Node label whose values are the domains, e.g. kubernetes.io/hostname or a rack label. Required for
    Exclusive and Colocated."""


class PersistentVolumeClaimRetentionPolicy(ApiModel):
    """What happens to the claims of volumeClaimTemplates when pods are deleted or scaled away."""

    when_deleted: Literal["Retain", "Delete"] | None = None
    """Retain (default) or Delete the claims when the StatefulSet is deleted."""
    when_scaled: Literal["Retain", "Delete"] | None = None
    """Retain (default) or Delete the claims of pods removed by a scale-down."""


class LeaderWorkerTemplate(ApiModel):
    """The pods of one group: a leader and size - 1 workers."""

    leader_template: PodTemplateSpec | None = None
    """Pod template of the leader; the workerTemplate is used when it is not set."""
    worker_template: PodTemplateSpec
    """Pod template of the workers (and of the leader when leaderTemplate is not set)."""
    size: int = Field(1, ge=1)
    """Pods per group, leader included. Changing it rolls the groups."""
    restart_policy: Literal["RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None", "Default"] = (
        "RecreateGroupOnPodRestart"
    )
    """What happens when a pod of a group restarts or is deleted: RecreateGroupOnPodRestart (default)
    recreates the whole group; RecreateGroupAfterStart does so only once every pod of the group has started;
    None (or the deprecated Default) restarts only that pod."""
    sub_group_policy: SubGroupPolicy | None = None
    """Split each group into subgroups of subGroupSize pods."""
    volume_claim_templates: list[PersistentVolumeClaimTemplate] | None = None
    """Claims every pod of a group gets, as in a StatefulSet."""
    persistent_volume_claim_retention_policy: PersistentVolumeClaimRetentionPolicy | None = None
    """What happens to those claims on deletion and scale-down."""
    topology_placement_policy: TopologyPlacementPolicy | None = None
    """Placement of each group in the domains of a node label (KEP-162; not in upstream LWS)."""


class RollingUpdateConfiguration(ApiModel):
    """Limits of a group-wise rolling update."""

    partition: int | None = Field(0, ge=0)
    """Groups with an index below this keep the old template."""
    max_unavailable: IntOrString = 1
    """Groups (a number, or a percentage of replicas rounded down) that may be unavailable during an
    update."""
    max_surge: IntOrString = 0
    """Extra groups (a number, or a percentage of replicas rounded up) created during an update."""


class RolloutStrategy(ApiModel):
    type: Literal["RollingUpdate"] = "RollingUpdate"
    """Only RollingUpdate: groups are replaced one step at a time."""
    rolling_update_configuration: RollingUpdateConfiguration = Field(
        default_factory=RollingUpdateConfiguration,
        json_schema_extra={"default": {"maxUnavailable": 1, "maxSurge": 0, "partition": 0}},
    )
    """Limits of the rolling update."""


class NetworkConfig(ApiModel):
    subdomain_policy: Literal["Shared", "UniquePerReplica"] = "Shared"
    """Shared: one headless Service {name} for all pods. UniquePerReplica: one headless Service
    {name}-{group} per group."""


class LeaderWorkerSetSpec(ApiModel):
    """Groups of pods, each a leader and its workers, that start, fail and update as one."""

    replicas: int = Field(1, ge=0, le=1_000_000)
    """Number of groups."""
    leader_worker_template: LeaderWorkerTemplate
    """The pods of one group."""
    rollout_strategy: RolloutStrategy = Field(
        default_factory=RolloutStrategy,
        json_schema_extra={"default": {"type": "RollingUpdate"}},
    )
    """How a template change rolls across the groups."""
    startup_policy: Literal["LeaderCreated", "LeaderReady"] = "LeaderCreated"
    """LeaderCreated: workers are created with their leader. LeaderReady: only once the leader is Ready."""
    network_config: NetworkConfig | None = Field(None, json_schema_extra={"default": {}})
    """Headless Services of the pods."""


class Condition(ApiModel):
    type: str = Field(max_length=316)
    """Available (every group ready), Progressing (groups being created) or UpdateInProgress (a rolling
    update runs)."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    last_transition_time: str
    """When the status last changed."""
    reason: str = Field(max_length=1024)
    """Machine-readable reason, e.g. AllGroupsReady, GroupsProgressing, GroupsUpdating."""
    message: str = Field("", max_length=32768)
    """Human-readable details."""
    observed_generation: int | None = Field(None, ge=0)
    """The metadata.generation this condition describes."""


class LeaderWorkerSetStatus(ApiModel):
    """What the operator observed, written by it."""

    conditions: list[Condition] | None = Field(
        None, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    )
    """Available, Progressing and UpdateInProgress."""
    ready_replicas: int | None = None
    """Groups whose leader and workers are all ready."""
    updated_replicas: int | None = None
    """Groups on the current template."""
    replicas: int | None = None
    """Groups that exist, surge groups of a rolling update included."""
    hpa_pod_selector: str | None = None
    """Label selector of the leaders, for the scale subresource (HPA)."""
    observed_generation: int | None = None
    """The metadata.generation the status describes."""


class LeaderWorkerSet(ApiModel):
    """The whole object, as the controller reads it from its cache."""

    api_version: str = API_VERSION
    kind: str = "LeaderWorkerSet"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LeaderWorkerSetSpec
    status: LeaderWorkerSetStatus | None = None
