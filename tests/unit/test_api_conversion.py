"""v1alpha1 ↔ v1alpha2 conversion (rbg/api/conversion.py): both round trips give the object back,
property-tested on objects built from the models (each version's own model_validate → wire is the
oracle's normal form, nothing of the conversion is reused), odd input is carried and never raises, and
upstream's conversion table row by row (../shared/reference/upstream-rbg.md §1.3)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rbg.api import groupset_v1alpha1 as gs1
from rbg.api import v1alpha1 as v1
from rbg.api import v1alpha2 as v2
from rbg.api import v1alpha2_groupset as gs2
from rbg.api.base import ObjectMeta
from rbg.api.conversion import convert

V1 = "workloads.x-k8s.io/v1alpha1"
V2 = "workloads.x-k8s.io/v1alpha2"
R = "rbg.workloads.x-k8s.io/"
C = "conversion.workloads.x-k8s.io/"
WORKLOAD = R + "role-workload-type"
RIS = "workloads.x-k8s.io/v1alpha2/RoleInstanceSet"
GANG = R + "group-gang-scheduling"
EXCLUSIVE = R + "group-exclusive-topology"
EXCLUSIVE_V1 = "rolebasedgroup.workloads.x-k8s.io/exclusive-topology"
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Obj = dict[str, Any]


def same(a: Any, b: Any) -> bool:
    """Equal as JSON (bool and int told apart, key order ignored)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def conversion_annotations(obj: Obj) -> set[str]:
    keys = set((obj.get("metadata") or {}).get("annotations") or {})
    for role in (obj.get("spec") or {}).get("roles") or []:
        keys |= set(role.get("annotations") or {})
    return {k for k in keys if k.startswith(C)}


# ---------------------------------------------------------------------------------------------------
# strategies, built from the models' fields (a test below checks that every field has one)


def opt(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


names = st.from_regex(r"[a-z]([a-z0-9-]{0,5}[a-z0-9])?", fullmatch=True)
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
labels = st.dictionaries(st.sampled_from(["app", "tier", "example.com/team"]), text, max_size=2)
# annotation keys the conversion reads, beside plain ones (none under conversion.workloads.x-k8s.io/)
GANG_KEYS = [GANG, GANG + "-timeout", GANG + "-volcano-queue", GANG + "-volcano-priority"]
group_keys = st.sampled_from(["a", "example.com/b", *GANG_KEYS, EXCLUSIVE, EXCLUSIVE_V1])
group_values = st.sampled_from(["true", "false", "60", "060", "q", "kubernetes.io/hostname"]) | text
group_annotations = st.dictionaries(group_keys, group_values, max_size=4)
role_annotations = st.dictionaries(
    st.sampled_from(["a", "example.com/b", WORKLOAD]),
    st.sampled_from(["apps/v1/StatefulSet", "apps/v1/Deployment", RIS, "odd", "x/"]) | text,
    max_size=2,
)
leaves = st.none() | st.booleans() | st.integers(-3, 300) | text
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=2)
    ),
    max_leaves=5,
)
containers = st.fixed_dictionaries(
    {"name": names, "image": st.sampled_from(["nginx", "engine:1"])},
    optional={"args": st.lists(text, max_size=2)},
)
templates = st.fixed_dictionaries(
    {"spec": st.fixed_dictionaries({"containers": st.lists(containers, min_size=1, max_size=2)})},
    optional={"metadata": st.fixed_dictionaries({"labels": labels})},
)
patches = st.dictionaries(st.sampled_from(["metadata", "spec"]), json_values, max_size=2)
int_or_str = st.integers(0, 3) | st.sampled_from(["0%", "25%", "100%"])

rolling_update = st.builds(
    v1.RollingUpdate,
    type=opt(st.sampled_from(["InPlaceIfPossible", "Recreate", "RecreatePod", "InPlaceOnly"])),
    partition=opt(int_or_str),
    max_unavailable=opt(int_or_str),
    max_surge=opt(int_or_str),
    paused=opt(st.booleans()),
    in_place_update_strategy=opt(
        st.builds(v1.InPlaceUpdateStrategy, grace_period_seconds=opt(st.integers(0, 9)))
    ),
)
rollout = st.builds(v1.RolloutStrategy, rolling_update=opt(rolling_update))
engine_runtimes = st.lists(
    st.builds(
        v1.EngineRuntime,
        profileName=names,  # required fields by their alias: st.builds reads the model's signature
        inject_containers=opt(st.lists(names, max_size=2)),
        containers=opt(st.lists(containers, max_size=1)),
    ),
    max_size=1,
)
scaling_adapter = st.builds(v1.ScalingAdapter, enable=st.booleans(), labels=opt(labels))
service_ports = st.lists(st.fixed_dictionaries({"name": names, "port": st.integers(1, 65535)}), max_size=2)

V1_RESTART = st.sampled_from(["None", "RecreateRBGOnPodRestart", "RecreateRoleInstanceOnPodRestart"])
V1_COMPONENT = st.fixed_dictionaries(
    {"name": names, "template": templates},
    optional={"size": st.integers(0, 3), "serviceName": text, "labels": labels, "annotations": labels},
)
V1_WORKLOADS = [
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
    ("workloads.x-k8s.io/v1alpha2", "RoleInstanceSet"),
    ("workloads.x-k8s.io/v1alpha1", "InstanceSet"),
]
ROLE_V1 = {
    "name": names,
    "labels": opt(labels),
    "annotations": opt(role_annotations),
    "replicas": st.integers(0, 4),
    "rollout_strategy": opt(rollout),
    "restart_policy": opt(V1_RESTART),
    "restart_policy_config": opt(
        st.builds(
            v1.RestartPolicyConfig,
            type=opt(V1_RESTART),
            base_delay_seconds=opt(st.integers(0, 300)),
            max_delay_seconds=opt(st.integers(300, 900)),
            max_restarts=opt(st.integers(0, 5)),
        )
    ),
    "dependencies": opt(st.lists(names, max_size=2)),
    "workload": st.sampled_from(V1_WORKLOADS).map(lambda w: v1.WorkloadSpec(api_version=w[0], kind=w[1])),
    "template": opt(templates),
    "template_ref": opt(st.builds(v1.TemplateRef, name=names)),
    "template_patch": opt(patches),
    "leader_worker_set": opt(
        st.builds(
            v1.LeaderWorkerTemplate,
            size=opt(st.integers(1, 4)),
            patch_leader_template=opt(patches),
            patch_worker_template=opt(patches),
        )
    ),
    "components": opt(st.lists(V1_COMPONENT, max_size=2)),
    "service_ports": opt(service_ports),
    "engine_runtimes": opt(engine_runtimes),
    "scaling_adapter": opt(scaling_adapter),
    "min_ready_seconds": st.integers(0, 9),
}
roles_v1 = st.builds(v1.RoleSpec, **ROLE_V1)
role_templates = st.lists(st.builds(v1.RoleTemplate, name=names, template=templates), max_size=1)
percent = opt(st.sampled_from(["5%", "100%"]))
coordination = st.builds(
    v1.Coordination,
    name=names,
    type=opt(st.sampled_from(["AffinityScheduling", "RollingUpdate", "Scaling"])),
    roles=st.lists(names, min_size=1, max_size=2),
    strategy=opt(
        st.builds(
            v1.CoordinationStrategy,
            rolling_update=opt(st.builds(v1.CoordinationRollingUpdate, max_skew=percent, partition=percent)),
            scaling=opt(
                st.builds(v1.CoordinationScaling, max_skew=percent, progression=opt(st.just("OrderReady")))
            ),
            affinity_scheduling=opt(
                st.builds(
                    v1.AffinityScheduling,
                    topology_key=st.just("kubernetes.io/hostname"),
                    ratios=st.dictionaries(names, st.integers(1, 3), max_size=2),
                )
            ),
        )
    ),
)
pod_group_policy = st.builds(
    v1.PodGroupPolicy,
    kube_scheduling=opt(
        st.builds(v1.KubeSchedulingPolicy, schedule_timeout_seconds=opt(st.integers(0, 120)))
    ),
    volcano_scheduling=opt(
        st.builds(v1.VolcanoSchedulingPolicy, priority_class_name=opt(text), queue=opt(text))
    ),
)
SPEC_V1 = {
    "roles": st.lists(roles_v1, min_size=1, max_size=3, unique_by=lambda r: r.name),
    "role_templates": opt(role_templates),
    "pod_group_policy": opt(pod_group_policy),
    "coordination": opt(st.lists(coordination, max_size=1)),
    "startup_policy": opt(st.sampled_from(["Ordered", "Parallel"])),
}
specs_v1 = st.builds(v1.RoleBasedGroupSpec, **SPEC_V1)
metadata = st.builds(
    ObjectMeta,
    name=names,
    namespace=st.just("default"),
    uid=st.just("u-1"),
    generation=st.integers(1, 3),
    resource_version=st.just("7"),
    labels=opt(labels),
    annotations=opt(group_annotations),
)
condition = st.builds(
    v1.Condition,
    type=st.sampled_from(["Ready", "Progressing"]),
    status=st.sampled_from(["True", "False"]),
    lastTransitionTime=st.just("2024-01-01T00:00:00Z"),
    reason=st.sampled_from(["AllRolesReady", "RoleNotReady"]),
)
status = st.builds(
    v1.RoleBasedGroupStatus,
    observed_generation=opt(st.integers(0, 3)),
    conditions=opt(st.lists(condition, max_size=1)),
    role_statuses=opt(st.lists(st.builds(v1.RoleStatus, name=names, replicas=st.integers(0, 3)), max_size=2)),
    current_revision=opt(names),
)
groups_v1 = st.builds(v1.RoleBasedGroup, metadata=metadata, spec=specs_v1, status=opt(status)).map(
    lambda m: m.wire()
)

# v1alpha2
V2_RESTART = st.sampled_from(["None", "RecreateRoleInstanceOnPodRestart"])
restart_config_v2 = st.builds(
    v2.RestartPolicyConfig,
    type=opt(V2_RESTART),
    base_delay_seconds=st.integers(0, 300),
    max_delay_seconds=st.integers(300, 900),
)
template_ref_v2 = st.builds(v2.TemplateRef, name=names, patch=opt(patches))
one_template = st.one_of(
    st.fixed_dictionaries({"template": templates}),
    st.fixed_dictionaries({"template_ref": template_ref_v2}),
    st.just({}),
)
standalone = one_template.map(lambda t: v2.StandalonePattern(**t))
leader_worker = st.builds(
    lambda t, **kw: v2.LeaderWorkerPattern(**t, **kw),
    one_template,
    size=st.integers(1, 4),
    leader_template_patch=opt(patches),
    worker_template_patch=opt(patches),
    shared_service_selection=opt(st.sampled_from(["All", "LeaderOnly"])),
    restart_policy=opt(V2_RESTART),
    restart_policy_config=opt(restart_config_v2),
)
component_v2 = st.builds(
    v2.Component,
    name=names,
    size=opt(st.integers(0, 3)),
    service_name=opt(text),
    labels=opt(labels),
    annotations=opt(labels),
    template=templates,
)
custom_components = st.builds(
    v2.CustomComponentsPattern,
    components=opt(st.lists(component_v2, max_size=2)),
    restart_policy=opt(V2_RESTART),
    restart_policy_config=opt(restart_config_v2),
)
PATTERNS = st.sampled_from(
    [("standalone",), ("leader_worker",), ("custom_components",), (), ("standalone", "custom_components")]
)
ROLE_V2 = {
    "name": names,
    "labels": opt(labels),
    "annotations": opt(role_annotations),
    "replicas": st.integers(0, 4),
    "rollout_strategy": opt(rollout),
    "dependencies": opt(st.lists(names, max_size=2)),
    "min_ready_seconds": st.integers(0, 9),
    "pod_management_policy": st.sampled_from(["Parallel", "OrderedReady"]),
    "standalone_pattern": opt(standalone),
    "leader_worker_pattern": opt(leader_worker),
    "custom_components_pattern": opt(custom_components),
    "service_ports": opt(service_ports),
    "engine_runtimes": opt(engine_runtimes),
    "scaling_adapter": opt(scaling_adapter),
}


@st.composite
def roles_v2(draw: st.DrawFn) -> v2.RoleSpec:
    chosen = draw(PATTERNS)
    fields = {}
    for field, strategy in ROLE_V2.items():
        pattern = field.removesuffix("_pattern")
        if field.endswith("_pattern"):
            fields[field] = draw(strategy.filter(lambda p: p is not None)) if pattern in chosen else None
        else:
            fields[field] = draw(strategy)
    lwp = fields["leader_worker_pattern"]
    annotations = fields["annotations"] or {}
    if lwp is not None and lwp.shared_service_selection == "LeaderOnly":
        assume(annotations.get(WORKLOAD, RIS) == RIS)  # upstream's CEL
    return v2.RoleSpec(**fields)


specs_v2 = st.builds(
    v2.RoleBasedGroupSpec,
    roles=st.lists(roles_v2(), min_size=1, max_size=3, unique_by=lambda r: r.name),
    role_templates=opt(role_templates),
)
groups_v2 = st.builds(v2.RoleBasedGroup, metadata=metadata, spec=specs_v2, status=opt(status)).map(
    lambda m: m.wire()
)

# sets
seed_roles = st.builds(gs1.SeedRole, **{**ROLE_V1, "name": opt(names), "role": opt(names)})
group_template_v1 = st.builds(
    gs1.GroupTemplate,
    labels=opt(labels),
    annotations=opt(group_annotations),
    spec=opt(specs_v1),
    roles=opt(st.lists(seed_roles, min_size=1, max_size=2)),
)
set_rollout = st.builds(
    gs1.GroupSetRollout,
    type=opt(st.sampled_from(["Recreate", "InPlaceUpdate"])),
    max_unavailable=opt(int_or_str),
    partition=opt(st.integers(0, 3) | st.just("50%")),
)
set_status = st.builds(
    gs1.RoleBasedGroupSetStatus, observed_generation=opt(st.integers(0, 3)), replicas=st.integers(0, 3)
)
sets_v1 = st.builds(
    gs1.RoleBasedGroupSet,
    metadata=metadata,
    spec=st.builds(
        gs1.RoleBasedGroupSetSpec,
        replicas=st.integers(0, 3),
        template=opt(specs_v1),
        group_template=opt(group_template_v1),
        rollout_strategy=opt(set_rollout),
    ),
    status=opt(set_status),
).map(lambda m: {"apiVersion": V1, "kind": "RoleBasedGroupSet", **m.wire()})
sets_v2 = st.builds(
    gs2.RoleBasedGroupSet,
    metadata=metadata,
    spec=st.builds(
        gs2.RoleBasedGroupSetSpec,
        replicas=st.integers(0, 3),
        groupTemplate=st.builds(
            gs2.GroupTemplate, labels=opt(labels), annotations=opt(group_annotations), spec=opt(specs_v2)
        ),
    ),
    status=opt(set_status),
).map(lambda m: m.wire())


def test_the_strategies_cover_every_field_of_the_models() -> None:
    assert set(ROLE_V1) == set(v1.RoleSpec.model_fields)
    assert set(SPEC_V1) == set(v1.RoleBasedGroupSpec.model_fields)
    assert set(ROLE_V2) == set(v2.RoleSpec.model_fields)
    assert set(v2.RoleBasedGroupSpec.model_fields) == {"roles", "role_templates"}
    assert set(gs1.GroupTemplate.model_fields) == {"labels", "annotations", "spec", "roles"}
    assert set(gs1.RoleBasedGroupSetSpec.model_fields) == {
        "replicas",
        "template",
        "group_template",
        "rollout_strategy",
    }
    assert set(gs2.GroupTemplate.model_fields) == {"labels", "annotations", "spec"}


# ---------------------------------------------------------------------------------------------------
# the round trips


@SETTINGS
@given(groups_v1)
def test_v1alpha1_to_v1alpha2_and_back_gives_the_group_back(group: Obj) -> None:
    up = convert(copy.deepcopy(group), V2)
    assert up["apiVersion"] == V2
    assert same(convert(up, V1), group)


@SETTINGS
@given(groups_v2)
def test_v1alpha2_to_v1alpha1_and_back_gives_the_group_back(group: Obj) -> None:
    down = convert(copy.deepcopy(group), V1)
    assert down["apiVersion"] == V1
    assert same(convert(down, V2), group)


@SETTINGS
@given(sets_v1)
def test_a_set_v1alpha1_round_trip(groupset: Obj) -> None:
    assert same(convert(convert(groupset, V2), V1), groupset)


@SETTINGS
@given(sets_v2)
def test_a_set_v1alpha2_round_trip(groupset: Obj) -> None:
    assert same(convert(convert(groupset, V1), V2), groupset)


@SETTINGS
@given(st.one_of(groups_v1, groups_v2), st.data())
def test_a_change_made_in_the_other_version_comes_back(group: Obj, data: st.DataObject) -> None:
    """Edited after a conversion (replicas of a role, the group's labels), the object converts back
    with the edit and otherwise as it was."""
    there = V2 if group["apiVersion"] == V1 else V1
    converted = convert(group, there)
    i = data.draw(st.integers(0, len(group["spec"]["roles"]) - 1))
    replicas = data.draw(st.integers(5, 9))
    new_labels = data.draw(labels)
    converted["spec"]["roles"][i]["replicas"] = replicas
    converted["metadata"]["labels"] = new_labels
    expected = copy.deepcopy(group)
    expected["spec"]["roles"][i]["replicas"] = replicas
    expected["metadata"]["labels"] = new_labels
    assert same(convert(converted, group["apiVersion"]), expected)


def _cel_valid_v1(group: Obj) -> bool:
    """What our v1alpha1 CRD lets through (its CEL), as far as the conversion's output depends on it."""
    return all(not ("template" in r and "templateRef" in r) for r in group["spec"]["roles"])


@SETTINGS
@given(groups_v1)
def test_a_converted_group_reads_in_the_other_versions_model(group: Obj) -> None:
    assume(_cel_valid_v1(group))
    up = convert(group, V2)
    v2.RoleBasedGroup.model_validate(up)  # refuses nothing upstream's CEL lets through
    v1.RoleBasedGroup.model_validate(convert(v2.RoleBasedGroup.model_validate(up).wire(), V1))


@SETTINGS
@given(groups_v1)
def test_a_v1alpha1_group_comes_back_from_v1alpha2_storage(group: Obj) -> None:
    """Stored as v1alpha2, the object is read back with the v1alpha2 schema's defaults filled in (here:
    its model's) before it is converted back: the same v1alpha1 object still."""
    assume(_cel_valid_v1(group))
    group = v1.RoleBasedGroup.model_validate(group).wire()  # as the API server has it: defaulted
    stored = v2.RoleBasedGroup.model_validate(convert(group, V2)).wire()
    assert same(convert(stored, V1), group)


@SETTINGS
@given(sets_v1)
def test_a_v1alpha1_set_comes_back_from_v1alpha2_storage(groupset: Obj) -> None:
    spec = groupset["spec"]
    assume("template" in spec or "groupTemplate" in spec)  # v1alpha2 requires a groupTemplate
    seed = (spec.get("groupTemplate") or {}).get("roles") or []
    assume(all("name" in r or "role" in r for r in seed))  # a seed role is named by one of them
    assume(_cel_valid_v1({"spec": {"roles": seed}}))
    for template in (spec.get("template"), (spec.get("groupTemplate") or {}).get("spec")):
        assume(template is None or _cel_valid_v1({"spec": template}))
    groupset = {**groupset, **gs1.RoleBasedGroupSet.model_validate(groupset).wire()}
    stored = gs2.RoleBasedGroupSet.model_validate(convert(groupset, V2)).wire()
    assert same(convert(stored, V1), groupset)


def _runs_as(role: Obj) -> str:
    """D39, written out: an unannotated v1alpha2 role runs as the kind its pattern maps to."""
    if "leaderWorkerPattern" in role:
        return "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet"
    if "customComponentsPattern" in role:
        return RIS
    return "apps/v1/StatefulSet"


@SETTINGS
@given(groups_v2)
def test_a_converted_v1alpha2_group_reads_in_v1alpha1s_model(group: Obj) -> None:
    kinds = [(r.get("annotations") or {}).get(WORKLOAD, _runs_as(r)) for r in group["spec"]["roles"]]
    # an annotation that names no workload ("odd", "x/") is refused by upstream's controller too
    assume(
        all(
            k
            in (
                "apps/v1/StatefulSet",
                "apps/v1/Deployment",
                "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet",
                RIS,
            )
            for k in kinds
        )
    )
    down = v1.RoleBasedGroup.model_validate(convert(group, V1))
    for role, before, kind in zip(down.spec.roles, group["spec"]["roles"], kinds, strict=True):
        assert role.name == before["name"]
        assert role.workload.ref == kind


@SETTINGS
@given(groups_v1, st.data())
def test_odd_input_is_carried_and_never_raises(group: Obj, data: st.DataObject) -> None:
    """Junk anywhere (unknown fields, fields of the wrong type) comes back as it went in."""
    odd = copy.deepcopy(group)
    for _ in range(data.draw(st.integers(1, 3))):
        node = odd
        for _ in range(data.draw(st.integers(0, 4))):
            children = [k for k, v in node.items() if isinstance(v, dict)]
            lists = [v for v in node.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
            if lists and data.draw(st.booleans()):
                node = data.draw(st.sampled_from(lists))[0]
            elif children:
                node = node[data.draw(st.sampled_from(children))]
        key = data.draw(st.sampled_from([*node, "zz", "template", "roles", "workload", "components"]))
        node[key] = data.draw(json_values)
    for version in (V1, V2):
        odd["apiVersion"] = version
        other = V2 if version == V1 else V1
        there = convert(copy.deepcopy(odd), other)
        assert same(convert(there, version), odd)


VOCABULARY = [
    *("metadata", "annotations", "labels", "spec", "roles", "roleTemplates", "template", "templateRef"),
    *("templatePatch", "name", "workload", "apiVersion", "kind", "leaderWorkerSet", "size", "components"),
    *("restartPolicy", "restartPolicyConfig", "type", "podGroupPolicy", "kubeScheduling"),
    *("volcanoScheduling", "scheduleTimeoutSeconds", "coordination", "startupPolicy", "groupTemplate"),
    *("standalonePattern", "leaderWorkerPattern", "customComponentsPattern", "patch"),
    *("podManagementPolicy", "sharedServiceSelection", "rolloutStrategy", "role", "replicas"),
    *(WORKLOAD, *GANG_KEYS, EXCLUSIVE, EXCLUSIVE_V1),
]
vocabulary_json = st.recursive(
    leaves | st.sampled_from(["true", "60", "²", "apps/v1/StatefulSet", RIS, "None", "Parallel"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(VOCABULARY), inner, max_size=4)
    ),
    max_leaves=25,
)


@SETTINGS
@given(
    st.sampled_from(["RoleBasedGroup", "RoleBasedGroupSet"]),
    st.sampled_from([V1, V2]),
    st.fixed_dictionaries({"metadata": vocabulary_json, "spec": vocabulary_json}),
)
def test_any_json_converts_without_raising_and_comes_back(kind: str, version: str, body: Obj) -> None:
    obj = {"apiVersion": version, "kind": kind, **body}
    other = V2 if version == V1 else V1
    there = convert(copy.deepcopy(obj), other)
    assert there["apiVersion"] == other
    assert same(convert(there, version), obj)


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": V1, "kind": "RoleBasedGroup"},
        {"apiVersion": V1, "kind": "RoleBasedGroup", "metadata": {}, "spec": "x"},
        {"apiVersion": V1, "kind": "RoleBasedGroup", "metadata": {"annotations": "x"}, "spec": {}},
        {"apiVersion": V1, "kind": "RoleBasedGroup", "metadata": {}, "spec": {"roles": "x"}},
        {
            "apiVersion": V1,
            "kind": "RoleBasedGroup",
            "metadata": {},
            "spec": {"roles": [1, None, {"annotations": 3}]},
        },
        {"apiVersion": V1, "kind": "RoleBasedGroupSet", "metadata": {}, "spec": {"groupTemplate": 5}},
        {
            "apiVersion": V1,
            "kind": "RoleBasedGroupSet",
            "metadata": {},
            "spec": {"groupTemplate": {"spec": []}},
        },
        {
            "apiVersion": V1,
            "kind": "RoleBasedGroup",
            "metadata": {"annotations": {C + "v1alpha2-fields": "{"}},
            "spec": {},
        },
    ],
)
def test_unreadable_objects_are_carried(obj: Obj) -> None:
    for a, b in ((V1, V2), (V2, V1)):
        start = {**obj, "apiVersion": a}
        there = convert(copy.deepcopy(start), b)
        assert there["apiVersion"] == b
        assert same(convert(there, a), start)


def test_other_kinds_and_versions_change_only_apiversion() -> None:
    adapter = {
        "apiVersion": V1,
        "kind": "RoleBasedGroupScalingAdapter",
        "metadata": {"name": "pd-prefill"},
        "spec": {"replicas": 2, "scaleTargetRef": {"name": "pd", "role": "prefill"}},
        "status": {"phase": "Bound", "replicas": 2},
    }
    assert convert(adapter, "v1alpha2") == {**adapter, "apiVersion": V2}
    assert convert(adapter, V1) == adapter
    group = {"apiVersion": V2, "kind": "RoleBasedGroup", "metadata": {}, "spec": {"roles": []}}
    assert convert(group, V2) == group
    assert convert(group, V2) is not group


# ---------------------------------------------------------------------------------------------------
# upstream's table, row by row


def _v1_group(*roles: Obj, annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    """As the API server hands it over: defaulted by the v1alpha1 schema (here: its model)."""
    meta: Obj = {"name": "pd", "namespace": "default"}
    if annotations is not None:
        meta["annotations"] = annotations
    doc = {
        "apiVersion": V1,
        "kind": "RoleBasedGroup",
        "metadata": meta,
        "spec": {"roles": list(roles), **spec},
    }
    return v1.RoleBasedGroup.model_validate(doc).wire()


TEMPLATE = {"spec": {"containers": [{"name": "engine", "image": "engine:1"}]}}
DELAYS = {"baseDelaySeconds": 30, "maxDelaySeconds": 600}
STS = {"apiVersion": "apps/v1", "kind": "StatefulSet"}
LWS = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"}


def _role(group: Obj, i: int) -> Obj:
    role: Obj = group["spec"]["roles"][i]
    return role


def test_pd_disaggregated_statefulset_roles_become_standalone_roles_that_name_their_workload() -> None:
    group = _v1_group(
        {"name": "prefill", "replicas": 2, "workload": STS, "template": TEMPLATE},
        {"name": "decode", "replicas": 1, "template": TEMPLATE},  # the schema's default StatefulSet
        {"name": "router", "workload": {"apiVersion": "apps/v1", "kind": "Deployment"}, "template": TEMPLATE},
    )
    up = convert(group, V2)
    assert [r["annotations"] for r in up["spec"]["roles"]] == [
        {WORKLOAD: "apps/v1/StatefulSet"},
        {WORKLOAD: "apps/v1/StatefulSet"},
        {WORKLOAD: "apps/v1/Deployment"},
    ]
    assert _role(up, 0) == {
        "name": "prefill",
        "annotations": {WORKLOAD: "apps/v1/StatefulSet"},
        "replicas": 2,
        "minReadySeconds": 0,
        "podManagementPolicy": "Parallel",
        "standalonePattern": {"template": TEMPLATE},
    }
    assert up["metadata"] == group["metadata"]
    v2.RoleBasedGroup.model_validate(up)
    assert convert(up, V1) == group


def test_a_leaderworkerset_role_becomes_a_leader_worker_pattern() -> None:
    group = _v1_group(
        {
            "name": "prefill",
            "workload": LWS,
            "templateRef": {"name": "base"},
            "templatePatch": {"metadata": {"labels": {"a": "b"}}},
            "restartPolicy": "RecreateRoleInstanceOnPodRestart",
            "leaderWorkerSet": {
                "size": 4,
                "patchLeaderTemplate": {"metadata": {"labels": {"leader": "1"}}},
                "patchWorkerTemplate": {"metadata": {"labels": {"worker": "1"}}},
            },
        },
        roleTemplates=[{"name": "base", "template": TEMPLATE}],
    )
    up = convert(group, V2)
    role = _role(up, 0)
    assert role["annotations"] == {WORKLOAD: "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet"}
    assert role["leaderWorkerPattern"] == {
        "templateRef": {"name": "base", "patch": {"metadata": {"labels": {"a": "b"}}}},
        "size": 4,
        "leaderTemplatePatch": {"metadata": {"labels": {"leader": "1"}}},
        "workerTemplatePatch": {"metadata": {"labels": {"worker": "1"}}},
        # the v1alpha2 schema's defaults written out, as the API server reads the stored object back
        "restartPolicyConfig": {"type": "RecreateRoleInstanceOnPodRestart", **DELAYS},
    }
    assert "standalonePattern" not in role
    assert up["spec"]["roleTemplates"] == [{"name": "base", "template": TEMPLATE}]
    assert convert(up, V1) == group


def test_components_become_a_custom_components_pattern() -> None:
    component = {"name": "leader", "size": 1, "template": TEMPLATE, "labels": {"a": "b"}}
    group = _v1_group({"name": "r", "components": [component], "restartPolicy": "None"})
    role = _role(convert(group, V2), 0)
    assert role["customComponentsPattern"] == {
        "components": [component],
        "restartPolicyConfig": {"type": "None", **DELAYS},
    }
    assert convert(convert(group, V2), V1) == group


@pytest.mark.parametrize(
    ("policy", "gang", "json_too"),
    [
        (
            {"kubeScheduling": {"scheduleTimeoutSeconds": 120}},
            {GANG: "true", GANG + "-timeout": "120"},
            False,
        ),
        ({"kubeScheduling": {}}, {GANG: "true", GANG + "-timeout": "60"}, False),  # the schema's default
        (
            {"volcanoScheduling": {"priorityClassName": "high", "queue": "q"}},
            {GANG: "true", GANG + "-volcano-queue": "q", GANG + "-volcano-priority": "high"},
            False,
        ),
        # more than the gang annotations can say: its JSON too
        ({"volcanoScheduling": {}}, {GANG: "true"}, True),
        ({}, {}, True),
    ],
)
def test_a_pod_group_policy_becomes_gang_annotations(
    policy: Obj, gang: dict[str, str], json_too: bool
) -> None:
    group = _v1_group({"name": "r", "template": TEMPLATE}, podGroupPolicy=policy)
    up = convert(group, V2)
    annotations = up["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if k != C + "v1alpha1-pod-group-policy"} == gang
    if json_too:
        assert json.loads(annotations[C + "v1alpha1-pod-group-policy"]) == group["spec"]["podGroupPolicy"]
    else:
        assert C + "v1alpha1-pod-group-policy" not in annotations
    assert "podGroupPolicy" not in up["spec"]
    back = convert(up, V1)
    assert back == group
    assert "annotations" not in back["metadata"]


def test_gang_annotations_of_a_v1alpha2_group_read_as_a_pod_group_policy() -> None:
    native = v2.RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "pd", "annotations": {GANG: "true", GANG + "-timeout": "30"}},
            "spec": {"roles": [{"name": "r", "standalonePattern": {"template": TEMPLATE}}]},
        }
    ).wire()
    down = convert(native, V1)
    assert down["spec"]["podGroupPolicy"] == {"kubeScheduling": {"scheduleTimeoutSeconds": 30}}
    assert "annotations" not in down["metadata"]
    assert convert(down, V2) == native
    # changed in v1alpha2 after a conversion: the annotations win over the kept JSON
    up = convert(_v1_group({"name": "r", "template": TEMPLATE}, podGroupPolicy={"kubeScheduling": {}}), V2)
    up["metadata"]["annotations"][GANG + "-timeout"] = "90"
    assert convert(up, V1)["spec"]["podGroupPolicy"] == {"kubeScheduling": {"scheduleTimeoutSeconds": 90}}
    del up["metadata"]["annotations"][GANG]
    assert "podGroupPolicy" not in convert(up, V1)["spec"]


COORDINATION_JSON = '[{"name":"c","roles":["a","b"],"strategy":{"scaling":{"maxSkew":"5%"}}}]'


def test_a_group_stored_by_upstream_reads_as_the_v1alpha1_it_came_from() -> None:
    """What upstream's own webhook wrote from a v1alpha1 group (no annotations of ours)."""
    stored = {
        "apiVersion": V2,
        "kind": "RoleBasedGroup",
        "metadata": {
            "name": "pd",
            "annotations": {
                C + "v1alpha1-pod-group-policy": '{"kubeScheduling":{"scheduleTimeoutSeconds":60}}',
                GANG: "true",
                GANG + "-timeout": "60",
                C + "v1alpha1-coordination": COORDINATION_JSON,
                EXCLUSIVE_V1: "kubernetes.io/hostname",
                EXCLUSIVE: "kubernetes.io/hostname",
            },
        },
        "spec": {
            "roles": [
                {
                    "name": "a",
                    "replicas": 1,
                    "podManagementPolicy": "Parallel",  # the schema's default, as the API server reads it
                    "annotations": {WORKLOAD: "apps/v1/StatefulSet"},
                    "standalonePattern": {"template": TEMPLATE},
                },
                {
                    "name": "b",
                    "replicas": 1,
                    "podManagementPolicy": "Parallel",
                    "annotations": {WORKLOAD: "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet"},
                    "leaderWorkerPattern": {
                        "size": 2,
                        "template": TEMPLATE,
                        "restartPolicyConfig": {
                            "type": "RecreateRoleInstanceOnPodRestart",
                            "baseDelaySeconds": 30,
                            "maxDelaySeconds": 600,
                        },
                    },
                },
            ]
        },
    }
    down = convert(stored, V1)
    annotations = down["metadata"]["annotations"]
    # upstream writes the policy's JSON even when the gang annotations say it all (we do not): kept
    assert json.loads(annotations.pop(C + "v1alpha2-fields"))["fields"][0]["at"] == [
        "metadata",
        "annotations",
        C + "v1alpha1-pod-group-policy",
    ]
    assert annotations == {EXCLUSIVE_V1: "kubernetes.io/hostname"}
    assert down["spec"]["podGroupPolicy"] == {"kubeScheduling": {"scheduleTimeoutSeconds": 60}}
    assert down["spec"]["coordination"][0]["name"] == "c"
    a, b = down["spec"]["roles"]
    assert a["workload"] == STS
    assert "annotations" not in a
    assert b["workload"] == LWS
    assert b["leaderWorkerSet"] == {"size": 2}
    assert b["restartPolicy"] == "RecreateRoleInstanceOnPodRestart"
    assert "restartPolicyConfig" not in b  # only the v1alpha2 schema's defaults were there
    v1.RoleBasedGroup.model_validate(down)
    assert convert(convert(stored, V1), V2) == stored


def test_coordination_and_the_exclusive_topology_ride_in_annotations() -> None:
    coordination = [{"name": "c", "roles": ["r"], "strategy": {"scaling": {"maxSkew": "5%"}}}]
    group = _v1_group(
        {"name": "r", "template": TEMPLATE},
        annotations={EXCLUSIVE_V1: "kubernetes.io/hostname"},
        coordination=coordination,
    )
    up = convert(group, V2)
    annotations = up["metadata"]["annotations"]
    assert annotations[EXCLUSIVE] == "kubernetes.io/hostname"
    assert json.loads(annotations[C + "v1alpha1-coordination"]) == group["spec"]["coordination"]
    assert convert(up, V1) == group


def test_v1alpha1_extras_ride_in_named_annotations() -> None:
    group = _v1_group(
        {
            "name": "a",
            "template": TEMPLATE,
            "restartPolicy": "RecreateRBGOnPodRestart",
            "restartPolicyConfig": {"baseDelaySeconds": 5, "maxRestarts": 3},
        },
        {
            "name": "b",
            "workload": LWS,
            "template": TEMPLATE,
            "leaderWorkerSet": {"size": 2},
            "restartPolicyConfig": {"type": "RecreateRoleInstanceOnPodRestart", "maxRestarts": 2},
        },
        startupPolicy="Parallel",
    )
    up = convert(group, V2)
    assert up["metadata"]["annotations"] == {C + "v1alpha1-startup-policy": "Parallel"}
    a, b = up["spec"]["roles"]
    assert a["annotations"] == {
        WORKLOAD: "apps/v1/StatefulSet",
        C + "v1alpha1-restart-policy": "RecreateRBGOnPodRestart",
        C + "v1alpha1-restart-policy-config": '{"baseDelaySeconds":5,"maxRestarts":3}',
    }
    assert b["leaderWorkerPattern"]["restartPolicyConfig"] == {
        "type": "RecreateRoleInstanceOnPodRestart",
        **DELAYS,
    }
    assert b["annotations"][C + "v1alpha1-restart-policy-config"] == '{"maxRestarts":2}'
    assert C + "v1alpha1-fields" not in a["annotations"]
    v2.RoleBasedGroup.model_validate(up)
    assert convert(up, V1) == group


def test_v1alpha2_only_fields_ride_in_annotations() -> None:
    native = v2.RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "pd"},
            "spec": {
                "roles": [
                    {
                        "name": "r",
                        "podManagementPolicy": "OrderedReady",
                        "leaderWorkerPattern": {
                            "size": 2,
                            "templateRef": {"name": "base", "patch": {}},
                            "sharedServiceSelection": "LeaderOnly",
                        },
                    }
                ],
                "roleTemplates": [{"name": "base", "template": TEMPLATE}],
            },
        }
    ).wire()
    down = convert(native, V1)
    role = _role(down, 0)
    assert {k: v for k, v in role["annotations"].items() if k != C + "v1alpha2-fields"} == {
        C + "v1alpha2-pod-management-policy": "OrderedReady",
        C + "v1alpha2-shared-service-selection": "LeaderOnly",
    }
    # unannotated: run as the LeaderWorkerSet its pattern maps to (D39); the stash keeps "no annotation"
    assert role["workload"] == {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"}
    assert role["leaderWorkerSet"] == {"size": 2}
    assert (role["templateRef"], role["templatePatch"]) == ({"name": "base"}, {})
    v1.RoleBasedGroup.model_validate(down)
    assert convert(down, V2) == native
    # a change in v1alpha1 meanwhile keeps the rest
    role["leaderWorkerSet"]["size"] = 3
    lwp = _role(convert(down, V2), 0)["leaderWorkerPattern"]
    assert (lwp["size"], lwp["sharedServiceSelection"]) == (3, "LeaderOnly")


def test_a_change_in_the_other_version_wins_over_what_was_kept() -> None:
    group = _v1_group(
        {
            "name": "r",
            "workload": LWS,
            "template": TEMPLATE,
            "leaderWorkerSet": {"size": 2},
            "restartPolicyConfig": {"type": "None"},  # v1alpha1's second place: kept in the stash
        }
    )
    up = convert(group, V2)
    assert C + "v1alpha1-fields" in _role(up, 0)["annotations"]
    assert convert(up, V1) == group
    up["spec"]["roles"][0]["leaderWorkerPattern"]["restartPolicyConfig"]["type"] = (
        "RecreateRoleInstanceOnPodRestart"
    )
    down = _role(convert(up, V1), 0)
    assert down["restartPolicy"] == "RecreateRoleInstanceOnPodRestart"
    assert "restartPolicyConfig" not in down


def test_a_set_keeps_its_v1alpha1_shape() -> None:
    template = {
        "roles": [{"name": "r", "replicas": 1, "workload": STS, "template": TEMPLATE}],
        "podGroupPolicy": {"kubeScheduling": {"scheduleTimeoutSeconds": 60}},
    }
    groupset = {
        "apiVersion": V1,
        "kind": "RoleBasedGroupSet",
        "metadata": {"name": "s"},
        "spec": {"replicas": 2, "template": template, "rolloutStrategy": {"maxUnavailable": 1}},
    }
    up = convert(groupset, V2)
    assert up["metadata"]["annotations"] == {
        C + "v1alpha1-rollout-strategy": '{"maxUnavailable":1}',
        C + "v1alpha1-group-template": "template",
    }
    gt = up["spec"]["groupTemplate"]
    assert gt["annotations"][GANG] == "true"
    assert gt["spec"]["roles"][0]["standalonePattern"] == {"template": TEMPLATE}
    gs2.RoleBasedGroupSet.model_validate(up)
    assert convert(up, V1) == groupset
    # the seed's shape
    seed = {
        "apiVersion": V1,
        "kind": "RoleBasedGroupSet",
        "metadata": {"name": "s"},
        "spec": {"groupTemplate": {"labels": {"a": "b"}, "roles": [{"role": "r", "template": TEMPLATE}]}},
    }
    up = convert(seed, V2)
    assert up["spec"]["groupTemplate"]["spec"]["roles"][0]["name"] == "r"
    assert convert(up, V1) == seed


def test_a_conversion_review_converts_every_object() -> None:
    """Through the runtime's ConversionReview answer (rbg/runtime/conversion.py), as the API server asks."""
    from rbg.runtime.conversion import conversion_response

    group = _v1_group({"name": "r", "template": TEMPLATE, "restartPolicy": "RecreateRBGOnPodRestart"})
    adapter = {
        "apiVersion": V1,
        "kind": "RoleBasedGroupScalingAdapter",
        "metadata": {"name": "a"},
        "spec": {},
    }
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "1", "desiredAPIVersion": V2, "objects": [group, adapter]},
    }
    response = conversion_response(review, convert)["response"]
    assert response["result"] == {"status": "Success"}
    up, adapter_up = response["convertedObjects"]
    assert adapter_up == {**adapter, "apiVersion": V2}
    assert _role(up, 0)["annotations"][C + "v1alpha1-restart-policy"] == "RecreateRBGOnPodRestart"
    back = conversion_response(
        {**review, "request": {**review["request"], "desiredAPIVersion": V1, "objects": [up]}}, convert
    )
    assert back["response"]["convertedObjects"] == [group]
