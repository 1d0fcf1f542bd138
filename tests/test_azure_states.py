"""Table-driven state tests of the Azure predicates, with the real SDKs against the ARM test server.

Each row is one state built from the published shapes (ContainerApps_Get, Revisions_Get and Revisions_List of
Microsoft.App 2025-07-01; Microsoft.Web sites, sites/deployments, sites/functions, config/appsettings/list), not
from the testbed's scenes, and asserts the verdict and the message. The dimensions:

Container App (`containerapp`): the app's provisioningState (5 documented values, absent, undocumented, casing) and
runningStatus (5, absent, undocumented); latestRevisionName vs latestReadyRevisionName; the latest revision's
provisioningState (5, absent, undocumented), runningState (6 + RunningAtMaxScale, absent, undocumented),
healthState (3, absent, undocumented), active, replicas vs minReplicas (absent too); activeRevisionsMode (Single,
Multiple, absent) and the ingress traffic entries (revisionName, latestRevision, label, weight; no ingress); every
other revision that takes traffic; the containers of the template (one, a sidecar first, several, init).

Function App (`functionapp`): the site's state (Running, Stopped, absent, other), enabled, availabilityState (3,
undocumented), usageState (2); the deployments (none, by start_time, without start_time; Kudu status 0-6, absent,
not an integer; without Kudu's `complete`); the version in each source (deployment message, app setting, tag,
package URL): exact, a pre-release, a longer number, a "v" prefix, several, none; the functions (none, all
disabled, some disabled). App settings must never reach a message or an attachment.

ARM answers (`arm`): 200 with HTML, an empty body, JSON of another shape; 401 (invalid, expired), 403 on a read
and on the app settings action, 404 of the subscription, the group and the app, 409, 412, 5xx with and without
Retry-After, and a credential that cannot get a token.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.web import WebSiteManagementClient

from deploy_verify.checks.containerapps import AppExpectation, AppRef, check_container_app
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.functionapps import VersionSource, check_function_app
from deploy_verify.checks.images import ImageExpectation
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.transports.arm import token_env_credential
from deploy_verify.clients import StaticToken
from testbed.arm import ArmServer

TOKEN = "arm-states-token-51c0"
SUB = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"  # the subscription of the spec's examples
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg"
APP_ID = f"{GROUP}/providers/Microsoft.App/containerApps/web"
SITE_ID = f"{GROUP}/providers/Microsoft.Web/sites/events"
IMAGE = "repo/web:3.4.0"
GONE = object()  # an override that removes the key: the field is absent from ARM's answer

Json = dict[str, Any]


# --- spec-shaped documents -------------------------------------------------------------------------------------


def revision(name: str, image: str = IMAGE, **properties: Any) -> Json:
    """Revisions_Get/Revisions_List's shape, with the three states a revision reports."""
    body: Json = {
        "createdTime": "2026-11-30T21:24:22+00:00",
        "lastActiveTime": "2026-11-30T21:24:22+00:00",
        "fqdn": f"{name}.politehill-ab123456.eastus.azurecontainerapps.io",
        "template": {
            "containers": [{"image": image, "name": "web", "resources": {"cpu": 0.2, "memory": "100Mi"}}],
            "scale": {"minReplicas": 1, "maxReplicas": 5},
        },
        "trafficWeight": 100,
        "active": True,
        "replicas": 1,
        "provisioningState": "Provisioned",
        "runningState": "Running",
        "healthState": "Healthy",
    }
    return {
        "id": f"{APP_ID}/revisions/{name}",
        "name": name,
        "type": "Microsoft.App/containerApps/revisions",
        "properties": _override(body, properties),
    }


def container_app(latest: str = "web--b", ready: str | None = None, **properties: Any) -> Json:
    """ContainerApps_Get's shape (2025-07-01)."""
    body: Json = {
        "provisioningState": "Succeeded",
        "runningStatus": "Running",
        "managedEnvironmentId": f"{GROUP}/providers/Microsoft.App/managedEnvironments/demokube",
        "latestRevisionName": latest,
        "latestReadyRevisionName": ready or latest,
        "configuration": {
            "activeRevisionsMode": "Single",
            "ingress": {"external": True, "targetPort": 3000, "traffic": [{"latestRevision": True, "weight": 100}]},
        },
        "template": {
            "containers": [{"image": IMAGE, "name": "web", "resources": {"cpu": 0.5, "memory": "1Gi"}}],
            "scale": {"minReplicas": 1, "maxReplicas": 5},
        },
    }
    return {
        "id": APP_ID,
        "name": "web",
        "type": "Microsoft.App/containerApps",
        "location": "East US",
        "properties": _override(body, properties),
    }


def _override(body: Json, overrides: dict[str, Any]) -> Json:
    merged = copy.deepcopy(body)
    for key, value in overrides.items():
        if value is GONE:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _override(merged[key], value)
        else:
            merged[key] = value
    return merged


def state(app: Json, *revisions: Json) -> Json:
    return {"resources": {APP_ID: app, **{r["id"]: r for r in revisions}}}


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(pki):
    chain, key, _ = pki
    arm = ArmServer(0, chain, key, {"resources": {}}, TOKEN)
    arm.start()
    yield arm
    arm.stop()


@pytest.fixture
def arm(server):
    server.set_faults([])
    server.reset_requests()
    return server


def options(arm: ArmServer, pki: tuple[Any, Any, str]) -> dict[str, Any]:
    return {"base_url": arm.url, "connection_verify": pki[2], "logging_enable": False}


@pytest.fixture
def apps(arm, pki):
    with ContainerAppsAPIClient(StaticToken(TOKEN), SUB, **options(arm, pki)) as client:
        yield client


@pytest.fixture
def web(arm, pki):
    with WebSiteManagementClient(StaticToken(TOKEN), SUB, **options(arm, pki)) as client:
        yield client


def judge_app(apps, expected: AppExpectation | None = None, seconds: float = 20, **kw: Any) -> CheckResult:
    expected = expected or AppExpectation(image=ImageExpectation(version="3.4.0"))
    return check_container_app(apps, AppRef("rg", "web"), expected, Deadline.after(seconds, "test budget"), **kw)


PASS_B = "Succeeded; revision web--b Provisioned, Healthy, Running with 1 replicas; traffic 100% web--b; image repo/web:3.4.0"


# --- Container App: the app's own states -----------------------------------------------------------------------

APP_STATES = [
    ("succeeded", {}, Verdict.PASS, PASS_B),
    ("succeeded, lower case", {"provisioningState": "succeeded"}, Verdict.PASS, PASS_B),
    ("in progress", {"provisioningState": "InProgress"}, Verdict.FAIL, "app provisioningState InProgress"),
    ("failed", {"provisioningState": "Failed"}, Verdict.FAIL, "app provisioningState Failed"),
    ("canceled", {"provisioningState": "Canceled"}, Verdict.FAIL, "app provisioningState Canceled"),
    (
        "deleting",
        {"provisioningState": "Deleting"},
        Verdict.FAIL,
        "app provisioningState Deleting: the app is being deleted; it will not serve this release",
    ),
    (
        "no provisioningState",
        {"provisioningState": GONE},
        Verdict.ERROR,
        "ARM reported no properties.provisioningState: cannot tell whether the app provisioned",
    ),
    (
        "undocumented provisioningState",
        {"provisioningState": "Upgrading"},
        Verdict.ERROR,
        "app provisioningState 'Upgrading' is not one the API documents (InProgress, Succeeded, Failed, Canceled, "
        "Deleting): cannot tell its meaning",
    ),
    (
        "progressing",
        {"runningStatus": "Progressing"},
        Verdict.FAIL,
        "app runningStatus Progressing (between Stopped and Running)",
    ),
    (
        "stopped",
        {"runningStatus": "Stopped"},
        Verdict.FAIL,
        "app runningStatus Stopped: it runs no replicas; start it (az containerapp start) if it should serve this "
        "release",
    ),
    (
        "suspended",
        {"runningStatus": "Suspended"},
        Verdict.FAIL,
        "app runningStatus Suspended: it runs no replicas; start it (az containerapp start) if it should serve this "
        "release",
    ),
    (
        "ready (a job's state)",
        {"runningStatus": "Ready"},
        Verdict.ERROR,
        "app runningStatus Ready, which the API documents for Container Apps jobs only: cannot tell whether the app "
        "runs; is this component a job?",
    ),
    ("no runningStatus (older API)", {"runningStatus": GONE}, Verdict.PASS, PASS_B),
    (
        "undocumented runningStatus",
        {"runningStatus": "Hibernating"},
        Verdict.ERROR,
        "app runningStatus 'Hibernating' is not one the API documents (Progressing, Running, Stopped, Suspended, "
        "Ready): cannot tell its meaning",
    ),
    (
        "stopped while provisioning failed: the failure is named first",
        {"provisioningState": "Failed", "runningStatus": "Stopped"},
        Verdict.FAIL,
        "app provisioningState Failed",
    ),
    (
        "no latestRevisionName (as in the spec's ContainerApps_Get example)",
        {"latestRevisionName": GONE},
        Verdict.ERROR,
        "ARM reported no properties.latestRevisionName: cannot tell which revision is the latest",
    ),
]


@pytest.mark.states("containerapp")
@pytest.mark.parametrize(("case", "app", "verdict", "message"), APP_STATES, ids=[c[0] for c in APP_STATES])
def test_app_states(arm, apps, case, app, verdict, message):
    arm.set_state(state(container_app(**app), revision("web--b")))
    result = judge_app(apps)
    assert (result.verdict, result.message) == (verdict, message)
    if verdict is Verdict.ERROR:
        assert result.category is Category.UNDECIDED


# --- Container App: the latest revision's states ---------------------------------------------------------------

REVISION_STATES = [
    ("provisioned, healthy, running", {}, Verdict.PASS, PASS_B),
    (
        "running at max scale",
        {"runningState": "RunningAtMaxScale", "replicas": 5},
        Verdict.PASS,
        PASS_B.replace("1 replicas", "5 replicas"),
    ),
    (
        "provisioning",
        {"provisioningState": "Provisioning", "healthState": "None", "runningState": "Processing"},
        Verdict.FAIL,
        "revision web--b provisioningState Provisioning",
    ),
    (
        "failed, with ARM's error",
        {"provisioningState": "Failed", "provisioningError": "ContainerCrashing: exit code 1"},
        Verdict.FAIL,
        "revision web--b provisioningState Failed: ContainerCrashing: exit code 1",
    ),
    (
        "failed, no error given",
        {"provisioningState": "Failed"},
        Verdict.FAIL,
        "revision web--b provisioningState Failed: no provisioningError given",
    ),
    (
        "deprovisioning",
        {"provisioningState": "Deprovisioning"},
        Verdict.FAIL,
        "revision web--b provisioningState Deprovisioning: it is being taken down (deactivated, or its app deleted) "
        "and cannot serve",
    ),
    (
        "deprovisioned",
        {"provisioningState": "Deprovisioned"},
        Verdict.FAIL,
        "revision web--b provisioningState Deprovisioned: it is being taken down (deactivated, or its app deleted) "
        "and cannot serve",
    ),
    (
        "no provisioningState (as in the spec's Revisions_Get example)",
        {"provisioningState": GONE},
        Verdict.ERROR,
        "ARM reported no provisioningState for revision web--b: cannot tell whether it is ready",
    ),
    (
        "undocumented provisioningState",
        {"provisioningState": "Warming"},
        Verdict.ERROR,
        "revision web--b provisioningState 'Warming' is not one the API documents (Provisioning, Provisioned, "
        "Failed, Deprovisioning, Deprovisioned): cannot tell its meaning",
    ),
    (
        "inactive",
        {"active": False},
        Verdict.FAIL,
        "revision web--b is inactive (active: false): it runs no replicas and serves nothing; activate it (az "
        "containerapp revision activate) or send the traffic to an active revision",
    ),
    ("active not reported", {"active": GONE}, Verdict.PASS, PASS_B),
    (
        "processing",
        {"runningState": "Processing"},
        Verdict.FAIL,
        "revision web--b runningState Processing, healthState Healthy",
    ),
    (
        "stopped",
        {"runningState": "Stopped", "healthState": "None", "replicas": 0},
        Verdict.FAIL,
        "revision web--b is None, runningState Stopped, 0 replicas (minReplicas 1)",
    ),
    (
        "degraded",
        {"runningState": "Degraded", "healthState": "Unhealthy", "replicas": 0},
        Verdict.FAIL,
        "revision web--b is Unhealthy, runningState Degraded, 0 replicas (minReplicas 1)",
    ),
    (
        "running failed",
        {"runningState": "Failed", "healthState": "Unhealthy", "replicas": 0},
        Verdict.FAIL,
        "revision web--b is Unhealthy, runningState Failed, 0 replicas (minReplicas 1)",
    ),
    (
        "unknown: ARM cannot tell",
        {"runningState": "Unknown"},
        Verdict.ERROR,
        "revision web--b runningState Unknown: ARM cannot tell whether it runs; look at its replicas (az "
        "containerapp replica list --revision NAME)",
    ),
    (
        "no runningState",
        {"runningState": GONE},
        Verdict.ERROR,
        "ARM reported no runningState for revision web--b: cannot tell whether it runs healthy",
    ),
    (
        "undocumented runningState",
        {"runningState": "Activating"},
        Verdict.ERROR,
        "revision web--b runningState 'Activating' is not one the API documents (Running, RunningAtMaxScale, "
        "Processing, Stopped, Degraded, Failed, Unknown): cannot tell its meaning",
    ),
    (
        "unhealthy while running",
        {"healthState": "Unhealthy"},
        Verdict.FAIL,
        "revision web--b is Unhealthy, runningState Running, 1 replicas (minReplicas 1)",
    ),
    (
        "health not known yet",
        {"healthState": "None"},
        Verdict.FAIL,
        "revision web--b runningState Running, healthState None",
    ),
    (
        "no healthState",
        {"healthState": GONE},
        Verdict.ERROR,
        "ARM reported no healthState for revision web--b: cannot tell whether it runs healthy",
    ),
    (
        "undocumented healthState",
        {"healthState": "Sick"},
        Verdict.ERROR,
        "revision web--b healthState 'Sick' is not one the API documents (Healthy, Unhealthy, None): cannot tell its "
        "meaning",
    ),
    (
        "fewer replicas than minReplicas",
        {"replicas": 1, "template": {"scale": {"minReplicas": 3}}},
        Verdict.FAIL,
        "revision web--b runs 1 replicas, minReplicas 3",
    ),
    (
        "scaled to zero, as minReplicas 0 allows",
        {"replicas": 0, "template": {"scale": {"minReplicas": 0}}},
        Verdict.PASS,
        "Succeeded; revision web--b Provisioned, Healthy, Running with 0 replicas (scaled to zero: minReplicas 0); "
        "traffic 100% web--b; image repo/web:3.4.0",
    ),
    (
        "no replica count",
        {"replicas": GONE},
        Verdict.ERROR,
        "ARM reported no replica count for revision web--b: cannot tell whether it runs",
    ),
]


@pytest.mark.states("containerapp")
@pytest.mark.parametrize(("case", "props", "verdict", "message"), REVISION_STATES, ids=[c[0] for c in REVISION_STATES])
def test_latest_revision_states(arm, apps, case, props, verdict, message):
    arm.set_state(state(container_app(), revision("web--b", **props)))
    result = judge_app(apps)
    assert (result.verdict, result.message) == (verdict, message)


@pytest.mark.states("containerapp")
def test_new_revision_not_ready_while_the_old_one_serves(arm, apps):
    new = revision("web--c", provisioningState="Provisioning", runningState="Processing", healthState="None")
    arm.set_state(state(container_app(latest="web--c", ready="web--b"), revision("web--b"), new))
    result = judge_app(apps)
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "latest revision web--c is not ready yet (latest ready: web--b)",
    )


@pytest.mark.states("containerapp")
def test_new_revision_failed_while_the_old_one_serves(arm, apps):
    """The classic: the app says Succeeded, its new revision never started."""
    new = revision("web--c", provisioningState="Failed", provisioningError="ImagePullFailure: manifest unknown")
    arm.set_state(state(container_app(latest="web--c", ready="web--b"), revision("web--b"), new))
    result = judge_app(apps)
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "revision web--c provisioningState Failed: ImagePullFailure: manifest unknown",
    )


# --- Container App: waits ----------------------------------------------------------------------------------------


@pytest.mark.states("containerapp")
def test_deleting_ends_the_wait_at_once(arm, apps):
    arm.set_state(state(container_app(provisioningState="Deleting"), revision("web--b")))
    started = time.monotonic()
    result = judge_app(apps, within=Deadline.after(15, "provisioning deadline of 15s"), interval=0.2)
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "app provisioningState Deleting: the app is being deleted; it will not serve this release",
    )
    assert time.monotonic() - started < 3


@pytest.mark.states("containerapp")
def test_deprovisioning_revision_ends_the_wait_at_once(arm, apps):
    arm.set_state(state(container_app(), revision("web--b", provisioningState="Deprovisioning")))
    started = time.monotonic()
    result = judge_app(apps, within=Deadline.after(15, "provisioning deadline of 15s"), interval=0.2)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("revision web--b provisioningState Deprovisioning: it is being taken down")
    assert time.monotonic() - started < 3


@pytest.mark.states("containerapp")
def test_progressing_app_is_waited_for_until_it_runs(arm, apps):
    app = container_app(runningStatus="Progressing")
    app["_sequence"] = [{}, {}, {"properties": {"runningStatus": "Running"}}]
    arm.set_state(state(app, revision("web--b")))
    result = judge_app(apps, within=Deadline.after(15, "provisioning deadline of 15s"), interval=0.1)
    assert (result.verdict, result.message) == (Verdict.PASS, PASS_B)


@pytest.mark.states("containerapp")
def test_in_progress_for_ever_is_an_error_at_the_deadline(arm, apps):
    arm.set_state(state(container_app(provisioningState="InProgress"), revision("web--b")))
    started = time.monotonic()
    result = judge_app(apps, within=Deadline.after(1.5, "provisioning deadline of 1.5s"), interval=0.3)
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith(
        "still converging when the provisioning deadline of 1.5s ran out: app provisioningState InProgress ("
    )
    assert time.monotonic() - started < 4


@pytest.mark.states("containerapp")
def test_unknown_running_state_ends_the_wait_as_an_error(arm, apps):
    arm.set_state(state(container_app(), revision("web--b", runningState="Unknown")))
    started = time.monotonic()
    result = judge_app(apps, within=Deadline.after(15, "provisioning deadline of 15s"), interval=0.2)
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith("revision web--b runningState Unknown: ARM cannot tell whether it runs")
    assert time.monotonic() - started < 3


# --- Container App: traffic ----------------------------------------------------------------------------------------


def split_app(traffic: list[Json], mode: Any = "Multiple", **properties: Any) -> Json:
    configuration: Json = {"ingress": {"traffic": traffic}}
    configuration["activeRevisionsMode"] = mode
    return container_app(configuration=configuration, **properties)


LABELLED = [
    {"revisionName": "web--b", "weight": 80, "label": "blue"},
    {"revisionName": "web--a", "weight": 20, "label": "green"},
]
TRAFFIC_STATES = [
    (
        "by revision name",
        split_app([{"revisionName": "web--b", "weight": 80}, {"revisionName": "web--a", "weight": 20}]),
        {"latest": 80, "web--a": 20},
        Verdict.PASS,
        "traffic 80% web--b, 20% web--a",
    ),
    ("by label", split_app(LABELLED), {"label:blue": 80, "label:green": 20}, Verdict.PASS, "(label blue)"),
    (
        "label and name mixed",
        split_app(LABELLED),
        {"latest": 80, "label:green": 20},
        Verdict.PASS,
        "traffic 80% web--b (label blue), 20% web--a (label green)",
    ),
    (
        "label on the wrong revision",
        split_app(LABELLED),
        {"label:green": 80, "label:blue": 20},
        Verdict.FAIL,
        "traffic 80% web--b (label blue), 20% web--a (label green), expected 80% web--a (label green), 20% web--b "
        "(label blue)",
    ),
    (
        "label the app does not carry",
        split_app(LABELLED),
        {"label:canary": 20, "latest": 80},
        Verdict.FAIL,
        "no traffic entry carries label 'canary' (labels on the app: blue, green; activeRevisionsMode Multiple); "
        "expected 20% through it",
    ),
    (
        "a label-only entry with no weight still routes its label",
        split_app([{"latestRevision": True, "weight": 100}, {"revisionName": "web--a", "weight": 0, "label": "old"}]),
        {"latest": 100, "label:old": 0},
        Verdict.PASS,
        "traffic 100% web--b",
    ),
    (
        "latestRevision: true is the latest ready revision",
        split_app([{"latestRevision": True, "weight": 70}, {"revisionName": "web--a", "weight": 30}]),
        {"latest": 70, "web--a": 30},
        Verdict.PASS,
        "traffic 70% web--b, 30% web--a",
    ),
    (
        "old revision keeps all traffic",
        split_app([{"revisionName": "web--a", "weight": 100}, {"revisionName": "web--b", "weight": 0}]),
        None,
        Verdict.FAIL,
        "traffic 100% web--a, expected 100% web--b",
    ),
    (
        "single mode ignores weights: all on the latest",
        split_app([{"revisionName": "web--a", "weight": 100}], mode="Single"),
        None,
        Verdict.PASS,
        "traffic 100% web--b",
    ),
    (
        "single mode does not read revisions left in its traffic entries",
        split_app([{"revisionName": "web--gone", "weight": 100}], mode="Single"),
        None,
        Verdict.PASS,
        "traffic 100% web--b",
    ),
    (
        "every weight 0",
        split_app([{"revisionName": "web--b", "weight": 0}, {"revisionName": "web--a", "weight": 0}]),
        None,
        Verdict.FAIL,
        "traffic none (every weight is 0), expected 100% web--b",
    ),
    (
        "traffic names a revision ARM does not have",
        split_app([{"revisionName": "web--b", "weight": 50}, {"revisionName": "web--gone", "weight": 50}]),
        None,
        Verdict.FAIL,
        "revision web--gone not found: ResourceNotFound: The Resource "
        "'Microsoft.App/containerApps/web/revisions/web--gone' under resource group 'rg' was not found. For more "
        "details please go to https://aka.ms/ARMResourceNotFoundFix; the app names it (as its latest, latest ready, "
        "or in its traffic), but ARM has no such revision",
    ),
    (
        "mode absent is Single (the spec's default)",
        split_app([{"revisionName": "web--a", "weight": 100}], mode=None),
        None,
        Verdict.PASS,
        "traffic 100% web--b",
    ),
    (
        "a split expected of a single-revision app",
        split_app([{"latestRevision": True, "weight": 100}], mode="single"),
        {"latest": 80, "web--a": 20},
        Verdict.FAIL,
        "traffic 100% web--b, expected 80% web--b, 20% web--a; the app is in single-revision mode "
        "(activeRevisionsMode Single), where weights do not apply",
    ),
    (
        "a split expected of an app without ingress",
        container_app(configuration={"activeRevisionsMode": "Multiple", "ingress": GONE}),
        {"latest": 80, "web--a": 20},
        Verdict.FAIL,
        "traffic 100% web--b, expected 80% web--b, 20% web--a; the app has no ingress traffic weights "
        "(configuration.ingress), so nothing splits by weight",
    ),
    (
        "an entry naming no revision",
        split_app([{"weight": 100, "label": "x"}]),
        None,
        Verdict.ERROR,
        "ARM answered with traffic[0] naming no revision (neither revisionName nor "
        "latestRevision); is a proxy or captive portal in the way, or does azure.arm_endpoint point at something "
        "other than ARM?",
    ),
    (
        "a weight that is not an integer",
        split_app([{"latestRevision": True, "weight": "100"}]),
        None,
        Verdict.ERROR,
        'ARM answered with configuration.ingress.traffic[0].weight = "100", which the API '
        "documents as an integer; is a proxy or captive portal in the way, or does azure.arm_endpoint point at "
        "something other than ARM?",
    ),
]


@pytest.mark.states("containerapp")
@pytest.mark.parametrize(
    ("case", "app", "traffic", "verdict", "words"), TRAFFIC_STATES, ids=[c[0] for c in TRAFFIC_STATES]
)
def test_traffic_states(arm, apps, case, app, traffic, verdict, words):
    arm.set_state(state(app, revision("web--b", trafficWeight=80), revision("web--a", image="repo/web:3.3.9")))
    result = judge_app(apps, AppExpectation(image=ImageExpectation(version="3.4.0"), traffic=traffic))
    assert result.verdict is verdict, result.message
    if verdict is Verdict.PASS:
        assert words in result.message
    else:
        assert result.message == words


@pytest.mark.states("containerapp")
@pytest.mark.parametrize(
    ("old", "verdict", "message"),
    [
        (
            {"healthState": "Unhealthy", "runningState": "Degraded", "replicas": 0},
            Verdict.FAIL,
            "revision web--a receives 20% of traffic but revision web--a is Unhealthy, runningState Degraded, 0 "
            "replicas (minReplicas 1)",
        ),
        (
            {"provisioningState": "Provisioning"},
            Verdict.FAIL,  # one look: still converging counts as not done
            "revision web--a receives 20% of traffic but revision web--a provisioningState Provisioning",
        ),
        (
            {"active": False},
            Verdict.FAIL,
            "revision web--a receives 20% of traffic but revision web--a is inactive (active: false): it runs no "
            "replicas and serves nothing; activate it (az containerapp revision activate) or send the traffic to an "
            "active revision",
        ),
        (
            {"runningState": "Unknown"},
            Verdict.ERROR,
            "revision web--a receives 20% of traffic but revision web--a runningState Unknown: ARM cannot tell "
            "whether it runs; look at its replicas (az containerapp replica list --revision NAME)",
        ),
    ],
    ids=["unhealthy", "provisioning", "inactive", "unknown"],
)
def test_every_revision_that_takes_traffic_must_be_healthy(arm, apps, old, verdict, message):
    app = split_app([{"revisionName": "web--b", "weight": 80}, {"revisionName": "web--a", "weight": 20}])
    arm.set_state(state(app, revision("web--b"), revision("web--a", **old)))
    result = judge_app(apps, AppExpectation(traffic={"latest": 80, "web--a": 20}))
    assert (result.verdict, result.message) == (verdict, message)


# --- Container App: containers -----------------------------------------------------------------------------------


def containers(*pairs: tuple[str, str], init: tuple[tuple[str, str], ...] = ()) -> Json:
    template: Json = {
        "containers": [{"name": n, "image": i} for n, i in pairs],
        "scale": {"minReplicas": 1},
    }
    if init:
        template["initContainers"] = [{"name": n, "image": i} for n, i in init]
    return template


SIDECAR_FIRST = containers(("envoy", "repo/envoy:3.4.0"), ("api", "repo/web:3.3.9"))
CONTAINER_STATES = [
    (
        "sidecar first carries the tag, the named app container does not",
        SIDECAR_FIRST,
        ImageExpectation(version="3.4.0", container="api"),
        Verdict.FAIL,
        "app template container api runs repo/web:3.3.9, expected tag 3.4.0",
    ),
    (
        "several containers and nothing says which: no guess from the first",
        SIDECAR_FIRST,
        ImageExpectation(version="3.4.0", component="orders"),
        Verdict.ERROR,
        "cannot tell which container runs the release: the app template has containers envoy, api, none named web "
        "or orders; name it with `container: NAME` on the component in the environment file, or give each "
        "container's image under `containers:` for this component in the release manifest",
    ),
    (
        "a container named like the app is the released one",
        containers(("envoy", "repo/envoy:1.0"), ("web", "repo/web:3.4.0")),
        ImageExpectation(version="3.4.0"),
        Verdict.PASS,
        "image repo/envoy:1.0, repo/web:3.4.0",
    ),
    (
        "per container, init included",
        containers(("web", "repo/web:3.4.0"), init=(("migrate", "repo/migrate:3.3.0"),)),
        ImageExpectation(
            containers={"web": ImageExpectation(version="3.4.0"), "migrate": ImageExpectation(version="3.4.0")}
        ),
        Verdict.FAIL,
        "app template init container migrate runs repo/migrate:3.3.0, expected tag 3.4.0",
    ),
    (
        "a named container the template does not have",
        containers(("web", "repo/web:3.4.0")),
        ImageExpectation(version="3.4.0", container="api"),
        Verdict.FAIL,
        "app template has no container 'api' (it has web)",
    ),
    (
        "by digest",
        containers(("web", "repo/web@sha256:" + "a" * 64)),
        ImageExpectation(digest="sha256:" + "a" * 64),
        Verdict.PASS,
        "image repo/web@sha256:",
    ),
]


@pytest.mark.states("containerapp")
@pytest.mark.parametrize(
    ("case", "template", "expected", "verdict", "words"), CONTAINER_STATES, ids=[c[0] for c in CONTAINER_STATES]
)
def test_container_states(arm, apps, case, template, expected, verdict, words):
    arm.set_state(state(container_app(template=template), revision("web--b", template=template)))
    result = judge_app(apps, AppExpectation(image=expected))
    assert result.verdict is verdict, result.message
    if verdict is Verdict.PASS:
        assert words in result.message
    else:
        assert result.message == words


# --- ARM answers ---------------------------------------------------------------------------------------------------

PROXY = "<html><head><title>Sign in to the Example Corp proxy</title></head><body>...</body></html>"
TAIL = "; is a proxy or captive portal in the way, or does azure.arm_endpoint point at something other than ARM?"
MALFORMED_STATES = [
    (
        "an HTML page with 200",
        {"body": PROXY},
        "ContainerApp:rg/web: ARM answered with an HTML page titled 'Sign in to the Example Corp proxy', not JSON"
        + TAIL,
    ),
    (
        "an HTML page that claims to be JSON",
        {"body": PROXY, "content_type": "application/json"},
        "ContainerApp:rg/web: ARM answered with an HTML page titled 'Sign in to the Example Corp proxy', not JSON"
        + TAIL,
    ),
    ("an empty body", {"body": ""}, "ContainerApp:rg/web: ARM answered with an empty body that is not JSON" + TAIL),
    (
        "plain text",
        {"body": "upstream connect error", "content_type": "text/plain"},
        "ContainerApp:rg/web: ARM answered with a body that is not JSON (22 characters starting 'upstream connect e"
        "rr')" + TAIL,
    ),
    (
        "a JSON array where an object belongs",
        {"body": "[1, 2]", "content_type": "application/json"},
        "ContainerApp:rg/web: ARM answered with JSON an array where the API documents an object" + TAIL,
    ),
    (
        "a JSON string",
        {"body": '"ok"', "content_type": "application/json"},
        "ContainerApp:rg/web: ARM answered with JSON a string where the API documents an object" + TAIL,
    ),
    (
        "properties that are not an object",
        {"body": '{"properties": []}', "content_type": "application/json"},
        "ContainerApp:rg/web: ARM answered with properties = [], which the API documents as an object" + TAIL,
    ),
    (
        "a state that is not a string",
        {"body": '{"properties": {"provisioningState": 4}}', "content_type": "application/json"},
        "ContainerApp:rg/web: ARM answered with properties.provisioningState = 4, which the API documents as a "
        "string" + TAIL,
    ),
    (
        "an HTML error page with 502",
        {"body": PROXY, "status": 502, "times": 10},
        "ContainerApp:rg/web: ARM answered 502: Bad Gateway with an HTML page titled 'Sign in to the Example Corp "
        "proxy', not JSON (3 tries); ARM or the resource provider is failing: see the Azure status page and the "
        "resource's activity log, and run again later",
    ),
]


@pytest.mark.states("arm")
@pytest.mark.parametrize(("case", "fault", "message"), MALFORMED_STATES, ids=[c[0] for c in MALFORMED_STATES])
def test_malformed_answers_are_errors_that_say_so(arm, apps, case, fault, message):
    arm.set_state(state(container_app(), revision("web--b")))
    arm.set_faults([{"prefix": APP_ID.lower(), **fault}])
    result = judge_app(apps)
    assert (result.verdict, result.line()) == (Verdict.ERROR, message)
    assert result.category is Category.UNREACHABLE


@pytest.mark.states("arm")
def test_malformed_list_is_an_error(arm, web):
    arm.set_state(function_state())
    arm.set_faults(
        [{"prefix": f"{SITE_ID}/deployments".lower(), "body": '{"value": "nope"}', "content_type": "application/json"}]
    )
    result = judge_site(web)
    assert (result.verdict, result.line()) == (
        Verdict.ERROR,
        "FunctionApp:rg/events: deployments: ARM answered with JSON a string where the API documents an object" + TAIL,
    )


REFUSALS = [
    (
        "401 invalid token",
        {"status": 401},
        Verdict.ERROR,
        "ARM refused the credentials (401): InvalidAuthenticationToken: The access token is "
        "invalid.; the bearer token in $DV_TEST_TOKEN (azure.credential: token-env): the token is invalid or expired; "
        "put a fresh one there (`export DV_TEST_TOKEN=$(az account get-access-token --resource "
        "https://management.azure.com --query accessToken -o tsv)`; such tokens last about an hour)",
    ),
    (
        "401 expired token",
        {
            "status": 401,
            "code": "ExpiredAuthenticationToken",
            "message": "The access token expiry UTC time is earlier.",
        },
        Verdict.ERROR,
        "ARM refused the credentials (401): ExpiredAuthenticationToken: The access token expiry "
        "UTC time is earlier.; the bearer token in $DV_TEST_TOKEN (azure.credential: token-env): the token has "
        "expired; put a fresh one there (`export DV_TEST_TOKEN=$(az account get-access-token --resource "
        "https://management.azure.com --query accessToken -o tsv)`; such tokens last about an hour)",
    ),
    (
        "403 on a read",
        {"status": 403},
        Verdict.ERROR,
        "ARM refused the request (403): AuthorizationFailed: The client 'ci@example.test' with "
        "object id '7d1e2f3a-0b4c-4d5e-8f6a-9b0c1d2e3f4a' does not have authorization to perform action "
        f"'Microsoft.App/containerApps/read' over scope '{APP_ID}' or the scope is invalid. If access was recently "
        "granted, please refresh your credentials.; the identity needs Microsoft.App/containerApps/read: Reader on "
        f"the resource group {GROUP} (or above) grants it",
    ),
    (
        "403 by a policy, not a role",
        {"status": 403, "code": "RequestDisallowedByPolicy", "message": "Resource 'web' was disallowed by policy."},
        Verdict.ERROR,
        "ARM refused the request (403): RequestDisallowedByPolicy: Resource 'web' was disallowed "
        "by policy.; an Azure Policy assignment denies it (ARM's message names the policy), not a missing role",
    ),
    (
        "403 without the action in ARM's words",
        {"status": 403, "code": "AuthorizationFailed", "message": "Access denied."},
        Verdict.ERROR,
        "ARM refused the request (403): AuthorizationFailed: Access denied.; the identity lacks a "
        "role here: Reader on the resource group grants every read the suite makes (the app settings version source "
        "needs Microsoft.Web/sites/config/list/action as well)",
    ),
    (
        "409",
        {"status": 409, "code": "Conflict", "message": "The resource is being updated."},
        Verdict.ERROR,
        "ARM answered 409: Conflict: The resource is being updated.; another operation is "
        "changing the resource: look at its activity log and run again once it ends",
    ),
    (
        "412",
        {"status": 412},
        Verdict.ERROR,
        "ARM answered 412: PreconditionFailed: The ARM test server answers 412 (a scripted "
        "fault).; another operation is changing the resource: look at its activity log and run again once it ends",
    ),
    ("500 once: tried again", {"status": 500, "times": 1}, Verdict.PASS, PASS_B),
    ("503 twice with Retry-After 1: tried again", {"status": 503, "times": 2, "retry_after": 1}, Verdict.PASS, PASS_B),
    (
        "503 for ever",
        {"status": 503, "retry_after": 0},
        Verdict.ERROR,
        "ARM answered 503: ServiceUnavailable: The ARM test server answers 503 (a scripted "
        "fault). (3 tries); ARM or the resource provider is failing: see the Azure status page and the resource's "
        "activity log, and run again later",
    ),
    (
        "503 with a Retry-After past the budget",
        {"status": 503, "retry_after": 60},
        Verdict.ERROR,
        "ARM answered 503: ServiceUnavailable: The ARM test server answers 503 (a scripted "
        "fault).; it asked to try again after 60s, more than the 20s of the test budget left",
    ),
    (
        "400",
        {"status": 400, "code": "BadRequest", "message": "Bad request."},
        Verdict.ERROR,
        "ARM answered 400: BadRequest: Bad request.",
    ),
]


@pytest.mark.states("arm")
@pytest.mark.parametrize(("case", "fault", "verdict", "message"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refusals(arm, apps, case, fault, verdict, message):
    arm.set_state(state(container_app(), revision("web--b")))
    arm.set_faults([{"prefix": APP_ID.lower(), **fault}])
    result = judge_app(apps, credential=token_env_credential("DV_TEST_TOKEN"))
    assert (result.verdict, result.message) == (verdict, message)


@pytest.mark.states("arm")
@pytest.mark.parametrize(
    ("group", "name", "verdict", "message"),
    [
        (
            "rg",
            "nope",
            Verdict.FAIL,
            "ContainerApp:rg/nope: not found: ResourceNotFound: The Resource 'Microsoft.App/containerApps/nope' under "
            "resource group 'rg' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix; "
            "was it deployed to this resource group?",
        ),
        (
            "rg-gone",
            "web",
            Verdict.FAIL,
            "ContainerApp:rg-gone/web: resource group not found: ResourceGroupNotFound: Resource group 'rg-gone' could "
            "not be found.; check the component's resource_group in the environment file, or whether the group was "
            "deleted",
        ),
    ],
    ids=["app", "resource group"],
)
def test_not_found_says_what_is_missing(arm, apps, group, name, verdict, message):
    arm.set_state(state(container_app(), revision("web--b")))
    result = check_container_app(apps, AppRef(group, name), AppExpectation(), Deadline.after(10))
    assert (result.verdict, result.line()) == (verdict, message)


@pytest.mark.states("arm")
def test_unknown_subscription_is_an_error_about_the_environment(arm, pki):
    arm.set_state(state(container_app(), revision("web--b")))
    other = "00000000-0000-0000-0000-0000000000ff"
    with ContainerAppsAPIClient(StaticToken(TOKEN), other, **options(arm, pki)) as client:
        result = judge_app(client)
    assert (result.verdict, result.line()) == (
        Verdict.ERROR,
        f"ContainerApp:rg/web: SubscriptionNotFound: The subscription '{other}' could not be found.; check the "
        "environment's azure.subscriptions subscription_id, and that the credential's tenant holds that subscription",
    )


class NoToken:
    def get_token(self, *scopes: str, **kwargs: Any):
        raise ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token from the included "
            "credentials.\nAttempted credentials:\n\tEnvironmentCredential: ..."
        )


@pytest.mark.states("arm")
def test_a_credential_that_gives_no_token(arm, pki):
    arm.set_state(state(container_app(), revision("web--b")))
    with ContainerAppsAPIClient(NoToken(), SUB, **options(arm, pki)) as client:
        result = judge_app(client)
    assert (result.verdict, result.line()) == (
        Verdict.ERROR,
        "ContainerApp:rg/web: no token from the Azure credential: DefaultAzureCredential failed to retrieve a token "
        "from the included credentials.; refresh it: a new token for https://management.azure.com "
        "(azure.credential: token-env), or `az login` / the workload or managed identity (azure.credential: default)",
    )
    assert arm.requests()["total"] == 0  # nothing was sent without a token


# --- Function Apps -------------------------------------------------------------------------------------------------

STORAGE_SECRET = "c3RvcmFnZS1rZXktdGhhdC1tdXN0LW5ldmVyLWxlYWs="
SAS_SECRET = "c2FzLXNpZ25hdHVyZS1uZXZlci1zaG93bg"
SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "AzureWebJobsStorage": f"DefaultEndpointsProtocol=https;AccountName=st;AccountKey={STORAGE_SECRET}",
    "APP_VERSION": "2.7.1",
    "WEBSITE_RUN_FROM_PACKAGE": f"https://st.blob.core.windows.net/pkg/events-2.7.1.zip?sv=2022&sig={SAS_SECRET}",
}


def site(**properties: Any) -> Json:
    """Sites_Get's shape: the properties a Function App reports."""
    body: Json = {
        "state": "Running",
        "hostNames": ["events.azurewebsites.net"],
        "usageState": "Normal",
        "enabled": True,
        "availabilityState": "Normal",
        "reserved": True,
        "defaultHostName": "events.azurewebsites.net",
    }
    tags = properties.pop("tags", {"version": "2.7.1"})
    settings = properties.pop("settings", SETTINGS)
    return {
        "id": SITE_ID,
        "name": "events",
        "type": "Microsoft.Web/sites",
        "kind": "functionapp,linux",
        "location": "East US",
        "tags": tags,
        "_appsettings": settings,
        "properties": _override(body, properties),
    }


def deployment(ident: str, **props: Any) -> Json:
    """DeploymentProperties as the published schema has them: no Kudu `complete`, no `id`."""
    body: Json = {
        "status": 4,
        "message": "events 2.7.1",
        "author": "ci",
        "deployer": "ZipDeploy",
        "author_email": "ci@example.test",
        "start_time": "2026-11-30T10:00:00Z",
        "end_time": "2026-11-30T10:02:00Z",
        "active": False,  # "false if completed": the schema's reading; it must not decide
        "details": f"https://events.scm.azurewebsites.net/api/deployments/{ident}/log",
    }
    return {
        "id": f"{SITE_ID}/deployments/{ident}",
        "name": ident,
        "type": "Microsoft.Web/sites/deployments",
        "properties": _override(body, props),
    }


def function(name: str, disabled: bool = False) -> Json:
    return {
        "id": f"{SITE_ID}/functions/{name}",
        "name": f"events/{name}",
        "type": "Microsoft.Web/sites/functions",
        "properties": {"name": name, "config": {"bindings": [{"type": "httpTrigger"}]}, "isDisabled": disabled},
    }


def function_state(
    the_site: Json | None = None, deployments: tuple[Json, ...] | None = None, functions: tuple[Json, ...] | None = None
) -> Json:
    the_site = the_site or site()
    deployments = (deployment("d1"),) if deployments is None else deployments
    functions = (function("Health"), function("OrderCreated")) if functions is None else functions
    return {"resources": {SITE_ID: the_site, **{d["id"]: d for d in deployments}, **{f["id"]: f for f in functions}}}


def judge_site(web, version: str = "2.7.1", source: str | None = None, **kw: Any) -> CheckResult:
    where = AppRef("rg", "events")
    return check_function_app(
        web, where, version, Deadline.after(20, "test budget"), source=VersionSource.parse(source), **kw
    )


def assert_no_secret(result: CheckResult) -> None:
    shown = result.message + "".join(e.content for e in result.evidence)
    for secret in (STORAGE_SECRET, SAS_SECRET, "AccountKey", "FUNCTIONS_WORKER_RUNTIME"):
        assert secret not in shown, secret


FUNCTIONS_PASS = (
    "Running; deployment d1 Success, version 2.7.1 (the latest deployment's message); 2 functions: Health, OrderCreated"
)
SITE_STATES = [
    ("running", {}, Verdict.PASS, FUNCTIONS_PASS),
    ("a Linux container function app", {"kind": "functionapp,linux,container"}, Verdict.PASS, FUNCTIONS_PASS),
    (
        "a web app, not a function app",
        {"kind": "app,linux"},
        Verdict.FAIL,
        "the site is not a Function App (kind 'app,linux'): is the component's resource the right site?",
    ),
    ("running, lower case", {"state": "running"}, Verdict.PASS, FUNCTIONS_PASS),
    (
        "stopped",
        {"state": "Stopped"},
        Verdict.FAIL,
        "site state Stopped; start it, or check why it stopped (activity log)",
    ),
    ("no state", {"state": GONE}, Verdict.ERROR, "ARM reported no site state: cannot tell whether it runs"),
    (
        "another state",
        {"state": "Unknown"},
        Verdict.ERROR,
        "site state 'Unknown' (not Running or Stopped): cannot tell whether it runs",
    ),
    (
        "disabled",
        {"enabled": False},
        Verdict.FAIL,
        "site is disabled (enabled: false): the app is offline; enable it if it should serve this release",
    ),
    (
        "limited",
        {"availabilityState": "Limited"},
        Verdict.FAIL,
        "site availabilityState Limited: the app is only partly available",
    ),
    (
        "disaster recovery",
        {"availabilityState": "DisasterRecoveryMode"},
        Verdict.FAIL,
        "site availabilityState DisasterRecoveryMode: the app is in disaster recovery",
    ),
    (
        "undocumented availability",
        {"availabilityState": "Degraded"},
        Verdict.ERROR,
        "site availabilityState 'Degraded' is not one the API documents (Normal, Limited, DisasterRecoveryMode): "
        "cannot tell its meaning",
    ),
    (
        "over quota",
        {"usageState": "Exceeded"},
        Verdict.FAIL,
        "site usageState Exceeded: the app is over its quota, so the platform stopped serving it",
    ),
]


@pytest.mark.states("functionapp")
@pytest.mark.parametrize(("case", "props", "verdict", "message"), SITE_STATES, ids=[c[0] for c in SITE_STATES])
def test_site_states(arm, web, case, props, verdict, message):
    props = dict(props)
    kind = props.pop("kind", None)
    the_site = site(**props)
    if kind is not None:
        the_site["kind"] = kind
    arm.set_state(function_state(the_site))
    result = judge_site(web)
    assert (result.verdict, result.message) == (verdict, message)
    assert_no_secret(result)


DEPLOYMENT_STATES = [
    ("success without Kudu's complete or active", (deployment("d1"),), Verdict.PASS, FUNCTIONS_PASS),
    ("none", (), Verdict.FAIL, "no deployment recorded (Kudu); was the package deployed to this app?"),
    ("pending", (deployment("d1", status=0),), Verdict.FAIL, "latest deployment d1 Pending"),
    ("building", (deployment("d1", status=1),), Verdict.FAIL, "latest deployment d1 Building"),
    ("deploying", (deployment("d1", status=2),), Verdict.FAIL, "latest deployment d1 Deploying"),
    (
        "failed",
        (deployment("d1", message="events 2.7.1: Oryx build failed", status=3),),
        Verdict.FAIL,
        "latest deployment d1 failed (Kudu status 3): events 2.7.1: Oryx build failed",
    ),
    (
        "conflict",
        (deployment("d1", status=5),),
        Verdict.FAIL,
        "latest deployment d1 is status 5 (Conflict); expected status 4 (Success): events 2.7.1",
    ),
    (
        "partial success",
        (deployment("d1", status=6),),
        Verdict.FAIL,
        "latest deployment d1 is status 6 (PartialSuccess); expected status 4 (Success): events 2.7.1",
    ),
    (
        "no status",
        (deployment("d1", status=GONE),),
        Verdict.ERROR,
        "latest deployment d1 reports no status: cannot tell whether it succeeded",
    ),
    (
        "latest by start_time, not by list order",
        (
            deployment("old", message="events 2.6.0", start_time="2026-11-29T10:00:00.1234567Z"),
            deployment("new", status=3, start_time="2026-11-30T10:00:00.1234567Z"),
        ),
        Verdict.FAIL,
        "latest deployment new failed (Kudu status 3): events 2.7.1",
    ),
    (
        "one that has not started yet is the latest",
        (deployment("d1"), deployment("queued", status=0, start_time=GONE)),
        Verdict.FAIL,
        "latest deployment queued Pending",
    ),
]


@pytest.mark.states("functionapp")
@pytest.mark.parametrize(
    ("case", "deployments", "verdict", "message"), DEPLOYMENT_STATES, ids=[c[0] for c in DEPLOYMENT_STATES]
)
def test_deployment_states(arm, web, case, deployments, verdict, message):
    arm.set_state(function_state(deployments=deployments))
    result = judge_site(web)
    assert (result.verdict, result.message) == (verdict, message)


def passing(source: str) -> str:
    return f"Running; deployment d1 Success, version 2.7.0 ({source}); 2 functions: Health, OrderCreated"


PUSH = "Created via a push deployment"
RECORD = (
    "record the version there, or set version_source on the component to where it is recorded (deployment_message, "
    "package_url, app_setting:NAME, tag:NAME); a plain zip push records none"
)
VERSION_STATES = [
    # The deployment message (default source): one version, exactly.
    (
        "message names it",
        None,
        {"message": "events 2.7.0 (ci build 4211)"},
        Verdict.PASS,
        passing("the latest deployment's message"),
    ),
    ("message with a v", None, {"message": "release v2.7.0"}, Verdict.PASS, passing("the latest deployment's message")),
    (
        "a pre-release is another version",
        None,
        {"message": "events 2.7.0-rc.2"},
        Verdict.FAIL,
        "latest deployment d1 is not version 2.7.0: its message ('events 2.7.0-rc.2') names 2.7.0-rc.2",
    ),
    (
        "a longer number is another version",
        None,
        {"message": "events 12.7.0"},
        Verdict.FAIL,
        "latest deployment d1 is not version 2.7.0: its message ('events 12.7.0') names 12.7.0",
    ),
    (
        "a longer patch is another version",
        None,
        {"message": "events 2.7.01"},
        Verdict.FAIL,
        "latest deployment d1 is not version 2.7.0: its message ('events 2.7.01') names 2.7.01",
    ),
    (
        "a build number after it is another version",
        None,
        {"message": "events 2.7.0.3"},
        Verdict.FAIL,
        "latest deployment d1 is not version 2.7.0: its message ('events 2.7.0.3') names 2.7.0.3",
    ),
    (
        "a plain zip push records none",
        None,
        {"message": PUSH},
        Verdict.ERROR,
        f"cannot tell the version: latest deployment d1's message ('{PUSH}') records no version; {RECORD}",
    ),
    (
        "no message",
        None,
        {"message": GONE},
        Verdict.ERROR,
        f"cannot tell the version: latest deployment d1's message ('') records no version; {RECORD}",
    ),
    (
        "a message naming two versions",
        None,
        {"message": "upgrade 2.6.0 -> 2.7.0"},
        Verdict.ERROR,
        "cannot tell the version: latest deployment d1's message ('upgrade 2.6.0 -> 2.7.0') names 2.7.0, 2.6.0; "
        "record the released version alone, or set version_source (deployment_message, package_url, "
        "app_setting:NAME, tag:NAME)",
    ),
    # An app setting: its value, exactly.
    (
        "app setting",
        "app_setting:APP_VERSION",
        {"APP_VERSION": "2.7.0"},
        Verdict.PASS,
        passing("app setting APP_VERSION"),
    ),
    (
        "app setting with a pre-release",
        "app_setting:APP_VERSION",
        {"APP_VERSION": "2.7.0-rc.2"},
        Verdict.FAIL,
        "app setting APP_VERSION is '2.7.0-rc.2', expected 2.7.0",
    ),
    (
        "app setting not set",
        "app_setting:APP_VERSION",
        {"APP_VERSION": GONE},
        Verdict.ERROR,
        f"cannot tell the version: app setting APP_VERSION is not set; {RECORD}",
    ),
    # A site tag.
    ("tag", "tag:version", {"tag": "2.7.0"}, Verdict.PASS, passing("site tag version")),
    (
        "tag of a longer number",
        "tag:version",
        {"tag": "12.7.0"},
        Verdict.FAIL,
        "site tag version is '12.7.0', expected 2.7.0",
    ),
    (
        "tag not set",
        "tag:version",
        {"tag": GONE},
        Verdict.ERROR,
        f"cannot tell the version: site tag version is not set; {RECORD}",
    ),
    # The package URL: its file name, never its query.
    (
        "package",
        "package_url",
        {"package": "events-2.7.0.zip"},
        Verdict.PASS,
        passing("the package URL in WEBSITE_RUN_FROM_PACKAGE"),
    ),
    (
        "package of a pre-release",
        "package_url",
        {"package": "events-2.7.0-rc.2.zip"},
        Verdict.FAIL,
        "package 'events-2.7.0-rc.2.zip' is not version 2.7.0: it names 2.7.0-rc.2",
    ),
    (
        "package without a version",
        "package_url",
        {"package": "events.zip"},
        Verdict.ERROR,
        f"cannot tell the version: package 'events.zip' records no version; {RECORD}",
    ),
    (
        "package in the app's own storage",
        "package_url",
        {"WEBSITE_RUN_FROM_PACKAGE": "1"},
        Verdict.ERROR,
        "cannot tell the version: WEBSITE_RUN_FROM_PACKAGE is not a URL (with 1 the package sits in the app's own "
        f"storage and no URL names it); {RECORD}",
    ),
    (
        "no package setting",
        "package_url",
        {"WEBSITE_RUN_FROM_PACKAGE": GONE},
        Verdict.ERROR,
        "cannot tell the version: WEBSITE_RUN_FROM_PACKAGE is not set, so the app does not run from a package URL; "
        f"{RECORD}",
    ),
]


@pytest.mark.states("functionapp")
@pytest.mark.parametrize(
    ("case", "source", "recorded", "verdict", "message"), VERSION_STATES, ids=[c[0] for c in VERSION_STATES]
)
def test_version_states(arm, web, case, source, recorded, verdict, message):
    settings, tags = dict(SETTINGS), {"version": "2.7.0"}
    settings["APP_VERSION"] = "2.7.0"
    settings["WEBSITE_RUN_FROM_PACKAGE"] = f"https://st.blob.core.windows.net/pkg/events-2.7.0.zip?sig={SAS_SECRET}"
    props: dict[str, Any] = {"message": "events 2.7.0"}
    for key, value in recorded.items():
        if key == "tag":
            tags = {} if value is GONE else {"version": value}
        elif key == "package":
            settings["WEBSITE_RUN_FROM_PACKAGE"] = f"https://st.blob.core.windows.net/pkg/{value}?sv=1&sig={SAS_SECRET}"
        elif key == "message":
            props["message"] = value
        elif value is GONE:
            settings.pop(key)
        else:
            settings[key] = value
    arm.set_state(function_state(site(tags=tags, settings=settings), (deployment("d1", **props),)))
    result = judge_site(web, "2.7.0", source)
    assert (result.verdict, result.message) == (verdict, message)
    assert_no_secret(result)


@pytest.mark.states("functionapp")
def test_run_from_package_needs_no_kudu_record(arm, web):
    arm.set_state(function_state(deployments=()))
    result = judge_site(web, source="package_url")
    assert (result.verdict, result.message) == (
        Verdict.PASS,
        "Running; the package runs (no Kudu deployment), version 2.7.1 (the package URL in WEBSITE_RUN_FROM_PACKAGE); "
        "2 functions: Health, OrderCreated",
    )


@pytest.mark.states("functionapp")
def test_reading_app_settings_without_the_list_action_names_the_role(arm, web):
    arm.set_state(function_state())
    arm.set_faults([{"prefix": f"{SITE_ID}/config/appsettings/list".lower(), "status": 403}])
    result = judge_site(web, source="app_setting:APP_VERSION")
    assert (result.verdict, result.line()) == (
        Verdict.ERROR,
        "FunctionApp:rg/events: app settings: ARM refused the request (403): AuthorizationFailed: The client "
        "'ci@example.test' with object id '7d1e2f3a-0b4c-4d5e-8f6a-9b0c1d2e3f4a' does not have authorization to "
        "perform action 'Microsoft.Web/sites/config/list/action' over scope "
        f"'{SITE_ID}/config/appsettings' or the scope is invalid. If access was recently granted, please refresh your "
        "credentials.; the identity needs Microsoft.Web/sites/config/list/action on "
        f"{SITE_ID}/config/appsettings, which Reader does not grant (Reader holds */read only): assign Website "
        "Contributor, or a custom role with that one action, or choose a version_source that Reader can read "
        "(deployment_message, tag:NAME)",
    )


@pytest.mark.states("functionapp")
def test_the_default_source_never_reads_app_settings(arm, web):
    arm.set_state(function_state())
    result = judge_site(web)
    assert result.verdict is Verdict.PASS
    assert {e["method"] for e in arm.requests()["log"]} == {"GET"}


FUNCTION_STATES = [
    (
        "none loaded",
        (),
        Verdict.FAIL,
        "deployment d1 succeeded but 0 functions are loaded; check the host's logs, the app settings "
        "(FUNCTIONS_WORKER_RUNTIME) and the package contents",
    ),
    (
        "all disabled",
        (function("Health", disabled=True),),
        Verdict.FAIL,
        "deployment d1 succeeded but every function is disabled (Health); enable them (the "
        "AzureWebJobs.<name>.Disabled app setting)",
    ),
    (
        "some disabled",
        (function("Health"), function("Nightly", disabled=True)),
        Verdict.PASS,
        "Running; deployment d1 Success, version 2.7.1 (the latest deployment's message); 2 functions: Health, "
        "Nightly (disabled: Nightly)",
    ),
]


@pytest.mark.states("functionapp")
@pytest.mark.parametrize(
    ("case", "functions", "verdict", "message"), FUNCTION_STATES, ids=[c[0] for c in FUNCTION_STATES]
)
def test_function_states(arm, web, case, functions, verdict, message):
    arm.set_state(function_state(functions=functions))
    result = judge_site(web)
    assert (result.verdict, result.message) == (verdict, message)


@pytest.mark.states("functionapp")
@pytest.mark.parametrize("source", [None, "app_setting:APP_VERSION", "package_url", "tag:version"])
def test_no_app_setting_reaches_a_message_or_an_attachment(arm, web, source):
    """A red result carries the site, its deployments and functions as evidence: never the settings."""
    arm.set_state(function_state(site(state="Stopped")))
    result = judge_site(web, source=source)
    assert result.verdict is Verdict.FAIL
    assert result.evidence
    assert_no_secret(result)
    arm.set_state(function_state(site(tags={"version": "2.6.0"}, settings={**SETTINGS, "APP_VERSION": "2.6.0"})))
    result = judge_site(web, source=source)
    assert_no_secret(result)


# --- any JSON at any documented place: an answer the checks can judge, or the MALFORMED error, never a traceback ----

from hypothesis import HealthCheck, given, settings  # noqa: E402 - kept with the tests that use it
from hypothesis import strategies as st  # noqa: E402

from deploy_verify.checks.containerapps import AppView, app_state  # noqa: E402
from deploy_verify.checks.functionapps import site_state  # noqa: E402
from deploy_verify.checks.transports import Failure  # noqa: E402
from deploy_verify.checks.transports.arm import ArmUnavailable  # noqa: E402

EXAMPLES = int(os.environ.get("DV_FUZZ_EXAMPLES", "300"))  # more for a longer hunt; the same ones every run
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 200) | st.sampled_from(["", "Running", "web--b", "2.7.1", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "image", "weight", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
APP_PATHS = [
    ("properties",),
    ("properties", "provisioningState"),
    ("properties", "runningStatus"),
    ("properties", "latestRevisionName"),
    ("properties", "latestReadyRevisionName"),
    ("properties", "configuration"),
    ("properties", "configuration", "activeRevisionsMode"),
    ("properties", "configuration", "ingress"),
    ("properties", "configuration", "ingress", "traffic"),
    ("properties", "template"),
    ("properties", "template", "containers"),
]
REVISION_PATHS = [
    ("properties",),
    ("properties", "provisioningState"),
    ("properties", "runningState"),
    ("properties", "healthState"),
    ("properties", "active"),
    ("properties", "replicas"),
    ("properties", "template"),
    ("properties", "template", "scale"),
    ("properties", "template", "scale", "minReplicas"),
    ("properties", "template", "containers"),
]
SITE_PATHS = [
    ("site", "properties"),
    ("site", "properties", "state"),
    ("site", "properties", "enabled"),
    ("site", "properties", "availabilityState"),
    ("site", "tags"),
    ("deployments", 0, "properties"),
    ("deployments", 0, "properties", "status"),
    ("deployments", 0, "properties", "start_time"),
    ("deployments", 0, "properties", "message"),
    ("functions", 0, "properties"),
    ("functions", 0, "properties", "isDisabled"),
    ("setting", "value"),
]


def _put(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    document = copy.deepcopy(document)
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    where=st.sampled_from(["app", "revision"]),
    path_index=st.integers(0, 10),
    value=ANY_JSON,
    traffic=st.sampled_from([None, {"latest": 100}, {"label:blue": 100}, {"web--a": 50, "latest": 50}]),
)
def test_any_json_in_an_app_answer_is_judged_or_malformed(where, path_index, value, traffic):
    app, latest = container_app(), revision("web--b")
    if where == "app":
        app = _put(app, APP_PATHS[path_index % len(APP_PATHS)], value)
    else:
        latest = _put(latest, REVISION_PATHS[path_index % len(REVISION_PATHS)], value)
    view = AppView(app, {"web--b": latest}, where="ContainerApp:rg/web")
    expected = AppExpectation(image=ImageExpectation(version="3.4.0", container=None), traffic=traffic)
    assert_judged_or_malformed(lambda: app_state(view, expected))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(path_index=st.integers(0, 11), value=ANY_JSON, source=st.sampled_from([None, "tag:version", "app_setting:V"]))
def test_any_json_in_a_site_answer_is_judged_or_malformed(path_index, value, source):
    document = {
        "site": {k: v for k, v in site().items() if not k.startswith("_")},
        "deployments": [deployment("d1")],
        "functions": [function("Health")],
        "setting": {"name": "V", "value": "2.7.1"},
    }
    document = _put(document, SITE_PATHS[path_index], value)
    assert_judged_or_malformed(lambda: site_state(document, "2.7.1", VersionSource.parse(source), "FunctionApp:rg/e"))


def assert_judged_or_malformed(judge: Any) -> None:
    """A state (any verdict), or the MALFORMED transport error; any other exception is a traceback in the report."""
    try:
        outcome = str(judge().verdict)
    except ArmUnavailable as exc:
        outcome = f"malformed: {exc}" if exc.failure is Failure.MALFORMED else f"other failure: {exc}"
    assert outcome in {"None", "pass", "fail", "error"} or outcome.startswith("malformed: "), outcome


@pytest.mark.states("containerapp")
def test_secrets_of_the_app_stay_out_of_the_evidence(arm, apps):
    app = container_app(
        provisioningState="Failed",
        configuration={"secrets": [{"name": "db", "value": "hunter2-c0ffee"}]},
        template={"containers": [{"name": "web", "image": IMAGE, "env": [{"name": "PW", "value": "hunter2-c0ffee"}]}]},
    )
    arm.set_state(state(app, revision("web--b")))
    result = judge_app(apps)
    assert (result.verdict, result.message) == (Verdict.FAIL, "app provisioningState Failed")
    shown = "".join(e.content for e in result.evidence)
    assert "web--b" in shown
    assert "hunter2-c0ffee" not in shown


@pytest.mark.states("arm")
def test_a_retry_after_of_zero_is_not_a_busy_loop(arm, apps):
    arm.set_state(state(container_app(), revision("web--b")))
    arm.set_faults([{"prefix": APP_ID.lower(), "status": 429, "retry_after": 0, "times": 3}])
    started = time.monotonic()
    result = judge_app(apps)
    assert (result.verdict, result.message) == (Verdict.PASS, PASS_B)
    assert time.monotonic() - started >= 1.5  # three waits of at least 0.5 s
    assert arm.count(APP_ID) == 4


def test_site_config_app_settings_are_redacted_in_evidence():
    from deploy_verify.checks.transports.arm import redact

    site_doc = {"properties": {"siteConfig": {"appSettings": [{"name": "DB", "value": "s3cr3t"}]}}}
    assert redact(site_doc) == {"properties": {"siteConfig": {"appSettings": [{"name": "DB", "value": "<redacted>"}]}}}


def test_the_credential_named_is_the_environments():
    from deploy_verify.config import Environment
    from deploy_verify.steps.azure_steps import credential_of

    def env(azure: Json | None) -> Environment:
        base: Json = {"name": "x", "components": [{"name": "web", "kind": "endpoint", "tls": [{"host": "h"}]}]}
        return Environment.model_validate({**base, **({"azure": azure} if azure else {})})

    subscriptions = {"s": {"subscription_id": SUB}}
    token_env = env({"subscriptions": subscriptions, "credential": "token-env", "token_env": "CI_ARM_TOKEN"})
    assert credential_of(token_env).name == "the bearer token in $CI_ARM_TOKEN (azure.credential: token-env)"
    default = env({"subscriptions": subscriptions})
    assert credential_of(default).name == "the identity DefaultAzureCredential found (azure.credential: default)"
    assert "az login" in credential_of(default).refresh
    assert credential_of(env(None)).name == "the Azure credential"
