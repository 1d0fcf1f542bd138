"""Steps for promotion (checks.promotion): the candidate was verified in the source environment and still runs there."""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_bdd import then, when

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.promotion import CHECK, Candidate, PromotionFacts, check_promotion
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.clients import AzureClients, KubeClients
from deploy_verify.config import Component, ConfigError, Environment, load_environment
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import Clients, kind_of
from deploy_verify.run import Run


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
def promotion_source(run: Run) -> Generator[Source, None, None]:
    """Once per worker: the source environment's file, its verdict and clients, whatever the number of tests."""
    source = load_source(run)
    yield source
    for clients in (source.kube, source.azure):
        if clients is not None:
            clients.close()


def load_source(run: Run) -> Source:
    name = str(run.env.promotes_from)
    source = Source(name)
    path = run.source_verdict_path()
    assert path is not None  # the promotion family applies only where the environment promotes from another
    source.verdict_file = str(path)
    try:
        source.env = load_environment(name, run.env_dir)
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
        source.kube, source.azure = KubeClients(source.env), AzureClients(source.env, run.deadline)
    return source


def running_in(source: Source, name: str, deadline: Deadline) -> dict[str, str] | None:
    """What runs in the source environment for the component of this name: version and image where readable."""
    assert source.env is not None
    assert source.kube is not None
    assert source.azure is not None
    component = source.env.component(name)
    return kind_of(component).running_version(component, Clients(source.kube, source.azure), deadline)


def promotion(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    source = ctx.fixture("promotion_source")
    assert isinstance(source, Source)
    where = f"promotion:{source.name}/{target.name}"
    if source.problem is not None:
        return [CheckResult(CHECK, where, Verdict.ERROR, source.problem)]
    assert source.env is not None
    if target.name not in {c.name for c in source.env.components}:
        message = f"{source.name!r} has no component {target.name!r}: nothing there verified what is promoted"
        return [CheckResult(CHECK, where, Verdict.FAIL, message)]
    wanted = ctx.expectation
    candidate = Candidate(wanted.version, wanted.image, wanted.digest) if wanted else None

    def judge() -> CheckResult:
        running = running_in(source, target.name, ctx.deadline)
        facts = PromotionFacts(
            target.name, source.name, candidate, source.verdict, source.verdict_file, running, ctx.env.requires_soak
        )
        return check_promotion(facts)

    named = f"{source.name}: {{}}"
    return [attempt(CHECK, where, judge, unreachable=named, undecidable=named, absent=f"nothing runs in {named}")]


PROMOTION = declare(
    Family(
        tag="promotion",
        check=CHECK,
        marker="applies where the environment promotes from another: the candidate was verified green there and "
        "still runs there",
        category=Category.WRONG_VERSION,
        run=promotion,
        transport="kubernetes",
        applies=by_kind,
        needs_source=True,
    )
)


@when("the candidate is compared with what the source environment verified and runs", target_fixture="promo_results")
def promotion_step(verify: Verify) -> list[CheckResult]:
    return verify(PROMOTION)


@then("the candidate was verified green there and still runs there")
def promotion_ok(promo_results: list[CheckResult], component: Component) -> None:
    assert_results(promo_results, component)
