"""One time budget per run: every network call takes its timeout from here, so nothing can outlive the budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class BudgetExhausted(Exception):
    """Raised when a check is asked to start work after the run's time budget is spent."""


@dataclass
class Deadline:
    """A point in monotonic time. `Deadline.after(30).timeout(5)` -> 5.0; near the end it shrinks to what is left."""

    at: float
    label: str = "time budget"
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def after(cls, seconds: float, label: str = "time budget") -> Deadline:
        now = time.monotonic()
        return cls(at=now + seconds, label=label, started=now)

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
        return Deadline(at=min(self.at, now + seconds), label=label, started=now)
