from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rbg.group.strategicmerge import merge

BASE: dict[str, Any] = {
    "metadata": {"labels": {"app": "engine", "tier": "gpu"}},
    "spec": {
        "containers": [
            {
                "name": "engine",
                "image": "sglang:1",
                "args": ["--port", "8000"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 8000, "name": "http"}],
                "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "8"}},
            },
            {"name": "sidecar", "image": "metrics:1"},
        ],
        "volumes": [{"name": "models", "hostPath": {"path": "/models"}}],
        "tolerations": [{"key": "gpu", "operator": "Exists"}],
    },
}


def test_containers_merge_by_name_and_args_are_replaced() -> None:
    out = merge(BASE, {"spec": {"containers": [{"name": "engine", "args": ["--mode", "prefill"]}]}})
    engine, sidecar = out["spec"]["containers"]
    assert engine["args"] == ["--mode", "prefill"]
    assert engine["image"] == "sglang:1"
    assert sidecar == {"name": "sidecar", "image": "metrics:1"}


def test_env_merges_by_name_and_new_items_append() -> None:
    out = merge(
        BASE,
        {
            "spec": {
                "containers": [
                    {"name": "engine", "env": [{"name": "B", "value": "x"}, {"name": "C", "value": "3"}]}
                ]
            }
        },
    )
    assert out["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "x"},
        {"name": "C", "value": "3"},
    ]


def test_ports_merge_by_container_port_and_maps_merge_recursively() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "engine",
                    "ports": [{"containerPort": 8000, "name": "api"}],
                    "resources": {"limits": {"nvidia.com/gpu": "8"}},
                }
            ]
        }
    }
    engine = merge(BASE, patch)["spec"]["containers"][0]
    assert engine["ports"] == [{"containerPort": 8000, "name": "api"}]
    assert engine["resources"]["limits"] == {"nvidia.com/gpu": "8", "cpu": "8"}


def test_lists_without_strategy_are_replaced() -> None:
    out = merge(BASE, {"spec": {"tolerations": [{"key": "other", "operator": "Exists"}]}})
    assert out["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}]


def test_directives_delete_and_replace() -> None:
    out = merge(
        BASE,
        {
            "metadata": {"labels": {"tier": None}},
            "spec": {
                "containers": [{"name": "sidecar", "$patch": "delete"}],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
            },
        },
    )
    assert out["metadata"]["labels"] == {"app": "engine"}
    assert [c["name"] for c in out["spec"]["containers"]] == ["engine"]
    assert [v["name"] for v in out["spec"]["volumes"]] == ["models", "scratch"]
    replaced = merge(BASE, {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}})
    assert replaced["spec"]["containers"] == [{"name": "only", "image": "x"}]


def test_inputs_are_not_modified() -> None:
    import copy

    before = copy.deepcopy(BASE)
    merge(BASE, {"spec": {"containers": [{"name": "engine", "image": "new"}]}})
    assert before == BASE


names = st.sampled_from(["a", "b", "c", "d"])
containers = st.lists(
    st.builds(lambda n, i: {"name": n, "image": i}, names, st.text("xyz", min_size=1, max_size=3)),
    unique_by=lambda c: c["name"],
    max_size=4,
)


@given(base=containers, patch=containers)
def test_container_merge_properties(base: list[dict[str, str]], patch: list[dict[str, str]]) -> None:
    out = merge({"spec": {"containers": base}}, {"spec": {"containers": patch}})["spec"]["containers"]
    by_name = {c["name"]: c for c in out}
    # names stay unique, every base and patch container is present, patch values win
    assert len(by_name) == len(out)
    assert set(by_name) == {c["name"] for c in base} | {c["name"] for c in patch}
    for c in patch:
        assert by_name[c["name"]]["image"] == c["image"]
    # applying the same patch twice changes nothing more (idempotent)
    again = merge({"spec": {"containers": out}}, {"spec": {"containers": patch}})["spec"]["containers"]
    assert again == out


def test_nulls_and_nested_directives_never_reach_the_result() -> None:
    out = merge(
        {"spec": {"containers": [{"name": "c", "image": "i"}]}},
        {
            "spec": {
                "nodeSelector": {"a": None, "b": "x"},
                "containers": [
                    {"$patch": "replace"},
                    {"name": "d", "image": "j", "env": [{"name": "E", "$patch": "delete"}]},
                ],
            }
        },
    )
    assert out["spec"]["nodeSelector"] == {"b": "x"}
    assert out["spec"]["containers"] == [{"name": "d", "image": "j", "env": [{"name": "E"}]}]


def _mutables(value: Any) -> list[int]:
    """ids of every dict and list inside a JSON-like value."""
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in _mutables(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in _mutables(v))]
    return []


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["image", "args", "env", "workingDir"]),
        st.one_of(st.none(), st.text(max_size=3), st.lists(st.text(max_size=3), max_size=2)),
        max_size=3,
    )
)
def test_merge_result_shares_nothing_with_its_inputs(engine_patch: dict[str, Any]) -> None:
    # callers change the merged template in place (env, mounts): that must never reach the inputs
    import copy

    before = copy.deepcopy(BASE)
    patch = {"metadata": {"labels": {"x": "y"}}, "spec": {"containers": [{"name": "engine", **engine_patch}]}}
    patch_before = copy.deepcopy(patch)
    out = merge(BASE, patch)
    assert before == BASE
    assert patch == patch_before
    assert not set(_mutables(out)) & (set(_mutables(BASE)) | set(_mutables(patch)))
