"""Fixtures: resolved once, passed to steps. Clients are built once per worker and shared by every check; `verify`
runs one check family on the test's target with all of them.

    @when("the workload's pods are read", target_fixture="kube_results")
    def pods(verify: Verify) -> list[CheckResult]:
        return verify(PODS)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator
from typing import Protocol

import pytest
import requests

from deploy_verify.baseline import BaselineSource
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import CheckResult
from deploy_verify.checks.transports.bounded import bounded_session
from deploy_verify.clients import AzureClients, KubeClients
from deploy_verify.config import Component, Environment
from deploy_verify.context import Cluster, Context, Target, run_family, where_of
from deploy_verify.durations import parse_duration
from deploy_verify.evidence import attach_results
from deploy_verify.family import CLUSTER_PREFIX, Family
from deploy_verify.kinds import Clients
from deploy_verify.release import Expectation
from deploy_verify.run import LOOKS, RECORDED, RESULTS, RUN, Run
from deploy_verify.soak import Look


@pytest.fixture(scope="session")
def run(request: pytest.FixtureRequest) -> Run:
    found = request.config.stash.get(RUN, None)
    if found is None:
        raise pytest.UsageError("the suite's fixtures need a run over features/ (pytest features --env NAME)")
    return found


@pytest.fixture(scope="session")
def environment(run: Run) -> Environment:
    return run.env


@pytest.fixture(scope="session")
def deadline(run: Run) -> Deadline:
    assert run.deadline is not None
    return run.deadline


@pytest.fixture
def target_name() -> str:
    raise pytest.UsageError("target_name is parametrized by the suite; request `component` or `cluster` instead")


@pytest.fixture
def component(environment: Environment, target_name: str) -> Component:
    return environment.component(target_name)


@pytest.fixture
def cluster(target_name: str) -> str:
    """The cluster a cluster-scoped scenario (`@nodes`) runs for."""
    return target_name.removeprefix(CLUSTER_PREFIX)


@pytest.fixture
def target(environment: Environment, target_name: str) -> Target:
    if target_name.startswith(CLUSTER_PREFIX):
        name = target_name.removeprefix(CLUSTER_PREFIX)
        return Cluster(name, environment.clusters[name])
    return environment.component(target_name)


@pytest.fixture(scope="session")
def azure(environment: Environment, deadline: Deadline) -> Generator[AzureClients, None, None]:
    """ARM clients per subscription per worker, built on first use."""
    clients = AzureClients(environment, deadline)
    yield clients
    clients.close()


@pytest.fixture(scope="session")
def kube(
    request: pytest.FixtureRequest, environment: Environment, deadline: Deadline
) -> Generator[KubeClients, None, None]:
    """One read-only client per cluster per worker, built on first use; every check shares its lists. Without
    xdist, the clients that resolved the selections at start-up, with the lists they read, and every list the
    collected tests will read fetched ahead, concurrently across clusters, while the tests already run
    (deploy_verify.prefetch)."""
    from deploy_verify.options import RESOLVED_BY
    from deploy_verify.prefetch import Reading, planned

    clients = request.config.stash.get(RESOLVED_BY, None) or KubeClients(environment)
    reading = None
    if not hasattr(request.config, "workerinput"):  # this process runs every collected test: read ahead for all
        reading = Reading(clients, planned(request.session.items, environment), deadline)
    try:
        yield clients
    finally:
        if reading is not None:
            reading.join()  # before the clients close: no read-ahead thread outlives its connection
        clients.close()


@pytest.fixture(scope="session")
def baseline(run: Run) -> BaselineSource:
    assert run.baseline is not None
    return run.baseline


@pytest.fixture
def expectation(run: Run, component: Component) -> Expectation | None:
    return run.release.components.get(component.release_name)


@pytest.fixture(scope="session")
def http_session() -> Generator[requests.Session, None, None]:
    """One connection pool per worker for every HTTP check."""
    session = bounded_session()  # every request ends by its timeout on the clock, however the peer trickles
    session.headers["User-Agent"] = "deploy-verify/0.1 (+post-deploy checks)"
    yield session
    session.close()


class Verify(Protocol):
    def __call__(
        self, family: Family, *, wait: str | None = None, within: str | None = None, **options: float | str | bool
    ) -> list[CheckResult]: ...


# The named wait windows of the environment's defaults: what "watched until ... deadline passes" waits for.
WINDOWS: dict[str, Callable[[Environment], tuple[str, float]]] = {
    "rollout": lambda env: ("rollout deadline", env.defaults.kubernetes.rollout_timeout),
    "provisioning": lambda env: ("provisioning deadline", env.defaults.azure.provisioning_timeout),
}


def wait_window(
    env: Environment, deadline: Deadline, wait: str | None, within: str | None, retry_for: str | None = None
) -> Deadline | None:
    """The one place a step's wait window is made, always inside the run's budget: a named window of the
    environment (`wait="rollout"`), the Gherkin's own `within 2 minutes`, else the command line's --retry-for
    (a step that looks once looks again until it passes or the window ends)."""
    if within is not None:
        return deadline.sub(parse_duration(within), f"step deadline of {within}")
    if wait is not None:
        label, seconds = WINDOWS[wait](env)
        return deadline.sub(seconds, f"{label} of {seconds:g}s")
    if retry_for is not None:
        return deadline.sub(parse_duration(retry_for), f"--retry-for {retry_for}")
    return None


class WaitProgress:
    """What a long wait is waiting for, as `kubectl rollout status` says it: the check and target, the last state
    seen, the time left. Quiet for the first FIRST seconds (a quick wait says nothing), then at most every EVERY
    seconds, whatever the number of looks (a watch may wake up many times a second)."""

    FIRST = 5.0
    EVERY = 10.0

    def __init__(self, say: Callable[[str], None], awaited: str, window: Deadline) -> None:
        self.say, self.awaited, self.window = say, awaited, window
        self.started = time.monotonic()
        self.last: float | None = None

    def __call__(self, state: str, left: float) -> None:
        now = time.monotonic()
        if now - self.started < self.FIRST or (self.last is not None and now - self.last < self.EVERY):
            return
        self.last = now
        seen = (state.strip().splitlines() or ["no state yet"])[0]
        seen = seen if len(seen) <= 200 else seen[:197] + "..."
        self.say(f"waiting for {self.awaited}: {seen}; {left:.0f}s left of the {self.window.label}")


def terminal_line(config: pytest.Config) -> Callable[[str], None] | None:
    """A line to the person at the terminal, past the test's output capture; None on an xdist worker.

    A worker has no terminal: its output reaches the controller only inside test reports, after the test, and lines
    written to an inherited stderr by several workers would tear the controller's progress line. So under -n the
    waits stay silent on the terminal; their states are in the report's wait timeline either way."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if hasattr(config, "workerinput") or reporter is None:
        return None
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        suspended = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
        with suspended:
            # write_line starts a new line after a test file's progress dots; xdist's progress line ("... [100%]")
            # is not one it knows of, so the writer's own column says whether the line is open.
            if reporter._tw.width_of_current_line:
                reporter._tw.line()
            reporter.write_line(line)

    return say


@pytest.fixture
def verify(
    request: pytest.FixtureRequest,
    run: Run,
    target: Target,
    kube: KubeClients,
    azure: AzureClients,
    http_session: requests.Session,
    deadline: Deadline,
) -> Verify:
    """Run a family on this test's target, attach the evidence to the running step, return the results."""
    expectation = run.release.components.get(target.release_name) if isinstance(target, Component) else None
    say = terminal_line(request.config)

    def keep(state: str) -> None:
        request.node.stash[RECORDED] = state

    # A soak looks again at what a passed post-deploy test looked at (deploy_verify.soak): the call is remembered.
    soaking = run.soak is not None and request.node.get_closest_marker("postdeploy") is not None

    def remember(family: Family, wait: str | None, within: str | None, options: dict[str, float | str | bool]) -> None:
        if family.soak:
            look = Look(
                family.tag, request.getfixturevalue("target_name"), wait, within, tuple(sorted(options.items()))
            )
            request.node.stash.setdefault(LOOKS, []).append(look)

    def call(
        family: Family, *, wait: str | None = None, within: str | None = None, **options: float | str | bool
    ) -> list[CheckResult]:
        window = wait_window(run.env, deadline, wait, within, request.config.getoption("retry_for", None))
        if window is not None and say is not None:
            window.progress = WaitProgress(say, f"{family.check} on {where_of(target)}", window)
        context = Context(
            run=run,
            clients=Clients(kube, azure),
            http=http_session,
            deadline=deadline,
            expectation=expectation,
            within=window,
            options=options,
            keep=keep,
            fixture=request.getfixturevalue,
        )
        results = attach_results(run_family(family, context, target))
        request.node.stash[RESULTS] = results
        if soaking:
            remember(family, wait, within, options)
        return results

    return call
