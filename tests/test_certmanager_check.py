"""checks.certmanager against the testbed's real control plane (dv-a) and TLS servers started here: each healthy and
each broken case, asserting the verdict and the message.

No cert-manager controller runs in the testbed: the fixture writes what it would (Issuers' and Certificates' status,
through the status subresource, and the TLS Secrets) into a namespace of its own, and deletes it at the end.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import secrets
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from deploy_verify.checks.certmanager import CertificateRef, check_certificate
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Verdict
from deploy_verify.checks.tls import ServedCert, TlsTarget
from deploy_verify.checks.transports.kube import KubeReader

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = ROOT / ".testbed" / "kubeconfig.yaml"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
RENEWED_HINT = (
    "the certificate was renewed but the endpoint still serves the old one; reload the ingress or restart the pods "
    "that mount the Secret"
)


class TlsServer:
    """Serves one certificate chain on 127.0.0.1, an ephemeral port, until closed: handshake, then hang up."""

    def __init__(self, chain: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(chain, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)  # so the loop sees `stop` without a connection to wake it
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):  # a client that hangs up mid-handshake is not our problem
                conn.settimeout(5)
                self.context.wrap_socket(conn, server_side=True).close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@dataclass(frozen=True)
class Leaf:
    """A trustme certificate as files (for a server) and as the check reads it."""

    cert: trustme.LeafCert
    chain: Path
    key: Path
    served: ServedCert


@dataclass(frozen=True)
class Bed:
    namespace: str
    cluster_issuer: str  # exists and is Ready
    missing_cluster_issuer: str
    new: ServedCert  # what Secret web-tls holds
    old: ServedCert  # what web-tls held before the renewal
    other: ServedCert  # an ingress's default certificate
    ports: dict[str, int]  # "new", "new2", "old", "other" -> the port serving that certificate


def _leaf(ca: trustme.CA, folder: Path, name: str, common_name: str, not_before: dt.datetime, days: float) -> Leaf:
    cert = ca.issue_cert(
        "localhost", common_name=common_name, not_before=not_before, not_after=not_before + dt.timedelta(days=days)
    )
    chain, key = folder / f"{name}.pem", folder / f"{name}.key"
    chain.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    parsed = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    return Leaf(cert, chain, key, ServedCert.from_der(parsed.public_bytes(Encoding.DER)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _stamp(when: dt.datetime) -> str:
    return when.strftime(STAMP)


def _ready(status: str, reason: str, message: str) -> dict[str, object]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message}


class Kubectl:
    def __init__(self, testbed_kube) -> None:
        self.testbed_kube = testbed_kube

    def __call__(self, *args: str) -> str:
        done = self.testbed_kube.kubectl("dv-a", *args, check=False)
        if done.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}", pytrace=False)
        return str(done.stdout)

    def status(self, kind: str, name: str, namespace: str | None, status: dict[str, Any]) -> None:
        where = ["-n", namespace] if namespace else []
        self("patch", kind, name, *where, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))


@pytest.fixture(scope="module")
def bed(testbed_kube, tmp_path_factory):
    namespace = f"certs-{secrets.token_hex(4)}"
    cluster_issuer, missing = f"{namespace}-vault", f"{namespace}-gone"
    kubectl = Kubectl(testbed_kube)
    folder = tmp_path_factory.mktemp("certmanager")
    now = dt.datetime.now(dt.UTC)
    ca = trustme.CA(organization_name="cert-manager test CA")
    new = _leaf(ca, folder, "new", "localhost", now - dt.timedelta(hours=1), 89 + 2 / 24)
    old = _leaf(ca, folder, "old", "localhost", now - dt.timedelta(days=60), 90)
    other = _leaf(
        trustme.CA(),
        folder,
        "other",
        "Kubernetes Ingress Controller Fake Certificate",
        now - dt.timedelta(minutes=5),
        365,
    )
    servers: list[TlsServer] = []
    try:
        kubectl("create", "namespace", namespace)
        manifest = folder / "objects.json"
        manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": _objects(namespace, new, ca)}))
        kubectl("apply", "-f", str(manifest))
        _write_statuses(kubectl, namespace, new.served, now)
        servers = [TlsServer(leaf.chain, leaf.key) for leaf in (new, new, old, other)]
        ports = dict(zip(("new", "new2", "old", "other"), (s.port for s in servers), strict=True))
        yield Bed(namespace, cluster_issuer, missing, new.served, old.served, other.served, ports)
    finally:
        for server in servers:
            server.close()
        testbed_kube.kubectl(
            "dv-a", "delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False
        )
        testbed_kube.kubectl(
            "dv-a", "delete", "clusterissuer", cluster_issuer, "--wait=false", "--ignore-not-found", check=False
        )


def _objects(namespace: str, new: Leaf, ca: trustme.CA) -> list[dict[str, object]]:
    """Issuers, Certificates and Secrets, as cert-manager and its users would have written them (status apart)."""

    def meta(name: str, namespaced: bool = True) -> dict[str, str]:
        return {"name": name, "namespace": namespace} if namespaced else {"name": name}

    def certificate(name: str, issuer: str, kind: str = "Issuer", dns: tuple[str, ...] = ("localhost",)) -> dict:
        spec = {"secretName": f"{name}-tls", "dnsNames": list(dns), "issuerRef": {"name": issuer, "kind": kind}}
        if name in ("web", "expiring", "late-renewal", "unstamped", "wild"):
            spec["secretName"] = "web-tls"  # one Secret holds what these Certificates would have issued
        return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta(name), "spec": spec}

    def secret(name: str, kind: str, crt: bytes, key: bytes) -> dict:
        data = {"tls.crt": _b64(crt), "tls.key": _b64(key)}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta(name), "type": kind, "data": data}

    acme = {
        "server": "https://acme-v02.api.letsencrypt.org/directory",
        "privateKeySecretRef": {"name": "letsencrypt-account"},
        "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}],
    }
    key = new.cert.private_key_pem.bytes()
    return [
        {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": meta("ca"), "spec": {"selfSigned": {}}},
        {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": meta("letsencrypt"), "spec": {"acme": acme}},
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": meta(f"{namespace}-vault", namespaced=False),
            "spec": {"selfSigned": {}},
        },
        # the leaf, then its CA: the check must take the first PEM block
        secret("web-tls", "kubernetes.io/tls", new.chain.read_bytes() + ca.cert_pem.bytes(), key),
        secret("empty-tls", "kubernetes.io/tls", b"", b""),
        secret("opaque-tls", "Opaque", new.chain.read_bytes(), key),
        certificate("web", "ca", dns=("*.localhost", "localhost", "localhost")),
        certificate("api", "letsencrypt"),
        certificate("admin", f"{namespace}-gone", kind="ClusterIssuer"),
        certificate("vaulted", f"{namespace}-vault", kind="ClusterIssuer"),
        certificate("pending", "ca"),
        certificate("expiring", "ca"),
        certificate("late-renewal", "ca"),
        certificate("unstamped", "ca"),
        certificate("orphan", "ca"),
        certificate("opaque", "ca"),
        certificate("empty", "ca"),
        certificate("wild", "ca", dns=("*.shop.test",)),
    ]


def _write_statuses(kubectl: Kubectl, namespace: str, new: ServedCert, now: dt.datetime) -> None:
    """What cert-manager's controllers would have written."""
    kubectl.status(
        "issuer", "ca", namespace, {"conditions": [_ready("True", "KeyPairVerified", "Signing CA verified")]}
    )
    refused = "Failed to register ACME account: 429 urn:ietf:params:acme:error:rateLimited: too many registrations"
    kubectl.status(
        "issuer", "letsencrypt", namespace, {"conditions": [_ready("False", "ErrRegisterACMEAccount", refused)]}
    )
    kubectl.status("clusterissuer", f"{namespace}-vault", None, {"conditions": [_ready("True", "VaultVerified", "ok")]})
    issued: dict[str, Any] = {
        "conditions": [_ready("True", "Ready", "Certificate is up to date and has not expired")],
        "notBefore": _stamp(new.not_before),
        "notAfter": _stamp(new.not_after),
        "renewalTime": _stamp(new.not_after - dt.timedelta(days=30)),
    }
    missing = {"conditions": [_ready("False", "DoesNotExist", "Issuing certificate as Secret does not exist")]}
    for name in ("web", "orphan", "opaque", "empty", "wild"):
        kubectl.status("certificate", name, namespace, issued)
    kubectl.status("certificate", "api", namespace, missing)
    kubectl.status("certificate", "admin", namespace, missing)
    failed = "The certificate request has failed to complete\nand will be retried: Vault sealed"
    kubectl.status("certificate", "vaulted", namespace, {"conditions": [_ready("False", "Failed", failed)]})
    soon = now + dt.timedelta(days=3)
    kubectl.status(
        "certificate",
        "expiring",
        namespace,
        {**issued, "notAfter": _stamp(soon), "renewalTime": _stamp(now - dt.timedelta(days=2))},
    )
    kubectl.status(
        "certificate",
        "late-renewal",
        namespace,
        {**issued, "notAfter": _stamp(now + dt.timedelta(days=10)), "renewalTime": _stamp(now + dt.timedelta(days=5))},
    )
    kubectl.status("certificate", "unstamped", namespace, {"conditions": issued["conditions"]})


@pytest.fixture
def dv_a(bed) -> KubeReader:
    return KubeReader.from_kubeconfig("dv-a", "kwok-dv-a", str(KUBECONFIG))


def budget(seconds: float = 30) -> Deadline:
    return Deadline.after(seconds, "test budget")


def on(*ports: int, host: str = "localhost") -> tuple[TlsTarget, ...]:
    return tuple(TlsTarget(host=host, port=port) for port in ports)


def check(reader: KubeReader, bed: Bed, name: str, endpoints: tuple[TlsTarget, ...] = (), min_days: float = 14):
    return check_certificate(reader, CertificateRef(bed.namespace, name, endpoints), min_days, budget())


def short(cert: ServedCert) -> str:
    return cert.sha256.replace(":", "")[:16]


# --- healthy -----------------------------------------------------------------------------------------------------


def test_ready_certificate_served_as_in_its_secret_passes(dv_a, bed):
    result = check(dv_a, bed, "web", on(bed.ports["new"]))
    assert result.verdict is Verdict.PASS, result.message
    assert re.fullmatch(
        rf"Ready, expires in 89 days \({bed.new.not_after:%Y-%m-%d}\), served on localhost:{bed.ports['new']} = "
        rf"Secret {bed.namespace}/web-tls \({short(bed.new)}\)",
        result.message,
    ), result.message
    assert result.target == f"Certificate:{bed.namespace}/web"
    assert result.check == "certmanager_certificate"


def test_every_endpoint_is_compared_and_recorded(dv_a, bed):
    endpoints = on(bed.ports["new"]) + on(bed.ports["new2"], host="127.0.0.1")
    result = check(dv_a, bed, "web", endpoints)
    assert result.verdict is Verdict.PASS, result.message
    assert f"served on localhost:{bed.ports['new']}, 127.0.0.1:{bed.ports['new2']} = Secret" in result.message
    [evidence] = result.evidence
    assert (evidence.name, evidence.mime) == (f"Certificate:{bed.namespace}/web status", "application/json")
    facts = json.loads(evidence.content)
    assert set(facts) == {"certificate", "secret", "endpoints"}
    assert facts["certificate"]["issuerRef"] == {"name": "ca", "kind": "Issuer"}
    assert facts["certificate"]["notAfter"] == _stamp(bed.new.not_after)
    assert facts["certificate"]["conditions"][0]["status"] == "True"
    assert facts["secret"] == {"name": f"{bed.namespace}/web-tls", "leaf": bed.new.as_dict()}
    assert facts["endpoints"] == {
        f"tls://localhost:{bed.ports['new']}": bed.new.as_dict(),
        f"tls://127.0.0.1:{bed.ports['new2']}": bed.new.as_dict(),
    }


# --- not Ready: the issuer named as the cause ----------------------------------------------------------------------


def test_not_ready_names_the_issuer_that_is_not_ready(dv_a, bed):
    result = check(dv_a, bed, "api")
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"not Ready: DoesNotExist: Issuing certificate as Secret does not exist; cause: Issuer {bed.namespace}/"
        "letsencrypt is not Ready: ErrRegisterACMEAccount: Failed to register ACME account: 429 "
        "urn:ietf:params:acme:error:rateLimited: too many registrations",
    )
    facts = json.loads(result.evidence[0].content)
    assert facts["issuer"]["name"] == f"Issuer {bed.namespace}/letsencrypt"


def test_not_ready_names_a_cluster_issuer_that_does_not_exist(dv_a, bed):
    result = check(dv_a, bed, "admin")
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "not Ready: DoesNotExist: Issuing certificate as Secret does not exist; cause: ClusterIssuer "
        f"{bed.missing_cluster_issuer} does not exist",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # a Ready ClusterIssuer is no cause; the controller's two-line message becomes one line
        (
            "vaulted",
            "not Ready: Failed: The certificate request has failed to complete and will be retried: Vault sealed",
        ),
        ("pending", "not Ready: no Ready condition yet (is cert-manager running?)"),
    ],
    ids=["issuer-ready", "no-condition"],
)
def test_not_ready_without_an_issuer_to_blame(dv_a, bed, name, message):
    result = check(dv_a, bed, name)
    assert (result.verdict, result.message) == (Verdict.FAIL, message)


# --- expiry ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        (
            "expiring",
            r"expires in 3\.0 days \(\d{4}-\d\d-\d\d\), inside the 14-day minimum; its renewal was due "
            r"\d{4}-\d\d-\d\d \d\d:\d\d UTC and has not happened: check its CertificateRequests and its issuer",
        ),
        (
            "late-renewal",
            r"expires in 10\.0 days \(\d{4}-\d\d-\d\d\), inside the 14-day minimum; cert-manager renews it only on "
            r"\d{4}-\d\d-\d\d \d\d:\d\d UTC: raise spec\.renewBefore above 14 days",
        ),
    ],
    ids=["renewal-overdue", "renewal-too-late"],
)
def test_certificate_close_to_expiry_fails(dv_a, bed, name, pattern):
    result = check(dv_a, bed, name, on(bed.ports["new"]))
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(pattern, result.message), result.message
    expected = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3 if name == "expiring" else 10)).date()
    assert f"({expected:%Y-%m-%d})" in result.message


def test_ready_certificate_without_not_after_fails(dv_a, bed):
    result = check(dv_a, bed, "unstamped", on(bed.ports["new"]))
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "Ready but without status.notAfter; cert-manager writes it on issuance: check the Certificate's events",
    )


# --- served vs Secret ------------------------------------------------------------------------------------------------


def test_renewed_certificate_still_serving_the_old_one_fails(dv_a, bed):
    port = bed.ports["old"]
    result = check(dv_a, bed, "web", on(port))
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"tls://localhost:{port} serves {short(bed.old)} (CN=localhost, notAfter {bed.old.not_after:%Y-%m-%d}), "
        f"but Secret {bed.namespace}/web-tls holds {short(bed.new)} (notAfter {bed.new.not_after:%Y-%m-%d}): "
        f"{RENEWED_HINT}",
    )
    facts = json.loads(result.evidence[0].content)
    assert facts["endpoints"] == {f"tls://localhost:{port}": bed.old.as_dict()}


def test_every_mismatching_endpoint_is_reported(dv_a, bed):
    old, other, refused = bed.ports["old"], bed.ports["other"], _free_port()
    result = check(dv_a, bed, "web", on(bed.ports["new"], old, refused, other))
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"tls://localhost:{refused}: cannot connect to localhost:{refused}: Connection refused; is it listening?; "
        f"tls://localhost:{old} serves {short(bed.old)} (CN=localhost, notAfter {bed.old.not_after:%Y-%m-%d}) and "
        f"tls://localhost:{other} serves {short(bed.other)} (CN=Kubernetes Ingress Controller Fake Certificate, "
        f"notAfter {bed.other.not_after:%Y-%m-%d}), but Secret {bed.namespace}/web-tls holds {short(bed.new)} "
        f"(notAfter {bed.new.not_after:%Y-%m-%d}): the endpoint serves another certificate than its Secret: check "
        "which Secret its ingress or server uses",
    )
    assert len(json.loads(result.evidence[0].content)["endpoints"]) == 4


def test_endpoint_refusing_connections_fails_with_the_reason(dv_a, bed):
    port = _free_port()
    result = check(dv_a, bed, "web", on(port))
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"tls://localhost:{port}: cannot connect to localhost:{port}: Connection refused; is it listening?",
    )


def test_without_endpoints_each_dns_name_is_checked_on_443(dv_a, bed):
    # dnsNames *.localhost, localhost, localhost: the wildcard names no host, the duplicate is asked once
    result = check(dv_a, bed, "web")
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "tls://localhost:443: cannot connect to localhost:443: Connection refused; is it listening?",
    )


def test_only_wildcard_names_and_no_endpoints_is_an_error(dv_a, bed):
    result = check(dv_a, bed, "wild")
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        f"nothing to compare with Secret {bed.namespace}/web-tls: spec.dnsNames names no host to connect to (only "
        "wildcards or none); give the check the endpoints that serve this certificate",
    )


# --- the Secret and the Certificate missing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "orphan",
            "Secret {ns}/orphan-tls (spec.secretName) does not exist as a kubernetes.io/tls Secret; was it deleted or "
            "replaced?",
        ),
        (
            "opaque",  # exists, but as an Opaque Secret: no ingress would serve it
            "Secret {ns}/opaque-tls (spec.secretName) does not exist as a kubernetes.io/tls Secret; was it deleted or "
            "replaced?",
        ),
        ("empty", "Secret {ns}/empty-tls has an empty tls.crt: cert-manager has not written a certificate into it"),
    ],
    ids=["missing", "wrong-type", "empty-tls-crt"],
)
def test_secret_without_a_certificate_fails_naming_it(dv_a, bed, name, message):
    result = check(dv_a, bed, name, on(bed.ports["new"]))
    assert (result.verdict, result.message) == (Verdict.FAIL, message.format(ns=bed.namespace))


def test_missing_certificate_fails(dv_a, bed):
    result = check(dv_a, bed, "nope")
    assert (result.verdict, result.message) == (Verdict.FAIL, f"Certificate {bed.namespace}/nope not found")
    assert result.evidence == ()


# --- faults: ERROR, with the reason ------------------------------------------------------------------------------------


def test_unreachable_cluster_is_an_error(bed, tmp_path):
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "reader", "user": {"token": "t"}}],
                "contexts": [{"name": "kwok-dv-a", "context": {"cluster": "dead", "user": "reader"}}],
                "current-context": "kwok-dv-a",
            }
        )
    )
    reader = KubeReader.from_kubeconfig("dv-a", "kwok-dv-a", str(kubeconfig))
    result = check(reader, bed, "web", on(bed.ports["new"]))
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        "cluster dv-a: API server https://127.0.0.1:1 refused the connection; check that the cluster is up and that "
        f"context 'kwok-dv-a' of {kubeconfig} points at it",
    )


def test_budget_spent_before_the_endpoints_is_an_error(dv_a, bed):
    ref = CertificateRef(bed.namespace, "web", on(bed.ports["new"]))
    assert check_certificate(dv_a, ref, 14, budget()).verdict is Verdict.PASS  # the reads are cached from here on
    result = check_certificate(dv_a, ref, 14, Deadline.after(0, "test budget"))
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        "not checked: test budget of 0s is spent; raise the environment's budget",
    )


def test_budget_spent_before_the_cluster_is_asked_is_an_error(dv_a, bed):
    result = check_certificate(dv_a, CertificateRef(bed.namespace, "web"), 14, Deadline.after(0, "test budget"))
    assert (result.verdict, result.message) == (Verdict.ERROR, "cluster dv-a: not asked: test budget of 0s is spent")
    assert dv_a.requests == 0


def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])
