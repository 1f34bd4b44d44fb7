"""The suite's own layout: pytest imports test modules by basename (rootdir, no packages), so a unit
and a cluster test of the same file name stop the whole run at collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own() -> None:
    names = Counter(
        p.name for p in TESTS.rglob("*.py") if p.name != "__init__.py" and p.name != "conftest.py"
    )
    assert [n for n, k in names.items() if k > 1] == []
