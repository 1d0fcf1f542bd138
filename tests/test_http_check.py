"""checks.http against the testbed's real HTTPS services: one test per healthy and broken case."""

from __future__ import annotations

import json

import pytest
import requests

from checks.deadline import Deadline
from checks.http import BodyRule, HealthProbe, probe_health, probe_health_within
from checks.result import Verdict

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
