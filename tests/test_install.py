"""Installed, not forked: the wheel (and the git URL) into a fresh virtualenv outside the repository, and a team's
repository that holds only its own files (environments, a release manifest, one feature, one step), verified against
the testbed: green on the healthy environment, red on the broken one, reports in the team's reports/ folder.

Nothing of this repository is on the path of those runs: the plugin loads from its pytest11 entry point, the built-in
scenarios from the installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy_verify.cli import gate_command, install_command

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
TESTBED = ROOT / ".testbed"

PYTEST_INI = """\
[pytest]
addopts = --strict-markers --strict-config -p no:cacheprovider
"""

# Shared by both environments: the testbed's control plane, its CA, and a healthy endpoint and workload.
HEALTHY = """\
name: {name}
budget: 1m
defaults:
  tls: {{ca_bundle: {tb}/tls/ca.pem}}
  kubernetes: {{rollout_timeout: 20s}}
clusters:
  dv-a: {{context: kwok-dv-a, kubeconfig: {tb}/kubeconfig.yaml}}
components:
  - name: payments-api
    kind: endpoint
    health:
      - url: https://localhost:18441/health
        body: {{json_path: status, equals: UP}}
        version_path: version
    tls:
      - {{host: localhost, port: 18441}}
  - name: storefront
    kind: deployment
    cluster: dv-a
    namespace: shop
"""

# The broken one adds what the testbed breaks on purpose: a crash-looping rollout and an endpoint that answers 503.
BROKEN = (
    HEALTHY
    + """\
  - name: checkout
    kind: deployment
    cluster: dv-a
    namespace: broken
  - name: unavailable
    kind: endpoint
    health: [{{url: "https://localhost:18451/health"}}]
"""
)

RELEASE = """\
release: team-2026.12
components:
  payments-api: 1.4.2
  storefront: {version: 2.3.0, image: registry.example.test/shop/storefront:2.3.0}
"""

TEAM_FEATURE = """\
Feature: The team's own checks
  Built on the suite's steps, plus one of the team's.

  @postdeploy @http
  Scenario: Health endpoints are served over HTTPS only
    When the component's health endpoints are probed once
    Then no health endpoint is served over plain HTTP
"""

TEAM_STEP = '''\
"""The team's step: it reuses the built-in When step's results."""

from pytest_bdd import then


@then("no health endpoint is served over plain HTTP")
def https_only(health_results):
    plain = [r.target for r in health_results if not r.target.startswith("https://")]
    assert not plain, f"served over plain HTTP: {plain}"
'''

CONFTEST = 'pytest_plugins = ["steps.team_steps"]\n'


def run(command: list[str], cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS")}
    return subprocess.run(
        command, cwd=cwd, env=clean | env, capture_output=True, text=True, timeout=timeout, check=False
    )


def fresh_venv(where: Path) -> Path:
    """A virtualenv with nothing in it but pip, made by the Python running these tests."""
    made = run([sys.executable, "-m", "venv", str(where)], where.parent)
    assert made.returncode == 0, made.stderr
    return where / "bin" / "python"


def pip_install(python: Path, spec: str, cwd: Path) -> None:
    """The package and its declared dependencies, at the versions this repository pins (constraints, not a lock
    install: what gets installed is what the package's metadata asks for)."""
    # The reusable workflow's own install command (deploy_verify.cli), with this repository's pins as constraints.
    command = [*install_command(spec, python=str(python)), "--quiet", "--disable-pip-version-check", "-c", str(LOCK)]
    installed = run(command, cwd)
    assert installed.returncode == 0, installed.stdout + installed.stderr


def source_tree(into: Path) -> Path:
    """The files git knows of (committed or not, ignored ones left out), symlinks kept: what a clone holds."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, into / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(source.readlink())
        else:
            shutil.copy2(source, target)
    return into


def team_repository(where: Path) -> Path:
    """What a platform team keeps: environments, a release manifest, one feature, one step; nothing of ours."""
    (where / "environments").mkdir(parents=True)
    (where / "environments" / "staging.yaml").write_text(HEALTHY.format(name="staging", tb=TESTBED))
    (where / "environments" / "staging-broken.yaml").write_text(BROKEN.format(name="staging-broken", tb=TESTBED))
    (where / "releases").mkdir()
    (where / "releases" / "staging.yaml").write_text(RELEASE)
    (where / "features").mkdir()
    (where / "features" / "team.feature").write_text(TEAM_FEATURE)
    (where / "steps").mkdir()
    (where / "steps" / "team_steps.py").write_text(TEAM_STEP)
    (where / "conftest.py").write_text(CONFTEST)
    (where / "pytest.ini").write_text(PYTEST_INI)
    return where


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (the build writes into the tree it builds)."""
    work = tmp_path_factory.mktemp("build")
    tree = source_tree(work / "src")
    built = run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work / "dist")], tree)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (found,) = (work / "dist").glob("deploy_verify-*.whl")
    return Path(found)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv outside the repository with the wheel installed; returns its python."""
    python = fresh_venv(tmp_path_factory.mktemp("venv") / "venv")
    pip_install(python, str(wheel), wheel.parent)
    return python


@pytest.fixture
def team(tmp_path, testbed) -> Path:
    return team_repository(tmp_path / "team")


def test_the_wheel_holds_one_import_package_with_features_steps_and_the_entry_point(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("deploy_verify-")}
    assert tops == {"deploy_verify"}
    assert {"deploy_verify/features/health.feature", "deploy_verify/steps/http_steps.py"} <= set(names)
    assert "deploy_verify/checks/http_probe.py" in names
    (entry_points,) = (n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]\ndeploy_verify = deploy_verify.plugin" in text
    assert "deploy-verify = deploy_verify.cli:main" in text


def test_a_team_repository_is_green_on_a_healthy_environment_with_reports_in_its_own_folder(installed, team):
    done = run(
        [*gate_command("staging", "postdeploy", python=str(installed)), "--release", "releases/staging.yaml"], team
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "GATE GREEN" in done.stdout
    verdict = json.loads((team / "reports" / "verdict.json").read_text())
    assert verdict["verdict"] == "green"
    rows = {(t["component"], t["check"]) for t in verdict["tests"]}
    # The built-in scenarios ran from the package, the team's own one next to them.
    assert ("payments-api", "http_health") in rows
    assert ("storefront", "rollout_complete") in rows
    ids = [t["nodeid"] for t in verdict["tests"]]
    assert any(i.startswith("features/team.feature::test_health_endpoints_are_served_over_https_only[") for i in ids)
    assert any(i.startswith("deploy_verify/health.feature::") for i in ids)
    assert list((team / "reports" / "allure-results").glob("*-result.json"))
    assert (team / "reports" / "junit.xml").exists()


def test_a_team_repository_is_red_on_the_broken_environment_naming_each_broken_component(installed, team):
    release = ["--release", "releases/staging.yaml"]
    done = run([*gate_command("staging-broken", "postdeploy", python=str(installed)), *release], team)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "GATE RED" in done.stdout
    verdict = json.loads((team / "reports" / "verdict.json").read_text())
    red = {t["component"] for t in verdict["tests"] if t["outcome"] in ("fail", "error")}
    assert {"checkout", "unavailable"} <= red
    assert "payments-api" not in red
    assert "storefront" not in red


def test_a_run_outside_this_repository_must_name_its_environment(installed, team):
    done = run([str(installed), "-m", "pytest", "-m", "postdeploy"], team)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: name the environment to verify: pytest --env NAME (environments in "
        f"{team / 'environments'}: staging, staging-broken)"
    ) in done.stderr


def test_built_in_scenarios_can_be_switched_off_one_by_one(installed, team):
    (team / "pytest.ini").write_text(
        PYTEST_INI + "deploy_verify_disable =\n    certificates.feature\n    health.feature::Health endpoints answer "
        "healthy after the deploy\n"
    )
    listed = run([str(installed), "-m", "pytest", "--env", "staging", "--collect-only", "-q"], team)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    ids = [line for line in listed.stdout.splitlines() if "::" in line]
    assert ids
    assert not any("certificates.feature" in i or "test_health_endpoints_answer_healthy" in i for i in ids)
    assert any(i.startswith("features/team.feature::") for i in ids)
    assert any(i.startswith("deploy_verify/kubernetes.feature::") for i in ids)


def test_a_run_without_a_phase_marker_never_includes_the_rollback_drill(installed, team):
    listed = run([str(installed), "-m", "pytest", "--env", "staging", "--collect-only", "-q"], team)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "rollback_drill" not in listed.stdout
    assert "test_a_rollback_drill" not in listed.stdout
    asked = run([str(installed), "-m", "pytest", "--env", "staging", "--collect-only", "-q", "-m", "drill"], team)
    assert "rollback.feature::test_a_rollback_drill_restores_the_baseline[staging/storefront]" in asked.stdout


def test_the_git_url_installs_the_same_plugin(tmp_path, team):
    """pip install git+file://…: what a team pins in its requirements before a release is on an index."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # The work tree's uncommitted changes are part of what is under test; commit them in the throwaway clone.
    source_tree(tmp_path / "tree")
    subprocess.run(["cp", "-a", f"{tmp_path / 'tree'}/.", str(clone)], check=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.test"]
    subprocess.run([*git, "add", "-A"], cwd=clone, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "under test"], cwd=clone, check=True)
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, f"git+file://{clone}", tmp_path)
    listed = run([str(python), "-m", "pytest", "--env", "staging", "--collect-only", "-q"], team)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert (
        "deploy_verify/health.feature::test_health_endpoints_answer_healthy_after_the_deploy[staging/payments-api]"
        in (listed.stdout)
    )
    version = run([str(python.parent / "deploy-verify"), "--version"], team)
    assert version.returncode == 0, version.stdout + version.stderr
    assert version.stdout.startswith("deploy-verify ")


def test_init_from_the_installed_package_writes_a_repository_pytest_accepts(installed, tmp_path):
    """The starter `deploy-verify init` writes collects the built-in scenarios with nothing else added."""
    made = run(
        [str(installed.parent / "deploy-verify"), "init", "--dir", str(tmp_path / "new"), "--name", "qa"], tmp_path
    )
    assert made.returncode == 0, made.stdout + made.stderr
    listed = run([str(installed), "-m", "pytest", "--env", "qa", "--collect-only", "-q"], tmp_path / "new")
    assert listed.returncode in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), listed.stdout + listed.stderr
    assert "ERROR" not in listed.stdout + listed.stderr
