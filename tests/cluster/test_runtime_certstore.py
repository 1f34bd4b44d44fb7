"""The webhook certificate kept in a Secret (rbg.runtime.certstore) on the real API server: replicas
starting at once end up serving one certificate, a restart keeps it, an expiring one is renewed once."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from cryptography import x509

from rbg.devcluster.cluster import State
from rbg.runtime import certs, certstore
from rbg.runtime.client import Kube
from rbg.runtime.objects import SECRET

pytestmark = pytest.mark.asyncio(loop_scope="session")
DNS = ["localhost", "rbg-webhook.rbg-system.svc"]


@pytest_asyncio.fixture(loop_scope="session")
async def akube(cluster: State) -> AsyncIterator[Kube]:
    async with Kube(cluster.kubeconfig) as kube:
        yield kube


async def test_replicas_starting_together_share_one_certificate(akube: Kube, namespace: str) -> None:
    made = await asyncio.gather(
        *(certstore.shared(akube, namespace, "cert", "rbg-webhook", DNS, ["127.0.0.1"]) for _ in range(4))
    )
    assert len({c.ca_pem for c in made}) == 1  # one CA: the API server's caBundle trusts every replica
    assert len({c.cert_pem for c in made}) == 1
    restarted = await certstore.shared(akube, namespace, "cert", "rbg-webhook", DNS, ["127.0.0.1"])
    assert restarted == made[0]
    secret = await akube.get(SECRET, "cert", namespace)
    assert secret is not None
    assert secret["type"] == "kubernetes.io/tls"


async def test_an_expiring_certificate_is_renewed_keeping_its_names(akube: Kube, namespace: str) -> None:
    old = certs.generate(
        "rbg-webhook", ["other.example"], [], now=dt.datetime.now(dt.UTC) - dt.timedelta(days=360)
    )
    await akube.create(certstore.secret_body(namespace, "cert", old))
    renewed = await certstore.shared(akube, namespace, "cert", "rbg-webhook", DNS, [])
    assert renewed.ca_pem == old.ca_pem  # signed by the same CA: the old certificate stays trusted (D41)
    assert renewed.cert_pem != old.cert_pem
    assert not certs.needs_renewal(renewed.cert_pem, DNS, [])
    sans = x509.load_pem_x509_certificate(renewed.cert_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert set(sans.value.get_values_for_type(x509.DNSName)) == {*DNS, "other.example"}
    again = await certstore.shared(akube, namespace, "cert", "rbg-webhook", DNS, [])
    assert again == renewed
