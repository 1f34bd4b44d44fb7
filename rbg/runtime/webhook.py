"""Admission webhooks: an HTTPS AdmissionReview server and its registration objects.

Generic: a handler gets the AdmissionReview `request` and returns a `Verdict`: error messages (none =
allowed), warnings for the client and, for mutating webhooks, a JSONPatch. Every rule can carry an
objectSelector, so a webhook sees only the objects it is for: when the operator is down, nobody else's
objects are blocked by `failurePolicy: Fail`.
The configuration is reached by URL (an operator on the control-plane host, as in the local cluster) or
through a Service (in-cluster); `caBundle` is the CA of the server's self-managed certificate.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from rbg.runtime.certs import ServingCert
from rbg.runtime.conversion import Converter, conversion_response, is_conversion_review

log = logging.getLogger(__name__)
Request = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    """A validator's answer: any error denies the request (all of them are shown); warnings are passed to
    the client, which prints them (`Warning: ...` in kubectl), whether the request is allowed or not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    patch: list[dict[str, Any]] | None = None  # RFC 6902 operations (mutating webhooks only)


Validator = Callable[[Request], Awaitable[Verdict]]


def json_pointer(key: str) -> str:
    """A map key as one JSON pointer segment (RFC 6901: ~ and / escaped)."""
    return key.replace("~", "~0").replace("/", "~1")


def patch_between(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning `before` into `after` for a mutating webhook, at the granularity of
    each field of metadata and spec (an "add" replaces a member that exists)."""
    ops: list[dict[str, Any]] = []
    for section in ("metadata", "spec"):
        old, new = before.get(section) or {}, after.get(section) or {}
        if not old and new:
            ops.append({"op": "add", "path": f"/{section}", "value": new})
            continue
        for field_, value in new.items():
            if old.get(field_) != value:
                ops.append({"op": "add", "path": f"/{section}/{json_pointer(field_)}", "value": value})
    return ops


@dataclass(frozen=True)
class Rule:
    """Which requests go to a webhook path."""

    path: str
    name: str  # webhook name, e.g. vrolebasedgroup.workloads.x-k8s.io
    group: str
    version: str
    resource: str
    operations: tuple[str, ...] = ("CREATE", "UPDATE")
    object_selector: dict[str, Any] | None = None  # a LabelSelector: only matching objects are sent
    namespace_selector: dict[str, Any] | None = None


def review_response(uid: str, verdict: Verdict) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": not verdict.errors}
    if verdict.errors:
        response["status"] = {"code": 422, "reason": "Invalid", "message": "; ".join(verdict.errors)}
    if verdict.warnings:
        response["warnings"] = list(verdict.warnings)
    if verdict.patch and not verdict.errors:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(verdict.patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


DRAIN_SECONDS = 1.5


class AdmissionServer:
    def __init__(
        self, host: str, port: int, cert: ServingCert, cert_dir: Path, reuse_port: bool = False
    ) -> None:
        self.host, self.port, self.reuse_port = host, port, reuse_port
        self.cert, self.cert_dir = cert, cert_dir
        self._validators: dict[str, Validator] = {}
        self._converters: dict[str, Converter] = {}
        self._runner: web.AppRunner | None = None
        self._draining = False
        self._ctx: ssl.SSLContext | None = None

    def add(self, path: str, validator: Validator) -> None:
        self._validators[path] = validator

    def add_converter(self, path: str, converter: Converter) -> None:
        """Serve ConversionReviews at `path` (a CRD's `conversion.webhook.clientConfig`)."""
        self._converters[path] = converter

    async def _handle(self, request: web.Request) -> web.Response:
        converter = self._converters.get(request.path)
        if converter is not None:
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not is_conversion_review(body):
                return web.json_response(
                    {"message": "expected an apiextensions.k8s.io/v1 ConversionReview"}, status=400
                )
            return web.json_response(conversion_response(body, converter))
        validator = self._validators.get(request.path)
        if validator is None:
            return web.json_response({"message": "no webhook at this path"}, status=404)
        try:
            review = await request.json()
            req: Request = review["request"]
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"message": "expected an admission.k8s.io/v1 AdmissionReview"}, status=400
            )
        try:
            verdict = await validator(req)
        except Exception as exc:  # a validator bug must deny with a reason, never hang the API server
            log.exception("webhook %s failed", request.path)
            verdict = Verdict([f"internal error in admission webhook: {type(exc).__name__}: {exc}"])
        return web.json_response(review_response(str(req.get("uid", "")), verdict))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        app.on_response_prepare.append(self._close_when_draining)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        cert_file, key_file = self.cert.write(self.cert_dir)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert_file), str(key_file))
        self._ctx = ctx
        site = web.TCPSite(
            self._runner, self.host, self.port, ssl_context=ctx, reuse_port=self.reuse_port or None
        )
        await site.start()
        log.info("admission webhooks serving on https://%s:%d", self.host, self.port)

    def reload(self, cert: ServingCert) -> None:
        """Serve `cert` from the next TLS handshake on (open connections keep the one they began with):
        a certificate renewed while the server runs, with no restart. The pair is tried on a scratch
        context first: one that does not load (a key that does not match) raises and leaves the served
        one as it was."""
        cert_file, key_file = cert.write(self.cert_dir / "next")
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert_file), str(key_file))
        cert_file, key_file = cert.write(self.cert_dir)
        if self._ctx is not None:
            self._ctx.load_cert_chain(str(cert_file), str(key_file))
        self.cert = cert

    async def _close_when_draining(self, _request: web.Request, response: web.StreamResponse) -> None:
        if self._draining:
            response.force_close()  # `Connection: close`: the client opens its next one elsewhere

    async def stop(self, drain: float = DRAIN_SECONDS) -> None:
        """Stop accepting connections, answer on the open ones for `drain` seconds (each closed after
        its next answer, cleanly), then close what is left. Closing a kept-alive connection at once
        races a request the API server is sending on it (an EOF, a failed read of a converted
        object), as a pod removed from a Service's endpoints first keeps serving for a while."""
        if self._runner is None:
            return
        self._draining = True
        for site in self._runner.sites:
            await site.stop()  # the listening socket only: open connections keep being served
        if drain > 0:
            await asyncio.sleep(drain)
        await asyncio.shield(self._runner.cleanup())
        self._runner = None


def _hooks(
    rules: list[Rule],
    ca_pem: bytes,
    url_base: str | None,
    service: dict[str, Any] | None,
    failure_policy: str = "Fail",
) -> list[dict[str, Any]]:
    ca = base64.b64encode(ca_pem).decode()
    hooks = []
    for r in rules:
        client: dict[str, Any] = {"caBundle": ca}
        if url_base is not None:
            client["url"] = url_base.rstrip("/") + r.path
        else:
            client["service"] = {**(service or {}), "path": r.path}
        hook: dict[str, Any] = {
            "name": r.name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": failure_policy,
            "timeoutSeconds": 10,
            "clientConfig": client,
            "rules": [
                {
                    "apiGroups": [r.group],
                    "apiVersions": [r.version],
                    "resources": [r.resource],
                    "operations": list(r.operations),
                    "scope": "Namespaced",
                }
            ],
        }
        if r.object_selector is not None:
            hook["objectSelector"] = r.object_selector
        if r.namespace_selector is not None:
            hook["namespaceSelector"] = r.namespace_selector
        hooks.append(hook)
    return hooks


def webhook_configuration(
    kind: Literal["Validating", "Mutating"],
    name: str,
    rules: list[Rule],
    ca_pem: bytes,
    *,
    url_base: str | None = None,
    service: dict[str, Any] | None = None,
    failure_policy: Literal["Fail", "Ignore"] = "Fail",
) -> dict[str, Any]:
    """A Validating- or MutatingWebhookConfiguration for `rules`, reached by `url_base` or a Service.

    Mutating webhooks answer with JSONPatches (`Verdict.patch`) and are not re-invoked.
    """
    hooks = _hooks(rules, ca_pem, url_base, service, failure_policy)
    if kind == "Mutating":
        for hook in hooks:
            hook["reinvocationPolicy"] = "Never"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": f"{kind}WebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": hooks,
    }
