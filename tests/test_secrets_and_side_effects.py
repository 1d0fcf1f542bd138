"""Secrets and side effects: a run with tokens planted in its environment and a kubeconfig holding a client key
writes neither anywhere (stdout, stderr, reports/, Allure attachments), even at DEBUG and on a red run full of
evidence; and a post-deploy run makes no mutating call, as the API servers' audit logs show."""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.audit import audit_events, audit_log

ROOT = Path(__file__).resolve().parent.parent
SUITE_AGENT = "OpenAPI-Generator/"  # the kubernetes Python client's User-Agent: the suite's requests, not kubectl's
PLANTED = {
    "AZURE_CLIENT_SECRET": "planted-azure-secret-7d41c0ffee",
    "GITHUB_TOKEN": "ghp_plantedtoken0123456789abcdefABCDEF",
    "DV_PLANTED_TOKEN": "planted-bearer-9f8e7d6c5b4a",
}


def client_key_fragments() -> list[str]:
    """The testbed kubeconfig's client keys: as stored (base64) and a line from the middle of each decoded PEM."""
    config = yaml.safe_load((ROOT / ".testbed" / "kubeconfig.yaml").read_text())
    fragments = []
    for user in config["users"]:
        data = user["user"].get("client-key-data")
        if data:
            pem = base64.b64decode(data).decode()
            fragments += [data[:64], pem.splitlines()[len(pem.splitlines()) // 2]]
    assert fragments, "the testbed kubeconfig has no client key: the test would prove nothing"
    return fragments


def run(reports: Path, env: str, release: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "features", "--env", env, "-m", "postdeploy", f"--release={release}"]
    command += ["-n", "2", f"--reports-dir={reports}", "--log-level=DEBUG", "-o", "log_cli=true"]
    variables = {**os.environ, **PLANTED}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False, env=variables)


@pytest.fixture(scope="module")
def runs(testbed, tmp_path_factory):
    started = dt.datetime.now(dt.UTC)
    folder = tmp_path_factory.mktemp("secrets")
    green = run(folder / "green", "local", "testbed/release-local.yaml")
    red = run(folder / "red", "local-broken", "testbed/release-local-broken.yaml")
    return started, [(green, folder / "green"), (red, folder / "red")]


def test_both_runs_happened(runs):
    _, done = runs
    (green, _), (red, _) = done
    assert green.returncode == 0, green.stdout[-2000:]
    assert red.returncode == 1, red.stdout[-2000:]


def test_no_planted_secret_or_client_key_is_written_anywhere(runs):
    _, done = runs
    secrets = [*PLANTED.values(), *client_key_fragments(), os.environ["DV_ARM_TOKEN"]]
    for result, reports in done:
        files = [p for p in reports.rglob("*") if p.is_file()]
        assert len(files) > 20, "too few report files to prove anything"
        for secret in secrets:
            assert secret not in result.stdout + result.stderr, f"secret in the output of {reports.name}"
            for path in files:
                assert secret not in path.read_text(errors="replace"), f"secret in {path}"


def test_post_deploy_runs_made_no_mutating_call(runs):
    started, _ = runs
    verbs: dict[str, set[str]] = {}
    for cluster in ("dv-a", "dv-b"):
        for event in audit_events(audit_log(cluster)):
            if not event.get("userAgent", "").startswith(SUITE_AGENT):
                continue
            if dt.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")) < started:
                continue
            verbs.setdefault(cluster, set()).add(event["verb"])
    assert set(verbs) == {"dv-a", "dv-b"}, "no request of the suite in the audit logs"
    for cluster, seen in verbs.items():
        assert seen <= {"get", "list", "watch"}, f"{cluster}: {seen}"
