"""The report people review, opened the way they open it: the real suite run on the broken testbed, rendered by
scripts/render-report (a directory served over HTTP, and the single file opened from file://) and looked at in
headless Chromium, driven by Playwright. A failed scenario must show its Gherkin steps and its evidence, the
Categories tab the failure classes of deploy_verify/allure_meta.py, and the Overview of a red and of a green run the
gate's verdict and the run's phase (the report is the promotion record). Screenshots land in reports/ for a person to
look at.

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
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from deploy_verify.allure_meta import CATEGORIES, CATEGORY_LINE
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
# It names its phase, as a gate run does, so the Overview has one to show.
SELECTION = "postdeploy and (http or helmrelease or rollout)"
GREEN_SELECTION = "postdeploy and http"  # the healthy twin's health checks (about 5 s)
# The metric rules of local read from the testbed's Prometheus (about 2 s): one scenario per component, each rule's
# plot attached to its When step.
METRICS_SELECTION = "postdeploy and metrics"
METRIC_SCENARIO = "The service serves as well as it did before the deploy [local/payments-api]"
METRIC_STEP = "When the service's metrics are read from Prometheus"
PLOT = "plot: error ratio: component:payments-api"
PLOT_WIDTH = 640  # checks.plot's default: what the browser decodes the image to
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


# --- which category a result lands in -----------------------------------------------------------------------------

# The category is data on the result (checks.result.Category), written by the suite as the trace's last line; the
# message's words play no part. (Allure status, the message a real run wrote, the category its result carried.)
FAILED, BROKEN = "failed", "broken"
FAIL, ERROR = "deploy_verify.verdicts.CheckFailed: ", "deploy_verify.verdicts.Undecided: "
MESSAGES = [
    (
        FAILED,
        FAIL + "https://localhost:18441/health: HTTP 200 OK in 2 ms but reports version '1.4.2' at version, "
        "expected '2.0.0'",
        "Wrong version",
    ),
    (FAILED, FAIL + "https://localhost:18467/health: chain does not verify: certificate has expired", "Certificate"),
    (FAILED, FAIL + "Deployment:broken/checkout: rollout stuck: Pod checkout-5d8f: CrashLoopBackOff", "Rollout stuck"),
    (
        BROKEN,
        ERROR + "Deployment:broken/recommendations: still converging when the rollout deadline of 10s ran out",
        "Rollout stuck",
    ),
    (
        FAILED,
        FAIL + "https://localhost:18461/health: HTTP 503 Service Unavailable in 2 ms, expected 2xx",
        "Unhealthy endpoint",
    ),
    (FAILED, FAIL + 'HelmRelease:broken/billing: revision 2 is failed: Upgrade "billing" failed', "Provisioning"),
    (
        BROKEN,
        ERROR + "ContainerApp:rg/orders: still converging when the provisioning deadline of 5s ran out",
        "Provisioning",
    ),
    (
        BROKEN,
        ERROR + "Deployment:shop/web: cluster dv-a: API server https://127.0.0.1:1 refused the connection",
        "Infrastructure unreachable",
    ),
    (FAILED, FAIL + "cluster:dv-a: Node n1 not Ready", "Infrastructure unreachable"),
    (BROKEN, ERROR + "Deployment:shopp/misplaced: cluster dv-a: namespace 'shopp' not found", "Could not decide"),
]


def trace_of(nodeid: str, message: str, category: str | None) -> str:
    """The trace the suite writes for a red test (suite.reporting): verdict and test, the message, the category."""
    verdict = "ERROR" if message.startswith(ERROR) else "FAIL"
    filed = f"\n{CATEGORY_LINE}{category}" if category else ""
    return f"{verdict} {nodeid}\n{message.partition(': ')[2]}{filed}"


def category_of(status: str, trace: str) -> str | None:
    """Allure 2's rule: the first category whose statuses hold the result's and whose traceRegex (messageRegex, if
    any) matches the whole text (Java's String.matches, Python's fullmatch); None where Allure falls back to its own
    defect classes."""
    for category in CATEGORIES:
        pattern = category.get("traceRegex")
        if status in category["matchedStatuses"] and (pattern is None or re.fullmatch(str(pattern), trace)):
            return str(category["name"])
    return None


def test_categories_are_the_failure_classes_and_the_catch_all():
    names = [str(c["name"]) for c in CATEGORIES]
    assert names[:-1] == [
        "Wrong version",
        "Certificate",
        "Rollout stuck",
        "Unhealthy endpoint",
        "Provisioning",
        "Manifest policy",
        "Infrastructure drift",
        "Service metrics degraded",
        "Infrastructure unreachable",
    ]
    assert CATEGORIES[-1] == {"name": "Could not decide", "matchedStatuses": ["broken"]}


@pytest.mark.parametrize(("status", "message", "category"), MESSAGES, ids=[m[2] for m in MESSAGES])
def test_each_failure_lands_in_its_category(status, message, category):
    assert category_of(status, trace_of("features/test_features.py::t[env/x]", message, category)) == category


@pytest.mark.parametrize("category", [c["name"] for c in CATEGORIES])
def test_rewording_a_message_never_moves_a_failure(category):
    """Every other class's words in the message, and it still lands where its category says."""
    words = " ".join(message for _, message, _ in MESSAGES)
    status = BROKEN if category == "Could not decide" else FAILED
    assert category_of(status, trace_of("n", FAIL + "x: " + words, category)) == category


def test_every_category_is_reachable_with_every_status_it_claims():
    for category in CATEGORIES:
        for status in category["matchedStatuses"]:
            assert category_of(status, trace_of("n", FAIL + "x: y", category["name"])) == category["name"]


def test_a_red_result_without_a_category_is_undecided_when_broken():
    """A defect of the suite itself (no category line) is "Could not decide", never a failure class."""
    assert category_of(BROKEN, "ValueError in call: boom") == "Could not decide"


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


@pytest.fixture(scope="module")
def green_run(browser, testbed, tmp_path_factory) -> Path:
    """The real suite on a slice of the healthy local environment: the green record."""
    reports: Path = tmp_path_factory.mktemp("review-green")
    release = "--release=testbed/release-local.yaml"
    result = run_suite(reports, "--env", "local", "-m", GREEN_SELECTION, release, "-n", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "GATE GREEN: 3 passed in environment 'local'" in result.stdout
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


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """A directory report over http://127.0.0.1:<ephemeral port> (it fetches its data, so file:// cannot work)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def served(report_dir) -> Iterator[str]:
    with serve(report_dir) as url:
        yield url


@pytest.fixture(scope="module")
def green_report_dir(green_run: Path) -> Path:
    return render(green_run / "allure-results", green_run / "directory" / "report").parent


@pytest.fixture(scope="module")
def served_green(green_report_dir) -> Iterator[str]:
    with serve(green_report_dir) as url:
        yield url


@pytest.fixture(scope="module")
def metrics_run(browser, testbed, tmp_path_factory) -> Path:
    """The real suite's metric scenarios on local. Its verdict is not asserted: the plots are attached green or red,
    and the testbed's demo services are shared (POST /behaviour/<service> turns one red for whoever runs then)."""
    reports: Path = tmp_path_factory.mktemp("review-metrics")
    result = run_suite(reports, "--env", "local", "-m", METRICS_SELECTION, "--release=testbed/release-local.yaml")
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    tests = json.loads((reports / "verdict.json").read_text())["tests"]
    assert [t["check"] for t in tests] == ["service_metrics"] * 3, tests
    return reports


@pytest.fixture(scope="module")
def served_metrics(metrics_run: Path) -> Iterator[str]:
    with serve(render(metrics_run / "allure-results", metrics_run / "directory" / "report").parent) as url:
        yield url


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
        r["name"]: category_of(r["status"], r["statusDetails"]["trace"])
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


def test_a_metric_rule_s_plot_is_listed_on_its_step_and_loads_as_an_svg(tab, served_metrics):
    """Behaviors -> Service metrics -> a component's scenario -> its When step -> the plot, as a reviewer clicks; the
    preview is the decoded image, and the attachment it was made from is the SVG checks.plot drew."""
    page = tab.page
    page.goto(served_metrics + "#behaviors")
    tree = page.locator(".side-by-side__left")
    tree.locator(".node__name", has_text=re.compile(r"^Service metrics$")).click()
    tree.locator(".node__name", has_text=METRIC_SCENARIO).click()
    result = page.locator(".side-by-side__right")
    expect(result.locator(".test-result__name")).to_have_text(METRIC_SCENARIO)
    row = result.locator(".attachment-row", has=page.locator(".attachment-row__name", has_text=PLOT))
    expect(row).to_be_hidden()
    result.locator(".step__title", has_text=METRIC_STEP).click()
    expect(row).to_be_visible()
    expect(row.locator(".attachment-row__icon")).to_have_attribute("data-tooltip", "image/svg+xml")
    source = row.locator("[data-download]").get_attribute("data-download")  # data/attachments/<uid>.svg
    assert source is not None
    assert source.endswith(".svg"), source
    row.locator(".attachment-row__name").click()
    image = result.locator(f".attachment__{Path(source).stem} img.attachment-preview__media")  # the row's preview
    expect(image).to_be_visible()
    page.wait_for_function("image => image.complete", arg=image.element_handle())
    assert image.evaluate("image => image.naturalWidth") == PLOT_WIDTH  # 0 for an image that did not decode
    status, mime, text = page.evaluate(
        "async url => { const r = await fetch(url); return [r.status, r.headers.get('content-type'), await r.text()] }",
        source,
    )
    assert (status, mime) == (200, "image/svg+xml")
    svg = ET.fromstring(text)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.findtext("{http://www.w3.org/2000/svg}title") == "error ratio < 0.01"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "report-review-metric-plot.png", full_page=True)
    tab.assert_offline(served_metrics.rsplit("/", 1)[0])


# --- the Overview: the promotion record at a glance -----------------------------------------------------------------

RECORDS = {  # run -> (fixture serving its report, its reports folder, environment, release)
    "red": ("served", "broken_run", "local-broken", "demo-2026.11-broken"),
    "green": ("served_green", "green_run", "local", "demo-2026.11"),
}


@pytest.mark.parametrize("colour", list(RECORDS))
def test_overview_shows_the_verdict_and_the_phase(tab, request, colour):
    """The title says GATE RED/GREEN, the phase and the environment; the Environment block, opened in full, holds
    the verdict with its reason (verdict.json's, word for word), the phase, the release and the commit."""
    served_fixture, reports_fixture, env, release = RECORDS[colour]
    url: str = request.getfixturevalue(served_fixture)
    verdict = json.loads((request.getfixturevalue(reports_fixture) / "verdict.json").read_text())
    assert verdict["verdict"] == colour
    tab.page.goto(url + "#")
    title = tab.page.locator("[data-id=summary] .widget__title")
    expect(title).to_contain_text(f"GATE {colour.upper()} · postdeploy · {env} · release {release}")
    block = tab.page.locator("[data-id=environment]")
    block.locator(".environment-widget__expand").click()
    rows = {
        row.locator(".table__col").first.inner_text(): row.locator(".table__col").nth(1).inner_text()
        for row in block.locator(".table__row[disabled]").all()
    }
    assert rows["gate"] == f"GATE {colour.upper()}: {verdict['reason']}"
    assert (rows["phase"], rows["environment"], rows["release"]) == ("postdeploy", env, release)
    assert re.fullmatch(r"[0-9a-f]{40}( with uncommitted changes)?", rows["commit"]), rows["commit"]
    first, expectation = next(iter(verdict["release"]["expected"].items()))  # the manifest's first component
    assert rows["expected"].startswith(f"{first} {expectation['version']}, "), rows["expected"]
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=SCREENSHOTS / f"report-review-overview-{colour}.png", full_page=True)
    tab.assert_offline(url.rsplit("/", 1)[0])
