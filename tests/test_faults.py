"""Fault injection: each fault ends the gate red inside the time budget, with a message that names it, and with the
reports of the tests that did run intact (verdict.json rows, Allure results).

Kubernetes faults use a cluster of their own (dv-fault), so killing or freezing its API server never disturbs the
other tests; Azure faults use an ARM test server of their own. The slow-peer class (trickled bodies, headers and
handshakes, watches that send nothing, ARM calls that never complete, and a whole run against such peers) is in
tests/test_slow_peers.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from testbed.arm import ArmServer
from testbed.arm_state import SUBSCRIPTION, local_state
from tests.audit import audit_events, audit_log

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = ROOT / "testbed" / "kube" / "cluster.sh"
STATE = ROOT / ".testbed" / "state"
BUDGET = 40.0
WORKLOADS = """
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      containers: [{name: web, image: "registry.example.test/app/web:1.0.0"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: waiting, namespace: app}
spec:
  replicas: 1
  progressDeadlineSeconds: 86400
  selector: {matchLabels: {app: waiting}}
  template:
    metadata: {labels: {app: waiting, dv.test/fault: not-ready}}
    spec:
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      containers: [{name: waiting, image: "registry.example.test/app/waiting:1.0.0"}]
"""


def cluster(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DV_STATE_DIR": str(STATE)}
    return subprocess.run(
        ["bash", str(CLUSTER_SH), *args], capture_output=True, text=True, timeout=600, check=True, env=env
    )


def wait_for_a_watch(since: float, timeout: float = 60) -> None:
    """Until the suite has a watch open on dv-fault (b-waiting's rollout wait): a-web has been decided by then. Read
    from the audit log, so the fault lands mid-wait however slowly the suite started."""
    log = audit_log("dv-fault", STATE)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for event in audit_events(log, last=200):
            if _suite_watch_since(event, since):
                time.sleep(0.5)  # and let the other streams of the same wait open too
                return
        time.sleep(0.2)
    raise AssertionError(f"the suite opened no watch on dv-fault within {timeout:.0f}s")


def _suite_watch_since(event: dict, since: float) -> bool:
    if event.get("verb") != "watch" or not event.get("userAgent", "").startswith("OpenAPI-Generator/"):
        return False
    stamp = str(event.get("requestReceivedTimestamp", "")).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(stamp).timestamp() >= since


def apiserver_pid() -> int:
    return int((STATE / "kwok" / "clusters" / "dv-fault" / "pids" / "kube-apiserver.pid").read_text().strip())


@pytest.fixture(scope="module")
def fault_cluster(testbed):
    """dv-fault: one node, a healthy Deployment and one that never gets ready (so a rollout wait is open)."""
    kubeconfig = cluster("start", "dv-fault", "1").stdout.strip().splitlines()[-1]
    kubectl = [str(Path.home() / ".cache/deploy-verify/kube/v1.36.4/bin/kubectl"), "--kubeconfig", kubeconfig]
    subprocess.run([*kubectl, "apply", "-f", "-"], input=WORKLOADS, text=True, check=True, capture_output=True)
    subprocess.run([*kubectl, "-n", "app", "rollout", "status", "deployment/web", "--timeout=60s"], check=True)
    yield kubeconfig
    cluster("stop", "dv-fault")


def environment(folder: Path, name: str, document: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **document}))
    return folder


def kube_env(folder: Path, kubeconfig: str) -> Path:
    return environment(
        folder,
        "faulty",
        {
            "budget": f"{BUDGET:g}s",
            "defaults": {"kubernetes": {"rollout_timeout": "30s", "grace": "2s"}},
            "clusters": {"dv-fault": {"context": "kwok-dv-fault", "kubeconfig": kubeconfig}},
            "components": [
                {"name": "a-web", "kind": "deployment", "cluster": "dv-fault", "namespace": "app", "workload": "web"},
                {
                    "name": "b-waiting",
                    "kind": "deployment",
                    "cluster": "dv-fault",
                    "namespace": "app",
                    "workload": "waiting",
                },
                {"name": "c-web", "kind": "deployment", "cluster": "dv-fault", "namespace": "app", "workload": "web"},
            ],
        },
    )


def start(envs: Path, reports: Path, *args: str, env_name: str = "faulty", extra_env: dict | None = None):
    command = [sys.executable, "-m", "pytest", "features", "--env", env_name, f"--env-dir={envs}"]
    command += [f"--reports-dir={reports}", *args]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(extra_env or {})},
    )


def finish(process: subprocess.Popen, started: float) -> tuple[int, str, float]:
    output, _ = process.communicate(timeout=BUDGET + 60)
    return process.returncode, output, time.monotonic() - started


def verdict(reports: Path) -> dict:
    document: dict = json.loads((reports / "verdict.json").read_text())
    return document


def rows(reports: Path) -> dict[tuple[str, str], dict]:
    return {(t["component"], t["check"]): t for t in verdict(reports)["tests"]}


def allure_count(reports: Path) -> int:
    return len(list((reports / "allure-results").glob("*-result.json")))


def kube_run_under_fault(fault_cluster: str, tmp_path: Path, inject, recover) -> tuple[int, str, float]:
    """The suite over dv-fault (-m "rollout or pods", one process, in file order), with `inject()` called once
    b-waiting's rollout watch is open and `recover()` after the run, whatever happened."""
    envs = kube_env(tmp_path / "envs", fault_cluster)
    began, since = time.monotonic(), time.time()
    process = start(envs, tmp_path / "r", "-m", "rollout or pods", "-n", "0", "-p", "no:randomly")
    wait_for_a_watch(since)
    inject()
    try:
        return finish(process, began)
    finally:
        recover()


def assert_red_in_budget_and_intact(code: int, output: str, took: float, reports: Path, words: tuple[str, ...]):
    """Red, inside the budget, the test decided before the fault still passed, every error names the fault in one
    of `words`, and every test that ran has its Allure result."""
    assert code == 1, output[-3000:]
    assert took < BUDGET + 15, f"the gate took {took:.0f}s with a budget of {BUDGET:g}s"
    found = rows(reports)
    assert found[("a-web", "rollout_complete")]["outcome"] == "pass"  # ran before the fault: intact
    errors = [t for t in found.values() if t["outcome"] == "error"]
    assert errors, output[-3000:]
    for test in errors:
        assert any(w in test["message"] for w in words), test["message"]
    assert allure_count(reports) == len(found)


def test_api_server_that_stops_answering_mid_run(fault_cluster, tmp_path):
    code, output, took = kube_run_under_fault(
        fault_cluster,
        tmp_path,
        lambda: os.kill(apiserver_pid(), signal.SIGSTOP),
        lambda: os.kill(apiserver_pid(), signal.SIGCONT),
    )
    words = ("did not answer in time", "stopped answering", "not asked", "still converging")
    assert_red_in_budget_and_intact(code, output, took, tmp_path / "r", words)


def test_api_server_killed_mid_run(fault_cluster, tmp_path):
    def restart() -> None:
        cluster("stop", "dv-fault")
        cluster("start", "dv-fault", "1")

    code, output, took = kube_run_under_fault(
        fault_cluster, tmp_path, lambda: os.kill(apiserver_pid(), signal.SIGKILL), restart
    )
    words = ("refused the connection", "dropped the connection", "stopped answering")
    assert_red_in_budget_and_intact(code, output, took, tmp_path / "r", words)


def test_xdist_worker_that_dies(testbed, tmp_path):
    began = time.monotonic()
    process = start(
        ROOT / "environments",
        tmp_path / "r",
        "-m",
        "http",
        "--release=testbed/release-local.yaml",
        "-n",
        "2",
        "-p",
        "tests.faults_plugin",
        env_name="local",
        extra_env={"DV_FAULT_KILL_WORKER": "[local/checkout-web]"},
    )
    code, output, _ = finish(process, began)
    assert code == 1, output[-3000:]
    found = rows(tmp_path / "r")
    # Its setup had reported (so the row knows its check) before the worker died in the call.
    crashed = found[("checkout-web", "http_health")]
    assert crashed["outcome"] == "error"
    assert "crashed while running" in crashed["message"]
    assert "[local/checkout-web]" in crashed["message"]
    survivors = {k: v for k, v in found.items() if k[0] != "checkout-web"}
    assert survivors
    assert {t["outcome"] for t in survivors.values()} == {"pass"}  # the other reports are intact
    assert verdict(tmp_path / "r")["verdict"] == "red"
    assert allure_count(tmp_path / "r") >= len(survivors)


def test_arm_429_storm_dns_failure_and_silent_endpoints(testbed, pki, tmp_path):
    """ARM throttles everything with a Retry-After beyond the budget; a health host does not resolve; a cluster's
    server does not resolve; a TLS handshake and a /health that never complete."""
    chain, key, bundle = pki
    arm = ArmServer(0, chain, key, local_state(), os.environ["DV_ARM_TOKEN"])
    arm.start()
    arm.set_faults([{"prefix": "", "status": 429, "retry_after": 600}])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://no-such-host.invalid:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    envs = environment(
        tmp_path / "envs",
        "storm",
        {
            "budget": "30s",
            "defaults": {"http": {"timeout": "3s"}, "tls": {"timeout": "3s", "ca_bundle": str(testbed)}},
            "clusters": {"gone": {"context": "x", "kubeconfig": str(kubeconfig)}},
            "azure": {
                "arm_endpoint": arm.url,
                "ca_bundle": bundle,
                "credential": "token-env",
                "token_env": "DV_ARM_TOKEN",
                "subscriptions": {"demo": {"subscription_id": SUBSCRIPTION}},
            },
            "components": [
                {"name": "orders", "kind": "containerapp", "subscription": "demo", "resource_group": "rg-demo"},
                {
                    "name": "unresolvable",
                    "kind": "endpoint",
                    "health": [{"url": "https://no-such-host.invalid/health"}],
                },
                {"name": "never-answers", "kind": "endpoint", "health": [{"url": "https://localhost:18464/health"}]},
                {"name": "tls-never-completes", "kind": "endpoint", "tls": [{"host": "localhost", "port": 18465}]},
                {"name": "far-away", "kind": "deployment", "cluster": "gone", "namespace": "app"},
            ],
        },
    )
    began = time.monotonic()
    try:
        process = start(envs, tmp_path / "r", "-m", "postdeploy and not image", "-n", "2", env_name="storm")
        code, output, took = finish(process, began)
    finally:
        arm.stop()
    assert code == 1, output[-3000:]
    assert took < 30 + 15, f"the gate took {took:.0f}s with a budget of 30s"
    found = rows(tmp_path / "r")
    expected = {
        ("orders", "containerapp_healthy"): ("error", "throttled"),
        ("unresolvable", "http_health"): ("fail", "cannot resolve no-such-host.invalid (DNS"),
        ("never-answers", "http_health"): ("fail", "no answer within 3.0s"),
        ("tls-never-completes", "tls_certificate"): ("fail", "no TLS handshake with localhost:18465 within 3.0s"),
        ("far-away", "rollout_complete"): ("error", "API server https://no-such-host.invalid:6443 cannot be resolved"),
        ("cluster:gone", "nodes_healthy"): ("error", "cannot be resolved (DNS)"),
    }
    for key, (outcome, words) in expected.items():
        assert key in found, sorted(found)
        assert found[key]["outcome"] == outcome, found[key]
        assert words in found[key]["message"], found[key]["message"]
    assert allure_count(tmp_path / "r") == len(found)
