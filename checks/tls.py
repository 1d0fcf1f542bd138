"""TLS: the served chain verifies, names the host, is inside its validity window and far enough from expiry.

    result = inspect_tls(TlsTarget(host="api.example.com"), min_days=14, deadline=Deadline.after(30))

OpenSSL decides trust and hostname (it is what every client of the service uses); `cryptography` reads the certificates
for the evidence and the expiry arithmetic. A chain that fails verification is fetched a second time without
verification so the report can show what was served.
"""

from __future__ import annotations

import _ssl
import datetime as dt
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from checks.deadline import Deadline
from checks.result import Category, CheckResult, Evidence, Verdict
from checks.runner import attempt

CHECK = "tls_certificate"
TLS_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True)
class TlsTarget:
    """A TLS endpoint. `address` connects somewhere else than `host` (one ingress IP) while SNI and checks use host."""

    host: str
    port: int = 443
    address: str | None = None
    min_version: str = "1.2"
    ca_bundle: str | None = None  # None: the system trust store
    timeout: float = 5.0

    @property
    def where(self) -> str:
        return f"tls://{self.host}:{self.port}"


@dataclass(frozen=True)
class ServedCert:
    """What the report shows of one certificate in the chain."""

    subject: str
    sans: tuple[str, ...]
    issuer: str
    serial: str
    sha256: str
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def from_der(cls, der: bytes) -> ServedCert:
        cert = x509.load_der_x509_certificate(der)
        try:
            sans = tuple(
                str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            )
        except x509.ExtensionNotFound:
            sans = ()
        return cls(
            subject=cert.subject.rfc4514_string(),
            sans=sans,
            issuer=cert.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            sha256=cert.fingerprint(hashes.SHA256()).hex(":"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )

    @property
    def short_name(self) -> str:
        """'CN=api.example.com' out of a long subject; the full one stays in the evidence."""
        cn = next((part for part in self.subject.split(",") if part.startswith("CN=")), None)
        return cn or self.subject

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "sans": list(self.sans),
            "issuer": self.issuer,
            "serial": self.serial,
            "sha256": self.sha256,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }


@dataclass(frozen=True)
class Handshake:
    """The outcome of one handshake: the chain served, the protocol, or why it failed."""

    chain: tuple[ServedCert, ...] = ()
    version: str | None = None
    cipher: str | None = None
    verify_error: str | None = None


class HandshakeFailed(Exception):
    """The handshake itself failed (refused, timed out, protocol): the message is the operator-facing reason.

    `category`: a TLS failure (protocol, unreadable or missing certificate) is a certificate problem; an endpoint
    that does not answer (refused, timed out) is an unhealthy endpoint; None: neither says more than the check
    (a name that does not resolve)."""

    def __init__(self, message: str, category: Category | None = Category.CERTIFICATE) -> None:
        super().__init__(message)
        self.category = category


def inspect_tls(target: TlsTarget, min_days: float, deadline: Deadline) -> CheckResult:
    """Verify chain and hostname, then expiry of the leaf and of the earliest-expiring certificate in the chain."""
    return attempt(CHECK, target.where, lambda: _inspect(target, deadline.timeout(target.timeout), min_days))


def _inspect(target: TlsTarget, timeout: float, min_days: float) -> CheckResult:
    try:
        shake = _handshake(target, timeout, verify=True)
        if shake.verify_error is not None:
            shake = _handshake(target, timeout, verify=False, verify_error=shake.verify_error)
    except HandshakeFailed as exc:
        return _result(target, Verdict.FAIL, str(exc), category=exc.category or Category.CERTIFICATE)
    evidence = (_evidence(target, shake),)
    verdict, message = _judge(target, shake, min_days, dt.datetime.now(dt.UTC))
    category = None if verdict is Verdict.PASS else Category.CERTIFICATE  # every finding of _judge is about the cert
    return _result(target, verdict, message, evidence, category)


def served_leaf(target: TlsTarget, deadline: Deadline) -> ServedCert:
    """The leaf certificate `target` serves, read without verification: for comparing what is served with what
    should be (trust and hostname are inspect_tls's job, and an untrusted leaf must still be readable to compare).

    Raises HandshakeFailed (message: the operator-facing reason) or BudgetExhausted once the budget is spent.
    """
    shake = _handshake(target, deadline.timeout(target.timeout), verify=False)
    if not shake.chain:
        raise HandshakeFailed("the server sent no certificate")
    return shake.chain[0]


def _judge(target: TlsTarget, shake: Handshake, min_days: float, now: dt.datetime) -> tuple[Verdict, str]:
    if not shake.chain:
        return Verdict.FAIL, "the server sent no certificate"
    leaf = shake.chain[0]
    if shake.verify_error is not None:
        return Verdict.FAIL, f"chain does not verify: {shake.verify_error} ({_describe(leaf, now)}); {_hint(shake)}"
    if leaf.not_before > now:
        return Verdict.FAIL, f"certificate is not valid before {leaf.not_before:%Y-%m-%d %H:%M} UTC ({leaf.short_name})"
    earliest = min(shake.chain, key=lambda c: c.not_after)
    if earliest.days_left(now) < min_days:
        which = "leaf" if earliest is leaf else f"chain certificate {earliest.short_name}"
        return Verdict.FAIL, (
            f"{which} expires in {earliest.days_left(now):.1f} days ({earliest.not_after:%Y-%m-%d}), "
            f"inside the {min_days:g}-day minimum; renew it before promoting"
        )
    return Verdict.PASS, f"{shake.version}, {_describe(leaf, now)}"


def _handshake(target: TlsTarget, timeout: float, verify: bool, verify_error: str | None = None) -> Handshake:
    context = _context(target, verify)
    address = (target.address or target.host, target.port)
    try:
        with socket.create_connection(address, timeout=timeout) as raw:
            raw.settimeout(timeout)  # bounds the handshake too, not only connect
            with context.wrap_socket(raw, server_hostname=target.host) as tls:
                chain = _served_chain(tls, verified=verify)
                cipher = tls.cipher()
                return Handshake(chain, tls.version(), cipher[0] if cipher else None, verify_error)
    except ssl.SSLCertVerificationError as exc:
        if not verify:
            raise HandshakeFailed(f"certificate unreadable: {exc.verify_message}") from exc
        return Handshake(verify_error=str(exc.verify_message or exc.reason))
    except ssl.SSLError as exc:
        raise HandshakeFailed(_protocol_failure(target, exc)) from exc
    except TimeoutError as exc:
        raise HandshakeFailed(
            f"no TLS handshake with {address[0]}:{address[1]} within {timeout:.1f}s", Category.UNHEALTHY_ENDPOINT
        ) from exc
    except socket.gaierror as exc:
        raise HandshakeFailed(
            f"cannot resolve {address[0]} (DNS: {exc.strerror or exc}); check the name and the resolver", None
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise HandshakeFailed(
            f"cannot connect to {address[0]}:{address[1]}: {reason}; is it listening?", Category.UNHEALTHY_ENDPOINT
        ) from exc


def _context(target: TlsTarget, verify: bool) -> ssl.SSLContext:
    if verify:
        context = ssl.create_default_context(cafile=target.ca_bundle)
        # Python 3.13 turned on X509_STRICT (RFC 5280 pedantry such as a missing Authority Key Identifier), which
        # browsers, curl and the service's real clients do not apply; the verdict must not depend on the Python.
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = TLS_VERSIONS[target.min_version]
    return context


def _served_chain(tls: ssl.SSLSocket, verified: bool) -> tuple[ServedCert, ...]:
    """The chain as served (unverified) or as built by OpenSSL (verified). Public API from 3.13, private before."""
    name = "get_verified_chain" if verified else "get_unverified_chain"
    getter = getattr(tls, name, None) or getattr(tls._sslobj, name)  # type: ignore[attr-defined]  # 3.11/3.12
    certs = getter() or []
    return tuple(ServedCert.from_der(c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER)) for c in certs)


def _protocol_failure(target: TlsTarget, exc: ssl.SSLError) -> str:
    text = f"{exc.reason or ''} {exc}".upper()
    if any(word in text for word in ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS", "WRONG_VERSION")):
        return f"no TLS {target.min_version} or newer offered (handshake: {exc.reason}); raise the server's minimum"
    return f"TLS handshake failed: {exc.reason or exc}"


def _describe(cert: ServedCert, now: dt.datetime) -> str:
    days = cert.days_left(now)
    when = f"expires in {days:.0f} days" if days >= 0 else f"expired {-days:.0f} days ago"
    names = ", ".join(cert.sans) or "no SANs"
    return f"{cert.short_name} [{names}] {when} ({cert.not_after:%Y-%m-%d})"


def _hint(shake: Handshake) -> str:
    error = (shake.verify_error or "").lower()
    if "hostname" in error or "ip address mismatch" in error:
        return "the certificate does not name this host: check the ingress/SNI routing and the certificate's SANs"
    if "expired" in error or "not yet valid" in error:
        return "renew or re-issue the certificate, then check what the endpoint serves"
    top = shake.chain[-1] if shake.chain else None
    if top is not None and "issuer" in error:
        return (
            f"the issuer {top.issuer} of the last certificate sent is neither sent by the server nor in the trust "
            f"store: send the intermediate, or trust the right root"
        )
    return "the chain is not trusted: check the intermediates the server sends and the CA bundle used"


def _evidence(target: TlsTarget, shake: Handshake) -> Evidence:
    return Evidence.as_json(
        "TLS certificate chain",
        {
            "endpoint": f"{target.host}:{target.port}" + (f" via {target.address}" if target.address else ""),
            "protocol": shake.version,
            "cipher": shake.cipher,
            "trust": target.ca_bundle or "system trust store",
            "verify_error": shake.verify_error,
            "chain": [c.as_dict() for c in shake.chain],
        },
    )


def _result(
    target: TlsTarget,
    verdict: Verdict,
    message: str,
    evidence: tuple[Evidence, ...] = (),
    category: Category | None = None,
) -> CheckResult:
    return CheckResult(CHECK, target.where, verdict, message, evidence, category)
