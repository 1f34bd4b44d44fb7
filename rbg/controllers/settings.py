"""The operator's settings: every flag of `rbg controller run` and every timing the operator process is
wired with, each with its meaning, unit and default — the one place those defaults live.

`rbg controller run` takes its option defaults from `Settings()` (a unit test compares its `--help` with
these fields) and `rbg.controllers.app.run` builds the manager and the reconcilers from a `Settings`. The
generic runtime (rbg/runtime) keeps its own constructor parameters and is fed from here; what it decides
alone stays there: client-go's informer watch timeouts and work-queue rate limiter, the webhooks'
timeoutSeconds and the cache wait derived from it (rbg.runtime.manager.CACHE_WAIT).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Settings:
    # -- the process ----------------------------------------------------------------------------------

    kubeconfig: str | None = None
    """Kubeconfig file of the API server to run against; None: the in-cluster configuration (the CLI also
    reads $KUBECONFIG)."""

    log_level: str = "info"
    """Lowest log level written: debug, info, warning or error."""

    log_json: bool = True
    """Log lines as JSON objects (False: human-readable lines)."""

    install_crds: bool = True
    """Server-side apply the CRDs at start (the LeaderWorkerSet CRD only when no upstream LWS owns it)."""

    storage_version: Literal["v1alpha1", "v1alpha2"] = "v1alpha1"
    """The version etcd keeps RoleBasedGroups, sets and scaling adapters in, in the CRDs installed at
    start: v1alpha1, the operator's own (no conversion on its reads and writes, D38), or v1alpha2, as
    upstream stores them (every read and write of the operator then converts)."""

    # -- leader election ------------------------------------------------------------------------------

    leader_elect: bool = True
    """Run the controllers only while holding the leader-election Lease (False: always, one replica)."""

    namespace: str = "rbg-system"
    """Namespace of the leader-election Lease."""

    lease_name: str = "rbg-controller"
    """Name of the manager and of its leader-election Lease."""

    lease_duration: float = 15.0
    """Seconds a standby waits, from the last renewal it saw, before taking the Lease (client-go's 15)."""

    renew_deadline: float = 10.0
    """Seconds the leader keeps trying to renew before it gives up leading (client-go's 10)."""

    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew the Lease (client-go's 2)."""

    # -- probes and metrics ---------------------------------------------------------------------------

    probe_bind: str = "0.0.0.0"  # noqa: S104 - the kubelet probes the pod IP
    """Address the probe and metrics server listens on."""

    health_port: int = 8081
    """Port of /healthz and /readyz (and of /metrics when equal to `metrics_port`)."""

    metrics_port: int = 8080
    """Port of the Prometheus /metrics."""

    health_stale_after: float = 120.0
    """Seconds without watch activity (list, event or bookmark) of an informer after which /healthz fails."""

    # -- admission webhooks ---------------------------------------------------------------------------

    webhook_host: str = "127.0.0.1"
    """Address the admission webhooks listen on."""

    webhook_port: int = 9443
    """Port the admission webhooks listen on."""

    webhook_url: str | None = None
    """URL the API server calls the webhooks at; None: https://`webhook_host`:`webhook_port`."""

    webhook_reuse_port: bool = False
    """Share `webhook_port` with the other replicas on this host (SO_REUSEPORT; the kernel spreads
    requests over them as a Service spreads them over pods): several replicas on one host only."""

    cert_dir: Path = Path("/tmp/rbg-webhook-certs")  # a scratch dir, as upstream
    """Directory the webhook server reads its serving certificate from (written there at start)."""

    cert_secret: str = "rbg-webhook-cert"  # noqa: S105 - a Secret's name
    """Secret in `namespace` that keeps the webhooks' self-managed certificate, shared by every replica and
    kept across restarts (the CRDs' conversion trusts one CA); empty: each process makes its own in
    `cert_dir` (one replica only). config/rbac grants the operator this default name only."""

    webhook_service: str = ""
    """Service in `namespace` (port 443) the API server reaches the webhooks and the CRD conversion by, as
    in a cluster install (the certificate then names NAME.NAMESPACE.svc); empty: `webhook_url`."""

    manage_webhooks: bool = True
    """Write the webhook configurations (and, with `install_crds` off, the CRDs' conversion CA) at start and
    when the CA changes; off when an installer and cert-manager's CA injector keep them (D44)."""

    webhook_failure_policy: Literal["Fail", "Ignore"] = "Fail"
    """What the API server does when the webhooks cannot be reached: Fail refuses the request, Ignore lets
    it through unchecked (and pods of coordinated roles unplaced)."""

    # -- controllers ----------------------------------------------------------------------------------

    lws_controller: bool = True
    """Run our LeaderWorkerSet controller, its webhooks and CRD (off: leave LeaderWorkerSets to another
    controller, as when upstream's LWS is installed)."""

    workers: int = 32
    """Concurrent reconciles of the RoleBasedGroup and of the LeaderWorkerSet controller (each)."""

    coordination_workers: int = 4
    """Concurrent reconciles of the coordination (placement) controller."""

    scaling_adapter_workers: int = 4
    """Concurrent reconciles of the RoleBasedGroupScalingAdapter controller."""

    groupset_workers: int = 4
    """Concurrent reconciles of the RoleBasedGroupSet controller."""

    lws_placement_workers: int = 2
    """Concurrent reconciles of the LeaderWorkerSet placement (KEP-162) controller."""

    status_progress_interval: float = 5.0
    """Seconds between status writes that only update counts; condition changes are written at once (D19)."""
