"""The extension seam: a family declared in a module of its own is collected, registered as a marker, categorised in
Allure and written to verdict.json without touching any other file of the suite; and no two sources of the family
and kind lists can disagree."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from deploy_verify.allure_meta import CATEGORIES
from deploy_verify.checks.result import Category
from deploy_verify.config import ConfigError, load_environment
from deploy_verify.family import FAMILIES, by_kind, load_builtin, step_modules
from deploy_verify.kinds import KINDS
from deploy_verify.options import PHASES, marker_lines

ROOT = Path(__file__).resolve().parent.parent

# A team's own family, as it would write it: the check (plain Python), its declaration and steps, in one module.
TOY_MODULE = '''
from pytest_bdd import then, when

from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, declare


def quota(ctx: Context, target: Target) -> list[CheckResult]:
    """The toy predicate: a component named 'broken' is over its quota."""
    where = f"quota:{target.name}"
    if target.name == "broken":
        return [CheckResult("quota_within_limit", where, Verdict.FAIL, "uses 12 of 10 quota units")]
    return [CheckResult("quota_within_limit", where, Verdict.PASS, "uses 3 of 10 quota units")]


QUOTA = declare(
    Family(
        tag="quota",
        check="quota_within_limit",
        marker="applies to every component: it stays within its quota",
        category=Category.PROVISIONING,
        run=quota,
        applies=lambda _family, component: True,
    )
)


@when("the component's quota is read", target_fixture="quota_results")
def read_quota(verify):
    return verify(QUOTA)


@then("it is within its limit")
def within_limit(quota_results, component):
    assert_results(quota_results, component)
'''

TOY_FEATURE = """Feature: Quotas
  Every component stays within its quota.

  @postdeploy @quota
  Scenario: The quota holds
    When the component's quota is read
    Then it is within its limit
"""

ENVIRONMENT = """\
name: local
budget: 1m
components:
  - name: web
    kind: endpoint
    health: [{url: "https://localhost:18441/health"}]
  - name: broken
    kind: endpoint
    health: [{url: "https://localhost:18461/health"}]
"""


@pytest.fixture
def project(pytester, monkeypatch):
    """A team's repository: the suite's settings, their feature file, environment and family module (the built-in
    features come from the package)."""
    shutil.copy(ROOT / "pyproject.toml", pytester.path)
    (pytester.path / "features").mkdir()
    (pytester.path / "features" / "quota.feature").write_text(TOY_FEATURE)
    (pytester.path / "environments").mkdir()
    (pytester.path / "environments" / "local.yaml").write_text(ENVIRONMENT)
    (pytester.path / "team_quota.py").write_text(TOY_MODULE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(pytester.path)]))
    return pytester


def run_quota(project, *args):
    # A subprocess: the family registry is process-wide, and the toy must not leak into the other tests.
    return project.runpytest_subprocess("features", "-p", "team_quota", "-p", "no:cacheprovider", *args)


def test_a_new_family_module_is_collected_registered_and_runs(project):
    listed = run_quota(project, "--collect-only", "-q", "-m", "quota")
    assert sorted(line for line in listed.outlines if "::" in line) == [
        "features/quota.feature::test_the_quota_holds[local/broken]",
        "features/quota.feature::test_the_quota_holds[local/web]",
    ]
    markers = run_quota(project, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.quota: applies to every component: it stays within its quota"])

    result = run_quota(project, "-m", "quota")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*broken*FAIL*quota_within_limit: *uses 12 of 10 quota units*", "GATE RED: *"])
    verdict = json.loads((project.path / "reports" / "verdict.json").read_text())
    rows = {t["component"]: (t["check"], t["outcome"], t["category"]) for t in verdict["tests"]}
    assert rows == {"broken": ("quota_within_limit", "fail", "Provisioning"), "web": ("quota_within_limit", "pass", "")}
    results = [json.loads(p.read_text()) for p in (project.path / "reports" / "allure-results").glob("*-result.json")]
    red = [r for r in results if r["status"] == "failed"]
    assert [r["name"] for r in red] == ["The quota holds [local/broken]"]
    assert red[0]["statusDetails"]["trace"].endswith("\ncategory: Provisioning")


def test_a_family_in_an_environments_checks_list_must_be_declared(project):
    env = project.path / "environments" / "local.yaml"
    env.write_text(ENVIRONMENT.replace("budget: 1m\n", "budget: 1m\nchecks: [http, quta]\n"))
    result = run_quota(project, "-m", "quota")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: environments/local.yaml:3: checks: 'quta' is not one of: *, quota, *"])
    env.write_text(ENVIRONMENT.replace("budget: 1m\n", "budget: 1m\nchecks: [quota]\n"))
    assert run_quota(project, "-m", "quota").ret == pytest.ExitCode.TESTS_FAILED


# --- the registries agree --------------------------------------------------------------------------------------


def test_every_family_has_a_marker_a_category_and_a_unique_check_id():
    families = load_builtin()
    assert len({f.check for f in families.values()}) == len(families)
    for tag, family in families.items():
        assert family.tag == tag
        assert family.marker.strip(), tag
        assert isinstance(family.category, Category), tag
        assert family.category.value in {c["name"] for c in CATEGORIES}, tag


def test_markers_come_from_the_declarations_and_nothing_else():
    names = [line.split(":")[0] for line in marker_lines()]
    assert len(names) == len(set(names))
    assert set(names) == set(PHASES) | set(FAMILIES) | set(KINDS)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "\nmarkers = [" not in pyproject  # a second list would drift from the declarations


def test_kinds_and_families_name_each_other_consistently():
    """A kind lists only kind-driven families, and every kind-driven family is taken up by some kind."""
    kind_driven = {tag for tag, family in FAMILIES.items() if family.applies is by_kind}
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.families <= kind_driven, (name, kind.families - kind_driven)
    assert set().union(*(kind.families for kind in KINDS.values())) == kind_driven


def test_every_step_module_is_found_without_a_list():
    modules = step_modules()
    on_disk = sorted(
        f"deploy_verify.steps.{p.stem}" for p in (ROOT / "steps").glob("*.py") if not p.stem.startswith("_")
    )
    assert modules[: len(on_disk)] == on_disk
    conftest = (ROOT / "conftest.py").read_text()
    assert "pytest_plugins" not in conftest


def test_the_schema_accepts_exactly_the_registered_kinds_and_families(tmp_path):
    envs = tmp_path / "environments"
    envs.mkdir()
    (envs / "x.yaml").write_text("name: x\nchecks: [nope]\ncomponents:\n  - {name: a, kind: nope}\n")
    with pytest.raises(ConfigError) as raised:
        load_environment("x", envs)
    assert raised.value.problems == [
        f"environments/x.yaml:2: checks: 'nope' is not one of: {', '.join(sorted(FAMILIES))}",
        f"environments/x.yaml:4: components[0].kind: 'nope' is not one of: {', '.join(KINDS)}",
    ]
    (envs / "x.yaml").write_text(
        "name: x\nchecks: [" + ", ".join(FAMILIES) + "]\ncomponents:\n  - {name: a, kind: endpoint, "
        "health: [{url: 'https://a/health'}]}\n"
    )
    assert load_environment("x", envs).checks == list(FAMILIES)


def test_no_kind_branches_outside_the_adapters():
    """`component.kind ==` and friends live in suite/kinds.py only."""
    offenders = []
    for folder in ("deploy_verify", "steps", "checks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "kinds.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#")[0]
                if any(f"{name}.kind {op}" in code for name in ("component", "comp", "c") for op in ("==", "!=", "in")):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], sys.stderr.write("\n".join(offenders))


STUCK_MODULE = TOY_MODULE.replace(
    '    """The toy predicate: a component named \'broken\' is over its quota."""',
    '    """A check stuck where no timeout reaches (a name lookup, a defect)."""\n    import time\n\n    time.sleep(120)',
)


def test_a_run_stuck_past_budget_and_slack_is_stopped_red(project):
    """The last resort: whatever blocks, the gate ends red within budget + slack (5 s for a short budget)."""
    import time

    env = project.path / "environments" / "local.yaml"
    env.write_text(ENVIRONMENT.replace("budget: 1m", "budget: 2s"))
    (project.path / "team_quota.py").write_text(STUCK_MODULE)
    started = time.monotonic()
    result = run_quota(project, "-m", "quota", "-k", "web")
    elapsed = time.monotonic() - started
    assert result.ret == 3
    assert elapsed < 2 + 5 + 6, elapsed  # budget + slack + interpreter start-up and collection
    result.stderr.fnmatch_lines(["GATE RED: the run did not end within its budget of 2s plus 5s: stopped; stuck at *"])
    verdict = json.loads((project.path / "reports" / "verdict.json").read_text())
    assert verdict["verdict"] == "red"
    assert [(t["check"], t["outcome"], t["category"]) for t in verdict["tests"]] == [
        ("run_deadline", "error", "Infrastructure unreachable"),
        ("quota_within_limit", "error", "Infrastructure unreachable"),  # the test it interrupted
    ]
