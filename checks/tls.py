"""TLS: the served chain verifies, names the host, is inside its validity window and far enough from expiry.

    result = inspect_tls(TlsTarget(host="api.example.com"), min_days=14, deadline=Deadline.after(30))

OpenSSL decides trust and hostname (it is what every client of the service uses); `cryptography` reads the certificates
for the evidence and the expiry arithmetic. A chain that fails verification is fetched a second time without
verification so the report can show what was served.

The host is matched against the subjectAltNames only, never the CN (RFC 6125 §6.4.4; browsers and Go refuse a CN-only
certificate, Python's ssl still falls back to the CN unless told not to). The reference name is the host without a
trailing dot, in IDNA 2008 A-labels (Python's ssl would encode `faß.example` by IDNA 2003, as `fass.example`).
The handshake runs through memory BIOs, so its bytes are counted and a cutoff (checks.transports.bounded) ends a
trickled handshake on time, saying how far it got.
"""

from __future__ import annotations

import _ssl
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.bounded import HANDSHAKE, Bound, Cutoff, bounded

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
    dns_names: tuple[str, ...] = ()  # the subjectAltNames a host can match: DNS names ...
    ip_names: tuple[str, ...] = ()  # ... and IP addresses (the rest, URIs and e-mail addresses, never match a host)
    common_name: str | None = None

    @classmethod
    def from_der(cls, der: bytes) -> ServedCert:
        cert = x509.load_der_x509_certificate(der)
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            names = x509.SubjectAlternativeName([])
        common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return cls(
            subject=cert.subject.rfc4514_string(),
            sans=tuple(str(n.value) for n in names),
            issuer=cert.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            sha256=cert.fingerprint(hashes.SHA256()).hex(":"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            dns_names=tuple(names.get_values_for_type(x509.DNSName)),
            ip_names=tuple(str(ip) for ip in names.get_values_for_type(x509.IPAddress)),
            common_name=str(common[0].value) if common else None,
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
    took: float = 0.0  # seconds the handshake took


class HandshakeFailed(Exception):
    """The handshake itself failed (refused, timed out, protocol): the message is the operator-facing reason.

    `category`: a TLS failure (protocol, unreadable or missing certificate) is a certificate problem; an endpoint
    that does not answer (refused, timed out) is an unhealthy endpoint; None: neither says more than the check
    (a name that does not resolve)."""

    def __init__(
        self, message: str, category: Category | None = Category.CERTIFICATE, evidence: tuple[Evidence, ...] = ()
    ) -> None:
        super().__init__(message)
        self.category = category
        self.evidence = evidence


def inspect_tls(target: TlsTarget, min_days: float, deadline: Deadline) -> CheckResult:
    """Verify chain and hostname, then expiry of the leaf and of the earliest-expiring certificate in the chain."""
    return attempt(
        CHECK, target.where, lambda: _inspect(target, Bound.of(deadline, target.timeout, "timeout"), min_days)
    )


def _inspect(target: TlsTarget, bound: Bound, min_days: float) -> CheckResult:
    try:
        shake = _handshake(target, bound, verify=True)
        if shake.verify_error is not None:
            # Within the same bound: the second look only reads what was served.
            left = Bound(max(0.1, bound.seconds - shake.took), bound.name, bound.budget)
            shake = _handshake(target, left, verify=False, verify_error=shake.verify_error)
    except HandshakeFailed as exc:
        return _result(target, Verdict.FAIL, str(exc), exc.evidence, exc.category or Category.CERTIFICATE)
    evidence = (_evidence(target, shake),)
    verdict, message = _judge(target, shake, min_days, dt.datetime.now(dt.UTC))
    category = None if verdict is Verdict.PASS else Category.CERTIFICATE  # every finding of _judge is about the cert
    return _result(target, verdict, message, evidence, category)


def served_leaf(target: TlsTarget, deadline: Deadline) -> ServedCert:
    """The leaf certificate `target` serves, read without verification: for comparing what is served with what
    should be (trust and hostname are inspect_tls's job, and an untrusted leaf must still be readable to compare).

    Raises HandshakeFailed (message: the operator-facing reason) or BudgetExhausted once the budget is spent.
    """
    shake = _handshake(target, Bound.of(deadline, target.timeout, "timeout"), verify=False)
    if not shake.chain:
        raise HandshakeFailed("the server sent no certificate")
    return shake.chain[0]


def reference_name(host: str) -> str:
    """The name a certificate must carry for `host` (RFC 6125 §6.2): no trailing dot, lower case, and A-labels by
    IDNA 2008 / UTS 46 for a name that is not ASCII. Raises HandshakeFailed for a name IDNA refuses."""
    name = host[:-1] if host.endswith(".") else host
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise HandshakeFailed(
            f"{host!r} is not a valid internationalised host name ({exc}); fix the host", None
        ) from exc


def hostname_note(leaf: ServedCert, host: str) -> str | None:
    """Why a certificate that seems to name `host` does not, where the reason is a rule clients apply (RFC 6125):
    a host only in the CN, or an IP address carried as a DNS name. None when the names simply differ."""
    try:
        name = reference_name(host)
    except HandshakeFailed:
        return None
    if not leaf.dns_names and not leaf.ip_names:
        names = f"no DNS or IP subjectAltName (only {', '.join(leaf.sans)})" if leaf.sans else "no subjectAltName"
        common = leaf.common_name or ""
        if reference_name_or_none(common) == name:
            return (
                f"the certificate names {names}; {host} appears only in its CN, which clients have ignored since "
                f"RFC 6125 (browsers and Go refuse it): re-issue it with {host} as a subjectAltName"
            )
        return (
            f"the certificate names {names} and its CN is {common or 'empty'}; a host is matched against "
            f"subjectAltNames only (RFC 6125): re-issue it with {host} as a subjectAltName"
        )
    if _is_ip(name) and name in (n.lower() for n in leaf.dns_names):
        return (
            f"{host} is an IP address, which only an IP-address subjectAltName matches; the certificate carries it "
            "as a DNS name: re-issue it with an IP subjectAltName"
        )
    return None


def reference_name_or_none(host: str) -> str | None:
    try:
        return reference_name(host) if host else None
    except HandshakeFailed:
        return None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _judge(target: TlsTarget, shake: Handshake, min_days: float, now: dt.datetime) -> tuple[Verdict, str]:
    if not shake.chain:
        return Verdict.FAIL, "the server sent no certificate"
    leaf = shake.chain[0]
    if shake.verify_error is not None:
        hint = _hint(target, shake, now)
        return Verdict.FAIL, f"chain does not verify: {shake.verify_error} ({_describe(leaf, now)}); {hint}"
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


def _handshake(target: TlsTarget, bound: Bound, verify: bool, verify_error: str | None = None) -> Handshake:
    context = _context(target, verify)
    name = reference_name(target.host)
    address = (target.address or name, target.port)
    with bounded(f"TLS handshake with {address[0]}:{address[1]}", bound) as cut:
        try:
            with socket.create_connection(address, timeout=bound.seconds) as raw:
                cut.enrol(raw)
                cut.enter(HANDSHAKE)
                raw.settimeout(bound.seconds)  # bounds each read; the cutoff bounds the whole handshake
                tls = _shake_hands(raw, context, name, cut)
                chain = _served_chain(tls, verified=verify)
                cipher = tls.cipher()
                return Handshake(chain, tls.version(), cipher[0] if cipher else None, verify_error, cut.elapsed())
        except (OSError, ssl.SSLError) as exc:
            if cut.fired or isinstance(exc, TimeoutError):
                raise _too_slow(cut, address) from exc
            if isinstance(exc, ssl.SSLCertVerificationError):
                if not verify:
                    raise HandshakeFailed(f"certificate unreadable: {exc.verify_message}") from exc
                return Handshake(verify_error=str(exc.verify_message or exc.reason), took=cut.elapsed())
            raise _failed(target, address, exc) from exc


def _shake_hands(raw: socket.socket, context: ssl.SSLContext, name: str, cut: Cutoff) -> ssl.SSLObject:
    """The client's side of the handshake over `raw`, through memory BIOs: every byte the server sends is counted
    on `cut` (a trickled handshake says how far it got). Raises what SSLSocket.do_handshake raises."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            data = raw.recv(16384)
            cut.count(len(data))
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()  # the server hung up: do_handshake raises SSLEOFError, as on a socket
            continue
        except ssl.SSLError:
            with contextlib.suppress(OSError):
                raw.sendall(outgoing.read())  # the alert that says why, as a socket would have sent it
            raise
        raw.sendall(outgoing.read())
        return tls


def _too_slow(cut: Cutoff, address: tuple[str, int]) -> HandshakeFailed:
    """A handshake cut at its bound (or timed out in one read): an endpoint that does not answer in time."""
    evidence = (Evidence.as_json("cut-off call", cut.evidence()),)
    if cut.silent:
        message = f"no TLS handshake with {address[0]}:{address[1]} within {cut.bound.seconds:.1f}s"
        if cut.bound.budget is not None:
            message += f" ({cut.bound.explain()})"
        return HandshakeFailed(message, Category.UNHEALTHY_ENDPOINT, evidence)
    return HandshakeFailed(
        f"{cut.describe()}; check the TLS termination in front of the service", Category.UNHEALTHY_ENDPOINT, evidence
    )


def _failed(target: TlsTarget, address: tuple[str, int], exc: OSError | ssl.SSLError) -> HandshakeFailed:
    if isinstance(exc, ssl.SSLError):
        return HandshakeFailed(_protocol_failure(target, exc))
    if isinstance(exc, socket.gaierror):
        return HandshakeFailed(
            f"cannot resolve {address[0]} (DNS: {exc.strerror or exc}); check the name and the resolver", None
        )
    reason = exc.strerror or str(exc)
    return HandshakeFailed(
        f"cannot connect to {address[0]}:{address[1]}: {reason}; is it listening?", Category.UNHEALTHY_ENDPOINT
    )


def _context(target: TlsTarget, verify: bool) -> ssl.SSLContext:
    if verify:
        context = ssl.create_default_context(cafile=target.ca_bundle)
        # Python 3.13 turned on X509_STRICT (RFC 5280 pedantry such as a missing Authority Key Identifier), which
        # browsers, curl and the service's real clients do not apply; the verdict must not depend on the Python.
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
        # Never the CN: Python's default still falls back to it when a certificate has no subjectAltName.
        context.hostname_checks_common_name = False
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = TLS_VERSIONS[target.min_version]
    return context


def _served_chain(tls: ssl.SSLObject, verified: bool) -> tuple[ServedCert, ...]:
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


def _hint(target: TlsTarget, shake: Handshake, now: dt.datetime) -> str:
    error = (shake.verify_error or "").lower()
    if "hostname" in error or "ip address mismatch" in error:
        note = hostname_note(shake.chain[0], target.host) if shake.chain else None
        return (
            note or "the certificate does not name this host: check the ingress/SNI routing and the certificate's SANs"
        )
    if "expired" in error or "not yet valid" in error:
        return _window_hint(shake.chain, now)
    top = shake.chain[-1] if shake.chain else None
    if top is not None and "issuer" in error:
        return (
            f"the issuer {top.issuer} of the last certificate sent is neither sent by the server nor in the trust "
            f"store: send the intermediate, or trust the right root"
        )
    return "the chain is not trusted: check the intermediates the server sends and the CA bundle used"


def _window_hint(chain: tuple[ServedCert, ...], now: dt.datetime) -> str:
    """Which certificate is outside its validity window (RFC 5280 §6.1.3: every one in the path is checked)."""
    outside = [c for c in chain if c.not_after < now or c.not_before > now]
    if outside and outside[0] is chain[0] and chain[0].not_before > now:
        return (
            f"the certificate is not valid before {chain[0].not_before:%Y-%m-%d %H:%M} UTC: it was issued for the "
            "future (check the issuer's clock) or deployed too early"
        )
    if not outside or outside[0] is chain[0]:
        if outside or not chain:
            return "renew or re-issue the certificate, then check what the endpoint serves"
        return (
            "every certificate the server sent is inside its validity window, so the root in the trust store is not: "
            "update the CA bundle (or the system trust store)"
        )
    culprit = outside[0]
    when = (
        f"expired {-culprit.days_left(now):.0f} days ago ({culprit.not_after:%Y-%m-%d})"
        if culprit.not_after < now
        else f"is not valid before {culprit.not_before:%Y-%m-%d %H:%M} UTC"
    )
    return (
        f"the chain certificate {culprit.short_name} {when}: renew or re-issue it, then check what the endpoint serves"
    )


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
