"""testbed.arm against the real Azure SDKs: what the Container App, Function App and API Management checks will see,
faults included.

The server runs on an ephemeral port behind a CA made here; the clients are the real ContainerAppsAPIClient,
WebSiteManagementClient and ApiManagementClient with a static token, so every shape below is one the SDKs really
deserialize.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Any, cast

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.mgmt.apimanagement import ApiManagementClient
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.web import WebSiteManagementClient

from testbed.arm import ArmServer
from testbed.arm_state import (
    APIM_BROKEN,
    APIM_FAILED,
    APIM_SERVICE,
    APIM_UPDATING,
    APIM_VERSION,
    BROKEN_APIS,
    BROKEN_GROUP,
    CRASH_MESSAGE,
    FUNCTIONS_PREVIOUS_VERSION,
    FUNCTIONS_VERSION,
    HEALTHY_GROUP,
    PROVISIONING_GETS,
    RELEASED_IMAGE,
    REVISION_DAYS,
    STALE_IMAGE,
    SUBSCRIPTION,
    app_fqdn,
    local_state,
)

TOKEN = "arm-test-token"
GROUP_PATH = f"/subscriptions/{SUBSCRIPTION}/resourcegroups"
ORDERS = f"{GROUP_PATH}/{HEALTHY_GROUP}/providers/microsoft.app/containerapps/orders"


class StaticToken:
    """The smallest TokenCredential: azure-core 1.41 calls get_token_info only when a credential has it."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, claims=None, tenant_id=None, enable_cae=False, **kwargs) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


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


@pytest.fixture
def ca_file(pki):
    return pki[2]


@pytest.fixture
def apps(arm, ca_file):
    with make_apps(arm, ca_file) as client:
        yield client


@pytest.fixture
def web(arm, ca_file):
    with WebSiteManagementClient(StaticToken(TOKEN), SUBSCRIPTION, base_url=arm.url, connection_verify=ca_file) as c:
        yield c


def make_apps(arm, ca_file, token=TOKEN, **kwargs):
    return ContainerAppsAPIClient(
        StaticToken(token), SUBSCRIPTION, base_url=arm.url, connection_verify=ca_file, **kwargs
    )


def raw(arm, ca_file, method, path, body=None, headers=None):
    """A plain HTTPS request (stdlib), for what the SDKs never send: control endpoints, missing headers, writes."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(arm.url + path, data=data, method=method, headers=headers or {})
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def arm_error(error: HttpResponseError) -> tuple[str | None, str | None]:
    """The ARM error body as the SDK parsed it (ARMErrorFormat): (code, message)."""
    assert error.error is not None
    return error.error.code, error.error.message


def response_header(error: HttpResponseError, name: str) -> str:
    # azure-core types .response as a union of its response classes; all of them have headers.
    return str(cast(Any, error.response).headers[name])


# --- Container Apps ---------------------------------------------------------------------------------------------------


def test_port_zero_gives_a_real_port_and_an_https_url(arm):
    assert arm.port > 0
    assert arm.url == f"https://localhost:{arm.port}"


def test_single_revision_app_as_the_sdk_sees_it(apps, arm):
    app = apps.container_apps.get(HEALTHY_GROUP, "orders")
    assert (
        app.id
        == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{HEALTHY_GROUP}/providers/Microsoft.App/containerApps/orders"
    )
    assert (app.name, app.type, app.location) == ("orders", "Microsoft.App/containerApps", "West Europe")
    assert app.provisioning_state == "Succeeded"
    assert app.running_status == "Running"
    assert app.latest_revision_name == app.latest_ready_revision_name == "orders--v7"
    assert app.configuration.active_revisions_mode == "Single"
    [traffic] = app.configuration.ingress.traffic
    assert (traffic.latest_revision, traffic.weight, traffic.revision_name) == (True, 100, None)
    [container] = app.template.containers
    assert (container.name, container.image) == ("api", RELEASED_IMAGE)
    assert (app.template.scale.min_replicas, app.template.scale.max_replicas) == (1, 5)
    # The api-version the SDK sends, as the server recorded it.
    assert arm.requests()["log"][-1] == {"method": "GET", "path": ORDERS, "api_version": "2026-07-01", "status": 200}


def test_multiple_revision_app_with_an_80_20_split(apps):
    app = apps.container_apps.get(HEALTHY_GROUP, "pricing")
    assert app.configuration.active_revisions_mode == "Multiple"
    split = [(t.revision_name, t.weight, t.latest_revision) for t in app.configuration.ingress.traffic]
    assert split == [("pricing--v12", 80, None), ("pricing--v11", 20, None)]
    assert app.latest_revision_name == "pricing--v12"
    revisions = {r.name: r for r in apps.container_apps_revisions.list_revisions(HEALTHY_GROUP, "pricing")}
    assert {name: (r.traffic_weight, r.health_state, r.running_state) for name, r in revisions.items()} == {
        "pricing--v12": (80, "Healthy", "Running"),
        "pricing--v11": (20, "Healthy", "Running"),
    }


def test_get_revision(apps):
    revision = apps.container_apps_revisions.get_revision(HEALTHY_GROUP, "orders", "orders--v7")
    assert revision.type == "Microsoft.App/containerApps/revisions"
    assert (revision.provisioning_state, revision.health_state, revision.running_state) == (
        "Provisioned",
        "Healthy",
        "Running",
    )
    assert (revision.replicas, revision.active, revision.traffic_weight) == (2, True, 100)
    assert revision.template.containers[0].image == RELEASED_IMAGE
    assert revision.template.scale.min_replicas == 1
    assert revision.provisioning_error is None
    assert isinstance(revision.created_time, dt.datetime)


def test_list_revisions_follows_next_links(arm, ca_file):
    arm.set_state({**local_state(), "page_size": 1})
    with make_apps(arm, ca_file) as client:
        pages = [
            [r.name for r in page]
            for page in client.container_apps_revisions.list_revisions(HEALTHY_GROUP, "orders").by_page()
        ]
    assert pages == [["orders--v7"], ["orders--v6"]]
    assert arm.count(f"{ORDERS}/revisions") == 2
    # The SDK re-sends the nextLink with its own api-version.
    assert [e["api_version"] for e in arm.requests()["log"]] == ["2026-07-01", "2026-07-01"]


def test_inactive_revision(apps):
    old = apps.container_apps_revisions.get_revision(HEALTHY_GROUP, "orders", "orders--v6")
    assert (old.active, old.replicas, old.traffic_weight, old.health_state, old.running_state) == (
        False,
        0,
        0,
        "None",
        "Stopped",
    )


def test_failed_revision_carries_its_provisioning_error(apps):
    app = apps.container_apps.get(BROKEN_GROUP, "orders-crashing")
    assert app.provisioning_state == "Succeeded"  # the classic: ARM says the deploy succeeded
    assert (app.latest_revision_name, app.latest_ready_revision_name) == ("orders-crashing--v8", "orders-crashing--v7")
    revision = apps.container_apps_revisions.get_revision(BROKEN_GROUP, "orders-crashing", app.latest_revision_name)
    assert (revision.provisioning_state, revision.health_state, revision.running_state) == (
        "Failed",
        "Unhealthy",
        "Failed",
    )
    assert revision.provisioning_error == CRASH_MESSAGE
    assert revision.provisioning_error.startswith("ContainerCrashing: ")
    assert revision.replicas == 0


def test_provisioning_becomes_provisioned_after_three_gets(apps, arm):
    get = apps.container_apps_revisions.get_revision
    seen = [get(BROKEN_GROUP, "orders-provisioning", "orders-provisioning--v8") for _ in range(PROVISIONING_GETS + 2)]
    assert [r.provisioning_state for r in seen] == ["Provisioning"] * 3 + ["Provisioned"] * 2
    assert [r.health_state for r in seen] == ["None"] * 3 + ["Healthy"] * 2
    assert [r.running_state for r in seen] == ["Processing"] * 3 + ["Running"] * 2
    assert [r.replicas for r in seen] == [0, 0, 0, 1, 1]
    # The old revision follows the new one's clock: it hands over the traffic at the same moment.
    old = get(BROKEN_GROUP, "orders-provisioning", "orders-provisioning--v7")
    assert (old.active, old.traffic_weight) == (False, 0)
    # The app has its own clock: InProgress for three GETs, then Succeeded with the new revision ready.
    states = [apps.container_apps.get(BROKEN_GROUP, "orders-provisioning") for _ in range(PROVISIONING_GETS + 1)]
    assert [a.provisioning_state for a in states] == ["InProgress"] * 3 + ["Succeeded"]
    assert [a.latest_ready_revision_name for a in states] == ["orders-provisioning--v7"] * 3 + [
        "orders-provisioning--v8"
    ]


def test_lists_show_the_sequence_without_advancing_it(apps):
    def listed():
        revisions = apps.container_apps_revisions.list_revisions(BROKEN_GROUP, "orders-provisioning")
        return {r.name: r.provisioning_state for r in revisions}["orders-provisioning--v8"]

    assert [listed() for _ in range(5)] == ["Provisioning"] * 5
    for _ in range(PROVISIONING_GETS + 1):
        apps.container_apps_revisions.get_revision(BROKEN_GROUP, "orders-provisioning", "orders-provisioning--v8")
    assert listed() == "Provisioned"


def test_state_reset_restarts_sequences(apps, arm):
    get = apps.container_apps_revisions.get_revision
    for _ in range(PROVISIONING_GETS + 1):
        get(BROKEN_GROUP, "orders-provisioning", "orders-provisioning--v8")
    arm.set_state(local_state())
    assert get(BROKEN_GROUP, "orders-provisioning", "orders-provisioning--v8").provisioning_state == "Provisioning"


def test_broken_container_apps(apps):
    def app(name):
        return apps.container_apps.get(BROKEN_GROUP, name)

    def latest_revision(name):
        latest = app(name).latest_revision_name
        return apps.container_apps_revisions.get_revision(BROKEN_GROUP, name, latest)

    traffic = app("orders-old-traffic").configuration.ingress.traffic
    assert [(t.revision_name, t.weight) for t in traffic] == [
        ("orders-old-traffic--v6", 100),
        ("orders-old-traffic--v7", 0),
    ]
    assert app("orders-old-traffic").latest_revision_name == "orders-old-traffic--v7"
    assert latest_revision("orders-old-traffic").traffic_weight == 0
    assert app("orders-stale-image").template.containers[0].image == STALE_IMAGE
    assert latest_revision("orders-stale-image").template.containers[0].image == STALE_IMAGE
    assert app("orders-failed").provisioning_state == "Failed"
    unhealthy = latest_revision("orders-unhealthy")
    assert (unhealthy.provisioning_state, unhealthy.health_state, unhealthy.running_state) == (
        "Provisioned",
        "Unhealthy",
        "Degraded",
    )
    assert (unhealthy.replicas, unhealthy.template.scale.min_replicas) == (0, 1)


# --- Function Apps ----------------------------------------------------------------------------------------------------


def test_function_app_site(web, arm):
    site = web.web_apps.get(HEALTHY_GROUP, "orders-events")
    assert (site.name, site.type, site.kind, site.state) == (
        "orders-events",
        "Microsoft.Web/sites",
        "functionapp,linux",
        "Running",
    )
    assert site.default_host_name == "orders-events.azurewebsites.net"
    assert arm.requests()["log"][-1]["api_version"] == "2025-05-01"


def test_deployments_newest_first_with_kudu_fields(web):
    latest, previous = list(web.web_apps.list_deployments(HEALTHY_GROUP, "orders-events"))
    assert (latest.status, latest.active, latest.author, latest.deployer) == (4, True, "ci", "ZipDeploy")
    assert FUNCTIONS_VERSION in latest.message
    assert latest.start_time < latest.end_time
    assert latest.end_time.tzinfo is not None
    # Kudu's `complete` and `id` are not in the SDK model: they stay reachable as mapping keys of properties.
    assert latest.properties["complete"] is True
    assert latest.properties["id"] == latest.name
    assert latest.type == "Microsoft.Web/sites/deployments"
    assert (previous.status, previous.active) == (4, False)
    assert FUNCTIONS_PREVIOUS_VERSION in previous.message
    assert previous.end_time < latest.start_time


def test_functions_listed(web):
    functions = list(web.web_apps.list_functions(HEALTHY_GROUP, "orders-events"))
    assert [f.name for f in functions] == [
        "orders-events/OrderCreated",
        "orders-events/OrderShipped",
        "orders-events/Health",
    ]
    assert functions[0].type == "Microsoft.Web/sites/functions"
    assert functions[0].config["bindings"][0]["type"] == "serviceBusTrigger"
    assert functions[2].invoke_url_template == "https://orders-events.azurewebsites.net/api/health"
    assert functions[0].is_disabled is False


def test_no_functions_is_an_empty_list(web):
    assert list(web.web_apps.list_functions(BROKEN_GROUP, "events-no-functions")) == []
    [deployment] = web.web_apps.list_deployments(BROKEN_GROUP, "events-no-functions")
    assert (deployment.status, deployment.active, deployment.properties["complete"]) == (4, True, True)


def test_broken_function_apps(web):
    [failed, good] = web.web_apps.list_deployments(BROKEN_GROUP, "events-failed-deploy")
    assert (failed.status, failed.active, failed.properties["complete"]) == (3, False, True)
    assert failed.message.startswith(f"events-failed-deploy {FUNCTIONS_VERSION}: Deployment Failed.")
    assert (good.status, good.active) == (4, True)
    assert web.web_apps.get(BROKEN_GROUP, "events-stopped").state == "Stopped"
    [old] = web.web_apps.list_deployments(BROKEN_GROUP, "events-old-version")
    assert (old.status, old.active) == (4, True)
    assert FUNCTIONS_PREVIOUS_VERSION in old.message
    assert FUNCTIONS_VERSION not in old.message


# --- ARM errors -------------------------------------------------------------------------------------------------------


def test_unknown_app_is_resource_not_found_with_arms_message(apps):
    with pytest.raises(ResourceNotFoundError) as caught:
        apps.container_apps.get(HEALTHY_GROUP, "nope")
    error = caught.value
    assert error.status_code == 404
    assert arm_error(error)[0] == "ResourceNotFound"
    expected = (
        f"The Resource 'Microsoft.App/containerApps/nope' under resource group '{HEALTHY_GROUP}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )
    assert arm_error(error)[1] == expected
    assert str(error) == f"(ResourceNotFound) {expected}\nCode: ResourceNotFound\nMessage: {expected}"


def test_unknown_revision_group_and_site(apps, web):
    with pytest.raises(ResourceNotFoundError) as caught:
        apps.container_apps_revisions.get_revision(HEALTHY_GROUP, "orders", "orders--v99")
    assert str(arm_error(caught.value)[1]).startswith(
        f"The Resource 'Microsoft.App/containerApps/orders/revisions/orders--v99' under resource group '{HEALTHY_GROUP}'"
    )
    with pytest.raises(ResourceNotFoundError) as caught:
        list(apps.container_apps_revisions.list_revisions(HEALTHY_GROUP, "nope"))
    assert "'Microsoft.App/containerApps/nope'" in str(arm_error(caught.value)[1])
    with pytest.raises(ResourceNotFoundError) as caught:
        apps.container_apps.get("rg-missing", "orders")
    assert arm_error(caught.value) == (
        "ResourceGroupNotFound",
        "Resource group 'rg-missing' could not be found.",
    )
    with pytest.raises(ResourceNotFoundError) as caught:
        web.web_apps.get(HEALTHY_GROUP, "nope")
    assert str(arm_error(caught.value)[1]).startswith("The Resource 'Microsoft.Web/sites/nope' under resource group")


def test_wrong_token_is_client_authentication_error_without_retries(arm, ca_file):
    with make_apps(arm, ca_file, token="stolen") as client, pytest.raises(ClientAuthenticationError) as caught:
        client.container_apps.get(HEALTHY_GROUP, "orders")
    error = caught.value
    assert error.status_code == 401
    assert arm_error(error) == ("InvalidAuthenticationToken", "The access token is invalid.")
    assert response_header(error, "WWW-Authenticate").startswith('Bearer authorization_uri="')
    assert arm.count(ORDERS) == 1


def test_missing_authorization_and_api_version(arm, ca_file):
    status, headers, body = raw(arm, ca_file, "GET", f"{ORDERS}?api-version=2026-07-01")
    assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
    assert "WWW-Authenticate" in headers
    status, _, body = raw(arm, ca_file, "GET", ORDERS, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (status, body) == (
        400,
        {
            "error": {
                "code": "MissingApiVersionParameter",
                "message": "The api-version query parameter (?api-version=) is required for all requests.",
            }
        },
    )


def test_writes_other_than_a_container_app_update_are_refused(arm, ca_file):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, _, body = raw(arm, ca_file, "PUT", f"{ORDERS}?api-version=2026-07-01", body={}, headers=auth)
    assert (status, body["error"]["code"]) == (405, "MethodNotAllowed")
    revision = f"{ORDERS}/revisions/orders--v7?api-version=2026-07-01"
    status, _, body = raw(arm, ca_file, "PATCH", revision, body={}, headers=auth)
    assert (status, body["error"]["code"]) == (405, "MethodNotAllowed")
    assert arm.requests()["log"][-1]["method"] == "PATCH"


def test_container_app_update_merges_the_patch_and_answers_the_app(arm, ca_file):
    """ContainerApps_Update (the drill's traffic switch): objects merge, arrays replace, 200 with the app."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    traffic = [{"revisionName": "orders--v6", "weight": 100}]
    patch = {"properties": {"configuration": {"ingress": {"traffic": traffic}}}}
    status, _, body = raw(arm, ca_file, "PATCH", f"{ORDERS}?api-version=2026-07-01", body=patch, headers=auth)
    assert status == 200
    assert body["properties"]["configuration"]["ingress"]["traffic"] == traffic
    assert body["properties"]["provisioningState"] == "Succeeded"  # untouched keys stay
    _, _, again = raw(arm, ca_file, "GET", f"{ORDERS}?api-version=2026-07-01", headers=auth)
    assert again["properties"]["configuration"]["ingress"]["traffic"] == traffic
    status, _, body = raw(arm, ca_file, "PATCH", f"{ORDERS}?api-version=2026-07-01", body=[1], headers=auth)
    assert (status, body["error"]["code"]) == (400, "InvalidRequestContent")


# --- faults -----------------------------------------------------------------------------------------------------------


def test_429_retry_after_is_honoured(arm, ca_file):
    arm.set_faults([{"prefix": ORDERS, "status": 429, "retry_after": 1, "times": 2}])
    with make_apps(arm, ca_file, retry_total=3) as client:
        started = time.monotonic()
        app = client.container_apps.get(HEALTHY_GROUP, "orders")
        elapsed = time.monotonic() - started
    assert app.name == "orders"
    assert arm.count(ORDERS) == 3
    assert [e["status"] for e in arm.requests()["log"]] == [429, 429, 200]
    assert 2.0 <= elapsed < 3.5  # two Retry-After waits of 1 s, not the exponential backoff


def test_429_when_retries_run_out(arm, ca_file):
    arm.set_faults([{"prefix": ORDERS, "status": 429, "retry_after": 1}])
    with make_apps(arm, ca_file, retry_total=1) as client, pytest.raises(HttpResponseError) as caught:
        client.container_apps.get(HEALTHY_GROUP, "orders")
    error = caught.value
    assert type(error) is HttpResponseError
    assert error.status_code == 429
    assert arm_error(error)[0] == "SubscriptionRequestsThrottled"
    assert response_header(error, "Retry-After") == "1"
    assert arm.count(ORDERS) == 2


def test_500_is_retried(arm, ca_file):
    arm.set_faults([{"prefix": ORDERS, "status": 500, "times": 1}])
    with make_apps(arm, ca_file, retry_total=2, retry_backoff_factor=0.05) as client:
        assert client.container_apps.get(HEALTHY_GROUP, "orders").name == "orders"
    assert [e["status"] for e in arm.requests()["log"]] == [500, 200]


def test_500_without_retries(arm, ca_file):
    arm.set_faults([{"prefix": ORDERS, "status": 500}])
    with make_apps(arm, ca_file, retry_total=0) as client, pytest.raises(HttpResponseError) as caught:
        client.container_apps.get(HEALTHY_GROUP, "orders")
    assert caught.value.status_code == 500
    assert arm_error(caught.value)[0] == "InternalServerError"
    assert str(caught.value).startswith("(InternalServerError) Encountered internal server error.")


def test_401_fault_on_every_request(arm, web):
    arm.set_faults([{"prefix": "", "status": 401}])
    with pytest.raises(ClientAuthenticationError) as caught:
        web.web_apps.get(HEALTHY_GROUP, "orders-events")
    assert arm_error(caught.value)[0] == "InvalidAuthenticationToken"


def test_fault_prefix_only_hits_its_subtree(arm, apps):
    arm.set_faults([{"prefix": f"{ORDERS}/revisions", "status": 500}])
    assert apps.container_apps.get(HEALTHY_GROUP, "orders").name == "orders"
    with pytest.raises(HttpResponseError):
        apps.container_apps_revisions.get_revision(HEALTHY_GROUP, "orders", "orders--v7", retry_total=0)


def test_slow_answer_times_out_on_read_timeout(arm, apps):
    arm.set_faults([{"prefix": ORDERS, "delay": 3}])
    started = time.monotonic()
    with pytest.raises(ServiceResponseTimeoutError) as caught:
        apps.container_apps.get(HEALTHY_GROUP, "orders", read_timeout=0.3, retry_total=0)
    assert time.monotonic() - started < 2
    assert isinstance(caught.value, ServiceResponseError)
    assert "Read timed out. (read timeout=0.3)" in str(caught.value)


def test_slow_answer_arrives_within_a_larger_timeout(arm, apps):
    arm.set_faults([{"prefix": ORDERS, "delay": 0.5, "times": 1}])
    started = time.monotonic()
    app = apps.container_apps.get(HEALTHY_GROUP, "orders", connection_timeout=2, read_timeout=5)
    assert app.name == "orders"
    assert time.monotonic() - started >= 0.5


# --- control endpoints and lifecycle ----------------------------------------------------------------------------------


def test_control_endpoints_over_http(arm, ca_file, apps):
    custom = {
        "resources": {
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-x/providers/Microsoft.App/containerApps/solo": {
                "location": "West Europe",
                "properties": {"provisioningState": "Succeeded", "latestRevisionName": "solo--a"},
            }
        }
    }
    assert raw(arm, ca_file, "POST", "/_testbed/state", body=custom)[:3:2] == (200, {"resources": 1})
    app = apps.container_apps.get("rg-x", "solo")
    assert (app.name, app.type, app.latest_revision_name) == ("solo", "Microsoft.App/containerApps", "solo--a")

    status, _, body = raw(arm, ca_file, "POST", "/_testbed/faults", body=[{"status": 503, "times": 1}])
    assert (status, body["faults"]) == (
        200,
        [{"prefix": "", "status": 503, "delay": 0.0, "times": 1}],  # Retry-After only when given, but for a 429
    )
    with pytest.raises(HttpResponseError) as caught:
        apps.container_apps.get("rg-x", "solo", retry_total=0)
    assert caught.value.status_code == 503

    status, _, counted = raw(arm, ca_file, "GET", "/_testbed/requests")
    path = f"{GROUP_PATH}/rg-x/providers/microsoft.app/containerapps/solo"
    assert (status, counted["total"], counted["by_path"]) == (200, 2, {path: 2})
    assert raw(arm, ca_file, "DELETE", "/_testbed/requests")[0] == 200
    assert arm.requests()["total"] == 0

    status, _, body = raw(arm, ca_file, "POST", "/_testbed/faults", body={"faults": [{"colour": "red"}]})
    assert status == 400
    assert body["error"]["message"].startswith("unknown fault keys ['colour']")


def test_stop_ends_keep_alive_connections_and_waiting_requests(pki, ca_file):
    chain, key, _ = pki
    arm = ArmServer(0, chain, key, local_state(), TOKEN)
    arm.start()
    port = arm.port
    client = make_apps(arm, ca_file)
    client.container_apps.get(HEALTHY_GROUP, "orders")  # leaves a keep-alive connection in the pool
    arm.set_faults([{"prefix": ORDERS, "delay": 30}])
    outcome = []

    def wait_for_the_slow_answer():
        try:
            client.container_apps.get(HEALTHY_GROUP, "orders", retry_total=0)
        except Exception as exc:  # noqa: BLE001 - the assertion below names the one type expected
            outcome.append(exc)

    waiting = threading.Thread(target=wait_for_the_slow_answer, daemon=True)
    waiting.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert any(t.name == f"arm-connection:{port}" for t in threading.enumerate())
    arm.stop()
    assert time.monotonic() - started < 3
    waiting.join(timeout=5)
    client.close()
    # The server hung up on the waiting request instead of answering it.
    assert [type(e) for e in outcome] == [ServiceResponseError]
    assert [t.name for t in threading.enumerate() if t.name.endswith(f":{port}")] == []
    # The port stays known after stop(): a client aimed at it now meets a refused connection.
    assert arm.url == f"https://localhost:{port}"
    with make_apps(arm, ca_file) as late, pytest.raises(ServiceRequestError):
        late.container_apps.get(HEALTHY_GROUP, "orders", retry_total=0)


# --- app settings, raw bodies, and the words of a 403 -------------------------------------------------------------

EVENTS = f"{GROUP_PATH}/{HEALTHY_GROUP}/providers/microsoft.web/sites/orders-events"


def test_app_settings_are_listed_by_their_action_only(web, arm, ca_file):
    """WebApps_ListApplicationSettings (POST .../config/appsettings/list) answers a StringDictionary; no GET serves
    the settings, as in ARM, where reading them is an action of its own."""
    settings = web.web_apps.list_application_settings(HEALTHY_GROUP, "orders-events")
    assert (settings.name, settings.type) == ("appsettings", "Microsoft.Web/sites/config")
    assert settings.properties["APP_VERSION"] == FUNCTIONS_VERSION
    assert settings.properties["WEBSITE_RUN_FROM_PACKAGE"].startswith(
        f"https://stevents.blob.core.windows.net/packages/orders-events-{FUNCTIONS_VERSION}.zip?"
    )
    assert arm.requests()["log"][-1]["method"] == "POST"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, _, body = raw(arm, ca_file, "GET", f"{EVENTS}/config/appsettings?api-version=2025-05-01", headers=auth)
    assert status == 404
    assert "APP_VERSION" not in json.dumps(body)
    status, _, body = raw(arm, ca_file, "GET", f"{EVENTS}?api-version=2025-05-01", headers=auth)
    assert status == 200
    assert "AccountKey" not in json.dumps(body)  # `_appsettings` is the testbed's own key: never served


def test_a_raw_body_fault_reaches_the_sdk_as_the_sdk_parses_it(arm, apps):
    """A proxy's HTML page with 200: the SDK raises a bare JSONDecodeError (checks.transports.arm turns it into an
    ERROR that says what came back)."""
    arm.set_faults([{"prefix": ORDERS, "body": "<html><title>Proxy login</title></html>", "times": 1}])
    with pytest.raises(json.JSONDecodeError):
        apps.container_apps.get(HEALTHY_GROUP, "orders", retry_total=0)
    assert arm.requests()["log"][-1]["status"] == 200
    assert apps.container_apps.get(HEALTHY_GROUP, "orders").name == "orders"  # times: 1


def test_authorization_failed_names_the_action_and_the_scope(arm, web):
    arm.set_faults([{"prefix": "", "status": 403}])
    with pytest.raises(HttpResponseError) as caught:
        web.web_apps.get(HEALTHY_GROUP, "orders-events", retry_total=0)
    code, message = arm_error(caught.value)
    assert code == "AuthorizationFailed"
    assert "perform action 'Microsoft.Web/sites/read' over scope '" in str(message)
    assert str(message).endswith(
        "or the scope is invalid. If access was recently granted, please refresh your credentials."
    )
    with pytest.raises(HttpResponseError) as caught:
        web.web_apps.list_application_settings(HEALTHY_GROUP, "orders-events", retry_total=0)
    assert "'Microsoft.Web/sites/config/list/action' over scope" in str(arm_error(caught.value)[1])
    assert f"{EVENTS}/config/appsettings'" in str(arm_error(caught.value)[1]).lower()


def test_retry_after_is_sent_for_any_status_when_given(arm, apps):
    arm.set_faults([{"prefix": ORDERS, "status": 503, "retry_after": 7}])
    with pytest.raises(HttpResponseError) as caught:
        apps.container_apps.get(HEALTHY_GROUP, "orders", retry_total=0)
    assert (caught.value.status_code, response_header(caught.value, "Retry-After")) == (503, "7")
    arm.set_faults([{"prefix": ORDERS, "status": 500}])
    with pytest.raises(HttpResponseError) as caught:
        apps.container_apps.get(HEALTHY_GROUP, "orders", retry_total=0)
    assert "Retry-After" not in cast(Any, caught.value.response).headers


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ({"status": 200}, "a fault's status is an HTTP error status (4xx, 5xx; 2xx too with a body), got 200"),
        (
            {"body": "x", "status": 100},
            "a fault's status is an HTTP error status (4xx, 5xx; 2xx too with a body), got 100",
        ),
        ({"prefix": "/x"}, "a fault needs a status, a body or a delay: {'prefix': '/x'}"),
    ],
)
def test_faults_are_validated(arm, fault, problem):
    with pytest.raises(ValueError) as caught:
        arm.set_faults([fault])
    assert str(caught.value) == problem


# --- API Management ---------------------------------------------------------------------------------------------------

APIM = f"{GROUP_PATH}/{HEALTHY_GROUP}/providers/microsoft.apimanagement/service/{APIM_SERVICE}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def apim(arm, ca_file):
    with ApiManagementClient(StaticToken(TOKEN), SUBSCRIPTION, base_url=arm.url, connection_verify=ca_file) as c:
        yield c


def test_apim_service_as_the_sdk_sees_it(apim, arm):
    service = apim.api_management_service.get(HEALTHY_GROUP, APIM_SERVICE)
    assert (service.name, service.type, service.provisioning_state) == (
        APIM_SERVICE,
        "Microsoft.ApiManagement/service",
        "Succeeded",
    )
    assert (service.sku.name, service.sku.capacity, service.gateway_url) == (
        "Developer",
        1,
        "https://apim-demo.azure-api.net",
    )
    # The api-version azure-mgmt-apimanagement 5.0.0 sends.
    assert arm.requests()["log"][-1] == {"method": "GET", "path": APIM, "api_version": "2024-05-01", "status": 200}


def test_current_and_other_revisions_of_an_api(apim, arm):
    current = apim.api.get(HEALTHY_GROUP, APIM_SERVICE, "orders")
    assert (current.name, current.api_revision, current.is_current, current.is_online) == ("orders", "3", True, True)
    assert current.service_url == f"https://{app_fqdn('orders')}/api"
    older = apim.api.get(HEALTHY_GROUP, APIM_SERVICE, "orders;rev=2")  # the SDK sends orders%3Brev%3D2
    assert (older.name, older.api_revision, older.is_current) == ("orders;rev=2", "2", False)
    assert arm.requests()["log"][-1]["path"] == f"{APIM}/apis/orders;rev=2"


def test_revisions_are_derived_from_the_revision_documents(apim):
    revisions = list(apim.api_revision.list_by_service(HEALTHY_GROUP, APIM_SERVICE, "orders"))
    assert [(r.api_revision, r.is_current, r.is_online) for r in revisions] == [
        ("1", False, True),
        ("2", False, True),
        ("3", True, True),
    ]
    assert revisions[2].api_id.endswith("/service/apim-demo/apis/orders;rev=3")
    assert revisions[0].private_url == "/orders;rev=1"  # how the gateway reaches a revision that is not current
    assert revisions[2].private_url is None
    # `_revision` times, one REVISION_DAYS apart, the current one the newest.
    assert revisions[2].created_date_time - revisions[1].created_date_time == dt.timedelta(days=REVISION_DAYS)


def test_releases_with_and_without_a_revision_in_their_api_id(apim):
    releases = {r.name: r for r in apim.api_release.list_by_service(HEALTHY_GROUP, APIM_SERVICE, "orders")}
    assert sorted(releases) == ["orders-3-3-9", "orders-3-4-0"]
    newest = releases["orders-3-4-0"]
    assert newest.api_id.endswith("/apis/orders;rev=3")
    assert newest.notes == f"orders {APIM_VERSION}: order history endpoint"
    assert isinstance(newest.created_date_time, dt.datetime)
    [pricing] = apim.api_release.list_by_service(HEALTHY_GROUP, APIM_SERVICE, "pricing")
    assert pricing.api_id is None  # as the spec's ListApiReleases example: no apiId


def test_operations_and_an_api_without_any(apim):
    operations = list(apim.api_operation.list_by_api(HEALTHY_GROUP, APIM_SERVICE, "orders"))
    assert [(o.name, o.method, o.url_template) for o in operations] == [
        ("list-orders", "GET", "/orders"),
        ("get-order", "GET", "/orders/{orderId}"),
        ("create-order", "POST", "/orders"),
    ]
    assert [p.name for p in operations[1].template_parameters] == ["orderId"]
    assert list(apim.api_operation.list_by_api(BROKEN_GROUP, APIM_BROKEN, "orders-no-operations")) == []


def test_apim_collections_page_by_top_and_skip_and_carry_the_count(apim, arm, ca_file):
    pages = [
        [o.name for o in page]
        for page in apim.api_operation.list_by_api(HEALTHY_GROUP, APIM_SERVICE, "orders", top=2).by_page()
    ]
    assert pages == [["list-orders", "get-order"], ["create-order"]]
    log = [e["path"] for e in arm.requests()["log"]]
    assert log == [f"{APIM}/apis/orders/operations"] * 2
    status, _, body = raw(
        arm, ca_file, "GET", f"{APIM}/apis/orders/operations?api-version=2024-05-01&$top=1&$skip=1", headers=AUTH
    )
    assert status == 200
    assert ([o["name"] for o in body["value"]], body["count"]) == (["get-order"], 3)
    assert body["nextLink"].endswith("/apis/orders/operations?api-version=2024-05-01&$top=1&$skip=2")
    status, _, body = raw(arm, ca_file, "GET", f"{APIM}/apis?api-version=2024-05-01&$top=0", headers=AUTH)
    assert (status, body["error"]["code"]) == (400, "InvalidQueryParameterValue")


def test_derived_revision_list_follows_next_links(arm, ca_file):
    arm.set_state({**local_state(), "page_size": 2})
    with ApiManagementClient(StaticToken(TOKEN), SUBSCRIPTION, base_url=arm.url, connection_verify=ca_file) as c:
        # typed Iterable by the SDK; it is an ItemPaged
        listed = cast(Any, c.api_revision.list_by_service(HEALTHY_GROUP, APIM_SERVICE, "orders"))
        pages = [[r.api_revision for r in page] for page in listed.by_page()]
    assert pages == [["1", "2"], ["3"]]
    assert arm.count(f"{APIM}/apis/orders/revisions") == 2


def test_unknown_api_and_service_are_resource_not_found(apim):
    with pytest.raises(ResourceNotFoundError) as api:
        apim.api.get(HEALTHY_GROUP, APIM_SERVICE, "nope")
    assert arm_error(api.value) == (
        "ResourceNotFound",
        "The Resource 'Microsoft.ApiManagement/service/apim-demo/apis/nope' under resource group 'rg-demo' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )
    with pytest.raises(ResourceNotFoundError) as service:
        list(apim.api_revision.list_by_service(HEALTHY_GROUP, "apim-nope", "orders"))
    assert "'Microsoft.ApiManagement/service/apim-nope'" in str(arm_error(service.value)[1])


def test_broken_apim_services_and_apis(apim):
    states = {
        name: apim.api_management_service.get(BROKEN_GROUP, name).provisioning_state
        for name in (APIM_BROKEN, APIM_UPDATING, APIM_FAILED)
    }
    assert states == {APIM_BROKEN: "Succeeded", APIM_UPDATING: "Updating", APIM_FAILED: "Failed"}
    apis = {a.name for a in apim.api.list_by_service(BROKEN_GROUP, APIM_BROKEN) if ";rev=" not in a.name}
    assert apis == set(BROKEN_APIS)
    assert apim.api.get(BROKEN_GROUP, APIM_BROKEN, "orders-offline").is_online is False
    not_current = apim.api_revision.list_by_service(BROKEN_GROUP, APIM_BROKEN, "orders-not-current")
    assert sorted((r.api_revision, r.is_current) for r in not_current) == [("1", False), ("2", True), ("3", False)]


def test_403_on_an_api_names_the_apim_action(arm, apim):
    arm.set_faults([{"prefix": f"{APIM}/apis/orders/releases", "status": 403}])
    with pytest.raises(HttpResponseError) as refused:
        list(apim.api_release.list_by_service(HEALTHY_GROUP, APIM_SERVICE, "orders"))
    code, message = arm_error(refused.value)
    assert code == "AuthorizationFailed"
    assert "perform action 'Microsoft.ApiManagement/service/apis/releases/read' over scope" in str(message)
