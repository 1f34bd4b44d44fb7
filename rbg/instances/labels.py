"""Labels and annotations of a RoleInstanceSet's StatefulSets and pods (upstream's keys, D42)."""

from __future__ import annotations

PREFIX = "rbg.workloads.x-k8s.io/"
#: the set a StatefulSet belongs to (what the controller's cache selects on)
SET = PREFIX + "role-instance-set"
INSTANCE_NAME = PREFIX + "role-instance-name"  # {set}-{index}
INSTANCE_INDEX = PREFIX + "role-instance-index"
COMPONENT_NAME = PREFIX + "component-name"
COMPONENT_SIZE = PREFIX + "component-size"
#: a pod's index within its component: its StatefulSet ordinal (upstream's component-id)
COMPONENT_ID = "apps.kubernetes.io/pod-index"
#: on each StatefulSet: every component of its instance when it was written (a lost one is seen)
COMPONENTS = PREFIX + "role-instance-components"
#: digest of the instance template a StatefulSet was written from
REVISION = PREFIX + "role-instance-revision"
#: KEP-173 discovery, JSON {"addressRefs": [...], "portRefs": [...]} (rbg.instances.discovery)
DISCOVERY = "rolebasedgroup.workloads.x-k8s.io/component-discovery"
#: KEP-173 ordering, JSON {"startAfter": [components]} on a component's pod template (v1alpha1 prefix)
DEPENDS_ON = "rolebasedgroup.workloads.x-k8s.io/component-depends-on"
#: on the RoleInstanceSets this operator writes: their instances run as StatefulSets. One without it
#: (upstream's, after a migration) is left alone: its RoleInstances are another controller's (D42)
RUNS_AS = PREFIX + "role-instances-as"
RUNS_AS_STATEFULSETS = "StatefulSets"
