"""A built-in feature file none of whose check families has a target in the environment is not parsed at all (its
scenarios would only be deselected placeholders), so a run's start-up does not grow with features it does not use."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collected(tmp_path: Path, environment: str, *args: str) -> list[str]:
    repo = tmp_path / "repo"
    (repo / "environments").mkdir(parents=True, exist_ok=True)
    (repo / "features").mkdir(exist_ok=True)
    shutil.copy(ROOT / "pyproject.toml", repo)
    (repo / "environments" / "plain.yaml").write_text(environment)
    command = [sys.executable, "-m", "pytest", "features", "--env", "plain", "--co", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run([*command, *args], cwd=repo, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted({line.split("::")[0] for line in done.stdout.splitlines() if "::" in line})


ENDPOINT = "  - {name: web, kind: endpoint, health: [{url: 'http://127.0.0.1:9/'}]}\n"


def test_only_the_features_with_a_target_here_are_collected(tmp_path: Path) -> None:
    assert collected(tmp_path, "name: plain\ncomponents:\n" + ENDPOINT) == ["deploy_verify/health.feature"]


def test_a_family_with_a_target_brings_its_whole_file(tmp_path: Path) -> None:
    env = (
        "name: plain\nclusters: {a: {context: a}}\ncomponents:\n" + ENDPOINT
        + "  - {name: api, kind: endpoint, tls: [{host: api.example.test}]}\n"
    )  # fmt: skip
    files = collected(tmp_path, env)
    # kubernetes.feature: @nodes applies to every cluster; certificates.feature: @tls to the api endpoint
    assert files == [
        "deploy_verify/certificates.feature",
        "deploy_verify/health.feature",
        "deploy_verify/kubernetes.feature",
    ]


def test_checks_limits_the_files_as_it_limits_the_tests(tmp_path: Path) -> None:
    env = (
        "name: plain\nchecks: [tls]\ncomponents:\n"
        + ENDPOINT
        + "  - {name: api, kind: endpoint, tls: [{host: a.test}]}\n"
    )
    assert collected(tmp_path, env) == ["deploy_verify/certificates.feature"]
