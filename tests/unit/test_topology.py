from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rbg.devcluster.errors import DevClusterError
from rbg.devcluster.topology import Topology, load_topology, node_manifests, parse_topology

ZONE, RACK, NVL = (
    "topology.kubernetes.io/zone",
    "topology.rbg.workloads.x-k8s.io/rack",
    "nvidia.com/gpu.clique",
)


def test_default_is_two_zones_two_racks_four_nodes_of_eight_gpus() -> None:
    nodes = node_manifests(Topology(), "v1.35.4")
    assert len(nodes) == 16
    assert Counter(n["metadata"]["labels"][ZONE] for n in nodes) == {"zone-a": 8, "zone-b": 8}
    assert len({n["metadata"]["labels"][RACK] for n in nodes}) == 4
    assert len({n["metadata"]["labels"][NVL] for n in nodes}) == 8
    n0 = nodes[0]
    assert n0["metadata"]["name"] == n0["metadata"]["labels"]["kubernetes.io/hostname"] == "node-a1-0"
    assert n0["status"]["allocatable"] == {
        "cpu": "64",
        "memory": "512Gi",
        "pods": "110",
        "ephemeral-storage": "1Ti",
        "nvidia.com/gpu": "8",
    }
    assert n0["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_yaml_file_with_custom_shape_and_label_keys(tmp_path: Path) -> None:
    f = tmp_path / "topo.yaml"
    f.write_text(
        "zones: 1\nracksPerZone: 3\nnodesPerRack: 2\nnodesPerNVLinkDomain: 1\n"
        "node: {gpus: 4, cpu: 32, memoryGi: 256}\nlabelKeys: {rack: example.com/rack}\n"
    )
    topo = load_topology(f)
    nodes = node_manifests(topo, "v1.35.4")
    assert len(nodes) == 6
    assert {n["metadata"]["labels"]["example.com/rack"] for n in nodes} == {"rack-a1", "rack-a2", "rack-a3"}
    assert nodes[0]["status"]["capacity"]["nvidia.com/gpu"] == "4"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"zone": 2}, "unknown key 'zone'"),
        ({"node": {"gpu": 8}}, "unknown key 'node.gpu'"),
        ({"zones": 0}, "zones: Input should be greater than or equal to 1"),
        (
            {"nodesPerRack": "many"},
            "nodesPerRack: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"nodesPerRack": 4, "nodesPerNVLinkDomain": 3},
            "nodesPerNVLinkDomain (3) must divide nodesPerRack (4)",
        ),
        ({"labelKeys": {"rack": "a/b/c"}}, "labelKeys.rack: 'a/b/c' is not a valid label key"),
        ([1, 2], "expected a mapping at the top level, got list"),
    ],
)
def test_bad_topology_is_one_line_naming_the_key(data: object, message: str) -> None:
    with pytest.raises(DevClusterError) as exc:
        parse_topology(data, "t.yaml")
    assert str(exc.value) == f"t.yaml: {message}"
    assert "\n" not in str(exc.value)


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(DevClusterError, match="cannot read topology file"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: [1\n")
    with pytest.raises(DevClusterError, match="not valid YAML"):
        load_topology(bad)


@given(
    zones=st.integers(1, 4),
    racks=st.integers(1, 4),
    per_domain=st.integers(1, 3),
    domains=st.integers(1, 3),
)
def test_every_node_has_unique_name_and_full_topology(
    zones: int, racks: int, per_domain: int, domains: int
) -> None:
    topo = Topology.model_validate(
        {
            "zones": zones,
            "racksPerZone": racks,
            "nodesPerRack": per_domain * domains,
            "nodesPerNVLinkDomain": per_domain,
        }
    )
    nodes = node_manifests(topo, "v1.35.4")
    names = [n["metadata"]["name"] for n in nodes]
    assert len(names) == len(set(names)) == topo.node_count
    for n in nodes:
        labels = n["metadata"]["labels"]
        assert len(n["metadata"]["name"]) <= 63
        # an NVLink domain never spans racks, a rack never spans zones
        assert labels[NVL].startswith("nvl-" + labels[RACK].removeprefix("rack-"))
        assert labels[RACK].removeprefix("rack-")[0] == labels[ZONE].removeprefix("zone-")
    assert Counter(n["metadata"]["labels"][NVL] for n in nodes) == dict.fromkeys(
        {n["metadata"]["labels"][NVL] for n in nodes}, per_domain
    )


def test_example_topology_file_spells_out_the_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"
    assert load_topology(example) == Topology()
