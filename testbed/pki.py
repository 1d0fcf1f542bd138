"""A local PKI for the testbed: one trusted CA, one untrusted CA, and a certificate for every TLS failure mode.

Certificates are made fresh at every start, relative to now, so "expires in 5 days" stays true whatever the date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class ServerPem:
    """What a TLS server needs: its key and the chain it sends (leaf first)."""

    key: bytes
    chain: bytes


def make_pki(directory: Path) -> dict[str, ServerPem]:
    """Write ca.pem (the bundle environments trust) and return one server identity per certificate mode."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    trusted = trustme.CA(organization_name="deploy-verify testbed CA")
    rogue = trustme.CA(organization_name="rogue CA nobody trusts")
    intermediate = trusted.create_child_ca()
    short_lived, short_root = _short_intermediate_chain(now)
    # The bundle environments trust: the testbed CA, plus the root behind the short-lived intermediate.
    (directory / "ca.pem").write_bytes(trusted.cert_pem.bytes() + short_root)

    def leaf(ca: trustme.CA, *names: str, start: dt.timedelta, end: dt.timedelta) -> trustme.LeafCert:
        return ca.issue_cert(*names, common_name=names[0], not_before=now + start, not_after=now + end)

    day = dt.timedelta(days=1)
    modes = {
        "valid": leaf(trusted, *HOSTS, start=-day, end=90 * day),
        "expired": leaf(trusted, *HOSTS, start=-60 * day, end=-2 * day),
        "not-yet-valid": leaf(trusted, *HOSTS, start=3 * day, end=90 * day),
        "expiring-soon": leaf(trusted, *HOSTS, start=-80 * day, end=5 * day),
        "wrong-host": leaf(trusted, "other.example.test", start=-day, end=90 * day),
        "untrusted-root": leaf(rogue, *HOSTS, start=-day, end=90 * day),
    }
    identities = {name: _pem(cert) for name, cert in modes.items()}
    chained = intermediate.issue_cert(*HOSTS, common_name="localhost", not_before=now - day, not_after=now + 90 * day)
    identities["intermediate"] = _pem(chained)
    # An incomplete chain: the leaf alone, without the intermediate a client needs to reach the root.
    identities["incomplete-chain"] = ServerPem(chained.private_key_pem.bytes(), chained.cert_chain_pems[0].bytes())
    identities["self-signed"] = _self_signed(now)
    identities["short-intermediate"] = short_lived
    return identities


def _pem(cert: trustme.LeafCert) -> ServerPem:
    return ServerPem(cert.private_key_pem.bytes(), b"".join(p.bytes() for p in cert.cert_chain_pems))


def _self_signed(now: dt.datetime) -> ServerPem:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue("localhost", key, key, now - dt.timedelta(days=1), now + dt.timedelta(days=90), ca=False)
    return ServerPem(_key_pem(key), _cert_pem(cert))


def _short_intermediate_chain(now: dt.datetime) -> tuple[ServerPem, bytes]:
    """A 90-day leaf under an intermediate that expires in 7 days: the chain, not the leaf, expires first."""
    day = dt.timedelta(days=1)
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _issue("testbed short-chain root", root_key, root_key, now - day, now + 3650 * day, ca=True)
    mid = _issue(
        "testbed short-lived intermediate", mid_key, root_key, now - day, now + 7 * day, ca=True, issuer=root.subject
    )
    leaf = _issue("localhost", leaf_key, mid_key, now - day, now + 90 * day, ca=False, issuer=mid.subject)
    return ServerPem(_key_pem(leaf_key), _cert_pem(leaf) + _cert_pem(mid)), _cert_pem(root)


def _issue(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool,
    issuer: x509.Name | None = None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        signing_only = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(signing_only, critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
