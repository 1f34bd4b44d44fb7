"""The webhook serving certificate kept in a Secret, so that every replica, and every restart, serves
the same one (generic, no RBG knowledge).

The conversion webhook sits on every read of a multi-version CRD, and the API server trusts one
`caBundle` per CRD: replicas with certificates of their own CAs would fail one read in two. The first
replica to find no Secret, or one that needs renewal, makes the certificate and writes it (create, or
update at the resourceVersion it read); one that loses that race (409) reads the winner's. Renewal keeps
every name the stored certificate covered, so replicas reached by different names converge on one.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509

from rbg.runtime import certs
from rbg.runtime.errors import ApiError
from rbg.runtime.objects import SECRET

ATTEMPTS = 5
CA_KEY = "ca.crt"
CA_KEY_KEY = "ca.key"  # the CA's private key: a renewal signs with the same CA (D41)


def _decode(secret: dict[str, Any]) -> certs.ServingCert | None:
    data = secret.get("data") or {}
    try:
        ca, cert, key = (base64.b64decode(data[k]) for k in (CA_KEY, "tls.crt", "tls.key"))
    except (KeyError, TypeError, ValueError):
        return None
    ca_key = data.get(CA_KEY_KEY)
    try:
        ca_key_pem = base64.b64decode(ca_key) if isinstance(ca_key, str) else None
    except ValueError:
        ca_key_pem = None
    return certs.ServingCert(ca, cert, key, ca_key_pem)


def _names(cert_pem: bytes) -> tuple[set[str], set[str]]:
    try:
        sans = x509.load_pem_x509_certificate(cert_pem).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except (ValueError, x509.ExtensionNotFound):
        return set(), set()
    return set(sans.value.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)
    }


def secret_body(
    namespace: str, name: str, cert: certs.ServingCert, resource_version: str | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version  # an update only over what was read
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": meta,
        "data": {
            k: base64.b64encode(v).decode()
            for k, v in (
                (CA_KEY, cert.ca_pem),
                ("tls.crt", cert.cert_pem),
                ("tls.key", cert.key_pem),
                (CA_KEY_KEY, cert.ca_key_pem),
            )
            if v is not None
        },
    }


async def shared(
    kube: Any, namespace: str, name: str, common_name: str, dns_names: list[str], ip_addresses: list[str]
) -> certs.ServingCert:
    """The certificate in Secret `namespace/name`, made (or renewed) there when it is missing, unreadable,
    expiring or does not cover the names."""
    for _ in range(ATTEMPTS):
        secret = await kube.get(SECRET, name, namespace)
        stored = _decode(secret) if secret is not None else None
        if stored is not None and certs.usable(stored, dns_names, ip_addresses):
            return stored
        dns, ips = set(dns_names), set(ip_addresses)
        if stored is not None:
            had_dns, had_ips = _names(stored.cert_pem)
            dns, ips = dns | had_dns, ips | had_ips
        same_ca = (stored.ca_pem, stored.ca_key_pem) if stored and stored.ca_key_pem else None
        fresh = certs.generate(common_name, sorted(dns), sorted(ips), ca_pair=same_ca)
        try:
            if secret is None:
                await kube.create(secret_body(namespace, name, fresh))
            else:
                version = (secret.get("metadata") or {}).get("resourceVersion")
                await kube.replace(secret_body(namespace, name, fresh, version))
        except ApiError as exc:
            if exc.status == 409:  # another replica wrote first: use what it wrote
                continue
            raise
        return fresh
    raise ApiError(409, "Conflict", f"Secret {namespace}/{name}: still changing after {ATTEMPTS} attempts")
