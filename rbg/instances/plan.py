"""One reconcile of a RoleInstanceSet, as a pure function: its StatefulSets and its status (D42).

Instance `i` of set `s` is one StatefulSet `{s}-{i}-{component}` per component, `size` replicas each, so
its pods are `{s}-{i}-{component}-{id}` as upstream's. A component whose template says
`component-depends-on: {"startAfter": [...]}` is created once those components of the same instance have
all their pods ready (KEP-173; a cycle or an unknown name: no order). A changed template reaches the
instances from the highest index down, at most maxUnavailable of them unavailable at a time; instances
below the partition keep theirs; an instance already unavailable may always take the new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rbg.api.roleinstanceset import InstanceComponent, RoleInstanceSet
from rbg.instances import discovery, labels
from rbg.lifecycle import revisions
from rbg.lifecycle.observed import caught_up

Obj = dict[str, Any]


@dataclass
class Plan:
    apply: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)  # observed StatefulSets to delete
    status: Obj = field(default_factory=dict)


def statefulset_name(set_name: str, index: int, component: str) -> str:
    return f"{set_name}-{index}-{component}"


def start_after(annotations: Any) -> list[str]:
    """The components one starts after, from its component-depends-on annotation (in `annotations`)."""
    raw = annotations.get(labels.DEPENDS_ON) if isinstance(annotations, dict) else None
    if not isinstance(raw, str) or not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    after = value.get("startAfter") if isinstance(value, dict) else None
    return [a for a in after if isinstance(a, str)] if isinstance(after, list) else []


def order_of(after: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per component, those it waits for; every component waits for none when the order has a cycle
    or names a component the instance does not have (upstream logs it and starts them in parallel)."""
    if any(a not in after or a == c for c, deps in after.items() for a in deps):
        return {c: [] for c in after}
    done: set[str] = set()
    while len(done) < len(after):
        free = [c for c, deps in after.items() if c not in done and set(deps) <= done]
        if not free:
            return {c: [] for c in after}
        done.update(free)
    return after


def start_order(components: list[InstanceComponent]) -> dict[str, list[str]]:
    """The set's start order, from each component template's annotations."""
    return order_of(
        {c.name: start_after((c.template.get("metadata") or {}).get("annotations")) for c in components}
    )


def revision(ris: RoleInstanceSet) -> str:
    """Digest of what an instance is made of (every component's name, size, Service and template)."""
    return revisions.safe_hash(ris.spec.role_instance_template.wire())


def _ready(sts: Obj | None, size: int) -> bool:
    if sts is None or not caught_up(sts):
        return False
    status = sts.get("status") or {}
    # available (ready for minReadySeconds), as a StatefulSet counts it; readyReplicas on an old one
    available = status.get("availableReplicas", status.get("readyReplicas"))
    return (
        (sts.get("spec") or {}).get("replicas") == size
        and int(available or 0) >= size
        and int(status.get("updatedReplicas") or 0) >= size
        and int(status.get("replicas") or 0) == size
    )


def _max_unavailable(ris: RoleInstanceSet) -> int:
    strategy = ris.spec.update_strategy
    replicas = ris.spec.replicas
    if strategy.type == "Recreate":
        return max(replicas, 1)
    value = strategy.max_unavailable
    if isinstance(value, str) and value.endswith("%"):
        return max(replicas * int(value[:-1]) // 100, 1)
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return 1


def statefulset(ris: RoleInstanceSet, owner: Obj, index: int, component: InstanceComponent, rev: str) -> Obj:
    """The StatefulSet of one component of one instance."""
    name = ris.metadata.name
    instance = f"{name}-{index}"
    own = {
        labels.SET: name,
        labels.INSTANCE_NAME: instance,
        labels.INSTANCE_INDEX: str(index),
        labels.COMPONENT_NAME: component.name,
    }
    selector = {**ris.spec.selector, labels.INSTANCE_NAME: instance, labels.COMPONENT_NAME: component.name}
    template: Obj = json.loads(json.dumps(component.template))
    discovery.inject(template, discovery.env(ris, index, component))  # KEP-173 addresses and ports
    meta = template.setdefault("metadata", {})
    meta["labels"] = {
        **(meta.get("labels") or {}),
        **ris.spec.selector,
        **own,
        labels.COMPONENT_SIZE: str(component.size),
        labels.REVISION: rev,
    }
    set_labels = ris.metadata.labels or {}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": statefulset_name(name, index, component.name),
            "namespace": ris.metadata.namespace,
            "labels": {**set_labels, **own, labels.REVISION: rev},
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": component.size,
            "selector": {"matchLabels": selector},
            "serviceName": component.service_name or name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "minReadySeconds": ris.spec.min_ready_seconds,
            "template": template,
        },
    }


@dataclass
class _Instance:
    index: int
    sets: dict[str, Obj] = field(default_factory=dict)  # component -> observed StatefulSet

    def updated(self, rev: str) -> bool:
        return bool(self.sets) and all(_label(s, labels.REVISION) == rev for s in self.sets.values())

    def listed(self) -> set[str]:
        """The components the instance was written with (each StatefulSet lists them all)."""
        out = set(self.sets)
        for sts in self.sets.values():
            raw = ((sts.get("metadata") or {}).get("annotations") or {}).get(labels.COMPONENTS)
            if isinstance(raw, str) and raw:
                out.update(raw.split(","))
        return out

    def broken(self) -> bool:
        """It lost a StatefulSet of its own template (deleted by someone): that template is not kept,
        so the instance is rebuilt on the current one."""
        return bool(self.sets) and not self.listed() <= set(self.sets)

    def healthy(self) -> bool:
        """Every component it was written with exists and has all its pods available (each at the size
        its StatefulSet has: an old instance is judged by what it runs)."""
        return (
            bool(self.sets)
            and not self.broken()
            and all(_ready(s, int((s.get("spec") or {}).get("replicas") or 0)) for s in self.sets.values())
        )

    def complete(self, components: list[InstanceComponent]) -> bool:
        """It runs exactly the current components, each with all its pods available."""
        return set(self.sets) == {c.name for c in components} and all(
            _ready(self.sets[c.name], c.size) for c in components
        )


def _label(obj: Obj, key: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(key)
    return value if isinstance(value, str) else None


def _instances(observed: list[Obj]) -> dict[int, _Instance]:
    out: dict[int, _Instance] = {}
    for sts in observed:
        raw, component = _label(sts, labels.INSTANCE_INDEX), _label(sts, labels.COMPONENT_NAME)
        if raw is None or component is None or not raw.isdigit():
            continue  # not one of ours: left alone
        out.setdefault(int(raw), _Instance(int(raw))).sets[component] = sts
    return out


def _moving(ris: RoleInstanceSet, rev: str, existing: list[_Instance], lost: int) -> tuple[set[int], bool]:
    """The instances to move to the current template now, and whether others still wait for their turn.

    A broken instance always moves; below the partition or while paused nothing else does. Then the
    unavailable ones (they cost no availability) and, from the highest index down, the available ones
    while at most maxUnavailable are unavailable: the unhealthy and the `lost` ones (made before, no
    StatefulSet left) count, instances not made yet do not."""
    strategy = ris.spec.update_strategy
    budget = _max_unavailable(ris) - lost - sum(1 for x in existing if not x.healthy())
    moving: set[int] = set()
    left = False
    for x in sorted((x for x in existing if not x.updated(rev)), key=lambda x: -x.index):
        if x.broken():
            moving.add(x.index)
        elif strategy.paused or x.index < strategy.partition:
            continue
        elif not x.healthy():
            moving.add(x.index)
        elif budget > 0:
            moving.add(x.index)
            budget -= 1
        else:
            left = True
    return moving, left


def plan(ris: RoleInstanceSet, owner: Obj, observed: list[Obj], generation: int) -> Plan:
    """What to write for the set: `observed` are the StatefulSets it controls."""
    out = Plan()
    components = ris.spec.role_instance_template.components
    replicas = ris.spec.replicas
    rev = revision(ris)
    order = start_order(components)
    instances = _instances(observed)
    # instances made and not scaled away since (status): an index below it with no StatefulSet left was
    # lost, not new; it is made again at once and counts as unavailable
    made = min(replicas, max(_made(ris), max(instances, default=-1) + 1))
    existing = [instances[i] for i in range(replicas) if i in instances]
    moving, rolling = _moving(ris, rev, existing, sum(1 for i in range(made) if i not in instances))

    waiting: list[str] = []
    for i in range(replicas):
        inst = instances.get(i, _Instance(i))
        if inst.sets and not inst.updated(rev) and i not in moving:
            continue  # keeps its template until its turn
        if not inst.sets and rolling and i >= made:
            # a new instance waits for the rollout: the old ones roll first, then the set grows (D36)
            waiting += [f"{i}-{c.name}" for c in components]
            continue
        bodies: list[Obj] = []
        waits: list[str] = []
        for c in components:
            have = inst.sets.get(c.name)
            body = statefulset(ris, owner, i, c, rev)
            if (
                have is not None
                and (have.get("spec") or {}).get("serviceName") != body["spec"]["serviceName"]
            ):
                out.delete.append(have)  # serviceName is immutable: made again on the next pass
                continue
            if have is None and not all(
                _ready(inst.sets.get(a), _size(components, a)) for a in order.get(c.name, [])
            ):
                waits.append(c.name)
                continue
            bodies.append(body)
        # what the instance is made of, but for what still waits its turn to start (not lost)
        listed = ",".join(c.name for c in components if c.name not in waits)
        for body in bodies:
            body["metadata"]["annotations"] = {labels.COMPONENTS: listed}
        out.apply += bodies
        waiting += [f"{i}-{name}" for name in waits]
        wanted = {c.name for c in components}
        out.delete.extend(s for name, s in inst.sets.items() if name not in wanted)
    for i, inst in instances.items():
        if i >= replicas:
            out.delete.extend(inst.sets.values())

    updated = [x for x in existing if x.updated(rev) and set(x.sets) == {c.name for c in components}]
    selector = ",".join(f"{k}={v}" for k, v in sorted(ris.spec.selector.items()))
    out.status = {
        "observedGeneration": generation,
        "replicas": len(instances),
        "readyReplicas": sum(1 for x in existing if x.healthy()),
        "updatedReplicas": len(updated),
        "updatedReadyReplicas": sum(1 for x in updated if x.complete(components)),
        "updateRevision": rev,
        "labelSelector": selector,
        "madeReplicas": made,
        **({"waiting": waiting} if waiting else {}),
    }
    return out


def _made(ris: RoleInstanceSet) -> int:
    status = ris.status
    return status.made_replicas if status is not None and status.made_replicas else 0


def _size(components: list[InstanceComponent], name: str) -> int:
    return next((c.size for c in components if c.name == name), 0)
