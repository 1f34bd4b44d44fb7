"""Which status changes are progress only (written at most every couple of seconds) and which flip a
condition (written at once)."""

from __future__ import annotations

from typing import Any

from rbg.group.status import progress_only


def status(ready: str, reason: str, counts: int, generation: int = 1) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "conditions": [
            {"type": "Ready", "status": ready, "reason": reason, "message": f"{counts} ready"},
            {"type": "Progressing", "status": "True", "reason": "RolesProgressing", "message": "x"},
        ],
        "roleStatuses": [{"name": "prefill", "replicas": 2, "readyReplicas": counts}],
    }


def test_counts_and_messages_alone_are_progress() -> None:
    assert progress_only(status("False", "RoleNotReady", 0), status("False", "RoleNotReady", 1))


def test_a_flipped_condition_a_new_reason_or_generation_is_not() -> None:
    before = status("False", "RoleNotReady", 1)
    assert not progress_only(before, status("True", "AllRolesReady", 2))
    assert not progress_only(before, status("False", "InvalidSpec", 1))
    assert not progress_only(before, status("False", "RoleNotReady", 1, generation=2))
    assert not progress_only(None, before)
