"""One test per (scenario, component or cluster it applies to), ids like `local/payments-api` or
`local/cluster:aks-weu`, sorted by name; with --shard only this shard's localities."""

from __future__ import annotations

from typing import Any

import pytest

from suite.config import Environment
from suite.family import CLUSTER_PREFIX, FAMILIES, Family
from suite.run import RUN
from suite.shard import assignment, locality


def family_of(item: pytest.Item | pytest.Function) -> Family | None:
    """The family a scenario's check tag names (the first, when there are several)."""
    return next((FAMILIES[m.name] for m in item.iter_markers() if m.name in FAMILIES), None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target_name" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash.get(RUN, None)
    if run is None:
        raise pytest.UsageError("Gherkin scenarios need the suite's options: run them from the features/ directory")
    family = family_of(metafunc.definition)
    if family is None:
        known = ", ".join(f"@{t}" for t in sorted(FAMILIES))
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: the scenario has no check tag; add one of: {known}")
    params = _targets(run.env, family) if run.env.allows(family.tag) else []
    # An empty parameter set would become a skipped test; a placeholder is deselected instead (see below).
    metafunc.parametrize("target_name", params or [pytest.param(None, id=f"{run.env.name}/-")])


def _targets(env: Environment, family: Family) -> list[Any]:
    if family.needs_source and env.promotes_from is None:
        return []
    if family.scope == "cluster":
        names = [f"{CLUSTER_PREFIX}{name}" for name in sorted(env.clusters)]
        return [pytest.param(name, id=f"{env.name}/{name}") for name in names]
    applies = sorted((c for c in env.components if family.applies_to(c)), key=lambda c: c.name)
    return [pytest.param(c.name, id=f"{env.name}/{c.name}", marks=getattr(pytest.mark, c.kind)) for c in applies]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop scenarios with no component to apply to in this environment (they are not tests of it), and with
    --shard the tests of other shards' localities."""
    run = config.stash.get(RUN, None)
    mine: set[str] | None = None
    if run is not None and run.shard is not None:
        index, total = run.shard
        mine = {key for key, shard in assignment(run.env, total).items() if shard == index}
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target_name", "") if callspec else ""
        elsewhere = mine is not None and run is not None and bool(target) and locality(run.env, target) not in mine
        (drop if target is None or elsewhere else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
