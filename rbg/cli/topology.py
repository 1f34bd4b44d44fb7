"""`rbg topology NAME`: per topology domain, which pods of which role and batch of a group are there."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Annotated, Any

import typer
from rich.console import Console

from rbg.coordination.batches import EXCLUSIVE_ANNOTATIONS

HOST = "kubernetes.io/hostname"
GROUP = "rbg.workloads.x-k8s.io/group-name"
ROLE = "rbg.workloads.x-k8s.io/role-name"
BATCH_PREFIX = "coordination.workloads.x-k8s.io/"


def topology_key(rbg: dict[str, Any]) -> str:
    """The key the group is placed by: its first AffinityScheduling coordination's, its exclusive
    topology's, else the hostname."""
    for c in (rbg.get("spec") or {}).get("coordination") or []:
        key = ((c.get("strategy") or {}).get("affinityScheduling") or {}).get("topologyKey")
        if key:
            return str(key)
    annotations = rbg["metadata"].get("annotations") or {}
    return next((annotations[k] for k in EXCLUSIVE_ANNOTATIONS if annotations.get(k)), HOST)


def layout(
    rbg: dict[str, Any], pods: list[dict[str, Any]], nodes: list[dict[str, Any]], key: str
) -> dict[str, Any]:
    """{domain: {node: [{pod, role, batch}]}}; pods not bound yet are listed under "(pending)"."""
    node_labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in nodes}
    out: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        labels = pod["metadata"].get("labels") or {}
        if labels.get(GROUP) != rbg["metadata"]["name"]:
            continue
        batch = next((v for k, v in labels.items() if k.startswith(BATCH_PREFIX)), None)
        node = (pod.get("spec") or {}).get("nodeName")
        domain = node_labels.get(node or "", {}).get(key, "(pending)") if node else "(pending)"
        gated = bool((pod.get("spec") or {}).get("schedulingGates"))
        entry = {"pod": pod["metadata"]["name"], "role": labels.get(ROLE), "batch": batch}
        if gated:
            entry["gated"] = True
        out[domain][node or "-"].append(entry)
    return {d: dict(nodes_) for d, nodes_ in sorted(out.items())}


def render(name: str, key: str, placed: dict[str, Any]) -> str:
    lines = [f"RoleBasedGroup {name} by {key}"]
    for domain, by_node in placed.items():
        lines.append(f"{domain}")
        for node, entries in sorted(by_node.items()):
            what = ", ".join(
                f"{e['pod']} ({e['role']}"
                + (f", batch {e['batch']}" if e.get("batch") is not None else "")
                + (", gated" if e.get("gated") else "")
                + ")"
                for e in entries
            )
            lines.append(f"  {node}: {what}")
    return "\n".join(lines)


def topology(
    name: Annotated[str, typer.Argument(help="RoleBasedGroup name")],
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="node label of the domains (default: the group's)")
    ] = None,
    kubeconfig: Annotated[str | None, typer.Option(envvar="KUBECONFIG")] = None,
    context: Annotated[str | None, typer.Option()] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """Show per topology domain (and node) which pods of which role and batch of the group run there."""
    from lightkube.core.exceptions import ApiError
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.resources.core_v1 import Node, Pod

    from rbg.cli.status import _client

    if output not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--output")
    client = _client(kubeconfig, context, namespace)
    ns = namespace or client.namespace
    kind = create_namespaced_resource("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups")
    try:
        rbg: dict[str, Any] = client.get(kind, name, namespace=ns).to_dict()
    except ApiError as exc:
        Console(stderr=True).print(f"error: RoleBasedGroup {name}: {exc.status.message}", highlight=False)
        raise typer.Exit(1) from None
    pods = [p.to_dict() for p in client.list(Pod, namespace=ns, labels={GROUP: name})]
    nodes = [n.to_dict() for n in client.list(Node)]
    domain_key = key or topology_key(rbg)
    placed = layout(rbg, pods, nodes, domain_key)
    if output == "json":
        typer.echo(json.dumps({"group": name, "topologyKey": domain_key, "domains": placed}, indent=2))
    else:
        typer.echo(render(name, domain_key, placed))
