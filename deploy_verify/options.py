"""The command line and start-up: options, markers (from the family and kind registries), the environment, the
release and the time budget, resolved once before anything runs. A bad --env, config or -m is one line and exit 4.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from deploy_verify.baseline import BaselineSource, baseline_path
from deploy_verify.checks.deadline import Deadline
from deploy_verify.clients import AzureClients, KubeClients
from deploy_verify.config import ConfigError, Environment, load_environment
from deploy_verify.durations import parse_duration
from deploy_verify.family import FAMILIES
from deploy_verify.kinds import KINDS, Clients
from deploy_verify.release import load_release, release_names
from deploy_verify.run import RUN, Run
from deploy_verify.selection import WORKERINPUT_KEY, Resolution, dumps, expand, loads, resolve
from deploy_verify.shard import ShardError, parse_shard
from deploy_verify.soak import SoakError, plan_of

# When a scenario runs: the phases of a release. Family and kind markers come from their declarations.
PHASES = {
    "postdeploy": "checks run after a deploy; the gate for promoting further",
    "predeploy": "checks run before promoting into an environment",
    "rollback": "checks run after a rollback: is the previous revision really back?",
    "smoke": "the fastest decisive subset",
    "mutating": "scenario changes the environment (rollback drill); refused unless --allow-mutations, never on "
    "protected environments",
}
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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deploy-verify", "deployment verification")
    group.addoption(
        "--env",
        help="environment to verify: <env dir>/<ENV>.yaml; required (the ini option deploy_verify_default_env names "
        "one for a repository that wants a default)",
    )
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
        help="run only shard I of N (whole clusters / resource groups per shard); merge with python -m "
        "deploy_verify.shard",
    )
    group.addoption(
        "--env-dir",
        metavar="DIR",
        help="where environment files live (default: ini deploy_verify_env_dir, else <rootdir>/environments)",
    )
    group.addoption(
        "--reports-dir",
        metavar="DIR",
        help="where reports go (default: ini deploy_verify_reports_dir, else <rootdir>/reports)",
    )
    group.addoption(
        "--retry-for",
        metavar="DURATION",
        help="a step that looks once (a health probe, a rollout, an app's state) looks again until it passes or "
        "DURATION (30s, 2m) ends, inside the budget; steps that say `within` or wait for a rollout keep their window",
    )
    group.addoption(
        "--soak",
        metavar="DURATION",
        help="once every test has passed, hold the verdict for DURATION (10m), looking again at the fast checks and "
        "the metric rules every soak.every (30s) and going red at the first failure; overrides the environment's "
        "soak.duration, 0 switches it off",
    )
    group.addoption(
        "--show-env",
        action="store_true",
        help="print the --env environment as merged from the bases it extends (validated), each value with the file "
        "and line it came from, and exit without running anything",
    )
    parser.addini(
        "deploy_verify_env_dir", "where environment files live, relative to the rootdir", default="environments"
    )
    parser.addini("deploy_verify_reports_dir", "where reports go, relative to the rootdir", default="reports")
    parser.addini(
        "deploy_verify_default_env",
        "environment a run without --env verifies (unset: --env is required, so a gate never verifies a default by "
        "accident)",
        default="",
    )
    parser.addini(
        "deploy_verify_features",
        "the repository's feature folders, relative to the rootdir: a run that collects one is a gate run",
        type="linelist",
        default=["features"],
    )
    parser.addini(
        "deploy_verify_builtin",
        "run the built-in scenarios shipped with the package (false: only this repository's feature files)",
        type="bool",
        default=True,
    )
    parser.addini(
        "deploy_verify_disable",
        "built-in scenarios switched off, one per line: 'health.feature' (a whole file) or 'health.feature::Scenario "
        "name'",
        type="linelist",
        default=[],
    )


def marker_lines() -> list[str]:
    """Every marker the suite defines: phases, then each family's tag, then each kind (a kind's text wins where a
    family and a kind share a name, as @containerapp does)."""
    lines = {name: text for name, text in PHASES.items()}
    lines |= {tag: family.marker for tag, family in FAMILIES.items()}
    lines |= {name: kind.marker for name, kind in KINDS.items()}
    return [f"{name}: {text}" for name, text in lines.items()]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, then resolve the environment before anything runs."""
    for line in marker_lines():
        config.addinivalue_line("markers", line)
    if config.getoption("show_env") and not hasattr(config, "workerinput"):
        _show_env(config)  # exits: nothing is resolved, collected or run
    if not _is_gate_run(config):
        return
    _refuse_partial_runs(config)
    root = config.rootpath
    env_dir = Path(config.getoption("env_dir") or root / config.getini("deploy_verify_env_dir"))
    reports = Path(config.getoption("reports_dir") or root / config.getini("deploy_verify_reports_dir"))
    try:
        written = load_environment(_env_name(config, env_dir), env_dir)
        deadline = written.budget_deadline()
        resolution = _resolution(config, written, deadline)
        env = expand(written, resolution)
        release_file = config.getoption("release")
        release = load_release(
            Path(release_file) if release_file else None, config.getoption("expect"), release_names(env)
        )
        shard = parse_shard(config.getoption("shard")) if config.getoption("shard") else None
        soak = plan_of(config.getoption("soak"), env)
    except (ConfigError, ShardError, SoakError) as exc:
        raise pytest.UsageError(str(exc)) from exc
    _refuse_unknown_markers(config)
    run = Run(env, release, release_file, reports, allow_mutations=config.getoption("allow_mutations"), shard=shard)
    run.env_dir = env_dir
    run.source_verdict = config.getoption("source_verdict")
    chosen = config.getoption("baseline")
    run.baseline = BaselineSource(Path(chosen) if chosen else baseline_path(reports, env.name), env.name)
    run.deadline = deadline
    run.resolution = resolution
    run.soak = soak
    config.stash[RUN] = run
    _collect_builtin(config)
    _default_outputs(config, reports)


def _resolution(config: pytest.Config, env: Environment, deadline: Deadline) -> Resolution:
    """The environment's selections: read here on the controller (or the only process), received as they are on an
    xdist worker, so every worker collects the same tests."""
    if not env.selections:
        return {}
    handed = getattr(config, "workerinput", {}).get(WORKERINPUT_KEY)
    if handed is not None:
        return loads(handed)
    kube, azure = KubeClients(env), AzureClients(env, deadline)
    try:
        return resolve(env, Clients(kube, azure), deadline)
    finally:
        azure.close()
        if getattr(config.option, "numprocesses", None):
            kube.close()  # the workers run the checks, with readers of their own
        else:
            # This process runs the checks too: its readers keep the lists just read, so the checks read none again.
            config.stash[RESOLVED_BY] = kube


RESOLVED_BY = pytest.StashKey[KubeClients]()  # the readers that resolved the selections, for the session's checks


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, on the controller, for each worker it starts: hand over the selections as resolved here."""
    run = node.config.stash.get(RUN, None)
    if run is not None and run.resolution:
        node.workerinput[WORKERINPUT_KEY] = dumps(run.resolution)


# pytest's re-run habits, by option dest. The cache they need is off (-p no:cacheprovider), so pytest would accept
# and silently ignore them; and a gate that ran only the tests that failed last time would call the rest green.
PARTIAL_RUNS = {
    "lf": "--lf",
    "failedfirst": "--ff",
    "newfirst": "--nf",
    "stepwise": "--sw",
    "stepwise_skip": "--sw-skip",
}


def _refuse_partial_runs(config: pytest.Config) -> None:
    """--lf, --ff, --nf, --sw refused in one line; --retry-for checked before anything runs."""
    given = [flag for dest, flag in PARTIAL_RUNS.items() if config.getoption(dest, False)]
    if given:
        raise pytest.UsageError(
            f"{', '.join(given)}: a gate judges the whole environment on every run, so it does not re-run only what "
            "failed last time; select with -k or -m, or give a flaky check more time with --retry-for DURATION"
        )
    retry = config.getoption("retry_for")
    if retry is not None:
        try:
            parse_duration(retry)
        except ValueError as exc:
            raise pytest.UsageError(f"--retry-for: {exc}") from exc


def _arg_paths(config: pytest.Config) -> list[Path]:
    return [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]


def _is_gate_run(config: pytest.Config) -> bool:
    """A gate run collects feature files: it names one, one of the repository's feature folders (ini
    deploy_verify_features, default `features`), something inside one or a folder that holds one (`pytest` in the
    repository), or the built-in folder or something inside it. `pytest tests` beside features/ is not one."""
    from deploy_verify.collection import BUILTIN_FEATURES

    own = [(config.rootpath / entry).resolve() for entry in config.getini("deploy_verify_features")]
    for path in _arg_paths(config):
        if path.suffix == ".feature" or _within(path, BUILTIN_FEATURES):
            return True
        if any(_within(path, f) or _within(f, path) for f in own):
            return True
    return False


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _env_name(config: pytest.Config, env_dir: Path) -> str:
    """--env, else the repository's declared default; never a silent `local`."""
    name = config.getoption("env") or config.getini("deploy_verify_default_env")
    if name:
        return str(name)
    known = sorted(p.stem for p in env_dir.glob("*.yaml")) if env_dir.is_dir() else []
    where = f"environments in {env_dir}: {', '.join(known)}" if known else f"no environment files in {env_dir}"
    raise pytest.UsageError(f"name the environment to verify: pytest --env NAME ({where})")


def _collect_builtin(config: pytest.Config) -> None:
    """The built-in feature files run without anyone copying them, unless the repository says
    `deploy_verify_builtin = false` or the command line names single files or tests (a focused run)."""
    if not config.getini("deploy_verify_builtin"):
        return
    from deploy_verify.collection import BUILTIN_FEATURES

    paths = _arg_paths(config)
    named = config.args_source == pytest.Config.ArgsSource.ARGS
    if named and not any(p.is_dir() and "::" not in a for p, a in zip(paths, config.args, strict=True)):
        return
    if any(_within(p, BUILTIN_FEATURES) or _within(BUILTIN_FEATURES, p) for p in paths):
        return
    config.args.append(str(BUILTIN_FEATURES))


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


def _show_env(config: pytest.Config) -> None:
    """--show-env: the merged environment with each value's origin on stdout, then exit 0 (4 and one line per
    problem if it would not load). Only the files are read: no cluster, no Azure, no environment variable."""
    from deploy_verify.bases import show_environment

    env_dir = Path(config.getoption("env_dir") or config.rootpath / config.getini("deploy_verify_env_dir"))
    name = _env_name(config, env_dir)
    try:
        text = show_environment(name, env_dir)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    print(text, end="", flush=True)
    pytest.exit(f"--show-env: printed environment {name!r}; nothing was run", returncode=0)
