import asyncio
import base64
import datetime as dt
import json
import ssl
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import pytest

from rbg.controllers.rolebasedgroup.admission import validate_rolebasedgroup
from rbg.runtime import certs
from rbg.runtime.webhook import (
    AdmissionServer,
    Rule,
    Verdict,
    webhook_configuration,
)


def test_certificate_is_reused_until_names_change_or_expiry_nears(tmp_path: Path) -> None:
    first = certs.load_or_generate(tmp_path, "w", ["localhost"], ["127.0.0.1"])
    assert certs.load_or_generate(tmp_path, "w", ["localhost"], ["127.0.0.1"]) == first
    assert not certs.needs_renewal(first.cert_pem, ["localhost"], ["127.0.0.1"])
    assert certs.needs_renewal(first.cert_pem, ["webhook.rbg-system.svc"], [])
    later = dt.datetime.now(dt.UTC) + certs.VALIDITY - dt.timedelta(days=10)
    assert certs.needs_renewal(first.cert_pem, ["localhost"], ["127.0.0.1"], now=later)
    assert certs.load_or_generate(tmp_path, "w", ["other"], []) != first


def test_webhook_configuration_is_scoped_by_its_selectors() -> None:
    selector = {"matchLabels": {"example.com/managed": "true"}}
    rule = Rule("/mutate-x", "mx.example.com", "", "v1", "pods", ("CREATE",), object_selector=selector)
    cfg = webhook_configuration("Mutating", "cfg", [rule], b"CA", service={"name": "svc", "namespace": "ns"})
    (hook,) = cfg["webhooks"]
    assert cfg["kind"] == "MutatingWebhookConfiguration"
    assert hook["objectSelector"] == selector
    assert "namespaceSelector" not in hook
    assert hook["clientConfig"]["service"] == {"name": "svc", "namespace": "ns", "path": "/mutate-x"}


def test_configuration_by_url_carries_the_ca_and_rules() -> None:
    rule = Rule("/validate-x", "vx.example.com", "example.com", "v1", "widgets")
    cfg = webhook_configuration("Validating", "cfg", [rule], b"CA", url_base="https://127.0.0.1:9443/")
    (hook,) = cfg["webhooks"]
    assert hook["clientConfig"] == {"caBundle": "Q0E=", "url": "https://127.0.0.1:9443/validate-x"}
    assert hook["rules"][0]["resources"] == ["widgets"]
    assert hook["failurePolicy"] == "Fail"


async def test_server_denies_with_every_message_and_survives_a_failing_validator(tmp_path: Path) -> None:
    from rbg.devcluster.processes import free_port

    cert = certs.generate("w", ["localhost"], ["127.0.0.1"])
    port = free_port()
    server = AdmissionServer("127.0.0.1", port, cert, tmp_path)

    async def deny(req: dict[str, Any]) -> Verdict:
        return Verdict(["spec.a: bad", "spec.b: worse"])

    async def warn(req: dict[str, Any]) -> Verdict:
        return Verdict(warnings=["spec.c: not acted on yet"])

    async def mutate(req: dict[str, Any]) -> Verdict:
        return Verdict(patch=[{"op": "add", "path": "/metadata/labels/x", "value": "y"}])

    async def broken(req: dict[str, Any]) -> Verdict:
        raise KeyError("boom")

    server.add("/deny", deny)
    server.add("/warn", warn)
    server.add("/mutate", mutate)
    server.add("/broken", broken)
    await server.start()
    try:
        ctx = ssl.create_default_context(cadata=cert.ca_pem.decode())
        async with httpx.AsyncClient(verify=ctx, base_url=f"https://127.0.0.1:{port}") as client:
            review = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {"uid": "u1"},
            }
            denied = (await client.post("/deny", json=review)).json()["response"]
            assert denied == {
                "uid": "u1",
                "allowed": False,
                "status": {"code": 422, "reason": "Invalid", "message": "spec.a: bad; spec.b: worse"},
            }
            mutated = (await client.post("/mutate", json=review)).json()["response"]
            assert mutated["patchType"] == "JSONPatch"
            assert json.loads(base64.b64decode(mutated["patch"])) == [
                {"op": "add", "path": "/metadata/labels/x", "value": "y"}
            ]
            warned = (await client.post("/warn", json=review)).json()["response"]
            assert warned == {"uid": "u1", "allowed": True, "warnings": ["spec.c: not acted on yet"]}
            failed = (await client.post("/broken", json=review)).json()["response"]
            assert failed["allowed"] is False
            assert failed["status"]["message"] == "internal error in admission webhook: KeyError: 'boom'"
            assert (await client.post("/deny", content=b"not json")).status_code == 400
    finally:
        await server.stop()
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (
            [{"name": "a", "dependencies": ["b"]}, {"name": "b", "dependencies": ["a"]}],
            ["spec.roles[0].dependencies: dependency cycle: a -> b -> a"],
        ),
        ([{"name": "a"}], []),
    ],
)
async def test_rolebasedgroup_admission(roles: list[dict[str, Any]], expected: list[str]) -> None:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    obj = {
        "metadata": {"name": "g", "namespace": "ns"},
        "spec": {"roles": [{"template": tpl, **r} for r in roles]},
    }
    assert (await validate_rolebasedgroup({"uid": "x", "object": obj})).errors == expected


async def test_fields_not_acted_on_yet_are_allowed_with_warnings() -> None:
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    obj = {
        "metadata": {
            "name": "g",
            "namespace": "ns",
            "annotations": {"rbg.workloads.x-k8s.io/group-exclusive-topology": "kubernetes.io/hostname"},
        },
        "spec": {
            "roles": [
                {"name": "prefill", "template": tpl, "restartPolicy": "RecreateRBGOnPodRestart"},
                {
                    "name": "decode",
                    "template": tpl,
                    "scalingAdapter": {"enable": True},
                    "workload": {"apiVersion": "apps/v1", "kind": "Deployment"},
                },
                {
                    "name": "router",
                    "template": tpl,
                    "restartPolicy": "None",
                    "scalingAdapter": {"enable": False},
                },
            ],
            "coordination": [
                {
                    "name": "pd",
                    "roles": ["prefill", "decode"],
                    "strategy": {"rollingUpdate": {"maxSkew": "10%"}},
                }
            ],
            "podGroupPolicy": {"kubeScheduling": {}},
        },
    }
    verdict = await validate_rolebasedgroup({"uid": "x", "object": obj})
    assert verdict.errors == []
    assert [w.split(":")[0] for w in verdict.warnings] == ["spec.coordination[0].strategy.rollingUpdate"]
    assert verdict.warnings[0] == (
        "spec.coordination[0].strategy.rollingUpdate: accepted, but this operator does not act on it yet "
        "for Deployment role decode: it rolls at its own pace"
    )


async def test_manager_served_handlers_wait_for_synced_caches(tmp_path: Path) -> None:
    """A request before the caches are synced waits for them, and is denied with a reason if they do
    not sync in time; afterwards handlers run at once."""
    from rbg.runtime.manager import Manager
    from rbg.runtime.objects import CONFIGMAP

    manager = Manager(cast(Any, None), name="t", metrics_port=None)
    informer = manager.informer(CONFIGMAP)
    server = AdmissionServer("127.0.0.1", 0, certs.generate("w", ["localhost"], []), tmp_path)
    manager.serve_webhooks(server)
    seen: list[str] = []

    async def handler(req: dict[str, Any]) -> Verdict:
        seen.append(str(req["uid"]))
        return Verdict()

    manager.webhook("/h", handler, cache_wait=0.05)
    gated = server._validators["/h"]
    early = await gated({"uid": "1"})
    assert early.errors == ["the operator is starting (caches not synced after 0s)"]
    assert seen == []

    manager._started = True
    manager._run_called.set()
    pending = asyncio.create_task(gated({"uid": "2"}))
    await asyncio.sleep(0.01)
    informer.synced.set()
    assert (await pending).errors == []
    assert seen == ["2"]
