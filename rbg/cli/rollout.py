"""`rbg rollout status | history | diff | undo | pause | resume NAME`: a RoleBasedGroup's rollouts per role,
its revisions, going back to one, and pausing."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from rbg.cli import history
from rbg.cli.status import _client

app = typer.Typer(no_args_is_help=True, help="Rollouts of a RoleBasedGroup's roles.")
Obj = dict[str, Any]


def _paused(role: Obj) -> bool:
    return bool(((role.get("rolloutStrategy") or {}).get("rollingUpdate") or {}).get("paused"))


def rows(obj: Obj) -> list[Obj]:
    """Per role: replicas, ready, on the current template, paused."""
    by_name = {s["name"]: s for s in (obj.get("status") or {}).get("roleStatuses") or []}
    out = []
    for role in (obj.get("spec") or {}).get("roles") or []:
        s = by_name.get(role["name"], {})
        out.append(
            {
                "role": role["name"],
                "replicas": int(role.get("replicas", 1)),
                "ready": int(s.get("readyReplicas", 0)),
                "updated": int(s.get("updatedReplicas", 0)),
                "paused": _paused(role),
            }
        )
    return out


def render(obj: Obj) -> str:
    lines = [f"RoleBasedGroup {obj['metadata'].get('namespace')}/{obj['metadata']['name']}"]
    for r in rows(obj):
        state = "paused" if r["paused"] else ("complete" if r["updated"] >= r["replicas"] else "rolling")
        on = f"{r['updated']}/{r['replicas']} on the current template"
        lines.append(f"  {r['role']}: {on}, {r['ready']} ready ({state})")
    return "\n".join(lines)


def pause_patch(obj: Obj, roles: list[str] | None, paused: bool) -> list[Obj]:
    """JSON patch operations setting `paused` on the roles (all when None), each guarded by a `test` on
    the role's name at its index (the list may change under us)."""
    ops: list[Obj] = []
    for i, role in enumerate((obj.get("spec") or {}).get("roles") or []):
        if roles is not None and role["name"] not in roles:
            continue
        ops.append({"op": "test", "path": f"/spec/roles/{i}/name", "value": role["name"]})
        strategy = role.get("rolloutStrategy")
        if strategy is None:
            ops.append(
                {
                    "op": "add",
                    "path": f"/spec/roles/{i}/rolloutStrategy",
                    "value": {"rollingUpdate": {"paused": paused}},
                }
            )
        elif strategy.get("rollingUpdate") is None:
            ops.append(
                {
                    "op": "add",
                    "path": f"/spec/roles/{i}/rolloutStrategy/rollingUpdate",
                    "value": {"paused": paused},
                }
            )
        else:
            ops.append(
                {
                    "op": "add",
                    "path": f"/spec/roles/{i}/rolloutStrategy/rollingUpdate/paused",
                    "value": paused,
                }
            )
    return ops


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"error: {message}", highlight=False)
    return typer.Exit(1)


def _get(
    name: str, namespace: str | None, kubeconfig: str | None, context: str | None
) -> tuple[Any, Any, Obj]:
    from lightkube.core.exceptions import ApiError
    from lightkube.generic_resource import create_namespaced_resource

    client = _client(kubeconfig, context, namespace)
    kind = create_namespaced_resource("workloads.x-k8s.io", "v1alpha1", "RoleBasedGroup", "rolebasedgroups")
    try:
        obj: Obj = client.get(kind, name, namespace=namespace or client.namespace).to_dict()
    except ApiError as exc:
        raise _fail(f"RoleBasedGroup {name}: {exc.status.message}") from None
    return client, kind, obj


NameArg = Annotated[str, typer.Argument(help="RoleBasedGroup name")]
Namespace = Annotated[str | None, typer.Option("--namespace", "-n")]
Kubeconfig = Annotated[str | None, typer.Option(envvar="KUBECONFIG")]
Context = Annotated[str | None, typer.Option()]
Roles = Annotated[list[str] | None, typer.Option("--role", help="only these roles (repeatable); default all")]


@app.command("status")
def status_cmd(
    name: NameArg,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """Per role: pods on the current template, ready, and whether the rollout is paused."""
    _, _, obj = _get(name, namespace, kubeconfig, context)
    typer.echo(json.dumps(rows(obj), indent=2) if output == "json" else render(obj))


def _set_paused(
    name: str,
    paused: bool,
    roles: list[str] | None,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    from lightkube.core.exceptions import ApiError
    from lightkube.types import PatchType

    client, kind, obj = _get(name, namespace, kubeconfig, context)
    ops = pause_patch(obj, roles, paused)
    if not ops:
        raise _fail(f"no role {', '.join(roles or [])} in {name}")
    try:
        client.patch(kind, name, ops, namespace=obj["metadata"]["namespace"], patch_type=PatchType.JSON)
    except ApiError as exc:
        raise _fail(f"{exc.status.message}") from None
    typer.echo(f"rolebasedgroup/{name} {'paused' if paused else 'resumed'}")


@app.command()
def pause(
    name: NameArg,
    role: Roles = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Stop the roles' rollouts where they are (rolloutStrategy.rollingUpdate.paused)."""
    _set_paused(name, True, role, namespace, kubeconfig, context)


@app.command()
def resume(
    name: NameArg,
    role: Roles = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Let the roles' rollouts go on."""
    _set_paused(name, False, role, namespace, kubeconfig, context)


def _revisions(client: Any, obj: Obj) -> list[Obj]:
    from lightkube.resources.apps_v1 import ControllerRevision

    from rbg.group import names

    found = client.list(
        ControllerRevision,
        namespace=obj["metadata"]["namespace"],
        labels={names.GROUP_NAME: obj["metadata"]["name"]},
    )
    return history.owned(obj, [r.to_dict() for r in found])


@app.command("history")
def history_cmd(
    name: NameArg,
    revision: Annotated[int | None, typer.Option("--revision", help="print this revision's roles")] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """The group's revisions (ControllerRevisions), oldest first; * marks the current one."""
    client, _, obj = _get(name, namespace, kubeconfig, context)
    revisions = _revisions(client, obj)
    if revision is not None:
        try:
            found = history.find(revisions, revision)
        except history.HistoryError as exc:
            raise _fail(str(exc)) from None
        typer.echo(json.dumps(found.get("data"), indent=2) if output == "json" else history.spec_yaml(found))
        return
    rows_ = history.history_rows(obj, revisions)
    typer.echo(history.as_json(rows_) if output == "json" else history.render_history(rows_))


@app.command("diff")
def diff_cmd(
    name: NameArg,
    revision: Annotated[int, typer.Option("--revision", help="the revision to compare with the current")],
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """What changed from revision N to the current revision (a unified diff of the roles)."""
    client, _, obj = _get(name, namespace, kubeconfig, context)
    try:
        text = history.diff(_revisions(client, obj), revision, obj)
    except history.HistoryError as exc:
        raise _fail(str(exc)) from None
    typer.echo(text or f"revision {revision} is the current revision")


@app.command("undo")
def undo_cmd(
    name: NameArg,
    to_revision: Annotated[
        int | None,
        typer.Option("--to-revision", "--revision", help="default: the revision before the current"),
    ] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Roll the group back to an earlier revision's roles; every role keeps its current replicas."""
    from lightkube.core.exceptions import ApiError
    from lightkube.types import PatchType

    client, kind, obj = _get(name, namespace, kubeconfig, context)
    try:
        target = history.undo_target(obj, _revisions(client, obj), to_revision)
    except history.HistoryError as exc:
        raise _fail(str(exc)) from None
    try:
        client.patch(
            kind,
            name,
            history.undo_patch(obj, target),
            namespace=obj["metadata"]["namespace"],
            patch_type=PatchType.MERGE,
        )
    except ApiError as exc:
        raise _fail(exc.status.message or "the API server refused the rollback") from None
    typer.echo(f"rolebasedgroup/{name} rolled back to revision {target.get('revision')}")
