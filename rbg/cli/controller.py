"""`rbg controller run`: the operator process. Every default is a field of `Settings` (rbg/controllers/
settings.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import typer

from rbg.controllers.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Run the operator.")
DEFAULTS = Settings()


@app.command("run")
def run(
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig (default: in-cluster).")
    ] = DEFAULTS.kubeconfig,
    namespace: Annotated[
        str, typer.Option(help="Namespace of the leader-election Lease.")
    ] = DEFAULTS.namespace,
    leader_elect: Annotated[
        bool, typer.Option(help="Run only while holding the Lease.")
    ] = DEFAULTS.leader_elect,
    probe_bind: Annotated[
        str, typer.Option(help="Address of the probe and metrics server.")
    ] = DEFAULTS.probe_bind,
    health_port: Annotated[
        int, typer.Option(help="/healthz, /readyz (and /metrics when equal to --metrics-port).")
    ] = DEFAULTS.health_port,
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics.")] = DEFAULTS.metrics_port,
    webhook_host: Annotated[
        str, typer.Option(help="Address the admission webhook listens on.")
    ] = DEFAULTS.webhook_host,
    webhook_port: Annotated[int, typer.Option()] = DEFAULTS.webhook_port,
    webhook_url: Annotated[
        str | None, typer.Option(help="URL the API server calls (default: https://HOST:PORT).")
    ] = DEFAULTS.webhook_url,
    cert_dir: Annotated[
        Path, typer.Option(help="Where the webhook's self-managed certificate lives.")
    ] = DEFAULTS.cert_dir,
    webhook_reuse_port: Annotated[
        bool,
        typer.Option(help="Share --webhook-port with other replicas on this host (SO_REUSEPORT)."),
    ] = DEFAULTS.webhook_reuse_port,
    cert_secret: Annotated[
        str,
        typer.Option(help="Secret (in --namespace) sharing the webhook certificate; empty: --cert-dir only."),
    ] = DEFAULTS.cert_secret,
    webhook_service: Annotated[
        str, typer.Option(help="Service (in --namespace, port 443) the API server calls; empty: the URL.")
    ] = DEFAULTS.webhook_service,
    manage_webhooks: Annotated[
        bool, typer.Option(help="Write the webhook configurations and the CRDs' conversion CA.")
    ] = DEFAULTS.manage_webhooks,
    webhook_failure_policy: Annotated[
        str, typer.Option(help="Fail or Ignore, when the API server cannot reach the webhooks.")
    ] = DEFAULTS.webhook_failure_policy,
    lws_controller: Annotated[
        bool, typer.Option(help="Run the LeaderWorkerSet controller (off: another one runs them).")
    ] = DEFAULTS.lws_controller,
    install_crds: Annotated[
        bool, typer.Option(help="Server-side apply the CRDs at start.")
    ] = DEFAULTS.install_crds,
    storage_version: Annotated[
        str,
        typer.Option(help="v1alpha1 (no conversion for the operator) or v1alpha2 (as upstream stores)."),
    ] = DEFAULTS.storage_version,
    workers: Annotated[
        int, typer.Option(help="Concurrent reconciles of the RoleBasedGroup and LeaderWorkerSet controllers.")
    ] = DEFAULTS.workers,
    status_progress_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between status writes that only update counts (condition changes: at once)."
        ),
    ] = DEFAULTS.status_progress_interval,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = DEFAULTS.log_level,
    log_json: Annotated[bool, typer.Option(help="JSON log lines.")] = DEFAULTS.log_json,
) -> None:
    """Run the RoleBasedGroup operator until SIGTERM/SIGINT."""
    from rbg.controllers.app import run as run_operator
    from rbg.runtime.logging import configure_logging

    settings = Settings(
        kubeconfig=kubeconfig,
        log_level=log_level,
        log_json=log_json,
        install_crds=install_crds,
        storage_version=_storage(storage_version),
        leader_elect=leader_elect,
        namespace=namespace,
        probe_bind=probe_bind,
        health_port=health_port,
        metrics_port=metrics_port,
        webhook_host=webhook_host,
        webhook_port=webhook_port,
        webhook_url=webhook_url,
        cert_dir=cert_dir,
        webhook_reuse_port=webhook_reuse_port,
        cert_secret=cert_secret,
        webhook_service=webhook_service,
        manage_webhooks=manage_webhooks,
        webhook_failure_policy=_failure_policy(webhook_failure_policy),
        lws_controller=lws_controller,
        workers=workers,
        status_progress_interval=status_progress_interval,
    )
    configure_logging(settings.log_level, json=settings.log_json)
    asyncio.run(run_operator(settings))


def _storage(value: str) -> Literal["v1alpha1", "v1alpha2"]:
    if value == "v1alpha1":
        return "v1alpha1"
    if value == "v1alpha2":
        return "v1alpha2"
    raise typer.BadParameter(f"{value!r}: v1alpha1 or v1alpha2", param_hint="--storage-version")


def _failure_policy(value: str) -> Literal["Fail", "Ignore"]:
    if value == "Fail":
        return "Fail"
    if value == "Ignore":
        return "Ignore"
    raise typer.BadParameter(f"{value!r}: Fail or Ignore", param_hint="--webhook-failure-policy")
