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
    (directory / "ca.pem").write_bytes(trusted.cert_pem.bytes())

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
    return identities


def _pem(cert: trustme.LeafCert) -> ServerPem:
    return ServerPem(cert.private_key_pem.bytes(), b"".join(p.bytes() for p in cert.cert_chain_pems))


def _self_signed(now: dt.datetime) -> ServerPem:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ServerPem(key_pem, cert.public_bytes(serialization.Encoding.PEM))
