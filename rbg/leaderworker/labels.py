"""Labels, annotations and env vars of LeaderWorkerSet objects: upstream's key set, so selectors,
dashboards and tools written for kubernetes-sigs/lws keep working."""

from __future__ import annotations

import hashlib

PREFIX = "leaderworkerset.sigs.k8s.io/"
NAME = PREFIX + "name"
WORKER_INDEX = PREFIX + "worker-index"
GROUP_INDEX = PREFIX + "group-index"
GROUP_KEY = PREFIX + "group-key"
REVISION = PREFIX + "template-revision-hash"
SUBGROUP_INDEX = PREFIX + "subgroup-index"
SUBGROUP_KEY = PREFIX + "subgroup-key"

SIZE = PREFIX + "size"
REPLICAS = PREFIX + "replicas"
LEADER_NAME = PREFIX + "leader-name"
EXCLUSIVE = PREFIX + "exclusive-topology"
#: KEP-162 Colocated (the annotation name of the unmerged upstream implementation, lws#267)
COLOCATED = PREFIX + "colocated-topology"
SUBGROUP_SIZE = PREFIX + "subgroup-size"
SUBGROUP_POLICY_TYPE = PREFIX + "subgroup-policy-type"
SUBGROUP_EXCLUSIVE = PREFIX + "subgroup-exclusive-topology"
SUBDOMAIN_POLICY = PREFIX + "subdomainPolicy"
AFTER_START = PREFIX + "experimental-recreate-group-after-start"
#: on a leader held by the placement gate: why no domain holds its whole group yet (rbg.coordination.groups)
PLACEMENT_WHY = "rbg.workloads.x-k8s.io/placement"
#: digest of the body last applied to a child (same mechanism as RoleBasedGroup children)
APPLIED_HASH = PREFIX + "applied-hash"

ENV_LEADER_ADDRESS = "LWS_LEADER_ADDRESS"
ENV_GROUP_SIZE = "LWS_GROUP_SIZE"
ENV_WORKER_INDEX = "LWS_WORKER_INDEX"

FIELD_MANAGER = "rbg-lws"


def group_key(namespace: str, leader: str) -> str:
    """Upstream's group key: sha1 of "<namespace>/<leader pod name>", hex."""
    return hashlib.sha1(f"{namespace}/{leader}".encode()).hexdigest()  # noqa: S324 - an id, not security


def subgroup_key(leader: str, index: int) -> str:
    return hashlib.sha1(f"{leader}/{index}".encode()).hexdigest()  # noqa: S324 - an id, not security


def ordinal(pod_name: str) -> int | None:
    """The StatefulSet ordinal at the end of a pod name."""
    _, _, tail = pod_name.rpartition("-")
    return int(tail) if tail.isdigit() else None


def hpa_selector(lws: str) -> str:
    return f"{NAME}={lws},{WORKER_INDEX}=0"
