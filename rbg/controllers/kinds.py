"""The custom kinds the controllers read and write, registered with the client once."""

from __future__ import annotations

from rbg.runtime.client import Kube
from rbg.runtime.objects import Kind

RBG = Kube.register(Kind("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups"))
RBGSET = Kube.register(Kind("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroupSet", "rolebasedgroupsets"))
RBGSA = Kube.register(
    Kind("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroupScalingAdapter", "rolebasedgroupscalingadapters")
)
LWS = Kube.register(Kind("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets"))
PODGROUP = Kube.register(Kind("scheduling.x-k8s.io", "v1alpha1", "PodGroup", "podgroups"))
VOLCANO_PODGROUP = Kube.register(Kind("scheduling.volcano.sh", "v1beta1", "PodGroup", "podgroups"))
