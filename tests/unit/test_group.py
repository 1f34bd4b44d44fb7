"""The pure RoleBasedGroup core: templates, workloads, discovery, dependencies, validation, plans."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rbg.api.hub import PodGroupPolicy, RoleBasedGroup
from rbg.group import dependencies, desired, names
from rbg.group.plan import plan
from rbg.group.revision import ROLE_REVISION
from rbg.group.validation import not_acted_on, update_warnings, validate

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-23T12:00:00Z"


def example(**meta: Any) -> RoleBasedGroup:
    doc = yaml.safe_load((ROOT / "examples" / "pd-disagg.yaml").read_text())
    doc["metadata"].update({"namespace": "ns", "uid": "uid-1", "generation": 1, **meta})
    return RoleBasedGroup.model_validate(doc)


def rbg_of(roles: list[dict[str, Any]], name: str = "g") -> RoleBasedGroup:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    return RoleBasedGroup.model_validate(
        {
            "metadata": {"name": name, "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "roles": [{k: v for k, v in {"template": tpl, **r}.items() if v is not None} for r in roles]
            },
        }
    )


def test_template_ref_and_patch_build_the_role_template() -> None:
    sts = desired.workload(example(), 1)
    assert sts["kind"] == "StatefulSet"
    assert sts["metadata"]["name"] == "pd-disagg-prefill"
    engine = sts["spec"]["template"]["spec"]["containers"][0]
    assert engine["image"] == "lmsysorg/sglang:v0.5.5"  # from the roleTemplate
    assert engine["args"][-2:] == ["--disaggregation-mode", "prefill"]  # from the templatePatch
    assert engine["resources"] == {"limits": {"nvidia.com/gpu": "1"}}


def test_workload_labels_selector_owner_and_service_name() -> None:
    sts = desired.workload(example(), 1)
    labels = sts["metadata"]["labels"]
    assert labels[names.GROUP_NAME] == "pd-disagg"
    assert labels[names.ROLE_NAME] == "prefill"
    assert labels[names.GROUP_UID] == names.group_uid("ns", "pd-disagg")
    assert sts["spec"]["selector"] == {
        "matchLabels": {names.GROUP_NAME: "pd-disagg", names.ROLE_NAME: "prefill"}
    }
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert sts["spec"]["serviceName"] == "s-pd-disagg-prefill"
    (owner,) = sts["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "name": "pd-disagg",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_env_vars_and_config_mount_in_every_container() -> None:
    rbg = example()
    sts = desired.workload(rbg, 1)
    deploy = desired.workload(rbg, 0)
    engine = sts["spec"]["template"]["spec"]["containers"][0]
    assert engine["env"] == [
        {"name": "RBG_GROUP_NAME", "value": "pd-disagg"},
        {"name": "RBG_ROLE_NAME", "value": "prefill"},
        {
            "name": "RBG_ROLE_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
        },
    ]
    router = deploy["spec"]["template"]["spec"]["containers"][0]
    assert [e["name"] for e in router["env"]] == ["RBG_GROUP_NAME", "RBG_ROLE_NAME"]  # no index: not stateful
    for c in (engine, router):
        assert {"name": "rbg-cluster-config", "mountPath": "/etc/rbg", "readOnly": True} in c["volumeMounts"]
    assert {"name": "rbg-cluster-config", "configMap": {"name": "pd-disagg"}} in sts["spec"]["template"][
        "spec"
    ]["volumes"]


def test_user_env_wins_and_keeps_its_order_after_injected() -> None:
    rbg = rbg_of(
        [
            {
                "name": "a",
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "image": "i",
                                "env": [
                                    {"name": "X", "value": "$(RBG_ROLE_NAME)"},
                                    {"name": "RBG_GROUP_NAME", "value": "mine"},
                                ],
                            }
                        ]
                    }
                },
            }
        ]
    )
    env = desired.workload(rbg, 0)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["RBG_ROLE_NAME", "RBG_ROLE_INDEX", "X", "RBG_GROUP_NAME"]
    assert env[-1]["value"] == "mine"


def test_headless_service_per_role() -> None:
    svc = desired.service(example(), 2)
    assert svc["metadata"]["name"] == "s-pd-disagg-decode"
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {names.GROUP_NAME: "pd-disagg", names.ROLE_NAME: "decode"}


def test_discovery_config_lists_stable_addresses_and_ports() -> None:
    cfg = yaml.safe_load(desired.config_map(example())["data"]["config.yaml"])
    assert cfg["group"] == {"name": "pd-disagg", "roles": ["router", "prefill", "decode"], "size": 3}
    assert cfg["roles"]["prefill"] == {
        "size": 2,
        "service": "s-pd-disagg-prefill.ns",
        "instances": [
            {"address": "pd-disagg-prefill-0.s-pd-disagg-prefill.ns", "ports": {"http": 8000}},
            {"address": "pd-disagg-prefill-1.s-pd-disagg-prefill.ns", "ports": {"http": 8000}},
        ],
    }
    assert cfg["roles"]["router"] == {"size": 1, "service": "s-pd-disagg-router.ns"}


def test_levels_and_cycles() -> None:
    assert dependencies.levels({"router": ["decode"], "decode": ["prefill"], "prefill": []}) == [
        ["prefill"],
        ["decode"],
        ["router"],
    ]
    assert dependencies.levels({"b": [], "a": [], "c": ["a", "b"]}) == [["a", "b"], ["c"]]
    assert str(dependencies.find_cycle({"a": ["b"], "b": ["a"]})) == "a -> b -> a"
    assert str(dependencies.find_cycle({"x": ["x"]})) == "x -> x"
    with pytest.raises(ValueError, match="dependency cycle: a -> b -> c -> a"):
        dependencies.levels({"a": ["b"], "b": ["c"], "c": ["a"], "d": []})


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdef"), max_size=3), min_size=1)
)
def test_levels_respect_every_dependency_or_report_a_real_cycle(deps: dict[str, list[str]]) -> None:
    cycle = dependencies.find_cycle(deps)
    if cycle is None:
        order = {r: i for i, level in enumerate(dependencies.levels(deps)) for r in level}
        assert set(order) == set(deps)
        assert all(order[d] < order[r] for r, ds in deps.items() for d in ds if d in deps)
    else:
        path = cycle.path
        assert path[0] == path[-1]
        assert all(b in deps[a] for a, b in itertools.pairwise(path))


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (
            [{"name": "a", "dependencies": ["b"]}, {"name": "b", "dependencies": ["a"]}],
            ["spec.roles[0].dependencies: dependency cycle: a -> b -> a"],
        ),
        (
            [{"name": "a", "dependencies": ["nope"]}],
            ['spec.roles[0].dependencies[0]: role "a" depends on unknown role "nope"'],
        ),
        ([{"name": "a"}, {"name": "a"}], ['spec.roles[1].name: Duplicate value: "a"']),
        (
            [{"name": "a", "template": None, "templateRef": {"name": "t"}, "templatePatch": {}}],
            ['spec.roles[0].templateRef.name: template "t" not found in spec.roleTemplates'],
        ),
        (
            [{"name": "a", "template": {"spec": {"containers": []}}}],
            ["spec.roles[0].template.spec.containers: must have at least one container"],
        ),
        (
            [
                {
                    "name": "a",
                    "replicas": 2,
                    "rolloutStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}},
                }
            ],
            ["spec.roles[0].rolloutStrategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0"],
        ),
        (
            [{"name": "a", "replicas": 2, "rolloutStrategy": {"rollingUpdate": {"partition": 2}}}],
            ["spec.roles[0].rolloutStrategy.rollingUpdate.partition: 2 must be less than replicas 2"],
        ),
        (
            [{"name": "a", "replicas": 2, "rolloutStrategy": {"rollingUpdate": {"maxSurge": "ten"}}}],
            ['spec.roles[0].rolloutStrategy.rollingUpdate.maxSurge: invalid value "ten"'],
        ),
    ],
)
def test_validation_messages_name_the_field(roles: list[dict[str, Any]], expected: list[str]) -> None:
    assert [str(e) for e in validate(rbg_of(roles))] == expected


def test_coordination_with_unknown_role_and_too_long_statefulset_name() -> None:
    rbg = rbg_of([{"name": "prefill-with-a-rather-long-role-name"}], name="a-very-long-group-name")
    rbg.spec.coordination = RoleBasedGroup.model_validate(
        {
            "spec": {
                "roles": [{"name": "x"}],
                "coordination": [{"name": "c", "roles": ["prefill-with-a-rather-long-role-name", "decode"]}],
            }
        }
    ).spec.coordination
    errors = [str(e) for e in validate(rbg)]
    assert errors[0] == 'spec.coordination[0].roles[1]: unknown role "decode"'
    assert errors[1].startswith(
        'spec.roles[0].name: StatefulSet name "a-very-long-group-name-prefill-with-a-rather'
    )


def sts_status(obj: dict[str, Any], ready: int) -> dict[str, Any]:
    o = copy.deepcopy(obj)
    o["metadata"]["generation"] = 1
    o["status"] = {
        "observedGeneration": 1,
        "replicas": o["spec"]["replicas"],
        "readyReplicas": ready,
        "updatedReplicas": ready,
    }
    return o


def test_plan_waits_for_dependencies_then_creates_the_dependent_role() -> None:
    rbg = example()
    first = plan(rbg, [], NOW)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in first.apply]
    assert kinds == [
        ("ControllerRevision", "pd-disagg-7b455bccff-1"),
        ("ConfigMap", "pd-disagg"),
        ("Service", "s-pd-disagg-router"),
        ("Service", "s-pd-disagg-prefill"),
        ("Service", "s-pd-disagg-decode"),
        ("StatefulSet", "pd-disagg-prefill"),
        ("Deployment", "pd-disagg-router"),
    ]
    assert first.waiting == {"decode": ["prefill"]}
    progressing = first.status["conditions"][1]
    assert (progressing["reason"], progressing["message"]) == ("DependencyNotMet", "decode waits for prefill")

    prefill = next(o for o in first.apply if o["kind"] == "StatefulSet")
    half = plan(rbg, [sts_status(prefill, 1)], NOW)
    assert "decode" in half.waiting
    ready = plan(rbg, [sts_status(prefill, 2)], NOW)
    assert not ready.waiting
    assert ("StatefulSet", "pd-disagg-decode") in [(o["kind"], o["metadata"]["name"]) for o in ready.apply]


def test_parallel_startup_creates_every_role_at_once() -> None:
    rbg = example()
    rbg.spec.startup_policy = "Parallel"
    first = plan(rbg, [], NOW)
    workloads = [(o["kind"], o["metadata"]["name"]) for o in first.apply if o["kind"] != "Service"]
    assert ("StatefulSet", "pd-disagg-decode") in workloads  # not held for prefill
    assert first.waiting == {}


def test_a_paused_rollout_holds_every_pod_where_it_is() -> None:
    roles: list[dict[str, Any]] = [
        {
            "name": "sts",
            "replicas": 4,
            "rolloutStrategy": {"rollingUpdate": {"paused": True, "partition": 1}},
        },
        {
            "name": "dep",
            "replicas": 2,
            "workload": {"apiVersion": "apps/v1", "kind": "Deployment"},
            "rolloutStrategy": {"rollingUpdate": {"paused": True}},
        },
        {
            "name": "lws",
            "replicas": 3,
            "workload": LWS_WORKLOAD,
            "rolloutStrategy": {"rollingUpdate": {"paused": True, "maxSurge": 1}},
        },
        {
            "name": "free",
            "replicas": 2,
            "rolloutStrategy": {"rollingUpdate": {"paused": False, "partition": 1}},
        },
    ]
    rbg = rbg_of(roles)
    sts, dep, lws, free = (desired.workload(rbg, i) for i in range(4))
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 4}}
    assert dep["spec"]["paused"] is True
    assert lws["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"]["partition"] == 3
    assert lws["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"]["maxSurge"] == 0  # no surge group
    assert free["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    assert "paused" not in desired.workload(rbg_of([{**roles[1], "rolloutStrategy": None}]), 0)["spec"]


def test_plan_status_ready_only_when_every_role_is_ready() -> None:
    rbg = example()
    objs = [o for o in plan(rbg, [], NOW).apply if o["kind"] in ("StatefulSet", "Deployment")]
    objs.append(desired.workload(rbg, 2))
    observed = [sts_status(o, o["spec"]["replicas"]) for o in objs]
    result = plan(rbg, observed, NOW)
    ready = result.status["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "AllRolesReady")
    assert result.status["roleStatuses"] == [
        {"name": "router", "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
        {"name": "prefill", "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2},
        {"name": "decode", "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    ]
    observed[0]["status"]["readyReplicas"] = 0
    not_ready = plan(rbg, observed, NOW).status["conditions"][0]
    assert (not_ready["status"], not_ready["message"]) == ("False", "roles not ready: prefill (0/2)")


def test_plan_deletes_workloads_of_removed_or_rekinded_roles_only_if_owned() -> None:
    rbg = example()
    ours = sts_status(desired.workload(rbg, 1), 2)
    removed = copy.deepcopy(ours)
    removed["metadata"]["name"] = "pd-disagg-old"
    foreign = copy.deepcopy(removed)
    foreign["metadata"]["name"] = "someone-else"
    foreign["metadata"]["ownerReferences"][0]["uid"] = "other"
    rekinded = copy.deepcopy(ours)
    rekinded["metadata"]["name"] = "pd-disagg-router"  # router is a Deployment, not a StatefulSet
    deleted = plan(rbg, [ours, removed, foreign, rekinded], NOW).delete
    assert sorted((o["kind"], o["metadata"]["name"]) for o in deleted) == [
        ("StatefulSet", "pd-disagg-old"),
        ("StatefulSet", "pd-disagg-router"),
    ]


def test_invalid_spec_applies_nothing_and_says_why() -> None:
    result = plan(rbg_of([{"name": "a", "dependencies": ["a"]}]), [], NOW)
    assert result.apply == []
    assert result.delete == []
    ready = result.status["conditions"][0]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "InvalidSpec",
        "spec.roles[0].dependencies: dependency cycle: a -> a",
    )


@given(
    st.lists(st.sampled_from(["router", "prefill", "decode", "cache"]), min_size=1, max_size=4, unique=True),
    st.integers(0, 5),
)
def test_builders_are_deterministic_and_names_valid(roles: list[str], replicas: int) -> None:
    rbg = rbg_of([{"name": r, "replicas": replicas} for r in roles])
    a, b = plan(rbg, [], NOW), plan(rbg, [], NOW)
    assert a.apply == b.apply
    for obj in a.apply:
        assert len(obj["metadata"]["name"]) <= 63
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u"
        if obj["kind"] in ("StatefulSet", "Deployment"):
            sel = obj["spec"]["selector"]["matchLabels"]
            assert sel.items() <= obj["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize(
    ("rolling", "message"),
    [
        ({"maxSurge": "5"}, 'spec.roles[0].rolloutStrategy.rollingUpdate.maxSurge: invalid value "5"'),
        (
            {"maxUnavailable": "150%"},
            'spec.roles[0].rolloutStrategy.rollingUpdate.maxUnavailable: invalid value "150%"',
        ),
        (
            {"partition": "120%"},
            'spec.roles[0].rolloutStrategy.rollingUpdate.partition: invalid value "120%"',
        ),
    ],
)
def test_rolling_update_values_kubernetes_would_reject_are_refused(
    rolling: dict[str, Any], message: str
) -> None:
    rbg = rbg_of(
        [
            {
                "name": "a",
                "replicas": 4,
                "workload": {"apiVersion": "apps/v1", "kind": "Deployment"},
                "rolloutStrategy": {"rollingUpdate": rolling},
            }
        ]
    )
    assert [str(e) for e in validate(rbg)] == [message]


def test_percent_partition_becomes_an_ordinal() -> None:
    rbg = rbg_of([{"name": "a", "replicas": 10, "rolloutStrategy": {"rollingUpdate": {"partition": "25%"}}}])
    assert desired.workload(rbg, 0)["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": 2},
    }


def test_names_are_never_truncated_so_long_ones_are_refused() -> None:
    long_role = "r" * 40
    errs = [
        str(e)
        for e in validate(
            rbg_of(
                [{"name": long_role, "workload": {"apiVersion": "apps/v1", "kind": "Deployment"}}],
                name="g" * 22,
            )
        )
    ]
    assert errs == [
        f'spec.roles[0].name: Service name "s-{"g" * 22}-{long_role}" is 65 characters; group and role '
        "names together must keep it at most 63"
    ]
    assert names.workload_name("g" * 30, "x" * 40) == f"{'g' * 30}-{'x' * 40}"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"spec": {"containers": [{"name": "c", "env": "oops"}]}},
            "spec.roles[0].templatePatch: the resulting pod template is malformed: "
            "spec.containers[0].env: must be an array",
        ),
        (
            {"spec": "oops"},
            "spec.roles[0].templatePatch: the resulting pod template is malformed: spec: must be an object",
        ),
    ],
)
def test_malformed_template_patch_is_invalid_spec_not_a_crash(patch: dict[str, Any], message: str) -> None:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    rbg = RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "roleTemplates": [{"name": "t", "template": tpl}],
                "roles": [{"name": "a", "templateRef": {"name": "t"}, "templatePatch": patch}],
            },
        }
    )
    assert [str(e) for e in validate(rbg)] == [message]
    result = plan(rbg, [], NOW)
    assert result.apply == []
    assert result.status["conditions"][0]["reason"] == "InvalidSpec"


def test_names_owned_by_someone_else_are_reported_and_nothing_is_applied() -> None:
    rbg = example()
    result = plan(rbg, [], NOW, taken={("ConfigMap", "pd-disagg"): "no controller (made by hand?)"})
    assert result.apply == []
    assert result.invalid == [
        'metadata.name: ConfigMap "pd-disagg" already exists and belongs to no controller (made by hand?)'
    ]
    assert result.status["conditions"][0]["message"] == result.invalid[0]


def test_invalid_spec_keeps_reporting_the_running_workloads() -> None:
    rbg = rbg_of([{"name": "a", "replicas": 2}])
    running = sts_status(desired.workload(rbg, 0), 2)
    rbg.spec.roles[0].dependencies = ["a"]
    result = plan(rbg, [running], NOW)
    assert result.delete == []
    assert result.status["roleStatuses"][0]["readyReplicas"] == 2


def test_null_list_items_in_a_patch_are_invalid_spec() -> None:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    rbg = RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "roleTemplates": [{"name": "t", "template": tpl}],
                "roles": [
                    {
                        "name": "a",
                        "templateRef": {"name": "t"},
                        "templatePatch": {"spec": {"containers": [{"name": "c", "env": [None]}]}},
                    }
                ],
            },
        }
    )
    assert [str(e) for e in validate(rbg)] == [
        "spec.roles[0].templatePatch: the resulting pod template is malformed: "
        "spec.containers[0].env[0]: must not be null"
    ]
    assert plan(rbg, [], NOW).apply == []


def test_rolling_update_values_are_checked_at_zero_replicas_too() -> None:
    rbg = rbg_of(
        [
            {
                "name": "a",
                "replicas": 0,
                "rolloutStrategy": {"rollingUpdate": {"partition": "x%", "maxSurge": -1}},
            }
        ]
    )
    assert [str(e) for e in validate(rbg)] == [
        'spec.roles[0].rolloutStrategy.rollingUpdate.maxSurge: invalid value "-1"',
        'spec.roles[0].rolloutStrategy.rollingUpdate.partition: invalid value "x%"',
    ]


def test_a_role_of_an_unsupported_kind_is_refused_never_run_as_another_kind() -> None:
    # stored before the CRD's CEL rule existed, or with the CRD edited by hand
    rbg = rbg_of([{"name": "a", "workload": {"apiVersion": "example.com/v1", "kind": "CloneSet"}}])
    result = plan(rbg, [], "2026-01-01T00:00:00Z")
    assert result.apply == []
    assert result.invalid == [
        "spec.roles[0].workload: example.com/v1/CloneSet is not supported by this "
        "operator (apps/v1 StatefulSet or Deployment, leaderworkerset.x-k8s.io/v1 LeaderWorkerSet, or "
        "workloads.x-k8s.io/v1alpha2 RoleInstanceSet)"
    ]
    assert result.status["conditions"][0]["reason"] == "InvalidSpec"


LWS_WORKLOAD = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, "RecreateGroupOnPodRestart"),
        ("RecreateRoleInstanceOnPodRestart", "RecreateGroupOnPodRestart"),
        ("None", "None"),
    ],
)
def test_a_leaderworkerset_role_becomes_an_lws_with_upstreams_restart_mapping(
    policy: str | None, expected: str
) -> None:
    role: dict[str, Any] = {
        "name": "prefill",
        "replicas": 3,
        "workload": LWS_WORKLOAD,
        "leaderWorkerSet": {"size": 2, "patchLeaderTemplate": {"metadata": {"labels": {"tier": "leader"}}}},
        "rolloutStrategy": {"rollingUpdate": {"maxSurge": 1, "partition": 1}},
    }
    if policy:
        role["restartPolicy"] = policy
    rbg = rbg_of([role])
    lws = desired.workload(rbg, 0)
    assert (lws["apiVersion"], lws["kind"], lws["metadata"]["name"]) == (
        "leaderworkerset.x-k8s.io/v1",
        "LeaderWorkerSet",
        "g-prefill",
    )
    lwt = lws["spec"]["leaderWorkerTemplate"]
    assert (lws["spec"]["replicas"], lwt["size"], lwt["restartPolicy"]) == (3, 2, expected)
    assert lwt["leaderTemplate"]["metadata"]["labels"]["tier"] == "leader"
    assert "tier" not in lwt["workerTemplate"]["metadata"]["labels"]
    assert lws["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"] == {
        "maxUnavailable": 1,
        "maxSurge": 1,
        "partition": 1,
    }
    env = {e["name"]: e for e in lwt["workerTemplate"]["spec"]["containers"][0]["env"]}
    assert (
        env["RBG_ROLE_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
        == "metadata.labels['leaderworkerset.sigs.k8s.io/group-index']"
    )
    instances = desired.discovery_config(rbg)["roles"]["prefill"]["instances"]
    assert instances[2] == {"address": "g-prefill-2.g-prefill.ns", "workers": ["g-prefill-2-1.g-prefill.ns"]}


def test_a_worker_patch_alone_never_reaches_the_leader() -> None:
    role: dict[str, Any] = {
        "name": "prefill",
        "replicas": 1,
        "workload": LWS_WORKLOAD,
        "leaderWorkerSet": {"size": 3, "patchWorkerTemplate": {"metadata": {"labels": {"tier": "worker"}}}},
    }
    lwt = desired.workload(rbg_of([role]), 0)["spec"]["leaderWorkerTemplate"]
    assert lwt["workerTemplate"]["metadata"]["labels"]["tier"] == "worker"
    assert "tier" not in lwt["leaderTemplate"]["metadata"]["labels"]  # the leader is the role's template


def test_gang_policy_makes_a_podgroup_sized_to_the_group_and_labels_its_pods() -> None:
    gpu = {"resources": {"limits": {"nvidia.com/gpu": "2"}}}
    tpl = {"spec": {"containers": [{"name": "c", "image": "i", **gpu}]}}
    rbg = RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "podGroupPolicy": {"kubeScheduling": {"scheduleTimeoutSeconds": 30}},
                "roles": [
                    {
                        "name": "prefill",
                        "replicas": 2,
                        "template": tpl,
                        "workload": LWS_WORKLOAD,
                        "leaderWorkerSet": {"size": 2},
                    },
                    {"name": "decode", "replicas": 1, "template": tpl},
                ],
            },
        }
    )
    result = plan(rbg, [], "t")
    (pg,) = [o for o in result.apply if o["kind"] == "PodGroup"]
    assert pg["apiVersion"] == "scheduling.x-k8s.io/v1alpha1"
    assert pg["spec"] == {
        "minMember": 5,
        "minResources": {"nvidia.com/gpu": "10"},
        "scheduleTimeoutSeconds": 30,
    }
    sts = next(o for o in result.apply if o["kind"] == "StatefulSet")
    assert sts["spec"]["template"]["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "g"
    assert sts["spec"]["template"]["spec"]["schedulerName"] == "scheduler-plugins-scheduler"
    assert result.apply.index(pg) < result.apply.index(sts)  # the PodGroup exists before any pod

    # removing the policy deletes the PodGroup the group owns
    owned = {**pg, "metadata": {**pg["metadata"], "uid": "pg1"}}
    rbg.spec.pod_group_policy = None
    assert [o["kind"] for o in plan(rbg, [owned], "t").delete] == ["PodGroup"]


def test_volcano_policy_makes_a_volcano_podgroup_and_annotates_the_pods() -> None:
    rbg = rbg_of([{"name": "a", "replicas": 3}])
    rbg.spec.pod_group_policy = PodGroupPolicy.model_validate(
        {"volcanoScheduling": {"queue": "q", "priorityClassName": "high"}}
    )
    result = plan(rbg, [], "t")
    (pg,) = [o for o in result.apply if o["kind"] == "PodGroup"]
    assert pg["apiVersion"] == "scheduling.volcano.sh/v1beta1"
    assert pg["spec"]["minMember"] == 3
    assert (pg["spec"]["queue"], pg["spec"]["priorityClassName"]) == ("q", "high")
    sts = next(o for o in result.apply if o["kind"] == "StatefulSet")
    assert sts["spec"]["template"]["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "g"
    assert "schedulerName" not in sts["spec"]["template"]["spec"]


def test_the_apis_own_role_annotations_stay_off_the_workload() -> None:
    """Conversion bookkeeping and the workload-type key speak to the API, not to the role's workload."""
    role = {
        "name": "a",
        "annotations": {
            "team": "x",
            "conversion.workloads.x-k8s.io/v1alpha2-pod-management-policy": "OrderedReady",
            "conversion.workloads.x-k8s.io/v1alpha2-fields": "{}",
            "rbg.workloads.x-k8s.io/role-workload-type": "apps/v1/StatefulSet",
        },
    }
    sts = desired.workload(rbg_of([role]), 0)
    assert sts["metadata"]["annotations"] == {"team": "x", names.ROLE_SIZE: "1"}


RIS_WORKLOAD = {"apiVersion": "workloads.x-k8s.io/v1alpha2", "kind": "RoleInstanceSet"}


def _ris_role(components: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "a", "workload": RIS_WORKLOAD, "template": None, "components": components, **extra}


def _component(name: str, size: int = 1, image: str = "i") -> dict[str, Any]:
    return {"name": name, "size": size, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}


def test_a_components_role_runs_as_a_role_instance_set_with_finished_component_templates() -> None:
    rbg = rbg_of([_ris_role([_component("leader"), {**_component("worker", 2), "labels": {"tier": "w"}}])])
    assert validate(rbg) == []
    ris = next(o for o in plan(rbg, [], NOW).apply if o["kind"] == "RoleInstanceSet")
    assert ris["apiVersion"] == "workloads.x-k8s.io/v1alpha2"
    assert ris["metadata"]["name"] == "g-a"
    spec = ris["spec"]
    assert spec["selector"] == names.selector("g", "a")
    leader, worker = spec["roleInstanceTemplate"]["components"]
    assert (leader["name"], leader["size"], worker["name"], worker["size"]) == ("leader", 1, "worker", 2)
    assert worker["serviceName"] == "s-g-a"
    assert worker["template"]["metadata"]["labels"]["tier"] == "w"
    env = {e["name"]: e for e in worker["template"]["spec"]["containers"][0]["env"]}
    assert env["RBG_ROLE_INSTANCE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['rbg.workloads.x-k8s.io/role-instance-name']"
    )
    assert env["RBG_COMPONENT_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    # one revision for the instance: every component and the set carry it
    revs = {c["template"]["metadata"]["labels"][ROLE_REVISION] for c in (leader, worker)}
    assert revs == {ris["metadata"]["labels"][ROLE_REVISION]}
    changed = rbg_of([_ris_role([_component("leader"), _component("worker", 2, image="j")])])
    again = next(o for o in plan(changed, [], NOW).apply if o["kind"] == "RoleInstanceSet")
    assert again["metadata"]["labels"][ROLE_REVISION] != ris["metadata"]["labels"][ROLE_REVISION]


def test_a_role_instance_set_upstream_made_is_replaced_not_written_over() -> None:
    rbg = rbg_of([_ris_role([_component("leader")])])
    ours = next(o for o in plan(rbg, [], NOW).apply if o["kind"] == "RoleInstanceSet")
    theirs = copy.deepcopy(ours)
    theirs["metadata"]["uid"] = "r1"
    del theirs["metadata"]["annotations"]["rbg.workloads.x-k8s.io/role-instances-as"]
    result = plan(rbg, [theirs], NOW)
    assert [o["kind"] for o in result.apply if o["kind"] == "RoleInstanceSet"] == []
    assert [o["metadata"]["uid"] for o in result.delete] == ["r1"]
    ours_seen = copy.deepcopy(ours)
    ours_seen["metadata"]["uid"] = "r2"
    again = plan(rbg, [ours_seen], NOW)
    assert [o["metadata"]["name"] for o in again.apply if o["kind"] == "RoleInstanceSet"] == ["g-a"]
    assert again.delete == []


def test_a_component_without_a_size_has_one_pod_everywhere() -> None:
    rbg = rbg_of([_ris_role([{**_component("leader"), "size": None}])])
    assert validate(rbg) == []
    ris = next(o for o in plan(rbg, [], NOW).apply if o["kind"] == "RoleInstanceSet")
    assert ris["spec"]["roleInstanceTemplate"]["components"][0]["size"] == 1
    config = yaml.safe_load(desired.config_map(rbg)["data"]["config.yaml"])
    assert config["roles"]["a"]["instances"][0]["components"] == {"leader": ["g-a-0-leader-0.s-g-a.ns"]}


def test_ordered_components_under_a_gang_are_refused_and_surge_is_warned() -> None:
    ordered = _component("router")
    ordered["annotations"] = {
        "rolebasedgroup.workloads.x-k8s.io/component-depends-on": '{"startAfter":["x"]}'
    }
    rbg = rbg_of([_ris_role([_component("x"), ordered])])
    assert validate(rbg) == []
    gang = RoleBasedGroup.model_validate(
        {**rbg.wire(), "spec": {**rbg.wire()["spec"], "podGroupPolicy": {"kubeScheduling": {}}}}
    )
    (error,) = validate(gang)
    assert error.field == "spec.roles[0].components[1]"
    assert "can never happen under spec.podGroupPolicy" in str(error)
    surge = rbg_of([_ris_role([_component("x")], rolloutStrategy={"rollingUpdate": {"maxSurge": 1}})])
    assert [w.field for w in not_acted_on(surge)] == ["spec.roles[0].rolloutStrategy.rollingUpdate.maxSurge"]


def test_a_components_role_is_refused_for_what_its_statefulsets_could_not_be() -> None:
    cases = {
        "no components": ([], "spec.roles[0].components", "needs at least one component"),
        "bad name": ([_component("Leader")], "spec.roles[0].components[0].name", "must be a DNS label"),
        "duplicate": (
            [_component("x"), _component("x")],
            "spec.roles[0].components[1].name",
            'duplicate component "x"',
        ),
        "too long": ([_component("c" * 43)], "spec.roles[0].components[0].name", "is too long"),
        "no template": (
            [{"name": "x", "size": 1}],
            "spec.roles[0].components[0].template",
            "must be a pod template",
        ),
    }
    for case, (components, field, message) in cases.items():
        errors = validate(rbg_of([_ris_role(components)]))
        assert [e.field for e in errors] == [field], case
        assert message in str(errors[0]), case
    (error,) = validate(rbg_of([_ris_role([_component("x")], template={"spec": {}})]))
    assert error.field == "spec.roles[0].template"
    (error,) = validate(
        rbg_of(
            [
                {
                    **_ris_role([_component("x")]),
                    "workload": {"apiVersion": "workloads.x-k8s.io/v1alpha1", "kind": "InstanceSet"},
                }
            ]
        )
    )
    assert "use workloads.x-k8s.io/v1alpha2 RoleInstanceSet" in str(error)


def test_an_adopted_workload_keeps_its_immutable_selector_and_its_pods_match_it() -> None:
    """Upstream's Deployments select on more labels than ours; the API server never lets a selector
    change, so the existing one is kept and the pod template carries its labels."""
    rbg = rbg_of([{"name": "router", "workload": {"apiVersion": "apps/v1", "kind": "Deployment"}}])
    fresh = next(o for o in plan(rbg, [], NOW).apply if o["kind"] == "Deployment")
    theirs = {names.GROUP_NAME: "g", names.ROLE_NAME: "router", "rbg.workloads.x-k8s.io/group-uid": "u"}
    adopted = copy.deepcopy(fresh)
    adopted["metadata"]["uid"] = "d1"
    adopted["spec"]["selector"] = {"matchLabels": theirs}
    body = next(o for o in plan(rbg, [adopted], NOW).apply if o["kind"] == "Deployment")
    assert body["spec"]["selector"] == {"matchLabels": theirs}
    labels = body["spec"]["template"]["metadata"]["labels"]
    assert theirs.items() <= labels.items()
    assert labels[ROLE_REVISION] == fresh["spec"]["template"]["metadata"]["labels"][ROLE_REVISION]
    # one made by us is left as built
    ours = copy.deepcopy(fresh)
    ours["metadata"]["uid"] = "d1"
    assert next(o for o in plan(rbg, [ours], NOW).apply if o["kind"] == "Deployment") == fresh


def test_a_v1alpha2_ordered_ready_role_starts_its_statefulset_one_pod_at_a_time_once_made() -> None:
    ordered = {"name": "a", "annotations": {names.POD_MANAGEMENT_POLICY: "OrderedReady"}}
    rbg = rbg_of([ordered, {"name": "b"}])
    made = {o["metadata"]["name"]: o for o in plan(rbg, [], NOW).apply if o["kind"] == "StatefulSet"}
    assert {n: o["spec"]["podManagementPolicy"] for n, o in made.items()} == {
        "g-a": "OrderedReady",
        "g-b": "Parallel",
    }
    # immutable on a StatefulSet: a policy changed on a live role is kept as the StatefulSet has it
    live = copy.deepcopy(made["g-b"])
    live["metadata"]["uid"] = "s1"
    rbg.spec.roles[1].annotations = {names.POD_MANAGEMENT_POLICY: "OrderedReady"}
    again = next(o for o in plan(rbg, [live], NOW).apply if o["metadata"]["name"] == "g-b")
    assert again["spec"]["podManagementPolicy"] == "Parallel"
    # so is its serviceName: upstream's legacy `{rbg}-{role}` Service name stays
    live["spec"]["serviceName"] = "g-b"
    again = next(o for o in plan(rbg, [live], NOW).apply if o["metadata"]["name"] == "g-b")
    assert again["spec"]["serviceName"] == "g-b"


def test_a_leader_only_shared_service_selects_the_leaders_of_a_leader_worker_role() -> None:
    lws = {"workload": LWS_WORKLOAD, "leaderWorkerSet": {"size": 2}}
    only = {names.SHARED_SERVICE_SELECTION: "LeaderOnly"}
    rbg = rbg_of(
        [{"name": "a", **lws, "annotations": only}, {"name": "b", **lws}, {"name": "c", "annotations": only}]
    )
    selectors = [desired.service(rbg, i)["spec"]["selector"] for i in range(3)]
    assert [s.get(names.LWS_WORKER_INDEX) for s in selectors] == ["0", None, None]


def test_a_changed_pod_management_policy_on_a_live_statefulset_role_is_warned() -> None:
    ordered = {"conversion.workloads.x-k8s.io/v1alpha2-pod-management-policy": "OrderedReady"}
    old = rbg_of([{"name": "a"}, {"name": "b", "workload": LWS_WORKLOAD}])
    new = rbg_of([{"name": "a", "annotations": ordered}, {"name": "b", "workload": LWS_WORKLOAD}])
    (warning,) = update_warnings(old, new)
    assert warning.field == "spec.roles[0].podManagementPolicy"
    assert "Parallel -> OrderedReady" in str(warning)
    assert update_warnings(new, new) == []
    # OrderedReady on a leader/worker role: its groups are created in parallel, said at admission
    lws = rbg_of([{"name": "b", "workload": LWS_WORKLOAD, "annotations": ordered}])
    assert [w.field for w in not_acted_on(lws)] == ["spec.roles[0].podManagementPolicy"]


def test_the_discovery_config_follows_the_service_an_adopted_statefulset_keeps() -> None:
    """Upstream's legacy `{rbg}-{role}` serviceName stays on an adopted StatefulSet (immutable): its pods'
    DNS names are under that Service, and the discovery config says so."""
    rbg = rbg_of([{"name": "a", "replicas": 2}])
    sts = next(o for o in plan(rbg, [], NOW).apply if o["kind"] == "StatefulSet")
    adopted = copy.deepcopy(sts)
    adopted["metadata"]["uid"] = "s1"
    adopted["spec"]["serviceName"] = "g-a"
    config_map = next(o for o in plan(rbg, [adopted], NOW).apply if o["kind"] == "ConfigMap")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert [i["address"] for i in config["roles"]["a"]["instances"]] == ["g-a-0.g-a.ns", "g-a-1.g-a.ns"]
    fresh = yaml.safe_load(desired.config_map(rbg)["data"]["config.yaml"])
    assert fresh["roles"]["a"]["instances"][0]["address"] == "g-a-0.s-g-a.ns"


def test_an_order_that_is_no_order_runs_under_a_gang() -> None:
    """A cycle or an unknown name means no order (as upstream): nothing waits, so a gang can run it."""
    looped = _component("a")
    looped["annotations"] = {"rolebasedgroup.workloads.x-k8s.io/component-depends-on": '{"startAfter":["b"]}'}
    other = _component("b")
    other["annotations"] = {"rolebasedgroup.workloads.x-k8s.io/component-depends-on": '{"startAfter":["a"]}'}
    rbg = rbg_of([_ris_role([looped, other])])
    gang = RoleBasedGroup.model_validate(
        {**rbg.wire(), "spec": {**rbg.wire()["spec"], "podGroupPolicy": {"kubeScheduling": {}}}}
    )
    assert validate(gang) == []


def test_a_components_annotation_that_is_not_json_is_refused_naming_the_component() -> None:
    broken = _component("x")
    broken["annotations"] = {"rolebasedgroup.workloads.x-k8s.io/component-discovery": "{not json"}
    (error,) = validate(rbg_of([_ris_role([broken])]))
    assert error.field == "spec.roles[0].components[0].annotations"
    assert "invalid rolebasedgroup.workloads.x-k8s.io/component-discovery annotation JSON" in str(error)


def test_components_on_a_statefulset_role_are_only_warned_never_built() -> None:
    """v1alpha1's free-form components on another kind: the role runs its template; the components
    (here without a template) are not resolved, so they cannot break the plan."""
    rbg = rbg_of([{"name": "a", "components": [{"name": "x"}]}])
    result = plan(rbg, [], NOW)
    assert result.invalid == []
    assert [o["kind"] for o in result.apply if o["kind"] == "StatefulSet"] == ["StatefulSet"]
    assert [w.field for w in not_acted_on(rbg)] == ["spec.roles[0].components"]
