"""RoleBasedGroupSet, served version workloads.x-k8s.io/v1alpha1: the hub model's own shape
(rbg.api.hub_groupset, D38), so that converting between it and the hub is the identity. The CRD's
v1alpha1 schema and upstream manifests are read through these names; the operator's cores import the
hub, never this module."""

from __future__ import annotations

from rbg.api.hub import GROUP
from rbg.api.hub_groupset import *  # noqa: F403 - the served schema is the hub's

VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
