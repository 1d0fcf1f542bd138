"""Helm releases (checks.helm, checks.helm_resources): the families and their steps."""

from __future__ import annotations

from pytest_bdd import then, when

from deploy_verify.checks.helm import HelmExpectation, HelmRef, check_helm_release
from deploy_verify.checks.helm_resources import check_helm_resources
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.checks.transports.kube import KubeReader
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import HelmRelease, kind_of


def _release_of(target: Target) -> tuple[Component, HelmRef]:
    assert isinstance(target, Component)
    kind = kind_of(target)
    assert isinstance(kind, HelmRelease)  # the families are enrolled by the helm kind only
    return target, kind.ref(target)


def release(ctx: Context, target: Target) -> list[CheckResult]:
    component, ref = _release_of(target)
    wanted = HelmExpectation(ctx.expectation.version, ctx.expectation.chart) if ctx.expectation else None
    return ctx.on_cluster(
        HELM, str(component.cluster), ref.where, lambda reader: check_helm_release(reader, ref, wanted, ctx.deadline)
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
        soak=True,
    )
)


def resources(ctx: Context, target: Target) -> list[CheckResult]:
    component, ref = _release_of(target)
    restarts = ctx.limits(component).max_restarts

    def check(reader: KubeReader) -> CheckResult:
        return check_helm_resources(reader, ref, ctx.deadline, component.allow_suspended, restarts)

    return ctx.on_cluster(HELM_RESOURCES, str(component.cluster), ref.where, check)


HELM_RESOURCES = declare(
    Family(
        tag="helmresources",
        check="helm_resources",
        marker="applies to Helm release components: every object the latest revision rendered exists, is healthy "
        "and is as rendered (no change made outside Helm)",
        # Unhealthy objects; a result with objects missing (Provisioning) or changed by hand (Wrong version) says so.
        category=Category.ROLLOUT_STUCK,
        run=resources,
        transport="kubernetes",
        applies=by_kind,
        soak=True,
    )
)


@when("the release's history is read from the cluster", target_fixture="helm_results")
def release_history(verify: Verify) -> list[CheckResult]:
    return verify(HELM)


@then("its latest revision is deployed with the released chart and app version")
def release_ok(helm_results: list[CheckResult], component: Component) -> None:
    assert_results(helm_results, component)


@when("every object the release rendered is read from the cluster", target_fixture="helm_resource_results")
def release_objects(verify: Verify) -> list[CheckResult]:
    return verify(HELM_RESOURCES)


@then("each exists, is healthy and is as the release rendered it")
def release_objects_ok(helm_resource_results: list[CheckResult], component: Component) -> None:
    assert_results(helm_resource_results, component)
