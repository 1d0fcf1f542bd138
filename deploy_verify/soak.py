"""Soak: a post-deploy run that holds its verdict for a while before it calls the deploy good.

    pytest features --env prod -m postdeploy --soak 10m

A release can pass every check the minute it rolls out and start failing five minutes later: a memory leak, a cache
that warms and then thrashes, an error rate that climbs with real traffic. With a soak, once every test has passed,
the run looks again, every `every` seconds until the duration is over, at what those tests looked at: the same
family on the same target with the same step options and wait window (a state that can heal gets the same grace it
had the first time). Only the families that declare `soak=True` are looked at again (reads that answer in seconds:
rollouts, pods, health, certificates, metric rules); a plan, a render or a drill is not.

The first failure ends the soak: the gate is red with the time it happened and how far into the soak that was, not
at the end of the window. The soak is green only when every look of the whole window held. A run that is already red
does not soak (there is nothing to hold). The soak has its own time bound, its duration plus one interval, and every
call inside it is bounded by that as the run's calls are by the budget.

Looks are recorded where tests call `verify` (on whichever xdist worker) and carried to the controller in the test
reports; the controller, the only process left at the end of the session, makes them again with clients of its own,
built fresh for each round so that nothing it reads is a list cached from an earlier round.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import CheckResult
from deploy_verify.checks.transports.bounded import bounded_session
from deploy_verify.clients import AzureClients, KubeClients
from deploy_verify.config import Environment
from deploy_verify.context import Cluster, Context, Target, run_family
from deploy_verify.durations import parse_duration
from deploy_verify.family import CLUSTER_PREFIX, FAMILIES
from deploy_verify.kinds import Clients
from deploy_verify.run import Run

LOOKS_PROPERTY = "soak_looks"  # the user property that carries a passed test's looks to the controller
OFF = {"0", "off", "none", "no"}  # what --soak accepts to mean "no soak", even where the environment sets one

Option = float | str | bool


class SoakError(ValueError):
    """A --soak value that is not a duration (the run refuses to start)."""


@dataclass(frozen=True)
class Look:
    """One `verify` call of a passed post-deploy test, to be made again: the family, its target, and the step's
    wait window and options."""

    family: str  # the family's tag
    target: str  # the test's target name (a component, or cluster:NAME)
    wait: str | None = None
    within: str | None = None
    options: tuple[tuple[str, Option], ...] = ()

    def encode(self) -> dict[str, object]:
        return {"family": self.family, "target": self.target, "wait": self.wait, "within": self.within,
                "options": dict(self.options)}  # fmt: skip

    @classmethod
    def decode(cls, data: dict[str, object]) -> Look:
        options = data.get("options") or {}
        assert isinstance(options, dict)
        return cls(
            str(data["family"]),
            str(data["target"]),
            _opt_str(data.get("wait")),
            _opt_str(data.get("within")),
            tuple(sorted(options.items())),
        )


def encode_looks(looks: list[Look]) -> str:
    """As a user property: a string survives xdist's report serialisation whatever it holds."""
    return json.dumps([look.encode() for look in looks], sort_keys=True)


def decode_looks(text: str) -> list[Look]:
    return [Look.decode(item) for item in json.loads(text)]


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Plan:
    """How long to soak and how often to look, and who asked for it (said in every message about it)."""

    duration: float
    every: float
    source: str  # "--soak 10m" or "the soak of environment 'prod'"
    explicit: bool  # asked for on the command line: a soak with nothing to look at is then an error


def plan_of(option: str | None, env: Environment) -> Plan | None:
    """The soak this run holds: --soak (OFF values switch the environment's off), else the environment's own; the
    interval is the environment's (30 s by default), never longer than the soak. SoakError names the bad value."""
    every = env.soak.every if env.soak is not None else 30.0
    if option is not None:
        if option.strip().lower() in OFF:
            return None
        try:
            duration = parse_duration(option)
        except ValueError as exc:
            raise SoakError(f"--soak {option}: {exc}; or 0 for no soak") from None
        return Plan(duration, min(every, duration), f"--soak {option}", explicit=True)
    if env.soak is None:
        return None
    return Plan(env.soak.duration, env.soak.every, f"the soak of environment {env.name!r}", explicit=False)


@dataclass
class Outcome:
    """What the soak found; verdict.json's `soak` block and the gate's lines are made from it."""

    plan: Plan
    checks: int = 0  # looks per round
    started: float = field(default_factory=time.time)
    rounds: int = 0
    held: float = 0.0  # seconds of the window that held
    failed: list[tuple[Look, CheckResult]] = field(default_factory=list)  # with the look that saw each
    failed_at: float | None = None  # wall-clock time of the first failure
    failed_round: int = 0
    not_started: str = ""  # why the run did not soak
    interrupted: float | None = None  # seconds into the soak when the person at the terminal stopped it
    timeline: list[tuple[float, float, int]] = field(default_factory=list)  # per look: wall-clock start, end, red

    @property
    def state(self) -> str:
        if self.not_started:
            return "not started"
        if self.interrupted is not None:
            return "interrupted"
        return "failed" if self.failed else "held"

    def when(self) -> str:
        """`at 10:42:13Z, 1m12s into the 10m soak (look 3)`: when the first failure was seen."""
        assert self.failed_at is not None
        stamp = dt.datetime.fromtimestamp(self.failed_at, dt.UTC).strftime("%H:%M:%SZ")
        into = human(self.failed_at - self.started)
        return f"at {stamp}, {into} into the {human(self.plan.duration)} soak (look {self.failed_round})"

    def line(self) -> str:
        """One line for the terminal and the report."""
        if self.not_started:
            return f"soak of {human(self.plan.duration)} not started: {self.not_started}"
        if self.interrupted is not None:
            return f"soak of {human(self.plan.duration)} interrupted {human(self.interrupted)} into it: not held"
        if self.failed:
            holds = "check no longer holds" if len(self.failed) == 1 else "checks no longer hold"
            return f"soak FAILED {self.when()}: {len(self.failed)} {holds}"
        looks = f"{count(self.rounds, 'look')} at {count(self.checks, 'check')}"
        return (
            f"soak held for {human(self.plan.duration)}: {looks}, every {human(self.plan.every)} ({self.plan.source})"
        )

    def document(self) -> dict[str, object]:
        """verdict.json's `soak` block: what a promotion that requires a soak reads."""
        return {
            "outcome": self.state,
            "duration_s": self.plan.duration,
            "every_s": self.plan.every,
            "source": self.plan.source,
            "checks": self.checks,
            "rounds": self.rounds,
            "held_s": round(self.held, 3),
            "started": _iso(self.started),
            "failed_at": _iso(self.failed_at) if self.failed_at is not None else None,
            "reason": self.line(),
        }


Evaluate = Callable[[list[Look], Deadline], list[tuple[Look, list[CheckResult]]]]


def hold(
    plan: Plan,
    looks: list[Look],
    evaluate: Evaluate,
    say: Callable[[str], None],
    *,
    calls: Deadline,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Look again every `plan.every` until `plan.duration` has passed, the last look at the end of the window;
    stop at the first round with a result that is not ok. `calls` bounds every call (the soak's own deadline)."""
    outcome = Outcome(plan, checks=len(looks))
    begun = clock()
    say(f"soak: holding the verdict for {human(plan.duration)}, looking at {count(len(looks), 'check')} every "
        f"{human(plan.every)} ({plan.source})")  # fmt: skip
    for offset in schedule(plan):
        wait = begun + offset - clock()
        if wait > 0:
            sleep(wait)
        outcome.rounds += 1
        began, red = time.time(), 0
        for look, results in evaluate(looks, calls):
            bad = [r for r in results if not r.ok]
            if bad and outcome.failed_at is None:
                outcome.failed_at = time.time()
                outcome.failed_round = outcome.rounds
            outcome.failed += [(look, r) for r in bad]
            red += len(bad)
        outcome.timeline.append((began, time.time(), red))
        if outcome.failed:
            first = outcome.failed[0][1]
            say(f"soak: FAILED {outcome.when()}: {first.target}: {first.message.splitlines()[0]}")
            return outcome
        outcome.held = min(plan.duration, clock() - begun)
        say(f"soak: look {outcome.rounds} held ({count(len(looks), 'check')}); {human(outcome.held)} of "
            f"{human(plan.duration)}")  # fmt: skip
    outcome.held = plan.duration
    return outcome


def schedule(plan: Plan) -> list[float]:
    """Seconds after the start of each look: every interval, and one at the very end of the window."""
    offsets = []
    at = plan.every
    while at < plan.duration - 1e-9:
        offsets.append(at)
        at += plan.every
    return [*offsets, plan.duration]


def evaluator(run: Run) -> Evaluate:
    """Make each look with clients built for the round, so nothing read is a list from an earlier round."""

    def evaluate(looks: list[Look], calls: Deadline) -> list[tuple[Look, list[CheckResult]]]:
        from deploy_verify.prefetch import planned_for, prefetch

        kube, azure, http = KubeClients(run.env), AzureClients(run.env, calls), bounded_session()
        http.headers["User-Agent"] = "deploy-verify/0.1 (+post-deploy checks)"
        try:
            prefetch(kube, planned_for(((look.target, FAMILIES[look.family]) for look in looks), run.env), calls)
            return [(look, _look(run, look, Clients(kube, azure), http, calls)) for look in looks]
        finally:
            kube.close()
            azure.close()
            http.close()

    return evaluate


def _look(run: Run, look: Look, clients: Clients, http: requests.Session, calls: Deadline) -> list[CheckResult]:
    from deploy_verify.fixtures import wait_window

    family = FAMILIES[look.family]
    target = target_of(run.env, look.target)
    expectation = run.release.components.get(target.release_name) if not isinstance(target, Cluster) else None
    context = Context(
        run=run,
        clients=clients,
        http=http,
        deadline=calls,
        expectation=expectation,
        within=wait_window(run.env, calls, look.wait, look.within),
        options=dict(look.options),
    )
    return run_family(family, context, target)


def target_of(env: Environment, name: str) -> Target:
    if name.startswith(CLUSTER_PREFIX):
        cluster = name.removeprefix(CLUSTER_PREFIX)
        return Cluster(cluster, env.clusters[cluster])
    return env.component(name)


def human(seconds: float) -> str:
    """90 -> 1m30s, 600 -> 10m, 4.5 -> 4.5s: how the soak's times are said."""
    if seconds < 59.95:
        return f"{round(seconds, 1):g}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts)


def count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _iso(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds")
