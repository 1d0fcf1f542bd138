"""Helm releases (checks.helm): the family and its steps."""

from __future__ import annotations

from pytest_bdd import then, when

from deploy_verify.checks.helm import HelmExpectation, check_helm_release
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import HelmRelease, kind_of


def release(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    kind = kind_of(target)
    assert isinstance(kind, HelmRelease)  # the family is enrolled by the helm kind only
    ref = kind.ref(target)
    wanted = HelmExpectation(ctx.expectation.version, ctx.expectation.chart) if ctx.expectation else None
    return ctx.on_cluster(
        HELM, str(target.cluster), ref.where, lambda reader: check_helm_release(reader, ref, wanted, ctx.deadline)
    )


HELM = declare(
    Family(
        tag="helmrelease",
        check="helm_release",
        marker="applies to Helm release components: the latest revision is deployed with the expected chart",
        category=Category.PROVISIONING,
        run=release,
        transport="kubernetes",
        applies=by_kind,
    )
)


@when("the release's history is read from the cluster", target_fixture="helm_results")
def release_history(verify: Verify) -> list[CheckResult]:
    return verify(HELM)


@then("its latest revision is deployed with the released chart and app version")
def release_ok(helm_results: list[CheckResult], component: Component) -> None:
    assert_results(helm_results, component)
