"""How the checks reach the systems they read, kept apart from what they assert (pytest-testinfra's `backend/`):
Kubernetes (`kube`), Azure Resource Manager (`arm`). HTTP and TLS probes speak requests and ssl directly.

Every transport failure is a `TransportError`: the question could not be answered, so the verdict is ERROR in the
"Infrastructure unreachable" class. `suite.runner` turns it into that result in one place; a check never catches it
just to say so.
"""

from __future__ import annotations

from enum import StrEnum

from deploy_verify.checks.result import Category


class Failure(StrEnum):
    """Why a transport could not answer; each class has one wording per transport."""

    UNREACHABLE = "unreachable"  # refused, reset, DNS, timeout
    CREDENTIALS = "credentials"  # 401: bad or expired credentials
    FORBIDDEN = "forbidden"  # 403: authenticated, not authorised
    THROTTLED = "throttled"  # 429 past what the budget allows
    MALFORMED = "malformed"  # an answer that is not what the API documents
    SPENT = "spent"  # the time budget ran out before the call
    OTHER = "other"


class TransportError(Exception):
    """The system could not be asked. `failure` says which class; the category is always "unreachable"."""

    category = Category.UNREACHABLE

    def __init__(self, message: str, failure: Failure = Failure.OTHER) -> None:
        super().__init__(message)
        self.failure = failure
