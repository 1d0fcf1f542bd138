"""Azure API Management (checks.apim): the family and its steps.

What an API is held to comes from two places: the environment (`apis:` of the component: the revision, the component
it fronts or the backend it points at, whether the release notes name the version) and the release manifest (its
`revisions: {API: N}` overrides the environment's revision; its `version` is what the release notes must name).
"""

from __future__ import annotations

import dataclasses

from pytest_bdd import then, when

from deploy_verify.checks.apim import CHECK, ApiExpectation, Backend, ServiceRef, check_apim
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.checks.runner import Absent, attempt_all
from deploy_verify.checks.transports.arm import ArmNotFound
from deploy_verify.config import ApiConfig, Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import KINDS, kind_of
from deploy_verify.release import Expectation
from deploy_verify.steps.azure_steps import credential_of

# How a message names the address of a fronted component, per kind: "the container app orders's FQDN".
ADDRESSES = {"containerapp": ("container app", "FQDN"), "endpoint": ("endpoint", "host")}
WRITTEN = "the backend the environment names"


def apim(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)  # a component-scoped family
    component = target
    ref = ServiceRef(str(component.resource_group), component.resource or component.name)
    apis = [expectation_of(api, ctx.expectation) for api in component.apis or []]
    credential = credential_of(ctx.env)

    def check() -> list[CheckResult]:
        client = ctx.clients.azure.api_management(str(component.subscription))
        return check_apim(client, ref, apis, ctx.deadline, credential, lambda api: fronting(ctx, api))

    return attempt_all(CHECK, kind_of(component).where(component), check)


def expectation_of(api: ApiConfig, release: Expectation | None) -> ApiExpectation:
    """The environment's `apis:` entry, with the release manifest's revision for it (if any) and its version."""
    revision = release.revisions.get(api.name, api.revision) if release else api.revision
    written = Backend(api.backend, WRITTEN) if api.backend else None
    version = release.version if release else None
    return ApiExpectation(api.name, revision, version, api.version_in_notes, written, api.fronts)


def fronting(ctx: Context, api: ApiExpectation) -> ApiExpectation:
    """The expectation with the address of the component the API fronts, read when the API is judged."""
    if api.fronts is None:
        return api
    fronted = ctx.env.component(api.fronts)
    label, word = ADDRESSES.get(fronted.kind, (fronted.kind, "address"))
    try:
        address = KINDS[fronted.kind].address(fronted, ctx.clients, ctx.deadline)
    except Absent as exc:  # the component itself is missing: say which one the API was to front
        raise ArmNotFound(f"the {label} {fronted.name} it fronts: {exc}") from exc
    missing = (
        f"the {label} {fronted.name} has no {word} (for a container app: no ingress), so nothing can reach it "
        "through the API"
    )
    backend = Backend(address, f"the {label} {fronted.name}'s {word}", missing)
    return dataclasses.replace(api, backend=backend)


APIM = declare(
    Family(
        tag="apim",
        check=CHECK,
        marker=(
            "applies to Azure API Management components: the service is provisioned; each API is current at its "
            "released revision, online, released, has operations and points at its backend"
        ),
        category=Category.PROVISIONING,
        run=apim,
        transport="azure",
        applies=by_kind,
        soak=True,
    )
)


@when("the API Management APIs are read", target_fixture="apim_results")
def apis_read(verify: Verify) -> list[CheckResult]:
    return verify(APIM)


@then("each API is current at its released revision, online, released and fronting its backend")
def apis_current(apim_results: list[CheckResult], component: Component) -> None:
    assert_results(apim_results, component)
