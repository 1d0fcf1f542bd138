"""API Management checks with the real azure-mgmt-apimanagement SDK against the ARM test server: each healthy and
broken state of the service and of its APIs, and each way ARM refuses, asserting verdict and message; then one run of
the suite itself (`-m apim`) against an environment file of its own."""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.apimanagement import ApiManagementClient

from deploy_verify.checks.apim import ApiExpectation, Backend, ServiceRef, check_api, check_apim
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.clients import StaticToken
from testbed.arm import ArmServer
from testbed.arm_state import (
    APIM_BROKEN,
    APIM_FAILED,
    APIM_SERVICE,
    APIM_UPDATING,
    APIM_VERSION,
    LEGACY_BACKEND,
    SUBSCRIPTION,
    app_fqdn,
    local_state,
)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "apim-check-token-3b9e"
DEMO = ServiceRef("rg-demo", APIM_SERVICE)
BROKEN = ServiceRef("rg-broken", APIM_BROKEN)
SERVICE_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-demo/providers/Microsoft.ApiManagement/service/apim-demo"
ORDERS_FQDN = app_fqdn("orders")
FRONTS_ORDERS = Backend(ORDERS_FQDN, "the container app orders's FQDN")
RELEASED = ApiExpectation("orders", "3", APIM_VERSION, version_in_notes=True, backend=FRONTS_ORDERS)
DEMO_PASSES = "APIM:rg-demo/apim-demo: provisioningState Succeeded; gateway https://apim-demo.azure-api.net"

Json = dict[str, Any]


@pytest.fixture(scope="module")
def server(pki):
    chain, key, _ = pki
    arm = ArmServer(0, chain, key, local_state(), TOKEN)
    arm.start()
    yield arm
    arm.stop()


@pytest.fixture
def arm(server):
    """The module's server with fresh state, no faults and an empty request log for every test."""
    server.set_state(local_state())
    server.reset_requests()
    return server


def client_for(arm: ArmServer, bundle: str, token: str = TOKEN) -> ApiManagementClient:
    return ApiManagementClient(
        StaticToken(token), SUBSCRIPTION, base_url=arm.url, connection_verify=bundle, logging_enable=False
    )


@pytest.fixture
def apim(arm, pki):
    with client_for(arm, pki[2]) as client:
        yield client


def budget(seconds: float = 30.0) -> Deadline:
    return Deadline.after(seconds, "test budget")


def judged(client, ref: ServiceRef, *apis: ApiExpectation, seconds: float = 30.0) -> list[tuple[Verdict, str]]:
    return [(r.verdict, r.line()) for r in check_apim(client, ref, list(apis), budget(seconds))]


def one(client, ref: ServiceRef, api: ApiExpectation, seconds: float = 30.0) -> CheckResult:
    return check_api(client, ref, api, budget(seconds))


def edited(arm: ArmServer, change) -> None:
    """Change the local state's documents (`change(resources)`) and serve it."""
    state = copy.deepcopy(local_state())
    change(state["resources"])
    arm.set_state(state)


def document(resources: Json, suffix: str) -> Json:
    return next(doc for key, doc in resources.items() if key.endswith(suffix))


# --- healthy -----------------------------------------------------------------------------------------------------


@pytest.mark.states("apim")
def test_healthy_service_and_apis_pass(apim):
    assert judged(apim, DEMO, RELEASED, ApiExpectation("pricing")) == [
        (Verdict.PASS, DEMO_PASSES),
        (
            Verdict.PASS,
            "APIM:rg-demo/apim-demo/apis/orders: current revision 3 as expected (of 3 revisions), online, with "
            "operations; newest release orders-3-4-0 of revision 3, its notes name 3.4.0; serviceUrl "
            f"https://{ORDERS_FQDN}/api points at the container app orders's FQDN",
        ),
        (
            # The pricing release names no revision (the spec's own example shape): it was made after revision 1.
            Verdict.PASS,
            "APIM:rg-demo/apim-demo/apis/pricing: current revision 1 (of 1 revision), online, with operations; "
            "newest release pricing-5-2-0 made after the current revision was created",
        ),
    ]


@pytest.mark.states("apim")
def test_no_release_passes_unless_the_notes_must_name_the_version(arm, apim):
    edited(arm, lambda r: [r.pop(k) for k in [k for k in r if "/apis/pricing/releases/" in k]])
    unreleased = one(apim, DEMO, ApiExpectation("pricing"))
    assert (unreleased.verdict, unreleased.message) == (
        Verdict.PASS,
        "current revision 1 (of 1 revision), online, with operations; no release recorded (none needed: "
        "version_in_notes is off)",
    )
    noted = one(apim, DEMO, ApiExpectation("pricing", version="5.2.0", version_in_notes=True))
    assert (noted.verdict, noted.message, noted.category) == (
        Verdict.FAIL,
        "no release recorded, expected one whose notes name 5.2.0 (version_in_notes)",
        Category.WRONG_VERSION,
    )


@pytest.mark.states("apim")
def test_backend_written_as_a_url_prefix(apim):
    under = one(apim, DEMO, ApiExpectation("orders", backend=Backend(f"https://{ORDERS_FQDN}/api", "the backend")))
    assert under.verdict is Verdict.PASS
    elsewhere = one(apim, DEMO, ApiExpectation("orders", backend=Backend(f"https://{ORDERS_FQDN}/v2", "the backend")))
    assert (elsewhere.verdict, elsewhere.message) == (
        Verdict.FAIL,
        f"serviceUrl https://{ORDERS_FQDN}/api is not under https://{ORDERS_FQDN}/v2 (the backend)",
    )
    plain = one(apim, DEMO, ApiExpectation("orders", backend=Backend(f"http://{ORDERS_FQDN}/api", "the backend")))
    assert plain.verdict is Verdict.FAIL  # another scheme is another backend


# --- broken APIs -------------------------------------------------------------------------------------------------


@pytest.mark.states("apim")
@pytest.mark.parametrize(
    ("api", "message", "category"),
    [
        (
            ApiExpectation("orders-not-current", revision="3"),
            "current revision is 2, expected 3: revision 3 exists but is not current; make it current with a release "
            "(az apim api release create --api-id orders-not-current --api-revision 3)",
            Category.WRONG_VERSION,
        ),
        (
            ApiExpectation("orders-offline", revision="3"),
            "current revision 3 is offline (isOnline false): the gateway does not serve it",
            Category.PROVISIONING,
        ),
        (
            ApiExpectation("orders-stale-release"),
            "the newest release v2 is of revision 2, older than the current revision 3: revision 3 was made current "
            "without a release (az apim api release create --api-revision 3)",
            Category.WRONG_VERSION,
        ),
        (
            ApiExpectation("orders-unnoted", version=APIM_VERSION, version_in_notes=True),
            "the newest release v3 does not name the released version 3.4.0 in its notes ('hotfix for checkout "
            "timeouts'): was 3.4.0 released through another revision, or not at all?",
            Category.WRONG_VERSION,
        ),
        (
            ApiExpectation(
                "orders-wrong-backend",
                backend=Backend(app_fqdn("orders-crashing"), "the container app orders-crashing's FQDN"),
            ),
            f"serviceUrl {LEGACY_BACKEND} points at orders-legacy.internal.example.test, the container app "
            f"orders-crashing's FQDN is {app_fqdn('orders-crashing')}",
            Category.PROVISIONING,
        ),
        (
            ApiExpectation("orders-no-operations"),
            "revision 1 has no operations: the gateway answers 404 to every call; was the API's definition imported "
            "(OpenAPI, WSDL) into this revision?",
            Category.PROVISIONING,
        ),
    ],
    ids=lambda value: value.name if isinstance(value, ApiExpectation) else None,
)
def test_broken_apis_fail_with_the_reason(apim, api, message, category):
    result = one(apim, BROKEN, api)
    assert (result.verdict, result.message, result.category) == (Verdict.FAIL, message, category)
    assert result.target == f"APIM:rg-broken/apim-broken/apis/{api.name}"


@pytest.mark.states("apim")
def test_expected_revision_that_does_not_exist_fails_listing_the_revisions(apim):
    result = one(apim, DEMO, ApiExpectation("orders", revision="4"))
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "revision 4 does not exist (revisions: 1, 2, 3; current: 3): was the release's revision created in this "
        "service?",
    )


@pytest.mark.states("apim")
def test_release_older_than_the_current_revision_fails_when_its_api_id_names_none(arm, apim):
    def older(resources: Json) -> None:  # pricing's one release, two days before its revision 1 was created
        release = document(resources, "/apis/pricing/releases/pricing-5-2-0")
        release["properties"]["createdDateTime"] = "2026-01-10T08:00:00.000Z"
        document(resources, "/apis/pricing")["_revision"]["createdDateTime"] = "2026-01-12T08:00:00.000Z"

    edited(arm, older)
    result = one(apim, DEMO, ApiExpectation("pricing"))
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "the newest release pricing-5-2-0 (2026-01-10 08:00 UTC) is older than the current revision 1 (created "
        "2026-01-12 08:00 UTC): revision 1 was made current without a release (az apim api release create "
        "--api-revision 1)",
    )


@pytest.mark.states("apim")
def test_every_problem_of_an_api_is_named(arm, apim):
    def worse(resources: Json) -> None:
        document(resources, "/apis/orders-offline")["properties"]["serviceUrl"] = LEGACY_BACKEND

    edited(arm, worse)
    result = one(apim, BROKEN, ApiExpectation("orders-offline", revision="3", backend=FRONTS_ORDERS))
    assert result.message == (
        "current revision 3 is offline (isOnline false): the gateway does not serve it; serviceUrl "
        f"{LEGACY_BACKEND} points at orders-legacy.internal.example.test, the container app orders's FQDN is "
        f"{ORDERS_FQDN}"
    )


@pytest.mark.states("apim")
def test_missing_api_fails_naming_the_apis_the_service_has(apim):
    result = one(apim, DEMO, ApiExpectation("payments"))
    assert (result.verdict, result.line(), result.category) == (
        Verdict.FAIL,
        "APIM:rg-demo/apim-demo/apis/payments: API payments not found in the service (its APIs: orders, pricing); "
        "was it imported into this service under this id (the API's name, not its display name)?",
        Category.PROVISIONING,
    )


@pytest.mark.states("apim")
def test_version_in_notes_without_a_released_version_is_an_error(apim):
    result = one(apim, DEMO, ApiExpectation("orders", version_in_notes=True))
    assert (result.verdict, result.message, result.category) == (
        Verdict.ERROR,
        "no released version to look for in the release notes (version_in_notes): pass --release FILE or --expect "
        "COMPONENT=VERSION",
        Category.UNDECIDED,
    )


@pytest.mark.states("apim")
def test_a_backend_set_by_policy_cannot_be_judged(arm, apim):
    edited(arm, lambda r: document(r, "/apis/orders")["properties"].pop("serviceUrl"))
    result = one(apim, DEMO, ApiExpectation("orders", backend=FRONTS_ORDERS))
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        "the API has no serviceUrl, so its backend is set elsewhere (a set-backend-service policy), which this check "
        f"does not read: cannot tell whether it points at {ORDERS_FQDN} (the container app orders's FQDN)",
    )


@pytest.mark.states("apim")
def test_a_fronted_component_without_an_address_fails(apim):
    nowhere = Backend(None, "the container app orders's FQDN", "the container app orders has no FQDN")
    result = one(apim, DEMO, ApiExpectation("orders", backend=nowhere))
    assert (result.verdict, result.message) == (Verdict.FAIL, "the container app orders has no FQDN")


@pytest.mark.states("apim")
def test_an_api_document_of_another_shape_is_an_error(arm, apim):
    edited(arm, lambda r: document(r, "/apis/orders")["properties"].update(isOnline="yes"))
    result = one(apim, DEMO, ApiExpectation("orders"))
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith("ARM answered with JSON that is not what the API documents")


# --- the service -------------------------------------------------------------------------------------------------


@pytest.mark.states("apim")
@pytest.mark.parametrize(
    ("service", "message"),
    [
        (
            APIM_UPDATING,
            "provisioningState Updating (targetProvisioningState Succeeded): not settled; an operation on the service "
            "is still running: run again once it ends",
        ),
        (
            APIM_FAILED,
            "provisioningState Failed: the last operation on the service failed; see the service's activity log",
        ),
    ],
)
def test_service_not_provisioned_fails_and_its_apis_are_still_judged(apim, service, message):
    ref = ServiceRef("rg-broken", service)
    first, api = check_apim(apim, ref, [ApiExpectation("orders")], budget())
    assert (first.verdict, first.line(), first.category) == (
        Verdict.FAIL,
        f"APIM:rg-broken/{service}: {message}",
        Category.PROVISIONING,
    )
    assert "provisioningState" in json.loads(first.evidence[0].content)["properties"]
    assert api.verdict is Verdict.PASS


@pytest.mark.states("apim")
def test_undocumented_service_state_is_an_error(arm, apim):
    edited(arm, lambda r: r[SERVICE_ID]["properties"].update(provisioningState="Migrating"))
    [first, _] = check_apim(apim, DEMO, [ApiExpectation("orders")], budget())
    assert (first.verdict, first.message) == (
        Verdict.ERROR,
        "provisioningState 'Migrating' is not one the API documents (Succeeded, Created, Activating, Updating, "
        "Failed, Canceled, Stopped, Terminating, TerminationFailed, Deleted): cannot tell its meaning",
    )


@pytest.mark.states("apim")
def test_missing_service_is_the_only_result(apim):
    assert judged(apim, ServiceRef("rg-demo", "apim-nope"), RELEASED) == [
        (
            Verdict.FAIL,
            "APIM:rg-demo/apim-nope: not found: ResourceNotFound: The Resource 'Microsoft.ApiManagement/service/"
            "apim-nope' under resource group 'rg-demo' was not found. For more details please go to "
            "https://aka.ms/ARMResourceNotFoundFix; was it deployed to this resource group?",
        )
    ]


# --- ARM refuses -------------------------------------------------------------------------------------------------


@pytest.mark.states("apim")
def test_refused_credentials_are_one_error(arm, pki):
    with client_for(arm, pki[2], token="not-the-token") as client:
        assert judged(client, DEMO, RELEASED) == [
            (
                Verdict.ERROR,
                "APIM:rg-demo/apim-demo: ARM refused the credentials (401): InvalidAuthenticationToken: The access "
                "token is invalid.; the Azure credential: the token is invalid or expired; refresh it: a new token for "
                "https://management.azure.com (azure.credential: token-env), or `az login` / the workload or managed "
                "identity (azure.credential: default)",
            )
        ]


@pytest.mark.states("apim")
def test_forbidden_release_list_is_an_error_of_that_api(arm, apim):
    arm.set_faults([{"prefix": f"{SERVICE_ID}/apis/orders/releases".lower(), "status": 403}])
    results = judged(apim, DEMO, RELEASED, ApiExpectation("pricing"))
    assert [verdict for verdict, _ in results] == [Verdict.PASS, Verdict.ERROR, Verdict.PASS]
    assert results[1][1] == (
        "APIM:rg-demo/apim-demo/apis/orders: releases: ARM refused the request (403): AuthorizationFailed: The client "
        "'ci@example.test' with object id '7d1e2f3a-0b4c-4d5e-8f6a-9b0c1d2e3f4a' does not have authorization to "
        "perform action 'Microsoft.ApiManagement/service/apis/releases/read' over scope "
        f"'{SERVICE_ID}/apis/orders/releases' or the scope is invalid. If access was recently granted, please "
        "refresh your credentials.; the identity needs Microsoft.ApiManagement/service/apis/releases/read: Reader on "
        f"the resource group /subscriptions/{SUBSCRIPTION}/resourceGroups/rg-demo (or above) grants it"
    )


@pytest.mark.states("apim")
def test_throttling_past_the_budget_is_an_error_that_says_so(arm, apim):
    arm.set_faults([{"prefix": SERVICE_ID.lower(), "status": 429, "retry_after": 30}])
    started = time.monotonic()
    [(verdict, line)] = judged(apim, DEMO, RELEASED, seconds=5)
    assert verdict is Verdict.ERROR
    assert line.startswith("APIM:rg-demo/apim-demo: throttled by ARM (429, Retry-After 30s) with ")
    assert line.endswith("s of the test budget left; run fewer checks per subscription at once or raise the budget")
    assert time.monotonic() - started < 2


@pytest.mark.states("apim")
def test_throttling_is_waited_out_when_retry_after_fits_the_budget(arm, apim):
    operations = f"{SERVICE_ID}/apis/orders/operations".lower()
    arm.set_faults([{"prefix": operations, "status": 429, "retry_after": 1, "times": 1}])
    assert [verdict for verdict, _ in judged(apim, DEMO, RELEASED)] == [Verdict.PASS, Verdict.PASS]
    assert arm.count(operations) == 2


@pytest.mark.states("apim")
def test_evidence_holds_what_was_read_and_the_checks_only_read(arm, apim):
    result = one(apim, BROKEN, ApiExpectation("orders-offline"))
    [evidence] = result.evidence
    read = json.loads(evidence.content)
    assert (evidence.name, read["api"]["properties"]["isOnline"]) == ("API orders-offline", False)
    assert [r["apiRevision"] for r in read["revisions"]] == ["1", "2", "3"]
    assert [r["name"] for r in read["releases"]] == ["v3"]
    assert read["first operation"]["properties"]["urlTemplate"] == "/orders"
    assert {entry["method"] for entry in arm.requests()["log"]} == {"GET"}
    assert {entry["api_version"] for entry in arm.requests()["log"]} == {"2024-05-01"}


# --- the suite, end to end ---------------------------------------------------------------------------------------

ENVIRONMENT = """\
name: local
budget: 1m
azure:
  arm_endpoint: {url}
  ca_bundle: {bundle}
  credential: token-env
  token_env: DV_APIM_TEST_TOKEN
  subscriptions:
    demo: {{subscription_id: {subscription}}}
components:
  - {{name: orders, kind: containerapp, subscription: demo, resource_group: rg-demo}}
  - {{name: orders-crashing, kind: containerapp, subscription: demo, resource_group: rg-broken}}
  - name: apim-demo
    kind: apim
    subscription: demo
    resource_group: rg-demo
    apis:
      - {{name: orders, revision: "2", fronts: orders, version_in_notes: true}}   # the release manifest says 3
      - {{name: pricing}}
  - name: apim-shop                # another name for the broken service
    kind: apim
    subscription: demo
    resource_group: rg-broken
    resource: apim-broken
    apis:
      - {{name: orders-not-current, revision: "3"}}
      - {{name: orders-wrong-backend, fronts: orders-crashing}}
      - {{name: orders-offline, fronts: orders-gone}}
  - {{name: orders-gone, kind: containerapp, subscription: demo, resource_group: rg-broken}}   # never deployed
"""


def test_the_suite_passes_the_healthy_service_and_fails_the_broken_one(arm, pki, pytester, monkeypatch):
    shutil.copy(ROOT / "pyproject.toml", pytester.path)
    (pytester.path / "features").mkdir()
    (pytester.path / "environments").mkdir()
    (pytester.path / "environments" / "local.yaml").write_text(
        ENVIRONMENT.format(url=arm.url, bundle=pki[2], subscription=SUBSCRIPTION)
    )
    (pytester.path / "release.yaml").write_text(
        f"components:\n  apim-demo: {{version: {APIM_VERSION}, revisions: {{orders: 3}}}}\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("DV_APIM_TEST_TOKEN", TOKEN)
    result = pytester.runpytest_subprocess(
        "features", "--env", "local", "-m", "apim", "--release", "release.yaml", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*deployment verification: local*",
            "apim-demo * PASS * apim_api_current",
            "apim-shop * FAIL * apim_api_current: APIM:rg-broken/apim-broken/apis/orders-not-current: current "
            "revision is 2, expected 3: *",
            "GATE RED: 1 failed of 2; details in *verdict.json",
        ]
    )
    verdict = json.loads((pytester.path / "reports" / "verdict.json").read_text())
    rows = {t["component"]: (t["check"], t["outcome"], t["category"]) for t in verdict["tests"]}
    assert rows == {
        "apim-demo": ("apim_api_current", "pass", ""),
        "apim-shop": ("apim_api_current", "fail", "Wrong version"),
    }
    # The failure names each broken API, the fronted container app's FQDN read from ARM through the kind.
    assert (
        f"serviceUrl {LEGACY_BACKEND} points at orders-legacy.internal.example.test, the container app "
        f"orders-crashing's FQDN is {app_fqdn('orders-crashing')}"
    ) in result.stdout.str()
    # A fronted component that is not there fails that API only, naming the component.
    assert (
        "APIM:rg-broken/apim-broken/apis/orders-offline: the container app orders-gone it fronts: "
        "ContainerApp:rg-broken/orders-gone not found: ResourceNotFound: The Resource "
        "'Microsoft.App/containerApps/orders-gone' under resource group 'rg-broken' was not found."
    ) in result.stdout.str()
