"""Admission for RoleBasedGroups: what the CRD schema and CEL cannot check (rbg.group.validation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from rbg.api.scaling_v1alpha1 import RoleBasedGroupScalingAdapter
from rbg.api.v1alpha1 import GROUP, VERSION, RoleBasedGroup
from rbg.controllers.kinds import RBGSA
from rbg.coordination.validation import update_errors
from rbg.group.validation import not_acted_on, validate
from rbg.runtime.manager import Manager
from rbg.runtime.webhook import Rule, Verdict
from rbg.scaling import adapter

RULE = Rule(
    path="/validate-workloads-x-k8s-io-v1alpha1-rolebasedgroup",
    name="vrolebasedgroup.workloads.x-k8s.io",
    group=GROUP,
    version=VERSION,
    resource="rolebasedgroups",
)


Adapters = Callable[[str], dict[str, RoleBasedGroupScalingAdapter]]


async def validate_rolebasedgroup(request: dict[str, Any], adapters: Adapters | None = None) -> Verdict:
    """The verdict on a create or update; `adapters`: a namespace's scaling adapters by name."""
    obj = request.get("object") or {}
    try:
        rbg = RoleBasedGroup.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        return Verdict([f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"])
    errors = [str(e) for e in validate(rbg)]
    old = request.get("oldObject")
    if old and request.get("operation") == "UPDATE":
        try:
            before = RoleBasedGroup.model_validate(old)
        except ValidationError:
            before = None  # stored before a schema change: nothing to compare against
        if before is not None:
            errors += [f"{path}: {msg}" for path, msg in update_errors(before, rbg)]
            if adapters is not None:
                errors += adapter.lock_errors(before, rbg, adapters(rbg.metadata.namespace))
    return Verdict(errors, [str(w) for w in not_acted_on(rbg)])


class RoleBasedGroupAdmission:
    """The validating webhook with the manager's cache of scaling adapters."""

    def __init__(self, manager: Manager) -> None:
        self.adapters = manager.informer(RBGSA)

    async def validate(self, request: dict[str, Any]) -> Verdict:
        return await validate_rolebasedgroup(request, self._adapters)

    def _adapters(self, namespace: str) -> dict[str, RoleBasedGroupScalingAdapter]:
        out = {}
        for obj in self.adapters.list(namespace):
            try:
                out[obj["metadata"]["name"]] = RoleBasedGroupScalingAdapter.model_validate(obj)
            except ValidationError:
                continue
        return out
