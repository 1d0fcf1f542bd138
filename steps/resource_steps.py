"""Kubernetes objects of any kind (checks.resources, judged by checks.status): the family and its steps."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from deploy_verify.checks.resources import check_object
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import Resource, kind_of


def resource(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    kind = kind_of(target)
    assert isinstance(kind, Resource)  # the family is enrolled by the resource kind only
    ref = kind.ref(target)
    grace = ctx.env.defaults.kubernetes.grace
    return ctx.on_cluster(
        RESOURCE,
        str(target.cluster),
        ref.where,
        lambda reader: check_object(reader, ref, ctx.deadline, within=ctx.within, grace=grace),
    )


RESOURCE = declare(
    Family(
        tag="resource",
        check="resource_status",
        marker="applies to resource components: the object exists and its status, read by its kind's rule, is healthy",
        category=Category.PROVISIONING,
        run=resource,
        transport="kubernetes",
        applies=by_kind,
        soak=True,
    )
)


@when(
    "the object's status is watched until it is current or the rollout deadline passes",
    target_fixture="resource_results",
)
def status_until_deadline(verify: Verify) -> list[CheckResult]:
    return verify(RESOURCE, wait="rollout")


@when(parsers.parse("the object's status is watched for up to {duration}"), target_fixture="resource_results")
def status_within(verify: Verify, duration: str) -> list[CheckResult]:
    return verify(RESOURCE, within=duration)


@when("the object's status is read", target_fixture="resource_results")
def status_read(verify: Verify) -> list[CheckResult]:
    return verify(RESOURCE)


@then("it exists and reports a healthy status by its kind's rules")
def resource_ok(resource_results: list[CheckResult], component: Component) -> None:
    assert_results(resource_results, component)
