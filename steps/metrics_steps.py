"""Service metrics (checks.metrics): the family that judges a deploy by what its users feel, and its steps.

Each component that declares `metrics:` rules (any kind: the rules say what to query, the kind plays no part) gets
one test; each rule is one result. A baseline rule compares with the window that ended when `-m predeploy` recorded
the environment's baseline (`recorded_at` of reports/baseline-ENV.json); without that file it is an ERROR that says
to record one, never a threshold-free pass.
"""

from __future__ import annotations

from pytest_bdd import then, when

from deploy_verify.baseline import BaselineMissing
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import kind_of


def service_metrics(ctx: Context, target: Target) -> list[CheckResult]:
    from deploy_verify.checks.metrics import baseline_time, evaluate
    from deploy_verify.checks.transports.prometheus import PrometheusClient

    assert isinstance(target, Component)
    where = kind_of(target).where(target)
    assert ctx.env.metrics is not None  # the loader refuses metric rules without a Prometheus
    prometheus = ctx.env.metrics.prometheus
    rules = [config.rule() for config in target.metrics]  # validated when the environment was loaded
    baseline_at, missing = _baseline_at(ctx) if any(r.kind == "baseline" for r in rules) else (None, "")
    client = PrometheusClient(
        prometheus.url, prometheus.token_env, prometheus.ca_bundle, timeout=ctx.deadline.calls.prometheus_request
    )
    labels = target.metric_labels()
    results = []
    try:
        for rule in rules:
            if rule.kind == "baseline" and baseline_at is None:
                message = f"{rule.name}: compared with the window before the deploy, but {missing}"
                results.append(CheckResult(METRICS.check, where, Verdict.ERROR, message, (), Category.UNDECIDED))
                continue
            ends = baseline_time(baseline_at) if baseline_at else None
            results.append(evaluate(client, rule, labels, where=where, deadline=ctx.deadline, baseline_at=ends))
    finally:
        client.session.close()
    return [_named(result) for result in results]


def _baseline_at(ctx: Context) -> tuple[str | None, str]:
    """When the baseline was recorded (ISO 8601), or None and why there is none."""
    if ctx.run.baseline is None:
        return None, "this run has no baseline file; record one before the deploy with `-m predeploy`"
    try:
        return ctx.run.baseline.load().recorded_at, ""
    except BaselineMissing as exc:
        return None, str(exc)


def _named(result: CheckResult) -> CheckResult:
    """The result under the family's check id (the summary table and verdict.json group by it)."""
    return CheckResult(METRICS.check, result.target, result.verdict, result.message, result.evidence, result.category)


METRICS = declare(
    Family(
        tag="metrics",
        check="service_metrics",
        marker="applies to components with metrics: rules: error ratio, latency and the like, from Prometheus",
        category=Category.METRICS,
        run=service_metrics,
        transport="http",
        applies=lambda _family, component: bool(component.metrics),
        soak=True,
    )
)


@when(
    "the service's metrics are read from Prometheus for the last window, and for the window before the deploy",
    target_fixture="metric_results",
)
def metrics_read(verify: Verify) -> list[CheckResult]:
    return verify(METRICS)


@then("every metric rule holds: errors and latency are within their limits and no worse than before the deploy")
def metrics_hold(metric_results: list[CheckResult], component: Component) -> None:
    assert_results(metric_results, component)
