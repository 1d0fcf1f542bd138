"""Azure Function App: the site runs, the latest deployment succeeded and is the released version, and functions
are loaded.

    result = check_function_app(client, AppRef("rg-orders", "orders-events"), "2.7.1", deadline)
    result = check_function_app(client, ref, "2.7.1", deadline, source=VersionSource.parse("app_setting:APP_VERSION"))

PASS when the site's state is Running (enabled, availabilityState Normal, usageState Normal); the latest deployment
(Kudu, by start_time) has status 4 (Success); the version read from the component's `version_source` is exactly the
expected one; and at least one function is loaded and enabled. "Deployment successful" with "0 functions loaded"
(azure-functions-host#9720) fails here.

The version is compared exactly, never as a substring (2.7.0 is not 2.7.0-rc.2, nor 12.7.0). Where it comes from:

| version_source | reads | compared |
|---|---|---|
| deployment_message (default) | the latest deployment's message | the one version it names (several: ERROR) |
| app_setting:NAME | that one app setting (POST config/appsettings/list: more than Reader) | the value, exactly |
| tag:NAME | the site's tag | the value, exactly |
| package_url | WEBSITE_RUN_FROM_PACKAGE's file name (never its query: a SAS token) | the one version it names |

A source that records no version (a plain zip push says "Created via a push deployment") is an ERROR that says where
to record it, not a wrong version. Only the one setting is kept; every other app setting is dropped unread.

Deployment fields: the published schema (DeploymentProperties) has status, message, author, deployer, author_email,
start_time, end_time, active, details. Kudu's `complete` is not in it and is not required. `active` is not judged: the
schema says it is false once a deployment completed, Kudu sets it on the live deployment; the two readings disagree,
so status and start_time decide.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from deploy_verify.checks.containerapps import ABSENT, AppRef
from deploy_verify.checks.converge import State, look_or_wait, poll
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.arm import (
    GENERIC_CREDENTIAL,
    Credential,
    arm_call,
    as_dict,
    documented,
    malformed,
    properties_of,
    redact,
)

if TYPE_CHECKING:
    from azure.mgmt.web import WebSiteManagementClient

CHECK = "functionapp_deployed"
# Kudu DeployStatus: 0 Pending, 1 Building, 2 Deploying, 3 Failed, 4 Success, 5 Conflict, 6 PartialSuccess
IN_PROGRESS = {0: "Pending", 1: "Building", 2: "Deploying"}
FAILED, SUCCESS = 3, 4
OTHER_STATUS = {5: "Conflict", 6: "PartialSuccess"}
PACKAGE_SETTING = "WEBSITE_RUN_FROM_PACKAGE"
# Site state is a free string in the spec ("Current state of the app"); Running and Stopped are what start/stop set.
# SiteAvailabilityState and UsageState are enums: Normal is the only state that serves normally.
AVAILABILITY = {"Normal": None, "Limited": "only partly available", "DisasterRecoveryMode": "in disaster recovery"}
USAGE = {"Normal": None, "Exceeded": "over its quota, so the platform stopped serving it"}
_ARCHIVE = re.compile(r"\.(zip|squashfs|tar\.gz|tgz|tar|jar|war|nupkg)$", re.IGNORECASE)
# A version as it appears in free text: dotted numbers, an optional -prerelease and +build (SemVer's shape), not
# inside a longer word or number ("12.7.1" is not "2.7.1"; "v2.7.1" is).
_VERSION = re.compile(
    r"(?<![0-9A-Za-z.])[vV]?(\d+(?:\.\d+)+(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)"
    r"(?![0-9A-Za-z])"
)
SOURCES = "deployment_message, package_url, app_setting:NAME, tag:NAME"


@dataclass(frozen=True)
class VersionSource:
    """Where the running version of a Function App is recorded (`version_source:` on the component)."""

    kind: Literal["deployment_message", "app_setting", "tag", "package_url"] = "deployment_message"
    name: str | None = None  # the app setting or tag

    @classmethod
    def parse(cls, text: str | None) -> VersionSource:
        """`app_setting:APP_VERSION` -> VersionSource("app_setting", "APP_VERSION"); ValueError names the forms."""
        if text is None or text == "deployment_message":
            return cls()
        if text == "package_url":
            return cls("package_url")
        kind, sep, name = text.partition(":")
        if sep and kind == "app_setting" and re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            return cls("app_setting", name)
        if sep and kind == "tag" and name and not re.search(r"[\s<>%&\\?/]", name):
            return cls("tag", name)
        raise ValueError(f"{text!r} is not one of: {SOURCES}")

    def describe(self) -> str:
        return {
            "deployment_message": "the latest deployment's message",
            "app_setting": f"app setting {self.name}",
            "tag": f"site tag {self.name}",
            "package_url": f"the package URL in {PACKAGE_SETTING}",
        }[self.kind]

    @property
    def setting(self) -> str | None:
        """The one app setting this source reads, if any."""
        return self.name if self.kind == "app_setting" else PACKAGE_SETTING if self.kind == "package_url" else None


RECORD_IT = (
    "record the version there, or set version_source on the component to where it is recorded "
    f"({SOURCES}); a plain zip push records none"
)


def check_function_app(
    client: WebSiteManagementClient,
    ref: AppRef,
    version: str | None,
    deadline: Deadline,
    within: Deadline | None = None,
    interval: float = 5.0,
    source: VersionSource = VersionSource(),  # frozen: one shared default is safe
    credential: Credential = GENERIC_CREDENTIAL,
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
        documents.append(_read(client, ref, where, deadline, source, credential))
        return site_state(documents[-1], version, source, where)

    def evidence() -> tuple[Evidence, ...]:
        return (Evidence.as_json(f"{where} site, deployments, functions", redact(documents[-1])),) if documents else ()

    def judge() -> CheckResult:
        state = look_or_wait(evaluate, within, lambda window: poll(window, interval), grace=0)
        assert state.verdict is not None
        shown = evidence() if state.verdict is not Verdict.PASS else ()
        return CheckResult(CHECK, where, state.verdict, state.message, shown, state.category)

    return attempt(CHECK, where, judge, evidence=evidence)


def _read(
    client: WebSiteManagementClient,
    ref: AppRef,
    where: str,
    deadline: Deadline,
    source: VersionSource,
    credential: Credential,
) -> dict[str, Any]:
    group, name = ref.resource_group, ref.name
    site = as_dict(
        arm_call(
            lambda **kw: client.web_apps.get(group, name, **kw), deadline, where, credential=credential, absent=ABSENT
        ),
        where,
    )
    listed, loaded = f"{where} deployments", f"{where} functions"
    deployments = arm_call(
        lambda **kw: [as_dict(d, listed) for d in client.web_apps.list_deployments(group, name, **kw)],
        deadline,
        listed,
        credential=credential,
    )
    functions = arm_call(
        lambda **kw: [as_dict(f, loaded) for f in client.web_apps.list_functions(group, name, **kw)],
        deadline,
        loaded,
        credential=credential,
    )
    document: dict[str, Any] = {"site": site, "deployments": deployments, "functions": functions}
    if source.setting is not None:
        document["setting"] = _one_setting(client, ref, where, source.setting, deadline, credential)
    return document


def _one_setting(
    client: WebSiteManagementClient, ref: AppRef, where: str, key: str, deadline: Deadline, credential: Credential
) -> dict[str, Any]:
    """{"name": key, "value": ...} for the one app setting the version source names; the others (connection strings,
    keys) are dropped here, before anything can log, attach or print them. A package URL keeps only its file name:
    its query is a SAS token."""
    what = f"{where} app settings"
    answer = arm_call(
        lambda **kw: client.web_apps.list_application_settings(ref.resource_group, ref.name, **kw),
        deadline,
        what,
        credential=credential,
    )
    value = documented(properties_of(as_dict(answer, what), what).get(key), str, what, f"properties.{key}")
    del answer
    if key == PACKAGE_SETTING and value is not None:
        return {"name": key, "package": _package_name(value)}
    return {"name": key, "value": value}


def _package_name(value: str) -> str | None:
    """The file name of a package URL ("orders-events-2.7.1.zip"), None when the value is not a URL ("1")."""
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return unquote(parts.path.rsplit("/", 1)[-1]) or None


def site_state(document: dict[str, Any], version: str, source: VersionSource, where: str = "FunctionApp") -> State:
    site_problem = _site_problem(document["site"], where)
    if site_problem is not None:
        return site_problem
    deployments: list[dict[str, Any]] = document["deployments"]
    if not deployments and source.kind != "package_url":  # run-from-package URLs leave no Kudu record
        return State(
            Verdict.FAIL, "no deployment recorded (Kudu); was the package deployed to this app?", Category.PROVISIONING
        )
    latest = _latest(deployments, where) if deployments else None
    if latest is not None:
        deployment_problem = _deployment_problem(latest, where)
        if deployment_problem is not None:
            return deployment_problem
    version_state = _version_state(document, latest, version, source, where)
    if version_state is not None:
        return version_state
    return _functions_state(document["functions"], latest, version, source, where)


def _site_problem(site: dict[str, Any], where: str) -> State | None:
    kind = documented(site.get("kind"), str, where, "kind")
    if kind is not None and "functionapp" not in kind.lower().split(","):
        return State(
            Verdict.FAIL,
            f"the site is not a Function App (kind {kind!r}): is the component's resource the right site?",
            Category.PROVISIONING,
        )
    props = properties_of(site, where)
    state = documented(props.get("state"), str, where, "properties.state")
    if state is None:
        return State(Verdict.ERROR, "ARM reported no site state: cannot tell whether it runs", Category.UNDECIDED)
    if state.lower() == "stopped":
        return State(
            Verdict.FAIL, f"site state {state}; start it, or check why it stopped (activity log)", Category.PROVISIONING
        )
    if state.lower() != "running":
        return State(
            Verdict.ERROR,
            f"site state {state!r} (not Running or Stopped): cannot tell whether it runs",
            Category.UNDECIDED,
        )
    if documented(props.get("enabled"), bool, where, "properties.enabled") is False:
        return State(
            Verdict.FAIL,
            "site is disabled (enabled: false): the app is offline; enable it if it should serve this release",
            Category.PROVISIONING,
        )
    for key, table in (("availabilityState", AVAILABILITY), ("usageState", USAGE)):
        value = documented(props.get(key), str, where, f"properties.{key}")
        if value is None:
            continue
        known = {state.lower(): why for state, why in table.items()}
        if value.lower() not in known:
            return State(
                Verdict.ERROR,
                f"site {key} {value!r} is not one the API documents ({', '.join(table)}): cannot tell its meaning",
                Category.UNDECIDED,
            )
        why = known[value.lower()]
        if why is not None:
            return State(Verdict.FAIL, f"site {key} {value}: the app is {why}", Category.PROVISIONING)
    return None


def _latest(deployments: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """The deployment that started last. One that has not started (no start_time) is newer than every other; among
    equals, ARM's order (newest first, as Kudu lists them) decides."""
    never = dt.datetime.max.replace(tzinfo=dt.UTC)

    def started(entry: tuple[int, dict[str, Any]]) -> tuple[dt.datetime, int]:
        index, deployment = entry
        text = documented(properties_of(deployment, where).get("start_time"), str, where, "properties.start_time")
        return (never if text is None else _time(text, where), -index)

    return max(enumerate(deployments), key=started)[1]


def _time(text: str, where: str) -> dt.datetime:
    # Kudu writes .NET round-trip times (seven fractional digits, a Z); Python reads at most six.
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise malformed(where, f"start_time {text!r}, which the API documents as a date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _deployment_problem(latest: dict[str, Any], where: str) -> State | None:
    props = properties_of(latest, where)
    ident = _ident(latest, props)
    status = documented(props.get("status"), int, where, "deployment properties.status")
    said = f": {props.get('message')}" if props.get("message") else ""
    if status is None:
        return State(
            Verdict.ERROR,
            f"latest deployment {ident} reports no status: cannot tell whether it succeeded",
            Category.UNDECIDED,
        )
    if status in IN_PROGRESS:
        return State(None, f"latest deployment {ident} {IN_PROGRESS[status]}", Category.PROVISIONING)
    if status == FAILED:
        return State(Verdict.FAIL, f"latest deployment {ident} failed (Kudu status 3){said}", Category.PROVISIONING)
    if status != SUCCESS:
        name = OTHER_STATUS.get(status, "not a Kudu status")
        return State(
            Verdict.FAIL,
            f"latest deployment {ident} is status {status} ({name}); expected status 4 (Success){said}",
            Category.PROVISIONING,
        )
    return None


def _version_state(
    document: dict[str, Any], latest: dict[str, Any] | None, version: str, source: VersionSource, where: str
) -> State | None:
    """None when the source records exactly `version`; else the FAIL (another version) or ERROR (none, ambiguous)."""
    if source.kind == "deployment_message":
        assert latest is not None  # site_state returned a FAIL for an app without deployments
        props = properties_of(latest, where)
        message = documented(props.get("message"), str, where, "deployment properties.message") or ""
        found = f"latest deployment {_ident(latest, props)}"
        said = f"its message ({_quote(message)})"
        return _in_text(
            message, version, f"{found}'s message ({_quote(message)})", f"{found} is not version {version}: {said}"
        )
    if source.kind == "tag":
        tags = documented(document["site"].get("tags"), dict, where, "tags") or {}
        return _exact(tags.get(str(source.name)), version, source)
    setting = document["setting"]
    if source.kind == "app_setting":
        return _exact(setting.get("value"), version, source)
    return _package_state(setting, version, source)


def _exact(value: Any, version: str, source: VersionSource) -> State | None:
    if value is None or not str(value).strip():
        return _cannot_tell(f"{source.describe()} is not set")
    if str(value).strip() == version:
        return None
    return State(
        Verdict.FAIL, f"{source.describe()} is {_quote(str(value))}, expected {version}", Category.WRONG_VERSION
    )


def _package_state(setting: dict[str, Any], version: str, source: VersionSource) -> State | None:
    if "package" not in setting:
        return _cannot_tell(f"{PACKAGE_SETTING} is not set, so the app does not run from a package URL")
    package = setting["package"]
    if package is None:
        return _cannot_tell(
            f"{PACKAGE_SETTING} is not a URL (with 1 the package sits in the app's own storage and no URL names it)"
        )
    stem = _ARCHIVE.sub("", package)
    return _in_text(stem, version, f"package {package!r}", f"package {package!r} is not version {version}: it")


def _in_text(text: str, version: str, where: str, wrong: str) -> State | None:
    """Exactly one version named in `text`, and it is `version`. Several: ambiguous (a message that says "2.6.0 ->
    2.7.1" deploys one of them); none: the version was never recorded. `wrong` starts the FAIL: "<wrong> names X"."""
    named = sorted({match[1] for match in _VERSION.finditer(text)})
    hit = _names(text, version)
    others = [v for v in named if v != version]
    if hit and not others:
        return None
    if hit:
        listed = ", ".join([version, *others])
        return State(
            Verdict.ERROR,
            f"cannot tell the version: {where} names {listed}; record the released version alone, or set "
            f"version_source ({SOURCES})",
            Category.UNDECIDED,
        )
    if named:
        return State(Verdict.FAIL, f"{wrong} names {', '.join(named)}", Category.WRONG_VERSION)
    return _cannot_tell(f"{where} records no version")


def _names(text: str, version: str) -> bool:
    """Whether `version` stands in `text` as a whole version: not inside a longer number or word, not followed by
    more of a version (".3", "-rc.2", "+build"); a "v" in front is allowed."""
    for match in re.finditer(re.escape(version), text):
        start, end = match.start(), match.end()
        before = text[start - 1] if start else ""
        if before in "vV" and start >= 2:
            before = text[start - 2]
        elif before in "vV":
            before = ""
        after, then = text[end : end + 1], text[end + 1 : end + 2]
        continued = after.isalnum() or (after == "." and then.isdigit()) or (after in "-+" and then.isalnum())
        if not (before.isalnum() or before == ".") and not continued:
            return True
    return False


def _functions_state(
    listed: list[dict[str, Any]], latest: dict[str, Any] | None, version: str, source: VersionSource, where: str
) -> State:
    # Without a Kudu record (run from a package URL) the package is what was deployed.
    subject = f"deployment {_ident(latest, properties_of(latest, where))}" if latest is not None else "the package"
    names = sorted(str(f.get("name", "?")).rsplit("/", 1)[-1] for f in listed)
    disabled = sorted(
        str(f.get("name", "?")).rsplit("/", 1)[-1]
        for f in listed
        if documented(properties_of(f, where).get("isDisabled"), bool, where, "function properties.isDisabled")
    )
    if not names:
        return State(
            Verdict.FAIL,
            f"{subject} succeeded but 0 functions are loaded; check the host's "
            "logs, the app settings (FUNCTIONS_WORKER_RUNTIME) and the package contents",
            Category.PROVISIONING,
        )
    if len(disabled) == len(names):
        return State(
            Verdict.FAIL,
            f"{subject} succeeded but every function is disabled ({', '.join(disabled)}); enable them "
            "(the AzureWebJobs.<name>.Disabled app setting)",
            Category.PROVISIONING,
        )
    off = f" (disabled: {', '.join(disabled)})" if disabled else ""
    return State(
        Verdict.PASS,
        f"Running; {subject} {'Success' if latest is not None else 'runs (no Kudu deployment)'}, version {version} "
        f"({source.describe()}); "
        f"{len(names)} functions: {', '.join(names)}{off}",
    )


def _cannot_tell(why: str) -> State:
    return State(Verdict.ERROR, f"cannot tell the version: {why}; {RECORD_IT}", Category.UNDECIDED)


def _ident(deployment: dict[str, Any], props: dict[str, Any]) -> str:
    return str(deployment.get("name") or props.get("id") or "?")


def _quote(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
