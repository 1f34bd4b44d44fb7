"""Entry point of `rbg` / `kubectl rbg`."""

from __future__ import annotations

import typer

from rbg.cli import cluster

app = typer.Typer(no_args_is_help=True, help="RoleBasedGroup operator and tools.", add_completion=False)
app.add_typer(cluster.app, name="cluster")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
