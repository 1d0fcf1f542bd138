"""How the checks reach Azure Resource Manager: one call at a time, inside the run's deadline, with throttling
handled here instead of by the SDK.

    app = arm_call(lambda **kw: client.container_apps.get("rg", "orders", **kw), deadline, "Microsoft.App/orders")

The SDK's own retry policy honours Retry-After but may sleep past the deadline; here a 429 is retried only when its
Retry-After fits in what is left of the budget, and otherwise becomes an ERROR that says it was throttled. Documents
go into evidence only through `redact`, which blanks anything that looks like a secret.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from checks.deadline import BudgetExhausted, Deadline
from checks.runner import Absent
from checks.transports import Failure, TransportError

if TYPE_CHECKING:
    from azure.core.exceptions import HttpResponseError

T = TypeVar("T")
SECRET_KEYS = re.compile(r"password|secret|token|key|connectionstring|credential|sas", re.IGNORECASE)
PUBLIC_KEYS = frozenset({"passwordSecretRef", "keyVaultUrl", "secretRef", "name", "identity"})


class ArmUnavailable(TransportError):
    """ARM could not answer the question (unreachable, refused credentials, throttled past the budget): ERROR."""


class ArmNotFound(Absent):
    """The resource does not exist: the deployment is wrong (FAIL), unless the environment file is."""


def arm_call(call: Callable[..., T], deadline: Deadline, what: str) -> T:
    """Run one SDK call with per-call timeouts from the deadline and budget-aware 429 handling."""
    from azure.core.exceptions import (  # here, not at import: runs without Azure resources never load azure-core
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    while True:
        try:
            timeout = deadline.timeout(deadline.calls.arm_request)
        except BudgetExhausted as exc:
            raise ArmUnavailable(f"{what}: not asked: {exc}", Failure.SPENT) from exc
        try:
            return call(connection_timeout=timeout, read_timeout=timeout, retry_total=0)
        except ResourceNotFoundError as exc:
            raise ArmNotFound(f"{what} not found: {_arm_message(exc)}") from exc
        except ClientAuthenticationError as exc:
            raise ArmUnavailable(
                f"{what}: credentials refused ({exc.status_code}): {_arm_message(exc)}; check "
                "the identity's role assignment (Reader on the resource group)",
                Failure.CREDENTIALS,
            ) from exc
        except HttpResponseError as exc:
            if exc.status_code == 429:
                _wait_out_throttling(exc, deadline, what)
                continue
            failure = Failure.FORBIDDEN if exc.status_code == 403 else Failure.OTHER
            raise ArmUnavailable(f"{what}: ARM answered {exc.status_code}: {_arm_message(exc)}", failure) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise ArmUnavailable(
                f"{what}: ARM did not answer in time or is unreachable: {_first_line(exc)}", Failure.UNREACHABLE
            ) from exc


def _wait_out_throttling(exc: HttpResponseError, deadline: Deadline, what: str) -> None:
    # azure-core types the response as a protocol without headers; every transport's response has them.
    headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
    header = str(headers.get("Retry-After", ""))
    delay = float(header) if header.replace(".", "", 1).isdigit() else 5.0
    if delay >= deadline.remaining():
        raise ArmUnavailable(
            f"{what}: throttled by ARM (429, Retry-After {delay:g}s) with "
            f"{deadline.remaining():.0f}s of the {deadline.label} left; run fewer checks per "
            "subscription at once or raise the budget",
            Failure.THROTTLED,
        ) from exc
    time.sleep(delay)


def redact(document: Any) -> Any:
    """A copy with secret-looking values blanked: environment variable values, secrets, keys, connection strings."""
    if isinstance(document, dict):
        cleaned: dict[str, Any] = {}
        for key, value in document.items():
            if key == "env" and isinstance(value, list):
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


def as_dict(model: Any) -> dict[str, Any]:
    """SDK model -> plain dict with the REST API's own key names (what the portal's JSON view shows)."""
    result: dict[str, Any] = model.as_dict() if hasattr(model, "as_dict") else dict(model)
    return result


def _arm_message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "message", None):
        code = getattr(error, "code", None)
        return f"{code}: {error.message}" if code else str(error.message)
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
