"""The Allure report as a promotion record (deploy_verify/allure_meta.py, scripts/render-report): the verdict and the
phase in the Overview's title, environment, release, commit and promotion source in its Environment block, a
severity from the phase and `protected:`, the environment file's links on each test, and history kept per
environment. The runs are the real suite on the testbed; the renders are the pinned generator's. (The Overview as a
person sees it, in a browser, is tests/test_report_review.py.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy_verify.allure_meta import (
    COMMIT_VARIABLES,
    commit_of,
    expected_summary,
    phases_of,
    severity_of,
    source_verdict,
    write,
)
from deploy_verify.config import ConfigError, load_environment
from deploy_verify.release import ReleaseManifest, load_release
from deploy_verify.run import Run
from tests.test_end_to_end import allure_results, run_suite

ROOT = Path(__file__).resolve().parent.parent
HEALTH = "postdeploy and http"  # the three health checks of local: a gate run with a phase, in a few seconds
LOCAL_RELEASE = "--release=testbed/release-local.yaml"


# --- the phase and the severity -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markexpr", "phases"),
    [
        ("postdeploy", ["postdeploy"]),
        ("postdeploy and http", ["postdeploy"]),
        ("predeploy", ["predeploy"]),
        ("rollback and restored", ["rollback"]),
        ("rollback and mutating", ["rollback"]),
        ("smoke", ["smoke"]),
        ("postdeploy or predeploy", ["postdeploy", "predeploy"]),
        ("postdeploy and not predeploy", ["postdeploy"]),
        ("not predeploy", []),
        ("not (predeploy or smoke) and http", []),
        ("(postdeploy) and not (smoke)", ["postdeploy"]),
        ("not not postdeploy", ["postdeploy"]),
        ("http or rollout", []),
        ("mutating", []),
        ("", []),
    ],
)
def test_the_phase_is_what_the_marker_expression_asks_for(markexpr, phases):
    assert phases_of(markexpr) == phases


@pytest.mark.parametrize(
    ("phases", "protected", "severity"),
    [
        (["postdeploy"], True, "blocker"),
        (["postdeploy"], False, "critical"),
        (["rollback"], True, "blocker"),
        (["rollback"], False, "critical"),
        (["smoke"], True, "critical"),
        (["smoke"], False, "normal"),
        (["predeploy"], True, "normal"),
        (["predeploy"], False, "normal"),
        ([], True, "critical"),
        ([], False, "normal"),
        (["predeploy", "postdeploy"], True, "blocker"),  # the most severe of the phases the run names
    ],
)
def test_severity_comes_from_the_phase_and_protected(phases, protected, severity):
    assert severity_of(phases, protected).value == severity


def test_docs_carry_the_severity_table():
    """docs/allure.md states the mapping; it must be the one the code applies."""
    text = (ROOT / "docs" / "allure.md").read_text()
    for phase in ("postdeploy", "rollback", "smoke", "predeploy"):
        protected, unprotected = severity_of([phase], True).value, severity_of([phase], False).value
        assert f"| {phase} | {protected} | {unprotected} |" in text
    assert f"| (none) | {severity_of([], True).value} | {severity_of([], False).value} |" in text


# --- the environment block ------------------------------------------------------------------------------------------


def test_expected_versions_are_summarised_in_one_line():
    release = load_release(
        ROOT / "testbed" / "release-local.yaml",
        [],
        [c.name for c in load_environment("local", ROOT / "environments").components],
    )
    assert expected_summary(release) == (
        "payments-api 1.4.2, storefront-a 2.3.0, storefront-b 2.3.0, cart sha256:c0ffeec0ffee…, ledger 5.1.0, "
        "node-agent 0.9.0, catalog 2.4.0 chart 1.2.0, orders 3.4.0, pricing 5.2.0, orders-events 2.7.1 (+2 more in "
        "verdict.json)"
    )
    many = ReleaseManifest.model_validate(
        {"components": {f"c{i}": f"1.{i}" for i in range(12)} | {"w": {"containers": {"app": "2.0", "m": "r/m:2"}}}}
    )
    assert expected_summary(many) == (
        "c0 1.0, c1 1.1, c2 1.2, c3 1.3, c4 1.4, c5 1.5, c6 1.6, c7 1.7, c8 1.8, c9 1.9 (+3 more in verdict.json)"
    )
    containers = ReleaseManifest.model_validate({"components": {"w": {"containers": {"app": "2.0", "m": "r/m:2"}}}})
    assert expected_summary(containers) == "w {app=2.0 m=r/m:2}"
    assert expected_summary(ReleaseManifest()) == "-"


def _git(repository: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repository), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_commit_is_the_repositorys_and_says_when_it_has_changes(tmp_path, monkeypatch):
    for variable in COMMIT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    repository = tmp_path / "estate"
    (repository / "environments").mkdir(parents=True)
    (repository / "environments" / "prod.yaml").write_text("name: prod\n")
    _git(repository, "init", "-q")
    _git(repository, "add", ".")
    _git(repository, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "-m", "estate")
    sha = _git(repository, "rev-parse", "HEAD")
    assert commit_of(repository / "environments") == sha
    (repository / "environments" / "prod.yaml").write_text("name: prod\nbudget: 5m\n")
    assert commit_of(repository / "environments") == f"{sha} with uncommitted changes"
    # No checkout to ask (an unpacked artifact): the CI's variable, named; else nothing is claimed.
    bare = tmp_path / "unpacked"
    bare.mkdir()
    assert commit_of(bare) == "-"
    monkeypatch.setenv("CI_COMMIT_SHA", "0123abcd")
    assert commit_of(bare) == "0123abcd (CI_COMMIT_SHA)"
    monkeypatch.setenv("GITHUB_SHA", "feedbeef")
    assert commit_of(bare) == "feedbeef (GITHUB_SHA)"


def _run(env_name: str, env_dir: Path, reports: Path) -> Run:
    return Run(load_environment(env_name, env_dir), ReleaseManifest(), None, reports)


def test_source_verdict_says_what_is_wrong_with_the_file(tmp_path):
    """example-prod promotes from staging: no file, another environment's file, staging's own."""
    run = _run("example-prod", ROOT / "environments", tmp_path)
    assert source_verdict(run) == f"none: no verdict of 'staging' at {tmp_path / 'verdict-staging.json'}"
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"environment": "local", "verdict": "green"}))
    run.source_verdict = str(other)
    assert source_verdict(run) == f"{other} is the verdict of 'local', not of 'staging'"
    staging = tmp_path / "verdict-staging.json"
    document = {
        "environment": "staging",
        "verdict": "red",
        "reason": "1 failed of 9",
        "release": {"name": "2026.12.1"},
        "finished": "2026-12-02T10:00:00+00:00",
    }
    staging.write_text(json.dumps(document))
    run.source_verdict = None
    assert source_verdict(run) == (
        f"GATE RED: 1 failed of 9 · release 2026.12.1 · finished 2026-12-02T10:00:00+00:00 · {staging}"
    )
    assert source_verdict(_run("local", ROOT / "environments", tmp_path)) == "-"


def properties(results: Path) -> dict[str, str]:
    lines = (results / "environment.properties").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_without_this_runs_verdict_the_record_says_unknown(tmp_path):
    """A verdict.json left by an earlier run is not this run's: the Overview must not claim its colour."""
    run = _run("local", ROOT / "environments", tmp_path)
    (tmp_path / "verdict.json").write_text(json.dumps({"verdict": "green", "started": "2020-01-01T00:00:00+00:00"}))
    write(tmp_path / "results", run)
    written = properties(tmp_path / "results")
    assert written["gate"] == f"GATE UNKNOWN: no verdict of this run in {tmp_path / 'verdict.json'}"
    assert (written["phase"], written["markers"], written["release"]) == ("no phase", "-", "-")
    executor = json.loads((tmp_path / "results" / "executor.json").read_text())
    assert executor["reportName"] == "GATE UNKNOWN · no phase · local"


# --- links in the environment file -----------------------------------------------------------------------------------

HEAD = "name: prod\n"
WEB = "components:\n  - name: web\n    kind: endpoint\n    health: [{url: 'https://web.example.com/health'}]\n"
LINK_CASES = [
    (
        "not http",
        HEAD + "links: {dashboard: 'ftp://grafana.example.com/d/1'}\n" + WEB,
        [
            "environments/prod.yaml:2: links.dashboard: expected an http:// or https:// URL without spaces, got "
            "'ftp://grafana.example.com/d/1'"
        ],
    ),
    (
        "a space in the URL",
        HEAD + WEB + "    links:\n      runbook: 'https://wiki.example.com/run book'\n",
        [
            "environments/prod.yaml:7: components[0].links.runbook: expected an http:// or https:// URL without "
            "spaces, got 'https://wiki.example.com/run book'"
        ],
    ),
    (
        "credentials, not echoed",
        HEAD + "links: {logs: 'https://admin:hunter2@logs.example.com/'}\n" + WEB,
        [
            "environments/prod.yaml:2: links.logs: a link must not carry credentials (user:password@host): the report "
            "shows it to everyone"
        ],
    ),
    (
        "a list, not a mapping",
        HEAD + "links: ['https://grafana.example.com']\n" + WEB,
        ["environments/prod.yaml:2: links: input should be a valid dictionary (got ['https://grafana.example.com'])"],
    ),
    (
        "a number, not a URL",
        HEAD + WEB + "    links: {runbook: 42}\n",
        ["environments/prod.yaml:6: components[0].links.runbook: input should be a valid string (got 42)"],
    ),
]


@pytest.mark.parametrize(("text", "messages"), [c[1:] for c in LINK_CASES], ids=[c[0] for c in LINK_CASES])
def test_invalid_links_are_reported_word_for_word(tmp_path, text, messages):
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "prod.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_environment("prod", env_dir)
    assert caught.value.problems == messages
    assert "hunter2" not in str(caught.value)


def test_links_load_at_both_levels(tmp_path):
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    text = HEAD + "links: {dashboard: 'https://grafana.example.com/d/1?var=prod'}\n" + WEB
    (env_dir / "prod.yaml").write_text(text + "    links: {runbook: 'http://wiki.example.com/web#rollback'}\n")
    env = load_environment("prod", env_dir)
    assert env.links == {"dashboard": "https://grafana.example.com/d/1?var=prod"}
    assert env.component("web").links == {"runbook": "http://wiki.example.com/web#rollback"}


# --- real runs: the record's content -------------------------------------------------------------------------------

STAGING_LINKS = {"dashboard": "https://grafana.example.test/d/staging", "alerts": "https://alerts.example.test/"}
RUNBOOK = "https://wiki.example.test/runbooks/payments-api"


def staging_environment(tmp_path: Path) -> Path:
    """`staging`: local's file under another name, protected, promoting from local, with links at both levels. Its
    folder sits beside a link to the testbed's files, which the file's relative paths name."""
    root = tmp_path / "estate"
    env_dir = root / "environments"
    env_dir.mkdir(parents=True)
    (root / ".testbed").symlink_to(ROOT / ".testbed")
    text = (ROOT / "environments" / "local.yaml").read_text()
    text = text.replace("name: local\n", "name: staging\n", 1)
    text = text.replace("promotes_from: null\nprotected: false\n", "promotes_from: local\nprotected: true\n", 1)
    links = "".join(f"  {name}: {url}\n" for name, url in STAGING_LINKS.items())
    text = text.replace("\ncomponents:\n", f"\nlinks:\n{links}\ncomponents:\n", 1)
    text = text.replace("  - name: payments-api\n", f"  - name: payments-api\n    links: {{runbook: {RUNBOOK}}}\n", 1)
    (env_dir / "staging.yaml").write_text(text)
    # The estate is a repository of its own: the record's commit is its commit, not this checkout's.
    _git(root, "init", "-q")
    _git(root, "add", "environments")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "-m", "staging")
    return env_dir


@pytest.fixture(scope="module")
def local_run(testbed, tmp_path_factory) -> Path:
    reports: Path = tmp_path_factory.mktemp("record-local")
    result = run_suite(reports, "--env", "local", "-m", HEALTH, LOCAL_RELEASE, "-n", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return reports


@pytest.fixture(scope="module")
def staging_env(tmp_path_factory) -> Path:
    return staging_environment(tmp_path_factory.mktemp("record-staging-env"))


@pytest.fixture(scope="module")
def staging_run(local_run, staging_env, tmp_path_factory) -> Path:
    """Promoting local's release into `staging`: its own reports, local's verdict as the source."""
    env_dir = staging_env
    reports: Path = tmp_path_factory.mktemp("record-staging")
    source = f"--source-verdict={local_run / 'verdict-local.json'}"
    result = run_suite(reports, "--env", "staging", f"--env-dir={env_dir}", "-m", HEALTH, LOCAL_RELEASE, source)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return reports


@pytest.fixture(scope="module")
def red_run(testbed, tmp_path_factory) -> Path:
    reports: Path = tmp_path_factory.mktemp("record-red")
    release = "--release=testbed/release-local-broken.yaml"
    pick = ("-k", "unavailable or wrong-version")
    result = run_suite(reports, "--env", "local-broken", "-m", HEALTH, *pick, release, "-n", "2")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    return reports


def by_component(reports: Path) -> dict[str, dict[str, Any]]:
    return {label(r, "component"): r for r in allure_results(reports)}


def label(result: dict[str, Any], name: str) -> str:
    return str(next(item["value"] for item in result["labels"] if item["name"] == name))


def test_a_protected_postdeploy_run_is_blocker_with_links_and_its_own_history_id(local_run, staging_run):
    staging, local = by_component(staging_run), by_component(local_run)
    assert set(staging) == set(local) == {"payments-api", "checkout-web", "inventory-api"}
    for name, result in staging.items():
        assert label(result, "severity") == "blocker", name  # protected + postdeploy
        assert label(local[name], "severity") == "critical", name  # not protected + postdeploy
        assert {"name": "environment", "value": "'staging'"} in result["parameters"]
        # The same scenario on the same component: one test case, two histories.
        assert result["testCaseId"] == local[name]["testCaseId"]
        assert result["historyId"] != local[name]["historyId"]
        own = [{"name": "runbook", "url": RUNBOOK, "type": "link"}] if name == "payments-api" else []
        environment = [{"name": k, "url": v, "type": "link"} for k, v in STAGING_LINKS.items()]
        assert result["links"] == own + environment, name
        assert "links" not in local[name], name  # local's file has none: nothing is invented


def test_the_environment_block_names_verdict_phase_release_commit_and_source(local_run, staging_run, staging_env):
    written = properties(staging_run / "allure-results")
    verdict = json.loads((staging_run / "verdict.json").read_text())
    source = json.loads((local_run / "verdict-local.json").read_text())
    assert written["commit"] == _git(staging_env, "rev-parse", "HEAD")  # the estate's own commit, no changes since
    assert {k: v for k, v in written.items() if k not in {"commit", "python", "pytest"}} == {
        "gate": f"GATE GREEN: {verdict['reason']}",
        "phase": "postdeploy",
        "environment": "staging",
        "release": "demo-2026.11",
        "protected": "true",
        "promotes_from": "local",
        "source_verdict": f"GATE GREEN: 3 passed · release demo-2026.11 · finished {source['finished']} · "
        f"{local_run / 'verdict-local.json'}",
        "release_file": "testbed/release-local.yaml",
        "expected": "payments-api 1.4.2, storefront-a 2.3.0, storefront-b 2.3.0, cart sha256:c0ffeec0ffee…, "
        "ledger 5.1.0, node-agent 0.9.0, catalog 2.4.0 chart 1.2.0, orders 3.4.0, pricing 5.2.0, orders-events 2.7.1 "
        "(+2 more in verdict.json)",
        "markers": HEALTH,
    }
    assert verdict["reason"] == "3 passed"
    executor = json.loads((staging_run / "allure-results" / "executor.json").read_text())
    assert executor["reportName"] == "GATE GREEN · postdeploy · staging · release demo-2026.11"


def test_a_red_run_says_gate_red_with_the_gates_reason(red_run):
    written = properties(red_run / "allure-results")
    verdict = json.loads((red_run / "verdict.json").read_text())
    assert (verdict["verdict"], verdict["reason"]) == ("red", "2 failed of 2")
    assert (written["gate"], written["phase"], written["environment"]) == (
        "GATE RED: 2 failed of 2",
        "postdeploy",
        "local-broken",
    )
    executor = json.loads((red_run / "allure-results" / "executor.json").read_text())
    assert executor["reportName"] == "GATE RED · postdeploy · local-broken · release demo-2026.11-broken"


# --- history per environment ---------------------------------------------------------------------------------------


def render(results: Path, out: Path, history: Path) -> subprocess.CompletedProcess[str]:
    command = [str(ROOT / "scripts" / "render-report"), "--results", str(results), "--out", str(out)]
    done = subprocess.run(
        [*command, "--history", str(history)], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def trend(report: Path) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = json.loads((report / "widgets" / "history-trend.json").read_text())
    return points


def test_history_and_trend_are_kept_per_environment(local_run, staging_run, tmp_path):
    """Two renders of local, then one of staging into the same report folder: staging's trend is its one run, not
    local's two plus its own; local's history holds local's tests only."""
    history, out = tmp_path / "allure-history", tmp_path / "report"
    first = render(local_run / "allure-results", out, history)
    assert "no previous history of environment local; its trends start with this run" in first.stderr
    assert len(trend(out)) == 1
    second = render(local_run / "allure-results", out, history)
    assert f"carrying history of environment local from {history / 'local'}" in second.stderr
    assert [point["reportName"] for point in trend(out)] == [
        "GATE GREEN · postdeploy · local · release demo-2026.11"
    ] * 2
    # Staging's results arrive holding a history/ of local's (a results folder rendered before): not carried on.
    staging_results = tmp_path / "staging-results"
    shutil.copytree(staging_run / "allure-results", staging_results)
    shutil.copytree(local_run / "allure-results" / "history", staging_results / "history")
    third = render(staging_results, out, history)
    assert "no previous history of environment staging; its trends start with this run" in third.stderr
    assert [point["reportName"] for point in trend(out)] == ["GATE GREEN · postdeploy · staging · release demo-2026.11"]
    assert sorted(p.name for p in history.iterdir()) == ["local", "staging"]
    # Per test: local's three have two runs each, staging's three (the same scenarios and components) one each.
    local_tests = json.loads((history / "local" / "history.json").read_text())
    staging_tests = json.loads((history / "staging" / "history.json").read_text())
    assert [test["statistic"]["total"] for test in local_tests.values()] == [2, 2, 2]
    assert [test["statistic"]["total"] for test in staging_tests.values()] == [1, 1, 1]
    assert not set(local_tests) & set(staging_tests)
    assert len(json.loads((history / "local" / "history-trend.json").read_text())) == 2
    # And local again, into the folder staging's report now occupies: local's own history, a third point.
    render(local_run / "allure-results", out, history)
    assert len(trend(out)) == 3


def test_results_naming_no_environment_keep_history_apart(local_run, tmp_path):
    """Results the suite did not write (no environment= line) neither join nor take any environment's history."""
    results = tmp_path / "results"
    shutil.copytree(local_run / "allure-results", results)
    (results / "environment.properties").unlink()
    history = tmp_path / "allure-history"
    done = render(results, tmp_path / "report", history)
    assert "the results name no environment" in done.stderr
    assert sorted(p.name for p in history.iterdir()) == ["_unnamed"]
