"""checks.tls against real TLS servers: the testbed's, one test per certificate the check claims to catch, and
servers started here with certificates made here, as tables over every field the verifier reads."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, Verdict
from deploy_verify.checks.tls import TlsTarget, inspect_tls
from testbed.slowpeer import Reply, SlowPeer


def inspect(ca_bundle, port, min_days=14.0, host="localhost", **kw):
    target = TlsTarget(host=host, port=port, ca_bundle=ca_bundle, **kw)
    return inspect_tls(target, min_days, Deadline.after(30))


def test_valid_certificate_passes_with_protocol_names_and_expiry(ca_bundle):
    result = inspect(ca_bundle, 18441)
    assert result.verdict is Verdict.PASS
    assert re.fullmatch(
        r"TLSv1\.3, CN=localhost \[localhost, 127\.0\.0\.1\] expires in (89|90) days \(\d{4}-\d\d-\d\d\)",
        result.message,
    ), result.message
    assert result.target == "tls://localhost:18441"


def test_ip_address_host_passes(ca_bundle):
    assert inspect(ca_bundle, 18441, host="127.0.0.1").verdict is Verdict.PASS


def test_chain_with_intermediate_passes_and_reports_every_certificate(ca_bundle):
    result = inspect(ca_bundle, 18442)
    assert result.verdict is Verdict.PASS
    evidence = json.loads(result.evidence[0].content)
    assert len(evidence["chain"]) == 3  # leaf, intermediate, root as built by OpenSSL
    leaf = evidence["chain"][0]
    assert set(leaf) == {"subject", "sans", "issuer", "serial", "sha256", "not_before", "not_after"}
    assert leaf["sans"] == ["localhost", "127.0.0.1"]
    assert re.fullmatch(r"([0-9a-f]{2}:){31}[0-9a-f]{2}", leaf["sha256"])
    assert evidence["protocol"] == "TLSv1.3"
    assert evidence["trust"] == ca_bundle


def test_expired_fails(ca_bundle):
    result = inspect(ca_bundle, 18451)
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(
        r"chain does not verify: certificate has expired \(CN=localhost \[localhost, 127\.0\.0\.1\] expired 2 days "
        r"ago \(.+\)\); renew or re-issue the certificate, then check what the endpoint serves",
        result.message,
    )


def test_not_yet_valid_fails(ca_bundle):
    result = inspect(ca_bundle, 18452)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("chain does not verify: certificate is not yet valid (CN=localhost")


def test_wrong_host_fails_and_names_the_sans_served(ca_bundle):
    result = inspect(ca_bundle, 18453)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith(
        "chain does not verify: Hostname mismatch, certificate is not valid for 'localhost'. "
        "(CN=other.example.test [other.example.test] expires in"
    )
    assert result.message.endswith("check the ingress/SNI routing and the certificate's SANs")


def test_untrusted_root_fails_naming_the_unknown_issuer(ca_bundle):
    result = inspect(ca_bundle, 18454)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("chain does not verify: unable to get local issuer certificate")
    assert "O=rogue CA nobody trusts" in result.message
    assert result.message.endswith("send the intermediate, or trust the right root")
    assert json.loads(result.evidence[0].content)["verify_error"] == "unable to get local issuer certificate"


def test_incomplete_chain_fails(ca_bundle):
    result = inspect(ca_bundle, 18455)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("chain does not verify: unable to get local issuer certificate")
    assert len(json.loads(result.evidence[0].content)["chain"]) == 1  # only the leaf was sent


def test_self_signed_fails(ca_bundle):
    result = inspect(ca_bundle, 18456)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("chain does not verify: self-signed certificate (CN=localhost [localhost]")


def test_expiring_inside_the_threshold_fails(ca_bundle):
    result = inspect(ca_bundle, 18457, min_days=14)
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(
        r"leaf expires in [45]\.\d days \(.+\), inside the 14-day minimum; renew it before promoting", result.message
    ), result.message


def test_expiring_outside_a_smaller_threshold_passes(ca_bundle):
    assert inspect(ca_bundle, 18457, min_days=3).verdict is Verdict.PASS


def test_intermediate_expiring_before_the_leaf_fails_naming_it(ca_bundle):
    result = inspect(ca_bundle, 18458, min_days=14)
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(
        r"chain certificate CN=testbed short-lived intermediate expires in [67]\.\d days \(.+\), "
        r"inside the 14-day minimum; renew it before promoting",
        result.message,
    ), result.message


def test_intermediate_outside_the_threshold_passes(ca_bundle):
    assert inspect(ca_bundle, 18458, min_days=3).verdict is Verdict.PASS


def test_handshake_that_never_completes_fails_inside_the_timeout(ca_bundle):
    result = inspect(ca_bundle, 18465, timeout=1.0)
    assert result.verdict is Verdict.FAIL
    assert result.message == "no TLS handshake with localhost:18465 within 1.0s"


def test_nothing_listening_fails(ca_bundle):
    result = inspect(ca_bundle, 18469)
    assert result.verdict is Verdict.FAIL
    assert result.message == "cannot connect to localhost:18469: Connection refused; is it listening?"


def test_system_trust_store_does_not_trust_the_testbed_ca(ca_bundle):
    result = inspect(None, 18441)
    assert result.verdict is Verdict.FAIL
    assert "unable to get local issuer certificate" in result.message


def test_spent_budget_is_an_error():
    result = inspect_tls(TlsTarget(host="localhost", port=18441), 14, Deadline.after(0.0, "time budget"))
    assert result.verdict is Verdict.ERROR
    assert result.message == "not checked: time budget of 0s is spent; raise the environment's budget"


@pytest.fixture
def tls12_only_server(testbed):
    """A real server that offers at most TLS 1.2, with the testbed's valid certificate."""
    keys = testbed.parent / "keys"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(keys / "payments-api.pem", keys / "payments-api.key")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def test_server_below_the_minimum_tls_version_fails(ca_bundle, tls12_only_server):
    result = inspect(ca_bundle, tls12_only_server, min_version="1.3")
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("no TLS 1.3 or newer offered (handshake: TLSV1_ALERT_PROTOCOL_VERSION)")


def test_server_at_the_minimum_tls_version_passes(ca_bundle, tls12_only_server):
    result = inspect(ca_bundle, tls12_only_server, min_version="1.2")
    assert result.verdict is Verdict.PASS
    assert result.message.startswith("TLSv1.2, CN=localhost")


# --- every field the verifier reads, as a table, against real loopback servers with certificates made here --------
#
# Dimensions (RFC 6125 §6, RFC 5280 §4.2.1.6 and §6.1.3): where the host is named (DNS SAN, IP SAN, CN only, a SAN
# extension without DNS/IP entries); the reference host's form (case, trailing dot, IP literal, U-label IDNA 2008);
# wildcards (one whole left-most label only: not partial, not over a single label, not two labels deep, not the bare
# domain); and the validity window of every certificate in the path (leaf, intermediate, trust anchor: expired, not
# yet valid).

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def dns(*names):
    return [x509.DNSName(n) for n in names]


def ips(*addresses):
    return [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def issue(cn, sans=None, signer=None, start=-DAY, end=90 * DAY, ca=False) -> Issued:
    """A certificate with exactly these fields (cryptography, not trustme: trustme always adds SANs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]) if cn else x509.Name([])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer.cert.subject if signer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + start)
        .not_valid_after(NOW + end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Key identifiers: Python 3.13's X509_STRICT (on in urllib3's contexts there) refuses a chain without them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key((signer.key if signer else key).public_key()), False
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(signer.key if signer else key, hashes.SHA256()), key)


@dataclass(frozen=True)
class Served:
    """One server: the leaf (and intermediates) it sends, and the bundle that trusts its root."""

    chain: Path
    key: Path
    bundle: str


def serve(tmp_path: Path, leaf_cn, sans, *, leaf=(-DAY, 90 * DAY), mid=None, root=(-DAY, 3650 * DAY)) -> Served:
    authority = issue("table root CA", start=root[0], end=root[1], ca=True)
    signer = issue("table intermediate CA", signer=authority, start=mid[0], end=mid[1], ca=True) if mid else authority
    served = issue(leaf_cn, sans, signer, start=leaf[0], end=leaf[1])
    chain, key, bundle = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "bundle.pem"
    chain.write_bytes(served.pem() + (signer.pem() if mid else b""))
    key.write_bytes(
        served.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    bundle.write_bytes(authority.pem())
    return Served(chain, key, str(bundle))


def inspect_served(served: Served, host: str, address: str | None = "127.0.0.1", min_days: float = 14):
    with SlowPeer(lambda _path: Reply(200, b"{}"), tls=(served.chain, served.key)) as server:
        target = TlsTarget(host=host, port=server.port, address=address, ca_bundle=served.bundle)
        return inspect_tls(target, min_days, Deadline.after(30))


MISMATCH = "the certificate does not name this host: check the ingress/SNI routing and the certificate's SANs"
CN_ONLY = (
    "the certificate names no subjectAltName; {host} appears only in its CN, which clients have ignored since "
    "RFC 6125 (browsers and Go refuse it): re-issue it with {host} as a subjectAltName"
)
HOSTNAME_CASES = {
    # name: (host, leaf CN, SANs (None: no extension), None for PASS or the message's tail after "); ")
    "DNS SAN names the host": ("localhost", "localhost", dns("localhost"), None),
    "SAN in another case": ("localhost", "x", dns("LocalHost"), None),
    "host in another case": ("LOCALHOST", "x", dns("localhost"), None),
    "host with a trailing dot (absolute name)": ("localhost.", "x", dns("localhost"), None),
    "CN only, naming the host": ("localhost", "localhost", None, CN_ONLY.format(host="localhost")),
    "CN only, naming another host": (
        "localhost",
        "other.example.test",
        None,
        "the certificate names no subjectAltName and its CN is other.example.test; a host is matched against "
        "subjectAltNames only (RFC 6125): re-issue it with localhost as a subjectAltName",
    ),
    "a SAN extension with only a URI, CN naming the host": (
        "localhost",
        "localhost",
        [x509.UniformResourceIdentifier("https://localhost/")],
        "the certificate names no DNS or IP subjectAltName (only https://localhost/); localhost appears only in its "
        "CN, which clients have ignored since RFC 6125 (browsers and Go refuse it): re-issue it with localhost as a "
        "subjectAltName",
    ),
    "SANs name another host, CN names this one": ("localhost", "localhost", dns("other.example.test"), MISMATCH),
    "IP SAN for an IP host": ("127.0.0.1", "x", ips("127.0.0.1"), None),
    "IP host carried as a DNS SAN": (
        "127.0.0.1",
        "x",
        dns("127.0.0.1"),
        "127.0.0.1 is an IP address, which only an IP-address subjectAltName matches; the certificate carries it as "
        "a DNS name: re-issue it with an IP subjectAltName",
    ),
    "IP host only in the CN": ("127.0.0.1", "127.0.0.1", None, CN_ONLY.format(host="127.0.0.1")),
    "DNS host with only an IP SAN": ("localhost", "x", ips("127.0.0.1"), MISMATCH),
    "wildcard, one label": ("a.example.test", "x", dns("*.example.test"), None),
    "wildcard in another case": ("a.example.test", "x", dns("*.Example.TEST"), None),
    "wildcard, two labels deep": ("a.b.example.test", "x", dns("*.example.test"), MISMATCH),
    "wildcard, the bare domain": ("example.test", "x", dns("*.example.test"), MISMATCH),
    "partial wildcard": ("foo.example.test", "x", dns("f*.example.test"), MISMATCH),
    "wildcard over a single label": ("a.test", "x", dns("*.test"), MISMATCH),
    "wildcard not left-most": ("a.example.test", "x", dns("a.*.test"), MISMATCH),
    "U-label host, A-label SAN": ("bücher.example", "x", dns("xn--bcher-kva.example"), None),
    "IDNA 2008 host (ß), its own A-label": ("faß.example", "x", dns("xn--fa-hia.example"), None),
    "IDNA 2008 host (ß), the IDNA 2003 mapping ss": ("faß.example", "x", dns("fass.example"), MISMATCH),
}


@pytest.mark.states("tls_certificate")
@pytest.mark.parametrize("case", list(HOSTNAME_CASES))
def test_hostname_is_matched_against_subject_alt_names_only(tmp_path, case):
    host, cn, sans, tail = HOSTNAME_CASES[case]
    result = inspect_served(serve(tmp_path, cn, sans), host)
    if tail is None:
        assert result.verdict is Verdict.PASS, result.message
        expected = rf"TLSv1\.3, CN={re.escape(cn)} \[{re.escape(', '.join(str(n.value) for n in sans))}\] "
        assert re.fullmatch(expected + r"expires in (89|90) days \(\d{4}-\d\d-\d\d\)", result.message), result.message
        return
    assert result.verdict is Verdict.FAIL
    assert result.category is Category.CERTIFICATE
    reference = "xn--fa-hia.example" if host == "faß.example" else host.lower()
    kind = "IP address" if host[0].isdigit() else "Hostname"
    assert result.message.startswith(
        f"chain does not verify: {kind} mismatch, certificate is not valid for '{reference}'. ("
    ), result.message
    assert result.message.endswith(f"); {tail}"), result.message


VALIDITY_CASES = {
    # name: (leaf window, intermediate window or None, root window, None for PASS or the message's pattern)
    "all inside their windows": ((-DAY, 90 * DAY), (-DAY, 900 * DAY), (-DAY, 3650 * DAY), None),
    "leaf expired": (
        (-60 * DAY, -2 * DAY),
        None,
        (-DAY, 3650 * DAY),
        r"chain does not verify: certificate has expired \(CN=localhost \[localhost\] expired 2 days ago \(.+\)\); "
        r"renew or re-issue the certificate, then check what the endpoint serves",
    ),
    "leaf not yet valid": (
        (3 * DAY, 90 * DAY),
        None,
        (-DAY, 3650 * DAY),
        r"chain does not verify: certificate is not yet valid \(CN=localhost \[localhost\] expires in .+\); the "
        r"certificate is not valid before \d{4}-\d\d-\d\d \d\d:\d\d UTC: it was issued for the future \(check the "
        r"issuer's clock\) or deployed too early",
    ),
    "intermediate expired, leaf valid": (
        (-DAY, 90 * DAY),
        (-90 * DAY, -3 * DAY),
        (-DAY, 3650 * DAY),
        r"chain does not verify: certificate has expired \(CN=localhost \[localhost\] expires in (89|90) days .+\); "
        r"the chain certificate CN=table intermediate CA expired 3 days ago \(\d{4}-\d\d-\d\d\): renew or re-issue "
        r"it, then check what the endpoint serves",
    ),
    "intermediate not yet valid": (
        (-DAY, 90 * DAY),
        (2 * DAY, 900 * DAY),
        (-DAY, 3650 * DAY),
        r"chain does not verify: certificate is not yet valid \(CN=localhost \[localhost\] expires in .+\); the chain "
        r"certificate CN=table intermediate CA is not valid before \d{4}-\d\d-\d\d \d\d:\d\d UTC: renew or re-issue "
        r"it, then check what the endpoint serves",
    ),
    "trust anchor expired": (
        (-DAY, 90 * DAY),
        (-DAY, 900 * DAY),
        (-900 * DAY, -DAY),
        r"chain does not verify: certificate has expired \(CN=localhost \[localhost\] expires in .+\); every "
        r"certificate the server sent is inside its validity window, so the root in the trust store is not: update "
        r"the CA bundle \(or the system trust store\)",
    ),
    "intermediate expiring inside the threshold": (
        (-DAY, 90 * DAY),
        (-DAY, 5 * DAY),
        (-DAY, 3650 * DAY),
        r"chain certificate CN=table intermediate CA expires in [45]\.\d days \(.+\), inside the 14-day minimum; "
        r"renew it before promoting",
    ),
    "root expiring inside the threshold": (
        (-DAY, 90 * DAY),
        None,
        (-DAY, 6 * DAY),
        r"chain certificate CN=table root CA expires in [56]\.\d days \(.+\), inside the 14-day minimum; renew it "
        r"before promoting",
    ),
}


@pytest.mark.states("tls_certificate")
@pytest.mark.parametrize("case", list(VALIDITY_CASES))
def test_every_certificate_of_the_path_is_inside_its_validity_window(tmp_path, case):
    leaf, mid, root, pattern = VALIDITY_CASES[case]
    result = inspect_served(serve(tmp_path, "localhost", dns("localhost"), leaf=leaf, mid=mid, root=root), "localhost")
    if pattern is None:
        assert result.verdict is Verdict.PASS, result.message
        return
    assert result.verdict is Verdict.FAIL
    assert result.category is Category.CERTIFICATE
    assert re.fullmatch(pattern, result.message), result.message


# --- the other clients that verify a hostname: the HTTP probe, the Kubernetes client, the Azure SDK ----------------
# urllib3 2.x builds its contexts with hostname_checks_common_name = False, so requests (the probe, the Azure SDK)
# and the kubernetes client already refuse a CN-only certificate; these tests pin it against a real server.


@pytest.fixture
def cn_only(tmp_path) -> Served:
    return serve(tmp_path, "localhost", None)


@pytest.mark.states("hostname verification")
def test_the_http_probe_refuses_a_cn_only_certificate_and_says_why(cn_only):
    import requests

    from deploy_verify.checks.http_probe import HealthProbe, probe_health

    with SlowPeer(lambda _path: Reply(200, b'{"status": "UP"}'), tls=(cn_only.chain, cn_only.key)) as server:
        probe = HealthProbe(url=f"https://localhost:{server.port}/health", ca_bundle=cn_only.bundle)
        with requests.Session() as session:
            result = probe_health(session, probe, None, Deadline.after(30))
    assert result.verdict is Verdict.FAIL
    assert result.category is Category.CERTIFICATE
    assert result.message == (
        "TLS handshake failed: certificate verify failed: Hostname mismatch, certificate is not valid for "
        f"'localhost'; {CN_ONLY.format(host='localhost')}; run the TLS check for details"
    )


@pytest.mark.states("hostname verification")
def test_the_kubernetes_client_refuses_an_api_server_with_a_cn_only_certificate(cn_only, tmp_path):
    import yaml

    from deploy_verify.checks.transports.kube import KubeReader, KubeUnavailable

    with SlowPeer(lambda _path: Reply(200, b'{"items": [], "metadata": {}}'), tls=(cn_only.chain, cn_only.key)) as api:
        kubeconfig = tmp_path / "kubeconfig"
        cluster = {"server": f"https://localhost:{api.port}", "certificate-authority": cn_only.bundle}
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": cluster}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "cn", "context": {"cluster": "c", "user": "u"}}],
                }
            )
        )
        reader = KubeReader.from_kubeconfig("cn", "cn", str(kubeconfig))
        with pytest.raises(KubeUnavailable) as refused:
            reader.listing("pods", "app", Deadline.after(30))
        asked = list(api.requests)
    assert asked == []  # refused in the handshake: no request was sent
    assert "Hostname mismatch, certificate is not valid for 'localhost'" in str(refused.value), refused.value


@pytest.mark.states("hostname verification")
def test_the_azure_sdk_refuses_arm_with_a_cn_only_certificate(cn_only):
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    from deploy_verify.checks.transports.arm import ArmUnavailable, arm_call
    from deploy_verify.checks.transports.azure_http import BoundedRequestsTransport
    from deploy_verify.clients import StaticToken

    with SlowPeer(lambda _path: Reply(200, b"{}"), tls=(cn_only.chain, cn_only.key)) as arm:
        deadline = Deadline.after(30)
        transport = BoundedRequestsTransport(deadline, connection_verify=cn_only.bundle)
        client = ContainerAppsAPIClient(
            StaticToken("t"), "s", base_url=f"https://localhost:{arm.port}", transport=transport
        )
        with pytest.raises(ArmUnavailable) as refused:
            arm_call(lambda **kw: client.container_apps.get("rg", "app", **kw), deadline, "ContainerApp:rg/app")
        asked = list(arm.requests)
    assert asked == []
    assert "Hostname mismatch, certificate is not valid for 'localhost'" in str(refused.value), refused.value
