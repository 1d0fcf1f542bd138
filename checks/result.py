"""What every check returns: a verdict, a message an operator can act on, and the evidence behind it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """PASS: the deployment is right. FAIL: it is wrong. ERROR: the check could not decide (the gate is red too)."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    ERROR = "error"


class Category(StrEnum):
    """Where a red result is filed in the report: the failure classes a reviewer triages by. A result carries its
    category as data; the report never guesses it from the wording of the message."""

    WRONG_VERSION = "Wrong version"
    CERTIFICATE = "Certificate"
    ROLLOUT_STUCK = "Rollout stuck"
    UNHEALTHY_ENDPOINT = "Unhealthy endpoint"
    PROVISIONING = "Provisioning"
    POLICY = "Manifest policy"  # a pre-deploy render breaks the cluster's schema or a policy rule
    DRIFT = "Infrastructure drift"  # what runs differs from the infrastructure code's desired state
    METRICS = "Service metrics degraded"  # a metric rule (error ratio, latency) breaks its threshold or baseline
    UNREACHABLE = "Infrastructure unreachable"
    UNDECIDED = "Could not decide"


@dataclass(frozen=True)
class Evidence:
    """One attachment: a name, its text and a MIME type (text/plain, application/json, or image/svg+xml for a plot)."""

    name: str
    content: str
    mime: str = "text/plain"

    @classmethod
    def as_json(cls, name: str, data: Any) -> Evidence:
        """Evidence.as_json("response", {"status": 200}) -> pretty JSON evidence."""
        return cls(name, json.dumps(data, indent=2, sort_keys=True, default=str), "application/json")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one target.

    `target` says where (`https://host:port/health`, `tls://host:port`, `Deployment:ns/name`); `message` is one line
    that says what was checked, expected vs found, and what to look at next.
    """

    check: str
    target: str
    verdict: Verdict
    message: str
    evidence: tuple[Evidence, ...] = field(default=())
    # The failure class of a red result; None lets the family decide (its category for a FAIL, "Could not decide"
    # for an ERROR). Ignored on a PASS.
    category: Category | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.PASS

    def line(self) -> str:
        """`https://x/health: HTTP 503 ...` for summaries and assertion messages."""
        return f"{self.target}: {self.message}"


def worst(results: list[CheckResult]) -> Verdict:
    """The verdict of a group: ERROR beats FAIL beats PASS; an empty group could not decide anything."""
    if not results:
        return Verdict.ERROR
    verdicts = {r.verdict for r in results}
    for verdict in (Verdict.ERROR, Verdict.FAIL):
        if verdict in verdicts:
            return verdict
    return Verdict.PASS
