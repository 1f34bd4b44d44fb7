"""examples/v1alpha2 (upstream's documented v1alpha2 shapes, written here): each is a valid v1alpha2
object, converts to a hub group this operator runs (or refuses with its reason), and comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rbg.api import hub, v1alpha2
from rbg.api.conversion import convert
from rbg.group.validation import validate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "v1alpha2").glob("*.yaml"))
#: what each role runs as (kind of its workload), written out from D39 and D42; None: refused
RUNS_AS: dict[str, dict[str, str] | None] = {
    "v2-base": {"role-1": "StatefulSet", "role-2": "StatefulSet"},
    "v2-templates": {"role-1": "StatefulSet", "role-2": "StatefulSet"},
    "v2-deps": {"role-1": "StatefulSet", "role-2": "StatefulSet"},
    "v2-lwp": {"inference": "LeaderWorkerSet"},
    "v2-restart": {"inference": "LeaderWorkerSet"},
    "v2-rolling": {"app": "StatefulSet"},
    "v2-pd": {"router": "Deployment", "prefill": "StatefulSet", "decode": "StatefulSet"},
    "v2-pd-lws": {"router": "StatefulSet", "prefill": "LeaderWorkerSet", "decode": "LeaderWorkerSet"},
    "v2-components": {"inference": "RoleInstanceSet"},
}


def _stored(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    doc["metadata"].update({"namespace": "ns", "uid": "u", "generation": 1})
    return doc


def test_every_example_is_listed() -> None:
    assert {yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES} == set(RUNS_AS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_runs_as_documented_or_is_refused(path: Path) -> None:
    doc = _stored(path)
    v1alpha2.RoleBasedGroup.model_validate(doc)  # upstream's v1alpha2 schema takes it
    group = hub.RoleBasedGroup.model_validate(convert(doc, "v1alpha1"))
    expected = RUNS_AS[doc["metadata"]["name"]]
    errors = [str(e) for e in validate(group)]
    assert expected is not None  # (every shape runs now; kept for a refused one to come)
    assert errors == []
    assert {r.name: r.workload.kind for r in group.spec.roles} == expected


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_comes_back_from_v1alpha1_as_written(path: Path) -> None:
    doc = _stored(path)
    assert convert(convert(doc, "v1alpha1"), "v1alpha2") == doc
