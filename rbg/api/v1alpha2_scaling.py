"""RoleBasedGroupScalingAdapter, workloads.x-k8s.io/v1alpha2: the same schema as v1alpha1
(rbg/api/scaling_v1alpha1.py), so the same models; only apiVersion differs (upstream converts it without
a webhook, ../shared/reference/upstream-rbg.md §1.1, §1.5)."""

from __future__ import annotations

from rbg.api import scaling_v1alpha1 as _v1
from rbg.api.v1alpha2 import API_VERSION

KIND = _v1.KIND
PLURAL = _v1.PLURAL

ScaleTargetRef = _v1.ScaleTargetRef
ScalingAdapterSpec = _v1.ScalingAdapterSpec
ScalingAdapterStatus = _v1.ScalingAdapterStatus


class RoleBasedGroupScalingAdapter(_v1.RoleBasedGroupScalingAdapter):
    """The whole object (v1alpha1's fields, with its apiVersion)."""

    api_version: str = API_VERSION
    kind: str = KIND
