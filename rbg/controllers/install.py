"""What the operator registers with the API server: its webhook configurations and the CRDs' conversion.

One place for both the running operator (`rbg.controllers.app`, which writes them at start and when its
CA changes) and the Helm chart (`rbg.deploy.chart` renders the same objects as templates), so that the
two never disagree on a field and fight over it (D44).
"""

from __future__ import annotations

from typing import Any, Literal

from rbg.api import crd
from rbg.controllers.coordination.controller import POD_RULE as RBG_POD_RULE
from rbg.controllers.leaderworkerset import admission as lws_admission
from rbg.controllers.rolebasedgroup.admission import RULE
from rbg.runtime.client import Kube
from rbg.runtime.objects import CUSTOMRESOURCEDEFINITION
from rbg.runtime.webhook import Rule, webhook_configuration

__all__ = [
    "RBG_POD_RULE",
    "UPSTREAM_LWS_WEBHOOKS",
    "point_conversion",
    "rules",
    "service_ref",
    "webhook_configurations",
]
Obj = dict[str, Any]
WEBHOOK_CONFIGURATION = "rbg-validating-webhook-configuration"
MUTATING_WEBHOOK_CONFIGURATION = "rbg-mutating-webhook-configuration"
CONVERSION_MANAGER = "rbg-conversion"
UPSTREAM_LWS_WEBHOOKS = "lws-mutating-webhook-configuration"  # kubernetes-sigs/lws's install


def rules(lws: bool) -> tuple[list[Rule], list[Rule]]:
    """(validating, mutating) webhook rules; the LeaderWorkerSet ones when our LWS controller runs."""
    validating, mutating = [RULE], [RBG_POD_RULE]
    if lws:
        validating.append(lws_admission.RULE)
        mutating.insert(0, lws_admission.POD_RULE)  # LWS pods get their identity first, then their batch
    return validating, mutating


def service_ref(namespace: str, name: str) -> Obj:
    """The clientConfig.service of a Service on port 443 (`path` added per webhook)."""
    return {"namespace": namespace, "name": name, "port": 443}


def webhook_configurations(
    ca_pem: bytes,
    *,
    lws: bool = True,
    url: str | None = None,
    service: Obj | None = None,
    failure_policy: Literal["Fail", "Ignore"] = "Fail",
) -> list[Obj]:
    """The Validating- and MutatingWebhookConfiguration, reached at `url` or by `service`."""
    validating, mutating = rules(lws)
    return [
        webhook_configuration(
            "Validating",
            WEBHOOK_CONFIGURATION,
            validating,
            ca_pem,
            url_base=url,
            service=service,
            failure_policy=failure_policy,
        ),
        webhook_configuration(
            "Mutating",
            MUTATING_WEBHOOK_CONFIGURATION,
            mutating,
            ca_pem,
            url_base=url,
            service=service,
            failure_policy=failure_policy,
        ),
    ]


def converting_crds(skip: frozenset[str] = frozenset()) -> list[Obj]:
    """Our CRDs that serve several versions through the conversion webhook (not those in `skip`)."""
    bodies = (crd.build(name) for name in crd.ALL)
    return [
        body
        for body in bodies
        if (body["spec"].get("conversion") or {}).get("strategy") == "Webhook"
        and body["metadata"]["name"] not in skip
    ]


async def point_conversion(
    kube: Kube, ca_pem: bytes, *, url: str | None, service: Obj | None, skip: frozenset[str]
) -> int:
    """With the CRDs installed by someone else (a chart): set their conversion webhook and its CA, and
    nothing else of them; a CRD not installed is left alone. Returns how many were written."""
    written = 0
    for body in converting_crds(skip):
        name = body["metadata"]["name"]
        if await kube.get(CUSTOMRESOURCEDEFINITION, name) is None:
            continue
        await kube.apply(
            {
                "apiVersion": body["apiVersion"],
                "kind": body["kind"],
                "metadata": {"name": name},
                "spec": {"conversion": crd.conversion(url, ca_pem, service)},
            },
            # a manager of its own: under "rbg", which owns whole CRDs it installed before, this
            # partial object would drop every other field it owns (versions, names...)
            field_manager=CONVERSION_MANAGER,
        )
        written += 1
    return written
