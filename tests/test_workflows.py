"""The GitHub workflows: actionlint (with shellcheck) finds nothing, it would find a mistake, and the promotion
chain has the shape the README promises. The reusable verify.yml as another repository calls it: the consumer
workflow `deploy-verify init` writes passes actionlint, also checked against verify.yml's workflow_call inputs and
secrets, and the commands verify.yml runs are the ones deploy_verify.cli makes (and tests/test_install.py runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from deploy_verify.cli import gate_command, install_command, main, package_spec
from deploy_verify.durations import parse_duration

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_VERSION = "v1.7.12"  # scripts/install-tools builds it


def actionlint(*paths: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    cache = Path(os.environ.get("DV_CACHE_DIR", Path.home() / ".cache" / "deploy-verify"))
    binary = cache / "tools" / f"actionlint-{ACTIONLINT_VERSION}" / "actionlint"
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if not binary.is_file():
        pytest.fail(f"actionlint is not installed at {binary}: run scripts/install-tools", pytrace=False)
    if not shellcheck.is_file():
        pytest.fail(f"shellcheck is not installed at {shellcheck}: run scripts/bootstrap", pytrace=False)
    command = [str(binary), "-no-color", f"-shellcheck={shellcheck}", *map(str, paths)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


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


def test_this_repository_verifies_with_the_suite_at_the_commit_being_promoted():
    callers = [job for name in ("promote.yml", "rollback.yml") for job in jobs(name).values()]
    verifying = [job for job in callers if job.get("uses") == "./.github/workflows/verify.yml"]
    assert len(verifying) == 7  # six gates of the promotion, one after each rollback
    for job in verifying:
        assert (job["with"]["package"], job["with"]["constraints"]) == (".", "requirements.lock")


# --- the reusable workflow, as another repository calls it ----------------------------------------------------------


def consumer(tmp_path: Path, *options: str) -> dict:
    """The workflow `deploy-verify init` writes into a fresh repository, parsed."""
    assert main(["init", "--dir", str(tmp_path), *options]) == 0
    document: dict = yaml.safe_load((tmp_path / ".github" / "workflows" / "verify.yml").read_text())
    return document


def test_the_consumer_workflow_calls_the_reusable_one_and_installs_the_same_tag(tmp_path, capsys):
    job = consumer(tmp_path, "--repo", "acme/deploy-verify", "--ref", "v0.1.0")["jobs"]["verify"]
    assert job["uses"] == "acme/deploy-verify/.github/workflows/verify.yml@v0.1.0"
    assert job["with"]["package"] == package_spec("acme/deploy-verify", "v0.1.0")
    assert job["with"]["package"] == "deploy-verify @ git+https://github.com/acme/deploy-verify@v0.1.0"
    assert job["secrets"] == {"KUBECONFIG_B64": "${{ secrets.KUBECONFIG_B64 }}"}  # named: inherit stops at the org
    assert "calls the reusable workflow acme/deploy-verify@v0.1.0" in capsys.readouterr().out


def test_the_consumer_workflow_passes_actionlint_as_written(tmp_path):
    """A remote `uses: OWNER/REPO/...@TAG` is checked for its form only (actionlint fetches nothing)."""
    for folder, options in (
        (tmp_path / "placeholders", ()),
        (tmp_path / "filled", ("--repo", "acme/dv", "--ref", "v1")),
    ):
        consumer(folder, *options)
        done = actionlint(folder / ".github" / "workflows" / "verify.yml", cwd=folder)
        assert (done.returncode, done.stdout + done.stderr) == (0, "")


def local_consumer(tmp_path: Path, change: tuple[str, str] | None = None) -> Path:
    """A repository holding the consumer workflow with its `uses:` pointed at a copy of this repository's verify.yml,
    so actionlint checks the call (inputs, their types, secrets) against the real workflow_call. actionlint resolves
    `./` calls from the project root, which it finds by its .git folder."""
    document = consumer(tmp_path / "starter")
    text = (tmp_path / "starter" / ".github" / "workflows" / "verify.yml").read_text()
    remote = document["jobs"]["verify"]["uses"]
    assert remote == "OWNER/REPO/.github/workflows/verify.yml@TAG"
    text = text.replace(f"uses: {remote}", "uses: ./.github/workflows/verify.yml")
    if change:
        assert change[0] in text
        text = text.replace(*change)
    repository = tmp_path / "consumer"
    (repository / ".git").mkdir(parents=True)
    folder = repository / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "consumer.yml").write_text(text)
    (folder / "verify.yml").write_text((WORKFLOWS / "verify.yml").read_text())
    return repository


def test_the_consumer_call_matches_the_reusable_workflows_inputs_and_secrets(tmp_path):
    repository = local_consumer(tmp_path)
    done = actionlint(repository / ".github" / "workflows" / "consumer.yml", cwd=repository)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            ("      markers: ${{ inputs.markers }}\n", "      marker: ${{ inputs.markers }}\n"),
            'input "markers" is required by "./.github/workflows/verify.yml" reusable workflow',
        ),
        (
            ("KUBECONFIG_B64: ${{ secrets.KUBECONFIG_B64 }}", "KUBECONFIG: ${{ secrets.KUBECONFIG_B64 }}"),
            'secret "KUBECONFIG" is not defined in "./.github/workflows/verify.yml" reusable workflow',
        ),
    ],
)
def test_a_consumer_call_the_reusable_workflow_does_not_accept_is_caught(tmp_path, change, says):
    repository = local_consumer(tmp_path, change)
    done = actionlint(repository / ".github" / "workflows" / "consumer.yml", cwd=repository)
    assert done.returncode == 1
    assert says in done.stdout


def verify_step(name: str) -> dict:
    steps = jobs("verify.yml")["verify"]["steps"]
    return dict(next(s for s in steps if s.get("name") == name))


def test_the_reusable_workflow_checks_out_the_caller_and_installs_the_package():
    steps = jobs("verify.yml")["verify"]["steps"]
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout"))
    assert "with" not in checkout  # the caller's repository at the caller's commit, never this one's
    runs = "\n".join(str(s.get("run", "")) for s in steps)
    for this_repository in ("scripts/", ".venv", "features "):
        assert this_repository not in runs  # none of this repository's files exist in a caller's checkout
    assert "${{" not in runs  # inputs reach the scripts as environment variables, never spliced into the shell
    document = yaml.safe_load((WORKFLOWS / "verify.yml").read_text())
    default = document[True]["workflow_call"]["inputs"]["package"]["default"]  # PyYAML reads `on:` as True
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    repo = project["urls"]["Documentation"].removeprefix("https://github.com/").split("#")[0]
    assert default == package_spec(repo, f"v{project['version']}")  # the release this workflow file belongs to


def run_step(name: str, tmp_path: Path, env: dict[str, str]) -> tuple[list[list[str]], str]:
    """Run one `run:` script of verify.yml as the runner does (bash -eo pipefail) with `python` on PATH replaced by a
    recorder; returns the argument lists it was called with and what the step wrote to $GITHUB_OUTPUT."""
    bin_dir, log, output = tmp_path / "bin", tmp_path / "argv.jsonl", tmp_path / "github_output"
    bin_dir.mkdir(exist_ok=True)
    recorder = bin_dir / "python"
    recorder.write_text(
        f"#!{sys.executable}\n"
        "import json, os, pathlib, sys\n"
        "with open(os.environ['DV_ARGV_LOG'], 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:3] == ['-m', 'pytest']:  # a green gate, as far as the step can tell\n"
        "    pathlib.Path('reports').mkdir(exist_ok=True)\n"
        "    pathlib.Path('reports/verdict.json').write_text(json.dumps({'verdict': 'green'}))\n"
    )
    recorder.chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(verify_step(name)["run"])
    variables = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DV_ARGV_LOG": str(log),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        **env,
    }
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
    done = subprocess.run(command, cwd=workspace, env=variables, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return calls, output.read_text() if output.exists() else ""


@pytest.mark.parametrize("constraints", ["", "requirements.lock"])
def test_the_install_step_runs_the_install_command_of_the_cli(tmp_path, constraints):
    package = package_spec("acme/deploy-verify", "v0.1.0")
    calls, _ = run_step("Install the suite", tmp_path, {"DV_PACKAGE": package, "DV_CONSTRAINTS": constraints})
    expected = install_command(package)[1:] + (["-c", constraints] if constraints else [])
    assert calls == [expected]
    assert calls[0][:4] == ["-m", "pip", "install", "deploy-verify @ git+https://github.com/acme/deploy-verify@v0.1.0"]


def test_the_gate_step_passes_a_soak_when_one_is_asked_for(tmp_path):
    env = {"DV_ENV": "staging", "DV_MARKERS": "postdeploy", "DV_RELEASE": "", "DV_SHARD": "", "DV_SOAK": "15m"}
    calls, _ = run_step("Gate", tmp_path, env)
    assert calls == [[*gate_command("staging", "postdeploy")[1:], "-n", "4", "--reports-dir=reports", "--soak=15m"]]


def test_staging_and_production_post_deploy_gates_soak_and_production_requires_staging_s():
    promote = yaml.safe_load((ROOT / ".github" / "workflows" / "promote.yml").read_text())
    inputs = promote[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads the key `on` as True
    assert (inputs["staging-soak"]["default"], inputs["production-soak"]["default"]) == ("15m", "10m")
    jobs = promote["jobs"]
    assert jobs["staging-postdeploy"]["with"]["soak"] == "${{ inputs.staging-soak }}"
    assert jobs["production-postdeploy"]["with"]["soak"] == "${{ inputs.production-soak }}"
    assert "soak" not in jobs["integration-postdeploy"]["with"]
    assert "soak" not in jobs["production-predeploy"]["with"]  # a pre-deploy run has nothing to hold
    for env in ("integration", "staging", "production"):  # baseline metric rules compare with the pre-deploy window
        assert jobs[f"{env}-postdeploy"]["with"]["baseline-artifact"] == f"verify-{env}-predeploy"
    prod = yaml.safe_load((ROOT / "environments" / "example-prod.yaml").read_text())
    assert parse_duration(prod["requires_soak"]) <= parse_duration(inputs["staging-soak"]["default"])


def test_the_gate_step_runs_the_gate_command_of_the_cli(tmp_path):
    env = {"DV_ENV": "staging", "DV_MARKERS": "postdeploy", "DV_RELEASE": "releases/staging.yaml", "DV_SHARD": ""}
    calls, output = run_step("Gate", tmp_path, env)
    gate = gate_command("staging", "postdeploy")[1:]
    assert calls == [[*gate, "-n", "4", "--reports-dir=reports", "--release=releases/staging.yaml"]]
    assert gate == ["-m", "pytest", "--env", "staging", "-m", "postdeploy"]
    assert output == "verdict=green\n"
    assert (tmp_path / "summary.md").read_text() == "### Gate for staging (-m postdeploy): GREEN\n"
