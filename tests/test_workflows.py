"""The GitHub workflows: actionlint (with shellcheck) finds nothing, it would find a mistake, and the promotion
chain has the shape the README promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_VERSION = "v1.7.12"  # scripts/install-tools builds it


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    cache = Path(os.environ.get("DV_CACHE_DIR", Path.home() / ".cache" / "deploy-verify"))
    binary = cache / "tools" / f"actionlint-{ACTIONLINT_VERSION}" / "actionlint"
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if not binary.is_file():
        pytest.fail(f"actionlint is not installed at {binary}: run scripts/install-tools", pytrace=False)
    if not shellcheck.is_file():
        pytest.fail(f"shellcheck is not installed at {shellcheck}: run scripts/bootstrap", pytrace=False)
    command = [str(binary), "-no-color", f"-shellcheck={shellcheck}", *map(str, paths)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_every_workflow_passes_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "deploy.yml", "promote.yml", "rollback.yml", "verify.yml"]
    done = actionlint(*files)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_actionlint_would_catch_a_broken_workflow(tmp_path):
    broken = (WORKFLOWS / "verify.yml").read_text().replace("inputs.environment", "inputs.enviroment", 1)
    broken = broken.replace('echo "verdict=$verdict"', "echo verdict=$verdict", 1)
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "verify.yml").write_text(broken)
    done = actionlint(folder / "verify.yml")
    assert done.returncode == 1
    assert 'property "enviroment" is not defined' in done.stdout
    assert "SC2086" in done.stdout  # shellcheck ran on the run: script


def jobs(name: str) -> dict:
    document: dict = yaml.safe_load((WORKFLOWS / name).read_text())
    return dict(document["jobs"])


def test_promotion_chain_gates_every_environment_before_and_after_its_deploy():
    chain = jobs("promote.yml")
    previous = None
    for env in ("integration", "staging", "production"):
        pre, deploy, post, back = (chain[f"{env}-{step}"] for step in ("predeploy", "deploy", "postdeploy", "rollback"))
        assert pre["uses"] == deploy["uses"].replace("deploy.yml", "verify.yml") == "./.github/workflows/verify.yml"
        assert (pre["with"]["environment"], pre["with"]["markers"]) == (env, "predeploy")
        assert pre.get("needs") == (f"{previous}-postdeploy" if previous else None)  # green upstream first
        if previous:
            assert pre["with"]["source-artifact"] == f"verify-{previous}-postdeploy"  # the promotion check's evidence
        assert deploy["needs"] == f"{env}-predeploy"
        assert (post["needs"], post["with"]["markers"]) == (f"{env}-deploy", "postdeploy")
        assert back["if"].startswith("failure()")
        assert back["with"]["baseline-artifact"] == f"verify-{env}-predeploy"
        previous = env


def test_verify_fails_the_job_on_a_red_gate_and_always_uploads_reports():
    steps = jobs("verify.yml")["verify"]["steps"]
    gate = next(s for s in steps if s.get("id") == "gate")
    assert 'exit "$rc"' in gate["run"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    for path in ("reports/allure-results/", "reports/junit.xml", "reports/verdict*.json", "reports/baseline-*.json"):
        assert path in upload["with"]["path"]
    assert jobs("verify.yml")["verify"]["environment"] == "${{ inputs.environment }}"  # production's approval
