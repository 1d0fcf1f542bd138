"""How the checks reach Azure Resource Manager: one call at a time, inside the run's deadline, with throttling and
every kind of refusal handled here instead of by the SDK.

    app = arm_call(lambda **kw: client.container_apps.get("rg", "orders", **kw), deadline, "Microsoft.App/orders")

The SDK's own retry policy honours Retry-After but may sleep past the deadline; here a 429 is retried only when its
Retry-After fits in what is left of the budget, and otherwise becomes an ERROR that says it was throttled; a 5xx is
tried again a few times the same way. Every other answer that is not the resource becomes a `TransportError` whose
failure class says why, worded for what to do next:

| ARM answered | failure | what the message says |
|---|---|---|
| 401 | CREDENTIALS | which credential is bad or expired, and how to refresh it |
| 403 | FORBIDDEN | the action ARM refused, on which scope, and which role grants it |
| 404 SubscriptionNotFound | OTHER | the subscription id or the credential's tenant is wrong |
| 404 ResourceGroupNotFound / ResourceNotFound | (Absent: FAIL) | which of the two is missing |
| 409, 412 | OTHER | another operation is changing the resource |
| 429, 5xx past the budget or the tries | THROTTLED / OTHER | the Retry-After it asked for vs the time left |
| 2xx with HTML, an empty or non-JSON body, or JSON of another shape | MALFORMED | not JSON / not what is documented |

Documents go into evidence only through `redact`, which blanks anything that looks like a secret.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from deploy_verify.checks.deadline import BudgetExhausted, Deadline
from deploy_verify.checks.runner import Absent
from deploy_verify.checks.transports import Failure, TransportError

if TYPE_CHECKING:
    from azure.core.exceptions import HttpResponseError

T = TypeVar("T")
SECRET_KEYS = re.compile(r"password|secret|token|key|connectionstring|credential|sas", re.IGNORECASE)
PUBLIC_KEYS = frozenset({"passwordSecretRef", "keyVaultUrl", "secretRef", "name", "identity"})
# ARM's own retry guidance: 5xx answers are transient; a few more tries, each within the budget.
SERVER_ERRORS = frozenset({500, 502, 503, 504})
SERVER_TRIES = 3
SERVER_PAUSE = 1.0  # between tries when ARM gives no Retry-After
MIN_PAUSE = 0.5  # a Retry-After of 0 must not turn the retries into a busy loop against ARM
# The SDKs log a traceback at WARNING when an error body is not JSON (a proxy's HTML page); the message here says it.
for _noisy in ("azure.mgmt.web._utils", "azure.mgmt.appcontainers._utils"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)
_DENIED = re.compile(r"perform action '(?P<action>[^']+)' over scope '(?P<scope>[^']+)'", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(?P<title>[^<]{0,200})", re.IGNORECASE)
_GROUP_SCOPE = re.compile(r"^(/subscriptions/[^/]+/resourcegroups/[^/]+)", re.IGNORECASE)


class ArmUnavailable(TransportError):
    """ARM could not answer the question (unreachable, refused credentials, throttled past the budget): ERROR."""


class ArmNotFound(Absent):
    """The resource does not exist: the deployment is wrong (FAIL), unless the environment file is."""


@dataclass(frozen=True)
class Credential:
    """Which credential the ARM clients use, so that a 401 can say which one to refresh and how."""

    name: str  # "the bearer token in $AZURE_ACCESS_TOKEN (azure.credential: token-env)"
    refresh: str  # what to do about it


GENERIC_CREDENTIAL = Credential(
    "the Azure credential",
    "refresh it: a new token for https://management.azure.com (azure.credential: token-env), or `az login` / the "
    "workload or managed identity (azure.credential: default)",
)


def token_env_credential(variable: str) -> Credential:
    return Credential(
        f"the bearer token in ${variable} (azure.credential: token-env)",
        f"put a fresh one there (`export {variable}=$(az account get-access-token --resource "
        "https://management.azure.com --query accessToken -o tsv)`; such tokens last about an hour)",
    )


DEFAULT_CREDENTIAL = Credential(
    "the identity DefaultAzureCredential found (azure.credential: default)",
    "refresh it: `az login` on a laptop; in CI the workload identity's federated credential and its "
    "AZURE_CLIENT_ID/AZURE_TENANT_ID; in Azure the managed identity",
)


def arm_call(
    call: Callable[..., T],
    deadline: Deadline,
    what: str,
    *,
    credential: Credential = GENERIC_CREDENTIAL,
    absent: str | None = None,
) -> T:
    """Run one SDK call with per-call timeouts from the deadline and budget-aware 429/5xx handling. `absent` is the
    hint a missing resource gets ("was it deployed to this resource group?")."""
    from azure.core.exceptions import (  # here, not at import: runs without Azure resources never load azure-core
        ClientAuthenticationError,
        DecodeError,
        DeserializationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    tries = 0
    while True:
        tries += 1
        try:
            timeout = deadline.timeout(deadline.calls.arm_request)
        except BudgetExhausted as exc:
            raise ArmUnavailable(f"{what}: not asked: {exc}", Failure.SPENT) from exc
        try:
            return call(connection_timeout=timeout, read_timeout=timeout, retry_total=0)
        except ResourceNotFoundError as exc:
            raise _not_found(exc, what, absent) from exc
        except ClientAuthenticationError as exc:
            raise _unauthenticated(exc, what, credential) from exc
        except DecodeError as exc:  # a 2xx whose body is not JSON although it says so (before HttpResponseError)
            raise malformed(what, _not_json(_body_of(exc))) from exc
        except HttpResponseError as exc:
            if exc.status_code == 429:
                _wait_out_throttling(exc, deadline, what)
                continue
            if exc.status_code in SERVER_ERRORS and tries < SERVER_TRIES:
                _pause_before_retry(exc, deadline, what)
                continue
            raise _refused(exc, what, tries) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise ArmUnavailable(
                f"{what}: ARM did not answer in time or is unreachable: {_first_line(exc)}", Failure.UNREACHABLE
            ) from exc
        except json.JSONDecodeError as exc:  # a 2xx with an HTML page or nothing, which the SDK parses unguarded
            raise malformed(what, _not_json(exc.doc)) from exc
        except (DeserializationError, AttributeError, TypeError) as exc:
            # The SDKs' list pagers index into the body: `[1, 2]` or `"ok"` where {"value": [...]} belongs.
            raise malformed(what, f"JSON that is not what the API documents ({_first_line(exc)})") from exc


def malformed(what: str, answer: str) -> ArmUnavailable:
    """The ERROR for an answer that is not JSON or not the documented shape: `ARM answered X with <answer>`."""
    return ArmUnavailable(
        f"{what}: ARM answered with {answer}; is a proxy or captive portal in the way, or does azure.arm_endpoint "
        "point at something other than ARM?",
        Failure.MALFORMED,
    )


def _not_found(exc: Any, what: str, absent: str | None) -> TransportError | ArmNotFound:
    code = _arm_code(exc)
    if code == "SubscriptionNotFound":
        return ArmUnavailable(
            f"{what}: {_arm_message(exc)}; check the environment's azure.subscriptions subscription_id, and that "
            "the credential's tenant holds that subscription",
            Failure.OTHER,
        )
    if code == "ResourceGroupNotFound":
        return ArmNotFound(
            f"{what}: resource group not found: {_arm_message(exc)}; check the component's resource_group in the "
            "environment file, or whether the group was deleted"
        )
    hint = f"; {absent}" if absent else ""
    return ArmNotFound(f"{what} not found: {_arm_message(exc)}{hint}")


def _unauthenticated(exc: Any, what: str, credential: Credential) -> ArmUnavailable:
    if exc.status_code is None:  # raised by the credential itself: no token was ever sent
        return ArmUnavailable(
            f"{what}: no token from {credential.name}: {_first_line(exc)}; {credential.refresh}", Failure.CREDENTIALS
        )
    advice = {
        "ExpiredAuthenticationToken": "the token has expired",
        "InvalidAuthenticationTokenTenant": "the token is from another tenant than the subscription's",
        "InvalidAuthenticationTokenAudience": "the token is not for https://management.azure.com",
    }.get(str(_arm_code(exc)), "the token is invalid or expired")
    return ArmUnavailable(
        f"{what}: ARM refused the credentials ({exc.status_code}): {_arm_message(exc)}; {credential.name}: "
        f"{advice}; {credential.refresh}",
        Failure.CREDENTIALS,
    )


def _refused(exc: HttpResponseError, what: str, tries: int) -> ArmUnavailable:
    status, said = exc.status_code, _arm_message(exc)
    if status == 403:
        return ArmUnavailable(
            f"{what}: ARM refused the request (403): {said}{_forbidden_advice(exc)}", Failure.FORBIDDEN
        )
    if status in (409, 412):
        return ArmUnavailable(
            f"{what}: ARM answered {status}: {said}; another operation is changing the resource: look at its "
            "activity log and run again once it ends",
            Failure.OTHER,
        )
    if status in SERVER_ERRORS:
        return ArmUnavailable(
            f"{what}: ARM answered {status}: {said} ({tries} tries); ARM or the resource provider is failing: see "
            "the Azure status page and the resource's activity log, and run again later",
            Failure.OTHER,
        )
    return ArmUnavailable(f"{what}: ARM answered {status}: {said}", Failure.OTHER)


def _forbidden_advice(exc: HttpResponseError) -> str:
    """A 403 is not always a missing role: ARM's code says whether a role, a policy or the subscription refused."""
    code, said = _arm_code(exc), _arm_message(exc)
    if code in (None, "AuthorizationFailed", "LinkedAuthorizationFailed"):
        return f"; {_role_advice(said)}"
    return {
        "RequestDisallowedByPolicy": "; an Azure Policy assignment denies it (ARM's message names the policy), not a "
        "missing role",
        "ReadOnlyDisabledSubscription": "; the subscription is disabled or read-only: see its state in the portal",
    }.get(code, "")


def _role_advice(said: str) -> str:
    """Which role grants the action ARM's AuthorizationFailed message names (it says the action and the scope)."""
    denied = _DENIED.search(said)
    if denied is None:
        return (
            "the identity lacks a role here: Reader on the resource group grants every read the suite makes (the "
            "app settings version source needs Microsoft.Web/sites/config/list/action as well)"
        )
    action, scope = denied["action"], denied["scope"]
    group = _GROUP_SCOPE.match(scope)
    where = group[1] if group else scope
    if action.lower().endswith("/read"):
        return f"the identity needs {action}: Reader on the resource group {where} (or above) grants it"
    if action.lower() == "microsoft.web/sites/config/list/action":
        return (
            f"the identity needs {action} on {scope}, which Reader does not grant (Reader holds */read only): "
            "assign Website Contributor, or a custom role with that one action, or choose a version_source that "
            "Reader can read (deployment_message, tag:NAME)"
        )
    return f"the identity needs a role that holds {action} on {scope}"


def _wait_out_throttling(exc: HttpResponseError, deadline: Deadline, what: str) -> None:
    delay = _retry_after(exc)
    wait = 5.0 if delay is None else max(delay, MIN_PAUSE)
    if wait >= deadline.remaining():
        raise ArmUnavailable(
            f"{what}: throttled by ARM (429, Retry-After {wait:g}s) with "
            f"{deadline.remaining():.0f}s of the {deadline.label} left; run fewer checks per "
            "subscription at once or raise the budget",
            Failure.THROTTLED,
        ) from exc
    time.sleep(wait)


def _pause_before_retry(exc: HttpResponseError, deadline: Deadline, what: str) -> None:
    delay = _retry_after(exc)
    wait = SERVER_PAUSE if delay is None else max(delay, MIN_PAUSE)
    if wait >= deadline.remaining():
        raise ArmUnavailable(
            f"{what}: ARM answered {exc.status_code}: {_arm_message(exc)}; it asked to try again after {wait:g}s, "
            f"more than the {deadline.remaining():.0f}s of the {deadline.label} left",
            Failure.OTHER,
        ) from exc
    time.sleep(wait)


def _retry_after(exc: HttpResponseError) -> float | None:
    # azure-core types the response as a protocol without headers; every transport's response has them.
    headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
    header = str(headers.get("Retry-After", "")).strip()
    return float(header) if header.replace(".", "", 1).isdigit() else None


def _body_of(exc: Any) -> str:
    try:
        return str(exc.response.text())
    except Exception:  # noqa: BLE001 - only used to describe the answer; an unreadable body is described as such
        return ""


def _not_json(body: str) -> str:
    """What a non-JSON body looked like, without echoing it: an HTML page (its title), an empty body, or text."""
    text = body.strip()
    if not text:
        return "an empty body that is not JSON"
    if text.startswith("<"):
        title = _TITLE.search(text)
        named = f" titled {title['title'].strip()[:80]!r}" if title and title["title"].strip() else ""
        return f"an HTML page{named}, not JSON"
    return f"a body that is not JSON ({len(text)} characters starting {text[:20]!r})"


def documented(value: Any, expected: type[T], what: str, path: str) -> T | None:
    """`value` if it has the type the API documents for `path` (None: absent), else the MALFORMED error."""
    if value is None:
        return None
    if isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool):
        return value
    kinds = {str: "a string", int: "an integer", dict: "an object", list: "an array", bool: "a boolean"}
    kind = kinds.get(expected, expected.__name__)
    raise malformed(what, f"{path} = {_short(value)}, which the API documents as {kind}")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def redact(document: Any) -> Any:
    """A copy with secret-looking values blanked: environment variable values, secrets, keys, connection strings."""
    if isinstance(document, dict):
        cleaned: dict[str, Any] = {}
        for key, value in document.items():
            if key in ("env", "appSettings") and isinstance(value, list):  # [{name, value}]: keep the names
                cleaned[key] = [
                    {**e, "value": "<redacted>"} if isinstance(e, dict) and "value" in e else e for e in value
                ]
            elif SECRET_KEYS.search(str(key)) and key not in PUBLIC_KEYS:
                cleaned[key] = _blank(value)
            else:
                cleaned[key] = redact(value)
        return cleaned
    if isinstance(document, list):
        return [redact(item) for item in document]
    return document


def _blank(value: Any) -> Any:
    """Everything under a secret-looking key, except names and references, which say what without saying the value."""
    if isinstance(value, dict):
        return {k: (v if k in PUBLIC_KEYS else _blank(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(item) for item in value]
    return "<redacted>" if isinstance(value, str | int | float) and not isinstance(value, bool) else value


def as_dict(model: Any, what: str = "ARM") -> dict[str, Any]:
    """SDK model -> plain dict with the REST API's own key names (what the portal's JSON view shows). The SDKs hand
    back whatever JSON arrived (a list, a string); anything but an object is the MALFORMED error."""
    if hasattr(model, "as_dict"):
        model = model.as_dict()
    if not isinstance(model, Mapping):
        raise malformed(what, f"JSON {_json_kind(model)} where the API documents an object")
    return dict(model)


def properties_of(document: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The resource's `properties` object; absent is an empty one, anything but an object is MALFORMED."""
    return dict(documented(document.get("properties"), dict, what, "properties") or {})


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _arm_code(exc: Any) -> str | None:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error is not None else None
    return str(code) if code else None


def _arm_message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "message", None):
        code = getattr(error, "code", None)
        return f"{code}: {error.message}" if code else str(error.message)
    reason = getattr(exc, "reason", None)
    body = _body_of(exc)
    if body.strip() and not body.strip().startswith("{"):  # a proxy's page instead of ARM's error object
        return f"{reason or 'an error'} with {_not_json(body)}"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
