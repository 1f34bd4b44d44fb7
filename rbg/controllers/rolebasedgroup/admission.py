"""Admission for RoleBasedGroups: what the CRD schema and CEL cannot check (rbg.group.validation), and
the pod templates the group's workloads are made with, checked by the API server (D16)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from pydantic import ValidationError

from rbg.api.hub import GROUP, VERSION, RoleBasedGroup
from rbg.api.hub_scaling import RoleBasedGroupScalingAdapter
from rbg.controllers.kinds import RBGSA
from rbg.coordination.validation import update_errors
from rbg.group import names
from rbg.group.desired import role_pod_templates
from rbg.group.templates import TemplateError, resolve
from rbg.group.validation import not_acted_on, update_warnings, validate
from rbg.runtime.admission import typed, typed_async
from rbg.runtime.dryrun import Template, Verdicts, check_templates
from rbg.runtime.manager import CACHE_WAIT, Manager
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


#: how long the API server's dry run of the pod templates may take within one admission call
DRY_RUN_TIMEOUT = CACHE_WAIT / 2


def templates(rbg: RoleBasedGroup) -> list[Template]:
    """Every pod template the group's workloads are made with, as the user wrote it: the role's own,
    or a role template with the role's patch (merged into a LeaderWorkerSet's leader and workers as
    the workload is), without what the operator adds (its env vars, the discovery volume: a stand-in
    for it, so that a user's own mount of it passes), so that a list index in an error is the index in
    the user's manifest."""
    out = []
    for index, role in enumerate(rbg.spec.roles):
        try:
            made = role_pod_templates(rbg, index, resolve(rbg.spec, index))
        except TemplateError:  # reported by validate(); nothing to dry-run
            continue
        ref = role.template_ref.name if role.template_ref is not None else None
        for body, pods, path, note in made:
            if pods == 0 and role.replicas > 0:  # e.g. the workers of a size-1 LeaderWorkerSet: none
                continue
            if ref is not None and path.endswith(".template"):
                made_of = f"roleTemplates {ref} with spec.roles[{index}].templatePatch"
                note = f"{note}, {made_of}" if note else made_of
            out.append(Template(path, body, note, volumes=(names.CONFIG_VOLUME,)))
    return out


def changed_templates(new: RoleBasedGroup, old: RoleBasedGroup | None) -> list[Template]:
    """The templates a create makes, or those an update changes: a scale or a status-only update costs
    no dry run."""
    fresh = templates(new)
    if old is None:
        return fresh
    try:
        before = templates(old)
    except Exception:
        return fresh
    return [t for t in fresh if t not in before]


class RoleBasedGroupAdmission:
    """The validating webhook with the manager's cache of scaling adapters and its API client (for the
    dry run of the pod templates)."""

    def __init__(self, manager: Manager) -> None:
        self.adapters = manager.informer(RBGSA)
        self.kube = manager.kube
        self.verdicts = Verdicts()
        self.validate = typed_async(RoleBasedGroup, self._check)

    async def _check(
        self, new: RoleBasedGroup, old: RoleBasedGroup | None, request: Request
    ) -> tuple[list[str], list[str]]:
        errors, warnings = check(new, old, self._adapters)
        if errors:
            return errors, warnings
        namespace = request.get("namespace") or new.metadata.namespace or "default"
        checked = await check_templates(
            self.kube,
            namespace,
            changed_templates(new, old),
            within=DRY_RUN_TIMEOUT,
            verdicts=self.verdicts,
        )
        return checked.errors, warnings + checked.warnings

    def _adapters(self, namespace: str) -> dict[str, RoleBasedGroupScalingAdapter]:
        out = {}
        for obj in self.adapters.list(namespace):
            try:
                out[obj["metadata"]["name"]] = RoleBasedGroupScalingAdapter.model_validate(obj)
            except ValidationError:
                continue
        return out
