"""The pytest plugin glue, exercised with pytester on a copy of the suite: fail-closed start-up, parametrization,
verdict mapping and the gate's outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deploy_verify.family import FAMILIES

ROOT = Path(__file__).resolve().parent.parent

LOCAL = """\
name: local
budget: 1m
defaults:
  tls: {ca_bundle: CA}
components:
  - name: web
    kind: endpoint
    health: [{url: "https://localhost:18441/health", body: {json_path: status, equals: UP}}]
    tls: [{host: localhost, port: 18441}]
  - name: api
    kind: endpoint
    health: [{url: "https://localhost:18441/health", version_path: version}]
  - name: broken
    kind: endpoint
    health: [{url: "https://localhost:18461/health"}]
"""


@pytest.fixture
def suite(pytester, ca_bundle):
    """A team's repository with the suite's pytest settings, a small local environment and a features/ folder of its
    own (empty: the built-in scenarios come from the package, the plugin from its entry point)."""
    shutil.copy(ROOT / "pyproject.toml", pytester.path)
    (pytester.path / "features").mkdir()
    (pytester.path / "environments").mkdir()
    (pytester.path / "environments" / "local.yaml").write_text(LOCAL.replace("CA", ca_bundle))
    return pytester


def verdict(pytester):
    return json.loads((pytester.path / "reports" / "verdict.json").read_text())


def test_unknown_environment_is_a_usage_error_naming_the_known_ones(suite):
    result = suite.runpytest("features", "--env", "prd")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: unknown environment 'prd': there is no environments/prd.yaml; known environments: local"]
    )


def test_invalid_environment_is_a_usage_error_with_file_and_line(suite):
    (suite.path / "environments" / "bad.yaml").write_text("name: bad\ncomponents:\n  - {name: x, kind: pod}\n")
    result = suite.runpytest("features", "--env", "bad")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: environments/bad.yaml:3: components[0].kind: 'pod' is not one of: deployment, " in result.stderr.str()
    )


def test_unknown_marker_is_refused_before_anything_runs(suite):
    result = suite.runpytest("features", "-m", "postdeploi")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: unknown marker 'postdeploi' in -m 'postdeploi'; known: *postdeploy*"])


def test_unknown_expect_component_is_refused(suite):
    result = suite.runpytest("features", "--expect", "wbe=1.0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --expect 'wbe=1.0': no component 'wbe' in this environment; known: *"])


def test_zero_selected_tests_is_red_with_one_line_and_a_red_verdict(suite):
    result = suite.runpytest("features", "-m", "helmrelease")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        ["GATE RED: no test selected for environment 'local' with -m 'helmrelease': check the marker expression *"]
    )
    assert (verdict(suite)["verdict"], verdict(suite)["reason"]) == ("red", "no test selected")


def test_one_test_per_scenario_and_applicable_component_with_readable_sorted_ids(suite):
    result = suite.runpytest("features", "--collect-only", "-q", "-m", "postdeploy")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "deploy_verify/certificates.feature::test_hosts_serve_valid_certificates_after_the_deploy[local/web]",
        "deploy_verify/health.feature::test_health_endpoints_answer_healthy_after_the_deploy[local/api]",
        "deploy_verify/health.feature::test_health_endpoints_answer_healthy_after_the_deploy[local/broken]",
        "deploy_verify/health.feature::test_health_endpoints_answer_healthy_after_the_deploy[local/web]",
    ]


def test_kind_markers_select_components(suite):
    result = suite.runpytest("features", "--collect-only", "-q", "-m", "deployment")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result = suite.runpytest("features", "--collect-only", "-q", "-m", "endpoint and tls")
    assert [line for line in result.outlines if "::" in line] == [
        "deploy_verify/certificates.feature::test_hosts_serve_valid_certificates_after_the_deploy[local/web]",
        "deploy_verify/certificates.feature::test_no_certificate_expires_inside_the_promotion_window[local/web]",
    ]


def test_outcomes_pass_fail_and_error_reach_the_summary_and_verdict(suite):
    result = suite.runpytest("features", "-m", "postdeploy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*deployment verification: local*",
            "web * PASS * http_health, tls_certificate",
            "api * ERROR * http_health: https://localhost:18441/health: HTTP 200 OK in * ms; no expected version to "
            "compare version with: pass --release FILE or --expect COMPONENT=VERSION",
            "broken * FAIL * http_health: https://localhost:18461/health: HTTP 503 Service Unavailable in *",
            "GATE RED: 1 failed, 1 error of 4; details in *verdict.json",
        ]
    )
    document = verdict(suite)
    assert (document["environment"], document["verdict"], document["exit_status"]) == ("local", "red", 1)
    outcomes = {(t["component"], t["check"]): t["outcome"] for t in document["tests"]}
    assert outcomes == {
        ("api", "http_health"): "error",
        ("broken", "http_health"): "fail",
        ("web", "http_health"): "pass",
        ("web", "tls_certificate"): "pass",
    }
    assert {t["id"] for t in document["tests"]} == {"local/api", "local/broken", "local/web"}


@pytest.mark.parametrize(
    ("manifest", "said"),
    [
        ("components:\n  web: 1.0.0\n", "has no entry for 'api'"),
        (
            "components:\n  api: {image: registry.example.test/api:1.4.2}\n",
            "lacks the version this check needs in its entry for 'api'",
        ),
    ],
)
def test_a_missing_expectation_names_the_manifest_that_was_given(suite, manifest, said):
    """With a release file on the command line, "pass --release FILE" would send the reader to a file they passed."""
    release = suite.path / "release.yaml"
    release.write_text(manifest)
    result = suite.runpytest("features", "-m", "http", "-k", "api", "--release", "release.yaml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "api * ERROR * http_health: https://localhost:18441/health: HTTP 200 OK in * ms; no expected version to "
            f"compare version with: the release manifest release.yaml {said}: add it there, or pass --expect api=VERSION"
        ]
    )


def test_expectation_from_the_command_line_turns_the_error_green(suite):
    result = suite.runpytest("features", "-m", "postdeploy", "--expect", "api=1.4.2", "-k", "not broken")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["GATE GREEN: 3 passed in environment 'local'"])
    assert verdict(suite)["release"]["expected"] == {"api": {"version": "1.4.2"}}


def test_parallel_run_gives_the_same_verdict(suite, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the subprocess imports the suite from this checkout
    result = suite.runpytest_subprocess("features", "-m", "postdeploy", "-n", "2", "--expect", "api=1.4.2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["GATE RED: 1 failed of 4; details in *"])
    assert (suite.path / "reports" / "junit.xml").exists()


def test_scenario_without_a_check_tag_is_refused(suite):
    (suite.path / "features" / "untagged.feature").write_text(
        "Feature: Untagged\n  @postdeploy\n  Scenario: Nobody knows what this applies to\n"
        "    When the component's health endpoints are probed once\n"
    )
    result = suite.runpytest("features")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [f"*the scenario has no check tag; add one of: {', '.join('@' + tag for tag in sorted(FAMILIES))}*"]
    )


def test_unregistered_gherkin_tag_is_a_collection_error(suite):
    (suite.path / "features" / "typo.feature").write_text(
        "Feature: Typo\n  @postdeplyo @http\n  Scenario: A typo in a tag\n"
        "    When the component's health endpoints are probed once\n"
    )
    result = suite.runpytest("features")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'postdeplyo' not found in `markers` configuration option*"])


def test_spent_budget_is_an_error_not_a_pass(suite):
    env = suite.path / "environments" / "local.yaml"
    env.write_text(env.read_text().replace("budget: 1m", "budget: 1ms"))
    result = suite.runpytest("features", "-m", "tls")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR*not checked: time budget of environment 'local' of 0s is spent*"])


def test_project_tests_outside_features_do_not_arm_the_gate(suite):
    suite.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = suite.runpytest("test_plain.py", "--env", "does-not-exist")
    assert result.ret == pytest.ExitCode.OK
    assert not (suite.path / "reports" / "verdict.json").exists()


WITHIN = """\
Feature: Waiting
  @postdeploy @http
  Scenario: Health endpoints become healthy within a deadline
    When the component's health endpoints are probed until healthy within 2 seconds
    Then every health endpoint answers 2xx within its latency budget with a healthy body
"""


def test_within_step_retries_until_its_deadline_and_says_so(suite):
    (suite.path / "features" / "waiting.feature").write_text(WITHIN)
    env = suite.path / "environments" / "local.yaml"
    env.write_text(
        env.read_text()
        .replace("budget: 1m", "budget: 1m\ndefaults:\n  http: {retry_interval: 500ms}", 1)
        .replace("defaults:\n  tls:", "  tls:")
    )
    result = suite.runpytest("features", "-k", "broken and waiting")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "broken * FAIL * http_health: https://localhost:18461/health: still unhealthy after "
            "* attempts in 2s; last: HTTP 503 Service Unavailable*"
        ]
    )
    attempts = int(verdict(suite)["tests"][0]["message"].split("after ")[1].split(" ")[0])
    assert 3 <= attempts <= 5
    result = suite.runpytest("features", "-k", "web")
    assert result.ret == pytest.ExitCode.OK
