"""HTTP health endpoints (checks.http): the family and its steps."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from checks.http import probe_health, probe_health_within
from checks.result import Category, CheckResult
from suite.config import Component
from suite.context import Context, Target
from suite.evidence import assert_results
from suite.family import Family, declare
from suite.fixtures import Verify


def health(ctx: Context, component: Target) -> list[CheckResult]:
    assert isinstance(component, Component)
    version = ctx.expectation.version if ctx.expectation else None
    probes = component.health_probes(ctx.env.defaults)
    if ctx.within is None:
        return [probe_health(ctx.http, p, version, ctx.deadline) for p in probes]
    interval = ctx.env.defaults.http.retry_interval
    return [probe_health_within(ctx.http, p, version, ctx.within, interval)[0] for p in probes]


HTTP = declare(
    Family(
        tag="http",
        check="http_health",
        marker="applies to components with health endpoints",
        category=Category.UNHEALTHY_ENDPOINT,
        run=health,
        transport="http",
        applies=lambda _family, component: bool(component.health),
    )
)


@when("the component's health endpoints are probed once", target_fixture="health_results")
def probe_once(verify: Verify) -> list[CheckResult]:
    return verify(HTTP)


@when(
    parsers.parse("the component's health endpoints are probed until healthy within {duration}"),
    target_fixture="health_results",
)
def probe_within(verify: Verify, duration: str) -> list[CheckResult]:
    return verify(HTTP, within=duration)


@then("every health endpoint answers 2xx within its latency budget with a healthy body")
def all_healthy(health_results: list[CheckResult], component: Component) -> None:
    assert_results(health_results, component)
