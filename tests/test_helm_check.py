"""checks.helm against releases made by the real helm binaries, v4 and v3, on the testbed's control plane."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.helm import HelmExpectation, HelmRef, check_helm_release, release_history
from deploy_verify.checks.result import Verdict
from deploy_verify.checks.transports.kube import KubeReader
from testbed.helm import BINARIES, CHART, Helm, chart_copy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=BINARIES, ids=["helm-v4", "helm-v3"], scope="module")
def helm(request, testbed) -> Helm:
    return Helm.for_testbed(request.param, "dv-b")


@pytest.fixture
def namespace(helm: Helm, testbed_kube) -> Iterator[str]:
    name = f"helm-{secrets.token_hex(3)}"
    testbed_kube.kubectl("dv-b", "create", "namespace", name)
    yield name
    testbed_kube.kubectl("dv-b", "delete", "namespace", name, "--wait=false")


def reader() -> KubeReader:
    """A fresh reader per look: cached lists would hide what helm just changed."""
    return KubeReader.from_kubeconfig("dv-b", "kwok-dv-b", str(ROOT / ".testbed" / "kubeconfig.yaml"))


def check(namespace: str, app: str | None = "2.4.0", chart: str | None = "1.2.0", name: str = "catalog"):
    return check_helm_release(reader(), HelmRef(namespace, name), HelmExpectation(app, chart), Deadline.after(30))


def test_installed_release_passes_with_chart_and_app_version(helm, namespace):
    helm("install", "catalog", str(CHART), "-n", namespace)
    result = check(namespace)
    assert (result.verdict, result.message) == (
        Verdict.PASS,
        "revision 1 deployed: chart catalog-1.2.0, app version 2.4.0",
    )
    assert result.target == f"HelmRelease:{namespace}/catalog"


def test_upgrade_is_judged_on_the_latest_revision(helm, namespace, tmp_path):
    helm("install", "catalog", str(CHART), "-n", namespace)
    helm("upgrade", "catalog", str(chart_copy(tmp_path, "1.3.0", "2.5.0")), "-n", namespace)
    result = check(namespace, app="2.5.0", chart="1.3.0")
    assert (result.verdict, result.message) == (
        Verdict.PASS,
        "revision 2 deployed: chart catalog-1.3.0, app version 2.5.0",
    )
    stale = check(namespace, app="2.4.0", chart="1.2.0")
    assert (stale.verdict, stale.message) == (
        Verdict.FAIL,
        "revision 2 runs chart catalog-1.3.0, expected version 1.2.0; "
        "revision 2 runs app version 2.5.0, expected 2.4.0",
    )


def test_failed_upgrade_fails_with_the_release_description(helm, namespace):
    helm("install", "catalog", str(CHART), "-n", namespace)
    upgrade = helm("upgrade", "catalog", str(CHART), "-n", namespace, "--set", "service.type=Bogus", check=False)
    assert upgrade.returncode != 0
    result = check(namespace)
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(
        # helm v3 says 'cannot patch "catalog" with kind Service', v4 (server-side apply) 'server-side apply failed'
        r'revision 2 is failed: Upgrade "catalog" failed: .*Service "catalog" is invalid: '
        r'spec\.type: Unsupported value: "Bogus".*; fix the cause, then upgrade or roll back',
        result.message,
    ), result.message


def test_interrupted_upgrade_fails_as_pending(helm, namespace, tmp_path):
    """helm killed while it waits for pods that never get ready leaves the release pending-upgrade."""
    helm("install", "catalog", str(CHART), "-n", namespace)
    waiting = subprocess.Popen(
        helm.command("upgrade", "catalog", str(CHART), "-n", namespace, "--set", "fault=not-ready", "--wait"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            history = release_history(reader(), HelmRef(namespace, "catalog"), Deadline.after(10))
            if history and history[0].status == "pending-upgrade":
                break
            time.sleep(0.1)
    finally:
        waiting.kill()
        waiting.wait()
    result = check(namespace)
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "revision 2 is pending-upgrade: Preparing upgrade; an operation was interrupted or is still running; "
        "`helm history` shows it, `helm rollback` ends it",
    )


def test_rollback_after_a_failed_upgrade_passes_again(helm, namespace):
    helm("install", "catalog", str(CHART), "-n", namespace)
    helm("upgrade", "catalog", str(CHART), "-n", namespace, "--set", "service.type=Bogus", check=False)
    helm("rollback", "catalog", "1", "-n", namespace)
    result = check(namespace)
    assert (result.verdict, result.message) == (
        Verdict.PASS,
        "revision 3 deployed: chart catalog-1.2.0, app version 2.4.0",
    )
    history = release_history(reader(), HelmRef(namespace, "catalog"), Deadline.after(10))
    assert [(r.revision, r.status) for r in history] == [(3, "deployed"), (2, "failed"), (1, "superseded")]
    assert history[0].manifest_digest == history[2].manifest_digest  # the rollback restored revision 1's manifest


def test_missing_release_fails(helm, namespace):
    result = check(namespace, name="nothing-here")
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"no Helm release 'nothing-here' in namespace {namespace!r}",
    )


def test_no_expectation_is_an_error_that_says_how_to_give_one(namespace):
    result = check_helm_release(reader(), HelmRef(namespace, "catalog"), None, Deadline.after(10))
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        "no expected app or chart version for this release: pass --release FILE (version, chart) or "
        "--expect COMPONENT=VERSION",
    )


def test_unreachable_cluster_is_an_error(tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    down = KubeReader.from_kubeconfig("gone", "x", str(config))
    result = check_helm_release(down, HelmRef("shop", "catalog"), HelmExpectation("1"), Deadline.after(10))
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith("cluster gone: API server https://127.0.0.1:1 refused the connection")
