"""Azure Function App: the site runs, the latest deployment succeeded and is the released version, and functions
are loaded.

    result = check_function_app(client, AppRef("rg-orders", "orders-events"), "2.7.1", deadline)

PASS when the site's state is Running; the latest deployment (Kudu) has status 4 (Success), is complete and active,
and names the expected version (in its id or message); and the function list is not empty. "Deployment successful"
with "0 functions loaded" (azure-functions-host#9720) fails here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from checks.containerapps import ABSENT, AppRef
from checks.converge import State, look_or_wait, poll
from checks.deadline import Deadline
from checks.result import Category, CheckResult, Evidence, Verdict
from checks.runner import attempt
from checks.transports.arm import arm_call, as_dict, redact

if TYPE_CHECKING:
    from azure.mgmt.web import WebSiteManagementClient

CHECK = "functionapp_deployed"
# Kudu DeployStatus: 0 Pending, 1 Building, 2 Deploying, 3 Failed, 4 Success
IN_PROGRESS = {0: "Pending", 1: "Building", 2: "Deploying"}
FAILED, SUCCESS = 3, 4


def check_function_app(
    client: WebSiteManagementClient,
    ref: AppRef,
    version: str | None,
    deadline: Deadline,
    within: Deadline | None = None,
    interval: float = 5.0,
) -> CheckResult:
    where = f"FunctionApp:{ref.resource_group}/{ref.name}"
    if version is None:
        return CheckResult(
            CHECK,
            where,
            Verdict.ERROR,
            "no expected version for this component: pass --release FILE or --expect COMPONENT=VERSION",
            category=Category.UNDECIDED,
        )
    documents: list[dict[str, Any]] = []

    def evaluate() -> State:
        documents.append(_read(client, ref, where, deadline))
        return site_state(documents[-1], version)

    def judge() -> CheckResult:
        state = look_or_wait(evaluate, within, lambda window: poll(window, interval), grace=0)
        assert state.verdict is not None
        evidence = (
            (Evidence.as_json(f"{where} site, deployments, functions", redact(documents[-1])),)
            if (documents and state.verdict is not Verdict.PASS)
            else ()
        )
        return CheckResult(CHECK, where, state.verdict, state.message, evidence, state.category)

    return attempt(CHECK, where, judge, absent=ABSENT)


def _read(client: WebSiteManagementClient, ref: AppRef, where: str, deadline: Deadline) -> dict[str, Any]:
    group, name = ref.resource_group, ref.name
    site = as_dict(arm_call(lambda **kw: client.web_apps.get(group, name, **kw), deadline, where))
    deployments = arm_call(
        lambda **kw: [as_dict(d) for d in client.web_apps.list_deployments(group, name, **kw)], deadline, where
    )
    functions = arm_call(
        lambda **kw: [as_dict(f) for f in client.web_apps.list_functions(group, name, **kw)], deadline, where
    )
    return {"site": site, "deployments": deployments, "functions": functions}


def site_state(document: dict[str, Any], version: str) -> State:
    state = document["site"].get("properties", {}).get("state", "Unknown")
    if state != "Running":
        return State(
            Verdict.FAIL, f"site state {state}; start it, or check why it stopped (activity log)", Category.PROVISIONING
        )
    deployments = document["deployments"]
    if not deployments:
        return State(
            Verdict.FAIL, "no deployment recorded (Kudu); was the package deployed to this app?", Category.PROVISIONING
        )
    latest = max(deployments, key=lambda d: str(d.get("properties", {}).get("start_time") or ""))
    props = latest.get("properties", {})
    ident, status = latest.get("name") or props.get("id") or "?", props.get("status")
    said = f": {props.get('message')}" if props.get("message") else ""
    if status in IN_PROGRESS:
        return State(None, f"latest deployment {ident} {IN_PROGRESS[status]}", Category.PROVISIONING)
    if status == FAILED:
        return State(Verdict.FAIL, f"latest deployment {ident} failed (Kudu status 3){said}", Category.PROVISIONING)
    if status != SUCCESS or not props.get("complete") or not props.get("active"):
        return State(
            Verdict.FAIL,
            f"latest deployment {ident} is status {status}, complete {props.get('complete')}, "
            f"active {props.get('active')}; expected status 4 (Success), complete and active",
            Category.PROVISIONING,
        )
    if version not in f"{ident} {props.get('message', '')}":
        return State(Verdict.FAIL, f"latest deployment {ident} is not version {version}{said}", Category.WRONG_VERSION)
    functions = sorted(str(f.get("name", "?")).rsplit("/", 1)[-1] for f in document["functions"])
    if not functions:
        return State(
            Verdict.FAIL,
            f"deployment {ident} succeeded but 0 functions are loaded; check the host's "
            "logs, the app settings (FUNCTIONS_WORKER_RUNTIME) and the package contents",
            Category.PROVISIONING,
        )
    return State(
        Verdict.PASS,
        f"Running; deployment {ident} Success and active, version {version}; "
        f"{len(functions)} functions: {', '.join(functions)}",
    )
