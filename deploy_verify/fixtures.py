"""Fixtures: resolved once, passed to steps. Clients are built once per worker and shared by every check; `verify`
runs one check family on the test's target with all of them.

    @when("the workload's pods are read", target_fixture="kube_results")
    def pods(verify: Verify) -> list[CheckResult]:
        return verify(PODS)
"""

from __future__ import annotations

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
from deploy_verify.context import Cluster, Context, Target, run_family
from deploy_verify.durations import parse_duration
from deploy_verify.evidence import attach_results
from deploy_verify.family import CLUSTER_PREFIX, Family
from deploy_verify.kinds import Clients
from deploy_verify.release import Expectation
from deploy_verify.run import RECORDED, RESULTS, RUN, Run


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
def kube(environment: Environment) -> Generator[KubeClients, None, None]:
    """One read-only client per cluster per worker, built on first use; every check shares its lists."""
    clients = KubeClients(environment)
    yield clients
    clients.close()


@pytest.fixture(scope="session")
def baseline(run: Run) -> BaselineSource:
    assert run.baseline is not None
    return run.baseline


@pytest.fixture
def expectation(run: Run, component: Component) -> Expectation | None:
    return run.release.components.get(component.name)


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


def wait_window(env: Environment, deadline: Deadline, wait: str | None, within: str | None) -> Deadline | None:
    """The one place a step's wait window is made, always inside the run's budget: a named window of the
    environment (`wait="rollout"`), or the Gherkin's own `within 2 minutes`."""
    if within is not None:
        return deadline.sub(parse_duration(within), f"step deadline of {within}")
    if wait is not None:
        label, seconds = WINDOWS[wait](env)
        return deadline.sub(seconds, f"{label} of {seconds:g}s")
    return None


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
    expectation = run.release.components.get(target.name) if isinstance(target, Component) else None

    def keep(state: str) -> None:
        request.node.stash[RECORDED] = state

    def call(
        family: Family, *, wait: str | None = None, within: str | None = None, **options: float | str | bool
    ) -> list[CheckResult]:
        context = Context(
            run=run,
            clients=Clients(kube, azure),
            http=http_session,
            deadline=deadline,
            expectation=expectation,
            within=wait_window(run.env, deadline, wait, within),
            options=options,
            keep=keep,
            fixture=request.getfixturevalue,
        )
        results = attach_results(run_family(family, context, target))
        request.node.stash[RESULTS] = results
        return results

    return call
