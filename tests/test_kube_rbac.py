"""The post-deploy suite runs as a ServiceAccount bound to deploy/rbac (get/list/watch only), and passes; without the
binding every Kubernetes check is an ERROR that names RBAC; the API server's audit log shows no mutating call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testbed.kube import kube_bin
from tests.audit import audit_events, audit_log

ROOT = Path(__file__).resolve().parent.parent
CLUSTERS = ("dv-a", "dv-b")
K8S_POSTDEPLOY = (
    "postdeploy and (rollout or pods or image or endpoints or nodes or helmrelease or helmresources or certificate)"
)
# Namespaces whose Secrets the suite reads (Helm history, cert-manager TLS Secrets), bound one by one.
SECRET_NAMESPACES = {"dv-a": "shop", "dv-b": "catalog"}
SA_USER = "system:serviceaccount:deploy-verify:{}"


def _token(testbed_kube, cluster: str, account: str) -> str:
    testbed_kube.kubectl(cluster, "apply", "-f", str(ROOT / "deploy" / "rbac"))
    binding = (ROOT / "deploy" / "rbac" / "per-namespace" / "secrets-rolebinding.yaml").read_text()
    subprocess.run(
        [*testbed_kube.kubectl_command(cluster), "apply", "-f", "-"],
        input=binding.replace("NAMESPACE", SECRET_NAMESPACES[cluster]),  # binds the deploy-verify account only
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    testbed_kube.kubectl(cluster, "-n", "deploy-verify", "create", "serviceaccount", account, check=False)
    done = testbed_kube.kubectl(cluster, "-n", "deploy-verify", "create", "token", account, "--duration=30m")
    return str(done.stdout).strip()


def _kubeconfig_for(testbed_kube, account: str, path: Path) -> dict[str, str]:
    """A kubeconfig with the testbed's clusters and a ServiceAccount token per cluster; returns the tokens."""
    admin = yaml.safe_load(testbed_kube.kubeconfig.read_text())
    tokens = {c: _token(testbed_kube, c, account) for c in CLUSTERS}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "kwok-dv-a",
        "clusters": admin["clusters"],
        "users": [{"name": f"sa-{c}", "user": {"token": tokens[c]}} for c in CLUSTERS],
        "contexts": [{"name": f"kwok-{c}", "context": {"cluster": f"kwok-{c}", "user": f"sa-{c}"}} for c in CLUSTERS],
    }
    path.write_text(yaml.safe_dump(config))
    return tokens


def _environment_as(kubeconfig: Path, env_dir: Path) -> None:
    env_dir.mkdir()
    text = (ROOT / "environments" / "local.yaml").read_text()
    text = text.replace(".testbed/kubeconfig.yaml", str(kubeconfig))
    # paths resolve from the environment folder's parent: the chart and its values stay the repository's
    text = text.replace("chart: testbed/", f"chart: {ROOT}/testbed/").replace(
        "[environments/", f"[{ROOT}/environments/"
    )
    (env_dir / "local.yaml").write_text(text)


def _suite(env_dir: Path, reports: Path, markers: str = K8S_POSTDEPLOY) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "features",
        "--env",
        "local",
        f"--env-dir={env_dir}",
        f"--reports-dir={reports}",
        "-m",
        markers,
        "--release=testbed/release-local.yaml",
        "-n",
        "2",
    ]
    variables = {**os.environ, "DV_HELM": str(kube_bin("helm"))}  # the pre-deploy policy renders a chart
    return subprocess.run(command, cwd=ROOT, env=variables, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def as_reader(testbed_kube, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rbac")
    tokens = _kubeconfig_for(testbed_kube, "deploy-verify", tmp / "kubeconfig.yaml")
    _environment_as(tmp / "kubeconfig.yaml", tmp / "environments")
    # The pre-deploy policy too: the cluster's version, discovery and OpenAPI documents (system:discovery lets every
    # authenticated user GET them), the PDBs and autoscalers, the Helm history: reads only.
    predeploy = _suite(tmp / "environments", tmp / "predeploy", "predeploy and policy")
    assert predeploy.returncode == 0, predeploy.stdout[-3000:]
    return _suite(tmp / "environments", tmp / "reports"), tmp / "reports", tokens


def test_post_deploy_suite_passes_with_get_list_watch_only(as_reader):
    result, reports, _ = as_reader
    assert result.returncode == 0, result.stdout[-3000:]
    document = json.loads((reports / "verdict.json").read_text())
    assert document["verdict"] == "green"
    assert len(document["tests"]) == 27  # 5 workloads x 4 checks + 2 clusters + 2 Helm releases (x2) + a Certificate


def test_token_never_reaches_reports_or_output(as_reader):
    result, reports, tokens = as_reader
    for token in tokens.values():
        assert token not in result.stdout + result.stderr
        for path in reports.rglob("*"):
            if path.is_file():
                assert token not in path.read_text(errors="replace"), path


def test_no_mutating_call_in_the_audit_log(as_reader):
    for cluster in CLUSTERS:
        log = audit_log(cluster)
        calls = audit_events(log)
        mine = [c for c in calls if c.get("user", {}).get("username") == SA_USER.format("deploy-verify")]
        assert mine, f"no request of the suite in {log}"
        assert {c["verb"] for c in mine} <= {"get", "list", "watch"}, {c["verb"] for c in mine}


def test_without_the_binding_every_check_is_an_error_naming_rbac(testbed_kube, tmp_path):
    _kubeconfig_for(testbed_kube, "deploy-verify-unbound", tmp_path / "kubeconfig.yaml")
    _environment_as(tmp_path / "kubeconfig.yaml", tmp_path / "environments")
    result = _suite(tmp_path / "environments", tmp_path / "reports")
    assert result.returncode == 1
    document = json.loads((tmp_path / "reports" / "verdict.json").read_text())
    assert {t["outcome"] for t in document["tests"]} == {"error"}
    message = document["tests"][0]["message"]
    assert "forbidden (403)" in message
    assert 'User "system:serviceaccount:deploy-verify:deploy-verify-unbound" cannot list resource' in message
    assert message.endswith("the suite needs get/list/watch (see deploy/rbac/)")
    shutil.rmtree(tmp_path / "reports")
