"""Self-signed CA and serving certificate for the webhook server (generic, no RBG knowledge)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = dt.timedelta(days=365)
CA_VALIDITY = dt.timedelta(days=3650)  # a serving certificate is renewed under the same CA (D41)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class ServingCert:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    # kept where a renewal must sign with the same CA (a shared Secret); not part of what is served
    ca_key_pem: bytes | None = field(default=None, compare=False)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Each file replaced whole (written aside, then renamed): a kill mid-write leaves every file
        either old or new, and `load_or_generate` renews a set that does not belong together."""
        directory.mkdir(parents=True, exist_ok=True)
        files = [("ca.crt", self.ca_pem), ("tls.crt", self.cert_pem), ("tls.key", self.key_pem)]
        if self.ca_key_pem is not None:  # so that a renewal here signs under the same CA
            files.append(("ca.key", self.ca_key_pem))
        for name, data in files:
            aside = directory / f".{name}.tmp"
            aside.write_bytes(data)
            aside.chmod(0o600)
            os.replace(aside, directory / name)
        return directory / "tls.crt", directory / "tls.key"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _reusable_ca(
    ca: tuple[bytes, bytes] | None, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    if ca is None:
        return None
    try:
        cert = x509.load_pem_x509_certificate(ca[0])
        key = serialization.load_pem_private_key(ca[1], password=None)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc - now < 2 * RENEW_BEFORE:
        return None
    if cert.public_key() != key.public_key():  # a key that is not this CA's (files of two sets)
        return None
    return cert, key


def generate(
    common_name: str,
    dns_names: list[str],
    ip_addresses: list[str],
    now: dt.datetime | None = None,
    ca_pair: tuple[bytes, bytes] | None = None,
) -> ServingCert:
    """A serving certificate for the given DNS names and IPs, signed by `ca_pair` (certificate and key
    PEM) while that CA is readable and far from expiry, else by a fresh CA: renewal under one CA keeps
    every `caBundle` valid for the certificates replicas still serve."""
    now = now or dt.datetime.now(dt.UTC)
    key = _key()
    reused = _reusable_ca(ca_pair, now)
    if reused is not None:
        ca, ca_key = reused
        ca_name = ca.subject
    else:
        ca_key = _key()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name}-ca")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(ca_key, hashes.SHA256())
        )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + VALIDITY, ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    enc = serialization.Encoding.PEM
    return ServingCert(ca.public_bytes(enc), cert.public_bytes(enc), _pem_key(key), _pem_key(ca_key))


def belongs_together(cert: ServingCert) -> bool:
    """The serving certificate is signed by the CA and matches its key."""
    try:
        ca = x509.load_pem_x509_certificate(cert.ca_pem)
        served = x509.load_pem_x509_certificate(cert.cert_pem)
        key = serialization.load_pem_private_key(cert.key_pem, password=None)
        served.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return served.public_key() == key.public_key()


def usable(cert: ServingCert, dns_names: list[str], ip_addresses: list[str]) -> bool:
    """A stored certificate to keep serving: its files belong together and it needs no renewal."""
    return belongs_together(cert) and not needs_renewal(cert.cert_pem, dns_names, ip_addresses)


def needs_renewal(
    cert_pem: bytes, dns_names: list[str], ip_addresses: list[str], now: dt.datetime | None = None
) -> bool:
    """True when the certificate expires within RENEW_BEFORE or does not cover every name."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return True
    have_dns = set(sans.get_values_for_type(x509.DNSName))
    have_ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return (
        cert.not_valid_after_utc - now < RENEW_BEFORE
        or not set(dns_names) <= have_dns
        or not set(ip_addresses) <= have_ips
    )


def load_or_generate(
    directory: Path, common_name: str, dns_names: list[str], ip_addresses: list[str]
) -> ServingCert:
    """Reuse the certificate in `directory` while it is valid for the names, else make and store a new one
    (signed by the CA kept there, when its key is)."""
    same_ca = None
    try:
        existing = ServingCert(
            (directory / "ca.crt").read_bytes(),
            (directory / "tls.crt").read_bytes(),
            (directory / "tls.key").read_bytes(),
        )
        ca_key = directory / "ca.key"
        if ca_key.exists():
            same_ca = (existing.ca_pem, ca_key.read_bytes())
        if usable(existing, dns_names, ip_addresses):
            return ServingCert(existing.ca_pem, existing.cert_pem, existing.key_pem, same_ca and same_ca[1])
    except OSError:
        pass
    fresh = generate(common_name, dns_names, ip_addresses, ca_pair=same_ca)
    fresh.write(directory)
    return fresh
