"""Container App and Function App checks with the real Azure SDKs against the ARM test server: each healthy and
broken case and each fault mode, asserting verdict and message."""

from __future__ import annotations

import copy
import json
import time

import pytest
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.web import WebSiteManagementClient

from deploy_verify.checks.containerapps import AppExpectation, AppRef, check_container_app
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.functionapps import check_function_app
from deploy_verify.checks.images import ImageExpectation
from deploy_verify.checks.result import Verdict
from deploy_verify.clients import StaticToken
from testbed.arm import ArmServer
from testbed.arm_state import SUBSCRIPTION, local_state

TOKEN = "arm-check-token-7d1e"
RELEASED = AppExpectation(image=ImageExpectation(version="3.4.0"))
ORDERS_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-demo/providers/Microsoft.App/containerApps/orders"


@pytest.fixture
def arm(pki):
    chain, key, _ = pki
    server = ArmServer(0, chain, key, local_state(), TOKEN)
    server.start()
    yield server
    server.stop()


def clients(arm, bundle, token=TOKEN):
    options = {"base_url": arm.url, "connection_verify": bundle, "logging_enable": False}
    return (
        ContainerAppsAPIClient(StaticToken(token), SUBSCRIPTION, **options),
        WebSiteManagementClient(StaticToken(token), SUBSCRIPTION, **options),
    )


@pytest.fixture
def apps(arm, pki):
    return clients(arm, pki[2])[0]


@pytest.fixture
def web(arm, pki):
    return clients(arm, pki[2])[1]


def budget(seconds=30.0):
    return Deadline.after(seconds, "test budget")


def app(apps, group, name, expected=RELEASED, **kw):
    return check_container_app(apps, AppRef(group, name), expected, budget(kw.pop("seconds", 30)), **kw)


# --- Container Apps ----------------------------------------------------------------------------------------------


def test_healthy_single_revision_app_passes(apps):
    result = app(apps, "rg-demo", "orders")
    assert (result.verdict, result.message) == (
        Verdict.PASS,
        (
            "Succeeded; revision orders--v7 Provisioned, Healthy, Running with 2 replicas; traffic 100% orders--v7; image "
            "registry.example.test/orders/api:3.4.0"
        ),
    )
    assert result.target == "ContainerApp:rg-demo/orders"


def test_expected_traffic_split_passes(apps):
    expected = AppExpectation(image=ImageExpectation(version="5.2.0"), traffic={"latest": 80, "pricing--v11": 20})
    result = app(apps, "rg-demo", "pricing", expected)
    assert result.verdict is Verdict.PASS
    assert "traffic 80% pricing--v12, 20% pricing--v11" in result.message


def test_split_where_all_traffic_belongs_on_latest_fails(apps):
    result = app(apps, "rg-demo", "pricing", AppExpectation())
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "traffic 80% pricing--v12, 20% pricing--v11, expected 100% pricing--v12",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "orders-crashing",
            "revision orders-crashing--v8 provisioningState Failed: ContainerCrashing: Container 'api' "
            "was terminated with exit code '1' and reason 'ProcessExited'. The revision failed to "
            "start; check the console logs of orders-crashing--v8.",
        ),
        ("orders-old-traffic", "traffic 100% orders-old-traffic--v6, expected 100% orders-old-traffic--v7"),
        (
            "orders-stale-image",
            "app template container api runs registry.example.test/orders/api:3.3.9, expected tag 3.4.0",
        ),
        ("orders-failed", "app provisioningState Failed"),
        (
            "orders-unhealthy",
            "revision orders-unhealthy--v7 is Unhealthy, runningState Degraded, 0 replicas (minReplicas 1)",
        ),
        ("orders-provisioning", "app provisioningState InProgress"),  # one look; the wait is tested below
    ],
)
def test_broken_apps_fail_with_arms_own_words(apps, name, message):
    result = app(apps, "rg-broken", name)
    assert (result.verdict, result.message) == (Verdict.FAIL, message)


def test_provisioning_in_progress_is_waited_for_within_the_deadline(apps):
    window = budget(30).sub(20, "provisioning deadline of 20s")
    result = app(apps, "rg-broken", "orders-provisioning", within=window, interval=0.2)
    assert result.verdict is Verdict.PASS
    assert result.message.startswith("Succeeded; revision orders-provisioning--v8 Provisioned, Healthy, Running")


def test_failed_revision_ends_the_wait_at_once(apps):
    started = time.monotonic()
    result = app(apps, "rg-broken", "orders-crashing", within=budget(30).sub(20, "20s"), interval=0.2)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("revision orders-crashing--v8 provisioningState Failed: ContainerCrashing")
    assert time.monotonic() - started < 5


def test_missing_app_fails_with_the_arm_message(apps):
    result = app(apps, "rg-demo", "nope")
    assert result.verdict is Verdict.FAIL
    assert result.line() == (
        "ContainerApp:rg-demo/nope: not found: ResourceNotFound: The Resource 'Microsoft.App/containerApps/nope' under "
        "resource group 'rg-demo' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix; "
        "was it deployed to this resource group?"
    )


def test_evidence_is_attached_with_secrets_redacted(arm, apps):
    state = copy.deepcopy(local_state())
    broken = state["resources"][next(k for k in state["resources"] if k.endswith("/orders-failed"))]
    broken["properties"]["template"]["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": "hunter2-9f8e"}]
    broken["properties"]["configuration"]["secrets"] = [{"name": "db", "value": "hunter2-9f8e"}]
    arm.set_state(state)
    result = app(apps, "rg-broken", "orders-failed")
    assert result.verdict is Verdict.FAIL
    evidence = "".join(e.content for e in result.evidence)
    assert "orders-failed" in evidence
    assert "hunter2-9f8e" not in evidence
    assert json.loads(result.evidence[0].content)["properties"]["template"]["containers"][0]["env"][0] == {
        "name": "DB_PASSWORD",
        "value": "<redacted>",
    }


# --- Function Apps -----------------------------------------------------------------------------------------------


def test_healthy_function_app_passes(web):
    result = check_function_app(web, AppRef("rg-demo", "orders-events"), "2.7.1", budget())
    assert result.verdict is Verdict.PASS
    assert result.message.endswith(
        "Success, version 2.7.1 (the latest deployment's message); 3 functions: Health, OrderCreated, OrderShipped"
    )


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("events-failed-deploy", "latest deployment * failed (Kudu status 3): *Oryx build failed*"),
        ("events-stopped", "site state Stopped; start it, or check why it stopped (activity log)"),
        (
            "events-no-functions",
            "deployment * succeeded but 0 functions are loaded; check the host's logs, the app "
            "settings (FUNCTIONS_WORKER_RUNTIME) and the package contents",
        ),
        (
            "events-old-version",
            "latest deployment * is not version 2.7.1: its message ('events-old-version 2.6.0 *') names 2.6.0",
        ),
    ],
)
def test_broken_function_apps_fail_with_the_reason(web, name, pattern):
    import fnmatch

    result = check_function_app(web, AppRef("rg-broken", name), "2.7.1", budget())
    assert result.verdict is Verdict.FAIL
    assert fnmatch.fnmatchcase(result.message, pattern), result.message


def test_function_app_without_expectation_is_an_error(web):
    result = check_function_app(web, AppRef("rg-demo", "orders-events"), None, budget())
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        ("no expected version for this component: pass --release FILE or --expect COMPONENT=VERSION"),
    )


# --- faults ------------------------------------------------------------------------------------------------------


def test_refused_credentials_are_an_error(arm, pki):
    apps, _ = clients(arm, pki[2], token="not-the-token")
    result = app(apps, "rg-demo", "orders")
    assert result.verdict is Verdict.ERROR
    # A 401 is about the credential, never about roles (that is a 403's advice).
    assert result.line() == (
        "ContainerApp:rg-demo/orders: ARM refused the credentials (401): InvalidAuthenticationToken: "
        "The access token is invalid.; the Azure credential: the token is invalid or expired; refresh it: a new "
        "token for https://management.azure.com (azure.credential: token-env), or `az login` / the workload or "
        "managed identity (azure.credential: default)"
    )


def test_throttling_is_waited_out_when_retry_after_fits_the_budget(arm, apps):
    arm.set_faults([{"prefix": ORDERS_ID.lower(), "status": 429, "retry_after": 1, "times": 2}])
    started = time.monotonic()
    result = app(apps, "rg-demo", "orders")
    assert result.verdict is Verdict.PASS
    assert time.monotonic() - started >= 2
    assert arm.count(ORDERS_ID.lower()) == 3


def test_throttling_past_the_budget_is_an_error_that_says_so(arm, apps):
    arm.set_faults([{"prefix": ORDERS_ID.lower(), "status": 429, "retry_after": 30}])
    started = time.monotonic()
    result = app(apps, "rg-demo", "orders", seconds=5)
    assert result.verdict is Verdict.ERROR
    assert result.line().startswith("ContainerApp:rg-demo/orders: throttled by ARM (429, Retry-After 30s) with ")
    assert result.message.endswith(
        "s of the test budget left; run fewer checks per subscription at once or raise the budget"
    )
    assert time.monotonic() - started < 2


def test_server_error_is_an_error_with_arms_code(arm, apps):
    arm.set_faults([{"prefix": ORDERS_ID.lower(), "status": 500}])
    result = app(apps, "rg-demo", "orders")
    assert result.verdict is Verdict.ERROR
    assert result.line().startswith("ContainerApp:rg-demo/orders: ARM answered 500: InternalServerError")


def test_slow_arm_is_an_error_inside_the_budget(arm, apps):
    arm.set_faults([{"prefix": ORDERS_ID.lower(), "delay": 5}])
    started = time.monotonic()
    result = app(apps, "rg-demo", "orders", seconds=1.5)
    assert result.verdict is Verdict.ERROR
    assert result.line().startswith("ContainerApp:rg-demo/orders: ARM did not answer in time or is unreachable")
    assert time.monotonic() - started < 3


def test_arm_unreachable_is_an_error(pki):
    chain, key, bundle = pki
    gone = ArmServer(0, chain, key, local_state(), TOKEN)
    gone.start()
    gone.stop()
    apps, _ = clients(gone, bundle)
    result = app(apps, "rg-demo", "orders", seconds=5)
    assert result.verdict is Verdict.ERROR
    assert result.line().startswith("ContainerApp:rg-demo/orders: ARM did not answer in time or is unreachable")


def test_checks_only_read(arm, apps, web):
    app(apps, "rg-demo", "orders")
    check_function_app(web, AppRef("rg-demo", "orders-events"), "2.7.1", budget())
    assert {entry["method"] for entry in arm.requests()["log"]} == {"GET"}
