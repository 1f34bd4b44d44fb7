"""Self-signed CA and serving certificate for the webhook server (generic, no RBG knowledge)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class ServingCert:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.crt").write_bytes(self.ca_pem)
        cert, key = directory / "tls.crt", directory / "tls.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        key.chmod(0o600)
        return cert, key


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate(
    common_name: str, dns_names: list[str], ip_addresses: list[str], now: dt.datetime | None = None
) -> ServingCert:
    """A fresh CA and a serving certificate it signs, for the given DNS names and IPs."""
    now = now or dt.datetime.now(dt.UTC)
    ca_key, key = _key(), _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name}-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
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
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    enc = serialization.Encoding.PEM
    return ServingCert(ca.public_bytes(enc), cert.public_bytes(enc), _pem_key(key))


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
    """Reuse the certificate in `directory` while it is valid for the names, else make and store a new one."""
    try:
        existing = ServingCert(
            (directory / "ca.crt").read_bytes(),
            (directory / "tls.crt").read_bytes(),
            (directory / "tls.key").read_bytes(),
        )
        if not needs_renewal(existing.cert_pem, dns_names, ip_addresses):
            return existing
    except OSError:
        pass
    fresh = generate(common_name, dns_names, ip_addresses)
    fresh.write(directory)
    return fresh
