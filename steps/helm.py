"""Steps for Helm releases (checks.helm)."""

from __future__ import annotations

from pytest_bdd import then, when

from checks.deadline import Deadline
from checks.helm import HelmExpectation, check_helm_release
from checks.result import CheckResult
from steps.common import assert_results
from steps.kubernetes import on_cluster
from suite.clients import KubeClients
from suite.config import Component
from suite.release import Expectation
from suite.versions import helm_ref


@when("the release's history is read from the cluster", target_fixture="helm_results")
def release_history(
    component: Component, expectation: Expectation | None, kube: KubeClients, deadline: Deadline
) -> list[CheckResult]:
    ref = helm_ref(component)
    wanted = HelmExpectation(expectation.version, expectation.chart) if expectation else None
    assert component.cluster is not None
    return on_cluster(
        kube, component.cluster, ref.where, "helm_release", lambda r: check_helm_release(r, ref, wanted, deadline)
    )


@then("its latest revision is deployed with the released chart and app version")
def release_ok(helm_results: list[CheckResult], component: Component) -> None:
    assert_results(helm_results, component)
