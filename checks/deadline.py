"""One time budget per run: every network call takes its timeout from here, so nothing can outlive the budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


class BudgetExhausted(Exception):
    """Raised when a check is asked to start work after the run's time budget is spent."""


@dataclass(frozen=True)
class CallTimeouts:
    """How long one call of each transport may take at most; the budget caps every one of them (`Deadline.timeout`).
    Filled from the environment's `defaults.timeouts`; the defaults are what the suite used before they were settable.
    """

    kubernetes_request: float = 15.0  # one GET or LIST
    kubernetes_watch: float = 300.0  # one watch stream before it is reopened
    arm_request: float = 20.0  # one ARM call
    arm_operation: float = 300.0  # an ARM long-running operation (the drill's traffic switch)
    credential: float = 30.0  # acquiring a token (DefaultAzureCredential can probe several sources)
    subprocess: float = 300.0  # a helm command (the drill's `helm rollback`, a pre-deploy `helm template`)
    terraform: float = 600.0  # one OpenTofu/Terraform command of the drift check (init, plan, show)
    prometheus_request: float = 10.0  # one PromQL query of a metric rule


@dataclass
class Deadline:
    """A point in monotonic time. `Deadline.after(30).timeout(5)` -> 5.0; near the end it shrinks to what is left."""

    at: float
    label: str = "time budget"
    started: float = field(default_factory=time.monotonic)
    calls: CallTimeouts = field(default_factory=CallTimeouts)  # travels with every sub-deadline
    # Told (last state, seconds left) as a wait on this deadline goes on, so a person sees what is awaited; set by
    # whoever opened the wait window (the suite's fixture), travels with every sub-deadline. None: nobody listens.
    progress: Callable[[str, float], None] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, label: str = "time budget", calls: CallTimeouts | None = None) -> Deadline:
        now = time.monotonic()
        return cls(at=now + seconds, label=label, started=now, calls=calls or CallTimeouts())

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def timeout(self, wanted: float) -> float:
        """The timeout a call may use: what it wants, capped by what is left. Raises once nothing is left."""
        left = self.remaining()
        if left <= 0.0:
            raise BudgetExhausted(f"{self.label} of {self.total():.0f}s is spent")
        return min(wanted, left)

    def total(self) -> float:
        return self.at - self.started

    def sub(self, seconds: float, label: str) -> Deadline:
        """A shorter deadline inside this one (a step's `within 2 minutes` never outlives the run's budget)."""
        now = time.monotonic()
        return Deadline(
            at=min(self.at, now + seconds), label=label, started=now, calls=self.calls, progress=self.progress
        )
