"""Renewing the webhook certificate under the same CA (D41): a replica still serving the old certificate
stays trusted by the caBundle the renewal publishes."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from rbg.runtime import certs, certstore


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
