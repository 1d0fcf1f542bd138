"""An ARM (Azure Resource Manager) test server: the real Azure SDKs talk to it as they talk to management.azure.com.

No emulator exists for Container Apps, App Service or API Management, so this serves the documents of the published
REST API (Azure/azure-rest-api-specs: Microsoft.App ContainerApps_Get, Revisions_List, Revisions_Get; Microsoft.Web
sites, sites/deployments, sites/functions, and POST sites/{name}/config/appsettings/list; Microsoft.ApiManagement
2024-05-01 service, apis, apis/{apiId}/revisions, releases and operations) from a scriptable state, over HTTPS, behind
a bearer token:

    server = ArmServer(18480, "arm.pem", "arm.key", healthy_state(), token="local-token")
    server.start()            # server.url == "https://localhost:18480"
    ...
    server.stop()

The state is a dict (the server keeps its own deep copy; change it with set_state() or POST /_testbed/state):

    {
        "resources": {ARM id: document},   # ids compare case-insensitively, as in ARM; insertion order is list order
        "faults": [fault, ...],            # optional, see below
        "page_size": 50,                   # optional: list items per page; more items give a nextLink
    }

A GET of an id answers its document (id, name and type are filled in when missing). A GET of a collection
(.../containerApps/x/revisions, .../sites/x/deployments, .../sites/x/functions, or .../providers/Microsoft.App/
containerApps) answers {"value": [...], "nextLink": ...} with the documents directly under it (maybe none); its parent
must exist.

Paths are percent-decoded before anything compares them: the SDKs encode each path parameter, and an API Management
revision id `orders;rev=3` arrives as `orders%3Brev%3D3`.

API Management: the current revision of an API is the document `.../service/{svc}/apis/{apiId}` (properties
`apiRevision`, `isCurrent: true`, `isOnline`, `serviceUrl`, ...), every other revision `.../apis/{apiId};rev=N`, as
ARM names them. GET .../apis/{apiId}/revisions (ApiRevision_ListByService) is derived from those documents: one
ApiRevisionContract each ({apiId: ".../apis/{apiId};rev=N", apiRevision, isCurrent, isOnline, description,
privateUrl}), with the document's `_revision` (createdDateTime, updatedDateTime, or any override) merged in. Releases
(`.../apis/{apiId}/releases/{id}`) and operations (`.../apis/{apiId}/operations/{id}`) are plain child documents.
APIM collections carry `count` (the total across pages) as the spec's examples do, and page by the spec's `$top` (at
most that many per page) and `$skip` as well as by this server's `$skiptoken`.

App settings: a site document may carry `_appsettings` ({name: value}); POST .../sites/{name}/config/appsettings/list
answers them as ARM's StringDictionary ({"id", "name": "appsettings", "type": "Microsoft.Web/sites/config",
"properties": {...}}). They are never served by a GET, as in ARM, where reading them is an action of its own
(Microsoft.Web/sites/config/list/action), not a read.

Scripted progress: a document may carry `_sequence`, a list of partial documents deep-merged over it (dicts merge, lists
are replaced). The n-th GET of the document shows step n-1, the last step repeats for ever; so the four steps
[Provisioning, Provisioning, Provisioning, Provisioned] answer Provisioning to the first three GETs, then Provisioned.
`_clock: <ARM id>` makes it follow another resource's GETs instead (a revision that advances when its app is read).
Lists show the step last shown and never advance a sequence. Keys starting with "_" are never served.

Faults, matched in order against the lowercased request path (without the query):

    {"prefix": "/subscriptions/s/resourcegroups/rg",  # "" matches every ARM request
     "status": 429, "retry_after": 2,                  # Retry-After: 429 sends 1 unless told (null: no header);
                                                       # any other status sends it only when given
     "delay": 3.0,                                     # seconds to wait before answering (alone: a slow answer)
     "times": 2,                                       # how many requests it hits; absent or null: every one
     "code": "...", "message": "...",                  # optional ARM error code/message instead of the default
     "body": "<html>...</html>",                       # a raw body instead of ARM's (a proxy's page); with a
     "content_type": "text/html"}                      # body the status may be 2xx too (default 200)

Control endpoints (no token needed, never faulted, never counted):
    GET/POST /_testbed/state      read / replace the state (resets sequence clocks; faults come from the new state)
    GET/POST /_testbed/faults     read / replace the faults: a list, or {"faults": [...], "append": true}
    GET /_testbed/requests        {"total": n, "by_path": {lowercased path: n}, "log": [{method, path, api_version,
                                  status}]}; DELETE resets it

Every ARM request needs `Authorization: Bearer <token>` (else 401 with WWW-Authenticate, as ARM answers) and an
api-version (else 400 MissingApiVersionParameter). Only GET is served: anything else is 405, so a test can prove the
suite never writes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import ssl
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_PAGE_SIZE = 50
LOG_LIMIT = 2000  # the request log is for assertions, not an archive
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_FAULT_KEYS = {"prefix", "status", "retry_after", "delay", "times", "code", "message", "body", "content_type"}
_CLIENT = "ci@example.test' with object id '7d1e2f3a-0b4c-4d5e-8f6a-9b0c1d2e3f4a"  # as ARM names the caller
_NOT_FOUND_HINT = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"

Json = dict[str, Any]


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as-is instead of the JSON of `body`
    content_type: str = "application/json; charset=utf-8"


@dataclass
class Fault:
    prefix: str = ""
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    times: int | None = None
    code: str | None = None
    message: str | None = None
    body: str | None = None
    content_type: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> Fault:
        if not isinstance(raw, Mapping):
            raise ValueError(f"a fault is an object, got {raw!r}")
        unknown = set(raw) - _FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; allowed: {sorted(_FAULT_KEYS)}")

        def number(key: str, default: int | None = None) -> int | None:
            value = raw.get(key, default)
            return None if value is None else int(value)

        body = raw.get("body")
        status = number("status", 200 if body is not None else None)
        retry_after = raw.get("retry_after", 1 if status == 429 else None)
        fault = cls(
            prefix=str(raw.get("prefix", "")).lower().rstrip("/"),
            status=status,
            retry_after=None if retry_after is None else int(retry_after),
            delay=float(raw.get("delay", 0.0)),
            times=number("times"),
            code=raw.get("code"),
            message=raw.get("message"),
            body=None if body is None else str(body),
            content_type=raw.get("content_type"),
        )
        if fault.status is None and not fault.delay:
            raise ValueError(f"a fault needs a status, a body or a delay: {dict(raw)!r}")
        lowest = 200 if fault.body is not None else 400
        if fault.status is not None and not lowest <= fault.status <= 599:
            raise ValueError(
                f"a fault's status is an HTTP error status (4xx, 5xx; 2xx too with a body), got {fault.status!r}"
            )
        if fault.times is not None and fault.times < 1:
            raise ValueError(f"a fault's times is at least 1 (absent: every request), got {fault.times!r}")
        return fault

    def to_json(self) -> Json:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class _Route:
    """An ARM path split at its fixed points: /subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}..."""

    subscription: str
    resource_group: str
    namespace: str
    rest: tuple[str, ...]  # type, name, type, name, ...; an odd length is a collection

    @classmethod
    def parse(cls, path: str) -> _Route | None:
        parts = [p for p in path.split("/") if p]
        lowered = [p.lower() for p in parts]
        if len(parts) < 6 or lowered[0] != "subscriptions" or lowered[2] != "resourcegroups":
            return None
        if lowered[4] != "providers":
            return None
        return cls(parts[1], parts[3], parts[5], tuple(parts[6:]))

    @property
    def group_path(self) -> str:
        return f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group}".lower()

    def resource_path(self, depth: int) -> str:
        """The path of the resource `depth` levels down (1: the top-level resource)."""
        base = f"{self.group_path}/providers/{self.namespace}".lower()
        return "/".join([base, *self.rest[: 2 * depth]]).lower()

    def resource_type(self, depth: int) -> str:
        types = self.rest[: 2 * depth : 2]
        names = self.rest[1 : 2 * depth : 2]
        return "/".join([self.namespace, *(f"{t}/{n}" for t, n in zip(types, names, strict=False))])


class _Backend:
    """State, faults and counters; every method takes the lock, the HTTP handler never touches the data itself."""

    def __init__(self, state: Mapping[str, Any], token: str) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.resources: dict[str, Json] = {}
        self.faults: list[Fault] = []
        self.page_size = DEFAULT_PAGE_SIZE
        self.gets: Counter[str] = Counter()  # direct GETs per resource: the clock of `_sequence`
        self.by_path: Counter[str] = Counter()
        self.log: list[Json] = []
        self.total = 0
        self.replace_state(state)

    # --- control -------------------------------------------------------------------------------------------------

    def replace_state(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise ValueError("the state is an object with 'resources' (and optionally 'faults', 'page_size')")
        unknown = set(state) - {"resources", "faults", "page_size"}
        if unknown:
            raise ValueError(f"unknown state keys {sorted(unknown)}; allowed: faults, page_size, resources")
        resources = state.get("resources", {})
        if not isinstance(resources, Mapping) or not all(isinstance(d, Mapping) for d in resources.values()):
            raise ValueError("state['resources'] maps ARM ids to documents (objects)")
        page_size = int(state.get("page_size", DEFAULT_PAGE_SIZE))
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        faults = [Fault.parse(f) for f in state.get("faults", [])]
        documents = {
            key.lower().rstrip("/"): _complete(key, copy.deepcopy(dict(doc))) for key, doc in resources.items()
        }
        with self.lock:
            self.resources, self.faults, self.page_size = documents, faults, page_size
            self.gets.clear()

    def snapshot(self) -> Json:
        with self.lock:
            return {
                "resources": copy.deepcopy(self.resources),
                "faults": [f.to_json() for f in self.faults],
                "page_size": self.page_size,
            }

    def replace_faults(self, faults: list[Fault], *, append: bool) -> list[Json]:
        with self.lock:
            self.faults = [*self.faults, *faults] if append else faults
            return [f.to_json() for f in self.faults]

    def requests(self) -> Json:
        with self.lock:
            return {"total": self.total, "by_path": dict(self.by_path), "log": copy.deepcopy(self.log)}

    def reset_requests(self) -> None:
        with self.lock:
            self.total = 0
            self.by_path.clear()
            self.log.clear()

    # --- serving -------------------------------------------------------------------------------------------------

    def record(self, method: str, path: str, api_version: str | None) -> Json:
        entry: Json = {"method": method, "path": path.lower().rstrip("/"), "api_version": api_version, "status": None}
        with self.lock:
            self.total += 1
            self.by_path[entry["path"]] += 1
            self.log.append(entry)
            del self.log[:-LOG_LIMIT]
        return entry

    def take_faults(self, path: str) -> tuple[float, Fault | None]:
        """The delay to wait and the status fault to answer with; each fault that fires uses up one of its times."""
        lowered, delay = path.lower().rstrip("/"), 0.0
        with self.lock:
            for fault in list(self.faults):
                if not (lowered == fault.prefix or lowered.startswith(fault.prefix + "/") or not fault.prefix):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                delay += fault.delay
                if fault.status is not None:
                    return delay, fault
        return delay, None

    def get(self, path: str, query: Mapping[str, list[str]], origin: str) -> Answer:
        route = _Route.parse(path)
        if route is None or not route.rest:
            return _error(404, "InvalidResourceType", f"The ARM test server does not serve the path '{path}'.")
        with self.lock:
            missing = self._missing(route)
            if missing is not None:
                return missing
            key = path.lower().rstrip("/")
            if len(route.rest) % 2 == 0:
                self.gets[key] += 1
                return Answer(200, self._render(key))
            apim = _is_api_management(route)
            if _is_api_revisions(route):
                items: list[Any] = self._api_revisions(key.removesuffix("/revisions"))
            else:
                items = [k for k in self.resources if k.startswith(key + "/") and "/" not in k[len(key) + 1 :]]
            try:
                page, link = _page_of(items, self.page_size, query, path, origin, apim=apim)
            except _BadPaging as exc:
                return _error(400, exc.code, str(exc))
            body: Json = {"value": [self._render(k) if isinstance(k, str) else k for k in page]}
            if apim:
                body["count"] = len(items)  # APIM's collections carry the total across pages
            if link:
                body["nextLink"] = link
            return Answer(200, body)

    def app_settings(self, path: str) -> Answer:
        """WebApps_ListApplicationSettings: POST .../sites/{name}/config/appsettings/list, a StringDictionary."""
        site_path = path.lower().rstrip("/").removesuffix("/config/appsettings/list")
        route = _Route.parse(site_path)
        assert route is not None
        with self.lock:
            missing = self._missing(route)
            if missing is not None:
                return missing
            settings = dict(self.resources[site_path].get("_appsettings") or {})
        config_id = f"{self.resources[site_path]['id']}/config/appsettings"
        return Answer(
            200,
            {"id": config_id, "name": "appsettings", "type": "Microsoft.Web/sites/config", "properties": settings},
        )

    def patch(self, path: str, raw: bytes) -> Answer:
        """ContainerApps_Update: a JSON merge patch of the app (objects merge, arrays replace), answered 200 with the
        app as stored, which the spec allows for an update that completes at once (the drill's traffic switch)."""
        route = _Route.parse(path)
        assert route is not None
        try:
            patch = json.loads(raw or b"{}")
        except ValueError:
            return _error(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        if not isinstance(patch, dict):
            return _error(400, "InvalidRequestContent", "The request content must be a JSON object.")
        with self.lock:
            missing = self._missing(route)
            if missing is not None:
                return missing
            key = path.lower().rstrip("/")
            stored = self.resources[key]
            steps = stored.pop("_sequence", None)  # a patched app has settled: its scripted sequence ends here
            if steps:
                stored.update(_merge({k: v for k, v in stored.items() if not k.startswith("_")}, steps[-1]))
            self.resources[key] = _merge(stored, patch)
            return Answer(200, self._render(key))

    def _missing(self, route: _Route) -> Answer | None:
        """ARM's own 404s: the first thing on the path that does not exist (subscription, group, parent, resource)."""
        subscription = f"/subscriptions/{route.subscription}/".lower()
        if not any(k.startswith(subscription) for k in self.resources):
            return _error(404, "SubscriptionNotFound", f"The subscription '{route.subscription}' could not be found.")
        if not any(k.startswith(route.group_path + "/") for k in self.resources):
            return _error(404, "ResourceGroupNotFound", f"Resource group '{route.resource_group}' could not be found.")
        for depth in range(1, len(route.rest) // 2 + 1):
            if route.resource_path(depth) not in self.resources:
                return _error(
                    404,
                    "ResourceNotFound",
                    f"The Resource '{route.resource_type(depth)}' under resource group '{route.resource_group}' "
                    f"was not found. {_NOT_FOUND_HINT}",
                )
        return None

    def _api_revisions(self, api_key: str) -> list[Json]:
        """ApiRevision_ListByService: one ApiRevisionContract per revision of the API, derived from the revision
        entities themselves (`apis/{apiId}` is the current one, `apis/{apiId};rev=N` the others), so the list and the
        entities cannot disagree unless a test says so with `_revision` (merged over the derived entry)."""

        def of_this_api(key: str) -> bool:
            return key == api_key or (key.startswith(api_key + ";rev=") and "/" not in key[len(api_key) :])

        return [self._revision_entry(k) for k in self.resources if of_this_api(k)]

    def _revision_entry(self, key: str) -> Json:
        doc = self._render(key)
        props: Json = doc["properties"] if isinstance(doc.get("properties"), dict) else {}
        revision = props.get("apiRevision")
        api_id = str(doc.get("id", key)).split(";rev=", 1)[0]
        entry: Json = {
            "apiId": f"{api_id};rev={revision}",
            "apiRevision": revision,
            "description": props.get("apiRevisionDescription"),
            "isOnline": props.get("isOnline"),
            "isCurrent": props.get("isCurrent"),
        }
        if not props.get("isCurrent") and props.get("path") is not None:
            entry["privateUrl"] = f"/{props['path']};rev={revision}"  # how the gateway reaches a non-current one
        entry.update(copy.deepcopy(self.resources[key].get("_revision") or {}))
        return {k: v for k, v in entry.items() if v is not None}

    def _render(self, key: str) -> Json:
        """The document as served: its sequence step merged in, the testbed's own keys removed."""
        stored = self.resources[key]
        doc = {k: copy.deepcopy(v) for k, v in stored.items() if not k.startswith("_")}
        steps = stored.get("_sequence") or []
        if steps:
            clock = str(stored.get("_clock", key)).lower().rstrip("/")
            step = min(max(self.gets[clock] - 1, 0), len(steps) - 1)
            doc = _merge(doc, steps[step])
        return doc


def _page_of(
    items: list[Any], page_size: int, query: Mapping[str, list[str]], path: str, origin: str, *, apim: bool = False
) -> tuple[list[Any], str | None]:
    """One page of `items` and the nextLink to the next one (None: the last page). Every collection pages by the
    $skiptoken this server hands out; API Management's also take the spec's `$top` (at most that many per page) and
    `$skip` (from that offset), and their nextLink carries both on, as APIM's does. _BadPaging (a 400) for a
    $skiptoken this server never handed out, or a $top or $skip that is not a number the spec allows."""
    top = _number(query, "$top", minimum=1) if apim else None
    skip = _number(query, "$skip", minimum=0) if apim else None
    start = skip if skip is not None else _skip_token(query)
    size = min(top, page_size) if top is not None else page_size
    page = items[start : start + size]
    if start + size >= len(items):
        return page, None
    # ARM hands out absolute links that carry the api-version; the SDK re-sends them with its own. The path goes
    # out encoded as it came in (an APIM revision id's ";rev=N" travels as %3Brev%3DN).
    version = query.get("api-version", [""])[0]
    link = f"{origin}{quote(path, safe='/')}?api-version={version}"
    if top is not None or skip is not None:
        kept = f"&$top={top}" if top is not None else ""
        return page, f"{link}{kept}&$skip={start + size}"
    return page, f"{link}&$skiptoken={start + size}"


class _BadPaging(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _skip_token(query: Mapping[str, list[str]]) -> int:
    raw = query.get("$skiptoken", ["0"])[0]
    if not raw.isdigit():
        raise _BadPaging("InvalidSkipToken", "The $skiptoken is not one this server handed out.")
    return int(raw)


def _number(query: Mapping[str, list[str]], name: str, *, minimum: int) -> int | None:
    """An APIM paging parameter: absent (None), or an integer of at least `minimum`, as the spec declares them."""
    if name not in query:
        return None
    raw = query[name][0]
    if not raw.isdigit() or int(raw) < minimum:
        raise _BadPaging(
            "InvalidQueryParameterValue",
            f"The value '{raw}' of query parameter {name} is invalid: an integer of at least {minimum} is expected.",
        )
    return int(raw)


def _is_api_management(route: _Route) -> bool:
    return route.namespace.lower() == "microsoft.apimanagement"


def _is_api_revisions(route: _Route) -> bool:
    """.../providers/Microsoft.ApiManagement/service/{svc}/apis/{apiId}/revisions: a view, not stored documents."""
    return _is_api_management(route) and [p.lower() for p in route.rest[::2]] == ["service", "apis", "revisions"]


def _is_app_settings_list(path: str) -> bool:
    route = _Route.parse(path)
    return (
        route is not None
        and route.namespace.lower() == "microsoft.web"
        and [p.lower() for p in route.rest[::2]] == ["sites", "config", "list"]
        and route.rest[3].lower() == "appsettings"
    )


def _is_container_app(path: str) -> bool:
    route = _Route.parse(path)
    return (
        route is not None
        and route.namespace.lower() == "microsoft.app"
        and len(route.rest) == 2
        and route.rest[0].lower() == "containerapps"
    )


def _complete(key: str, doc: Json) -> Json:
    """Fill id, name and type from the id, as ARM always returns them."""
    doc.setdefault("id", key)
    route = _Route.parse(key)
    if route is not None and len(route.rest) >= 2 and len(route.rest) % 2 == 0:
        doc.setdefault("name", route.rest[-1])
        doc.setdefault("type", "/".join([route.namespace, *route.rest[::2]]))
    return doc


def _merge(base: Json, patch: Mapping[str, Any]) -> Json:
    merged = dict(base)
    for k, v in patch.items():
        if isinstance(v, Mapping) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = copy.deepcopy(v)
    return merged


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}}, headers or {})


def _fault_answer(fault: Fault, route: _Route | None, method: str, path: str) -> Answer:
    status = fault.status or 500
    subscription = route.subscription if route else "unknown"
    headers: dict[str, str] = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    if fault.body is not None:  # not ARM's answer at all: a proxy's page, a truncated or wrongly shaped body
        content_type = fault.content_type or "text/html; charset=utf-8"
        return Answer(status, None, headers, raw=fault.body.encode(), content_type=content_type)
    if status == 429:
        code = "SubscriptionRequestsThrottled"
        message = (
            f"Number of 'read' requests for subscription '{subscription}' actor 'testbed' exceeded. "
            f"Please try again after '{fault.retry_after or 1}' seconds after additional tasks are completed."
        )
    elif status == 401:
        return _unauthorized(
            fault.code or "InvalidAuthenticationToken", fault.message or "The access token is invalid."
        )
    elif status == 403:
        code = "AuthorizationFailed"
        action, scope = _action_of(route, method, path)
        message = (
            f"The client '{_CLIENT}' does not have authorization to perform action '{action}' over scope "
            f"'{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        )
    elif status == 500:
        code = "InternalServerError"
        message = f"Encountered internal server error. Diagnostic information: tracking id '{uuid.uuid4()}'."
    else:
        try:
            code = HTTPStatus(status).phrase.replace(" ", "")
        except ValueError:
            code = "Error"
        message = f"The ARM test server answers {status} (a scripted fault)."
    return _error(status, fault.code or code, fault.message or message, headers)


def _action_of(route: _Route | None, method: str, path: str) -> tuple[str, str]:
    """The RBAC action a request needs and the scope ARM names, as in its AuthorizationFailed message: a GET is
    `<namespace>/<types>/read` on the resource; a POST .../list is `<namespace>/<types>/list/action` on what it lists
    (POST sites/x/config/appsettings/list needs Microsoft.Web/sites/config/list/action)."""
    if route is None:
        return "read", path
    types = list(route.rest[::2])
    scope = path.rstrip("/")
    if method == "POST":
        scope = scope.rsplit("/", 1)[0]
        return "/".join([route.namespace, *types]) + "/action", scope
    return "/".join([route.namespace, *types, "read"]), scope


def _unauthorized(code: str, message: str) -> Answer:
    # ARM's challenge; error="invalid_token" (not insufficient_claims) so azure-core does not retry with new claims.
    challenge = (
        'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
        f'error_description="{message}"'
    )
    return _error(401, code, message, {"WWW-Authenticate": challenge})


class _Handler(BaseHTTPRequestHandler):
    server: _ArmHttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    # Headers and body leave in two writes; with Nagle on, the second waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection ends eventually even if nobody stops the server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path.startswith("/_testbed/"):
            self._send(self._control(method, url.path, body))
            return
        backend = self.server.backend
        versions = query.get("api-version")
        # The SDKs percent-encode each path parameter (an APIM revision "orders;rev=3" arrives as orders%3Brev%3D3);
        # ARM compares the decoded ids, and so do the state, the faults and the request log.
        path = unquote(url.path)
        entry = backend.record(method, path, versions[0] if versions else None)
        answer = self._arm(method, path, query, body)
        if answer is None:  # the server stopped while this request waited out a delay
            self.close_connection = True
            return
        entry["status"] = answer.status
        self._send(answer)

    def _arm(self, method: str, path: str, query: Mapping[str, list[str]], body: bytes = b"") -> Answer | None:
        backend = self.server.backend
        authorization = self.headers.get("Authorization")
        if authorization is None:
            return _unauthorized(
                "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        if authorization != f"Bearer {backend.token}":
            return _unauthorized("InvalidAuthenticationToken", "The access token is invalid.")
        delay, fault = backend.take_faults(path)
        if delay and self.server.stopping.wait(delay):
            return None
        if fault is not None:
            return _fault_answer(fault, _Route.parse(path), method, path)
        version = (query.get("api-version") or [""])[0]
        if not version:
            return _error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not _API_VERSION.fullmatch(version):
            return _error(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid.")
        if method == "PATCH" and _is_container_app(path):
            return backend.patch(path, body)
        if method == "POST" and _is_app_settings_list(path):
            return backend.app_settings(path)
        if method != "GET":
            return _error(405, "MethodNotAllowed", f"The ARM test server is read-only; {method} is not served.")
        origin = f"https://{self.headers.get('Host') or self.server.authority}"
        return backend.get(path, query, origin)

    def _control(self, method: str, path: str, raw: bytes) -> Answer:
        backend = self.server.backend
        try:
            payload = json.loads(raw) if raw else None
            if (method, path) == ("GET", "/_testbed/requests"):
                return Answer(200, backend.requests())
            if (method, path) == ("DELETE", "/_testbed/requests"):
                backend.reset_requests()
                return Answer(200, {"total": 0})
            if (method, path) == ("GET", "/_testbed/state"):
                return Answer(200, backend.snapshot())
            if (method, path) == ("POST", "/_testbed/state"):
                backend.replace_state(payload or {})
                return Answer(200, {"resources": len(backend.resources)})
            if (method, path) == ("GET", "/_testbed/faults"):
                return Answer(200, {"faults": backend.snapshot()["faults"]})
            if (method, path) == ("POST", "/_testbed/faults"):
                wrapped = payload if isinstance(payload, Mapping) else {"faults": payload or []}
                faults = [Fault.parse(f) for f in wrapped.get("faults") or []]
                return Answer(200, {"faults": backend.replace_faults(faults, append=bool(wrapped.get("append")))})
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            return _error(400, "InvalidTestbedRequest", str(exc))
        return _error(404, "NotFound", f"no testbed control endpoint {method} {path}")

    def _send(self, answer: Answer) -> None:
        data = (
            answer.raw if answer.raw is not None else b"" if answer.body is None else json.dumps(answer.body).encode()
        )
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: /_testbed/requests is the record


class _ArmHttpServer(ThreadingHTTPServer):
    """TLS per connection in the connection's thread (a client that never handshakes cannot block accept()), with
    every connection tracked so stop() can end keep-alive connections and join their threads."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, context: ssl.SSLContext, backend: _Backend, host_name: str) -> None:
        self.context, self.backend, self.host_name = context, backend, host_name
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.handlers: set[threading.Thread] = set()
        self.tracking = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def authority(self) -> str:
        return f"{self.host_name}:{self.server_address[1]}"

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            daemon=True,
            name=f"arm-connection:{self.server_address[1]}",
        )
        with self.tracking:
            self.handlers.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.tracking:
                self.handlers.discard(threading.current_thread())

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate or hung up: nothing to answer
        with self.tracking:
            if self.stopping.is_set():
                tls.close()
                return
            self.connections.add(tls)
        try:
            _Handler(tls, client_address, self)
        finally:
            with self.tracking:
                self.connections.discard(tls)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up mid-answer are part of the fault tests

    def close_connections(self) -> None:
        with self.tracking:
            connections, handlers = list(self.connections), list(self.handlers)
        for tls in connections:
            # socket.shutdown on the descriptor, not SSLSocket.shutdown: the latter drops the SSL object that the
            # handler's thread is reading from. A blocked read then returns EOF and the handler ends.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(tls, socket.SHUT_RDWR)
        for thread in handlers:
            thread.join(timeout=5)


class ArmServer:
    """The ARM test server on 127.0.0.1:`port` (0 picks a free port; `port` and `url` give the real one once up)."""

    def __init__(
        self,
        port: int,
        cert_file: str | Path,
        key_file: str | Path,
        state: Mapping[str, Any],
        token: str,
        *,
        host_name: str = "localhost",
    ) -> None:
        self._requested_port = self._port = port
        self._host_name = host_name  # the name in the certificate; the SDK connects to this name
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(str(cert_file), str(key_file))
        self._backend = _Backend(state, token)
        self._httpd: _ArmHttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("the ARM test server is already running")
        try:
            httpd = _ArmHttpServer(self._requested_port, self._context, self._backend, self._host_name)
        except OSError as exc:
            raise RuntimeError(
                f"cannot serve the ARM test server on 127.0.0.1:{self._requested_port}: {exc.strerror}; "
                "is another testbed running? try `python -m testbed down`"
            ) from exc
        self._httpd, self._port = httpd, int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name=f"arm-server:{self.port}"
        )
        self._thread.start()

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.stopping.set()  # wakes requests waiting out a delay fault
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> ArmServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port; after stop() still the last one, so a test can aim at a server that went away."""
        return self._port

    @property
    def url(self) -> str:
        return f"https://{self._host_name}:{self.port}"

    # --- the control endpoints, for callers in the same process ----------------------------------------------------

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._backend.replace_state(state)

    def state(self) -> Json:
        return self._backend.snapshot()

    def set_faults(self, faults: list[Mapping[str, Any]], *, append: bool = False) -> None:
        self._backend.replace_faults([Fault.parse(f) for f in faults], append=append)

    def requests(self) -> Json:
        return self._backend.requests()

    def count(self, path: str) -> int:
        """Requests served for one path (any casing, no query)."""
        return int(self._backend.requests()["by_path"].get(path.lower().rstrip("/"), 0))

    def reset_requests(self) -> None:
        self._backend.reset_requests()
