"""Azure Container Apps and Function Apps (checks.containerapps, checks.functionapps): the families and their steps."""

from __future__ import annotations

from pytest_bdd import then, when

from deploy_verify.checks.containerapps import AppExpectation, check_container_app
from deploy_verify.checks.functionapps import VersionSource, check_function_app
from deploy_verify.checks.images import ImageExpectation
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.arm import DEFAULT_CREDENTIAL, GENERIC_CREDENTIAL, Credential, token_env_credential
from deploy_verify.config import Component, Environment
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import AzureApp, kind_of
from deploy_verify.release import Expectation


def _app(target: Target) -> tuple[Component, AzureApp]:
    assert isinstance(target, Component)
    kind = kind_of(target)
    assert isinstance(kind, AzureApp)  # the families are enrolled by the Azure kinds only
    return target, kind


def credential_of(env: Environment) -> Credential:
    """The credential the environment's ARM clients use, so that a 401 names it and says how to refresh it."""
    if env.azure is None:
        return GENERIC_CREDENTIAL
    return token_env_credential(env.azure.token_env) if env.azure.credential == "token-env" else DEFAULT_CREDENTIAL


def image_of(component: Component, wanted: Expectation | None) -> ImageExpectation | None:
    """The release's image expectation for a Container App: its image, and each container's (`containers:`)."""
    if wanted is None or not (wanted.version or wanted.image or wanted.digest or wanted.containers):
        return None
    containers = {
        name: ImageExpectation(rule.version, rule.image, rule.digest) for name, rule in wanted.containers.items()
    }
    return ImageExpectation(
        wanted.version, wanted.image, wanted.digest, component.container, containers, component=component.name
    )


def container_app(ctx: Context, target: Target) -> list[CheckResult]:
    component, kind = _app(target)
    ref = kind.ref(component)
    expected = AppExpectation(image=image_of(component, ctx.expectation), traffic=component.traffic)
    interval, credential = ctx.env.defaults.azure.poll_interval, credential_of(ctx.env)

    def check() -> CheckResult:
        client = ctx.clients.azure.container_apps(str(component.subscription))
        return check_container_app(
            client, ref, expected, ctx.deadline, within=ctx.within, interval=interval, credential=credential
        )

    return [attempt(CONTAINER_APP.check, ref.where, check)]


def function_app(ctx: Context, target: Target) -> list[CheckResult]:
    component, kind = _app(target)
    version = ctx.expectation.version if ctx.expectation else None
    source = VersionSource.parse(component.version_source)  # validated when the environment was loaded
    credential = credential_of(ctx.env)

    def check() -> CheckResult:
        client = ctx.clients.azure.web(str(component.subscription))
        return check_function_app(
            client, kind.ref(component), version, ctx.deadline, source=source, credential=credential
        )

    return [attempt(FUNCTION_APP.check, kind.where(component), check)]


CONTAINER_APP = declare(
    Family(
        tag="containerapp",
        check="containerapp_healthy",
        marker="applies to Azure Container Apps: provisioning, revision health, traffic, image",
        category=Category.PROVISIONING,
        run=container_app,
        transport="azure",
        applies=by_kind,
        soak=True,
    )
)
FUNCTION_APP = declare(
    Family(
        tag="functionapp",
        check="functionapp_deployed",
        marker="applies to Azure Function Apps: site state, latest deployment, version, functions loaded",
        category=Category.PROVISIONING,
        run=function_app,
        transport="azure",
        applies=by_kind,
        soak=True,
    )
)


@when(
    "the container app is watched until provisioning settles or the provisioning deadline passes",
    target_fixture="azure_results",
)
def container_app_watched(verify: Verify) -> list[CheckResult]:
    return verify(CONTAINER_APP, wait="provisioning")


@when("the function app, its latest deployment and its functions are read", target_fixture="azure_results")
def function_app_read(verify: Verify) -> list[CheckResult]:
    return verify(FUNCTION_APP)


@then("the app provisioned, its latest revision is healthy, takes the expected traffic and runs the release")
@then("the site runs, the latest deployment succeeded with the released version, and functions are loaded")
def azure_ok(azure_results: list[CheckResult], component: Component) -> None:
    assert_results(azure_results, component)
