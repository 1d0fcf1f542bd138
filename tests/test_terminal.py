"""The terminal, read as a person reads it: the last screen of a red run is the gate's table with every reason said
once, long waits say what they wait for, pytest habits a gate cannot honour are refused in one line, a flaky probe
can be given time from the command line, a location is said once per message, and a missing kubeconfig or Azure
credential is explained once for every check it stops."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy_verify.checks.converge import State, converge, poll
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.arm import ArmUnavailable
from deploy_verify.config import load_environment
from deploy_verify.fixtures import WaitProgress, wait_window
from tests.test_plugin import suite, verdict  # noqa: F401 - the pytester copy of a team's repository

ROOT = Path(__file__).resolve().parent.parent
RED = ("--env", "local-broken", "-m", "postdeploy", "--release", "testbed/release-local-broken.yaml")
# A target at the start of a line said twice: `ContainerApp:rg/x: ContainerApp:rg/x: ...`.
DOUBLED = re.compile(r"^(\S+): \1[: ]")


def gate(reports: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "features", "--reports-dir", str(reports), *args]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=env or dict(os.environ)
    )


@pytest.fixture(scope="module")
def red(testbed, tmp_path_factory):
    """The broken environment, one process (no -n), as a person runs it."""
    reports = tmp_path_factory.mktemp("red")
    return gate(reports, *RED), json.loads((reports / "verdict.json").read_text())


def cause(message: str) -> str:
    """A row's reason as the table says it: its first line, without the target it starts with."""
    first = message.strip().splitlines()[0]
    return first.split(": ", 1)[1] if ": " in first else first


def test_the_last_screen_of_a_red_run_is_the_table_with_every_components_reason(red):
    result, document = red
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    lines = result.stdout.rstrip("\n").splitlines()
    assert lines[-1].startswith("GATE RED: "), lines[-5:]
    tail = lines[-50:]  # 45 red components and the GATE line: one tall screen
    red_rows = [t for t in document["tests"] if t["outcome"] != "pass"]
    components = [t for t in red_rows if not t["component"].startswith("cluster:")]
    assert len({t["component"] for t in components}) >= 30  # the point: many red components, one screen
    for row in components:
        said = [line for line in tail if cause(row["message"]) in line and row["component"] in line]
        assert said, (row["component"], row["check"], cause(row["message"]))
    # A cluster's problem comes first, just above: the whole block is the red rows and the GATE line.
    block = lines[lines.index(next(line for line in lines if "deployment verification: local-broken" in line)) :]
    for row in red_rows:
        assert any(cause(row["message"]) in line for line in block), row
    # Each reason once in the block: not three times as table, short summary and failure section.
    for reason in {cause(t["message"]) for t in red_rows}:
        assert sum(line.count(reason) for line in block) == 1, reason
    assert "short test summary info" not in result.stdout
    assert not [line for line in block[1:] if line.startswith("==")]  # nothing of pytest's comes after the table


def test_a_red_runs_messages_say_their_location_once(red):
    _, document = red
    for row in document["tests"]:
        for line in row["message"].splitlines():
            assert not DOUBLED.match(line), line


def test_a_long_wait_says_what_it_waits_for_while_it_waits(red):
    """local-broken's recommendations never become ready: its rollout waits the 10 s rollout deadline out."""
    result, _ = red
    said = [line for line in result.stdout.splitlines() if line.startswith("waiting for ")]
    assert said == [
        line
        for line in said
        if line.startswith("waiting for rollout_complete on Deployment:broken/recommendations: rollout incomplete: ")
    ]
    assert len(said) == 1, said  # at most every 10 s: one line in a 10 s wait, not one per watch event
    assert re.search(r"; \d+s left of the rollout deadline of 10s$", said[0]), said[0]
    # During the wait, not after it: the line comes before pytest's summary sections.
    assert result.stdout.index(said[0]) < result.stdout.index("= FAILURES =")


def test_progress_is_told_at_most_every_interval_with_the_state_and_time_left():
    told: list[str] = []
    window = Deadline.after(1.2, "step deadline of 1.2 seconds")
    progress = WaitProgress(told.append, "http_health on https://x/health", window)
    progress.FIRST, progress.EVERY = 0.3, 0.5
    window.progress = progress
    looks = iter(range(100))
    state, evaluations = converge(
        lambda: State(None, f"HTTP 503 (look {next(looks)})"), poll(window, 0.05), window, grace=0
    )
    assert state.verdict is Verdict.ERROR
    assert evaluations > 10
    assert 1 <= len(told) <= 2, told  # many looks, few lines
    assert re.fullmatch(
        r"waiting for http_health on https://x/health: HTTP 503 \(look \d+\); \d+s left of the step deadline of 1.2 "
        r"seconds",
        told[0],
    )


def test_progress_reaches_the_terminal_through_the_output_capture(suite):  # noqa: F811
    (suite.path / "features" / "waiting.feature").write_text(
        "Feature: Waiting\n  @postdeploy @http\n  Scenario: Health endpoints become healthy within a deadline\n"
        "    When the component's health endpoints are probed until healthy within 7 seconds\n"
        "    Then every health endpoint answers 2xx within its latency budget with a healthy body\n"
    )
    result = suite.runpytest("features", "-k", "broken and waiting")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "waiting for http_health on *broken*: HTTP 503 Service Unavailable*; *s left of the step deadline of 7 seconds"
        ]
    )


@pytest.mark.parametrize("habit", ["--lf", "--last-failed", "--ff", "--nf", "--sw", "--stepwise", "--sw-skip"])
def test_rerun_habits_are_refused_in_one_line_saying_why(suite, habit):  # noqa: F811
    result = suite.runpytest("features", "-m", "postdeploy", habit)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    flag = {"--last-failed": "--lf", "--stepwise": "--sw"}.get(habit, habit)
    result.stderr.fnmatch_lines(
        [
            f"ERROR: {flag}: a gate judges the whole environment on every run, so it does not re-run only what "
            "failed last time; select with -k or -m, or give a flaky check more time with --retry-for DURATION"
        ]
    )
    assert not (suite.path / "reports" / "verdict.json").exists()


def test_rerun_habits_are_still_pytests_outside_a_gate_run(suite):  # noqa: F811
    suite.makepyfile(test_plain="def test_ok():\n    assert True\n")
    assert suite.runpytest("test_plain.py", "--sw").ret == pytest.ExitCode.OK


def test_retry_for_gives_a_one_shot_probe_a_window(suite):  # noqa: F811
    env = suite.path / "environments" / "local.yaml"
    env.write_text(  # a look every 500 ms, as a team whose probe is flaky would set
        env.read_text()
        .replace("budget: 1m", "budget: 1m\ndefaults:\n  http: {retry_interval: 500ms}", 1)
        .replace("defaults:\n  tls:", "  tls:")
    )
    result = suite.runpytest("features", "-m", "http", "-k", "broken", "--retry-for", "2s")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    message = verdict(suite)["tests"][0]["message"]
    assert re.fullmatch(
        r"https://localhost:18461/health: still unhealthy after [3-5] attempts in 2s; last: HTTP 503 Service "
        r"Unavailable in \d+ ms, expected 2xx; body: .*",
        message,
    ), message
    once = suite.runpytest("features", "-m", "http", "-k", "broken")
    assert once.ret == pytest.ExitCode.TESTS_FAILED
    assert verdict(suite)["tests"][0]["message"].startswith("https://localhost:18461/health: HTTP 503 ")


def test_retry_for_opens_a_window_only_where_the_step_has_none():
    env = load_environment("local", ROOT / "environments")
    budget = Deadline.after(60, "time budget")
    retried = wait_window(env, budget, None, None, "30s")
    assert retried is not None
    assert retried.label == "--retry-for 30s"
    assert 29 < retried.remaining() <= 30
    stepped = wait_window(env, budget, None, "5 seconds", "30s")
    assert stepped is not None
    assert stepped.label == "step deadline of 5 seconds"
    assert wait_window(env, budget, None, None, None) is None


def test_a_bad_retry_duration_is_refused_before_anything_runs(suite):  # noqa: F811
    result = suite.runpytest("features", "-m", "http", "--retry-for", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --retry-for: expected a duration like 30s, 5m or 250ms, got 'soon'"])


def test_a_transport_naming_the_target_is_not_prefixed_twice():
    where = "ContainerApp:rg/x"

    def ask() -> None:
        raise ArmUnavailable(f"{where}: ARM answered 500: InternalServerError")

    result = attempt("containerapp_healthy", where, ask)  # type: ignore[arg-type]
    assert (result.verdict, result.line()) == (
        Verdict.ERROR,
        "ContainerApp:rg/x: ARM answered 500: InternalServerError",
    )

    def revision() -> None:
        raise ArmUnavailable(f"{where} revision x--v7 not found: ResourceNotFound")

    said = attempt("containerapp_healthy", where, revision).line()  # type: ignore[arg-type]
    assert said == "ContainerApp:rg/x: revision x--v7 not found: ResourceNotFound"


def _environment_without(tmp_path: Path, old: str, new: str) -> Path:
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    text = (ROOT / "environments" / "local-broken.yaml").read_text()
    assert old in text
    (env_dir / "local-broken.yaml").write_text(text.replace(old, new))
    return env_dir


def test_a_missing_kubeconfig_is_explained_once_for_every_check_it_stops(testbed, tmp_path):
    env_dir = _environment_without(tmp_path, "kubeconfig: .testbed/kubeconfig.yaml", "kubeconfig: /nowhere/kube.yaml")
    reports = tmp_path / "reports"
    result = gate(reports, *RED[:2], "--env-dir", str(env_dir), "-m", "postdeploy and (deployment or nodes)")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    explained = (
        "cluster dv-a: kubeconfig /nowhere/kube.yaml does not exist; point clusters.dv-a.kubeconfig in the "
        "local-broken environment file at the cluster's kubeconfig (relative paths are from the repository root), "
        "or remove the key to use $KUBECONFIG or ~/.kube/config"
    )
    document = json.loads((reports / "verdict.json").read_text())
    assert len(document["tests"]) > 30
    assert {(t["outcome"], cause(t["message"])) for t in document["tests"]} == {("error", explained)}
    assert "Invalid kube-config" not in result.stdout + result.stderr
    block = result.stdout[result.stdout.index("deployment verification: local-broken") :].splitlines()
    assert [line for line in block if explained in line] == [
        line for line in block if line.startswith(f"{len({t['component'] for t in document['tests']})} components")
    ]
    assert len(block) == 3, block  # the heading, the one explanation naming every component, the GATE line
    assert "cluster:dv-a, mailer" in block[1]
    assert f"{len(document['tests'])} checks]" in block[1]


def test_a_missing_azure_token_is_explained_once(testbed, tmp_path, arm_token):
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if k != "DV_ARM_TOKEN"}
    result = gate(reports, *RED[:2], "-m", "postdeploy and (containerapp or functionapp)", env=env)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    explained = (
        "no Azure credential: environment variable DV_ARM_TOKEN is empty or not set (the environment's "
        "azure.credential is token-env); export DV_ARM_TOKEN=$(az account get-access-token --query accessToken -o "
        "tsv), or set azure.credential: default"
    )
    document = json.loads((reports / "verdict.json").read_text())
    assert {(t["outcome"], cause(t["message"])) for t in document["tests"]} == {("error", explained)}
    block = result.stdout[result.stdout.index("deployment verification: local-broken") :].splitlines()
    assert sum(explained in line for line in block) == 1, block
    assert len(block) == 3, block
    assert arm_token not in result.stdout + result.stderr


def test_time_is_not_lost_in_a_gate_that_fails_fast():
    """The refusal happens at start-up: no cluster, server or budget is touched."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "features", "--env", "local", "--lf"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert done.stderr.strip().splitlines() == [
        "ERROR: --lf: a gate judges the whole environment on every run, so it does not re-run only what failed last "
        "time; select with -k or -m, or give a flaky check more time with --retry-for DURATION"
    ]
    assert time.monotonic() - started < 30


def test_pytests_short_summary_comes_back_when_asked_for_with_r(suite):  # noqa: F811
    plain = suite.runpytest("features", "-m", "postdeploy")
    assert plain.ret == pytest.ExitCode.TESTS_FAILED
    assert "short test summary info" not in plain.stdout.str()
    assert plain.outlines[-1].startswith("GATE RED: 1 failed, 1 error of 4")
    asked = suite.runpytest("features", "-m", "postdeploy", "-rfE")
    asked.stdout.fnmatch_lines(
        ["*short test summary info*", "FAILED *[local/broken]*", "ERROR *[local/api]*", "GATE RED: 1 failed, 1 error*"]
    )
