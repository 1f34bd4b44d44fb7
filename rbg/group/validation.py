"""Checks that the CRD schema and CEL cannot express: cross-role references, cycles, name lengths.

Used by the admission webhook (rejects at `kubectl apply`) and by the controller (reports in status and
events, for objects stored before the webhook existed). Every message starts with the field path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rbg.api.hub import RoleBasedGroup, RoleSpec
from rbg.coordination.validation import coordination_errors
from rbg.group import dependencies, names
from rbg.group.templates import TemplateError, resolve_all
from rbg.group.workloads import WorkloadStrategy, pod_management, strategy_of
from rbg.instances.labels import DEPENDS_ON, DISCOVERY
from rbg.instances.plan import order_of, start_after

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PERCENT = re.compile(r"^(0|[1-9][0-9]*)%$")


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _int_or_percent(value: int | str | None, max_percent: int | None = None) -> bool:
    """A non-negative integer, or a percentage string (as Kubernetes accepts them: "25%", not "25")."""
    if value is None or (isinstance(value, int) and value >= 0):
        return True
    if isinstance(value, str) and _PERCENT.match(value):
        return max_percent is None or int(value[:-1]) <= max_percent
    return False


def _is_zero(value: int | str | None) -> bool:
    return value in (0, "0", "0%")


def _name_length_errors(group: str, role: str, strategy: WorkloadStrategy, where: str) -> list[FieldError]:
    """Child names are never truncated (two roles must not share an object), so long ones are refused."""
    workload, service = names.workload_name(group, role), names.service_name(group, role)
    for obj_kind, obj_name, cap, reason in (
        (strategy.kind, workload, strategy.max_name, strategy.max_name_why),
        ("Service", service, 63, "at most 63"),
    ):
        if len(obj_name) > cap:
            return [
                FieldError(
                    f"{where}.name",
                    f'{obj_kind} name "{obj_name}" is {len(obj_name)} characters; group and role names '
                    f"together must keep it {reason}",
                )
            ]
    return []


def validate(
    rbg: RoleBasedGroup, templates: Sequence[dict[str, Any] | TemplateError] | None = None
) -> list[FieldError]:
    """Every problem of the spec; `templates` are the roles' resolved templates if already at hand."""
    errors: list[FieldError] = []
    resolved = resolve_all(rbg.spec) if templates is None else templates
    spec, name = rbg.spec, rbg.metadata.name
    if name and (len(name) > 63 or not _DNS_LABEL.match(name)):
        errors.append(FieldError("metadata.name", f'"{name}" is not a valid DNS label'))

    seen: dict[str, int] = {}
    for i, role in enumerate(spec.roles):
        if role.name in seen:
            errors.append(FieldError(f"spec.roles[{i}].name", f'Duplicate value: "{role.name}"'))
        seen.setdefault(role.name, i)
    seen_t: set[str] = set()
    for i, t in enumerate(spec.role_templates or []):
        if t.name in seen_t:
            errors.append(FieldError(f"spec.roleTemplates[{i}].name", f'Duplicate value: "{t.name}"'))
        seen_t.add(t.name)

    deps = [(r.name, r.dependencies or []) for r in spec.roles]
    for u in dependencies.unknown_dependencies(deps):
        errors.append(
            FieldError(
                f"spec.roles[{u.role_index}].dependencies[{u.dep_index}]",
                f'role "{u.role}" depends on unknown role "{u.dependency}"',
            )
        )
    cycle = dependencies.find_cycle(dict(deps))
    if cycle is not None:
        errors.append(
            FieldError(f"spec.roles[{seen[cycle.path[0]]}].dependencies", f"dependency cycle: {cycle}")
        )

    for i, coord in enumerate(spec.coordination or []):
        for j, role_name in enumerate(coord.roles):
            if role_name not in seen:
                errors.append(FieldError(f"spec.coordination[{i}].roles[{j}]", f'unknown role "{role_name}"'))
    errors += [FieldError(path, msg) for path, msg in coordination_errors(spec, rbg.metadata.annotations)]

    for i, role in enumerate(spec.roles):
        where = f"spec.roles[{i}]"
        strategy = strategy_of(role)
        if strategy is None:
            # the CRD's CEL says the same at admission; this is for objects stored before it did, so that
            # such a role is reported, never run as some other kind
            errors.append(FieldError(f"{where}.workload", _unsupported_workload(role)))
            continue
        if strategy.kind == "RoleInstanceSet":
            errors += _component_errors(name, role, where, gang=spec.pod_group_policy is not None)
        if name:
            errors += _name_length_errors(name, role.name, strategy, where)
            if strategy.dns1035 and not name[0].isalpha():
                errors.append(
                    FieldError(
                        f"{where}.workload",
                        f"a {strategy.kind} is also a Service: its name "
                        f'"{names.workload_name(name, role.name)}" must start with a letter '
                        "(rename the group)",
                    )
                )
        template = resolved[i]
        if isinstance(template, TemplateError):
            errors.append(FieldError(template.field, template.message))
        ru = role.rollout_strategy.rolling_update if role.rollout_strategy else None
        if ru is not None:
            rwhere = f"{where}.rolloutStrategy.rollingUpdate"
            for field, value, cap in (
                ("maxSurge", ru.max_surge, None),
                ("maxUnavailable", ru.max_unavailable, 100),
            ):
                if not _int_or_percent(value, cap):
                    errors.append(FieldError(f"{rwhere}.{field}", f'invalid value "{value}"'))
            if role.replicas > 0 and _is_zero(ru.max_surge) and _is_zero(ru.max_unavailable):
                errors.append(FieldError(rwhere, "maxSurge and maxUnavailable cannot both be 0"))
            if not _int_or_percent(ru.partition, 100):
                errors.append(FieldError(f"{rwhere}.partition", f'invalid value "{ru.partition}"'))
            elif isinstance(ru.partition, int) and ru.partition >= role.replicas > 0:
                errors.append(
                    FieldError(
                        f"{rwhere}.partition", f"{ru.partition} must be less than replicas {role.replicas}"
                    )
                )
    return errors


_LATER = "accepted, but this operator does not act on it yet"


def not_acted_on(rbg: RoleBasedGroup) -> list[FieldError]:
    """Fields upstream manifests use that are stored but not implemented yet: said at admission as
    warnings, so that nobody relies on them silently."""
    spec = rbg.spec
    out: list[FieldError] = []
    kinds = {r.name: r.workload.kind for r in spec.roles}
    for i, c in enumerate(spec.coordination or []):
        if c.strategy is None or c.strategy.rolling_update is None:
            continue
        for member in c.roles:
            if kinds.get(member) in ("Deployment", "RoleInstanceSet"):  # no partition held (D34, D42)
                out.append(
                    FieldError(
                        f"spec.coordination[{i}].strategy.rollingUpdate",
                        f"{_LATER} for {kinds[member]} role {member}: it rolls at its own pace",
                    )
                )
    for i, role in enumerate(spec.roles):
        where = f"spec.roles[{i}]"
        if role.engine_runtimes:
            out.append(FieldError(f"{where}.engineRuntimes", f"{_LATER}: no engine runtime is injected"))
        ru = role.rollout_strategy.rolling_update if role.rollout_strategy else None
        if (
            role.workload.kind == "RoleInstanceSet"
            and ru is not None
            and ru.max_surge not in (None, 0, "0", "0%")
        ):
            msg = f"{_LATER} for a RoleInstanceSet role: no surge, instances are replaced in place (D42)"
            out.append(FieldError(f"{where}.rolloutStrategy.rollingUpdate.maxSurge", msg))
        ordered = (role.annotations or {}).get(names.POD_MANAGEMENT_POLICY) == "OrderedReady"
        if ordered and role.workload.kind != "StatefulSet":  # D39: a StatefulSet role's alone
            msg = f"{_LATER} for a {role.workload.kind} role: its instances are created in parallel"
            out.append(FieldError(f"{where}.podManagementPolicy", msg))
        if role.components and role.workload.kind != "RoleInstanceSet":
            out.append(
                FieldError(f"{where}.components", f"{_LATER}: components run only on a RoleInstanceSet role")
            )
    return out


def update_warnings(old: RoleBasedGroup, new: RoleBasedGroup) -> list[FieldError]:
    """What an update asks that a live workload cannot do, said at admission: a StatefulSet's
    podManagementPolicy is immutable, so a changed one applies only to a StatefulSet made anew (D39)."""
    before = {r.name: r for r in old.spec.roles}
    out = []
    for i, role in enumerate(new.spec.roles):
        was = before.get(role.name)
        if was is None or role.workload.kind != "StatefulSet" or was.workload.kind != "StatefulSet":
            continue
        policy, kept = pod_management(role), pod_management(was)
        if policy != kept:
            msg = (
                f"{kept} -> {policy}: a StatefulSet the role already has keeps the podManagementPolicy it "
                f"was made with (immutable); {policy} applies to one made anew (delete it, or the role)"
            )
            out.append(FieldError(f"spec.roles[{i}].podManagementPolicy", msg))
    return out


def _component_errors(group: str, role: RoleSpec, where: str, *, gang: bool) -> list[FieldError]:
    """A RoleInstanceSet role's components: present, each a DNS label, unique, and short enough for
    its StatefulSets' names {group}-{role}-{index}-{component} (D42)."""
    field = f"{where}.components"
    if not role.components:
        return []  # resolving its templates says so
    out: list[FieldError] = []
    for key, value in (("template", role.template), ("templateRef", role.template_ref)):
        if value is not None:
            msg = "not used by a RoleInstanceSet role: its pods come from its components' templates"
            out.append(FieldError(f"{where}.{key}", msg))
    seen: set[str] = set()
    order = order_of(_starts_after(role.components)) if gang else {}  # a cycle or unknown name: none
    room = names.MAX_STATEFULSET_NAME - len(names.workload_name(group, role.name)) - 7  # -{5 digits}-
    for j, c in enumerate(role.components):
        name = c.get("name")
        if not isinstance(name, str) or not _DNS_LABEL.fullmatch(name):
            out.append(FieldError(f"{field}[{j}].name", f"{name!r} must be a DNS label (a-z, 0-9, -)"))
            continue
        if name in seen:
            out.append(FieldError(f"{field}[{j}].name", f'duplicate component "{name}"'))
        seen.add(name)
        if group and len(name) > room:
            sts = f"{names.workload_name(group, role.name)}-<index>-{name}"
            msg = (
                f'component "{name}" is too long: its StatefulSets {sts} must fit in '
                f"{names.MAX_STATEFULSET_NAME} characters (at most {max(room, 0)} for the component name)"
            )
            out.append(FieldError(f"{field}[{j}].name", msg))
        size = c.get("size", 1)
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            out.append(FieldError(f"{field}[{j}].size", f"{size!r} must be a whole number >= 0"))
        for key in (DEPENDS_ON, DISCOVERY):
            if not _json_object_or_absent(c, key):
                msg = f"component {name!r}: invalid {key} annotation JSON (an object is expected)"
                out.append(FieldError(f"{field}[{j}].annotations", msg))
        if gang and order.get(name):
            # the gang waits for every pod, the ordered component for its dependencies to be ready
            msg = (
                f"component {name!r} starts after others ({DEPENDS_ON}), which can never happen under "
                "spec.podGroupPolicy: the gang schedules no pod until all exist"
            )
            out.append(FieldError(f"{field}[{j}]", msg))
    return out


def _annotation_maps(component: dict[str, Any]) -> list[dict[str, Any]]:
    """A component's own annotations, then its template's (merged in that order of precedence by
    templates.component_templates)."""
    template = component.get("template")
    meta = template.get("metadata") if isinstance(template, dict) else None
    found = [component.get("annotations"), meta.get("annotations") if isinstance(meta, dict) else None]
    return [f for f in found if isinstance(f, dict)]


def _json_object_or_absent(component: dict[str, Any], key: str) -> bool:
    for found in _annotation_maps(component):
        raw = found.get(key)
        if raw is None:
            continue
        try:
            if not isinstance(json.loads(raw), dict):
                return False
        except (TypeError, ValueError):
            return False
    return True


def _starts_after(components: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each component's startAfter (KEP-173), from its own annotations or its template's."""
    out: dict[str, list[str]] = {}
    for c in components:
        maps = _annotation_maps(c)
        out[str(c.get("name"))] = next((after for m in maps if (after := start_after(m))), [])
    return out


def _unsupported_workload(role: RoleSpec) -> str:
    """Why a role's workload cannot run here."""
    kinds = (
        "apps/v1 StatefulSet or Deployment, leaderworkerset.x-k8s.io/v1 LeaderWorkerSet, or "
        "workloads.x-k8s.io/v1alpha2 RoleInstanceSet"
    )
    if role.workload.kind == "InstanceSet":
        return (
            f"{role.workload.ref} is deprecated upstream and not run here: use workloads.x-k8s.io/v1alpha2"
            " RoleInstanceSet (the same components, D42)"
        )
    return f"{role.workload.ref} is not supported by this operator ({kinds})"
