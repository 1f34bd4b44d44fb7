"""The custom kinds the controllers read and write, registered with the client once."""

from __future__ import annotations

from rbg.api import roleinstanceset
from rbg.api.hub import GROUP, HUB_VERSION
from rbg.runtime.client import Kube
from rbg.runtime.objects import Kind

# read and written in the hub's version: the API server converts whatever version a user wrote (D38)
RBG = Kube.register(Kind(GROUP, HUB_VERSION, "RoleBasedGroup", "rolebasedgroups"))
RBGSET = Kube.register(Kind(GROUP, HUB_VERSION, "RoleBasedGroupSet", "rolebasedgroupsets"))
RBGSA = Kube.register(
    Kind(GROUP, HUB_VERSION, "RoleBasedGroupScalingAdapter", "rolebasedgroupscalingadapters")
)
LWS = Kube.register(Kind("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets"))
PODGROUP = Kube.register(Kind("scheduling.x-k8s.io", "v1alpha1", "PodGroup", "podgroups"))
VOLCANO_PODGROUP = Kube.register(Kind("scheduling.volcano.sh", "v1beta1", "PodGroup", "podgroups"))
#: served in its one version (v1alpha2, as upstream): the workload of customComponentsPattern roles (D42)
RIS = Kube.register(
    Kind(roleinstanceset.GROUP, roleinstanceset.VERSION, roleinstanceset.KIND, roleinstanceset.PLURAL)
)
