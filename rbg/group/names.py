"""Names, labels and annotations of the objects a RoleBasedGroup owns (upstream's key set)."""

from __future__ import annotations

import hashlib

PREFIX = "rbg.workloads.x-k8s.io/"
GROUP_NAME = PREFIX + "group-name"
ROLE_NAME = PREFIX + "role-name"
GROUP_UID = PREFIX + "group-uid"
ROLE_SIZE = PREFIX + "role-size"
#: digest of the body last applied to a child; a different digest means "apply again"
APPLIED_HASH = PREFIX + "applied-hash"
POD_INDEX = "apps.kubernetes.io/pod-index"
#: gang scheduling (spec.podGroupPolicy): the scheduler-plugins coscheduling label and scheduler, and the
#: Volcano annotation
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
COSCHEDULER = "scheduler-plugins-scheduler"
VOLCANO_GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
#: on the pods of roles placed by an AffinityScheduling coordination: the pod webhook's objectSelector
COORDINATED = PREFIX + "coordinated"
FIELD_MANAGER = "rbg"
CONFIG_VOLUME = "rbg-cluster-config"
CONFIG_MOUNT = "/etc/rbg"
CONFIG_KEY = "config.yaml"
#: a StatefulSet's pods carry `controller-revision-hash: <sts>-<10 chars>`, a label value of <= 63 chars
MAX_STATEFULSET_NAME = 52


MAX_NAME = 63

#: role annotations that speak to the API, not to the role's workload: the conversion's
#: (`conversion.workloads.x-k8s.io/...`) and the workload-type system key, filtered as upstream does
CONVERSION_PREFIX = "conversion.workloads.x-k8s.io/"
WORKLOAD_TYPE = PREFIX + "role-workload-type"
# a v1alpha2 role's podManagementPolicy, carried by conversion (rbg/api/conversion.py); a StatefulSet's
POD_MANAGEMENT_POLICY = CONVERSION_PREFIX + "v1alpha2-pod-management-policy"
# a v1alpha2 leaderWorkerPattern's sharedServiceSelection (All | LeaderOnly), carried the same way
SHARED_SERVICE_SELECTION = CONVERSION_PREFIX + "v1alpha2-shared-service-selection"
LWS_WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"  # "0" on a LeaderWorkerSet's leaders
#: on the pods of a RoleInstanceSet role (written by its controller, rbg.instances.labels, D42)
ROLE_INSTANCE_NAME = PREFIX + "role-instance-name"
ROLE_INSTANCE_INDEX = PREFIX + "role-instance-index"
COMPONENT_NAME = PREFIX + "component-name"


def workload_annotations(role_annotations: dict[str, str] | None) -> dict[str, str]:
    """The role's annotations its workload carries: all but the API's own (above)."""
    return {
        k: v
        for k, v in (role_annotations or {}).items()
        if not k.startswith(CONVERSION_PREFIX) and k != WORKLOAD_TYPE
    }


def workload_name(group: str, role: str) -> str:
    # never truncated (upstream truncates, so two roles can end up sharing one object); validation
    # rejects groups whose names would be too long
    return f"{group}-{role}"


def service_name(group: str, role: str) -> str:
    # the "s-" prefix makes it a DNS-1035 label even when the group name starts with a digit
    return f"s-{group}-{role}"


def config_map_name(group: str) -> str:
    return group


def group_uid(namespace: str, name: str) -> str:
    """Upstream's `group-uid` label: sha1 of "namespace/name" (stable across re-creation, unlike the UID)."""
    return hashlib.sha1(f"{namespace}/{name}".encode(), usedforsecurity=False).hexdigest()


def selector(group: str, role: str) -> dict[str, str]:
    return {GROUP_NAME: group, ROLE_NAME: role}


def adapter_name(group: str, role: str) -> str:
    """The scaling adapter of a role with scalingAdapter.enable (upstream's name)."""
    return f"{group}-{role}"
