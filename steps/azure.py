"""Steps for Azure Container Apps and Function Apps (checks.containerapps, checks.functionapps)."""

from __future__ import annotations

from pytest_bdd import then, when

from checks.transports.arm import ArmUnavailable
from checks.containerapps import AppExpectation, AppRef, check_container_app
from checks.deadline import Deadline
from checks.functionapps import check_function_app
from checks.images import ImageExpectation
from checks.result import CheckResult, Verdict
from steps.common import assert_results, attach_results
from suite.clients import AzureClients
from suite.config import Component, Environment
from suite.release import Expectation


def _ref(component: Component) -> AppRef:
    assert component.resource_group is not None
    return AppRef(component.resource_group, component.resource or component.name)


def _expectation(component: Component, expectation: Expectation | None) -> AppExpectation:
    image = None
    if expectation is not None and (expectation.version or expectation.image or expectation.digest):
        image = ImageExpectation(expectation.version, expectation.image, expectation.digest, component.container)
    return AppExpectation(image=image, traffic=component.traffic)


@when(
    "the container app is watched until provisioning settles or the provisioning deadline passes",
    target_fixture="azure_results",
)
def container_app(
    component: Component,
    environment: Environment,
    expectation: Expectation | None,
    azure: AzureClients,
    deadline: Deadline,
) -> list[CheckResult]:
    ref, settings = _ref(component), environment.defaults.azure
    window = deadline.sub(settings.provisioning_timeout, f"provisioning deadline of {settings.provisioning_timeout:g}s")
    try:
        client = azure.container_apps(str(component.subscription))
    except ArmUnavailable as exc:
        return attach_results([CheckResult("containerapp_healthy", ref.where, Verdict.ERROR, str(exc))])
    result = check_container_app(
        client, ref, _expectation(component, expectation), deadline, within=window, interval=settings.poll_interval
    )
    return attach_results([result])


@when("the function app, its latest deployment and its functions are read", target_fixture="azure_results")
def function_app(
    component: Component, expectation: Expectation | None, azure: AzureClients, deadline: Deadline
) -> list[CheckResult]:
    ref = _ref(component)
    try:
        client = azure.web(str(component.subscription))
    except ArmUnavailable as exc:
        where = f"FunctionApp:{ref.resource_group}/{ref.name}"
        return attach_results([CheckResult("functionapp_deployed", where, Verdict.ERROR, str(exc))])
    version = expectation.version if expectation else None
    return attach_results([check_function_app(client, ref, version, deadline)])


@then("the app provisioned, its latest revision is healthy, takes the expected traffic and runs the release")
@then("the site runs, the latest deployment succeeded with the released version, and functions are loaded")
def azure_ok(azure_results: list[CheckResult], component: Component) -> None:
    assert_results(azure_results, component)
