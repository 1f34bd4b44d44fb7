"""Micro-benchmark of one reconcile's pure core: `plan()` calls per second, reported by `make bench`.

Two groups: the benchmark's 3 roles (router Deployment, prefill and decode StatefulSets), and 20 roles
built from a roleTemplate with a strategic-merge templatePatch each (the expensive path). Each is
planned in steady state (every child observed, as in most reconciles). The figure is the best of a few
rounds, so that a regression shows up as a number; tests never assert on it.
"""

from __future__ import annotations

import time
from typing import Any

from rbg.api import conversion
from rbg.api.hub import RoleBasedGroup
from rbg.group.plan import plan

NOW = "2026-01-01T00:00:00Z"


def _group(roles: int) -> RoleBasedGroup:
    base = {
        "spec": {
            "containers": [
                {
                    "name": "engine",
                    "image": "registry.local/engine:1",
                    "env": [{"name": "MODEL", "value": "m"}],
                    "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "4"}},
                }
            ]
        }
    }
    spec: dict[str, Any] = {"roles": []}
    if roles == 3:
        for name, n, kind in (
            ("router", 1, "Deployment"),
            ("prefill", 2, "StatefulSet"),
            ("decode", 1, "StatefulSet"),
        ):
            spec["roles"].append(
                {
                    "name": name,
                    "replicas": n,
                    "template": base,
                    "workload": {"apiVersion": "apps/v1", "kind": kind},
                }
            )
    else:
        spec["roleTemplates"] = [{"name": "base", "template": base}]
        for i in range(roles):
            patch = {"spec": {"containers": [{"name": "engine", "args": [f"--role={i}"]}]}}
            spec["roles"].append(
                {
                    "name": f"role{i}",
                    "replicas": 2,
                    "templateRef": {"name": "base"},
                    "templatePatch": patch,
                    "workload": {"apiVersion": "apps/v1", "kind": "StatefulSet" if i % 2 else "Deployment"},
                }
            )
    doc = {
        "apiVersion": "workloads.x-k8s.io/v1alpha1",
        "kind": "RoleBasedGroup",
        "metadata": {"name": f"bench{roles}", "namespace": "bench", "uid": "uid-1", "generation": 1},
        "spec": spec,
    }
    return RoleBasedGroup.model_validate(doc)


def ops_per_second(roles: int, rounds: int = 5, seconds: float = 0.2) -> float:
    rbg = _group(roles)
    children = plan(rbg, [], NOW).apply  # steady state: every child exists
    best = 0.0
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            plan(rbg, children, NOW)
            count += 1
        best = max(best, count / elapsed)
    return round(best, 1)


def conversions_per_second(roles: int, rounds: int = 5, seconds: float = 0.2) -> float:
    """One object through the conversion webhook's core, v1alpha1 -> v1alpha2 -> v1alpha1 (what a
    v1alpha2 client's read and write cost the operator per object; JSON and TLS aside)."""
    doc = _group(roles).wire()
    doc.update(apiVersion="workloads.x-k8s.io/v1alpha1", kind="RoleBasedGroup")
    best = 0.0
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            conversion.convert(conversion.convert(doc, "v1alpha2"), "v1alpha1")
            count += 1
        best = max(best, count / elapsed)
    return round(best, 1)


def run() -> dict[str, float]:
    return {
        "plan_3_roles": ops_per_second(3),
        "plan_20_roles": ops_per_second(20),
        "convert_round_trip_3_roles": conversions_per_second(3),
        "convert_round_trip_20_roles": conversions_per_second(20),
    }


if __name__ == "__main__":
    print(run())
