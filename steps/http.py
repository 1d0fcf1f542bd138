"""Steps for HTTP health endpoints (checks.http)."""

from __future__ import annotations

import requests
from pytest_bdd import parsers, then, when

from checks.deadline import Deadline
from checks.http import probe_health, probe_health_within
from checks.result import CheckResult
from steps.common import assert_results, attach_results, parse_duration
from suite.config import Component, Environment
from suite.release import Expectation


@when("the component's health endpoints are probed once", target_fixture="health_results")
def probe_once(
    component: Component,
    environment: Environment,
    expectation: Expectation | None,
    http_session: requests.Session,
    deadline: Deadline,
) -> list[CheckResult]:
    version = expectation.version if expectation else None
    probes = component.health_probes(environment.defaults)
    return attach_results([probe_health(http_session, p, version, deadline) for p in probes])


@when(
    parsers.parse("the component's health endpoints are probed until healthy within {duration}"),
    target_fixture="health_results",
)
def probe_within(
    component: Component,
    environment: Environment,
    expectation: Expectation | None,
    http_session: requests.Session,
    deadline: Deadline,
    duration: str,
) -> list[CheckResult]:
    version = expectation.version if expectation else None
    window = deadline.sub(parse_duration(duration), f"step deadline of {duration}")
    interval = environment.defaults.http.retry_interval
    probes = component.health_probes(environment.defaults)
    return attach_results([probe_health_within(http_session, p, version, window, interval)[0] for p in probes])


@then("every health endpoint answers 2xx within its latency budget with a healthy body")
def all_healthy(health_results: list[CheckResult], component: Component) -> None:
    assert_results(health_results, component)
