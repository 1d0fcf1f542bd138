"""TLS certificates served on a component's hosts (checks.tls): the family and its steps."""

from __future__ import annotations

from pytest_bdd import then, when

from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.checks.tls import inspect_tls
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, declare
from deploy_verify.fixtures import Verify


def certificates_served(ctx: Context, component: Target) -> list[CheckResult]:
    """Each host's chain, against its own min_days, or the promotion window where the step asks for it."""
    assert isinstance(component, Component)
    window = ctx.env.defaults.tls.promotion_window_days if ctx.options.get("promotion_window") else 0.0
    targets = component.tls_targets(ctx.env.defaults)
    return [inspect_tls(target, max(window, min_days), ctx.deadline) for target, min_days in targets]


TLS = declare(
    Family(
        tag="tls",
        check="tls_certificate",
        marker="applies to components with TLS hosts",
        category=Category.CERTIFICATE,
        run=certificates_served,
        transport="tls",
        applies=lambda _family, component: bool(component.tls),
        soak=True,
    )
)


@when("the certificates served on the component's hosts are inspected", target_fixture="tls_results")
def inspect_for_minimum(verify: Verify) -> list[CheckResult]:
    return verify(TLS)


@when(
    "the certificates served on the component's hosts are inspected against the promotion window",
    target_fixture="tls_results",
)
def inspect_for_window(verify: Verify) -> list[CheckResult]:
    return verify(TLS, promotion_window=True)


@then("every certificate is trusted, names its host and is far enough from expiry")
def all_valid(tls_results: list[CheckResult], component: Component) -> None:
    assert_results(tls_results, component)
