"""`deploy-verify init`: the starter a team's repository begins with. It writes exactly its files and never over
someone's own, the environment and release files load with the suite's own loaders, the pytest.ini is accepted by
pytest with the installed plugin (loaded from its entry point, as in a team's repository), and the help says what
it does. The workflow it writes is linted in tests/test_workflows.py."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from deploy_verify.cli import gate_command, main
from deploy_verify.config import load_environment
from deploy_verify.kinds import KINDS
from deploy_verify.release import load_release

ROOT = Path(__file__).resolve().parent.parent
STARTER = {
    "environments/staging.yaml",
    "releases/staging.yaml",
    "pytest.ini",
    "features/README.md",
    ".github/workflows/verify.yml",
}
BUILTIN = sorted(p.name for p in (ROOT / "features").glob("*.feature"))


def written(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def one_line(text: str) -> str:
    """argparse wraps help to the terminal's width; compare the words."""
    return " ".join(text.split())


def test_init_writes_exactly_the_starter_and_says_what_next(tmp_path, capsys):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    assert written(tmp_path) == STARTER
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"deploy-verify init: wrote 5 files in {tmp_path}\n")
    for path in STARTER:
        assert f"  {path}  " in out
    gate = shlex.join(gate_command("staging", "postdeploy"))
    assert gate == "python -m pytest --env staging -m postdeploy"
    assert f"  2. cd {tmp_path}\n" in out
    assert f"  3. {gate} --collect-only -q   # what the gate would run\n" in out
    assert f"  4. {gate} --release releases/staging.yaml\n" in out
    assert "  5. replace OWNER/REPO and TAG in .github/workflows/verify.yml" in out  # placeholders, said so


def test_init_names_the_environment_and_fills_the_workflow(tmp_path, capsys):
    assert main(["init", "--dir", str(tmp_path), "--name", "prod-weu", "--repo", "acme/dv", "--ref", "v0.1.0"]) == 0
    assert written(tmp_path) == {p.replace("staging", "prod-weu") for p in STARTER}
    workflow = (tmp_path / ".github" / "workflows" / "verify.yml").read_text()
    assert "OWNER" not in workflow
    assert "TAG" not in workflow
    assert "default: prod-weu\n" in workflow
    assert "default: releases/prod-weu.yaml\n" in workflow
    assert "replace OWNER/REPO" not in capsys.readouterr().out  # nothing left to replace


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "pytest.ini").write_text("[pytest]\n# mine\n")
    assert main(["init", "--dir", str(tmp_path)]) == 1
    _, err = capsys.readouterr()
    assert err == (
        f"deploy-verify init: not overwriting {tmp_path / 'pytest.ini'} (nothing written; --force replaces them)\n"
    )
    assert written(tmp_path) == {"pytest.ini"}  # all or nothing
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\n# mine\n"
    assert main(["init", "--dir", str(tmp_path), "--force"]) == 0
    assert capsys.readouterr().out.startswith(f"deploy-verify init: rewrote 5 files in {tmp_path}\n")
    assert written(tmp_path) == STARTER
    assert "deploy_verify_env_dir = environments" in (tmp_path / "pytest.ini").read_text()


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--name", "Prod_1", "argument --name: 'Prod_1' is not an environment name: lowercase letters, digits and '-'"),
        ("--name", "../x", "argument --name: '../x' is not an environment name: lowercase letters, digits and '-'"),
        ("--repo", "acme", "argument --repo: 'acme': expected OWNER/REPO, a GitHub repository"),
        ("--ref", "v1 x", "argument --ref: 'v1 x': expected a tag, branch or commit"),
    ],
)
def test_init_refuses_a_bad_option_before_writing(tmp_path, capsys, option, value, says):
    with pytest.raises(SystemExit) as exit_:
        main(["init", "--dir", str(tmp_path), option, value])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith(f"deploy-verify init: error: {says}\n")
    assert written(tmp_path) == set()


def test_the_environment_loads_and_explains_itself(tmp_path):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    env = load_environment("staging", tmp_path / "environments")
    assert [(c.name, c.kind) for c in env.components] == [("web", "deployment"), ("public-site", "endpoint")]
    assert (env.protected, env.budget, env.clusters["main"].context) == (False, 600.0, "my-cluster-context")
    text = (tmp_path / "environments" / "staging.yaml").read_text()
    assert yaml.safe_load(text)["name"] == "staging"
    for name, kind in KINDS.items():  # every kind listed, from the registry, and each one shown as an example
        assert f"\n#   {name:<12}  {kind.marker}\n" in text
        assert f"kind: {name}" in text
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) > 40


def test_every_commented_example_component_is_valid_when_uncommented(tmp_path):
    """The examples are what a user uncomments first; each must load (Azure with its subscription alias)."""
    assert main(["init", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "environments" / "staging.yaml"
    lines = path.read_text().splitlines()
    start = lines.index("components:")
    uncommented = [
        line.replace("# ", "", 1) if i > start and line.lstrip().startswith("# ") else line
        for i, line in enumerate(lines)
    ]
    text = "\n".join(uncommented).replace(
        "# azure:\n#   subscriptions:\n#     platform:\n#       subscription_id:",
        "azure:\n  subscriptions:\n    platform:\n      subscription_id:",
    )
    path.write_text(text)
    env = load_environment("staging", tmp_path / "environments")
    assert sorted({c.kind for c in env.components}) == sorted(KINDS)
    assert env.component("web").certificates[0].name == "web-tls"


def test_the_release_manifest_loads_against_the_environment(tmp_path):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    env = load_environment("staging", tmp_path / "environments")
    release = load_release(tmp_path / "releases" / "staging.yaml", [], [c.name for c in env.components])
    assert (release.release, release.components["web"].version) == ("0.1.0", "1.0.0")


def pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in the starter folder with this venv's Python: the plugin comes from its entry point (the project is
    installed editable), nothing from this repository's configuration."""
    command = [sys.executable, "-m", "pytest", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120, check=False)


def test_pytest_accepts_the_ini_and_collects_the_built_in_scenarios(tmp_path):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    done = pytest_in(tmp_path, "--collect-only", "-q", "--env", "staging", "-m", "postdeploy")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deploy_verify/health.feature::test_health_endpoints_answer_healthy_after_the_deploy[staging/web]" in (
        done.stdout
    )
    assert "deploy_verify/kubernetes.feature::test_the_rollout_completes[staging/web]" in done.stdout
    assert "deploy_verify/kubernetes.feature::test_nodes_are_healthy[staging/cluster:main]" in done.stdout
    assert "[staging/public-site]" in done.stdout
    assert not (tmp_path / ".pytest_cache").exists()  # -p no:cacheprovider from addopts
    assert (tmp_path / "reports" / "junit.xml").is_file()  # deploy_verify_reports_dir = reports


def test_pytest_refuses_a_run_without_env_and_names_the_starter_environment(tmp_path):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    done = pytest_in(tmp_path, "--collect-only", "-q")
    assert done.returncode == 4
    assert (
        f"ERROR: name the environment to verify: pytest --env NAME (environments in {tmp_path / 'environments'}: "
        "staging)" in done.stderr
    )


def test_the_ini_example_for_switching_a_built_in_scenario_off_works_when_uncommented(tmp_path):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    ini = tmp_path / "pytest.ini"
    text = ini.read_text()
    assert "#   health.feature\n" in text
    ini.write_text(text.replace("#   health.feature\n", "    health.feature\n"))  # uncommented in place
    done = pytest_in(tmp_path, "--collect-only", "-q", "--env", "staging", "-m", "postdeploy")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "health.feature" not in done.stdout
    assert "deploy_verify/kubernetes.feature::test_the_rollout_completes[staging/web]" in done.stdout


def test_the_ini_sets_the_options_the_plugin_declares(tmp_path):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    done = pytest_in(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in (tmp_path / "pytest.ini").read_text().splitlines()]
    keys = {line.split("=")[0].strip() for line in lines if "=" in line and not line.startswith("#")}
    declared = {"deploy_verify_env_dir", "deploy_verify_reports_dir", "deploy_verify_features", "deploy_verify_builtin"}
    assert keys == {"addopts", "testpaths", "deploy_verify_disable", *declared}
    for key in declared | {"deploy_verify_disable"}:
        assert f"{key} (" in done.stdout  # pytest --help lists it: the plugin declares it
    assert "addopts = --strict-markers --strict-config -p no:cacheprovider" in lines


def console_script(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "deploy-verify"
    assert script.is_file(), f"{script}: the console script is missing; run scripts/bootstrap"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60, check=False)


def test_help_says_what_the_command_does():
    done = console_script("--help")
    assert done.returncode == 0, done.stderr
    text = one_line(done.stdout)
    assert text.startswith("usage: deploy-verify [-h] [--version] COMMAND ...")
    assert "`python -m pytest --env NAME -m postdeploy` is the gate" in text
    assert "init write a starter: environment, release manifest, pytest.ini, features/, CI workflow" in text


def test_init_help_names_every_file_and_option():
    done = console_script("init", "--help")
    assert done.returncode == 0, done.stderr
    text = one_line(done.stdout)
    assert text.startswith(
        "usage: deploy-verify init [-h] [--dir DIR] [--name NAME] [--repo REPO] [--ref REF] [--force]"
    )
    assert (
        "Write a starter into DIR: environments/NAME.yaml, releases/NAME.yaml, pytest.ini, features/README.md and "
        ".github/workflows/verify.yml (which calls the reusable workflow REPO/.github/workflows/verify.yml@REF and "
        "installs the package from the same tag). Existing files are never overwritten without --force."
    ) in text
    assert (
        "--repo REPO GitHub repository of deploy-verify the workflow calls (default: the placeholder OWNER/REPO)"
        in (text)
    )


def test_version_is_the_projects_and_python_m_works_too(tmp_path):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert console_script("--version").stdout == f"deploy-verify {version}\n"
    done = subprocess.run(
        [sys.executable, "-m", "deploy_verify", "init", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert written(tmp_path) == STARTER
    missing = console_script()
    assert missing.returncode == 2
    assert missing.stderr.endswith("deploy-verify: error: the following arguments are required: COMMAND\n")


def test_the_builtin_features_the_readme_mentions_exist():
    """features/README.md's example uses built-in steps by their exact text, and the ini names real files."""
    readme = (ROOT / "deploy_verify" / "templates" / "features" / "README.md").read_text()
    health = (ROOT / "features" / "health.feature").read_text()
    for step in (
        "When the component's health endpoints are probed once",
        "Then every health endpoint answers 2xx within its latency budget with a healthy body",
    ):
        assert step in readme
        assert step in health
    ini = (ROOT / "deploy_verify" / "templates" / "pytest.ini").read_text()
    assert "health.feature" in BUILTIN
    assert "#   certificates.feature::cert-manager Certificates are ready and really served\n" in ini
    assert (
        "Scenario: cert-manager Certificates are ready and really served"
        in (ROOT / "features" / "certificates.feature").read_text()
    )
