"""Feature files are test files: one test per (scenario, component or cluster it applies to), ids like
`features/health.feature::test_health_endpoint_answers[local/payments-api]`, sorted by name; with --shard only this
shard's localities.

pytest collects a `.feature` file wherever it collects tests, so a team's repository holds feature files and no Python
binding module; the built-in ones are collected from the installed package (`deploy_verify/features`) under the
node id `deploy_verify/<file>.feature`, wherever site-packages is."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest

from deploy_verify.config import Environment
from deploy_verify.family import CLUSTER_PREFIX, FAMILIES, Family
from deploy_verify.run import RUN
from deploy_verify.shard import assignment, locality

BUILTIN_FEATURES = (Path(__file__).parent / "features").resolve()
# Run in the namespace of the module made for one feature file, so pytest-bdd's `scenarios` binds its scenarios there
# (it writes into its caller's module namespace) and names them exactly as it would in a hand-written module.
_BIND = "scenarios(__feature__, features_base_dir=__base__)"


class FeatureFile(pytest.Module):
    """A `.feature` file collected as the module `scenarios(<that file>)` would make."""

    def _getobj(self) -> types.ModuleType:
        from pytest_bdd import scenarios

        module = types.ModuleType(f"deploy_verify_feature_{self.path.stem}")
        module.__file__ = str(self.path)
        namespace = vars(module)
        namespace.update(scenarios=scenarios, __feature__=str(self.path), __base__=str(self.path.parent))
        # Every scenario requests the component (or cluster) it runs for, so pytest_generate_tests can parametrize it.
        namespace["pytestmark"] = [pytest.mark.usefixtures("target_name")]
        exec(compile(_BIND, str(self.path), "exec"), namespace)  # noqa: S102  # a fixed statement, not input
        return module


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> FeatureFile | None:
    run = parent.config.stash.get(RUN, None)
    if file_path.suffix != ".feature" or run is None:
        return None
    real = file_path.resolve()
    if real.parent == BUILTIN_FEATURES and not _may_apply(real, run.env):
        return None  # every scenario would be a placeholder, deselected: not parsed at all, so start-up stays flat
    if real.parent == BUILTIN_FEATURES and not real.is_relative_to(parent.config.rootpath.resolve()):
        # Installed: the same short id wherever the virtualenv is, not a ../../lib/python3.x/site-packages path.
        return FeatureFile.from_parent(parent, path=file_path, nodeid=f"deploy_verify/{file_path.name}")
    return FeatureFile.from_parent(parent, path=file_path)


TAG = re.compile(r"@([A-Za-z_][\w-]*)")


def _may_apply(path: Path, env: Environment) -> bool:
    """Whether any scenario of a built-in feature file can apply to this environment, from its tag lines alone: a
    file whose every check tag names a family with no target here (the APIM feature in an estate without APIM) would
    only yield deselected placeholders. A file with no family tag is kept: its scenarios get the usual error."""
    tags = {t for line in path.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("@")
            for t in TAG.findall(line)}  # fmt: skip
    checks = {t for t in tags if t in FAMILIES}
    if not checks:
        return True
    return any(env.allows(t) and _targets(env, FAMILIES[t]) for t in checks)


def family_of(item: pytest.Item | pytest.Function) -> Family | None:
    """The family a scenario's check tag names (the first, when there are several)."""
    return next((FAMILIES[m.name] for m in item.iter_markers() if m.name in FAMILIES), None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target_name" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash.get(RUN, None)
    if run is None:
        raise pytest.UsageError("Gherkin scenarios need an environment: pytest --env NAME")
    family = family_of(metafunc.definition)
    if family is None:
        known = ", ".join(f"@{t}" for t in sorted(FAMILIES))
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: the scenario has no check tag; add one of: {known}")
    params = _targets(run.env, family) if run.env.allows(family.tag) else []
    params = _selectable(metafunc, params)
    # An empty parameter set would become a skipped test; a placeholder is deselected instead (see below).
    metafunc.parametrize("target_name", params or [pytest.param(None, id=f"{run.env.name}/-")])


def _selectable(metafunc: pytest.Metafunc, params: list[Any]) -> list[Any]:
    """Only the targets -m can select: an estate of 1000 components run with `-m rollout` would otherwise build
    seven items per component (every family of a workload) for pytest to drop six of them right after. -m is
    decided by marks alone, and a test's marks here are its scenario's and its target's kind, so pytest's own -m
    deselection (which still runs, and has the last word) would drop exactly the targets dropped here."""
    matches = _mark_expression(metafunc.config)
    if matches is None or not params:
        return params
    own = list(metafunc.definition.iter_markers())
    return [p for p in params if matches([*own, *p.marks])]


_EXPRESSION = pytest.StashKey[Any]()


def _mark_expression(config: pytest.Config) -> Any:
    """-m as a predicate over a list of marks, compiled once; None without -m, or where this pytest's expression
    API is not the one known here (then every target is built and pytest deselects, as before)."""
    if _EXPRESSION in config.stash:
        return config.stash[_EXPRESSION]
    matches = None
    text = config.getoption("markexpr") or ""
    if text:
        try:
            from _pytest.mark import MarkMatcher
            from _pytest.mark.expression import Expression

            expression = Expression.compile(text)
        except (ImportError, SyntaxError):  # pytest reports a bad -m itself, in its own words
            expression = None
        if expression is not None:
            matches = lambda marks: expression.evaluate(MarkMatcher.from_markers(marks))  # noqa: E731
    config.stash[_EXPRESSION] = matches
    return matches


def _targets(env: Environment, family: Family) -> list[Any]:
    if family.needs_source and env.promotes_from is None:
        return []
    if family.scope == "cluster":
        names = [f"{CLUSTER_PREFIX}{name}" for name in sorted(env.clusters)]
        return [pytest.param(name, id=f"{env.name}/{name}") for name in names]
    applies = sorted((c for c in env.components if family.applies_to(c)), key=lambda c: c.name)
    return [pytest.param(c.name, id=f"{env.name}/{c.name}", marks=getattr(pytest.mark, c.kind)) for c in applies]


def scenario_of(item: pytest.Item) -> tuple[str, str]:
    """(feature file name, scenario name) of a scenario test."""
    from pytest_bdd.scenario import scenario_wrapper_template_registry

    template = scenario_wrapper_template_registry.get(getattr(item, "obj", None))  # type: ignore[arg-type]
    return (item.path.name, template.name if template is not None else item.name)


def _switched_off(config: pytest.Config, item: pytest.Item) -> bool:
    """A built-in scenario the repository lists under `deploy_verify_disable` (its own ones it can just delete)."""
    if item.path.resolve().parent != BUILTIN_FEATURES:
        return False
    feature, scenario = scenario_of(item)
    return any(entry in (feature, f"{feature}::{scenario}") for entry in config.getini("deploy_verify_disable"))


def _mutating_unasked(config: pytest.Config, item: pytest.Item) -> bool:
    """A scenario that changes the environment runs only when the -m expression asks for it by name (`-m drill`,
    `-m mutating`): a run without a phase marker must not start a rollback drill."""
    if item.get_closest_marker("mutating") is None:
        return False
    words = set(re.findall(r"[A-Za-z_][\w-]*", config.getoption("markexpr") or ""))
    names = {"mutating"} | {m.name for m in item.iter_markers() if m.name in FAMILIES}
    return not words & names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop scenarios with no component to apply to in this environment (they are not tests of it), built-in
    scenarios the repository switched off, mutating ones nobody asked for, and with --shard the tests of other
    shards' localities."""
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
        unwanted = run is not None and (_switched_off(config, item) or _mutating_unasked(config, item))
        (drop if target is None or elsewhere or unwanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def reads_shared_by(env: Environment, target: str) -> str:
    """What a target's reads are shared with: its cluster and namespace for a Kubernetes component (one LIST per kind
    and namespace serves every check there), its cluster for a cluster-wide one, else the component alone."""
    if target.startswith(CLUSTER_PREFIX):
        return f"cluster/{target.removeprefix(CLUSTER_PREFIX)}"
    component = env.component(target)
    if component.cluster is not None:
        return f"cluster/{component.cluster}/{component.namespace or '-'}"
    return f"component/{component.name}"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `-n`, deal whole (cluster, namespace)s to workers, so each namespace is listed by one worker only and
    a run makes one LIST per kind and namespace, as a single process does. Only in place of xdist's default `load`:
    an explicit --dist loadscope, loadfile, loadgroup or worksteal is kept."""
    run = config.stash.get(RUN, None)
    if run is None or config.getoption("dist", "load") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    env = run.env

    class SharedReads(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            target = nodeid.rsplit("[", 1)[-1].rstrip("]").split("/", 1)[-1] if "[" in nodeid else ""
            try:
                return reads_shared_by(env, target)
            except KeyError:  # not one of ours (a placeholder, a plugin's test): on its own
                return nodeid

        def remove_node(self, node: Any) -> str | None:
            """A worker that died (OOM-killed, evicted): the test it was running is reported once, as crashed, and
            the rest of its (cluster, namespace) goes back to the queue. xdist's LoadScope would send the crashed
            test to the next worker as well, where it would crash again."""
            workload = self.assigned_work.pop(node)
            pending = [(scope, n) for scope, unit in workload.items() for n, done in unit.items() if not done]
            if not pending:
                return None
            scope, crashed = pending[0]
            workload[scope][crashed] = True
            for name, unit in workload.items():
                if not all(unit.values()):
                    self.workqueue[name] = unit
            for other in self.assigned_work:
                self._reschedule(other)
            return str(crashed)

    return SharedReads(config, log)
