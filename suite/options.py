"""The command line and start-up: options, markers (from the family and kind registries), the environment, the
release and the time budget, resolved once before anything runs. A bad --env, config or -m is one line and exit 4.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from suite.baseline import BaselineSource, baseline_path
from suite.config import ConfigError, load_environment
from suite.family import FAMILIES
from suite.kinds import KINDS
from suite.release import load_release
from suite.run import RUN, Run
from suite.shard import ShardError, parse_shard

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
    run.env_dir = env_dir
    run.source_verdict = config.getoption("source_verdict")
    chosen = config.getoption("baseline")
    run.baseline = BaselineSource(Path(chosen) if chosen else baseline_path(reports, env.name), env.name)
    run.deadline = env.budget_deadline()
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
