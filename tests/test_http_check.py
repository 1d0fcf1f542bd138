"""checks.http_probe against real HTTPS servers: the testbed's services, one test per healthy and broken case, and servers
started here for the dimensions of a response (the slow ones are in tests/test_slow_peers.py)."""

from __future__ import annotations

import gzip
import json
import re

import pytest
import requests

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.http_probe import BodyRule, HealthProbe, probe_health, probe_health_within
from deploy_verify.checks.result import Category, Verdict
from testbed.slowpeer import Reply, SlowPeer

UP = BodyRule(json_path="status", equals="UP")


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


def probe(session, ca_bundle, port, path="/health", expected=None, budget=30.0, **kw):
    target = HealthProbe(url=f"https://localhost:{port}{path}", ca_bundle=ca_bundle, **kw)
    return probe_health(session, target, expected, Deadline.after(budget))


def test_healthy_json_passes_with_status_and_timing(session, ca_bundle):
    result = probe(session, ca_bundle, 18441, body=UP)
    assert result.verdict is Verdict.PASS
    assert result.message.startswith("HTTP 200 OK in ")
    assert result.target == "https://localhost:18441/health"


def test_evidence_has_request_status_headers_body_and_timing(session, ca_bundle):
    result = probe(session, ca_bundle, 18441, body=UP)
    evidence = json.loads(result.evidence[0].content)
    assert evidence["request"] == "GET https://localhost:18441/health"
    assert evidence["status"] == "200 OK"
    assert evidence["headers"]["Content-Type"] == "application/json"
    assert json.loads(evidence["body_excerpt"]) == {"status": "UP", "version": "1.4.2"}
    assert evidence["elapsed_ms"] > 0


def test_healthy_text_body_rule_passes(session, ca_bundle):
    result = probe(session, ca_bundle, 18442, path="/healthz", body=BodyRule(contains="Healthy"))
    assert result.verdict is Verdict.PASS


def test_503_fails_with_status_and_body(session, ca_bundle):
    result = probe(session, ca_bundle, 18461)
    assert result.verdict is Verdict.FAIL
    assert "HTTP 503 Service Unavailable in " in result.message
    assert result.message.endswith("""expected 2xx; body: '{"status": "DOWN", "reason": "database unreachable"}'""")


def test_unhealthy_body_fails_naming_path_found_and_expected(session, ca_bundle):
    result = probe(session, ca_bundle, 18462, body=UP)
    assert result.verdict is Verdict.FAIL
    assert result.message.endswith("but body rule failed: status is 'DOWN', expected 'UP'")


def test_missing_text_fails(session, ca_bundle):
    result = probe(session, ca_bundle, 18441, body=BodyRule(contains="Healthy"))
    assert result.verdict is Verdict.FAIL
    assert """the body does not contain 'Healthy': '{"status": "UP", "version": "1.4.2"}'""" in result.message


def test_json_rule_on_a_text_body_fails_as_unreadable(session, ca_bundle):
    result = probe(session, ca_bundle, 18442, path="/healthz", body=UP)
    assert result.verdict is Verdict.FAIL
    assert result.message.endswith("but body rule status == 'UP' cannot be read: the body is not JSON: 'Healthy'")


def test_json_path_missing_fails(session, ca_bundle):
    result = probe(session, ca_bundle, 18441, body=BodyRule(json_path="checks[0].status", equals="UP"))
    assert result.verdict is Verdict.FAIL
    assert "checks[0].status is missing (no 'checks')" in result.message


def test_slower_than_latency_budget_fails(session, ca_bundle):
    result = probe(session, ca_bundle, 18463, latency_budget=1.0)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("HTTP 200 OK in 15")
    assert result.message.endswith("ms, over the 1000 ms latency budget")


def test_never_answers_fails_after_the_timeout(session, ca_bundle):
    result = probe(session, ca_bundle, 18464, timeout=1.0)
    assert result.verdict is Verdict.FAIL
    assert result.message == "no answer within 1.0s; check the service's logs and load"


def test_nothing_listening_fails(session, ca_bundle):
    result = probe(session, ca_bundle, 18469)
    assert result.verdict is Verdict.FAIL
    assert result.message == "cannot connect: Connection refused; is the service running and routed?"


def test_expired_certificate_fails_the_health_probe(session, ca_bundle):
    result = probe(session, ca_bundle, 18451)
    assert result.verdict is Verdict.FAIL
    assert result.message == (
        "TLS handshake failed: certificate verify failed: certificate has expired; run the TLS check for details"
    )


def test_released_version_passes(session, ca_bundle):
    result = probe(session, ca_bundle, 18441, expected="1.4.2", version_path="version")
    assert result.verdict is Verdict.PASS
    assert result.message.endswith(", version 1.4.2")


def test_wrong_version_fails(session, ca_bundle):
    result = probe(session, ca_bundle, 18441, expected="2.0.0", version_path="version")
    assert result.verdict is Verdict.FAIL
    assert result.message.endswith("but reports version '1.4.2' at version, expected '2.0.0'")


def test_missing_expectation_is_an_error_that_says_how_to_give_one(session, ca_bundle):
    result = probe(session, ca_bundle, 18441, version_path="version")
    assert result.verdict is Verdict.ERROR
    assert result.message.endswith(
        "no expected version to compare version with: pass --release FILE or --expect COMPONENT=VERSION"
    )


def test_spent_budget_is_an_error_and_sends_nothing(session, ca_bundle):
    spent = Deadline.after(0.0, "time budget of environment 'x'")
    result = probe_health(session, HealthProbe(url="https://localhost:18441/health"), None, spent)
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "not probed: time budget of environment 'x' of 0s is spent; raise the environment's budget or split the run"
    )


def test_within_retries_until_the_deadline_and_reports_attempts(session, ca_bundle):
    target = HealthProbe(url="https://localhost:18461/health", ca_bundle=ca_bundle)
    result, attempts = probe_health_within(session, target, None, Deadline.after(1.0), interval=0.2)
    assert result.verdict is Verdict.FAIL
    assert attempts >= 3
    assert result.message.startswith(f"still unhealthy after {attempts} attempts in 1s; last: HTTP 503")
    retries = next(e.content for e in result.evidence if e.name == "retry timeline").splitlines()
    assert len(retries) == attempts  # every retry is in the report
    assert retries[0].startswith("+0.0s attempt 1: fail: HTTP 503 Service Unavailable")


def test_within_returns_at_once_when_healthy(session, ca_bundle):
    target = HealthProbe(url="https://localhost:18441/health", ca_bundle=ca_bundle)
    result, attempts = probe_health_within(session, target, None, Deadline.after(30.0), interval=5.0)
    assert (result.verdict, attempts) == (Verdict.PASS, 1)


def test_within_does_not_wait_for_a_missing_expectation(session, ca_bundle):
    target = HealthProbe(url="https://localhost:18441/health", ca_bundle=ca_bundle, version_path="version")
    result, attempts = probe_health_within(session, target, None, Deadline.after(30.0), interval=5.0)
    assert (result.verdict, attempts) == (Verdict.ERROR, 1)


# --- the response's dimensions, as a table, against a real server started here -------------------------------------
# Status (2xx, 3xx not followed, 4xx, 5xx), framing (Content-Length, chunked, ended by close), encoding (gzip),
# charset (bytes that are not UTF-8), size (past the 64 KiB the probe reads), and the body rule.

UP_BODY = json.dumps({"status": "UP"}).encode()
RESPONSE_CASES = {
    # name: (reply, body rule, None for PASS or a regex over the message)
    "200 with the healthy document": (Reply(200, UP_BODY), UP, None),
    "204 without a body, no body rule": (Reply(204, b""), None, None),
    "204 without a body, a body rule": (
        Reply(204, b""),
        UP,
        r"HTTP 204 No Content in \d+ ms but body rule status == 'UP' cannot be read: the body is not JSON: ''",
    ),
    "chunked": (Reply(200, UP_BODY, chunked=True), UP, None),
    "ended by closing the connection": (Reply(200, UP_BODY, framed=False), UP, None),
    "gzip-encoded": (Reply(200, gzip.compress(UP_BODY), headers=(("Content-Encoding", "gzip"),)), UP, None),
    "301 to a healthy page (not followed)": (
        Reply(301, b"moved", "text/plain", headers=(("Location", "/healthy"),)),
        None,
        r"HTTP 301 Moved Permanently in \d+ ms, expected 2xx; body: 'moved'",
    ),
    "404": (
        Reply(404, b"no such page", "text/plain"),
        None,
        r"HTTP 404 Not Found in \d+ ms, expected 2xx; body: 'no such page'",
    ),
    "500": (
        Reply(500, b"boom", "text/plain"),
        None,
        r"HTTP 500 Internal Server Error in \d+ ms, expected 2xx; body: 'boom'",
    ),
    "200 that says DOWN": (
        Reply(200, json.dumps({"status": "DOWN"}).encode()),
        UP,
        r"HTTP 200 OK in \d+ ms but body rule failed: status is 'DOWN', expected 'UP'",
    ),
    "bytes that are not UTF-8": (
        Reply(200, b"\xffHeal\xfe", "text/plain"),
        BodyRule(contains="Healthy"),
        r"HTTP 200 OK in \d+ ms but the body does not contain 'Healthy': '\ufffdHeal\ufffd'",
    ),
    "the marker past the 64 KiB the probe reads": (
        Reply(200, b" " * (64 * 1024) + b"Healthy", "text/plain"),
        BodyRule(contains="Healthy"),
        r"HTTP 200 OK in \d+ ms but the body does not contain 'Healthy': ' +…'",
    ),
}


@pytest.mark.states("http_health")
@pytest.mark.parametrize("case", list(RESPONSE_CASES))
def test_the_response_is_judged_on_every_dimension(session, pki, case):
    reply, rule, expected = RESPONSE_CASES[case]
    chain, key, bundle = pki
    with SlowPeer(lambda _path: reply, tls=(chain, key)) as server:
        target = HealthProbe(url=f"{server.url}/health", ca_bundle=bundle, body=rule, latency_budget=5.0)
        result = probe_health(session, target, None, Deadline.after(30))
    if expected is None:
        assert result.verdict is Verdict.PASS, result.message
        assert re.fullmatch(r"HTTP 20[04] (OK|No Content) in \d+ ms", result.message), result.message
        return
    assert result.verdict is Verdict.FAIL
    assert result.category is Category.UNHEALTHY_ENDPOINT
    assert re.fullmatch(expected, result.message), result.message
