"""`rbg controller run`: the operator process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Run the operator.")


@app.command("run")
def run(
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig [default: in-cluster].")
    ] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of the leader-election Lease.")] = "rbg-system",
    leader_elect: Annotated[bool, typer.Option(help="Run only while holding the Lease.")] = True,
    probe_bind: Annotated[str, typer.Option(help="Address of the probe and metrics server.")] = "0.0.0.0",  # noqa: S104
    health_port: Annotated[
        int, typer.Option(help="/healthz, /readyz (and /metrics when equal to --metrics-port).")
    ] = 8081,
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics.")] = 8080,
    webhook_host: Annotated[
        str, typer.Option(help="Address the admission webhook listens on.")
    ] = "127.0.0.1",
    webhook_port: Annotated[int, typer.Option()] = 9443,
    webhook_url: Annotated[
        str | None, typer.Option(help="URL the API server calls [default: https://HOST:PORT].")
    ] = None,
    cert_dir: Annotated[
        Path, typer.Option(help="Where the webhook's self-managed certificate lives.")
    ] = Path("/tmp/rbg-webhook-certs"),
    install_crds: Annotated[bool, typer.Option(help="Server-side apply the CRDs at start.")] = True,
    workers: Annotated[int, typer.Option(help="Concurrent reconciles per controller.")] = 32,
    status_progress_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between status writes that only update counts (condition changes: at once)."
        ),
    ] = 5.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    log_json: Annotated[bool, typer.Option(help="JSON log lines.")] = True,
) -> None:
    """Run the RoleBasedGroup operator until SIGTERM/SIGINT."""
    from rbg.controllers.app import Options
    from rbg.controllers.app import run as run_operator
    from rbg.runtime.logging import configure_logging

    configure_logging(log_level, json=log_json)
    opts = Options(
        kubeconfig=kubeconfig,
        probe_bind=probe_bind,
        namespace=namespace,
        leader_elect=leader_elect,
        health_port=health_port,
        metrics_port=metrics_port,
        webhook_host=webhook_host,
        webhook_port=webhook_port,
        webhook_url=webhook_url,
        cert_dir=cert_dir,
        install_crds=install_crds,
        workers=workers,
        status_progress_interval=status_progress_interval,
    )
    asyncio.run(run_operator(opts))
