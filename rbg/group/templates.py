"""The pod template of a role: inline, or a roleTemplate with the role's strategic-merge templatePatch."""

from __future__ import annotations

from typing import Any

from rbg.api.hub import RoleBasedGroupSpec, RoleSpec
from rbg.api.k8s_schema import type_errors
from rbg.group.strategicmerge import POD_TEMPLATE_SPEC, clone, merge


class TemplateError(ValueError):
    """The role's template cannot be built; `field` names where the problem is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def resolve(spec: RoleBasedGroupSpec, index: int) -> dict[str, Any]:
    """The role's pod template, a fresh object the caller may change; TemplateError when it is unusable."""
    role: RoleSpec = spec.roles[index]
    where = f"spec.roles[{index}]"
    if role.workload.kind == "RoleInstanceSet":  # its first component stands for it here (D42)
        return component_templates(spec, index)[0][1]
    if role.template_ref is not None:
        templates = {t.name: t.template for t in spec.role_templates or []}
        base = templates.get(role.template_ref.name)
        if base is None:
            raise TemplateError(
                f"{where}.templateRef.name",
                f'template "{role.template_ref.name}" not found in spec.roleTemplates',
            )
        template = merge(base, role.template_patch or {})
    elif role.template is not None:
        template = clone(role.template)
    else:
        raise TemplateError(where, "template or templateRef must be set")
    field = f"{where}.templatePatch" if role.template_ref is not None else f"{where}.template"
    _check(template, field, "the resulting pod template", f"{where}.template.spec.containers")
    return template


def _check(template: dict[str, Any], field: str, what: str, containers_field: str) -> None:
    """TemplateError unless `template` is a well-typed pod template with at least one container."""
    problems = type_errors(template, POD_TEMPLATE_SPEC)
    if problems:
        raise TemplateError(field, f"{what} is malformed: {problems[0]}")
    if not (template.get("spec") or {}).get("containers"):
        raise TemplateError(containers_field, "must have at least one container")


def component_templates(spec: RoleBasedGroupSpec, index: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each component of a customComponentsPattern role and its pod template (a fresh copy, the
    component's labels and annotations merged in); TemplateError when one is unusable."""
    role: RoleSpec = spec.roles[index]
    out = []
    for i, component in enumerate(role.components or []):
        where = f"spec.roles[{index}].components[{i}]"
        raw = component.get("template")
        if not isinstance(raw, dict):
            raise TemplateError(f"{where}.template", "must be a pod template")
        template = clone(raw)
        _check(template, f"{where}.template", "the pod template", f"{where}.template.spec.containers")
        meta = template.setdefault("metadata", {})
        for key in ("labels", "annotations"):
            extra = component.get(key)
            if isinstance(extra, dict) and extra:
                meta[key] = {**(meta.get(key) or {}), **{str(k): str(v) for k, v in extra.items()}}
        out.append((component, template))
    if not out:
        raise TemplateError(
            f"spec.roles[{index}].components", "a RoleInstanceSet role needs at least one component"
        )
    return out


def resolve_all(spec: RoleBasedGroupSpec) -> list[dict[str, Any] | TemplateError]:
    """Every role's template (or why it cannot be built), in role order: computed once per plan."""
    out: list[dict[str, Any] | TemplateError] = []
    for i in range(len(spec.roles)):
        try:
            out.append(resolve(spec, i))
        except TemplateError as exc:
            out.append(exc)
    return out
