"""Renewing the webhook certificate under the same CA (D41): a replica still serving the old certificate
stays trusted by the caBundle the renewal publishes."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from rbg.controllers.app import keep_certificate
from rbg.runtime import certs, certstore
from rbg.runtime.webhook import AdmissionServer


def _verifies(ca_pem: bytes, cert_pem: bytes) -> bool:
    ca, cert = x509.load_pem_x509_certificate(ca_pem), x509.load_pem_x509_certificate(cert_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_a_renewal_signs_with_the_stored_ca_so_both_certificates_verify() -> None:
    first = certs.generate("hook", ["a"], ["127.0.0.1"])
    assert first.ca_key_pem is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=340)  # the serving certificate is due
    assert certs.needs_renewal(first.cert_pem, ["a"], ["127.0.0.1"], now=later)
    renewed = certs.generate(
        "hook", ["a", "b"], ["127.0.0.1"], now=later, ca_pair=(first.ca_pem, first.ca_key_pem)
    )
    assert renewed.ca_pem == first.ca_pem
    assert _verifies(renewed.ca_pem, first.cert_pem)
    assert _verifies(renewed.ca_pem, renewed.cert_pem)
    assert not certs.needs_renewal(renewed.cert_pem, ["a", "b"], [], now=later)


def test_an_unreadable_or_expiring_ca_is_replaced_by_a_fresh_one() -> None:
    first = certs.generate("hook", ["a"], [])
    assert first.ca_key_pem is not None
    assert certs.generate("hook", ["a"], [], ca_pair=(first.ca_pem, b"junk")).ca_pem != first.ca_pem
    near_end = dt.datetime.now(dt.UTC) + certs.CA_VALIDITY - dt.timedelta(days=10)
    fresh = certs.generate("hook", ["a"], [], now=near_end, ca_pair=(first.ca_pem, first.ca_key_pem))
    assert fresh.ca_pem != first.ca_pem
    assert _verifies(fresh.ca_pem, fresh.cert_pem)


def test_the_secret_keeps_the_ca_key_and_reads_it_back() -> None:
    cert = certs.generate("hook", ["a"], [])
    body = certstore.secret_body("ns", "s", cert)
    assert set(body["data"]) == {"ca.crt", "tls.crt", "tls.key", "ca.key"}
    back = certstore._decode(body)
    assert back == cert
    assert back is not None
    assert back.ca_key_pem == cert.ca_key_pem
    legacy = {"data": {k: v for k, v in body["data"].items() if k != "ca.key"}}  # made by an older build
    old = certstore._decode(legacy)
    assert old is not None
    assert old.ca_key_pem is None


def test_a_local_certificate_directory_renews_under_the_ca_it_keeps(tmp_path: Path) -> None:
    first = certs.load_or_generate(tmp_path, "hook", ["localhost"], ["127.0.0.1"])
    assert (tmp_path / "ca.key").exists()
    again = certs.load_or_generate(tmp_path, "hook", ["localhost"], ["127.0.0.1"])
    assert again == first
    renewed = certs.load_or_generate(tmp_path, "hook", ["localhost", "rbg-webhook.svc"], ["127.0.0.1"])
    assert renewed.cert_pem != first.cert_pem
    assert renewed.ca_pem == first.ca_pem  # the caBundle already published stays valid


def _served(port: int, ca_pem: bytes) -> bytes:
    """The certificate a fresh TLS connection to the server is shown (verified against `ca_pem`)."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


async def test_a_renewed_certificate_is_served_from_the_next_handshake_without_a_restart(
    tmp_path: Path,
) -> None:
    from rbg.devcluster.processes import free_port

    first = certs.generate("hook", ["localhost"], ["127.0.0.1"])
    assert first.ca_key_pem is not None
    second = certs.generate("hook", ["localhost"], ["127.0.0.1"], ca_pair=(first.ca_pem, first.ca_key_pem))
    port = free_port()
    server = AdmissionServer("127.0.0.1", port, first, tmp_path)
    await server.start()
    try:
        assert await asyncio.to_thread(_served, port, first.ca_pem) == first.cert_pem
        published: list[bytes] = []

        async def fetch() -> certs.ServingCert:
            return second

        async def publish(ca: bytes) -> None:
            published.append(ca)

        keeper = asyncio.create_task(keep_certificate(server, fetch, publish, interval=0.01))
        for _ in range(200):
            if server.cert == second:
                break
            await asyncio.sleep(0.01)
        assert await asyncio.to_thread(_served, port, first.ca_pem) == second.cert_pem
        assert published == []  # the same CA: nothing to publish again
        # a certificate under a new CA: the CA is published before the certificate is served
        third = certs.generate("hook", ["localhost"], ["127.0.0.1"])

        async def fetch_third() -> certs.ServingCert:
            return third

        still_second: list[bool] = []

        async def publish_noting(ca: bytes) -> None:
            published.append(ca)
            still_second.append(server.cert == second)  # published while the old one is served

        keeper.cancel()
        keeper = asyncio.create_task(keep_certificate(server, fetch_third, publish_noting, interval=0.01))
        for _ in range(200):
            if server.cert == third:
                break
            await asyncio.sleep(0.01)
        keeper.cancel()
        assert published[:1] == [second.ca_pem + third.ca_pem]  # the old CA stays trusted meanwhile
        assert still_second[:1] == [True]
        assert await asyncio.to_thread(_served, port, third.ca_pem) == third.cert_pem
    finally:
        await server.stop(drain=0)


def test_files_of_two_sets_do_not_belong_together_and_are_renewed(tmp_path: Path) -> None:
    first = certs.load_or_generate(tmp_path, "hook", ["localhost"], [])
    assert certs.belongs_together(first)
    other = certs.generate("hook", ["localhost"], [])
    (tmp_path / "ca.crt").write_bytes(other.ca_pem)  # a write cut short: the new CA, the old rest
    fresh = certs.load_or_generate(tmp_path, "hook", ["localhost"], [])
    assert fresh.cert_pem != first.cert_pem
    assert certs.belongs_together(fresh)
    assert not list(tmp_path.glob(".*.tmp"))


async def test_a_new_ca_is_published_beside_the_old_then_alone_and_errors_never_end_the_check(
    tmp_path: Path,
) -> None:
    first = certs.generate("hook", ["localhost"], ["127.0.0.1"])
    other_ca = certs.generate("hook", ["localhost"], ["127.0.0.1"])
    server = AdmissionServer("127.0.0.1", 0, first, tmp_path)  # never started: reload writes files only
    published: list[bytes] = []
    answers: list[Any] = [RuntimeError("boom"), other_ca, other_ca, other_ca, other_ca]

    async def fetch() -> certs.ServingCert:
        answer = answers.pop(0) if answers else other_ca
        if isinstance(answer, Exception):
            raise answer
        return cast(certs.ServingCert, answer)

    async def publish(ca: bytes) -> None:
        published.append(ca)

    task = asyncio.create_task(keep_certificate(server, fetch, publish, interval=0.01, retry=0.01))
    for _ in range(300):
        if len(published) >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert published[0] == first.ca_pem + other_ca.ca_pem  # both trusted while replicas catch up
    assert published[1] == other_ca.ca_pem  # then the new one alone
    assert server.cert == other_ca


def test_a_certificate_that_does_not_match_its_key_is_not_loaded(tmp_path: Path) -> None:
    good = certs.generate("hook", ["localhost"], [])
    bad = certs.ServingCert(good.ca_pem, good.cert_pem, certs.generate("x", ["y"], []).key_pem)
    server = AdmissionServer("127.0.0.1", 0, good, tmp_path)
    with pytest.raises(ssl.SSLError):
        server.reload(bad)
    assert server.cert == good
