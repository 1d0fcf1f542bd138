"""Explicit convergence for steps that say `within <duration>`: re-evaluate on every change until the state is good,
fail on a terminal state that persists through the grace period (at once on one that says it cannot heal), and
report the last state on timeout.

    state, attempts = converge(evaluate, reader.wakeups(streams, deadline), deadline, grace=5)
    state, attempts = converge(evaluate, poll(deadline, interval=5), deadline, grace=0)   # no watch: polling

A one-shot check calls `evaluate()` once and never comes here. An ERROR state (the check cannot decide, and waiting
will not change that) ends the wait at once. Every look during a wait is reported to the deadline's `progress`
listener (if any) with the state seen and the time left; the listener, not the check, decides what to print.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, Evidence, Verdict


@dataclass
class Timeline:
    """Every distinct state a wait went through, with when: the report shows the waits and retries, not just their
    end ("+0.0s still converging: 1/3 updated ...", "+2.1s PASS: rolled out ...")."""

    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    _last: tuple[Verdict | None, str] | None = None

    def saw(self, state: State) -> None:
        key = (state.verdict, state.message)
        if key != self._last:
            label = state.verdict.value.upper() if state.verdict else "waiting"
            self.lines.append(f"+{time.monotonic() - self.started:.1f}s {label}: {state.message}")
            self._last = key

    def evidence(self) -> tuple[Evidence, ...]:
        return (Evidence("wait timeline", "\n".join(self.lines)),) if len(self.lines) > 1 else ()


@dataclass(frozen=True)
class State:
    """PASS: converged. FAIL: terminal (waiting will not fix it). None: still converging (transient). ERROR: cannot be
    decided (waiting will not help either). `category` is the failure class of the result this state becomes: of a
    FAIL, and of a transient state, which becomes a FAIL after one look or an ERROR when the wait runs out."""

    verdict: Verdict | None
    message: str
    category: Category | None = None
    final: bool = False  # a FAIL that says itself it will not heal: no grace period (an image that does not exist)


def converge(
    evaluate: Callable[[], State],
    wakeups: Iterable[object],
    deadline: Deadline,
    grace: float,
    timeline: Timeline | None = None,
) -> tuple[State, int]:
    """(final state, evaluations). A timeout while still converging is an ERROR that carries the last state seen."""
    timeline = timeline if timeline is not None else Timeline()
    evaluations = 1
    state = evaluate()
    timeline.saw(state)
    terminal_since: float | None = time.monotonic() if state.verdict is Verdict.FAIL else None
    if _settled(state, terminal_since, grace):
        return state, evaluations
    for _ in wakeups:
        evaluations += 1
        state = evaluate()
        timeline.saw(state)
        if deadline.progress is not None:  # the listener decides how often a person is told
            deadline.progress(state.message, deadline.remaining())
        # A terminal state starts the grace clock; any other state stops it: a crash that heals inside the grace
        # period is not a failure.
        terminal_since = (terminal_since or time.monotonic()) if state.verdict is Verdict.FAIL else None
        if _settled(state, terminal_since, grace):
            return state, evaluations
    if state.verdict is Verdict.FAIL:
        return state, evaluations
    final = State(Verdict.ERROR, f"still converging when the {deadline.label} ran out: {state.message}", state.category)
    timeline.saw(final)
    return final, evaluations


def _settled(state: State, terminal_since: float | None, grace: float) -> bool:
    if state.verdict is Verdict.PASS or state.verdict is Verdict.ERROR:
        return True
    if state.verdict is Verdict.FAIL and state.final:
        return True  # unambiguous: the grace is for states that can heal
    return terminal_since is not None and time.monotonic() - terminal_since >= grace


def look_or_wait(
    evaluate: Callable[[], State],
    within: Deadline | None,
    wakeups: Callable[[Deadline], Iterable[object]],
    grace: float,
    timeline: Timeline | None = None,
) -> State:
    """What every check with a `within` form does: one look when `within` is None (still converging counts as not
    done: FAIL), else converge on `wakeups(within)`; a final state reached after several looks says how many, and
    `timeline` (if given) keeps every state on the way."""
    if within is None:
        state = evaluate()
        return State(Verdict.FAIL, state.message, state.category) if state.verdict is None else state
    state, looks = converge(evaluate, wakeups(within), within, grace, timeline)
    if state.verdict is Verdict.PASS or looks == 1:
        return state
    return State(state.verdict, f"{state.message} ({looks} looks)", state.category)


def poll(deadline: Deadline, interval: float, min_left: float = 0.0) -> Iterator[None]:
    """Wake up every `interval` seconds until the deadline, for what has no watch (ARM, an HTTP endpoint): each look
    is a GET or two. No wakeup once `min_left` seconds or less are left: `min_left=interval` starts no look in the
    last interval of the deadline, where it could not be followed by another."""
    while deadline.remaining() > min_left:
        time.sleep(min(interval, deadline.remaining()))
        yield None
