"""The real suite, run as users run it (`pytest features --env X -m postdeploy -n 4`), against the testbed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What local-broken must say about each component: (check, outcome, words the message must contain).
BROKEN = {
    ("expired-cert", "tls_certificate"): ("fail", "chain does not verify: certificate has expired"),
    ("not-yet-valid", "tls_certificate"): ("fail", "chain does not verify: certificate is not yet valid"),
    ("wrong-host", "tls_certificate"): ("fail", "Hostname mismatch, certificate is not valid for 'localhost'"),
    ("untrusted-root", "tls_certificate"): ("fail", "O=rogue CA nobody trusts of the last certificate sent"),
    ("incomplete-chain", "tls_certificate"): ("fail", "unable to get local issuer certificate"),
    ("self-signed", "tls_certificate"): ("fail", "chain does not verify: self-signed certificate"),
    ("expiring-soon", "tls_certificate"): ("fail", "inside the 14-day minimum; renew it before promoting"),
    ("short-intermediate", "tls_certificate"): ("fail", "chain certificate CN=testbed short-lived intermediate"),
    ("tls-never-completes", "tls_certificate"): ("fail", "no TLS handshake with localhost:18465 within 3.0s"),
    ("unavailable", "http_health"): ("fail", "HTTP 503 Service Unavailable"),
    ("unhealthy-body", "http_health"): ("fail", "body rule failed: status is 'DOWN', expected 'UP'"),
    ("slow", "http_health"): ("fail", "over the 1000 ms latency budget"),
    ("never-answers", "http_health"): ("fail", "no answer within 3.0s"),
    ("nothing-listens", "http_health"): ("fail", "cannot connect: Connection refused"),
    ("health-expired-cert", "http_health"): ("fail", "TLS handshake failed: certificate verify failed"),
    ("wrong-version", "http_health"): ("fail", "reports version '1.4.2' at version, expected '2.0.0'"),
    ("checkout", "rollout_complete"): ("fail", "rollout stuck: Pod checkout-"),
    ("checkout", "pods_healthy"): ("fail", "container checkout CrashLoopBackOff, 5 restarts, last exit code 1"),
    ("checkout", "image_identity"): ("fail", "of an older revision remains"),
    ("search", "rollout_complete"): ("fail", "container search ImagePullBackOff"),
    ("recommendations", "rollout_complete"): ("error", "still converging when the rollout deadline of 10s ran out"),
    ("recommendations", "service_endpoints"): ("fail", "Service broken/recommendations has no ready endpoint"),
    ("reports", "rollout_complete"): ("fail", "FailedScheduling: 0/3 nodes are available"),
    ("mailer", "rollout_complete"): ("fail", "rollout stuck: ProgressDeadlineExceeded"),
    ("thumbnails", "pods_healthy"): ("fail", "OOMKilled repeatedly (7 restarts)"),
    ("storefront-stale", "image_identity"): (
        "fail",
        "spec runs registry.example.test/shop/storefront:2.2.9, expected tag 2.3.0",
    ),
    ("renewed-not-served", "certmanager_certificate"): (
        "fail",
        "tls://localhost:18442 serves",
    ),
    ("issuer-not-ready", "certmanager_certificate"): (
        "fail",
        "cause: Issuer broken/letsencrypt-broken is not Ready: ErrRegisterACMEAccount",
    ),
    ("billing", "helm_release"): ("fail", 'revision 2 is failed: Upgrade "billing" failed: cannot patch "billing"'),
    # What revision 2 rendered was never applied: the live Service is still revision 1's.
    ("billing", "helm_resources"): ("fail", "(revision 2 is failed: not applied)"),
    ("orphan", "service_endpoints"): ("fail", "Service orphan not found in broken"),
    ("log-shipper", "rollout_complete"): ("fail", "container log-shipper ImagePullBackOff"),
    ("queue", "rollout_complete"): ("fail", "Pod queue-0: container queue CrashLoopBackOff"),
    ("misplaced", "rollout_complete"): ("error", "namespace 'shopp' not found"),
    ("cluster:dv-a", "nodes_healthy"): ("fail", "Node node-000002 is waiting for a reboot (dv.test/reboot-required)"),
    ("orders-crashing", "containerapp_healthy"): ("fail", "provisioningState Failed: ContainerCrashing"),
    ("orders-old-traffic", "containerapp_healthy"): (
        "fail",
        "traffic 100% orders-old-traffic--v6, expected 100% orders-old-traffic--v7",
    ),
    ("orders-stale-image", "containerapp_healthy"): ("fail", "runs registry.example.test/orders/api:3.3.9"),
    ("orders-failed", "containerapp_healthy"): ("fail", "app provisioningState Failed"),
    ("orders-unhealthy", "containerapp_healthy"): ("fail", "is Unhealthy, runningState Degraded, 0 replicas"),
    ("events-failed-deploy", "functionapp_deployed"): ("fail", "failed (Kudu status 3)"),
    ("events-stopped", "functionapp_deployed"): ("fail", "site state Stopped"),
    ("events-no-functions", "functionapp_deployed"): ("fail", "succeeded but 0 functions are loaded"),
    ("events-old-version", "functionapp_deployed"): ("fail", "is not version 2.7.1"),
    ("apim-broken", "apim_api_current"): ("fail", "orders-not-current: current revision is 2, expected 3"),
    ("apim-updating", "apim_api_current"): ("fail", "provisioningState Updating (targetProvisioningState Succeeded)"),
    ("apim-failed", "apim_api_current"): ("fail", "provisioningState Failed"),
    ("degraded-api", "service_metrics"): ("fail", "error ratio: 0.2"),  # a quarter of its requests fail
}
# Every broken API of apim-broken is named in its one message (one line each).
BROKEN_APIS = (
    "orders-offline: current revision 3 is offline (isOnline false)",
    "orders-stale-release: the newest release v2 is of revision 2, older than the current revision 3",
    "orders-unnoted: the newest release v3 does not name the released version 3.4.0",
    "orders-wrong-backend: serviceUrl https://orders-legacy.internal.example.test/api points at",
    "orders-no-operations: revision 1 has no operations",
)
# ...and what it must not cry wolf about: healthy parts of broken components pass.
BROKEN_BUT_FINE = {
    ("orphan", "rollout_complete"),
    ("thumbnails", "rollout_complete"),
    ("storefront-stale", "pods_healthy"),
    ("checkout", "service_endpoints"),
    ("orders-provisioning", "containerapp_healthy"),  # Provisioning for three looks, then fine
}
KUBE = ("storefront-a", "storefront-b", "cart", "ledger", "node-agent")
KUBE_CHECKS = ("rollout_complete", "pods_healthy", "image_identity", "service_endpoints")


def run_suite(reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    workers = () if "-n" in args else ("-n", "4")
    command = [sys.executable, "-m", "pytest", "features", *workers, "--reports-dir", str(reports), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def allure_results(reports: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((reports / "allure-results").glob("*-result.json"))]


@pytest.fixture(scope="module")
def green(testbed, tmp_path_factory):
    reports = tmp_path_factory.mktemp("green")
    return run_suite(reports, "--env", "local", "-m", "postdeploy", "--release", "testbed/release-local.yaml"), reports


@pytest.fixture(scope="module")
def red(testbed, tmp_path_factory):
    reports = tmp_path_factory.mktemp("red")
    args = ("--env", "local-broken", "-m", "postdeploy", "--release", "testbed/release-local-broken.yaml")
    return run_suite(reports, *args), reports


def test_local_is_green_with_a_verdict_per_component(green):
    result, reports = green
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GATE GREEN: 40 passed in environment 'local'" in result.stdout
    document = json.loads((reports / "verdict.json").read_text())
    assert (document["environment"], document["verdict"], document["markers"]) == ("local", "green", "postdeploy")
    assert document["release"]["name"] == "demo-2026.11"
    endpoints = {
        (name, check)
        for name in ("payments-api", "checkout-web", "inventory-api")
        for check in ("http_health", "tls_certificate")
    }
    workloads = {(name, check) for name in KUBE for check in KUBE_CHECKS}
    clusters = {("cluster:dv-a", "nodes_healthy"), ("cluster:dv-b", "nodes_healthy")}
    azure = {
        ("orders", "containerapp_healthy"),
        ("pricing", "containerapp_healthy"),
        ("orders-events", "functionapp_deployed"),
        ("apim-demo", "apim_api_current"),
    }
    helm_and_certificates = {
        ("catalog", "helm_release"),
        ("catalog", "helm_resources"),
        ("reviews", "helm_release"),
        ("reviews", "helm_resources"),
        ("payments-api", "certmanager_certificate"),
    }
    metrics = {(name, "service_metrics") for name in ("payments-api", "checkout-web", "inventory-api")}
    tests = {(t["component"], t["check"]) for t in document["tests"]}
    assert tests == endpoints | workloads | clusters | azure | helm_and_certificates | metrics
    assert {t["outcome"] for t in document["tests"]} == {"pass"}
    assert (reports / "junit.xml").read_text().count("<testcase ") == 40


def test_local_broken_is_red_and_says_why_for_each_component(red):
    result, reports = red
    assert result.returncode == 1
    document = json.loads((reports / "verdict.json").read_text())
    assert document["verdict"] == "red"
    found = {(t["component"], t["check"]): (t["outcome"], t["message"]) for t in document["tests"]}
    for key, (outcome, words) in BROKEN.items():
        assert found[key][0] == outcome, (key, found[key])
        assert words in found[key][1], (key, found[key][1])
    for key in BROKEN_BUT_FINE:
        assert found[key][0] == "pass", (key, found[key])
    for words in BROKEN_APIS:
        assert words in found["apim-broken", "apim_api_current"][1], words
    assert "GATE RED: " in result.stdout


def test_allure_results_hold_gherkin_steps_titles_and_evidence(green):
    _, reports = green
    results = allure_results(reports)
    assert len(results) == 40
    health = next(
        r for r in results if r["name"] == "Health endpoints answer healthy after the deploy [local/payments-api]"
    )
    assert [s["name"] for s in health["steps"]] == [
        "When the component's health endpoints are probed once",
        "Then every health endpoint answers 2xx within its latency budget with a healthy body",
    ]
    attachment = health["steps"][0]["attachments"][0]
    assert attachment["name"] == "HTTP response: https://localhost:18441/health"
    evidence = json.loads((reports / "allure-results" / attachment["source"]).read_text())
    assert evidence["status"] == "200 OK"
    labels = {(label["name"], label["value"]) for label in health["labels"]}
    assert {("parentSuite", "local"), ("component", "payments-api"), ("subSuite", "payments-api")} <= labels
    tls = next(
        r for r in results if r["name"].startswith("Hosts serve valid certificates") and "checkout-web" in r["name"]
    )
    chain = json.loads((reports / "allure-results" / tls["steps"][0]["attachments"][0]["source"]).read_text())
    assert chain["chain"][0]["subject"].split(",")[0] == "CN=localhost"


def test_step_parameters_carry_no_objects(green):
    """Only plain values (a cluster's name, a duration from the Gherkin) reach the report, never a client's repr."""
    for result in allure_results(green[1]):
        for step in result["steps"]:
            for parameter in step.get("parameters", []):
                assert parameter["name"] in {"cluster", "duration"}, parameter
                assert re.fullmatch(r"'[\w .-]*'", parameter["value"]), parameter


def test_controller_writes_environment_executor_and_categories_once(green):
    _, reports = green
    results = reports / "allure-results"
    properties = (results / "environment.properties").read_text()
    assert "environment=local\n" in properties
    assert "release=demo-2026.11\n" in properties
    assert json.loads((results / "executor.json").read_text())["type"] in {"local", "github"}
    names = [c["name"] for c in json.loads((results / "categories.json").read_text())]
    assert names[-1] == "Could not decide"
    assert {"Wrong version", "Certificate", "Unhealthy endpoint", "Infrastructure unreachable"} <= set(names)


def test_failed_allure_result_carries_the_check_message(red):
    _, reports = red
    wrong = next(r for r in allure_results(reports) if r["name"].endswith("[local-broken/wrong-version]"))
    assert wrong["status"] == "failed"
    assert "reports version '1.4.2' at version, expected '2.0.0'" in wrong["statusDetails"]["message"]
    assert wrong["steps"][1]["attachments"][0]["name"] == "environment entry wrong-version"


def test_predeploy_certificate_gate_blocks_a_certificate_inside_the_window(testbed, tmp_path):
    result = run_suite(tmp_path, "--env", "local-broken", "-m", "predeploy", "-k", "expiring-soon")
    assert result.returncode == 1
    message = json.loads((tmp_path / "verdict.json").read_text())["tests"][0]["message"]
    assert "inside the 30-day minimum; renew it before promoting" in message


def test_predeploy_is_green_on_local(testbed, tmp_path):
    result = run_suite(tmp_path, "--env", "local", "-m", "predeploy")
    assert result.returncode == 0, result.stdout
    # 3 certificate windows, 2 clusters' nodes, the baseline of 5 workloads, 2 Helm releases, 2 Container Apps, and
    # the manifest policy of the reviews chart
    assert "GATE GREEN: 15 passed in environment 'local'" in result.stdout
    assert f"baseline of 9 components written to {tmp_path / 'baseline-local.json'}" in result.stdout


def _rows(reports: Path) -> list[tuple[str, str, str, str]]:
    """Verdict rows without timings (latencies in messages differ between runs, and so do a metric rule's window
    and numbers)."""
    tests = json.loads((reports / "verdict.json").read_text())["tests"]
    return [(t["id"], t["check"], t["outcome"], _timeless(t["check"], t["message"])) for t in tests]


def _timeless(check: str, message: str) -> str:
    if check == "service_metrics":
        return re.sub(r"\d[\d.e+:TZ-]*", "N", message)
    return re.sub(r"\d+ (ms|looks)", "N", message)


def test_eight_workers_decide_exactly_like_one(testbed, tmp_path, red):
    _, parallel4 = red
    serial, parallel8 = tmp_path / "serial", tmp_path / "parallel8"
    args = ("--env", "local-broken", "-m", "postdeploy", "--release", "testbed/release-local-broken.yaml")
    run_suite(serial, *args, "-n", "0")
    run_suite(parallel8, *args, "-n", "8")
    assert _rows(serial) == _rows(parallel8) == _rows(parallel4)


def test_default_invocation_from_the_repository_root_arms_the_gate(testbed, tmp_path):
    # `--reports-dir=DIR` with `=`: a separate absolute path would be taken for a test path by pytest's rootdir
    # search, which runs before this project's options are known (the same trap as allure's --alluredir).
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--env",
        "local",
        "-m",
        "smoke",
        f"--reports-dir={tmp_path}",
        "--release=testbed/release-local.yaml",
        "--expect",
        "payments-api=1.4.2",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout
    assert "GATE GREEN: 13 passed in environment 'local'" in result.stdout  # @smoke: health, rollouts, Helm, Azure


def test_azure_token_appears_nowhere_in_reports_or_output(testbed, tmp_path, arm_token):
    """The suite runs with a recognisable token and DEBUG logging; not a character of it may be written down."""
    result = run_suite(
        tmp_path,
        "--env",
        "local",
        "-m",
        "(containerapp or functionapp) and not (restored or drill)",
        "--log-level=DEBUG",
        "--release",
        "testbed/release-local.yaml",
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert arm_token not in result.stdout + result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-result.json") for p in written)
    for path in written:
        assert arm_token not in path.read_text(errors="replace"), path
