"""The v1alpha2 models (rbg/api/v1alpha2*.py) take upstream's documented v1alpha2 shapes
(../shared/reference/upstream-rbg.md §1.2, §1.4, §1.5) and refuse what upstream's CRD refuses by CEL,
with upstream's messages; every field is described (its `kubectl explain` text)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rbg.api import (
    crd,
    groupset_v1alpha1,
    scaling_v1alpha1,
    v1alpha1,
    v1alpha2,
    v1alpha2_groupset,
    v1alpha2_scaling,
)
from rbg.api.v1alpha2 import RoleBasedGroup, RoleSpec

TEMPLATE = {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}

# §1.2, the documented shape (the three patterns spread over three roles, since a role holds one)
DOCUMENTED = """
apiVersion: workloads.x-k8s.io/v1alpha2
kind: RoleBasedGroup
metadata:
  name: pd
  annotations:
    rbg.workloads.x-k8s.io/group-exclusive-topology: kubernetes.io/hostname
    rbg.workloads.x-k8s.io/group-gang-scheduling: "true"
spec:
  roleTemplates:
    - name: base
      template: {spec: {containers: [{name: app, image: nginx}]}}
  roles:
    - name: prefill
      replicas: 2
      labels: {k: v}
      annotations: {k: v}
      dependencies: [router]
      minReadySeconds: 0
      podManagementPolicy: Parallel
      servicePorts: [{name: http, port: 8000}]
      scalingAdapter: {enable: true, labels: {team: a}}
      engineRuntimes:
        - profileName: patio-runtime
          injectContainers: [app]
          containers: [{name: sidecar, args: [--x], env: [{name: A, value: b}]}]
      rolloutStrategy:
        type: RollingUpdate
        rollingUpdate:
          type: InPlaceIfPossible
          partition: 0
          maxUnavailable: 1
          maxSurge: 0
          paused: false
          inPlaceUpdateStrategy: {gracePeriodSeconds: 30}
      standalonePattern:
        templateRef: {name: base, patch: {}}
    - name: decode
      leaderWorkerPattern:
        size: 4
        template: {spec: {containers: [{name: app, image: nginx}]}}
        leaderTemplatePatch: {metadata: {labels: {leader: "1"}}}
        workerTemplatePatch: {metadata: {labels: {worker: "1"}}}
        sharedServiceSelection: LeaderOnly
        restartPolicy: RecreateRoleInstanceOnPodRestart
        restartPolicyConfig:
          {type: RecreateRoleInstanceOnPodRestart, baseDelaySeconds: 30, maxDelaySeconds: 600}
    - name: router
      customComponentsPattern:
        restartPolicyConfig: {type: None, baseDelaySeconds: 30, maxDelaySeconds: 600}
        components:
          - name: leader
            size: 1
            serviceName: ""
            labels: {a: b}
            annotations: {c: d}
            template: {spec: {containers: [{name: app, image: nginx}]}}
status:
  observedGeneration: 3
  conditions:
    - {type: Ready, status: "True", reason: AllRolesReady, message: All roles are ready,
       lastTransitionTime: "2024-01-01T00:00:00Z"}
  roleStatuses: [{name: prefill, replicas: 2, readyReplicas: 2, updatedReplicas: 2}]
"""

# the PD-disaggregated group of upstream's deprecated workload types (and of our benchmark)
PD_STANDALONE = """
apiVersion: workloads.x-k8s.io/v1alpha2
kind: RoleBasedGroup
metadata: {name: pd-disagg}
spec:
  roles:
    - name: router
      annotations: {rbg.workloads.x-k8s.io/role-workload-type: apps/v1/Deployment}
      standalonePattern: {template: {spec: {containers: [{name: r, image: router}]}}}
    - name: prefill
      replicas: 2
      dependencies: [router]
      annotations: {rbg.workloads.x-k8s.io/role-workload-type: apps/v1/StatefulSet}
      standalonePattern: {template: {spec: {containers: [{name: p, image: engine}]}}}
    - name: decode
      replicas: 1
      annotations: {rbg.workloads.x-k8s.io/role-workload-type: leaderworkerset.x-k8s.io/v1/LeaderWorkerSet}
      leaderWorkerPattern:
        size: 2
        template: {spec: {containers: [{name: d, image: engine}]}}
        workerTemplatePatch: {spec: {containers: [{name: d, args: [--worker]}]}}
"""


def _role(**fields: Any) -> dict[str, Any]:
    return {"name": "r", **fields}


def _messages(exc: ValidationError) -> list[str]:
    return [str(e["msg"]) for e in exc.errors()]


def test_the_documented_shape_reads_field_for_field() -> None:
    doc = yaml.safe_load(DOCUMENTED)
    rbg = RoleBasedGroup.model_validate(doc)
    prefill, decode, router = rbg.spec.roles
    assert prefill.standalone_pattern is not None
    assert prefill.standalone_pattern.template_ref is not None
    assert prefill.standalone_pattern.template_ref.patch == {}
    assert prefill.scaling_adapter is not None
    assert prefill.scaling_adapter.labels == {"team": "a"}
    assert prefill.rollout_strategy is not None
    assert prefill.rollout_strategy.rolling_update is not None
    assert prefill.rollout_strategy.rolling_update.type == "InPlaceIfPossible"
    lwp = decode.leader_worker_pattern
    assert lwp is not None
    assert lwp.size == 4
    assert lwp.shared_service_selection == "LeaderOnly"
    assert lwp.restart_policy_config is not None
    assert lwp.restart_policy_config.max_delay_seconds == 600
    ccp = router.custom_components_pattern
    assert ccp is not None
    assert ccp.components is not None
    assert ccp.components[0].labels == {"a": "b"}
    assert ccp.components[0].service_name == ""
    assert rbg.status is not None
    assert rbg.status.role_statuses is not None
    # what was written comes back as written (defaults aside)
    wire = rbg.wire()
    for i, role in enumerate(doc["spec"]["roles"]):
        for key, value in role.items():
            assert wire["spec"]["roles"][i][key] == value, (role["name"], key)
    assert wire["metadata"]["annotations"] == doc["metadata"]["annotations"]


def test_defaults_are_upstreams() -> None:
    role = RoleSpec.model_validate(_role(leaderWorkerPattern={"restartPolicyConfig": {}}))
    assert role.replicas == 1
    assert role.min_ready_seconds == 0
    assert role.pod_management_policy == "Parallel"
    assert role.leader_worker_pattern is not None
    assert role.leader_worker_pattern.size == 1
    config = role.leader_worker_pattern.restart_policy_config
    assert config is not None
    assert (config.base_delay_seconds, config.max_delay_seconds) == (30, 600)
    assert config.type is None  # the controller resolves it (LWP/CCP: RecreateRoleInstanceOnPodRestart)
    assert role.workload_type == v1alpha2.DEFAULT_WORKLOAD == "workloads.x-k8s.io/v1alpha2/RoleInstanceSet"


def test_the_pd_disaggregated_standalone_group_names_its_workloads() -> None:
    rbg = RoleBasedGroup.model_validate(yaml.safe_load(PD_STANDALONE))
    assert [r.workload_type for r in rbg.spec.roles] == [
        "apps/v1/Deployment",
        "apps/v1/StatefulSet",
        "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet",
    ]


@pytest.mark.parametrize(
    ("role", "message"),
    [
        (
            _role(standalonePattern={"template": TEMPLATE}, leaderWorkerPattern={"template": TEMPLATE}),
            v1alpha2.EXCLUSIVE_PATTERNS,
        ),
        (
            _role(standalonePattern={"template": TEMPLATE, "templateRef": {"name": "base", "patch": {}}}),
            v1alpha2.EXCLUSIVE_TEMPLATES,
        ),
        (
            _role(leaderWorkerPattern={"template": TEMPLATE, "templateRef": {"name": "base"}}),
            v1alpha2.EXCLUSIVE_TEMPLATES,
        ),
        (
            _role(
                leaderWorkerPattern={
                    "template": TEMPLATE,
                    "restartPolicyConfig": {"baseDelaySeconds": 60, "maxDelaySeconds": 10},
                }
            ),
            v1alpha2.DELAYS,
        ),
        (
            _role(customComponentsPattern={"restartPolicyConfig": {"baseDelaySeconds": 601}}),
            v1alpha2.DELAYS,
        ),
        (
            _role(
                annotations={v1alpha2.WORKLOAD_TYPE: "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet"},
                leaderWorkerPattern={"template": TEMPLATE, "sharedServiceSelection": "LeaderOnly"},
            ),
            v1alpha2.LEADER_ONLY,
        ),
    ],
)
def test_the_cel_cases_are_refused_with_upstreams_messages(role: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        RoleSpec.model_validate(role)
    assert any(message in m for m in _messages(exc.value)), _messages(exc.value)


def test_upstreams_cel_messages_verbatim() -> None:
    assert v1alpha2.EXCLUSIVE_PATTERNS == "standalonePattern and leaderWorkerPattern are mutually exclusive"
    assert v1alpha2.DELAYS == "maxDelaySeconds must be greater than or equal to baseDelaySeconds"
    assert v1alpha2.LEADER_ONLY == (
        "leaderWorkerPattern.sharedServiceSelection=LeaderOnly is only supported for RoleInstanceSet + "
        "leaderWorkerPattern"
    )


def test_what_upstreams_cel_allows_is_taken() -> None:
    # LeaderOnly with the default workload, or with RoleInstanceSet named explicitly
    for marks in (None, {v1alpha2.WORKLOAD_TYPE: v1alpha2.DEFAULT_WORKLOAD}):
        RoleSpec.model_validate(
            _role(
                annotations=marks,
                leaderWorkerPattern={"template": TEMPLATE, "sharedServiceSelection": "LeaderOnly"},
            )
        )
    # standalone beside components is not refused by CEL; neither is a role without any pattern
    RoleSpec.model_validate(_role(standalonePattern={"template": TEMPLATE}, customComponentsPattern={}))
    RoleSpec.model_validate(_role())
    # equal delays
    RoleSpec.model_validate(
        _role(customComponentsPattern={"restartPolicyConfig": {"baseDelaySeconds": 5, "maxDelaySeconds": 5}})
    )


@pytest.mark.parametrize(
    "role",
    [
        _role(leaderWorkerPattern={"restartPolicyConfig": {"type": "RecreateRBGOnPodRestart"}}),
        _role(leaderWorkerPattern={"restartPolicy": "RecreateRBGOnPodRestart"}),
        _role(leaderWorkerPattern={"sharedServiceSelection": "Some"}),
        _role(podManagementPolicy="Ordered"),
        _role(replicas=-1),
        _role(customComponentsPattern={"components": [{"name": "c"}]}),  # template is required
        _role(standalonePattern={"templateRef": {"patch": {}}}),  # templateRef.name is required
    ],
)
def test_enums_and_required_fields_are_upstreams(role: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RoleSpec.model_validate(role)


def test_groupset_and_scaling_adapter_shapes() -> None:
    gs = v1alpha2_groupset.RoleBasedGroupSet.model_validate(
        yaml.safe_load(
            """
apiVersion: workloads.x-k8s.io/v1alpha2
kind: RoleBasedGroupSet
metadata: {name: rbgs-test}
spec:
  replicas: 2
  groupTemplate:
    labels: {app: x}
    annotations: {rbg.workloads.x-k8s.io/group-exclusive-topology: kubernetes.io/hostname}
    spec:
      roleTemplates: [{name: base, template: {spec: {containers: [{name: app, image: nginx}]}}}]
      roles: [{name: worker, standalonePattern: {templateRef: {name: base, patch: {}}}}]
status: {observedGeneration: 1, replicas: 2, readyReplicas: 2,
         conditions: [{type: Ready, status: "True", reason: AllReplicasReady}]}
"""
        )
    )
    assert gs.api_version == "workloads.x-k8s.io/v1alpha2"
    assert gs.spec.group_template.labels == {"app": "x"}
    assert gs.spec.group_template.spec is not None
    assert gs.spec.group_template.spec.roles[0].name == "worker"
    bare = v1alpha2_groupset.RoleBasedGroupSet.model_validate({"spec": {"groupTemplate": {}}})
    assert bare.spec.replicas == 1
    with pytest.raises(ValidationError):  # groupTemplate is required
        v1alpha2_groupset.RoleBasedGroupSet.model_validate({"spec": {"replicas": 1}})
    sa = v1alpha2_scaling.RoleBasedGroupScalingAdapter.model_validate(
        {
            "metadata": {"name": "pd-prefill"},
            "spec": {"replicas": 2, "scaleTargetRef": {"name": "pd", "role": "prefill"}},
            "status": {"phase": "Bound", "replicas": 2, "readyReplicas": 2, "selector": "a=b"},
        }
    )
    assert sa.api_version == "workloads.x-k8s.io/v1alpha2"
    assert sa.kind == "RoleBasedGroupScalingAdapter"
    assert sa.wire()["spec"] == {"replicas": 2, "scaleTargetRef": {"name": "pd", "role": "prefill"}}


def test_leaf_types_are_v1alpha1s() -> None:
    assert v1alpha2.RolloutStrategy is v1alpha1.RolloutStrategy
    assert v1alpha2.RoleTemplate is v1alpha1.RoleTemplate
    assert v1alpha2.EngineRuntime is v1alpha1.EngineRuntime
    assert v1alpha2.ScalingAdapter is v1alpha1.ScalingAdapter
    assert v1alpha2.RoleBasedGroupStatus is v1alpha1.RoleBasedGroupStatus
    assert v1alpha2_scaling.ScalingAdapterSpec is scaling_v1alpha1.ScalingAdapterSpec
    assert v1alpha2_groupset.RoleBasedGroupSetStatus is groupset_v1alpha1.RoleBasedGroupSetStatus


def _properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            out.append((f"{path}.{name}", sub))
            out += _properties(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            out += _properties(node["items"], f"{path}[]")
    return out


_EMBEDDED = (".template.", ".containers[].", ".servicePorts[].")


@pytest.mark.parametrize(
    "model",
    [
        v1alpha2.RoleBasedGroupSpec,
        v1alpha2_groupset.RoleBasedGroupSetSpec,
    ],
)
def test_every_field_is_explained_and_the_schema_is_structural(model: Any) -> None:
    schema = crd.openapi_schema(model)
    for path, node in _properties(schema):
        if any(e in path + "." for e in _EMBEDDED) and not path.endswith((".template", ".servicePorts")):
            continue  # inside a published Kubernetes type
        assert node.get("description"), f"{model.__name__}{path} has no description"
        assert "$ref" not in node, path
        assert not {"oneOf", "allOf", "const"} & node.keys(), path


def test_the_crd_schema_carries_upstreams_cel_rules() -> None:
    schema = crd.openapi_schema(v1alpha2.RoleBasedGroupSpec)
    role = schema["properties"]["roles"]["items"]
    assert {r["message"] for r in role["x-kubernetes-validations"]} == {
        v1alpha2.EXCLUSIVE_PATTERNS,
        v1alpha2.LEADER_ONLY,
    }
    for pattern in ("standalonePattern", "leaderWorkerPattern"):
        rules = role["properties"][pattern]["x-kubernetes-validations"]
        rule = "!(has(self.template) && has(self.templateRef))"
        assert rules == [{"rule": rule, "message": v1alpha2.EXCLUSIVE_TEMPLATES}]
    for pattern in ("leaderWorkerPattern", "customComponentsPattern"):
        config = role["properties"][pattern]["properties"]["restartPolicyConfig"]
        assert config["x-kubernetes-validations"][0]["message"] == v1alpha2.DELAYS
        assert config["properties"]["type"]["enum"] == ["None", "RecreateRoleInstanceOnPodRestart"]
