"""RoleBasedGroupScalingAdapters, pure: the adapter a role with `scalingAdapter.enable` gets, what the
adapter controller does with it (bind, scale the role, status), and the admission lock that keeps a
bound role's replicas the adapter's (upstream's message).

An adapter `{group}-{role}` is made by the group's controller (owned by the group, labelled with the
group and role) with only its target: its `spec.replicas` belongs to whoever scales it (an autoscaler
through /scale). On first bind the adapter controller copies the role's replicas into it; from then on
a difference is the adapter's wish, and the role's replicas are changed to it. A step the group refuses
(a coordination's ratio) is reported in the adapter's status and events, and retried on the next change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rbg.api.hub import RoleBasedGroup, RoleSpec
from rbg.api.hub_scaling import API_VERSION, KIND, RoleBasedGroupScalingAdapter
from rbg.group import names
from rbg.group.desired import owner_reference

Obj = dict[str, Any]
LWS_LEADERS = "leaderworkerset.sigs.k8s.io/worker-index=0"


def enabled(role: RoleSpec) -> bool:
    return role.scaling_adapter is not None and role.scaling_adapter.enable


def desired(rbg: RoleBasedGroup, role: RoleSpec) -> Obj:
    """The adapter of a role with `scalingAdapter.enable` (its target only; replicas are the scaler's)."""
    labels = {**((role.scaling_adapter.labels if role.scaling_adapter else None) or {})}
    labels.update(names.selector(rbg.metadata.name, role.name))  # the controller's labels win
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": names.adapter_name(rbg.metadata.name, role.name),
            "namespace": rbg.metadata.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(rbg)],
        },
        "spec": {"scaleTargetRef": {"name": rbg.metadata.name, "role": role.name}},
    }


def selector(rbg: RoleBasedGroup, role: RoleSpec) -> str:
    """The role's pods, as an autoscaler's metrics select them (a LeaderWorkerSet role: its leaders)."""
    parts = [f"{k}={v}" for k, v in names.selector(rbg.metadata.name, role.name).items()]
    if role.workload.kind == "LeaderWorkerSet":
        parts.append(LWS_LEADERS)
    return ",".join(parts)


@dataclass
class AdapterDecision:
    bind_replicas: int | None = None  # write spec.replicas (first bind)
    scale_role: tuple[int, str, int] | None = None  # (role index, role name, replicas) to write
    status: Obj = field(default_factory=dict)
    events: list[tuple[Literal["Normal", "Warning"], str, str]] = field(default_factory=list)


def decide(
    adapter: RoleBasedGroupScalingAdapter, rbg: RoleBasedGroup | None, ready: int, owner_uid: str | None
) -> AdapterDecision:
    """What the adapter controller does this pass; `ready`: the role's ready replicas; `owner_uid`: the
    uid of the group that controls the adapter, if any. Only the adapter a group made for a role with
    `scalingAdapter.enable` drives it (as upstream): two adapters of one role would fight over it, and
    one nobody locked would undo every edit made by hand."""
    out = AdapterDecision()
    ref = adapter.spec.scale_target_ref
    previous = adapter.status.model_dump(by_alias=True, exclude_none=True) if adapter.status else {}
    index = next((i for i, r in enumerate(rbg.spec.roles) if r.name == ref.role), None) if rbg else None
    why = None
    if rbg is None or index is None:
        what = (
            f"RoleBasedGroup {ref.name}" if rbg is None else f"role {ref.role} of RoleBasedGroup {ref.name}"
        )
        why = f"{what} not found"
    elif owner_uid != rbg.metadata.uid or not enabled(rbg.spec.roles[index]):
        why = (
            f"not the adapter of role {ref.role}: set scalingAdapter.enable on it, and RoleBasedGroup "
            f"{ref.name} makes adapter {names.adapter_name(ref.name, ref.role)}"
        )
    if why is not None or rbg is None or index is None:
        out.status = {**previous, "phase": "NotBound", "message": why or ""}
        if previous.get("phase") != "NotBound" or previous.get("message") != why:
            out.events.append(("Warning", "FailedGetRBGRole", why or ""))
        return out
    role = rbg.spec.roles[index]
    wanted = adapter.spec.replicas
    if wanted is None:
        out.bind_replicas = role.replicas
        wanted = role.replicas
    if previous.get("phase") != "Bound":
        out.events.append(("Normal", "SuccessfulBound", f"bound to role {role.name} of {rbg.metadata.name}"))
    if wanted != role.replicas:
        out.scale_role = (index, role.name, wanted)
    out.status = {
        **previous,
        "phase": "Bound",
        "replicas": role.replicas,
        "readyReplicas": ready,
        "selector": selector(rbg, role),
    }
    return out


def lock_errors(
    old: RoleBasedGroup, new: RoleBasedGroup, adapters: dict[str, RoleBasedGroupScalingAdapter]
) -> list[str]:
    """A bound role's replicas belong to its adapter: changing them to another value than the adapter's
    is refused (upstream's message); any other edit is let through. `adapters`: the namespace's, by name."""
    before = {r.name: r.replicas for r in old.spec.roles}
    out = []
    for i, role in enumerate(new.spec.roles):
        if not enabled(role) or before.get(role.name, role.replicas) == role.replicas:
            continue
        name = names.adapter_name(new.metadata.name, role.name)
        adapter = adapters.get(name)
        if adapter is None or adapter.spec.replicas is None or adapter.spec.replicas == role.replicas:
            continue
        out.append(
            f'spec.roles[{i}].replicas (role "{role.name}"): cannot be changed to {role.replicas} while '
            f'scalingAdapter.enable is true and ScalingAdapter "{name}" has spec.replicas '
            f"{adapter.spec.replicas}"
        )
    return out
