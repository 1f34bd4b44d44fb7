"""`rbg status NAME`: per-role readiness of a RoleBasedGroup."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

BAR = 16


def bar(ready: int, total: int) -> str:
    filled = BAR if total == 0 else min(BAR, round(BAR * ready / total))
    return "█" * filled + " " * (BAR - filled)


def render(obj: dict[str, Any]) -> str:
    meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status") or {}
    lines = [f"RoleBasedGroup {meta['namespace']}/{meta['name']}"]
    by_name = {s["name"]: s for s in status.get("roleStatuses") or []}
    width = max([len(r["name"]) for r in spec.get("roles", [])] + [4])
    total_ready = total = 0
    for role in spec.get("roles", []):
        s = by_name.get(role["name"], {})
        ready, want = int(s.get("readyReplicas", 0)), int(role.get("replicas", 1))
        total_ready, total = total_ready + ready, total + want
        pct = 100 if want == 0 else round(100 * ready / want)
        lines.append(f"  {role['name']:<{width}}  {ready}/{want}  [{bar(ready, want)}] {pct:>3}%")
    cond = {c["type"]: c for c in status.get("conditions") or []}
    ready_c = cond.get("Ready")
    state = (
        f"{ready_c['status']} ({ready_c['reason']}: {ready_c['message']})"
        if ready_c
        else "Unknown (no status yet)"
    )
    lines.append(f"Ready: {state}")
    if (p := cond.get("Progressing")) and p["status"] == "True":
        lines.append(f"Progressing: {p['reason']}: {p['message']}")
    for c in status.get("coordinationStatus") or []:
        placed = " ".join(
            f"{b['index']}:{b.get('domain') or '-'}({b['phase']})" for b in c.get("batches") or []
        )
        lines.append(
            f"Coordination {c['name']} ({c['type']}): {c['phase']}, "
            f"{c.get('placedBatches', 0)}/{c.get('totalBatches', 0)} batches placed  {placed}".rstrip()
        )
        if c.get("message"):
            lines.append(f"  {c['message']}")
    lines.append(f"Summary: {len(spec.get('roles', []))} roles | {total_ready}/{total} replicas ready")
    return "\n".join(lines)


def _client(kubeconfig: str | None, context: str | None, namespace: str | None) -> Any:
    from lightkube import Client, KubeConfig
    from lightkube.core.exceptions import ConfigError

    try:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        return Client(config.get(context_name=context), namespace=namespace)
    except ConfigError as exc:
        Console(stderr=True).print(f"error: {exc}", highlight=False)
        raise typer.Exit(1) from None


def status(
    name: Annotated[str, typer.Argument(help="RoleBasedGroup name")],
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    kubeconfig: Annotated[str | None, typer.Option(envvar="KUBECONFIG")] = None,
    context: Annotated[str | None, typer.Option()] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text, json or yaml")] = "text",
) -> None:
    """Show each role's ready/desired replicas with a bar, and the group's Ready condition."""
    from lightkube.core.exceptions import ApiError
    from lightkube.generic_resource import create_namespaced_resource

    if output not in ("text", "json", "yaml"):
        raise typer.BadParameter("must be text, json or yaml", param_hint="--output")
    err = Console(stderr=True)
    client = _client(kubeconfig, context, namespace)
    rbg = create_namespaced_resource("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups")
    try:
        obj: dict[str, Any] = client.get(rbg, name, namespace=namespace or client.namespace).to_dict()
    except ApiError as exc:
        err.print(f"error: RoleBasedGroup {name}: {exc.status.message}", highlight=False)
        raise typer.Exit(1) from None
    obj["metadata"].pop("managedFields", None)
    if output == "json":
        typer.echo(json.dumps(obj, indent=2))
    elif output == "yaml":
        typer.echo(yaml.safe_dump(obj, sort_keys=False))
    else:
        typer.echo(render(obj))
