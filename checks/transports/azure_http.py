"""The Azure SDKs' HTTP transport, bounded: every ARM call ends by its read timeout (capped by the run's deadline)
whatever the server does, body included.

    ContainerAppsAPIClient(credential, subscription, transport=BoundedRequestsTransport(deadline, connection_verify=ca))

azure-core's RequestsTransport hands `read_timeout` to requests, which applies it to each socket read: an ARM
endpoint (or a proxy in front of it) that trickles its answer keeps the call alive indefinitely. Here the whole
`send` (connect, TLS, headers and the body, which the SDK reads inside `send` for every non-streamed call) runs
under one cutoff (checks.transports.bounded); a cut call raises ServiceResponseTimeoutError naming the call, how
long it ran and where it was cut, which `arm_call` reports as ARM not answering in time.

Imported only where ARM clients are built: it loads azure-core.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseTimeoutError
from azure.core.pipeline.transport import RequestsTransport
from urllib3.util.retry import Retry

from deploy_verify.checks.deadline import BudgetExhausted, Deadline
from deploy_verify.checks.transports.bounded import Bound, bounded, bounded_session

TIMEOUT_NAME = "defaults.timeouts.arm_request"


class BoundedRequestsTransport(RequestsTransport):  # type: ignore[misc]  # exported through __getattr__: Any to mypy
    """RequestsTransport over a bounded session; each `send` within min(read_timeout, what is left of `deadline`)."""

    def __init__(self, deadline: Deadline | None = None, **kwargs: Any) -> None:
        # What RequestsTransport does to a session it makes itself: no urllib3 retries (azure-core's policies
        # retry, and arm_call turns them off), and the environment's proxy settings unless told otherwise.
        session = bounded_session(max_retries=Retry(total=False, redirect=False, raise_on_status=False))
        session.trust_env = kwargs.get("use_env_settings", True)
        super().__init__(session=session, session_owner=True, **kwargs)
        self._deadline = deadline

    def send(self, request: Any, **kwargs: Any) -> Any:
        bound = self._bound(kwargs.get("read_timeout") or self.connection_config.read_timeout)
        if not isinstance(kwargs.get("connection_timeout"), tuple):
            kwargs["read_timeout"] = bound.seconds
        with bounded(f"{request.method} {request.url}", bound) as cut:
            try:
                response = super().send(request, **kwargs)
            except AzureError as exc:
                if cut.fired:
                    raise ServiceResponseTimeoutError(cut.describe(), error=exc) from exc
                raise
            if cut.fired:  # a body without a length can end quietly when cut: never hand that on as an answer
                raise ServiceResponseTimeoutError(cut.describe())
        return response

    def _bound(self, wanted: float) -> Bound:
        if self._deadline is None:
            return Bound(float(wanted), TIMEOUT_NAME)
        try:
            return Bound.of(self._deadline, float(wanted), TIMEOUT_NAME)
        except BudgetExhausted as exc:
            raise ServiceRequestError(f"not sent: {exc}") from exc
