"""HTTP health endpoints (checks.http_probe): the family and its steps."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from deploy_verify.checks.http_probe import probe_health, probe_health_within
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, declare
from deploy_verify.fixtures import Verify


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
        soak=True,
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
