"""Conversion between workloads.x-k8s.io/v1alpha1 and v1alpha2, on wire dicts (as a ConversionReview
carries them): `convert(obj, to_version)`.

RoleBasedGroup and RoleBasedGroupSet change shape; RoleBasedGroupScalingAdapter (the same schema in
both) and any other kind only change apiVersion. metadata (but for the annotations below) and status
pass through as they are (both versions share the status schema). Nothing raises: what the conversion
cannot read is carried (left where it is, or kept in an annotation), never dropped.

Below, `C/` is `conversion.workloads.x-k8s.io/` and `R/` is `rbg.workloads.x-k8s.io/`.

RoleBasedGroup, v1alpha1 ↔ v1alpha2 (upstream's table, ../shared/reference/upstream-rbg.md §1.3):
- role name, labels, annotations, replicas, rolloutStrategy, dependencies, minReadySeconds,
  servicePorts, engineRuntimes, scalingAdapter ↔ the same fields.
- role.workload {apiVersion, kind} ↔ role annotation `R/role-workload-type: <apiVersion>/<kind>`
  (so v1alpha1's default StatefulSet survives); workloads.x-k8s.io/v1alpha2 RoleInstanceSet → no
  annotation (v1alpha2's default). No annotation → the kind this operator runs the role's pattern as
  (D39): a LeaderWorkerSet for a leaderWorkerPattern, a StatefulSet for a standalonePattern, a
  RoleInstanceSet (D42) for a customComponentsPattern; the stash gives the
  unannotated role back.
- role.leaderWorkerSet {size, patchLeaderTemplate, patchWorkerTemplate} ↔ leaderWorkerPattern {size,
  leaderTemplatePatch, workerTemplatePatch}; else role.components[] ↔ customComponentsPattern
  .components[] (v1alpha1's components are free-form: their labels and annotations stay as they are);
  else ↔ standalonePattern.
- role.template ↔ <pattern>.template; role.templateRef {name} + role.templatePatch ↔
  <pattern>.templateRef {name, patch} (a leaderWorkerPattern's too: v1alpha1's model holds it).
- leaderWorkerSet and components roles: role.restartPolicy ↔ <pattern>.restartPolicyConfig.type, or,
  when restartPolicyConfig.type is set too, ↔ <pattern>.restartPolicy (the deprecated field; the type
  wins in both versions); role.restartPolicyConfig {type, baseDelaySeconds, maxDelaySeconds} ↔
  <pattern>.restartPolicyConfig, whose schema defaults (30, 600) are written out going to v1alpha2 (as
  the API server fills them in when it reads the stored object) and left out coming back.
- spec.roleTemplates ↔ spec.roleTemplates.
- spec.podGroupPolicy ↔ the gang annotations `R/group-gang-scheduling: "true"`,
  `R/group-gang-scheduling-timeout` (kubeScheduling.scheduleTimeoutSeconds),
  `R/group-gang-scheduling-volcano-queue` and `-volcano-priority` (volcanoScheduling queue,
  priorityClassName), and annotation `C/v1alpha1-pod-group-policy` (its JSON) when the policy says more
  than they do (upstream writes the JSON always; a policy they say exactly needs none). Back, the gang
  annotations are v1alpha2's truth: the JSON while they still say what it says, else the policy they
  say (so a v1alpha2 group written with gang annotations reads as a v1alpha1 podGroupPolicy).
- spec.coordination ↔ annotation `C/v1alpha1-coordination` (its JSON; the JSON annotations here are
  written with sorted keys, so that equal values give equal annotations).
- annotation `rolebasedgroup.workloads.x-k8s.io/exclusive-topology` is copied to
  `R/group-exclusive-topology` (unless that is set; it wins in both versions).
Back to v1alpha1 the conversion and translated annotations are removed.

What the other version has no field for rides in annotations, and comes back from them (in v1alpha2
objects the `v1alpha1-` ones, in v1alpha1 objects the `v1alpha2-` ones):
- `C/v1alpha1-startup-policy` (group; a set's groupTemplate): spec.startupPolicy.
- `C/v1alpha1-restart-policy` (role): role.restartPolicy of a standalone role (standalonePattern has no
  restart fields), or a value v1alpha2 lacks (RecreateRBGOnPodRestart).
- `C/v1alpha1-restart-policy-config` (role): JSON, a standalone role's whole restartPolicyConfig; of
  the other roles what v1alpha2 lacks (maxRestarts, type RecreateRBGOnPodRestart).
- `C/v1alpha1-rollout-strategy` (set): JSON of spec.rolloutStrategy.
- `C/v1alpha1-group-template` (set): `template` when the set used upstream v1alpha1's spec.template,
  `roles` when it used the seed's groupTemplate.roles.
- `C/v1alpha2-pod-management-policy` (role): podManagementPolicy, unless the default Parallel.
- `C/v1alpha2-shared-service-selection` (role): leaderWorkerPattern.sharedServiceSelection.
- `C/v1alpha1-fields`, `C/v1alpha2-fields` (group, set, role): the stash of rbg/api/conversion_stash.py,
  whatever else the round trip would not give back: an explicit empty map, an unknown or unreadable
  field, a field where the version does not allow it (templatePatch without templateRef, a second
  pattern), a restart policy written only as v1alpha1's restartPolicyConfig.type or only as v1alpha2's
  deprecated <pattern>.restartPolicy, an explicit RoleInstanceSet annotation, a podManagementPolicy
  left out, the pod-group-policy JSON upstream writes even when the gang annotations say it all, ...;
  applied only while the other version left all those places unchanged.

The natural mapping writes only fields of the target version's schema (the API server prunes the rest
of a webhook's answer), so what it cannot place is in the annotations, never in a pruned field. Both
round trips give the object back exactly (v1alpha1 → v1alpha2 → v1alpha1, and v1alpha2 → v1alpha1 →
v1alpha2) for any object without annotations of its own under `conversion.workloads.x-k8s.io/`; a
change made in the other version in between wins over what an annotation kept.

RoleBasedGroupSet: v1alpha1 spec.groupTemplate {labels, annotations, spec} (or upstream v1alpha1's
spec.template, or the seed's groupTemplate.roles) ↔ v1alpha2 spec.groupTemplate {labels, annotations,
spec}: the template's spec converts as a group's, its group annotations above going into
groupTemplate.annotations (where the child groups get them); spec.replicas as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rbg.api import conversion_stash as stash
from rbg.api.conversion_stash import MISSING, load
from rbg.api.conversion_stash import canonical as dump  # sorted keys: the same JSON whatever the order

Obj = dict[str, Any]

GROUP = "workloads.x-k8s.io"
V1 = f"{GROUP}/v1alpha1"
V2 = f"{GROUP}/v1alpha2"
RBG = "RoleBasedGroup"
RBGSET = "RoleBasedGroupSet"

_R = "rbg.workloads.x-k8s.io/"
_C = "conversion.workloads.x-k8s.io/"
WORKLOAD_TYPE = _R + "role-workload-type"
GANG = _R + "group-gang-scheduling"
GANG_TIMEOUT = _R + "group-gang-scheduling-timeout"
GANG_QUEUE = _R + "group-gang-scheduling-volcano-queue"
GANG_PRIORITY = _R + "group-gang-scheduling-volcano-priority"
GANG_KEYS = (GANG, GANG_TIMEOUT, GANG_QUEUE, GANG_PRIORITY)
EXCLUSIVE = _R + "group-exclusive-topology"
EXCLUSIVE_V1 = "rolebasedgroup.workloads.x-k8s.io/exclusive-topology"

POD_GROUP_POLICY = _C + "v1alpha1-pod-group-policy"
COORDINATION = _C + "v1alpha1-coordination"
STARTUP_POLICY = _C + "v1alpha1-startup-policy"
RESTART_POLICY = _C + "v1alpha1-restart-policy"
RESTART_POLICY_CONFIG = _C + "v1alpha1-restart-policy-config"
SET_ROLLOUT = _C + "v1alpha1-rollout-strategy"
SET_TEMPLATE = _C + "v1alpha1-group-template"
POD_MANAGEMENT_POLICY = _C + "v1alpha2-pod-management-policy"
SHARED_SERVICE_SELECTION = _C + "v1alpha2-shared-service-selection"
V1_FIELDS = _C + "v1alpha1-fields"  # in v1alpha2 objects: what v1alpha1 had that they cannot hold
V2_FIELDS = _C + "v1alpha2-fields"  # in v1alpha1 objects: what v1alpha2 had that they cannot hold

DEFAULT_WORKLOAD = f"{GROUP}/v1alpha2/RoleInstanceSet"
V1_DEFAULT_WORKLOAD = "apps/v1/StatefulSet"
LWS_WORKLOAD = "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet"
V2_RESTART_TYPES = ("None", "RecreateRoleInstanceOnPodRestart")
_DELAYS = {"baseDelaySeconds": 30, "maxDelaySeconds": 600}  # v1alpha2's restartPolicyConfig defaults
_SHARED = (
    "name",
    "labels",
    "replicas",
    "rolloutStrategy",
    "dependencies",
    "minReadySeconds",
    "servicePorts",
    "engineRuntimes",
    "scalingAdapter",
)
_COMPONENT = ("name", "size", "serviceName", "labels", "annotations", "template")
#: where a group's roles list can sit (v1alpha1 sets: three places), in each version
_ROLES_AT = {
    RBG: ((("spec", "roles"),), (("spec", "roles"),)),
    RBGSET: (
        (
            ("spec", "groupTemplate", "spec", "roles"),
            ("spec", "groupTemplate", "roles"),
            ("spec", "template", "roles"),
        ),
        (("spec", "groupTemplate", "spec", "roles"),),
    ),
}
_ALL_ROLES_AT = tuple(dict.fromkeys(p for versions in _ROLES_AT.values() for ps in versions for p in ps))
#: stands for the roles list while the rest of the object converts (the roles convert one by one)
_ROLES = "\x00rbg-conversion-roles\x00"


def convert(obj: Obj, to_version: str) -> Obj:
    """`obj` as `to_version` ("workloads.x-k8s.io/v1alpha2" or just "v1alpha2"); a new object."""
    target = to_version if "/" in to_version else f"{GROUP}/{to_version}"
    if not isinstance(obj, dict):
        return obj
    source, kind = obj.get("apiVersion"), obj.get("kind")
    if source == target:
        return dict(obj)
    if not isinstance(kind, str) or kind not in _ROLES_AT:
        return {**obj, "apiVersion": target}
    if (source, target) == (V1, V2):
        return _convert(obj, kind, up=True)
    if (source, target) == (V2, V1):
        return _convert(obj, kind, up=False)
    return {**obj, "apiVersion": target}


# ---------------------------------------------------------------------------------------------------
# the driver: natural mapping, the stash of what it cannot give back, roles one by one


def _convert(obj: Obj, kind: str, *, up: bool) -> Obj:
    target = V2 if up else V1
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not _map_or_missing(meta.get("annotations")):
        return {**obj, "apiVersion": target}
    if not isinstance(obj.get("spec"), dict):
        return {**obj, "apiVersion": target}
    at_to = _ROLES_AT[kind][0 if not up else 1]
    shell, roles = _cut(obj, _roles_at(obj, kind, up))
    forward, back = _NATURAL[kind] if up else _NATURAL[kind][::-1]
    mine, shell0 = _pop_meta(shell, V2_FIELDS if up else V1_FIELDS)
    out = stash.apply(forward(shell0), mine)
    entries = stash.diff(shell0, back(out))
    out = {
        **out,
        "metadata": stash.push(out["metadata"], "annotations", V1_FIELDS if up else V2_FIELDS, entries),
    }
    if roles is not None:
        role = _role_up if up else _role_down
        out = _paste(out, at_to, [role(r) for r in roles])
    return out


def _map_or_missing(value: Any) -> bool:
    return value is MISSING or value is None or isinstance(value, dict)


def _get(obj: Any, at: tuple[str, ...]) -> Any:
    for key in at:
        obj = obj.get(key, MISSING) if isinstance(obj, dict) else MISSING
    return obj


def _roles_at(obj: Obj, kind: str, up: bool) -> tuple[str, ...] | None:
    """Where the roles the natural mapping converts are: the list it reads as the group's roles."""
    if kind == RBG:
        return ("spec", "roles")
    if not up:
        return ("spec", "groupTemplate", "spec", "roles")
    spec = obj["spec"]
    group_template = spec.get("groupTemplate")
    if isinstance(group_template, dict):  # wins over spec.template, as in _set_up
        inner = group_template.get("spec")
        if isinstance(inner, dict) and "roles" in inner:
            return ("spec", "groupTemplate", "spec", "roles")
        return ("spec", "groupTemplate", "roles")
    return ("spec", "template", "roles")


def _cut(obj: Obj, at: tuple[str, ...] | None) -> tuple[Obj, list[Any] | None]:
    roles = _get(obj, at) if at else MISSING
    if not isinstance(roles, list) or at is None:
        return obj, None
    return _set_in(obj, at, _ROLES), roles


def _set_in(obj: Obj, at: tuple[str, ...], value: Any) -> Obj:
    child = obj.get(at[0])
    if len(at) == 1:
        return {**obj, at[0]: value}
    return {**obj, at[0]: _set_in(child if isinstance(child, dict) else {}, at[1:], value)}


def _paste(obj: Obj, places: tuple[tuple[str, ...], ...], roles: list[Any]) -> Obj:
    """The converted roles where the placeholder went (the natural mapping, or a stash, put it)."""
    for at in dict.fromkeys((*places, *_ALL_ROLES_AT)):
        if _get(obj, at) == _ROLES:
            return _set_in(obj, at, roles)
    return _set_in(obj, places[0], roles)  # not found (cannot happen): where the roles belong


def _pop_meta(obj: Obj, key: str) -> tuple[list[Obj], Obj]:
    entries, meta = stash.pop(obj["metadata"], "annotations", key)
    return entries, {**obj, "metadata": meta}


def _role_up(role: Any) -> Any:
    return _role(role, _role_up_natural, _role_down_natural, V2_FIELDS, V1_FIELDS)


def _role_down(role: Any) -> Any:
    return _role(role, _role_down_natural, _role_up_natural, V1_FIELDS, V2_FIELDS)


def _role(
    role: Any, forward: Callable[[Obj], Obj], back: Callable[[Obj], Obj], mine_key: str, theirs_key: str
) -> Any:
    if not isinstance(role, dict) or not isinstance(role.get("annotations", {}), dict):
        return role  # unreadable: carried as it is
    mine, role0 = stash.pop(role, "annotations", mine_key)
    out = stash.apply(forward(role0), mine)
    return stash.push(out, "annotations", theirs_key, stash.diff(role0, back(out)))


# ---------------------------------------------------------------------------------------------------
# annotation maps: the keys the natural mapping reads and writes


class _Annotations:
    """A copy of an annotations map (or none); `result()` is the map to write, or MISSING. A map the
    conversion took keys from and left empty is dropped; one it did not touch stays as it was."""

    def __init__(self, value: Any) -> None:
        self.had = isinstance(value, dict)
        self.map: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
        self.taken = False

    def take(self, key: str) -> Any:
        if key not in self.map:
            return MISSING
        self.taken = True
        return self.map.pop(key)

    def take_str(self, key: str) -> str | None:
        value = self.map.get(key)
        if isinstance(value, str):
            self.take(key)
            return value
        return None

    def take_json(self, key: str, want: type | None = None) -> Any:
        value = load(self.map.get(key, MISSING))
        if value is MISSING or (want is not None and not isinstance(value, want)):
            return MISSING  # unreadable: the annotation stays
        self.take(key)
        return value

    def put(self, key: str, value: str) -> None:
        self.map[key] = value

    def result(self) -> Any:
        if self.map or (self.had and not self.taken):
            return self.map
        return MISSING


def _put_field(out: Obj, key: str, value: Any) -> None:
    if value is not MISSING:
        out[key] = value


# ---------------------------------------------------------------------------------------------------
# group level (a RoleBasedGroup's metadata.annotations + spec; a set's groupTemplate)


def _pod_group_annotations(policy: Any) -> dict[str, str]:
    """The gang annotations that say what a v1alpha1 podGroupPolicy says."""
    if not isinstance(policy, dict):
        return {}
    kube, volcano = policy.get("kubeScheduling"), policy.get("volcanoScheduling")
    out = {}
    if isinstance(kube, dict) or isinstance(volcano, dict):
        out[GANG] = "true"
    if isinstance(kube, dict):
        timeout = kube.get("scheduleTimeoutSeconds")
        if isinstance(timeout, int) and not isinstance(timeout, bool):
            out[GANG_TIMEOUT] = str(timeout)
    if isinstance(volcano, dict):
        if isinstance(volcano.get("queue"), str):
            out[GANG_QUEUE] = volcano["queue"]
        if isinstance(volcano.get("priorityClassName"), str):
            out[GANG_PRIORITY] = volcano["priorityClassName"]
    return out


def _pod_group_policy(gang: dict[str, Any]) -> Any:
    """The v1alpha1 podGroupPolicy the gang annotations say (MISSING: no gang scheduling)."""
    if gang.get(GANG) != "true":
        return MISSING
    policy: Obj = {}
    timeout = gang.get(GANG_TIMEOUT)
    # ASCII digits, no leading zero ("²".isdigit() is true, and int() refuses it)
    canonical_timeout = isinstance(timeout, str) and re.fullmatch(r"0|[1-9][0-9]{0,9}", timeout) is not None
    volcano = {
        field: gang[key]
        for field, key in (("priorityClassName", GANG_PRIORITY), ("queue", GANG_QUEUE))
        if isinstance(gang.get(key), str)
    }
    if isinstance(timeout, str) and canonical_timeout:
        policy["kubeScheduling"] = {"scheduleTimeoutSeconds": int(timeout)}
    elif not volcano:
        policy["kubeScheduling"] = {}
    if volcano:
        policy["volcanoScheduling"] = volcano
    return policy


def _group_up(annotations: Any, spec: Any) -> tuple[Any, Any]:
    """v1alpha1 group annotations and spec (without its roles) → v1alpha2's."""
    if spec is not MISSING and not isinstance(spec, dict):
        return annotations, spec  # unreadable: carried
    ann = _Annotations(annotations)
    spec_in: Obj = spec if isinstance(spec, dict) else {}
    out: Obj = {k: spec_in[k] for k in ("roles", "roleTemplates") if k in spec_in}
    policy = spec_in.get("podGroupPolicy", MISSING)
    if policy is not MISSING:
        gang = _pod_group_annotations(policy)
        ann.map.update(gang)
        if not stash.same(_pod_group_policy(gang), policy):  # more than the gang annotations say
            ann.put(POD_GROUP_POLICY, dump(policy))
    if "coordination" in spec_in:
        ann.put(COORDINATION, dump(spec_in["coordination"]))
    if isinstance(spec_in.get("startupPolicy"), str):
        ann.put(STARTUP_POLICY, spec_in["startupPolicy"])
    old = ann.map.get(EXCLUSIVE_V1)
    if isinstance(old, str) and EXCLUSIVE not in ann.map:
        ann.put(EXCLUSIVE, old)
    return ann.result(), (MISSING if spec is MISSING and not out else out)


def _group_down(annotations: Any, spec: Any) -> tuple[Any, Any]:
    """v1alpha2 group annotations and spec (without its roles) → v1alpha1's."""
    if spec is not MISSING and not isinstance(spec, dict):
        return annotations, spec  # unreadable: carried
    ann = _Annotations(annotations)
    out: Obj = {k: spec[k] for k in ("roles", "roleTemplates") if k in spec} if isinstance(spec, dict) else {}
    gang = {k: ann.map[k] for k in GANG_KEYS if k in ann.map}
    kept = load(ann.map.get(POD_GROUP_POLICY, MISSING))
    # the JSON while the gang annotations still say what it says (the original, exactly), else theirs
    policy = kept if kept is not MISSING and _pod_group_annotations(kept) == gang else _pod_group_policy(gang)
    if kept is not MISSING:
        ann.take(POD_GROUP_POLICY)
    if policy is not MISSING:
        out["podGroupPolicy"] = policy
        for key, value in _pod_group_annotations(policy).items():
            if ann.map.get(key) == value:
                ann.take(key)
    _put_field(out, "coordination", ann.take_json(COORDINATION))
    startup = ann.take_str(STARTUP_POLICY)
    if startup is not None:
        out["startupPolicy"] = startup
    old = ann.map.get(EXCLUSIVE_V1)
    if isinstance(old, str) and ann.map.get(EXCLUSIVE) == old:
        ann.take(EXCLUSIVE)
    return ann.result(), (MISSING if spec is MISSING and not out else out)


def _with_annotations(meta: Obj, annotations: Any) -> Obj:
    out = {k: v for k, v in meta.items() if k != "annotations"}
    _put_field(out, "annotations", annotations)
    return out


def _rbg_up(obj: Obj) -> Obj:
    return _rbg(obj, _group_up, V2)


def _rbg_down(obj: Obj) -> Obj:
    return _rbg(obj, _group_down, V1)


def _rbg(obj: Obj, group: Callable[[Any, Any], tuple[Any, Any]], version: str) -> Obj:
    meta = obj["metadata"]
    annotations, spec = group(meta.get("annotations", MISSING), obj["spec"])
    return {**obj, "apiVersion": version, "metadata": _with_annotations(meta, annotations), "spec": spec}


# ---------------------------------------------------------------------------------------------------
# RoleBasedGroupSet


def _set_up(obj: Obj) -> Obj:
    meta, spec = obj["metadata"], obj["spec"]
    ann = _Annotations(meta.get("annotations", MISSING))
    out: Obj = {k: spec[k] for k in ("replicas",) if k in spec}
    if "rolloutStrategy" in spec:
        ann.put(SET_ROLLOUT, dump(spec["rolloutStrategy"]))
    template, group_template = spec.get("template", MISSING), spec.get("groupTemplate", MISSING)
    if isinstance(group_template, dict):
        inner = group_template.get("spec", MISSING)
        seed = "roles" in group_template and not (isinstance(inner, dict) and "roles" in inner)
        if seed:  # the seed's shape: the roles right under groupTemplate
            inner = {**(inner if isinstance(inner, dict) else {}), "roles": group_template["roles"]}
            ann.put(SET_TEMPLATE, "roles")
        out["groupTemplate"] = _template_up(group_template, inner)
    elif isinstance(template, dict):
        ann.put(SET_TEMPLATE, "template")
        out["groupTemplate"] = _template_up({}, template)
    return {**obj, "apiVersion": V2, "metadata": _with_annotations(meta, ann.result()), "spec": out}


def _template_up(group_template: Obj, inner: Any) -> Obj:
    out: Obj = {k: group_template[k] for k in ("labels",) if k in group_template}
    annotations, spec = _group_up(group_template.get("annotations", MISSING), inner)
    _put_field(out, "annotations", annotations)
    _put_field(out, "spec", spec)
    return out


def _set_down(obj: Obj) -> Obj:
    meta, spec = obj["metadata"], obj["spec"]
    ann = _Annotations(meta.get("annotations", MISSING))
    out: Obj = {k: spec[k] for k in ("replicas",) if k in spec}
    _put_field(out, "rolloutStrategy", ann.take_json(SET_ROLLOUT))
    shape = ann.take_str(SET_TEMPLATE)
    group_template = spec.get("groupTemplate", MISSING)
    if isinstance(group_template, dict):
        annotations, inner = _group_down(
            group_template.get("annotations", MISSING), group_template.get("spec", MISSING)
        )
        bare = "labels" not in group_template and annotations is MISSING
        if shape == "template" and bare and isinstance(inner, dict):
            out["template"] = inner
        else:
            gt: Obj = {k: group_template[k] for k in ("labels",) if k in group_template}
            _put_field(gt, "annotations", annotations)
            if shape == "roles" and isinstance(inner, dict) and set(inner) <= {"roles"}:
                _put_field(gt, "roles", inner.get("roles", MISSING))
            elif inner is not MISSING and inner is not None:
                gt["spec"] = inner
            out["groupTemplate"] = gt
    return {**obj, "apiVersion": V1, "metadata": _with_annotations(meta, ann.result()), "spec": out}


# ---------------------------------------------------------------------------------------------------
# roles


def _workload_type(workload: Any) -> Any:
    """The role-workload-type annotation of a v1alpha1 workload: None for RoleInstanceSet (no
    annotation), MISSING when it cannot be written as one."""
    if not isinstance(workload, dict):
        return MISSING
    api_version, kind = workload.get("apiVersion", "apps/v1"), workload.get("kind", "StatefulSet")
    if not isinstance(api_version, str) or not isinstance(kind, str) or "/" in kind:
        return MISSING
    value = f"{api_version}/{kind}"
    return None if value == DEFAULT_WORKLOAD else value


def _unannotated_workload(role: Obj) -> str:
    """The v1alpha1 workload of a v1alpha2 role without the role-workload-type annotation (upstream runs
    it as a RoleInstanceSet): the kind this operator has for its pattern (D39). A leaderWorkerPattern
    runs as a LeaderWorkerSet, a standalonePattern as a StatefulSet (one pod per instance, stable names,
    as a stateful RoleInstanceSet); a customComponentsPattern stays a RoleInstanceSet, which this operator
    runs with one StatefulSet per component of each instance (D42). The stash gives the unannotated role
    back."""
    if isinstance(role.get("leaderWorkerPattern"), dict):
        return LWS_WORKLOAD
    if isinstance(role.get("customComponentsPattern"), dict):
        return DEFAULT_WORKLOAD
    return V1_DEFAULT_WORKLOAD


def _templates_up(role: Obj) -> Obj:
    out: Obj = {}
    if "template" in role:
        out["template"] = role["template"]
    ref = role.get("templateRef", MISSING)
    if isinstance(ref, dict):
        out["templateRef"] = {k: ref[k] for k in ("name",) if k in ref}
        if "templatePatch" in role:
            out["templateRef"]["patch"] = role["templatePatch"]
    return out


def _templates_down(pattern: Obj, out: Obj) -> None:
    if "template" in pattern:
        out["template"] = pattern["template"]
    ref = pattern.get("templateRef", MISSING)
    if isinstance(ref, dict):
        out["templateRef"] = {k: ref[k] for k in ("name",) if k in ref}
        if "patch" in ref:
            out["templatePatch"] = ref["patch"]


def _restart_up(role: Obj, pattern: Obj, ann: _Annotations) -> None:
    """v1alpha1 restartPolicy / restartPolicyConfig into a leaderWorker or components pattern."""
    policy, config = role.get("restartPolicy", MISSING), role.get("restartPolicyConfig", MISSING)
    placed: Obj = {}
    extra: Obj = {}
    if isinstance(config, dict):
        for key, value in config.items():
            if key in ("baseDelaySeconds", "maxDelaySeconds") or (
                key == "type" and value in V2_RESTART_TYPES
            ):
                placed[key] = value
            else:  # maxRestarts, a type v1alpha2 lacks, anything unknown
                extra[key] = value
    if policy is not MISSING:
        if not (isinstance(policy, str) and policy in V2_RESTART_TYPES):
            if isinstance(policy, str):
                ann.put(RESTART_POLICY, policy)
        elif "type" in placed or "type" in extra:
            pattern["restartPolicy"] = policy  # both set: the type wins in both versions
        else:
            placed["type"] = policy
    if placed:  # with the v1alpha2 schema's defaults, as the API server reads it back from storage
        pattern["restartPolicyConfig"] = {**placed, **{k: v for k, v in _DELAYS.items() if k not in placed}}
    if extra:
        ann.put(RESTART_POLICY_CONFIG, dump(extra))


def _restart_down(pattern: Obj, out: Obj, ann: _Annotations) -> None:
    config, deprecated = pattern.get("restartPolicyConfig", MISSING), pattern.get("restartPolicy", MISSING)
    restored: Obj = {}
    kind: Any = MISSING
    if isinstance(config, dict):
        # the schema's defaults are left out (written back going up)
        restored = {k: config[k] for k in _DELAYS if k in config and not stash.same(config[k], _DELAYS[k])}
        kind = config.get("type", MISSING)
    policy = ann.take_str(RESTART_POLICY)
    if policy is not None or deprecated is not MISSING:
        if kind is not MISSING:
            restored = {"type": kind, **restored}
        if policy is None:
            policy = deprecated
    elif kind is not MISSING:
        policy = kind
    extra = ann.take_json(RESTART_POLICY_CONFIG, dict)
    if extra is not MISSING:
        restored.update(extra)
    if restored:
        out["restartPolicyConfig"] = restored
    _put_field(out, "restartPolicy", MISSING if policy is None else policy)


def _role_up_natural(role: Obj) -> Obj:
    out: Obj = {k: role[k] for k in _SHARED if k in role}
    if "name" not in role and isinstance(role.get("role"), str):
        out["name"] = role["role"]  # the seed's groupTemplate.roles name a role by `role`
    ann = _Annotations(role.get("annotations", MISSING))
    management = ann.take_str(POD_MANAGEMENT_POLICY)
    out["podManagementPolicy"] = management if management is not None else "Parallel"
    workload = _workload_type(role.get("workload", {}))
    ann.take(WORKLOAD_TYPE)
    if isinstance(workload, str):
        ann.put(WORKLOAD_TYPE, workload)
    selection = ann.take_str(SHARED_SERVICE_SELECTION)
    templates = _templates_up(role)
    if isinstance(role.get("leaderWorkerSet"), dict):
        lws = role["leaderWorkerSet"]
        pattern = dict(templates)
        for v1, v2 in (
            ("size", "size"),
            ("patchLeaderTemplate", "leaderTemplatePatch"),
            ("patchWorkerTemplate", "workerTemplatePatch"),
        ):
            if v1 in lws:
                pattern[v2] = lws[v1]
        pattern.setdefault("size", 1)  # the v1alpha2 schema's default (v1alpha1's too: kept coming back)
        if selection is not None:
            pattern["sharedServiceSelection"] = selection
        _restart_up(role, pattern, ann)
        out["leaderWorkerPattern"] = pattern
    elif isinstance(role.get("components"), list):
        pattern = {"components": [_component(c) for c in role["components"] if isinstance(c, dict)]}
        _restart_up(role, pattern, ann)
        out["customComponentsPattern"] = pattern
    else:
        out["standalonePattern"] = templates
        if isinstance(role.get("restartPolicy"), str):
            ann.put(RESTART_POLICY, role["restartPolicy"])
        if "restartPolicyConfig" in role:
            ann.put(RESTART_POLICY_CONFIG, dump(role["restartPolicyConfig"]))
    if selection is not None and "leaderWorkerPattern" not in out:
        ann.put(SHARED_SERVICE_SELECTION, selection)
    _put_field(out, "annotations", ann.result())
    return out


def _component(component: Obj) -> Obj:
    if set(component) <= set(_COMPONENT):
        return component
    return {k: component[k] for k in _COMPONENT if k in component}


def _role_down_natural(role: Obj) -> Obj:
    out: Obj = {k: role[k] for k in _SHARED if k in role}
    ann = _Annotations(role.get("annotations", MISSING))
    management = role.get("podManagementPolicy", MISSING)
    if isinstance(management, str) and management != "Parallel":
        ann.put(POD_MANAGEMENT_POLICY, management)
    workload = ann.take(WORKLOAD_TYPE)
    if workload is MISSING:
        workload = _unannotated_workload(role)
    if isinstance(workload, str) and "/" in workload:
        api_version, kind = workload.rsplit("/", 1)
        out["workload"] = {"apiVersion": api_version, "kind": kind}
    else:
        ann.put(WORKLOAD_TYPE, workload)  # unreadable: stays an annotation
    leader_worker = role.get("leaderWorkerPattern", MISSING)
    components = role.get("customComponentsPattern", MISSING)
    standalone = role.get("standalonePattern", MISSING)
    if isinstance(leader_worker, dict):
        _templates_down(leader_worker, out)
        out["leaderWorkerSet"] = {
            v1: leader_worker[v2]
            for v2, v1 in (
                ("size", "size"),
                ("leaderTemplatePatch", "patchLeaderTemplate"),
                ("workerTemplatePatch", "patchWorkerTemplate"),
            )
            if v2 in leader_worker
        }
        if isinstance(leader_worker.get("sharedServiceSelection"), str):
            ann.put(SHARED_SERVICE_SELECTION, leader_worker["sharedServiceSelection"])
        _restart_down(leader_worker, out, ann)
    elif isinstance(components, dict):
        listed = components.get("components", [])
        out["components"] = listed if isinstance(listed, list) else []
        _restart_down(components, out, ann)
    else:
        if isinstance(standalone, dict):
            _templates_down(standalone, out)
        policy = ann.take_str(RESTART_POLICY)
        if policy is not None:
            out["restartPolicy"] = policy
        _put_field(out, "restartPolicyConfig", ann.take_json(RESTART_POLICY_CONFIG))
    _put_field(out, "annotations", ann.result())
    return out


_NATURAL: dict[str, tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]]] = {
    RBG: (_rbg_up, _rbg_down),
    RBGSET: (_set_up, _set_down),
}
