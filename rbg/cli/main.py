"""Entry point of `rbg` / `kubectl rbg`."""

from __future__ import annotations

import typer

from rbg.cli import cluster, controller, rollout
from rbg.cli.status import status
from rbg.cli.topology import topology

app = typer.Typer(
    no_args_is_help=True,
    help="RoleBasedGroup operator and tools.",
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cluster.app, name="cluster")
app.add_typer(controller.app, name="controller")
app.add_typer(rollout.app, name="rollout")
app.command()(status)
app.command()(topology)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
