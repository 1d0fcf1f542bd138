"""Steps for Kubernetes workloads and nodes (checks.rollout, pods, images, endpoints, nodes)."""

from __future__ import annotations

from collections.abc import Callable

from pytest_bdd import parsers, then, when

from checks.deadline import Deadline
from checks.endpoints import check_endpoints
from checks.images import ImageExpectation, check_image
from checks.transports.kube import KubeReader, KubeUnavailable
from checks.nodes import check_nodes
from checks.pods import check_pods
from checks.result import CheckResult, Verdict
from checks.rollout import Limits, check_rollout
from checks.workloads import WorkloadRef
from steps.common import assert_results, attach_results, parse_duration
from suite.clients import KubeClients
from suite.config import Component, Environment
from suite.release import Expectation
from suite.versions import workload_ref


def on_cluster(
    kube: KubeClients, cluster: str, where: str, check: str, run: Callable[[KubeReader], CheckResult]
) -> list[CheckResult]:
    """Run one check with the cluster's shared reader; a cluster that cannot be asked is an ERROR result."""
    try:
        reader = kube.reader(cluster)
    except KubeUnavailable as exc:
        return attach_results([CheckResult(check, where, Verdict.ERROR, str(exc))])
    return attach_results([run(reader)])


def _on_workload(
    kube: KubeClients, component: Component, check: str, run: Callable[[KubeReader, WorkloadRef], CheckResult]
) -> list[CheckResult]:
    """`on_cluster` for a component's workload: the reference comes from the environment entry."""
    assert component.cluster is not None  # the config loader requires it for Kubernetes kinds
    ref = workload_ref(component)
    return on_cluster(kube, component.cluster, ref.where, check, lambda reader: run(reader, ref))


def _limits(environment: Environment) -> Limits:
    k8s = environment.defaults.kubernetes
    return Limits(max_restarts=k8s.max_restarts, grace=k8s.grace)


def _rollout(
    component: Component, environment: Environment, kube: KubeClients, deadline: Deadline, window: Deadline
) -> list[CheckResult]:
    return _on_workload(
        kube,
        component,
        "rollout_complete",
        lambda r, ref: check_rollout(r, ref, _limits(environment), deadline, within=window),
    )


@when(
    "the workload's rollout is watched until it completes or the rollout deadline passes", target_fixture="kube_results"
)
def rollout_until_deadline(
    component: Component, environment: Environment, kube: KubeClients, deadline: Deadline
) -> list[CheckResult]:
    seconds = environment.defaults.kubernetes.rollout_timeout
    return _rollout(component, environment, kube, deadline, deadline.sub(seconds, f"rollout deadline of {seconds:g}s"))


@when(parsers.parse("the workload's rollout is watched for up to {duration}"), target_fixture="kube_results")
def rollout_within(
    component: Component, environment: Environment, kube: KubeClients, deadline: Deadline, duration: str
) -> list[CheckResult]:
    window = deadline.sub(parse_duration(duration), f"step deadline of {duration}")
    return _rollout(component, environment, kube, deadline, window)


@when("the workload's pods are read", target_fixture="kube_results")
def pods(component: Component, environment: Environment, kube: KubeClients, deadline: Deadline) -> list[CheckResult]:
    return _on_workload(
        kube, component, "pods_healthy", lambda r, ref: check_pods(r, ref, _limits(environment), deadline)
    )


@when("the images of the workload and its pods are read", target_fixture="kube_results")
def images(
    component: Component, expectation: Expectation | None, kube: KubeClients, deadline: Deadline
) -> list[CheckResult]:
    wanted = (
        ImageExpectation(expectation.version, expectation.image, expectation.digest, component.container)
        if expectation
        else None
    )
    return _on_workload(kube, component, "image_identity", lambda r, ref: check_image(r, ref, wanted, deadline))


@when("the Services selecting the workload's pods are read", target_fixture="kube_results")
def services(component: Component, kube: KubeClients, deadline: Deadline) -> list[CheckResult]:
    named = component.services or None
    return _on_workload(kube, component, "service_endpoints", lambda r, ref: check_endpoints(r, ref, deadline, named))


@when("the cluster's nodes are read", target_fixture="kube_results")
def nodes(cluster: str, environment: Environment, kube: KubeClients, deadline: Deadline) -> list[CheckResult]:
    markers = environment.clusters[cluster].reboot_annotations
    return on_cluster(kube, cluster, f"cluster:{cluster}", "nodes_healthy", lambda r: check_nodes(r, markers, deadline))


@then("every replica runs the newest revision and is available")
@then("every pod is ready, in no terminal state and within the restart limit")
@then("the spec and every ready pod run the released image and no pod of an older revision remains")
@then("every one of them has a ready endpoint")
def workload_ok(kube_results: list[CheckResult], component: Component) -> None:
    assert_results(kube_results, component)


@then("every node is Ready, schedulable and not waiting for a reboot")
def nodes_ok(kube_results: list[CheckResult], cluster: str, environment: Environment) -> None:
    assert_results(kube_results, environment.clusters[cluster])
