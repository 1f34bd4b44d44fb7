"""`rbg cluster up | down | status | env`: the local control plane."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rbg.devcluster.binaries import Binaries
from rbg.devcluster.cluster import LocalCluster
from rbg.devcluster.errors import DevClusterError
from rbg.devcluster.topology import load_topology

app = typer.Typer(no_args_is_help=True, help="A real local Kubernetes control plane with fake GPU nodes.")
err = Console(stderr=True)

NameOpt = Annotated[str, typer.Option("--name", help="Cluster name (several can run side by side).")]
DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="State and log directory [default: ~/.cache/rbg/clusters/NAME].")
]


def _fail(exc: DevClusterError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@app.command()
def up(
    name: NameOpt = "rbg",
    directory: DirOpt = None,
    topology: Annotated[
        Path | None,
        typer.Option("--topology", "-t", help="Topology YAML (default: 2 zones x 2 racks x 4 nodes)."),
    ] = None,
    api_port: Annotated[int | None, typer.Option(help="kube-apiserver port [default: a free one].")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every node to be Ready.")] = 120.0,
) -> None:
    """Start the cluster (or reuse it if it is running) and wait until every node is Ready."""
    t0 = time.monotonic()
    try:
        topo = load_topology(topology)
        state, reused = LocalCluster(name, directory).up(
            topo,
            api_port=api_port,
            timeout=timeout,
            log=lambda m: err.print(f"[dim]{m}[/dim]", highlight=False),
        )
    except DevClusterError as exc:
        raise _fail(exc) from None
    verb = "reused" if reused else f"up in {time.monotonic() - t0:.1f}s"
    err.print(f"cluster [bold]{name}[/bold] {verb}: {state.api_url}, {state.nodes} nodes", highlight=False)
    typer.echo(f"export KUBECONFIG={state.kubeconfig}")


@app.command()
def down(name: NameOpt = "rbg", directory: DirOpt = None) -> None:
    """Stop every process of the cluster and free its ports (logs stay in its directory)."""
    cluster = LocalCluster(name, directory)
    if cluster.down():
        err.print(f"cluster {name} stopped (logs kept in {cluster.logs})", highlight=False)
    else:
        err.print(f"cluster {name} is not running", highlight=False)


@app.command()
def status(
    name: NameOpt = "rbg",
    directory: DirOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Show whether each component runs, its pid and port, and how many nodes are Ready."""
    info = LocalCluster(name, directory).status()
    if output == "json":
        typer.echo(json.dumps(info, indent=2))
    elif output != "table":
        raise typer.BadParameter("must be table or json", param_hint="--output")
    else:
        console = Console()
        if not info["components"]:
            console.print(f"cluster {name}: not running ({info['dir']})", highlight=False)
        else:
            table = Table(title=f"cluster {name} - {'running' if info['running'] else 'NOT healthy'}")
            for col in ("component", "pid", "port", "running"):
                table.add_column(col)
            for comp, c in info["components"].items():
                table.add_row(
                    comp, str(c["pid"]), str(c["port"] or "-"), "yes" if c["running"] else "[red]no[/red]"
                )
            console.print(table)
            console.print(
                f"server {info['server']}  nodes ready {info.get('nodes_ready', '?')}/{info['nodes']}",
                highlight=False,
            )
    if not info["running"]:
        raise typer.Exit(1)


@app.command()
def env(name: NameOpt = "rbg", directory: DirOpt = None) -> None:
    """Print shell exports for the cluster: `eval $(rbg cluster env)`."""
    state = LocalCluster(name, directory).load_state()
    if state is None:
        err.print(f"[red]error:[/red] cluster {name} is not running (start it with `rbg cluster up`)")
        raise typer.Exit(1)
    typer.echo(f"export KUBECONFIG={state.kubeconfig}")
    if Binaries(Path(state.bin_dir)).has("kubectl"):
        typer.echo(f'export PATH="{state.bin_dir}:$PATH"')


operator_app = typer.Typer(no_args_is_help=True, help="The operator, run on the host against the cluster.")
app.add_typer(operator_app, name="operator")


@operator_app.command("up")
def operator_up(
    name: NameOpt = "rbg",
    directory: DirOpt = None,
    replicas: Annotated[
        int, typer.Option(min=1, max=5, help="Replicas (one leader, the others standby).")
    ] = 1,
    supervise: Annotated[
        bool, typer.Option(help="Restart a replica that exits, with back-off, as a kubelet would.")
    ] = True,
) -> None:
    """Apply RBAC, start (or restart) the operator with its ServiceAccount token, wait until ready."""
    from rbg.devcluster import operator

    cluster = LocalCluster(name, directory)
    try:
        state = operator.start(cluster, replicas=replicas, supervise=supervise)
    except DevClusterError as exc:
        raise _fail(exc) from None
    for replica in operator.replica_names(replicas):
        err.print(
            f"{replica} running (pid {state.pids[replica]}{', supervised' if supervise else ''}, "
            f"log {cluster.logs / f'{replica}.log'})",
            highlight=False,
        )


@operator_app.command("down")
def operator_down(name: NameOpt = "rbg", directory: DirOpt = None) -> None:
    """Stop the operator (the cluster keeps running)."""
    from rbg.devcluster import operator

    operator.stop(LocalCluster(name, directory))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
