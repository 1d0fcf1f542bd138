"""The pytest plugin: options, the environment, one test per (scenario, component), verdict mapping and the gate.

Registered by the root conftest.py. It only arms itself when the run collects the Gherkin suite (features/); the
project's own tests (`pytest tests`) see the fixtures but no gate.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from checks.deadline import Deadline
from checks.result import CheckResult
from suite import allure_meta, gate
from suite.baseline import STATE_PROPERTY, BaselineSource, baseline_path, write_baseline
from suite.clients import AzureClients, KubeClients
from suite.config import Component, ConfigError, Environment, load_environment
from suite.registry import CLUSTER_PREFIX, FAMILIES, Family
from suite.release import Expectation, ReleaseManifest, load_release
from suite.shard import ShardError, assignment, locality, parse_shard
from suite.verdicts import Undecided, summarize

MARK_WORDS = frozenset({"and", "or", "not"})
# Markers pytest and its plugins register; left out of the "known markers" hint, which lists the suite's own.
PLUGIN_MARKERS = frozenset(
    {
        "filterwarnings",
        "skip",
        "skipif",
        "xfail",
        "parametrize",
        "usefixtures",
        "tryfirst",
        "trylast",
        "no_cover",
        "allure_label",
        "allure_link",
        "allure_description",
        "allure_description_html",
        "xdist_group",
        "scenario",
    }
)


@dataclass
class Run:
    """Everything the run resolved once at start-up; stored on the config, shared by every fixture."""

    env: Environment
    release: ReleaseManifest
    release_file: str | None
    reports: Path
    started: float = field(default_factory=time.time)
    deadline: Deadline | None = None
    rows: dict[str, gate.Row] = field(default_factory=dict)
    baseline: BaselineSource | None = None  # where rollback scenarios read the recorded state from
    allow_mutations: bool = False
    recorded: dict[str, str] = field(default_factory=dict)  # component -> state JSON, from @baseline tests
    unrecorded: list[str] = field(default_factory=list)  # components whose state could not be recorded
    baseline_note: str = ""
    shard: tuple[int, int] | None = None


RUN = pytest.StashKey[Run]()
RESULTS = pytest.StashKey[list[CheckResult]]()  # the results a test's steps produced, for its summary line
RECORDED = pytest.StashKey[str]()  # a @baseline test's recorded state (JSON), carried to the controller


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deploy-verify", "deployment verification")
    group.addoption("--env", default="local", help="environment to verify: environments/<ENV>.yaml (default: local)")
    group.addoption("--release", metavar="FILE", help="release manifest: component -> expected version/image/digest")
    group.addoption(
        "--expect",
        action="append",
        default=[],
        metavar="COMPONENT=VERSION",
        help="expected version of one component (repeatable; overrides --release)",
    )
    group.addoption(
        "--baseline",
        metavar="FILE",
        help="baseline a rollback is judged against (default: <reports>/baseline-<ENV>.json, written by -m predeploy)",
    )
    group.addoption(
        "--allow-mutations",
        action="store_true",
        help="let @mutating scenarios (the rollback drill) change the environment; never for protected ones",
    )
    group.addoption(
        "--source-verdict",
        metavar="FILE",
        help="verdict of the environment promoted from (default: <reports>/verdict-<promotes_from>.json)",
    )
    group.addoption(
        "--shard",
        metavar="I/N",
        help="run only shard I of N (whole clusters / resource groups per shard); merge with python -m suite.shard",
    )
    group.addoption("--env-dir", metavar="DIR", help="where environment files live (default: <rootdir>/environments)")
    group.addoption("--reports-dir", metavar="DIR", help="where reports go (default: <rootdir>/reports)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Resolve the environment before anything runs: a bad --env, config or -m is one clear line and exit 4."""
    if not _runs_features(config):
        return
    root = config.rootpath
    env_dir = Path(config.getoption("env_dir") or root / "environments")
    reports = Path(config.getoption("reports_dir") or root / "reports")
    try:
        env = load_environment(config.getoption("env"), env_dir)
        release_file = config.getoption("release")
        release = load_release(
            Path(release_file) if release_file else None, config.getoption("expect"), [c.name for c in env.components]
        )
        shard = parse_shard(config.getoption("shard")) if config.getoption("shard") else None
    except (ConfigError, ShardError) as exc:
        raise pytest.UsageError(str(exc)) from exc
    _refuse_unknown_markers(config)
    run = Run(env, release, release_file, reports, allow_mutations=config.getoption("allow_mutations"), shard=shard)
    chosen = config.getoption("baseline")
    run.baseline = BaselineSource(Path(chosen) if chosen else baseline_path(reports, env.name), env.name)
    run.deadline = Deadline.after(env.budget, f"time budget of environment {env.name!r}")
    config.stash[RUN] = run
    _default_outputs(config, reports)


def _runs_features(config: pytest.Config) -> bool:
    features = (config.rootpath / "features").resolve()
    for arg in config.args:
        path = Path(arg.split("::")[0])
        path = (config.invocation_params.dir / path).resolve()
        if path == features or features in path.parents:
            return True
    return False


def _refuse_unknown_markers(config: pytest.Config) -> None:
    """`-m postdeploi` would select nothing and look like an empty environment; name the typo instead."""
    expression = config.getoption("markexpr") or ""
    known = {line.split(":")[0].strip() for line in config.getini("markers")}
    unknown = sorted(set(re.findall(r"[A-Za-z_][\w-]*", expression)) - known - MARK_WORDS)
    if unknown:
        suite_marks = sorted(m for m in known if m not in PLUGIN_MARKERS)
        raise pytest.UsageError(
            f"unknown marker {', '.join(map(repr, unknown))} in -m {expression!r}; known: {', '.join(suite_marks)}"
        )


def _default_outputs(config: pytest.Config, reports: Path) -> None:
    """JUnit and Allure results under reports/ unless the command line says otherwise; cleaned once, by the
    controller, before any worker starts (allure's own --clean-alluredir would run in every worker)."""
    is_controller = not hasattr(config, "workerinput")
    if config.option.allure_report_dir is None:
        config.option.allure_report_dir = str(reports / "allure-results")
    if is_controller and not config.option.collectonly:
        shutil.rmtree(config.option.allure_report_dir, ignore_errors=True)
        Path(config.option.allure_report_dir).mkdir(parents=True, exist_ok=True)
    if getattr(config.option, "xmlpath", None) is None and is_controller:
        config.option.xmlpath = str(reports / "junit.xml")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per (scenario, component or cluster it applies to), ids like `local/payments-api` or
    `local/cluster:aks-weu`, sorted by name."""
    if "target_name" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash.get(RUN, None)
    if run is None:
        raise pytest.UsageError("Gherkin scenarios need the suite's options: run them from the features/ directory")
    tags = [m.name for m in metafunc.definition.iter_markers() if m.name in FAMILIES]
    if not tags:
        known = ", ".join(f"@{t}" for t in sorted(FAMILIES))
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: the scenario has no check tag; add one of: {known}")
    params = _targets(run.env, FAMILIES[tags[0]]) if run.env.allows(tags[0]) else []
    # An empty parameter set would become a skipped test; a placeholder is deselected instead (see below).
    metafunc.parametrize("target_name", params or [pytest.param(None, id=f"{run.env.name}/-")])


def _targets(env: Environment, family: Family) -> list[Any]:
    if family.needs_source and env.promotes_from is None:
        return []
    if family.scope == "cluster":
        names = [f"{CLUSTER_PREFIX}{name}" for name in sorted(env.clusters)]
        return [pytest.param(name, id=f"{env.name}/{name}") for name in names]
    applies = sorted((c for c in env.components if family.applies(c)), key=lambda c: c.name)
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


# --- fixtures: resolved once, passed to steps -------------------------------------------------------------------


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


@pytest.fixture(scope="session")
def azure(environment: Environment) -> Generator[AzureClients, None, None]:
    """ARM clients per subscription per worker, built on first use."""
    clients = AzureClients(environment)
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
    session = requests.Session()
    session.headers["User-Agent"] = "deploy-verify/0.1 (+post-deploy checks)"
    yield session
    session.close()


# --- outcomes: FAIL vs ERROR, the summary, verdict.json ---------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Tag each report with component, check and verdict (they travel to the xdist controller), and keep the
    message short: the check's own words, not a traceback through pytest-bdd."""
    report: pytest.TestReport = yield
    run = item.config.stash.get(RUN, None)
    if run is None or "target_name" not in getattr(item, "fixturenames", ()):
        return report
    component = item.callspec.params.get("target_name") if hasattr(item, "callspec") else None
    family = next((FAMILIES[m.name] for m in item.iter_markers() if m.name in FAMILIES), None)
    scenario = (getattr(item, "obj", None).__doc__ or "").partition(": ")[2]
    report.user_properties += [
        ("component", component),
        ("check", family.check if family else "?"),
        ("scenario", scenario),
    ]
    if report.passed and report.when == "call":
        report.user_properties.append(("message", summarize(item.stash.get(RESULTS, []))))
        if RECORDED in item.stash:
            report.user_properties.append((STATE_PROPERTY, item.stash[RECORDED]))
    if report.failed:
        verdict, message = gate.classify(call.excinfo, report.when)
        report.user_properties += [("verdict", verdict), ("message", message)]
        if call.excinfo is not None and isinstance(call.excinfo.value, AssertionError | Undecided):
            report.longrepr = f"{verdict.upper()} {item.nodeid}\n{message}"
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """A call that could not decide shows as ERROR (E), not as a failed assertion."""
    if report.when == "call" and report.failed and ("verdict", "error") in report.user_properties:
        return "error", "E", ("ERROR", {"red": True})
    return None


class GateRecorder:
    """Controller-side: collects one row per test from reports (its own or the workers') and writes the gate."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        run = self.config.stash.get(RUN, None)
        if run is None:
            return
        gate.record(run.rows, report)
        props = dict(report.user_properties)
        if STATE_PROPERTY in props:
            run.recorded[str(props["component"])] = str(props[STATE_PROPERTY])
        elif props.get("check") == "baseline_recorded" and report.failed:
            run.unrecorded.append(str(props["component"]))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        run = self.config.stash.get(RUN, None)
        if run is None or self.config.option.collectonly:
            return
        self._write_baseline(run)
        gate.write_verdict(run, exitstatus, self.config)
        if self.config.option.allure_report_dir:
            allure_meta.write(Path(self.config.option.allure_report_dir), run)

    @staticmethod
    def _write_baseline(run: Run) -> None:
        """All or nothing: a baseline missing a component would mislead the rollback check that reads it."""
        assert run.baseline is not None
        if run.unrecorded:
            names = ", ".join(sorted(set(run.unrecorded)))
            run.baseline_note = f"baseline NOT written: could not record {names}; {run.baseline.path} is unchanged"
        elif run.recorded:
            written = write_baseline(run.baseline.path, run.env.name, run.release.release, run.recorded)
            run.baseline_note = f"baseline of {len(written.components)} components written to {run.baseline.path}"

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        run = self.config.stash.get(RUN, None)
        if run is not None and not self.config.option.collectonly:
            gate.print_summary(terminalreporter, run, exitstatus, self.config.getoption("markexpr") or "")
            if run.baseline_note:
                terminalreporter.write_line(run.baseline_note, bold=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if RUN in config.stash and not hasattr(config, "workerinput"):
        config.pluginmanager.register(GateRecorder(config), "deploy-verify-gate")


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """Allure: titles that name the component and environment; labels to group by environment and component."""
    if "target_name" not in request.fixturenames:
        return
    target = request.getfixturevalue("target_name")
    env = request.getfixturevalue("environment")
    kind = "cluster" if target.startswith(CLUSTER_PREFIX) else env.component(target).kind
    allure_meta.label_test(env.name, target, kind, feature.name, scenario.name)


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_step_call(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any, step_func_args: Any
) -> None:
    """Runs after allure recorded the step's arguments: strip the ones that are not plain values."""
    if request.config.option.allure_report_dir:
        allure_meta.keep_plain_step_parameters(request.config, step, step_func_args)


def pytest_bdd_after_step(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any, step_func_args: Any
) -> None:
    """Remember the check results a step worked on, so a passing test's summary line says what was seen."""
    for value in step_func_args.values():
        if isinstance(value, list) and value and all(isinstance(r, CheckResult) for r in value):
            request.node.stash[RESULTS] = value
