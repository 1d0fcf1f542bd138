"""cert-manager Certificates: Ready, far enough from expiry, and served: each endpoint serves the leaf in its Secret.

    ref = CertificateRef("shop", "web", endpoints=(TlsTarget("shop.example.com", address="10.0.0.4"),))
    result = check_certificate(reader, ref, min_days=14, deadline=Deadline.after(30))

cert-manager renews a certificate by rewriting its Secret, and nothing makes the ingress or the pods that mount the
Secret load the new one: a Certificate can be Ready with a fresh notAfter while its endpoint serves the old certificate
until that one expires. So the check compares what each endpoint serves with the Secret's leaf (the first PEM block of
`tls.crt`) by SHA-256 fingerprint. The handshake does not verify: trust and hostname are the TLS check's job, and an
endpoint serving the wrong certificate must still be readable to say which one it serves.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.tls import HandshakeFailed, ServedCert, TlsTarget, served_leaf
from deploy_verify.checks.transports.kube import KubeReader, KubeUnavailable, Obj

CHECK = "certmanager_certificate"
TLS_SECRETS = "fields:type=kubernetes.io/tls"  # Secrets are only listed narrowed; cert-manager writes this type
ISSUER_GROUP = "cert-manager.io"
RENEWED_HINT = (
    "the certificate was renewed but the endpoint still serves the old one; reload the ingress or restart the pods "
    "that mount the Secret"
)
OTHER_HINT = "the endpoint serves another certificate than its Secret: check which Secret its ingress or server uses"

Facts = dict[str, Any]  # what the evidence shows, filled in as the check learns it


@dataclass(frozen=True)
class CertificateRef:
    """A Certificate and where it is served. No endpoints: each non-wildcard spec.dnsNames host on port 443 (a
    wildcard names no host one could connect to)."""

    namespace: str
    name: str
    endpoints: tuple[TlsTarget, ...] = ()

    @property
    def where(self) -> str:
        return f"Certificate:{self.namespace}/{self.name}"


def check_certificate(reader: KubeReader, ref: CertificateRef, min_days: float, deadline: Deadline) -> CheckResult:
    """Ready, status.notAfter at least `min_days` ahead, and every endpoint serves the Secret's leaf."""
    facts: Facts = {}
    return attempt(
        CHECK, ref.where, lambda: _judge(reader, ref, min_days, deadline, facts), evidence=lambda: _evidence(ref, facts)
    )


def _judge(reader: KubeReader, ref: CertificateRef, min_days: float, deadline: Deadline, facts: Facts) -> CheckResult:
    now = dt.datetime.now(dt.UTC)
    cert = reader.listing("certificates", ref.namespace, deadline).named(ref.name)
    if cert is None:
        return _result(
            ref, Verdict.FAIL, f"Certificate {ref.namespace}/{ref.name} not found", category=Category.CERTIFICATE
        )
    facts["certificate"] = _certificate_facts(cert)
    problem = _not_ready(reader, cert, deadline, facts)
    if problem is not None:
        return _result(ref, Verdict.FAIL, problem, facts, Category.CERTIFICATE)
    expiry = _expiry(cert, min_days, now)
    if isinstance(expiry, str):
        return _result(ref, Verdict.FAIL, expiry, facts, Category.CERTIFICATE)
    secret_name = str(cert.get("spec", {}).get("secretName", ""))
    secret = reader.listing("secrets", ref.namespace, deadline, select=TLS_SECRETS).named(secret_name)
    label = f"{ref.namespace}/{secret_name}"
    leaf = _secret_leaf(secret, label)
    if isinstance(leaf, str):
        return _result(ref, Verdict.FAIL, leaf, facts, Category.CERTIFICATE)
    facts["secret"] = {"name": label, "leaf": leaf.as_dict()}
    endpoints = ref.endpoints or default_endpoints(cert)
    if not endpoints:
        return _result(
            ref,
            Verdict.ERROR,
            f"nothing to compare with Secret {label}: spec.dnsNames names no host to connect to (only wildcards or "
            "none); give the check the endpoints that serve this certificate",
            facts,
            Category.UNDECIDED,
        )
    problems, category = _compare(endpoints, leaf, label, deadline, facts)
    if problems:
        return _result(ref, Verdict.FAIL, "; ".join(problems), facts, category)
    not_after, days = expiry
    served_on = ", ".join(f"{t.host}:{t.port}" for t in endpoints)
    return _result(
        ref,
        Verdict.PASS,
        f"Ready, expires in {days:.0f} days ({not_after:%Y-%m-%d}), served on {served_on} = "
        f"Secret {label} ({_short(leaf)})",
        facts,
    )


def default_endpoints(cert: Obj) -> tuple[TlsTarget, ...]:
    """Each non-wildcard spec.dnsNames host on port 443, once each."""
    names = cert.get("spec", {}).get("dnsNames") or []
    return tuple(TlsTarget(host=name) for name in dict.fromkeys(names) if not name.startswith("*"))


# --- the Certificate ---------------------------------------------------------------------------------------------


def _not_ready(reader: KubeReader, cert: Obj, deadline: Deadline, facts: Facts) -> str | None:
    ready = _condition(cert, "Ready")
    if ready is not None and ready.get("status") == "True":
        return None
    return f"not Ready: {_why(ready)}{_issuer_cause(reader, cert, deadline, facts)}"


def _issuer_cause(reader: KubeReader, cert: Obj, deadline: Deadline, facts: Facts) -> str:
    """'; cause: Issuer shop/x is not Ready: ...' when the issuer explains the failure, else nothing."""
    issuer_ref = cert.get("spec", {}).get("issuerRef") or {}
    kind = issuer_ref.get("kind") or "Issuer"
    name = str(issuer_ref.get("name", ""))
    if (issuer_ref.get("group") or ISSUER_GROUP) != ISSUER_GROUP or kind not in ("Issuer", "ClusterIssuer"):
        return ""  # an external issuer (its own API group): this reader does not know its kind
    namespace = cert["metadata"]["namespace"]
    label = f"ClusterIssuer {name}" if kind == "ClusterIssuer" else f"Issuer {namespace}/{name}"
    try:
        if kind == "ClusterIssuer":
            issuer = reader.listing("clusterissuers", None, deadline).named(name)
        else:
            issuer = reader.listing("issuers", namespace, deadline).named(name)
    except KubeUnavailable as exc:
        # The Certificate is not Ready whatever the issuer says: the verdict is decided, only the cause is unknown.
        return f"; {label} could not be read: {exc}"
    if issuer is None:
        facts["issuer"] = {"name": label, "exists": False}
        return f"; cause: {label} does not exist"
    facts["issuer"] = {"name": label, "conditions": issuer.get("status", {}).get("conditions", [])}
    ready = _condition(issuer, "Ready")
    if ready is not None and ready.get("status") == "True":
        return ""
    return f"; cause: {label} is not Ready: {_why(ready)}"


def _expiry(cert: Obj, min_days: float, now: dt.datetime) -> tuple[dt.datetime, float] | str:
    """(status.notAfter, days left) when far enough ahead, else why not."""
    not_after = _timestamp(cert, "notAfter")
    if not_after is None:
        return "Ready but without status.notAfter; cert-manager writes it on issuance: check the Certificate's events"
    days = _days(not_after, now)
    if days >= min_days:
        return not_after, days
    return (
        f"expires in {days:.1f} days ({not_after:%Y-%m-%d}), inside the {min_days:g}-day minimum; "
        f"{_renewal_hint(_timestamp(cert, 'renewalTime'), min_days, now)}"
    )


def _renewal_hint(renewal: dt.datetime | None, min_days: float, now: dt.datetime) -> str:
    """Ready and close to expiry: either renewal is failing, or it is scheduled too late for the minimum."""
    if renewal is None:
        return "cert-manager has scheduled no renewal: check the Certificate's events and CertificateRequests"
    if renewal <= now:
        return (
            f"its renewal was due {renewal:%Y-%m-%d %H:%M} UTC and has not happened: check its CertificateRequests "
            "and its issuer"
        )
    return (
        f"cert-manager renews it only on {renewal:%Y-%m-%d %H:%M} UTC: raise spec.renewBefore above {min_days:g} days"
    )


def _certificate_facts(cert: Obj) -> Facts:
    spec, status = cert.get("spec", {}), cert.get("status", {})
    return {
        "conditions": status.get("conditions", []),
        "notAfter": status.get("notAfter"),
        "renewalTime": status.get("renewalTime"),
        "issuerRef": spec.get("issuerRef"),
        "secretName": spec.get("secretName"),
        "dnsNames": spec.get("dnsNames", []),
    }


# --- the Secret and the endpoints --------------------------------------------------------------------------------


def _secret_leaf(secret: Obj | None, label: str) -> ServedCert | str:
    """The Secret's leaf: the first certificate of tls.crt (the rest is the chain); else why there is none."""
    if secret is None:
        return (
            f"Secret {label} (spec.secretName) does not exist as a kubernetes.io/tls Secret; was it deleted or "
            "replaced?"
        )
    encoded = (secret.get("data") or {}).get("tls.crt") or ""
    if not encoded:
        return f"Secret {label} has an empty tls.crt: cert-manager has not written a certificate into it"
    try:
        leaf = x509.load_pem_x509_certificate(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return f"Secret {label}: tls.crt holds no PEM certificate"
    return ServedCert.from_der(leaf.public_bytes(Encoding.DER))


def _compare(
    endpoints: tuple[TlsTarget, ...], leaf: ServedCert, label: str, deadline: Deadline, facts: Facts
) -> tuple[list[str], Category]:
    """One problem per endpoint that cannot be read, one for all that serve another certificate. Every endpoint is
    asked: an operator fixing one replica needs to know about the others.

    The failure class: a certificate problem when any endpoint serves the wrong certificate or fails in TLS itself;
    an unhealthy endpoint when the only problems are endpoints that do not answer."""
    served: Facts = {}
    facts["endpoints"] = served
    problems: list[str] = []
    classes: set[Category | None] = set()
    mismatched: list[tuple[TlsTarget, ServedCert]] = []
    for target in endpoints:
        try:
            cert = served_leaf(target, deadline)
        except HandshakeFailed as exc:
            served[target.where] = {"error": str(exc)}
            problems.append(f"{target.where}: {exc}")
            classes.add(exc.category)
            continue
        served[target.where] = cert.as_dict()
        if cert.sha256 != leaf.sha256:
            mismatched.append((target, cert))
    if mismatched:
        problems.append(_mismatch(mismatched, leaf, label))
        classes.add(Category.CERTIFICATE)
    unanswered = Category.CERTIFICATE not in classes and Category.UNHEALTHY_ENDPOINT in classes
    return problems, Category.UNHEALTHY_ENDPOINT if unanswered else Category.CERTIFICATE


def _mismatch(mismatched: list[tuple[TlsTarget, ServedCert]], leaf: ServedCert, label: str) -> str:
    served = " and ".join(
        f"{t.where} serves {_short(c)} ({c.short_name}, notAfter {c.not_after:%Y-%m-%d})" for t, c in mismatched
    )
    # Issued before the Secret's leaf: the classic stale endpoint after a renewal. Anything else is a wrong Secret.
    renewed = all(c.not_before < leaf.not_before for _, c in mismatched)
    hint = RENEWED_HINT if renewed else OTHER_HINT
    return f"{served}, but Secret {label} holds {_short(leaf)} (notAfter {leaf.not_after:%Y-%m-%d}): {hint}"


# --- plumbing ----------------------------------------------------------------------------------------------------


def _condition(obj: Obj, kind: str) -> Obj | None:
    conditions = obj.get("status", {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), None)


def _why(condition: Obj | None) -> str:
    """'Reason: message' on one line (controllers write multi-line messages)."""
    if condition is None:
        return "no Ready condition yet (is cert-manager running?)"
    parts = [str(condition.get(key) or "") for key in ("reason", "message")]
    text = ": ".join(p for p in parts if p) or f"Ready={condition.get('status', 'Unknown')}"
    return " ".join(text.split())


def _timestamp(cert: Obj, key: str) -> dt.datetime | None:
    value = cert.get("status", {}).get(key)
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _days(when: dt.datetime, now: dt.datetime) -> float:
    return (when - now).total_seconds() / 86400


def _short(cert: ServedCert) -> str:
    """The first 16 hex digits of the SHA-256 fingerprint: enough to tell two certificates apart in one line."""
    return cert.sha256.replace(":", "")[:16]


def _result(
    ref: CertificateRef,
    verdict: Verdict,
    message: str,
    facts: Facts | None = None,
    category: Category | None = None,
) -> CheckResult:
    return CheckResult(CHECK, ref.where, verdict, message, _evidence(ref, facts), category)


def _evidence(ref: CertificateRef, facts: Facts | None) -> tuple[Evidence, ...]:
    return (Evidence.as_json(f"{ref.where} status", facts),) if facts else ()
