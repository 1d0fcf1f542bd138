"""`kind: resource` end to end on Argo Rollouts: the suite as a gate runs it, on the Rollout CRD the testbed installs
(statuses written as the Rollouts controller writes them), a made-up apiVersion and a missing object."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "dv-b"


def _rollout(name: str) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "registry.example.test/r/web:1.0"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }


@pytest.fixture(scope="module")
def rollouts(testbed_kube):
    namespace = f"res-{uuid.uuid4().hex[:8]}"
    kubectl = testbed_kube.kubectl_command(CLUSTER)

    def run(*args: str, stdin: str | None = None) -> None:
        done = subprocess.run([*kubectl, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr

    run("create", "namespace", namespace)
    items = [{**_rollout(n), "metadata": {"name": n, "namespace": namespace}} for n in ("good", "stuck", "paused")]
    run("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    # As the Argo Rollouts controller (v1.x) reports them: phase and message, observedGeneration as a string.
    statuses = {
        "good": {"phase": "Healthy", "observedGeneration": "1", "replicas": 2, "availableReplicas": 2},
        "stuck": {
            "phase": "Degraded",
            "message": 'ProgressDeadlineExceeded: ReplicaSet "stuck-7d9" has timed out progressing.',
            "observedGeneration": "1",
        },
        "paused": {
            "phase": "Paused",
            "message": "CanaryPauseStep",
            "observedGeneration": "1",
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-12-02T10:00:00Z"}],
        },
    }
    for name, status in statuses.items():
        run(
            "-n",
            namespace,
            "patch",
            "rollout",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )
    yield namespace
    subprocess.run([*kubectl, "delete", "namespace", namespace, "--wait=false"], capture_output=True, timeout=60)


def test_resources_are_judged_by_their_published_status(rollouts, tmp_path):
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    kubeconfig = ROOT / ".testbed" / "kubeconfig.yaml"
    (env_dir / "res.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: res
            budget: 1m
            defaults:
              kubernetes: {{rollout_timeout: 2s}}
            clusters:
              dv-b: {{context: kwok-dv-b, kubeconfig: {kubeconfig}}}
            components:
            """
        )
        + "".join(
            f"  - {{name: {name}, kind: resource, cluster: dv-b, namespace: {rollouts}, api_version: {api}, "
            f"resource_kind: Rollout, resource: {obj}}}\n"
            for name, api, obj in (
                ("good", "argoproj.io/v1alpha1", "good"),
                ("stuck", "argoproj.io/v1alpha1", "stuck"),
                ("paused", "argoproj.io/v1alpha1", "paused"),
                ("gone", "argoproj.io/v1alpha1", "nowhere"),
                ("unserved", "rollouts.example.test/v9", "good"),
            )
        )
    )
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", "features", "--env", "res", f"--env-dir={env_dir}"]
    command += [f"--reports-dir={reports}", "-m", "resource", "-p", "no:randomly"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stdout[-3000:]
    tests = {
        t["component"]: (t["outcome"], t["message"])
        for t in json.loads((reports / "verdict.json").read_text())["tests"]
    }
    assert tests["good"][0] == "pass", tests["good"]
    assert "phase Healthy" in tests["good"][1]
    outcome, message = tests["stuck"]
    assert outcome == "fail", message
    assert "phase Degraded (ProgressDeadlineExceeded" in message
    outcome, message = tests["paused"]
    assert outcome in {"fail", "error"}, message
    assert "paused (CanaryPauseStep): it waits for a promotion" in message
    outcome, message = tests["gone"]
    assert outcome == "fail", message
    assert "nowhere" in message
    outcome, message = tests["unserved"]
    assert outcome == "error", message
    assert "does not serve rollouts.example.test/v9" in message
    assert "GATE RED" in done.stdout
