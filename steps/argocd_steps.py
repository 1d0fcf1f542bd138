"""Argo CD Applications (checks.argocd): the family and its steps."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from deploy_verify.checks.argocd import CHECK, check_application
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import ArgoApplication, kind_of


def application(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    kind = kind_of(target)
    assert isinstance(kind, ArgoApplication)  # the family is enrolled by the argocd kind only
    ref = kind.ref(target)
    wanted = ctx.expectation.version if ctx.expectation else None
    grace = ctx.env.defaults.kubernetes.grace
    return ctx.on_cluster(
        ARGOCD,
        str(target.cluster),
        ref.where,
        lambda reader: check_application(reader, ref, wanted, ctx.deadline, within=ctx.within, grace=grace),
    )


ARGOCD = declare(
    Family(
        tag="argocd",
        check=CHECK,
        marker="applies to Argo CD Application components: synced to the released revision, healthy, last sync "
        "succeeded",
        category=Category.PROVISIONING,
        run=application,
        transport="kubernetes",
        applies=by_kind,
        soak=True,
    )
)


@when("the Argo CD Application is read from the cluster", target_fixture="argocd_results")
def application_read(verify: Verify) -> list[CheckResult]:
    return verify(ARGOCD)


@when(
    "the Argo CD Application is watched until it is synced and healthy or the rollout deadline passes",
    target_fixture="argocd_results",
)
def application_until_deadline(verify: Verify) -> list[CheckResult]:
    return verify(ARGOCD, wait="rollout")


@when(parsers.parse("the Argo CD Application is watched for up to {duration}"), target_fixture="argocd_results")
def application_within(verify: Verify, duration: str) -> list[CheckResult]:
    return verify(ARGOCD, within=duration)


@then("it is synced to the released revision, healthy, and its last sync succeeded")
def application_ok(argocd_results: list[CheckResult], component: Component) -> None:
    assert_results(argocd_results, component)
