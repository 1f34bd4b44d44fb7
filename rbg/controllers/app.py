"""The operator process: CRDs, admission webhooks, the manager and every controller, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from rbg.api import crd, hub
from rbg.api.conversion import convert
from rbg.controllers import install
from rbg.controllers.coordination.controller import CoordinationReconciler
from rbg.controllers.coordination.lws import LeaderWorkerPlacement, let_go
from rbg.controllers.groupset.controller import GroupSetReconciler
from rbg.controllers.leaderworkerset import admission as lws_admission
from rbg.controllers.leaderworkerset.controller import LeaderWorkerSetReconciler
from rbg.controllers.rolebasedgroup.admission import RULE, RoleBasedGroupAdmission
from rbg.controllers.rolebasedgroup.controller import RoleBasedGroupReconciler
from rbg.controllers.roleinstanceset.controller import RoleInstanceSetReconciler
from rbg.controllers.scalingadapter.controller import ScalingAdapterReconciler
from rbg.controllers.settings import Settings
from rbg.runtime import certs, certstore
from rbg.runtime.client import Kube
from rbg.runtime.errors import ApiError
from rbg.runtime.manager import Manager
from rbg.runtime.objects import CUSTOMRESOURCEDEFINITION, MUTATINGWEBHOOKCONFIGURATION
from rbg.runtime.webhook import AdmissionServer

log = logging.getLogger(__name__)
WEBHOOK_CONFIGURATION = install.WEBHOOK_CONFIGURATION
MUTATING_WEBHOOK_CONFIGURATION = install.MUTATING_WEBHOOK_CONFIGURATION
LWS_CRD = "leaderworkersets.leaderworkerset.x-k8s.io"
UPSTREAM_LWS_WEBHOOKS = install.UPSTREAM_LWS_WEBHOOKS
#: how often a running operator looks at its webhook certificate (renewed 30 days before expiry)
CERT_CHECK_SECONDS = 3600.0
CERT_RETRY_SECONDS = 60.0


def _cert_names(*hosts: str | None) -> tuple[list[str], list[str]]:
    """DNS names and IPs the webhook certificate must cover: localhost plus every host it is reached by."""
    dns, ips = ["localhost"], []
    for host in hosts:
        if not host or host in ("0.0.0.0", "::"):  # noqa: S104 - a bind-all address names no host
            continue
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            dns.append(host)
    return sorted(set(dns)), sorted(set(ips))


def ours(crd_obj: dict[str, object]) -> bool:
    """A LeaderWorkerSet CRD this operator installed: labelled so, or (installed by a version before the
    label) with the KEP-162 field that upstream's schema lacks."""
    meta = crd_obj.get("metadata") or {}
    assert isinstance(meta, dict)
    if (meta.get("labels") or {}).get(crd.MANAGED_BY) == crd.MANAGER:
        return True
    spec = crd_obj.get("spec") or {}
    assert isinstance(spec, dict)
    for version in spec.get("versions") or []:
        root = ((version.get("schema") or {}).get("openAPIV3Schema") or {}).get("properties") or {}
        lwt = (((root.get("spec") or {}).get("properties") or {}).get("leaderWorkerTemplate") or {}).get(
            "properties"
        ) or {}
        if "topologyPlacementPolicy" in lwt:
            return True
    return False


async def upstream_lws(kube: Kube) -> bool:
    """True when kubernetes-sigs/lws is installed: a LeaderWorkerSet CRD that is not ours, or upstream's
    webhook configuration (its CRD may carry our label when it was applied over ours server-side)."""
    obj = await kube.get(CUSTOMRESOURCEDEFINITION, LWS_CRD)
    if obj is not None and not ours(obj):
        return True
    return await kube.get(MUTATINGWEBHOOKCONFIGURATION, UPSTREAM_LWS_WEBHOOKS) is not None


def _stored(crd_obj: dict[str, Any]) -> str | None:
    versions = (crd_obj.get("spec") or {}).get("versions") or []
    return next((v.get("name") for v in versions if v.get("storage")), None)


async def _say_storage_switch(kube: Kube, body: dict[str, Any]) -> None:
    """A CRD about to store another version than it does: logged, since replicas started with different
    --storage-version values would switch it back and forth (harmless, both convert, but confusing)."""
    name = body["metadata"]["name"]
    existing = await kube.get(CUSTOMRESOURCEDEFINITION, name)
    was, now = (_stored(existing) if existing else None), _stored(body)
    if was is not None and was != now and len(body["spec"].get("versions") or []) > 1:
        log.warning("CRD %s: storage version %s -> %s (--storage-version)", name, was, now)


async def install_crds(
    kube: Kube,
    *,
    skip: frozenset[str] = frozenset(),
    webhook_url: str | None = None,
    ca_bundle: bytes | None = None,
    storage: str = hub.STORAGE_VERSION,
    service: dict[str, Any] | None = None,
) -> None:
    """Apply our CRDs and wait until each is Established; a CRD serving several versions points the API
    server at this operator's conversion webhook (`webhook_url`, signed by `ca_bundle`): installed only
    once that webhook serves (D38)."""
    bodies = [
        body
        for body in (crd.build(name, storage) for name in crd.ALL)
        if body["metadata"]["name"] not in skip
    ]
    for body in bodies:
        converts = (body["spec"].get("conversion") or {}).get("strategy") == "Webhook"
        if converts and (webhook_url is not None or service is not None):
            body["spec"]["conversion"] = crd.conversion(webhook_url, ca_bundle, service)
        await _say_storage_switch(kube, body)
        await kube.apply(body)
    for body in bodies:
        name = body["metadata"]["name"]
        for _ in range(100):
            obj = await kube.get(CUSTOMRESOURCEDEFINITION, name)
            conds = ((obj or {}).get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                break
            await asyncio.sleep(0.1)


async def _certificate(kube: Kube, settings: Settings, dns: list[str], ips: list[str]) -> certs.ServingCert:
    """The webhook certificate: the shared Secret's (renewed there when due), or the cert directory's."""
    if settings.cert_secret:  # one certificate for every replica and restart
        cert = await certstore.shared(kube, settings.namespace, settings.cert_secret, "rbg-webhook", dns, ips)
        cert.write(settings.cert_dir)
        return cert
    return await asyncio.to_thread(certs.load_or_generate, settings.cert_dir, "rbg-webhook", dns, ips)


async def keep_certificate(
    server: AdmissionServer,
    fetch: Callable[[], Awaitable[certs.ServingCert]],
    publish: Callable[[bytes], Awaitable[None]],
    interval: float = CERT_CHECK_SECONDS,
    retry: float = CERT_RETRY_SECONDS,
) -> None:
    """Every `interval`: the certificate again (renewed when it nears expiry, or by another replica);
    a new one is served from the next handshake (D41). A new CA is published first together with the
    old one, so that replicas still serving a certificate of the old CA stay trusted until their own
    check; the old CA is dropped two rounds later. A failed round is tried again after `retry`: the
    current certificate stays valid for weeks, and no error ends the task."""
    previous: bytes | None = None  # the CA published beside the current one, and for how many rounds
    rounds = 0
    delay = interval
    while True:
        try:
            await asyncio.sleep(delay)
            delay = interval
            cert = await fetch()
            if cert.ca_pem != server.cert.ca_pem:
                previous, rounds = server.cert.ca_pem, 2
                await publish(previous + cert.ca_pem)
            elif previous is not None:
                rounds -= 1
                if rounds <= 0:
                    await publish(cert.ca_pem)
                    previous = None
            if cert != server.cert:
                server.reload(cert)
                log.info("webhook certificate renewed: serving the new one")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook certificate check failed (next in %.0f s)", retry)
            delay = retry


async def run(settings: Settings) -> None:
    kube = Kube(settings.kubeconfig)
    if not settings.install_crds and settings.storage_version != hub.STORAGE_VERSION:
        log.warning("--storage-version=%s has no effect with --no-install-crds", settings.storage_version)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # an upstream LWS controller already owns the LeaderWorkerSet API: leave it (and its objects) to it
        upstream = await upstream_lws(kube)
        run_lws = settings.lws_controller and not upstream
        if not settings.lws_controller:
            log.info("--no-lws-controller: LeaderWorkerSets are left to another controller")
        if upstream and settings.lws_controller and not settings.install_crds:
            # installed by a chart whose LWS webhooks stay registered with no one serving them
            raise SystemExit(
                f"the LeaderWorkerSet CRD {LWS_CRD} belongs to another controller (kubernetes-sigs/lws?): "
                "install with controllers.lws.enabled=false (--no-lws-controller)"
            )
        if upstream:
            log.warning(
                "found the LeaderWorkerSet CRD %s installed by someone else (kubernetes-sigs/lws?): not "
                "installing ours and not running the LeaderWorkerSet controller or its webhooks; "
                "RoleBasedGroup roles of kind LeaderWorkerSet are run by that controller",
                LWS_CRD,
            )
            released = await let_go(kube)
            if released:
                log.warning("let %d leader pods go that our LeaderWorkerSet placement still held", released)
        manager = Manager(
            kube,
            name=settings.lease_name,
            leader_election=settings.leader_elect,
            lease_namespace=settings.namespace,
            health_port=settings.health_port,
            metrics_port=settings.metrics_port,
            health_stale_after=settings.health_stale_after,
            bind_address=settings.probe_bind,
            lease_duration=settings.lease_duration,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
        )
        writer = manager.controller_kube  # fenced by the Lease (D47)
        RoleBasedGroupReconciler(
            manager,
            writer,
            workers=settings.workers,
            status_progress_interval=settings.status_progress_interval,
        )
        RoleInstanceSetReconciler(manager, writer, workers=settings.workers)
        coordination = CoordinationReconciler(manager, writer, workers=settings.coordination_workers)
        ScalingAdapterReconciler(manager, writer, workers=settings.scaling_adapter_workers)
        GroupSetReconciler(manager, writer, workers=settings.groupset_workers)
        if run_lws:
            LeaderWorkerSetReconciler(
                manager,
                writer,
                workers=settings.workers,
                status_progress_interval=settings.status_progress_interval,
            )
            LeaderWorkerPlacement(manager, writer, coordination, workers=settings.lws_placement_workers)

        # admission: served by the manager (handlers see synced caches), on every replica
        url = settings.webhook_url or f"https://{settings.webhook_host}:{settings.webhook_port}"
        svc, ns = settings.webhook_service, settings.namespace
        service = install.service_ref(ns, svc) if svc else None
        in_cluster = [f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"] if svc else []
        dns, ips = _cert_names(settings.webhook_host, urlparse(url).hostname, *in_cluster)
        cert = await _certificate(kube, settings, dns, ips)
        server = AdmissionServer(
            settings.webhook_host,
            settings.webhook_port,
            cert,
            settings.cert_dir,
            reuse_port=settings.webhook_reuse_port,
        )
        server.add_converter(crd.CONVERT_PATH, convert)  # pure: it never waits for the caches
        manager.serve_webhooks(server)
        manager.webhook(RULE.path, RoleBasedGroupAdmission(manager).validate)
        manager.webhook(install.RBG_POD_RULE.path, coordination.mutate_pod)
        if run_lws:
            manager.webhook(
                lws_admission.RULE.path, lws_admission.LeaderWorkerSetAdmission(manager.kube).validate
            )
            manager.webhook(lws_admission.POD_RULE.path, lws_admission.mutate_pod)
        await manager.start_webhooks()  # before the configurations point the API server at them
        skip = frozenset() if run_lws else frozenset({LWS_CRD})
        reach_url = None if service else url

        async def publish(ca_pem: bytes) -> None:
            """The CRDs and webhook configurations, pointing the API server at us with this CA."""
            if settings.install_crds:  # after the webhooks: a CRD with several versions converts through them
                await install_crds(
                    kube,
                    skip=skip,
                    webhook_url=reach_url,
                    ca_bundle=ca_pem,
                    storage=settings.storage_version,
                    service=service,
                )
            if not settings.manage_webhooks:  # an installer and cert-manager keep them (D44)
                return
            if not settings.install_crds:
                await install.point_conversion(kube, ca_pem, url=reach_url, service=service, skip=skip)
            for configuration in install.webhook_configurations(
                ca_pem,
                lws=run_lws,
                url=reach_url,
                service=service,
                failure_policy=settings.webhook_failure_policy,
            ):
                await kube.apply(configuration)

        await publish(cert.ca_pem)
        renewal = asyncio.create_task(
            keep_certificate(server, lambda: _certificate(kube, settings, dns, ips), publish)
        )

        task = asyncio.create_task(manager.run())
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # surfaces a crash of the manager
        renewal.cancel()
        await manager.stop()  # releases the Lease so a successor takes over at once
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except ApiError as exc:
        log.error("API error: %s", exc)
        raise
    finally:
        await kube.close()
