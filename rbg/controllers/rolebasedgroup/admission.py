"""Admission for RoleBasedGroups: what the CRD schema and CEL cannot check (rbg.group.validation)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from pydantic import ValidationError

from rbg.api.hub import GROUP, VERSION, RoleBasedGroup
from rbg.api.hub_scaling import RoleBasedGroupScalingAdapter
from rbg.controllers.kinds import RBGSA
from rbg.coordination.validation import update_errors
from rbg.group.validation import not_acted_on, update_warnings, validate
from rbg.runtime.admission import typed
from rbg.runtime.manager import Manager
from rbg.runtime.webhook import Request, Rule, Verdict
from rbg.scaling import adapter

RULE = Rule(
    path="/validate-workloads-x-k8s-io-v1alpha1-rolebasedgroup",
    name="vrolebasedgroup.workloads.x-k8s.io",
    group=GROUP,
    version=VERSION,
    resource="rolebasedgroups",
)


Adapters = Callable[[str], dict[str, RoleBasedGroupScalingAdapter]]


def check(
    new: RoleBasedGroup, old: RoleBasedGroup | None, adapters: Adapters | None = None
) -> tuple[list[str], list[str]]:
    """(errors, warnings) of a create (old None) or update; `adapters`: a namespace's scaling adapters
    by name."""
    errors = [str(e) for e in validate(new)]
    warnings = [str(w) for w in not_acted_on(new)]
    if old is not None:
        errors += [f"{path}: {msg}" for path, msg in update_errors(old, new)]
        warnings += [str(w) for w in update_warnings(old, new)]
        if adapters is not None:
            errors += adapter.lock_errors(old, new, adapters(new.metadata.namespace))
    return errors, warnings


async def validate_rolebasedgroup(request: Request, adapters: Adapters | None = None) -> Verdict:
    """The verdict on a create or update; `adapters`: a namespace's scaling adapters by name."""
    return await typed(RoleBasedGroup, partial(check, adapters=adapters))(request)


class RoleBasedGroupAdmission:
    """The validating webhook with the manager's cache of scaling adapters."""

    def __init__(self, manager: Manager) -> None:
        self.adapters = manager.informer(RBGSA)
        self.validate = typed(RoleBasedGroup, partial(check, adapters=self._adapters))

    def _adapters(self, namespace: str) -> dict[str, RoleBasedGroupScalingAdapter]:
        out = {}
        for obj in self.adapters.list(namespace):
            try:
                out[obj["metadata"]["name"]] = RoleBasedGroupScalingAdapter.model_validate(obj)
            except ValidationError:
                continue
        return out
