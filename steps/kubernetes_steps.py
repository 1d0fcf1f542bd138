"""Kubernetes workloads and nodes (checks.rollout, pods, images, endpoints, nodes): the families and their steps."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from deploy_verify.checks.endpoints import check_endpoints
from deploy_verify.checks.images import ImageExpectation, check_image
from deploy_verify.checks.nodes import check_nodes
from deploy_verify.checks.pods import check_pods
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.checks.rollout import check_rollout
from deploy_verify.config import Component, Environment
from deploy_verify.context import Cluster, Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.release import Expectation

# A component the release expects to run must run at least one pod; 0 passes only where the component declares it.


def _component(target: Target) -> Component:
    assert isinstance(target, Component)  # component-scoped families get components
    return target


def rollout(ctx: Context, target: Target) -> list[CheckResult]:
    component = _component(target)
    return ctx.on_workload(
        ROLLOUT,
        component,
        lambda reader, ref: check_rollout(reader, ref, ctx.limits(component), ctx.deadline, within=ctx.within),
    )


def pods(ctx: Context, target: Target) -> list[CheckResult]:
    component = _component(target)
    return ctx.on_workload(
        PODS, component, lambda reader, ref: check_pods(reader, ref, ctx.limits(component), ctx.deadline)
    )


def image_expectation(component: Component, wanted: Expectation | None) -> ImageExpectation | None:
    """The release's expectation for a workload: its image, and each container's (`containers:`)."""
    if wanted is None:
        return None
    containers = {
        name: ImageExpectation(rule.version, rule.image, rule.digest) for name, rule in wanted.containers.items()
    }
    return ImageExpectation(
        wanted.version, wanted.image, wanted.digest, component.container, containers, component=component.name
    )


def image(ctx: Context, target: Target) -> list[CheckResult]:
    component = _component(target)
    expected = image_expectation(component, ctx.expectation)
    services, minimum = component.services or None, ctx.limits(component).min_replicas
    return ctx.on_workload(
        IMAGE,
        component,
        lambda reader, ref: check_image(reader, ref, expected, ctx.deadline, services, minimum),
    )


def endpoints(ctx: Context, target: Target) -> list[CheckResult]:
    component = _component(target)
    named = component.services or None
    return ctx.on_workload(ENDPOINTS, component, lambda reader, ref: check_endpoints(reader, ref, ctx.deadline, named))


def nodes(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Cluster)
    markers = target.config.reboot_annotations
    return ctx.on_cluster(NODES, target.name, target.where, lambda reader: check_nodes(reader, markers, ctx.deadline))


ROLLOUT = declare(
    Family(
        tag="rollout",
        check="rollout_complete",
        marker="applies to Kubernetes workloads: the rollout is complete",
        category=Category.ROLLOUT_STUCK,
        run=rollout,
        transport="kubernetes",
        applies=by_kind,
        soak=True,
    )
)
PODS = declare(
    Family(
        tag="pods",
        check="pods_healthy",
        marker="applies to Kubernetes workloads: their pods are healthy",
        category=Category.ROLLOUT_STUCK,
        run=pods,
        transport="kubernetes",
        applies=by_kind,
        soak=True,
    )
)
IMAGE = declare(
    Family(
        tag="image",
        check="image_identity",
        marker="applies to Kubernetes workloads: the released image runs",
        category=Category.WRONG_VERSION,
        run=image,
        transport="kubernetes",
        applies=by_kind,
        soak=True,
    )
)
ENDPOINTS = declare(
    Family(
        tag="endpoints",
        check="service_endpoints",
        marker="applies to Kubernetes workloads: their Services have ready endpoints",
        category=Category.UNHEALTHY_ENDPOINT,
        run=endpoints,
        transport="kubernetes",
        applies=by_kind,
        soak=True,
    )
)
NODES = declare(
    Family(
        tag="nodes",
        check="nodes_healthy",
        marker="applies once per cluster: nodes are Ready, schedulable, not waiting for a reboot",
        category=Category.UNREACHABLE,
        run=nodes,
        transport="kubernetes",
        scope="cluster",
        soak=True,
    )
)


@when(
    "the workload's rollout is watched until it completes or the rollout deadline passes", target_fixture="kube_results"
)
def rollout_until_deadline(verify: Verify) -> list[CheckResult]:
    return verify(ROLLOUT, wait="rollout")


@when(parsers.parse("the workload's rollout is watched for up to {duration}"), target_fixture="kube_results")
def rollout_within(verify: Verify, duration: str) -> list[CheckResult]:
    return verify(ROLLOUT, within=duration)


@when("the workload's pods are read", target_fixture="kube_results")
def pods_read(verify: Verify) -> list[CheckResult]:
    return verify(PODS)


@when("the images of the workload and its pods are read", target_fixture="kube_results")
def images_read(verify: Verify) -> list[CheckResult]:
    return verify(IMAGE)


@when("the Services selecting the workload's pods are read", target_fixture="kube_results")
def services_read(verify: Verify) -> list[CheckResult]:
    return verify(ENDPOINTS)


@when("the cluster's nodes are read", target_fixture="kube_results")
def nodes_read(verify: Verify) -> list[CheckResult]:
    return verify(NODES)


@then("every replica runs the newest revision and is available")
@then("every pod is ready, in no terminal state and within the restart limit")
@then("the spec and every ready pod run the released image and no pod of an older revision remains")
@then("every one of them has a ready endpoint")
def workload_ok(kube_results: list[CheckResult], component: Component) -> None:
    assert_results(kube_results, component)


@then("every node is Ready, schedulable and not waiting for a reboot")
def nodes_ok(kube_results: list[CheckResult], cluster: str, environment: Environment) -> None:
    assert_results(kube_results, environment.clusters[cluster])
