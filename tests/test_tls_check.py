"""checks.tls against the testbed's real TLS servers: one test per certificate the check claims to catch."""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading

import pytest

from checks.deadline import Deadline
from checks.result import Verdict
from checks.tls import TlsTarget, inspect_tls


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
