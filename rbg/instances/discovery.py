"""Component discovery (KEP-173): a component's pods get the addresses and ports of other components of
their own instance as environment variables, from its `component-discovery` annotation (D42).

`{"addressRefs": [{"env": "LEADER_ADDR", "component": "leader", "index": 0}],
  "portRefs": [{"env": "LEADER_PORT", "component": "leader", "portName": "grpc", "index": 0}]}`
gives `LEADER_ADDR={set}-{i}-leader-0.{service}.{namespace}.svc.cluster.local` and the leader template's
container port named `grpc`. A StatefulSet is one component of one instance, so the values are plain
strings in its template; a reference to nothing (an unknown component, an index beyond its size, a port
no container has) gives no variable.
"""

from __future__ import annotations

import json
from typing import Any

from rbg.api.roleinstanceset import InstanceComponent, RoleInstanceSet
from rbg.instances import labels

Obj = dict[str, Any]


def references(annotations: Any) -> Obj | None:
    """The parsed annotation, or None when there is none or it is not a JSON object."""
    raw = annotations.get(labels.DISCOVERY) if isinstance(annotations, dict) else None
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _port(component: InstanceComponent, name: Any) -> int | None:
    for container in (component.template.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return None


def env(ris: RoleInstanceSet, index: int, component: InstanceComponent) -> list[Obj]:
    """The variables `component`'s pods in instance `index` get from its discovery annotation."""
    refs = references((component.template.get("metadata") or {}).get("annotations"))
    if refs is None:
        return []
    by_name = {c.name: c for c in ris.spec.role_instance_template.components}
    out: list[Obj] = []
    for kind in ("addressRefs", "portRefs"):
        for ref in refs.get(kind) or []:
            if not isinstance(ref, dict) or not isinstance(ref.get("env"), str) or not ref["env"]:
                continue
            target = by_name.get(str(ref.get("component")))
            at = ref.get("index", 0)
            if target is None or not isinstance(at, int) or not 0 <= at < target.size:
                continue
            if kind == "addressRefs":
                service = target.service_name or ris.metadata.name
                pod = f"{ris.metadata.name}-{index}-{target.name}-{at}"
                out.append(
                    {
                        "name": ref["env"],
                        "value": f"{pod}.{service}.{ris.metadata.namespace}.svc.cluster.local",
                    }
                )
            elif (port := _port(target, ref.get("portName"))) is not None:
                out.append({"name": ref["env"], "value": str(port)})
    return out


def inject(template: Obj, variables: list[Obj]) -> None:
    """Put `variables` first in every container's env; a variable the user set keeps the user's value."""
    if not variables:
        return
    for container in (template.get("spec") or {}).get("containers") or []:
        user = container.get("env") or []
        names = {e.get("name") for e in user}
        container["env"] = [v for v in variables if v["name"] not in names] + user
