"""Failure recovery as the plan decides it (rbg.group.recovery over rbg.group.restart)."""

from __future__ import annotations

import copy
from typing import Any

from rbg.api.hub import RoleBasedGroup
from rbg.group import names
from rbg.group.plan import plan
from rbg.group.revision import ROLE_REVISION

NOW = "2026-12-02T00:00:00Z"
Obj = dict[str, Any]


def group(
    policy: str = "RecreateRBGOnPodRestart",
    status: Obj | None = None,
    generation: int = 1,
    image: str = "e:1",
) -> RoleBasedGroup:
    tpl = {"spec": {"containers": [{"name": "c", "image": image}]}}
    return RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": generation},
            "spec": {
                "roles": [
                    {"name": "prefill", "replicas": 2, "template": tpl, "restartPolicy": policy},
                    {"name": "decode", "replicas": 1, "template": tpl},
                ]
            },
            **({"status": status} if status else {}),
        }
    )


def running(rbg: RoleBasedGroup) -> tuple[list[Obj], dict[str, list[Obj]]]:
    """The group's workloads and pods, all caught up and Ready."""
    result = plan(rbg, [], NOW)
    children, pods = [], {}
    for w in (o for o in result.apply if o["kind"] == "StatefulSet"):
        w = copy.deepcopy(w)
        n = w["spec"]["replicas"]
        w["metadata"].update({"generation": 1, "uid": "w"})
        w["status"] = {"observedGeneration": 1, "replicas": n, "readyReplicas": n, "updatedReplicas": n}
        children.append(w)
        role = w["metadata"]["labels"][names.ROLE_NAME]
        label = w["spec"]["template"]["metadata"]["labels"][ROLE_REVISION]
        pods[role] = [
            {
                "metadata": {
                    "name": f"g-{role}-{i}",
                    "uid": f"{role}-{i}",
                    "labels": {names.ROLE_NAME: role, names.POD_INDEX: str(i), ROLE_REVISION: label},
                },
                "status": {"phase": "Running", "containerStatuses": [{"name": "c", "restartCount": 0}]},
            }
            for i in range(n)
        ]
    return children, pods


def test_a_container_restart_recreates_every_pod_and_the_status_holds_them_first() -> None:
    rbg = group()
    children, pods = running(rbg)
    pods["decode"][0]["status"]["containerStatuses"][0]["restartCount"] = 1  # decode's policy: None
    quiet = plan(rbg, children, NOW, pods=pods)
    assert quiet.recreate == []
    assert [c["status"] for c in quiet.status["conditions"] if c["type"] == "Restarting"] == ["False"]
    rbg = group(status=quiet.status)  # the status as written: restarts from now on are acted on
    pods["prefill"][1]["status"]["containerStatuses"][0]["restartCount"] = 1
    result = plan(rbg, children, NOW, pods=pods)
    assert sorted(p["metadata"]["uid"] for p in result.recreate) == ["decode-0", "prefill-0", "prefill-1"]
    assert sorted(result.status["restartStatus"]["recreating"]) == ["decode-0", "prefill-0", "prefill-1"]
    assert [c["status"] for c in result.status["conditions"] if c["type"] == "Restarting"] == ["True"]
    assert any("g-prefill-1" in message for _, _, message in result.events)
    # next pass, status stored: only the deletions are issued again, nothing new starts
    again = plan(group(status=result.status), children, NOW, pods=pods)
    assert sorted(p["metadata"]["uid"] for p in again.recreate) == ["decode-0", "prefill-0", "prefill-1"]
    assert again.events == []


def test_no_recreation_while_the_role_rolls_or_without_a_policy() -> None:
    rbg = group()
    children, pods = running(rbg)
    pods["prefill"][0]["status"]["containerStatuses"][0]["restartCount"] = 3
    prefill = next(c for c in children if c["metadata"]["name"] == "g-prefill")
    prefill["status"]["updatedReplicas"] = 1  # prefill mid-rollout
    assert plan(rbg, children, NOW, pods=pods).recreate == []
    none = group(policy="None")
    c2, p2 = running(none)
    p2["prefill"][0]["status"]["containerStatuses"][0]["restartCount"] = 3
    result = plan(none, c2, NOW, pods=p2)
    assert result.recreate == []
    assert "restartStatus" not in result.status


def test_a_failed_bound_is_cleared_by_a_change_of_the_roles_not_by_scaling() -> None:
    revision = plan(group(), [], NOW).status["currentRevision"]
    failed = {
        "restartStatus": {
            "records": [{"scope": "", "count": 2, "failed": True}],
            "revision": revision,
            "baseline": {},
        }
    }
    rbg = group(status=failed)
    children, pods = running(rbg)
    pods["prefill"][0]["status"]["containerStatuses"][0]["restartCount"] = 1
    assert plan(rbg, children, NOW, pods=pods).recreate == []
    scaled = group(status=failed, generation=2)  # e.g. an autoscaler's replicas: the same revision
    assert plan(scaled, children, NOW, pods=pods).recreate == []
    fixed = group(status=failed, generation=3, image="e:2")
    children2, pods2 = running(fixed)
    pods2["prefill"][0]["status"]["containerStatuses"][0]["restartCount"] = 1
    assert len(plan(fixed, children2, NOW, pods=pods2).recreate) == 3


def test_restarts_from_before_the_policy_applied_recreate_nothing() -> None:
    rbg = group()
    children, pods = running(rbg)
    pods["prefill"][0]["status"]["containerStatuses"][0]["restartCount"] = 7  # days ago
    first = plan(rbg, children, NOW, pods=pods)
    assert first.recreate == []
    assert first.status["restartStatus"]["baseline"] == {"prefill-0": 7}
    pods["prefill"][0]["status"]["containerStatuses"][0]["restartCount"] = 8  # a new restart
    assert len(plan(group(status=first.status), children, NOW, pods=pods).recreate) == 3
