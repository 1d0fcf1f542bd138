"""Steps for TLS certificates (checks.tls)."""

from __future__ import annotations

from pytest_bdd import then, when

from checks.deadline import Deadline
from checks.result import CheckResult
from checks.tls import inspect_tls
from steps.common import assert_results, attach_results
from suite.config import Component, Environment


@when("the certificates served on the component's hosts are inspected", target_fixture="tls_results")
def inspect_for_minimum(component: Component, environment: Environment, deadline: Deadline) -> list[CheckResult]:
    targets = component.tls_targets(environment.defaults)
    return attach_results([inspect_tls(target, min_days, deadline) for target, min_days in targets])


@when(
    "the certificates served on the component's hosts are inspected against the promotion window",
    target_fixture="tls_results",
)
def inspect_for_window(component: Component, environment: Environment, deadline: Deadline) -> list[CheckResult]:
    window = environment.defaults.tls.promotion_window_days
    targets = component.tls_targets(environment.defaults)
    return attach_results([inspect_tls(target, max(window, days), deadline) for target, days in targets])


@then("every certificate is trusted, names its host and is far enough from expiry")
def all_valid(tls_results: list[CheckResult], component: Component) -> None:
    assert_results(tls_results, component)
