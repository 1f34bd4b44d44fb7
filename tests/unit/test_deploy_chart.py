"""The chart's generated templates are current, and narrow the installer's rights (D44)."""

from __future__ import annotations

from pathlib import Path

import yaml

from rbg.api import crd
from rbg.deploy import chart

CHART = Path(__file__).resolve().parents[2] / "charts" / "rbg"


def test_generated_templates_are_current() -> None:
    stale = [rel for rel, text in chart.files().items() if (CHART / rel).read_text() != text]
    assert not stale, f"run `make chart`: stale {stale}"


def test_every_crd_of_the_operator_is_in_the_chart() -> None:
    names = {Path(rel).name for rel in chart.files() if rel.startswith("templates/crds/")}
    assert names == set(crd.ALL)  # a kind added to the operator adds itself to the chart


def test_cluster_scoped_objects_it_owns_are_named_in_its_rules() -> None:
    rules = chart.cluster_rules()
    groups = {"apiextensions.k8s.io", "admissionregistration.k8s.io"}
    installer = [r for r in rules if set(r["apiGroups"]) & groups]
    assert installer
    assert all(r.get("resourceNames") for r in installer)
    assert all(set(r["verbs"]) <= {"get", "patch"} for r in installer)  # no create, list or delete
    named = {n for r in installer for n in r["resourceNames"]}
    assert {crd.build(n)["metadata"]["name"] for n in crd.ALL} <= named
    # the rest is config/rbac's ClusterRole, which the cluster tests run the operator with
    docs = [d for d in yaml.safe_load_all(chart.RBAC.read_text()) if d and d["kind"] == "ClusterRole"]
    for rule in docs[0]["rules"]:
        if not set(rule["apiGroups"]) & groups:
            assert rule in rules, rule
