"""The report people review, opened the way they open it: the real suite run on the broken testbed, rendered by
scripts/render-report (a directory served over HTTP, and the single file opened from file://) and looked at in
headless Chromium, driven by Playwright. A failed scenario must show its Gherkin steps and its evidence, and the
Categories tab the failure classes of suite/allure_meta.py. Screenshots land in reports/ for a person to look at.

Chromium is Debian's package at /usr/bin/chromium (scripts/install-browser); Playwright only drives it and never
downloads a browser of its own. A missing browser fails these tests, it does not skip them.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from suite.allure_meta import CATEGORIES
from tests.test_end_to_end import run_suite

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# The machines reach no network but the package registries: without these flags Chromium's own background
# connections (component updates, sync, QUIC) are refused and clutter the run. --no-sandbox: Chromium refuses to start
# its sandbox as root, which the machines and CI run as. Playwright adds --headless itself (headless=True).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "reports"

# A fast slice of the broken environment (about 15 s) that still spans five failure classes, FAIL and ERROR: the
# health checks, the Helm release, and the rollouts of a crash-looping, a never-ready and a misplaced Deployment.
SELECTION = "http or helmrelease or rollout"
KEYWORDS = "not (search or reports or mailer or shipper or queue)"  # the other stuck rollouts: 2 s each, nothing new
EXPECTED_CATEGORIES = {
    "Wrong version",  # wrong-version reports 1.4.2
    "Certificate",  # health-expired-cert: the TLS handshake fails
    "Rollout stuck",  # checkout (failed: CrashLoopBackOff), recommendations (broken: still converging at the deadline)
    "Unhealthy endpoint",  # unavailable, unhealthy-body, slow, never-answers, nothing-listens
    "Provisioning",  # billing: Helm revision 2 is failed
    "Could not decide",  # misplaced: its namespace does not exist
}
# The failed scenario a reviewer opens: the unavailable component's health check.
SCENARIO = "Health endpoints answer healthy after the deploy [local-broken/unavailable]"
STEPS = [
    "When the component's health endpoints are probed once",
    "Then every health endpoint answers 2xx within its latency budget with a healthy body",
]
EVIDENCE = "HTTP response: https://localhost:18461/health"


# --- which category a message lands in ---------------------------------------------------------------------------

# (Allure status, statusDetails.message, category). The messages are the checks' own, as the real suite writes them
# into its Allure results (exception type, target, message); the broken testbed's come from a run against it.
FAILED, BROKEN = "failed", "broken"
FAIL, ERROR = "suite.verdicts.CheckFailed: ", "suite.verdicts.Undecided: "
MESSAGES = [
    # wrong version
    (
        FAILED,
        FAIL + "https://localhost:18441/health: HTTP 200 OK in 2 ms but reports version '1.4.2' at version, "
        "expected '2.0.0'",
        "Wrong version",
    ),
    (
        FAILED,
        FAIL + "Deployment:shop/storefront-stale: spec runs registry.example.test/shop/storefront:2.2.9, expected "
        "tag 2.3.0; Pod storefront-stale-6b7c9-x2x4q runs registry.example.test/shop/storefront:2.2.9, expected tag "
        "2.3.0",
        "Wrong version",
    ),
    (
        FAILED,
        FAIL + "Deployment:broken/checkout: Pod checkout-5d8f-abcde of an older revision remains "
        "(registry.example.test/shop/checkout:4.0.0)",
        "Wrong version",
    ),
    (
        FAILED,
        FAIL + "HelmRelease:shop/catalog: revision 3 runs chart catalog-1.1.0, expected version 1.2.0; revision 3 "
        "runs app version 2.3.0, expected 2.4.0",
        "Wrong version",
    ),
    (
        FAILED,
        FAIL + "ContainerApp:rg-orders/orders-old-traffic: traffic 100% orders-old-traffic--v6, expected 100% "
        "orders-old-traffic--v7",
        "Wrong version",
    ),
    (
        FAILED,
        FAIL + "ContainerApp:rg-orders/orders-stale-image: app template runs registry.example.test/orders/api:3.3.9, "
        "expected tag 3.4.0",
        "Wrong version",
    ),
    (
        FAILED,
        FAIL + "FunctionApp:rg-orders/events-old-version: latest deployment 2.6.0-build17 is not version 2.7.1: "
        "Deployment successful",
        "Wrong version",
    ),
    (
        FAILED,
        FAIL + "Deployment:shop/cart: not the baseline of 2026-11-21T10:00:00+00:00: pod template: baseline 5d8f "
        "(revision 3), now 7c9a (revision 4); images: baseline cart=cart:1.0, now cart=cart:1.1",
        "Wrong version",
    ),
    # certificate
    (
        FAILED,
        FAIL + "tls://localhost:18451: chain does not verify: certificate has expired (CN=localhost [localhost] "
        "expired 3 days ago (2026-11-19)); renew or re-issue the certificate, then check what the endpoint serves",
        "Certificate",
    ),
    (
        FAILED,
        FAIL + "tls://localhost:18457: chain certificate CN=testbed short-lived intermediate expires in 3.0 days "
        "(2026-11-25), inside the 14-day minimum; renew it before promoting",
        "Certificate",
    ),
    (
        FAILED,
        FAIL + "tls://localhost:18452: certificate is not valid before 2026-12-01 00:00 UTC (CN=localhost)",
        "Certificate",
    ),
    (
        FAILED,
        FAIL + "https://localhost:18451/health: TLS handshake failed: certificate verify failed: certificate has "
        "expired (_ssl.c:1006); run the TLS check for details",
        "Certificate",
    ),
    (
        FAILED,
        FAIL + "Certificate:broken/stuck-tls: not Ready: DoesNotExist: Issuing certificate as Secret does not exist; "
        "cause: Issuer broken/letsencrypt-broken is not Ready: ErrRegisterACMEAccount: Failed to register ACME "
        "account: 403 urn:ietf:params:acme:error:unauthorized",
        "Certificate",
    ),
    (
        FAILED,
        FAIL + "Certificate:broken/checkout-tls: tls://localhost:18442 serves f6d37c93a949116e (CN=localhost, "
        "notAfter 2027-02-20), but Secret broken/checkout-tls holds e0d013c0ee00eb15 (notAfter 2027-02-20): the "
        "endpoint serves another certificate than its Secret: check which Secret its ingress or server uses",
        "Certificate",
    ),
    # rollout stuck
    (
        FAILED,
        FAIL + "Deployment:broken/checkout: rollout stuck: Pod checkout-7f9c-k2l4m: container checkout "
        "CrashLoopBackOff, 5 restarts, last exit code 1 (1/2 updated, 2 available)",
        "Rollout stuck",
    ),
    (
        FAILED,
        FAIL + 'Deployment:broken/mailer: rollout stuck: ProgressDeadlineExceeded: ReplicaSet "mailer-8c568fcff" has '
        "timed out progressing. (1/1 updated, 0/1 available, 1 unavailable) (3 looks)",
        "Rollout stuck",
    ),
    (
        FAILED,
        FAIL + "Deployment:broken/thumbnails: 1/2 pods unhealthy: Pod thumbnails-5c-abc: container thumbnails "
        "OOMKilled repeatedly (7 restarts)",
        "Rollout stuck",
    ),
    (
        BROKEN,
        ERROR + "Deployment:broken/recommendations: still converging when the rollout deadline of 10s ran out: "
        "rollout incomplete: 2/2 updated, 0/2 available, 2 unavailable; Pod recommendations-7b9c4d99c8-d6xs6: "
        "container recommendations not ready (running)",
        "Rollout stuck",
    ),
    # unhealthy endpoint
    (
        FAILED,
        FAIL + "https://localhost:18461/health: HTTP 503 Service Unavailable in 2 ms, expected 2xx; body: "
        '\'{"status": "DOWN"}\'',
        "Unhealthy endpoint",
    ),
    (
        FAILED,
        FAIL + "https://localhost:18462/health: HTTP 200 OK in 2 ms but body rule failed: status is 'DOWN', "
        "expected 'UP'",
        "Unhealthy endpoint",
    ),
    (
        FAILED,
        FAIL + "https://localhost:18463/health: HTTP 200 OK in 1503 ms, over the 1000 ms latency budget",
        "Unhealthy endpoint",
    ),
    (
        FAILED,
        FAIL + "https://localhost:18464/health: no answer within 3.0s; check the service's logs and load",
        "Unhealthy endpoint",
    ),
    (
        FAILED,
        FAIL + "https://localhost:18469/health: cannot connect: Connection refused; is the service running and routed?",
        "Unhealthy endpoint",
    ),
    (
        FAILED,
        FAIL + "tls://localhost:18465: no TLS handshake with localhost:18465 within 3.0s",
        "Unhealthy endpoint",
    ),
    (
        FAILED,
        FAIL + "Deployment:broken/recommendations: Service broken/recommendations has no ready endpoint; check the "
        "pods' readiness and the Service's selector and ports",
        "Unhealthy endpoint",
    ),
    # provisioning
    (
        FAILED,
        FAIL + 'HelmRelease:broken/billing: revision 2 is failed: Upgrade "billing" failed: cannot patch "billing" '
        'with kind Service: Service "billing" is invalid; fix the cause, then upgrade or roll back',
        "Provisioning",
    ),
    (
        FAILED,
        FAIL + "ContainerApp:rg-broken/orders-crashing: revision orders-crashing--v8 provisioningState Failed: "
        "ContainerCrashing: Container 'api' was terminated with exit code '1' and reason 'ProcessExited'.",
        "Provisioning",
    ),
    (
        FAILED,
        FAIL + "ContainerApp:rg-broken/orders-failed: app provisioningState Failed",
        "Provisioning",
    ),
    (
        FAILED,
        FAIL + "ContainerApp:rg-orders/orders-unhealthy: revision orders-unhealthy--v3 is Unhealthy, runningState "
        "Degraded, 0 replicas (minReplicas 1)",
        "Provisioning",
    ),
    (
        FAILED,
        FAIL + "FunctionApp:rg-orders/events-failed-deploy: latest deployment 2.7.1-build3 failed (Kudu status 3): "
        "npm ERR!",
        "Provisioning",
    ),
    (
        FAILED,
        FAIL + "FunctionApp:rg-orders/events-stopped: site state Stopped; start it, or check why it stopped "
        "(activity log)",
        "Provisioning",
    ),
    (
        FAILED,
        FAIL + "FunctionApp:rg-orders/events-no-functions: deployment 2.7.1-build9 succeeded but 0 functions are "
        "loaded; check the host's logs, the app settings (FUNCTIONS_WORKER_RUNTIME) and the package contents",
        "Provisioning",
    ),
    (
        FAILED,
        FAIL + "Deployment:broken/orphan: Service orphan not found in broken; was it deployed, or renamed?",
        "Provisioning",
    ),
    (FAILED, FAIL + "Deployment:shop/gone: Deployment:shop/gone not found", "Provisioning"),
    (
        FAILED,
        FAIL + "Deployment:broken/mailer: 1/1 pods unhealthy: Pod mailer-8c568fcff-4mqlg: container mailer not ready "
        "(running)",
        "Rollout stuck",
    ),
    (
        BROKEN,
        ERROR + "ContainerApp:rg-orders/orders-slow: still converging when the provisioning deadline of 15s ran out: "
        "app provisioningState InProgress (15 looks)",
        "Provisioning",
    ),
    # infrastructure unreachable
    (
        BROKEN,
        ERROR + "Deployment:shop/cart: cluster dv-a: API server https://127.0.0.1:18470 refused the connection; "
        "check that the cluster is up and that context 'kwok-dv-a' of .testbed/kubeconfig.yaml points at it",
        "Infrastructure unreachable",
    ),
    (
        BROKEN,
        ERROR + "HelmRelease:broken/billing: cluster dv-a: cannot load kubeconfig /work/main/.testbed/kubeconfig.yaml: "
        "Invalid kube-config file. No configuration found.",
        "Infrastructure unreachable",
    ),
    (
        BROKEN,
        ERROR + "Deployment:shop/cart: cluster dv-a: credentials of context 'kwok-dv-a' were refused (401): "
        "Unauthorized",
        "Infrastructure unreachable",
    ),
    (
        BROKEN,
        ERROR + "HelmRelease:shop/catalog: cluster dv-a: forbidden (403): secrets is forbidden; the suite needs "
        "get/list/watch (see deploy/rbac/)",
        "Infrastructure unreachable",
    ),
    (
        BROKEN,
        ERROR + "ContainerApp:rg-orders/orders: ContainerApp:rg-orders/orders: ARM did not answer in time or is "
        "unreachable: Connection refused",
        "Infrastructure unreachable",
    ),
    (
        BROKEN,
        ERROR + "ContainerApp:rg-orders/orders: ContainerApp:rg-orders/orders: credentials refused (401): "
        "InvalidAuthenticationToken: bad token; check the identity's role assignment (Reader on the resource group)",
        "Infrastructure unreachable",
    ),
    (
        BROKEN,
        ERROR + "ContainerApp:rg-orders/orders: ContainerApp:rg-orders/orders: throttled by ARM (429, Retry-After "
        "30s) with 4s of the time budget left; run fewer checks per subscription at once or raise the budget",
        "Infrastructure unreachable",
    ),
    (
        BROKEN,
        ERROR + "https://localhost:18441/health: not probed: time budget of environment 'local' of 120s is spent; "
        "raise the environment's budget or split the run",
        "Infrastructure unreachable",
    ),
    (
        FAILED,
        FAIL + "cluster:dv-a: Node node-000002 is waiting for a reboot (dv.test/reboot-required)",
        "Infrastructure unreachable",
    ),
    # an ERROR first files the result under the ERROR, whatever FAIL follows it
    (
        BROKEN,
        ERROR + "https://localhost:18441/health: not probed: time budget of environment 'local' of 120s is spent; "
        "raise the environment's budget or split the run\nhttps://localhost:18461/health: HTTP 503 Service "
        "Unavailable in 2 ms, expected 2xx; body: ''",
        "Infrastructure unreachable",
    ),
    # could not decide
    (
        BROKEN,
        ERROR + "Deployment:shopp/misplaced: cluster dv-a: namespace 'shopp' not found; check the environment file's "
        "namespace and the kubeconfig context",
        "Could not decide",
    ),
    (
        BROKEN,
        ERROR + "https://localhost:18441/health: HTTP 200 OK in 2 ms; no expected version to compare version with: "
        "pass --release FILE or --expect COMPONENT=VERSION",
        "Could not decide",
    ),
]


def category_of(status: str, message: str) -> str | None:
    """Allure 2's rule: the first category whose statuses hold the result's and whose messageRegex matches the whole
    message (Java's String.matches, Python's fullmatch); None where Allure falls back to its own defect classes."""
    for category in CATEGORIES:
        pattern = category.get("messageRegex")
        if status in category["matchedStatuses"] and (pattern is None or re.fullmatch(str(pattern), message)):
            return str(category["name"])
    return None


def test_categories_are_the_six_failure_classes_and_the_catch_all():
    names = [str(c["name"]) for c in CATEGORIES]
    assert names[:-1] == [
        "Wrong version",
        "Certificate",
        "Rollout stuck",
        "Unhealthy endpoint",
        "Provisioning",
        "Infrastructure unreachable",
    ]
    assert CATEGORIES[-1] == {"name": "Could not decide", "matchedStatuses": ["broken"]}


@pytest.mark.parametrize(("status", "message", "category"), MESSAGES, ids=[m[2] for m in MESSAGES])
def test_each_failure_lands_in_its_category(status, message, category):
    assert category_of(status, message) == category


def test_every_category_is_reachable_with_every_status_it_claims():
    found = {(status, category_of(status, message)) for status, message, _ in MESSAGES}
    for category in CATEGORIES:
        for status in category["matchedStatuses"]:
            assert (status, category["name"]) in found, (status, category["name"])


# --- the rendered report in a browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_run(browser, testbed, tmp_path_factory) -> Path:
    """The real suite on a slice of local-broken; returns its reports directory. (It asks for the browser first so
    that a missing Chromium fails at once, not after the run.)"""
    reports: Path = tmp_path_factory.mktemp("review")
    release = "--release=testbed/release-local-broken.yaml"
    result = run_suite(reports, "--env", "local-broken", "-m", SELECTION, "-k", KEYWORDS, release, "-n", "2")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "GATE RED" in result.stdout
    return reports


def render(results: Path, out: Path, *options: str) -> Path:
    history = out.parent / "history"
    command = [str(ROOT / "scripts" / "render-report"), "--results", str(results), "--out", str(out)]
    done = subprocess.run(
        [*command, "--history", str(history), *options],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    index = Path(done.stdout.strip())
    assert index == out / "index.html", done.stdout
    return index


@pytest.fixture(scope="module")
def report_dir(broken_run: Path) -> Path:
    return render(broken_run / "allure-results", broken_run / "directory" / "report").parent


@pytest.fixture(scope="module")
def single_file(broken_run) -> Path:
    return render(broken_run / "allure-results", broken_run / "single" / "report", "--single-file")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(report_dir) -> Iterator[str]:
    """The directory report over http://127.0.0.1:<ephemeral port> (it fetches its data, so file:// cannot work)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(report_dir))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/install-browser (installs Debian's chromium package)", pytrace=False
        )
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()
    finally:
        playwright.stop()


@dataclass
class Tab:
    """A browser page and what it asked for: every request, and every failed request or script error."""

    page: Page
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def assert_offline(self, origin: str) -> None:
        """Everything loaded, and nothing but the report itself was asked for."""
        assert self.problems == []
        assert self.requests
        assert all(url.startswith((origin, "data:", "blob:")) for url in self.requests), self.requests


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1440, "height": 1400})
    tab = Tab(context.new_page())
    tab.page.set_default_timeout(15_000)
    tab.page.on("request", lambda request: tab.requests.append(request.url))
    tab.page.on("requestfailed", lambda request: tab.problems.append(f"{request.url}: {request.failure}"))
    tab.page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    yield tab
    context.close()


def open_failed_scenario(page: Page) -> None:
    """Categories -> Unhealthy endpoint -> the HTTP 503 message -> the unavailable component, as a reviewer clicks."""
    tree = page.locator(".side-by-side__left")
    tree.locator(".node__name", has_text=re.compile(r"^Unhealthy endpoint$")).click()
    tree.locator(".node__name", has_text="HTTP 503 Service Unavailable").click()
    tree.locator(".node__name", has_text=SCENARIO).click()
    expect(page.locator(".test-result__name")).to_have_text(SCENARIO)


def assert_steps_and_evidence(page: Page) -> None:
    result = page.locator(".side-by-side__right")
    expect(result.locator(".status-details__message").first).to_contain_text("HTTP 503 Service Unavailable")
    expect(result).to_contain_text("Categories: Unhealthy endpoint")
    names = result.locator(".step__name")
    expect(names).to_have_text(STEPS)
    for name in names.all():
        expect(name).to_be_visible()
    # The When step holds the evidence: expand it, then the attachment, as a reviewer does.
    attachment = result.locator(".attachment-row__name", has_text=EVIDENCE)
    expect(attachment).to_be_hidden()
    result.locator(".step__title", has_text=STEPS[0]).click()
    expect(attachment).to_be_visible()
    attachment.click()
    content = result.locator(".attachment-row__content").first
    expect(content).to_be_visible()
    expect(content).to_contain_text("503 Service Unavailable")
    expect(content).to_contain_text('"status"')


def top_level_categories(page: Page) -> set[str]:
    names = page.locator("allure-tree-view > .tree__content > .node > .node__title > .node__name")
    expect(names.first).to_be_visible()
    return set(names.all_inner_texts())


def test_failed_scenario_shows_its_steps_and_evidence(tab, served):
    tab.page.goto(served + "#categories")
    open_failed_scenario(tab.page)
    assert_steps_and_evidence(tab.page)
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=SCREENSHOTS / "report-review-failed-scenario.png", full_page=True)
    tab.assert_offline(served.rsplit("/", 1)[0])


def test_categories_tab_lists_the_failure_classes_present(tab, served, report_dir):
    tab.page.goto(served + "#categories")
    assert top_level_categories(tab.page) == EXPECTED_CATEGORIES
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=SCREENSHOTS / "report-review-categories.png")
    # What Allure (Java regexes) filed each result under is what the rule above (Python regexes) says.
    filed = {
        leaf["name"]: category["name"]
        for category in json.loads((report_dir / "data" / "categories.json").read_text())["children"]
        for group in category["children"]
        for leaf in group["children"]
    }
    results = [json.loads(p.read_text()) for p in (report_dir.parent.parent / "allure-results").glob("*-result.json")]
    expected = {
        r["name"]: category_of(r["status"], r["statusDetails"]["message"])
        for r in results
        if r["status"] in {"failed", "broken"}
    }
    assert filed == expected


def test_single_file_report_opens_from_disk(tab, single_file):
    tab.page.goto(single_file.as_uri() + "#categories")
    assert top_level_categories(tab.page) == EXPECTED_CATEGORIES
    open_failed_scenario(tab.page)
    assert_steps_and_evidence(tab.page)
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=SCREENSHOTS / "report-review-single-file.png", full_page=True)
    tab.assert_offline(single_file.as_uri())
