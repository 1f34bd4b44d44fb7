"""Admission for RoleBasedGroups: what the CRD schema and CEL cannot check (rbg.group.validation)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rbg.api.v1alpha1 import GROUP, VERSION, RoleBasedGroup
from rbg.coordination.validation import update_errors
from rbg.group.validation import not_acted_on, validate
from rbg.runtime.webhook import Rule, Verdict

RULE = Rule(
    path="/validate-workloads-x-k8s-io-v1alpha1-rolebasedgroup",
    name="vrolebasedgroup.workloads.x-k8s.io",
    group=GROUP,
    version=VERSION,
    resource="rolebasedgroups",
)


async def validate_rolebasedgroup(request: dict[str, Any]) -> Verdict:
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
    return Verdict(errors, [str(w) for w in not_acted_on(rbg)])
