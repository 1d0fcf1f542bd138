"""Explicit convergence for steps that say `within <duration>`: re-evaluate on every change until the state is good,
fail at once on a terminal state that persists through the grace period, and report the last state on timeout.

    state, attempts = converge(evaluate, reader.wakeups(streams, deadline), deadline, grace=5)

A one-shot check calls `evaluate()` once and never comes here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from checks.deadline import Deadline
from checks.result import Verdict


@dataclass(frozen=True)
class State:
    """PASS: converged. FAIL: terminal (waiting will not fix it). None: still converging (transient)."""

    verdict: Verdict | None
    message: str


def converge(
    evaluate: Callable[[], State], wakeups: Iterable[object], deadline: Deadline, grace: float
) -> tuple[State, int]:
    """(final state, evaluations). A timeout while still converging is an ERROR that carries the last state seen."""
    evaluations = 1
    state = evaluate()
    terminal_since: float | None = time.monotonic() if state.verdict is Verdict.FAIL else None
    if _settled(state, terminal_since, grace):
        return state, evaluations
    for _ in wakeups:
        evaluations += 1
        state = evaluate()
        # A terminal state starts the grace clock; any other state stops it: a crash that heals inside the grace
        # period is not a failure.
        terminal_since = (terminal_since or time.monotonic()) if state.verdict is Verdict.FAIL else None
        if _settled(state, terminal_since, grace):
            return state, evaluations
    if state.verdict is Verdict.FAIL:
        return state, evaluations
    return State(Verdict.ERROR, f"still converging when the {deadline.label} ran out: {state.message}"), evaluations


def _settled(state: State, terminal_since: float | None, grace: float) -> bool:
    if state.verdict is Verdict.PASS:
        return True
    return terminal_since is not None and time.monotonic() - terminal_since >= grace


def look_or_wait(
    evaluate: Callable[[], State],
    within: Deadline | None,
    wakeups: Callable[[Deadline], Iterable[object]],
    grace: float,
) -> State:
    """What every check with a `within` form does: one look when `within` is None (still converging counts as not
    done: FAIL), else converge on `wakeups(within)`; a final state reached after several looks says how many."""
    if within is None:
        state = evaluate()
        return State(Verdict.FAIL, state.message) if state.verdict is None else state
    state, looks = converge(evaluate, wakeups(within), within, grace)
    if state.verdict is Verdict.PASS or looks == 1:
        return state
    return State(state.verdict, f"{state.message} ({looks} looks)")
