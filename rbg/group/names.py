"""Names, labels and annotations of the objects a RoleBasedGroup owns (upstream's key set)."""

from __future__ import annotations

import hashlib

PREFIX = "rbg.workloads.x-k8s.io/"
GROUP_NAME = PREFIX + "group-name"
ROLE_NAME = PREFIX + "role-name"
GROUP_UID = PREFIX + "group-uid"
ROLE_SIZE = PREFIX + "role-size"
POD_INDEX = "apps.kubernetes.io/pod-index"
FIELD_MANAGER = "rbg"
CONFIG_VOLUME = "rbg-cluster-config"
CONFIG_MOUNT = "/etc/rbg"
CONFIG_KEY = "config.yaml"
#: a StatefulSet's pods carry `controller-revision-hash: <sts>-<10 chars>`, a label value of <= 63 chars
MAX_STATEFULSET_NAME = 52


def _truncate(name: str, limit: int = 63) -> str:
    return name[:limit].rstrip("-")


def workload_name(group: str, role: str) -> str:
    return _truncate(f"{group}-{role}")


def service_name(group: str, role: str) -> str:
    # the "s-" prefix makes it a DNS-1035 label even when the group name starts with a digit
    return _truncate(f"s-{group}-{role}")


def config_map_name(group: str) -> str:
    return group


def group_uid(namespace: str, name: str) -> str:
    """Upstream's `group-uid` label: sha1 of "namespace/name" (stable across re-creation, unlike the UID)."""
    return hashlib.sha1(f"{namespace}/{name}".encode(), usedforsecurity=False).hexdigest()


def selector(group: str, role: str) -> dict[str, str]:
    return {GROUP_NAME: group, ROLE_NAME: role}
