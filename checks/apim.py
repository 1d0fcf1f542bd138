"""Azure API Management: the service is provisioned, and each API the component names serves its released revision.

    results = check_apim(client, ServiceRef("rg-shop", "apim-shop"), [ApiExpectation("orders", revision="4")], deadline)

The first result is the service's (`APIM:rg/svc`): PASS when its provisioningState is Succeeded; a state ARM will
not leave by itself (Failed, Stopped, ...) and one still on its way (Updating, Activating, ...) are both FAILs, the
second "not settled" (this check looks once). Then one result per API (`APIM:rg/svc/apis/orders`), which PASSes when

- the API exists (else the FAIL lists the APIs the service has);
- the expected revision (the release manifest's `revisions:`, else the environment's `revision:`) exists and is the
  current one (`isCurrent`, `apiRevision`); with no revision expected the current one is only reported;
- the current revision is online (`isOnline`): an offline revision is not served by the gateway;
- it has operations: an API without any answers 404 to every call;
- the newest release (by createdDateTime) is not older than the current revision: the `;rev=N` of its apiId is at
  least the current revision, or, where its apiId names no revision (the spec's own examples), it was made after the
  current revision was created. Where the team records the released version in the release notes
  (`version_in_notes`), the newest release's notes name it. An API with no release at all passes with a note unless
  `version_in_notes` asks for one: ARM requires none (revision 1 of an API has none, and a revision made current
  through the API itself creates none), and no release contradicts nothing, while a release of an older revision
  says the current one was never released;
- its serviceUrl points at its backend: the address of the component it fronts (a container app's ingress FQDN),
  or the host or URL the environment writes out.

Several problems of one API are all named in its message, FAILs before what could not be decided. When the service
cannot be read (absent, refused, throttled) its result is the only one: every API would say the same.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.arm import (
    GENERIC_CREDENTIAL,
    ArmNotFound,
    Credential,
    arm_call,
    as_dict,
    documented,
    malformed,
    properties_of,
    redact,
)

if TYPE_CHECKING:
    from azure.mgmt.apimanagement import ApiManagementClient

CHECK = "apim_api_current"
ABSENT = "was it deployed to this resource group?"
# The SDK logs a traceback at WARNING when an error body is not JSON (a proxy's page); the transport's message says it.
logging.getLogger("azure.mgmt.apimanagement._serialization").setLevel(logging.ERROR)
_REVISION_OF = re.compile(r";rev=(?P<revision>[0-9]+)$", re.IGNORECASE)

# ApiManagementServiceBaseProperties.provisioningState (2024-05-01): "Created/Activating/Succeeded/Updating/Failed/
# Stopped/Terminating/TerminationFailed/Deleted", plus ARM's own Canceled. None: still on its way (not settled).
SERVICE_TERMINAL = {
    "Failed": "the last operation on the service failed",
    "Canceled": "the last operation on the service was canceled",
    "Stopped": "the service is stopped: its gateway serves nothing",
    "Terminating": "the service is being deleted",
    "TerminationFailed": "deleting the service failed; it is half gone",
    "Deleted": "the service was deleted",
}
SERVICE_SETTLING = ("Created", "Activating", "Updating")

Json = dict[str, Any]


@dataclass(frozen=True)
class ServiceRef:
    resource_group: str
    name: str

    @property
    def where(self) -> str:
        return f"APIM:{self.resource_group}/{self.name}"

    def api_where(self, api: str) -> str:
        return f"{self.where}/apis/{api}"


@dataclass(frozen=True)
class Backend:
    """Where an API's serviceUrl must point: a host (`orders.example.com`, a port too if given) or a URL, whose
    scheme, host, port and path prefix must match. `whose` names it in messages ("the container app orders's
    FQDN"); `expected` None says the fronted component has no address, and `missing` says why."""

    expected: str | None
    whose: str
    missing: str = ""


@dataclass(frozen=True)
class ApiExpectation:
    name: str  # the API id, without ;rev=N
    revision: str | None = None  # the revision that must be current; None: report the current one
    version: str | None = None  # the released version (the release manifest's `version`)
    version_in_notes: bool = False  # the newest release's notes must name `version`
    backend: Backend | None = None
    fronts: str | None = None  # the component whose address `backend` is, resolved by the caller


@dataclass
class ApiView:
    """What was read about one API, in the REST API's key names. `api` None: ARM has no such API; `others` are then
    the API ids the service does have."""

    name: str
    api: Json | None = None
    revisions: list[Json] = field(default_factory=list)
    releases: list[Json] = field(default_factory=list)
    operation: Json | None = None  # the first operation; None: the API has none
    others: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    verdict: Verdict
    message: str
    category: Category


# --- checking: read, then judge -----------------------------------------------------------------------------------


def check_apim(
    client: ApiManagementClient,
    ref: ServiceRef,
    apis: Sequence[ApiExpectation],
    deadline: Deadline,
    credential: Credential = GENERIC_CREDENTIAL,
    resolve: Callable[[ApiExpectation], ApiExpectation] = lambda expected: expected,
) -> list[CheckResult]:
    """The service's result, then one per API. `resolve` completes an expectation when its API is judged (the
    address of the component it fronts), so a component that cannot be read fails that API's result only."""
    services: list[Json] = []

    def service() -> CheckResult:
        services.append(read_service(client, ref, deadline, credential))
        return judge_service(ref, services[0])

    first = attempt(CHECK, ref.where, service)
    if not services:  # absent, or ARM would not say: each API would repeat it
        return [first]
    return [first, *(check_api(client, ref, api, deadline, credential, resolve) for api in apis)]


def check_api(
    client: ApiManagementClient,
    ref: ServiceRef,
    expected: ApiExpectation,
    deadline: Deadline,
    credential: Credential = GENERIC_CREDENTIAL,
    resolve: Callable[[ApiExpectation], ApiExpectation] = lambda expected: expected,
) -> CheckResult:
    where = ref.api_where(expected.name)
    views: list[ApiView] = []

    def judge() -> CheckResult:
        views.append(read_api(client, ref, expected.name, deadline, credential))
        return judge_api(views[0], resolve(expected), where)

    return attempt(CHECK, where, judge, evidence=lambda: _api_evidence(views[0]) if views else ())


def read_service(
    client: ApiManagementClient, ref: ServiceRef, deadline: Deadline, credential: Credential = GENERIC_CREDENTIAL
) -> Json:
    what = ref.where
    service = arm_call(
        lambda **kw: client.api_management_service.get(ref.resource_group, ref.name, **kw),
        deadline,
        what,
        credential=credential,
        absent=ABSENT,
    )
    return rest_of(service, what)


def read_api(
    client: ApiManagementClient,
    ref: ServiceRef,
    name: str,
    deadline: Deadline,
    credential: Credential = GENERIC_CREDENTIAL,
) -> ApiView:
    """The API (its current revision), its revisions, its releases (all pages: the spec orders them by nothing), and
    its first operation ($top=1: one is enough to know it has any)."""
    group, service, what = ref.resource_group, ref.name, ref.api_where(name)

    def call(read: Callable[..., Any], about: str) -> Any:
        return arm_call(read, deadline, f"{what}{about}", credential=credential)

    try:
        api = call(lambda **kw: client.api.get(group, service, name, **kw), "")
    except ArmNotFound:
        listed = call(lambda **kw: [rest_of(a, what) for a in client.api.list_by_service(group, service, **kw)], "")
        return ApiView(name, others=api_ids(listed))
    view = ApiView(name, api=rest_of(api, what))
    view.revisions = call(
        lambda **kw: [rest_of(r, what) for r in client.api_revision.list_by_service(group, service, name, **kw)],
        " revisions",
    )
    view.releases = call(
        lambda **kw: [rest_of(r, what) for r in client.api_release.list_by_service(group, service, name, **kw)],
        " releases",
    )
    view.operation = call(
        lambda **kw: next(
            (rest_of(o, what) for o in client.api_operation.list_by_api(group, service, name, top=1, **kw)), None
        ),
        " operations",
    )
    return view


def rest_of(model: Any, what: str) -> Json:
    """An SDK model as the REST API's JSON (camelCase, `properties` nested, read-only fields kept). This SDK's
    models flatten `properties` in as_dict(); serialize() gives the documented shape back."""
    serialize = getattr(model, "serialize", None)
    if callable(serialize):
        return as_dict(serialize(keep_readonly=True), what)
    return as_dict(model, what)


def api_ids(listed: list[Json]) -> list[str]:
    """The API ids of Api_ListByService, each once: other revisions (`orders;rev=2`) are the same API."""
    names = {str(a.get("name") or "").split(";rev=", 1)[0] for a in listed}
    return sorted(n for n in names if n)


# --- the service ------------------------------------------------------------------------------------------------


def judge_service(ref: ServiceRef, service: Json) -> CheckResult:
    props = properties_of(service, ref.where)
    state = documented(props.get("provisioningState"), str, ref.where, "properties.provisioningState")
    evidence = (Evidence.as_json(f"API Management service {ref.name}", redact(service)),)
    if state is None:
        message = "ARM reported no properties.provisioningState: cannot tell whether the service is provisioned"
        return CheckResult(CHECK, ref.where, Verdict.ERROR, message, evidence, Category.UNDECIDED)
    known = {s.lower(): s for s in ("Succeeded", *SERVICE_TERMINAL, *SERVICE_SETTLING)}
    canonical = known.get(state.lower())
    if canonical == "Succeeded":
        gateway = props.get("gatewayUrl")
        return CheckResult(CHECK, ref.where, Verdict.PASS, f"provisioningState Succeeded; gateway {gateway}")
    if canonical in SERVICE_TERMINAL:
        why = SERVICE_TERMINAL[canonical]
        message = f"provisioningState {state}: {why}; see the service's activity log"
        return CheckResult(CHECK, ref.where, Verdict.FAIL, message, evidence, Category.PROVISIONING)
    if canonical in SERVICE_SETTLING:
        target = props.get("targetProvisioningState")
        towards = f" (targetProvisioningState {target})" if target else ""
        message = (
            f"provisioningState {state}{towards}: not settled; an operation on the service is still running: run "
            "again once it ends"
        )
        return CheckResult(CHECK, ref.where, Verdict.FAIL, message, evidence, Category.PROVISIONING)
    documented_states = ", ".join(("Succeeded", *SERVICE_SETTLING, *SERVICE_TERMINAL))
    message = f"provisioningState {state!r} is not one the API documents ({documented_states}): cannot tell its meaning"
    return CheckResult(CHECK, ref.where, Verdict.ERROR, message, evidence, Category.UNDECIDED)


# --- one API ------------------------------------------------------------------------------------------------------


def judge_api(view: ApiView, expected: ApiExpectation, where: str) -> CheckResult:
    """The verdict on one API from what was read: every problem named, FAILs first; else what was found."""
    if view.api is None:
        return _absent(view, where)
    props = properties_of(view.api, where)
    current = documented(props.get("apiRevision"), str, where, "properties.apiRevision")
    if documented(props.get("isCurrent"), bool, where, "properties.isCurrent") is not True or current is None:
        message = (
            f"ARM answered apis/{view.name} with isCurrent {props.get('isCurrent')} and apiRevision {current}: "
            "cannot tell which revision is current"
        )
        return CheckResult(CHECK, where, Verdict.ERROR, message, _api_evidence(view), Category.UNDECIDED)
    numbers = _revision_numbers(view, where)
    problems = [
        p
        for p in (
            _revision_problem(current, numbers, expected.revision, view.name),
            _online_problem(props, view, current, where),
            _operations_problem(view, current),
            *_release_problems(view, expected, current, where),
            _backend_problem(props.get("serviceUrl"), expected.backend, where),
        )
        if p is not None
    ]
    failed = [p for p in problems if p.verdict is Verdict.FAIL] or problems
    if failed:
        message = "; ".join(p.message for p in failed)
        return CheckResult(CHECK, where, failed[0].verdict, message, _api_evidence(view), failed[0].category)
    return CheckResult(CHECK, where, Verdict.PASS, _found(view, expected, current, len(numbers), props))


def _absent(view: ApiView, where: str) -> CheckResult:
    has = f"its APIs: {', '.join(view.others)}" if view.others else "it has no APIs"
    message = (
        f"API {view.name} not found in the service ({has}); was it imported into this service under this id "
        "(the API's name, not its display name)?"
    )
    return CheckResult(CHECK, where, Verdict.FAIL, message, category=Category.PROVISIONING)


def _revision_numbers(view: ApiView, where: str) -> list[str]:
    """The revisions ApiRevision_ListByService names, in numeric order."""
    numbers = []
    for i, entry in enumerate(view.revisions):
        number = documented(entry.get("apiRevision"), str, where, f"revisions[{i}].apiRevision")
        if number is None or not number.isdigit():
            raise malformed(f"{where} revisions", f"revisions[{i}].apiRevision = {number!r}, not a revision number")
        numbers.append(number)
    return sorted(set(numbers), key=int)


def _revision_problem(current: str, numbers: list[str], wanted: str | None, api: str) -> Problem | None:
    if wanted is None or wanted == current:
        return None
    if wanted not in numbers:
        listed = ", ".join(numbers) or "none listed"
        return Problem(
            Verdict.FAIL,
            f"revision {wanted} does not exist (revisions: {listed}; current: {current}): was the release's "
            "revision created in this service?",
            Category.WRONG_VERSION,
        )
    return Problem(
        Verdict.FAIL,
        f"current revision is {current}, expected {wanted}: revision {wanted} exists but is not current; make it "
        f"current with a release (az apim api release create --api-id {api} --api-revision {wanted})",
        Category.WRONG_VERSION,
    )


def _online_problem(props: Json, view: ApiView, current: str, where: str) -> Problem | None:
    online = documented(props.get("isOnline"), bool, where, "properties.isOnline")
    if online is None:  # the API's own answer leaves it out: the revision list may say
        entry = _revision_entry(view, current)
        online = documented(entry.get("isOnline"), bool, where, "revisions isOnline") if entry else None
    if online is None:
        return Problem(
            Verdict.ERROR,
            f"ARM reported no isOnline for revision {current}: cannot tell whether the gateway serves it",
            Category.UNDECIDED,
        )
    if not online:
        return Problem(
            Verdict.FAIL,
            f"current revision {current} is offline (isOnline false): the gateway does not serve it",
            Category.PROVISIONING,
        )
    return None


def _operations_problem(view: ApiView, current: str) -> Problem | None:
    if view.operation is not None:
        return None
    return Problem(
        Verdict.FAIL,
        f"revision {current} has no operations: the gateway answers 404 to every call; was the API's definition "
        "imported (OpenAPI, WSDL) into this revision?",
        Category.PROVISIONING,
    )


def _release_problems(view: ApiView, expected: ApiExpectation, current: str, where: str) -> list[Problem | None]:
    if expected.version_in_notes and expected.version is None:
        return [
            Problem(
                Verdict.ERROR,
                "no released version to look for in the release notes (version_in_notes): pass --release FILE or "
                "--expect COMPONENT=VERSION",
                Category.UNDECIDED,
            )
        ]
    newest = _newest_release(view, where)
    if isinstance(newest, Problem):
        return [newest]
    if newest is None:
        if not expected.version_in_notes:
            return []
        return [
            Problem(
                Verdict.FAIL,
                f"no release recorded, expected one whose notes name {expected.version} (version_in_notes)",
                Category.WRONG_VERSION,
            )
        ]
    return [_stale_problem(view, newest, current, where), _notes_problem(newest, expected, where)]


def _newest_release(view: ApiView, where: str) -> Json | Problem | None:
    """The release with the latest createdDateTime; a Problem when several cannot be ordered."""
    if len(view.releases) < 2:
        return view.releases[0] if view.releases else None
    dated = [(_when(r, where), r) for r in view.releases]
    if any(when is None for when, _ in dated):
        return Problem(
            Verdict.ERROR,
            f"ARM reported a release without createdDateTime among {len(dated)}: cannot tell which is the newest",
            Category.UNDECIDED,
        )
    return max(dated, key=lambda pair: pair[0] or dt.datetime.min.replace(tzinfo=dt.UTC))[1]


def _stale_problem(view: ApiView, release: Json, current: str, where: str) -> Problem | None:
    """A release of a revision older than the current one: the current revision was made current without one."""
    name, released = release.get("name"), _released_revision(release, where)
    fix = f"revision {current} was made current without a release (az apim api release create --api-revision {current})"
    if released is not None:
        if int(released) >= int(current):
            return None
        return Problem(
            Verdict.FAIL,
            f"the newest release {name} is of revision {released}, older than the current revision {current}: {fix}",
            Category.WRONG_VERSION,
        )
    made, entry = _when(release, where), _revision_entry(view, current)
    created = _when(entry, where) if entry else None
    if made is None or created is None:
        return Problem(
            Verdict.ERROR,
            f"the newest release {name} names no revision (apiId without ;rev=N), and ARM reported no "
            f"createdDateTime for {'it' if made is None else f'revision {current}'}: cannot tell whether it is of "
            f"the current revision {current}",
            Category.UNDECIDED,
        )
    if made >= created:
        return None
    return Problem(
        Verdict.FAIL,
        f"the newest release {name} ({_shown(made)}) is older than the current revision {current} (created "
        f"{_shown(created)}): {fix}",
        Category.WRONG_VERSION,
    )


def _notes_problem(release: Json, expected: ApiExpectation, where: str) -> Problem | None:
    if not expected.version_in_notes or expected.version is None:
        return None
    notes = documented(properties_of(release, where).get("notes"), str, where, "release notes") or ""
    if expected.version in notes:
        return None
    return Problem(
        Verdict.FAIL,
        f"the newest release {release.get('name')} does not name the released version {expected.version} in its "
        f"notes ({notes!r}): was {expected.version} released through another revision, or not at all?",
        Category.WRONG_VERSION,
    )


def _backend_problem(service_url: Any, backend: Backend | None, where: str) -> Problem | None:
    if backend is None:
        return None
    if backend.expected is None:
        return Problem(Verdict.FAIL, backend.missing or f"{backend.whose} is not known", Category.PROVISIONING)
    url = documented(service_url, str, where, "properties.serviceUrl")
    if url is None:
        return Problem(
            Verdict.ERROR,
            f"the API has no serviceUrl, so its backend is set elsewhere (a set-backend-service policy), which this "
            f"check does not read: cannot tell whether it points at {backend.expected} ({backend.whose})",
            Category.UNDECIDED,
        )
    if "://" in backend.expected:
        if _under(url, backend.expected):
            return None
        return Problem(
            Verdict.FAIL,
            f"serviceUrl {url} is not under {backend.expected} ({backend.whose})",
            Category.PROVISIONING,
        )
    host = (urlsplit(url).hostname or "").lower()
    wanted = urlsplit(f"//{backend.expected}")
    port_ok = wanted.port is None or _port(urlsplit(url)) == wanted.port
    if host == (wanted.hostname or "").lower() and port_ok:
        return None
    return Problem(
        Verdict.FAIL,
        f"serviceUrl {url} points at {urlsplit(url).netloc or url}, {backend.whose} is {backend.expected}",
        Category.PROVISIONING,
    )


def _under(url: str, prefix: str) -> bool:
    """Same scheme, host and port (the scheme's default when left out), and the path starts with the prefix's
    segments (`/api` covers `/api/v2`, not `/apiv2`)."""
    got, want = urlsplit(url), urlsplit(prefix)
    if got.scheme.lower() != want.scheme.lower() or (got.hostname or "").lower() != (want.hostname or "").lower():
        return False
    if _port(got) != _port(want):
        return False
    segments = [s for s in want.path.split("/") if s]
    return [s for s in got.path.split("/") if s][: len(segments)] == segments


def _port(url: Any) -> int | None:
    return url.port or {"https": 443, "http": 80}.get(url.scheme.lower())


def _found(view: ApiView, expected: ApiExpectation, current: str, revisions: int, props: Json) -> str:
    as_expected = " as expected" if expected.revision is not None else ""
    listed = f"{revisions} revision{'s' if revisions != 1 else ''}"
    said = [f"current revision {current}{as_expected} (of {listed}), online, with operations"]
    newest = _newest_release(view, "")
    if isinstance(newest, dict):
        released = _released_revision(newest, "")
        of = f"of revision {released}" if released else "made after the current revision was created"
        noted = f", its notes name {expected.version}" if expected.version_in_notes else ""
        said.append(f"newest release {newest.get('name')} {of}{noted}")
    else:
        said.append("no release recorded (none needed: version_in_notes is off)")
    if expected.backend is not None:
        said.append(f"serviceUrl {props.get('serviceUrl')} points at {expected.backend.whose}")
    return "; ".join(said)


def _released_revision(release: Json, where: str) -> str | None:
    api_id = documented(properties_of(release, where).get("apiId"), str, where, "release apiId")
    match = _REVISION_OF.search(api_id or "")
    return match["revision"] if match else None


def _revision_entry(view: ApiView, number: str) -> Json | None:
    return next((r for r in view.revisions if r.get("apiRevision") == number), None)


def _when(document: Json, where: str) -> dt.datetime | None:
    """createdDateTime of a revision entry (top level) or a release (under properties), as an aware datetime."""
    raw = document.get("createdDateTime", (document.get("properties") or {}).get("createdDateTime"))
    text = documented(raw, str, where, "createdDateTime")
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise malformed(where, f"createdDateTime {text!r}, which is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _shown(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _api_evidence(view: ApiView) -> tuple[Evidence, ...]:
    read: Json = {"api": view.api, "revisions": view.revisions, "releases": view.releases}
    read["first operation"] = view.operation
    if view.api is None:
        read = {"apis of the service": view.others}
    return (Evidence.as_json(f"API {view.name}", redact(read)),)
