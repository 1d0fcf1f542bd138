"""Steps for promotion (checks.promotion): the candidate was verified in the source environment and still runs there."""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import then, when

from checks.transports.arm import ArmNotFound, ArmUnavailable
from checks.baseline import NotRecordable
from checks.deadline import Deadline
from checks.helm import UnreadableRelease
from checks.transports.kube import KubeUnavailable
from checks.promotion import CHECK, Candidate, PromotionFacts, check_promotion
from checks.result import CheckResult, Verdict
from steps.common import assert_results, attach_results
from suite.clients import AzureClients, KubeClients
from suite.config import Component, ConfigError, Environment, load_environment
from suite.plugin import Run
from suite.release import Expectation
from suite.versions import running_version


@dataclass
class Source:
    """The environment promoted from: its file, its last verdict, and clients built on first use."""

    name: str
    env: Environment | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    verdict_file: str = ""
    problem: str | None = None  # set when the source cannot be used at all: every promotion test is an ERROR
    kube: KubeClients | None = None
    azure: AzureClients | None = None


@pytest.fixture(scope="session")
def promotion_source(run: Run, request: pytest.FixtureRequest) -> Generator[Source, None, None]:
    name = str(run.env.promotes_from)
    source = Source(name)
    chosen = request.config.getoption("source_verdict")
    path = Path(chosen) if chosen else run.reports / f"verdict-{name}.json"
    source.verdict_file = str(path)
    env_dir = Path(request.config.getoption("env_dir") or request.config.rootpath / "environments")
    try:
        source.env = load_environment(name, env_dir)
        source.verdict = json.loads(path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        source.problem = f"cannot load {name!r}, which {run.env.name!r} promotes from: {exc}"
    except FileNotFoundError:
        source.problem = (
            f"no verified run of {name!r} at {path}: run `pytest features --env {name} -m postdeploy` there first, "
            "or give its verdict with --source-verdict FILE"
        )
    except ValueError as exc:
        source.problem = f"{path} is not a verdict file: {exc}"
    if source.verdict and source.verdict.get("environment") != name:
        source.problem = f"{path} is the verdict of {source.verdict.get('environment')!r}, not of {name!r}"
    if source.env is not None:
        source.kube, source.azure = KubeClients(source.env), AzureClients(source.env)
    yield source
    for clients in (source.kube, source.azure):
        if clients is not None:
            clients.close()


def running_in(source: Source, name: str, deadline: Deadline) -> dict[str, str] | None:
    """What runs in the source environment for the component of this name: version and image where readable."""
    assert source.env is not None
    assert source.kube is not None
    assert source.azure is not None
    return running_version(source.env.component(name), source.kube, source.azure, deadline)


@when("the candidate is compared with what the source environment verified and runs", target_fixture="promo_results")
def promotion(
    component: Component, expectation: Expectation | None, promotion_source: Source, deadline: Deadline
) -> list[CheckResult]:
    source = promotion_source
    where = f"promotion:{source.name}/{component.name}"
    if source.problem is not None:
        return attach_results([CheckResult(CHECK, where, Verdict.ERROR, source.problem)])
    assert source.env is not None
    if component.name not in {c.name for c in source.env.components}:
        message = f"{source.name!r} has no component {component.name!r}: nothing there verified what is promoted"
        return attach_results([CheckResult(CHECK, where, Verdict.FAIL, message)])
    try:
        running = running_in(source, component.name, deadline)
    except (KubeUnavailable, ArmUnavailable, UnreadableRelease) as exc:
        return attach_results([CheckResult(CHECK, where, Verdict.ERROR, f"{source.name}: {exc}")])
    except (NotRecordable, ArmNotFound) as exc:
        return attach_results([CheckResult(CHECK, where, Verdict.FAIL, f"nothing runs in {source.name}: {exc}")])
    candidate = Candidate(expectation.version, expectation.image, expectation.digest) if expectation else None
    facts = PromotionFacts(component.name, source.name, candidate, source.verdict, source.verdict_file, running)
    return attach_results([check_promotion(facts)])


@then("the candidate was verified green there and still runs there")
def promotion_ok(promo_results: list[CheckResult], component: Component) -> None:
    assert_results(promo_results, component)
