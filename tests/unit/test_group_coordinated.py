"""Coordinated rolling update and scaling as the plan writes them into workloads (rbg.group.coordinated)."""

from __future__ import annotations

import copy
from typing import Any

from rbg.api.hub import RoleBasedGroup
from rbg.group.plan import plan
from rbg.group.revision import ROLE_REVISION as REV

NOW = "2026-12-02T00:00:00Z"
Obj = dict[str, Any]


def group(prefill: int, decode: int, image: str = "e:1", **strategy: Any) -> RoleBasedGroup:
    def role(name: str, n: int) -> Obj:
        return {
            "name": name,
            "replicas": n,
            "template": {"spec": {"containers": [{"name": "c", "image": image}]}},
        }

    return RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "roles": [role("prefill", prefill), role("decode", decode)],
                "coordination": [{"name": "pd", "roles": ["prefill", "decode"], "strategy": strategy}],
            },
        }
    )


def workloads(result: Any) -> dict[str, Obj]:
    return {w["metadata"]["name"].removeprefix("g-"): w for w in result.apply if w["kind"] == "StatefulSet"}


def observed(body: Obj, replicas: int, updated: int, ready: int | None = None) -> Obj:
    """The workload as the cache shows it once its controller caught up."""
    out = copy.deepcopy(body)
    out["spec"]["replicas"] = replicas
    out["metadata"].update({"generation": 1, "uid": "w-" + out["metadata"]["name"]})
    out["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": replicas if ready is None else ready,
        "updatedReplicas": updated,
    }
    return out


def pods(role: str, scheduled: int) -> list[Obj]:
    return [
        {"metadata": {"name": f"{role}-{i}", "labels": {}}, "spec": {"nodeName": "n"}}
        for i in range(scheduled)
    ]


def partition(w: Obj) -> int:
    return int(((w["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)


def test_coordinated_scaling_steps_15_5_then_30_10_once_scheduled() -> None:
    rbg = group(300, 100, scaling={"maxSkew": "5%", "progression": "OrderScheduled"})
    first = workloads(plan(rbg, [], NOW))
    assert (first["prefill"]["spec"]["replicas"], first["decode"]["spec"]["replicas"]) == (15, 5)
    seen = [observed(first["prefill"], 15, 15, ready=0), observed(first["decode"], 5, 5, ready=0)]
    held = workloads(plan(rbg, seen, NOW, pods={"prefill": pods("prefill", 15), "decode": pods("decode", 3)}))
    assert (held["prefill"]["spec"]["replicas"], held["decode"]["spec"]["replicas"]) == (15, 5)
    second = plan(rbg, seen, NOW, pods={"prefill": pods("prefill", 15), "decode": pods("decode", 5)})
    nxt = workloads(second)
    assert (nxt["prefill"]["spec"]["replicas"], nxt["decode"]["spec"]["replicas"]) == (30, 10)
    assert second.status["coordinationProgress"] == [
        {"name": "pd", "type": "Scaling", "phase": "InProgress", "progress": "prefill 15/300, decode 5/100"}
    ]
    ready = second.status["conditions"][0]
    assert ready["status"] == "False"  # a group still scaling is not Ready


def on(body: Obj, n: int) -> list[Obj]:
    """n pods of the workload on its template (by their role-revision label)."""
    label = body["spec"]["template"]["metadata"]["labels"][REV]
    return [{"metadata": {"name": f"p{i}", "labels": {REV: label}}, "spec": {}} for i in range(n)]


def test_coordinated_rolling_update_holds_each_role_within_the_skew() -> None:
    old = group(6, 3, rollingUpdate={"maxSkew": "34%"})
    at_rest = workloads(plan(old, [], NOW))
    assert partition(at_rest["prefill"]) == 0  # created now: nothing to roll, no partition
    seen = [observed(at_rest["prefill"], 6, 6), observed(at_rest["decode"], 3, 3)]
    olds = {"prefill": on(at_rest["prefill"], 6), "decode": on(at_rest["decode"], 3)}
    new = group(6, 3, image="e:2", rollingUpdate={"maxSkew": "34%"})
    first = workloads(plan(new, seen, NOW, pods=olds))
    assert (partition(first["prefill"]), partition(first["decode"])) == (4, 2)
    # the cache shows the new template and a status saying all are updated: only pods count
    stale = [observed(first["prefill"], 6, 6), observed(first["decode"], 3, 3)]
    again = workloads(plan(new, stale, NOW, pods=olds))
    assert (partition(again["prefill"]), partition(again["decode"])) == (4, 2)
    # decode's pod updated (1/3), prefill's two (2/6): both may go on
    moved = {"prefill": on(first["prefill"], 2), "decode": on(first["decode"], 1)}
    nxt = workloads(plan(new, stale, NOW, pods=moved))
    assert partition(nxt["prefill"]) < 4
    assert partition(nxt["decode"]) < 2
    done = {"prefill": on(first["prefill"], 6), "decode": on(first["decode"], 3)}
    end = workloads(
        plan(new, [observed(nxt["prefill"], 6, 6), observed(nxt["decode"], 3, 3)], NOW, pods=done)
    )
    assert (partition(end["prefill"]), partition(end["decode"])) == (0, 0)


def test_a_role_alone_in_a_coordination_or_without_one_is_not_narrowed() -> None:
    rbg = group(300, 100, scaling={"maxSkew": "5%"})
    rbg.spec.coordination[0].roles = ["prefill"]
    alone = workloads(plan(rbg, [], NOW))
    assert alone["prefill"]["spec"]["replicas"] == 300
    assert "coordinationProgress" not in plan(rbg, [], NOW).status


def batched_group(prefill: int, decode: int, image: str = "e:1", **strategy: Any) -> RoleBasedGroup:
    rbg = group(prefill, decode, image=image, **strategy)
    doc = rbg.model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["coordination"].append(
        {
            "name": "batches",
            "roles": ["prefill", "decode"],
            "strategy": {
                "affinityScheduling": {
                    "topologyKey": "kubernetes.io/hostname",
                    "ratios": {"prefill": 2, "decode": 1},
                }
            },
        }
    )
    return RoleBasedGroup.model_validate(doc)


def test_batched_roles_scale_by_whole_batches() -> None:
    rbg = batched_group(6, 3, scaling={"maxSkew": "10%", "progression": "OrderScheduled"})
    first = workloads(plan(rbg, [], NOW))
    assert (first["prefill"]["spec"]["replicas"], first["decode"]["spec"]["replicas"]) == (2, 1)  # one batch
    seen = [observed(first["prefill"], 2, 2), observed(first["decode"], 1, 1)]
    bound = {"prefill": pods("prefill", 2), "decode": pods("decode", 1)}
    nxt = workloads(plan(rbg, seen, NOW, pods=bound))
    assert (nxt["prefill"]["spec"]["replicas"], nxt["decode"]["spec"]["replicas"]) == (4, 2)  # the next batch


def test_batched_roles_roll_by_whole_batches() -> None:
    old = batched_group(6, 3, rollingUpdate={"maxSkew": "10%"})
    at_rest = workloads(plan(old, [], NOW))
    seen = [observed(at_rest["prefill"], 6, 6), observed(at_rest["decode"], 3, 3)]
    olds = {"prefill": on(at_rest["prefill"], 6), "decode": on(at_rest["decode"], 3)}
    new = batched_group(6, 3, image="e:2", rollingUpdate={"maxSkew": "10%"})
    first = workloads(plan(new, seen, NOW, pods=olds))
    # the top batch (prefill 4-5, decode 2) updates together, though 10 % is less than one pod
    assert (partition(first["prefill"]), partition(first["decode"])) == (4, 2)
    half = {"prefill": on(first["prefill"], 2), "decode": on(first["decode"], 1)}
    stale = [observed(first["prefill"], 6, 2), observed(first["decode"], 3, 1)]
    second = workloads(plan(new, stale, NOW, pods=half))
    assert (partition(second["prefill"]), partition(second["decode"])) == (2, 1)


def test_a_coordination_partition_holds_recreate_statefulset_roles_too() -> None:
    # type Recreate (OnDelete) holds no partition on the StatefulSet: the operator's deletes must keep
    # the coordination's canary (here 50 %: prefill ordinals 0-2 stay old) as a rolling one would
    from rbg.group.names import POD_INDEX
    from rbg.group.revision import ROLE_REVISION

    def group(image: str) -> RoleBasedGroup:
        def role(name: str, n: int) -> dict[str, Any]:
            tpl = {"spec": {"containers": [{"name": "c", "image": image}]}}
            return {
                "name": name,
                "replicas": n,
                "template": tpl,
                "rolloutStrategy": {"rollingUpdate": {"type": "Recreate"}},
            }

        ru = {"maxSkew": "100%", "partition": "50%"}
        return RoleBasedGroup.model_validate(
            {
                "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1},
                "spec": {
                    "roles": [role("prefill", 6), role("decode", 3)],
                    "coordination": [
                        {"name": "pd", "roles": ["prefill", "decode"], "strategy": {"rollingUpdate": ru}}
                    ],
                },
            }
        )

    def pods_of(body: dict[str, Any], n: int) -> list[dict[str, Any]]:
        label = body["spec"]["template"]["metadata"]["labels"][ROLE_REVISION]
        return [
            {
                "metadata": {
                    "name": f"{body['metadata']['name']}-{i}",
                    "uid": str(i),
                    "labels": {ROLE_REVISION: label, POD_INDEX: str(i)},
                },
                "spec": {},
            }
            for i in range(n)
        ]

    old = workloads(plan(group("e:1"), [], NOW))
    olds = {"prefill": pods_of(old["prefill"], 6), "decode": pods_of(old["decode"], 3)}
    new = group("e:2")
    first = workloads(
        plan(new, [observed(old["prefill"], 6, 6), observed(old["decode"], 3, 3)], NOW, pods=olds)
    )
    # the StatefulSets have observed the new template, no pod updated yet
    second = plan(new, [observed(first["prefill"], 6, 0), observed(first["decode"], 3, 0)], NOW, pods=olds)
    deleted = sorted(p["metadata"]["name"] for p in second.replace)
    assert [n for n in deleted if n.startswith("g-prefill")] == ["g-prefill-3", "g-prefill-4", "g-prefill-5"]
    assert len([n for n in deleted if n.startswith("g-decode")]) < 3  # some of decode kept too
