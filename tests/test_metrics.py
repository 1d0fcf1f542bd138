"""Metric rules (issue 16, groundwork): the judge, the Prometheus client, and both against a real Prometheus.

The real part: one Prometheus (Debian's package, scripts/install-prometheus) scraping the demo exporter of
testbed/metrics.py every second, started once for this module. Every service is healthy for a first stretch, the
baseline time is taken, then the "deploy" happens: one service starts failing a quarter of its requests, one gets
four times slower, one stops exporting its series, one stops receiving traffic, one stays healthy. The rules are then
judged over the window after the deploy (and, for baseline rules, the one before it), through the suite's client.

The fault part: a refused connection (a Prometheus that was stopped), a server that trickles its answer (cut by the
bound), and loopback stand-ins for what a real Prometheus will not do on request (401, an HTML login page, a 503).

The pure part: the judge on hand-made results, for NaN, ±Inf, several series and the edges of a tolerance.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.metrics import (
    MetricRule,
    TemplateError,
    Tolerance,
    baseline_time,
    evaluate,
    fill,
    judge,
)
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.transports import Failure
from deploy_verify.checks.transports.prometheus import (
    PrometheusClient,
    PrometheusUnavailable,
    QueryResult,
    Sample,
    Series,
)
from testbed.metrics import Behaviour, DemoExporter, Prometheus
from testbed.slowpeer import TRICKLE_BODY, Reply, SlowPeer

pytestmark = pytest.mark.states("metric rule")

WINDOW, STEP, MIN = 5.0, 1.0, 4  # a 5 s window, a point a second: 6 points, 4 of them numbers needed
RATE = "3s"  # rate() over 3 s: at least two scrapes at a 1 s interval
# Long enough for the baseline window and the rate() behind its first point, plus a scrape of slack.
SETTLE = WINDOW + 3 + 1.5
SLACK = 1.5  # seconds a cut call may take past its bound
ERROR_RATIO = (
    f'sum(rate(http_requests_total{{service="{{component}}",code=~"5.."}}[{RATE}]))'
    f' / sum(rate(http_requests_total{{service="{{component}}"}}[{RATE}]))'
)
P95 = (
    "histogram_quantile(0.95, sum by (le) "
    f'(rate(http_request_duration_seconds_bucket{{service="{{component}}"}}[{RATE}])))'
)
ERRORS_BELOW_1PCT = MetricRule(
    "error ratio", ERROR_RATIO, "threshold", "<", 0.01, window=WINDOW, step=STEP, min_samples=MIN
)
P95_BELOW_300MS = MetricRule("p95 latency", P95, "threshold", "<", 0.3, window=WINDOW, step=STEP, min_samples=MIN)
P95_VS_BASELINE = MetricRule(
    "p95 latency", P95, "baseline", "<=", tolerance=Tolerance(ratio=0.2), window=WINDOW, step=STEP, min_samples=MIN
)
NUMBER = r"[0-9.e+-]+"


@dataclass(frozen=True)
class World:
    exporter: DemoExporter
    prometheus: Prometheus
    client: PrometheusClient
    baseline_at: float  # unix seconds: the "-m predeploy" time, just before the deploy


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    services = ["steady", "erroring", "slowing", "vanishing", "idle"]
    with (
        DemoExporter(services) as exporter,
        Prometheus([exporter.target], tmp_path_factory.mktemp("prometheus")) as prometheus,
    ):
        # The first scrape comes a few seconds after /-/ready (Prometheus hands targets to its scrapers every 5 s).
        prometheus.wait_for_samples('http_requests_total{code="200"}', minimum=len(services), timeout=30)
        time.sleep(SETTLE)
        baseline_at = time.time()
        exporter.set("erroring", Behaviour.ERRORS)
        exporter.set("slowing", Behaviour.SLOW)
        exporter.set("vanishing", Behaviour.SILENT)
        exporter.set("idle", Behaviour.IDLE)
        time.sleep(SETTLE)
        yield World(exporter, prometheus, PrometheusClient(prometheus.url, timeout=5), baseline_at)


def run(world: World, rule: MetricRule, component: str, deadline: float = 20) -> tuple[Verdict, str, Category | None]:
    result = evaluate(
        world.client,
        rule,
        {"component": component},
        where=f"metrics:{component}",
        deadline=Deadline.after(deadline),
        baseline_at=world.baseline_at,
    )
    assert result.check == "metric_rule"
    assert result.target == f"metrics:{component}"
    return result.verdict, result.message, result.category


def window_re() -> str:
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    return rf"over 5s from {iso} to {iso}, every 1s"


# --- against the real Prometheus ---------------------------------------------------------------------------------


def test_a_healthy_service_holds_its_thresholds(world: World) -> None:
    verdict, message, category = run(world, ERRORS_BELOW_1PCT, "steady")
    assert verdict is Verdict.PASS, message
    assert re.fullmatch(rf"error ratio < 0.01 holds: ({NUMBER}) \(mean of 6 samples\); {window_re()}", message), message
    assert category is None
    verdict, message, _ = run(world, P95_BELOW_300MS, "steady")
    assert verdict is Verdict.PASS, message
    match = re.fullmatch(rf"p95 latency < 0.3 holds: ({NUMBER}) \(mean of 6 samples\); {window_re()}", message)
    assert match, message
    assert 0.15 < float(match[1]) < 0.25  # the demo's healthy p95 is about 0.2 s


def test_a_healthy_service_holds_against_its_baseline(world: World) -> None:
    verdict, message, _ = run(world, P95_VS_BASELINE, "steady")
    assert verdict is Verdict.PASS, message
    assert re.fullmatch(
        rf"p95 latency <= baseline \+20 % holds: {NUMBER} \(mean of 6 samples\) vs {NUMBER} before the deploy "
        rf"\([+-]\d+ %\); {window_re()}; before the deploy: 5s from .* every 1s",
        message,
    ), message


def test_a_degraded_error_ratio_is_red_naming_the_query_and_the_numbers(world: World) -> None:
    verdict, message, category = run(world, ERRORS_BELOW_1PCT, "erroring")
    query = ERROR_RATIO.replace("{component}", "erroring")
    match = re.fullmatch(
        rf"error ratio: ({NUMBER}) \(mean of 6 samples\), not < 0.01; {window_re()}; query '{re.escape(query)}'; "
        "look at what the release changed, its logs and its dashboards; roll back if it holds",
        message,
    )
    assert verdict is Verdict.FAIL
    assert match, message
    assert 0.2 < float(match[1]) < 0.3  # one request in four fails
    assert category is Category.METRICS


def test_degraded_latency_against_the_baseline_window_is_red(world: World) -> None:
    verdict, message, category = run(world, P95_VS_BASELINE, "slowing")
    match = re.fullmatch(
        rf"p95 latency: ({NUMBER}) \(mean of 6 samples\) vs ({NUMBER}) before the deploy \(\+(\d+) %\), "
        rf"not <= ({NUMBER}) \(baseline \+20 %\); {window_re()}; before the deploy: 5s from .* every 1s; "
        r"query '.*service=\"slowing\".*'; look at what the release changed, its logs and its dashboards; roll back "
        "if it holds",
        message,
    )
    assert verdict is Verdict.FAIL
    assert match, message
    now, before, change, limit = float(match[1]), float(match[2]), int(match[3]), float(match[4])
    assert 0.6 < now < 0.9  # four times slower: p95 about 0.75 s
    assert 0.15 < before < 0.25
    assert limit == pytest.approx(before * 1.2, rel=1e-3)
    assert change > 150
    assert category is Category.METRICS


def test_an_empty_series_is_an_error_not_a_pass(world: World) -> None:
    verdict, message, category = run(world, ERRORS_BELOW_1PCT, "vanishing")
    assert verdict is Verdict.ERROR
    query = ERROR_RATIO.replace("{component}", "vanishing")
    assert re.fullmatch(
        rf"error ratio: no series for query '{re.escape(query)}' {window_re()}; check the labels the query selects "
        r"against what the service exports, and Prometheus' Status > Targets page \(is the target up and scraped\?\)",
        message,
    ), message
    assert category is Category.UNDECIDED
    never, message, _ = run(world, ERRORS_BELOW_1PCT, "never-deployed")
    assert never is Verdict.ERROR
    assert "error ratio: no series for query" in message


def test_no_traffic_is_too_few_samples_not_a_pass(world: World) -> None:
    """0/0 is NaN in Prometheus: a ratio of rates without requests decides nothing."""
    verdict, message, category = run(world, ERRORS_BELOW_1PCT, "idle")
    assert verdict is Verdict.ERROR
    assert re.fullmatch(
        r"error ratio: too few samples: 0 of 6 points are numbers, 4 needed: 6 NaN \(0/0: no traffic in the window, "
        rf"or an empty histogram\); {window_re()}; query '.*'; check that the service gets traffic and exports these "
        r"series, and Prometheus' Status > Targets page \(is the target up and scraped\?\)",
        message,
    ), message
    assert category is Category.UNDECIDED
    verdict, message, _ = run(world, P95_BELOW_300MS, "idle")  # histogram_quantile of empty buckets: NaN as well
    assert verdict is Verdict.ERROR
    assert "p95 latency: too few samples: 0 of 6 points are numbers, 4 needed: 6 NaN" in message


def test_several_series_are_each_judged_and_named(world: World) -> None:
    by_service = MetricRule(
        "error ratio",
        'sum by (service) (rate(http_requests_total{service=~"{a}|{b}",code=~"5.."}[3s]))'
        ' / sum by (service) (rate(http_requests_total{service=~"{a}|{b}"}[3s]))',
        "threshold",
        "<",
        0.01,
        window=WINDOW,
        step=STEP,
        min_samples=MIN,
    )
    result = evaluate(
        world.client, by_service, {"a": "steady", "b": "erroring"}, where="metrics:shop", deadline=Deadline.after(20)
    )
    assert result.verdict is Verdict.FAIL
    assert re.match(
        rf'error ratio < 0.01: 1 of 2 series fails: {{service="erroring"}} {NUMBER} \(mean of 6 samples\), not < 0.01; '
        rf"{window_re()}; query ",
        result.message,
    ), result.message
    assert "steady" not in result.message.split("; query")[0]  # the passing series is not named as failing
    evidence = json.loads(result.evidence[0].content)
    assert sorted(s["labels"] for s in evidence["now"]["series"]) == ['{service="erroring"}', '{service="steady"}']


def test_a_query_prometheus_refuses_is_undecided_with_its_error(world: World) -> None:
    broken = MetricRule("error ratio", "sum(rate(http_requests_total[3s]", "threshold", "<", 0.01, window=5, step=1)
    verdict, message, category = run(world, broken, "steady")
    assert verdict is Verdict.ERROR
    assert re.fullmatch(
        rf"Prometheus at {re.escape(world.prometheus.url)} refused query 'sum\(rate\(http_requests_total\[3s\]' "
        r"\(HTTP 400, bad_data: .+\); correct the rule's PromQL \(try it in Prometheus' Graph page\)",
        message,
    ), message
    assert category is Category.UNDECIDED


def test_instant_and_scalar_results_are_parsed(world: World) -> None:
    now = time.time()
    vector = world.client.query('http_requests_total{service="steady"}', now, Deadline.after(10))
    assert vector.kind == "vector"
    assert sorted(dict(s.labels)["code"] for s in vector.series) == ["200", "500"]
    assert all(len(s.samples) == 1 and s.samples[0].v >= 0 for s in vector.series)
    scalar = world.client.query("scalar(sum(up))", now, Deadline.after(10))
    assert scalar.kind == "scalar"
    [only] = scalar.series
    assert only.labels == ()
    [sample] = only.samples
    assert sample.v == 1.0
    assert abs(sample.t - now) < 0.01  # evaluated at the time asked (to the millisecond the API takes)
    assert scalar.window().startswith("at ")


def test_a_metric_rule_takes_well_under_a_second(world: World) -> None:
    started = time.perf_counter()
    verdict, _, _ = run(world, P95_VS_BASELINE, "steady")  # two range queries
    elapsed = time.perf_counter() - started
    assert verdict is Verdict.PASS
    assert elapsed < 1.0, f"a baseline rule took {elapsed:.2f}s"


def test_prometheus_down_is_an_error_within_the_deadline(world: World, tmp_path: Path) -> None:
    stopped = Prometheus([world.exporter.target], tmp_path).start()
    stopped.stop()
    started = time.monotonic()
    result = evaluate(
        PrometheusClient(stopped.url, timeout=5),
        ERRORS_BELOW_1PCT,
        {"component": "steady"},
        where="metrics:steady",
        deadline=Deadline.after(2),
    )
    assert time.monotonic() - started < 2
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        f"Prometheus at {stopped.url}: cannot connect (Connection refused) for query "
        f"{ERRORS_BELOW_1PCT.filled({'component': 'steady'})!r}; is Prometheus running at that address and reachable "
        "from here?"
    )
    assert result.category is Category.UNREACHABLE


# --- the plot of each rule's series (an image/svg+xml evidence after the JSON one) --------------------------------

SVG = "{http://www.w3.org/2000/svg}"
FRAMES = {Verdict.PASS: "#2e7d32", Verdict.FAIL: "#c62828", Verdict.ERROR: "#ef6c00"}  # checks.plot's verdict colours


def plotted(world: World, rule: MetricRule, component: str) -> tuple[CheckResult, ET.Element]:
    """The result of `rule` on `component` and its plot, parsed (so it is well-formed XML)."""
    result = evaluate(
        world.client,
        rule,
        {"component": component},
        where=f"metrics:{component}",
        deadline=Deadline.after(20),
        baseline_at=world.baseline_at,
    )
    assert [e.mime for e in result.evidence] == ["application/json", "image/svg+xml"], result.evidence
    plot = result.evidence[1]
    assert plot.name == f"plot: {rule.name}"
    root = ET.fromstring(plot.content)
    assert root.tag == f"{SVG}svg"
    assert root.findtext(f"{SVG}title") == f"{rule.name} {rule.condition()}"
    assert root.find(f"{SVG}rect").get("stroke") == FRAMES[result.verdict]  # type: ignore[union-attr]
    return result, root


def threshold_drawn(root: ET.Element) -> float:
    """The value the dashed threshold line is labelled with ("threshold 0.01")."""
    assert len(root.findall(f"{SVG}line[@class='threshold']")) == 1
    [label] = [t.text or "" for t in root.findall(f"{SVG}text[@class='threshold']")]
    assert label.startswith("threshold "), label
    return float(label.removeprefix("threshold "))


def test_a_green_rule_is_plotted_with_its_threshold(world: World) -> None:
    result, root = plotted(world, ERRORS_BELOW_1PCT, "steady")
    assert result.verdict is Verdict.PASS
    assert threshold_drawn(root) == 0.01
    assert len(root.findall(f"{SVG}polyline[@class='now']")) == 1  # the one series, no baseline window
    assert root.findall(f"{SVG}polyline[@class='baseline']") == []


def test_a_red_rule_is_plotted_with_its_threshold_in_the_colour_of_a_failure(world: World) -> None:
    result, root = plotted(world, ERRORS_BELOW_1PCT, "erroring")
    assert result.verdict is Verdict.FAIL
    assert threshold_drawn(root) == 0.01
    assert len(root.findall(f"{SVG}polyline[@class='now']")) == 1


def test_a_baseline_rule_is_plotted_over_both_windows_with_the_limit_the_tolerance_allows(world: World) -> None:
    result, root = plotted(world, P95_VS_BASELINE, "slowing")
    assert result.verdict is Verdict.FAIL
    before = json.loads(result.evidence[0].content)["baseline"]["series"][0]["value"]
    assert threshold_drawn(root) == pytest.approx(before * 1.2, rel=1e-3)  # baseline +20 %, to the 4 digits drawn
    assert len(root.findall(f"{SVG}polyline[@class='now']")) == 1
    assert len(root.findall(f"{SVG}polyline[@class='baseline']")) == 1


def test_an_empty_result_is_still_plotted_saying_so(world: World) -> None:
    result, root = plotted(world, ERRORS_BELOW_1PCT, "vanishing")
    assert result.verdict is Verdict.ERROR
    assert root.findtext(f"{SVG}text[@class='empty']") == "no samples: the query returned no series"


def test_a_prometheus_that_does_not_answer_gets_no_plot(world: World, tmp_path: Path) -> None:
    stopped = Prometheus([world.exporter.target], tmp_path).start()
    stopped.stop()
    result = evaluate(
        PrometheusClient(stopped.url, timeout=5),
        ERRORS_BELOW_1PCT,
        {"component": "steady"},
        where="metrics:steady",
        deadline=Deadline.after(2),
    )
    assert result.verdict is Verdict.ERROR
    assert result.evidence == ()


# --- faults a real Prometheus does not make on request -------------------------------------------------------------


def test_a_trickling_answer_is_cut_at_the_bound() -> None:
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}).encode()
    with SlowPeer(lambda _path: Reply(200, body, mode=TRICKLE_BODY), interval=0.2) as peer:
        client = PrometheusClient(peer.url, timeout=1.5)
        started = time.monotonic()
        result = evaluate(client, ERRORS_BELOW_1PCT, {"component": "x"}, where="metrics:x", deadline=Deadline.after(30))
        elapsed = time.monotonic() - started
    assert result.verdict is Verdict.ERROR
    assert re.fullmatch(
        rf"Prometheus at {re.escape(peer.url)}: GET {re.escape(peer.url)}/api/v1/query_range was cut off after "
        r"1\.[5-9]s \(the Prometheus query timeout 1\.5s\): the body was still arriving: \d+ bytes so far, the last "
        r"0\.\ds before the cut \(the server trickles it\), for query '.*'; check Prometheus' load and any proxy in "
        "front of it",
        result.message,
    ), result.message
    assert result.category is Category.UNREACHABLE
    assert elapsed < 1.5 + SLACK


def test_the_budget_bounds_a_query_when_it_is_shorter_than_the_timeout() -> None:
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}).encode()
    with SlowPeer(lambda _path: Reply(200, body, mode=TRICKLE_BODY), interval=0.2) as peer:
        started = time.monotonic()
        result = evaluate(
            PrometheusClient(peer.url, timeout=10),
            ERRORS_BELOW_1PCT,
            {"component": "x"},
            where="metrics:x",
            deadline=Deadline.after(1.0, "time budget"),
        )
        elapsed = time.monotonic() - started
    assert result.verdict is Verdict.ERROR
    assert "was cut off after 1.0s (when the time budget ran out)" in result.message
    assert elapsed < 1.0 + SLACK


class _Recorder(ThreadingHTTPServer):
    """A loopback HTTP server that answers every GET with `reply` and keeps the headers it was sent."""

    daemon_threads = True

    def __init__(self, status: int, body: bytes, kind: str = "application/json") -> None:
        super().__init__(("127.0.0.1", 0), _RecorderHandler)
        self.reply = (status, body, kind)
        self.seen: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RecorderHandler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers.items()))
        status, body, kind = self.server.reply
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def recorder(request: pytest.FixtureRequest) -> Iterator[_Recorder]:
    server = _Recorder(*request.param)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


UNAUTHORIZED = (401, b'{"status":"error","errorType":"unauthorized","error":"bad token"}')


@pytest.mark.parametrize("recorder", [UNAUTHORIZED], indirect=True)
def test_the_bearer_token_is_sent_and_never_shown(recorder: _Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "s3cr3t-prometheus-token"
    monkeypatch.setenv("DV_TEST_PROMETHEUS_TOKEN", token)
    client = PrometheusClient(recorder.url, token_env="DV_TEST_PROMETHEUS_TOKEN")
    result = evaluate(client, ERRORS_BELOW_1PCT, {"component": "x"}, where="metrics:x", deadline=Deadline.after(5))
    assert recorder.seen[0]["Authorization"] == f"Bearer {token}"
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        f"Prometheus at {recorder.url} refused the credential (HTTP 401) for query "
        f"{ERRORS_BELOW_1PCT.filled({'component': 'x'})!r}; the suite sent the bearer token in "
        "$DV_TEST_PROMETHEUS_TOKEN: check it is current and allowed to read"
    )
    assert token not in repr(client)
    assert all(token not in e.content for e in result.evidence)


def test_a_token_variable_that_is_not_set_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DV_TEST_PROMETHEUS_TOKEN", raising=False)
    client = PrometheusClient("http://127.0.0.1:9", token_env="DV_TEST_PROMETHEUS_TOKEN")
    with pytest.raises(PrometheusUnavailable) as caught:
        client.query("up", time.time(), Deadline.after(5))
    assert caught.value.failure is Failure.CREDENTIALS
    assert str(caught.value) == (
        "Prometheus at http://127.0.0.1:9: no bearer token: environment variable DV_TEST_PROMETHEUS_TOKEN is empty or "
        "not set; export the token Prometheus (or the proxy in front of it) accepts into it, or drop the token "
        "setting if it needs none"
    )


LOGIN_PAGE = (200, b"<html><head><title>Sign in</title></head><body>...</body></html>", "text/html")
UNAVAILABLE = (503, b'{"status":"error","errorType":"unavailable","error":"TSDB not ready"}')


@pytest.mark.parametrize(
    ("recorder", "failure", "said"),
    [
        (
            LOGIN_PAGE,
            Failure.MALFORMED,
            "answered query 'up' with something other than the API's JSON (text/html, titled 'Sign in'); is the URL "
            "Prometheus' own (not a UI or a login page)?",
        ),
        (
            UNAVAILABLE,
            Failure.OTHER,
            "refused query 'up' (HTTP 503, unavailable: TSDB not ready); check Prometheus' log",
        ),
        (
            (200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}'),
            Failure.MALFORMED,
            "answered query 'up' with a result the API does not document (a series without 'value'); is it "
            "Prometheus' HTTP API?",
        ),
        ((502, b"Bad Gateway"), Failure.OTHER, "answered HTTP 502 Bad Gateway for query 'up': 'Bad Gateway'"),
    ],
    indirect=["recorder"],
)
def test_answers_that_are_not_results_say_what_came_back(recorder: _Recorder, failure: Failure, said: str) -> None:
    with pytest.raises(PrometheusUnavailable) as caught:
        PrometheusClient(recorder.url).query("up", time.time(), Deadline.after(5))
    assert caught.value.failure is failure
    assert str(caught.value).startswith(f"Prometheus at {recorder.url} {said}"), str(caught.value)


def test_the_demo_exporter_switches_over_http_and_serves_the_text_format() -> None:
    with DemoExporter(["a b", 'q"x'], rate=100) as exporter:
        time.sleep(0.3)
        assert requests.post(f"http://{exporter.target}/behaviour/a%20b", data="errors", timeout=5).status_code == 200
        assert exporter.behaviour("a b") is Behaviour.ERRORS
        refused = requests.post(f"http://{exporter.target}/behaviour/a%20b", data="broken", timeout=5)
        assert refused.status_code == 400
        assert refused.text.startswith("unknown behaviour 'broken'; one of: healthy, errors, slow, idle, silent")
        exporter.set('q"x', Behaviour.SILENT)
        page = requests.get(exporter.url, timeout=5)
    assert page.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE http_requests_total counter" in page.text
    assert "# TYPE http_request_duration_seconds histogram" in page.text
    assert 'http_request_duration_seconds_bucket{service="a b",le="+Inf"}' in page.text
    assert "q\\" not in page.text  # silent: not one series of it


# --- the judge on hand-made results --------------------------------------------------------------------------------

T = 1796285400.0  # 2026-12-03T08:10:00Z
NOW_WINDOW = "over 60s from 2026-12-03T08:09:00Z to 2026-12-03T08:10:00Z, every 10s"
BEFORE_WINDOW = "before the deploy: 60s from 2026-12-03T07:59:00Z to 2026-12-03T08:00:00Z, every 10s"


def matrix(*series: tuple[dict[str, str], list[float]], end: float = T, query: str = "q") -> QueryResult:
    return QueryResult(
        query,
        "matrix",
        tuple(
            Series.of(labels, tuple(Sample(end - 60 + 10 * i, v) for i, v in enumerate(vs))) for labels, vs in series
        ),
        end - 60,
        end,
        10,
        "http://prometheus:9090",
    )


def before(*series: tuple[dict[str, str], list[float]]) -> QueryResult:
    return matrix(*series, end=T - 600)


THRESHOLD = MetricRule("error ratio", "q", "threshold", "<", 0.01)


def threshold(op: str, value: float) -> MetricRule:
    return MetricRule("error ratio", "q", "threshold", op, value)  # type: ignore[arg-type]


def versus(op: str = "<=", ratio: float = 0.0, absolute: float = 0.0) -> MetricRule:
    return MetricRule("p95", "q", "baseline", op, tolerance=Tolerance(ratio, absolute))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "verdict", "said"),
    [
        (
            [math.nan] * 7,
            Verdict.ERROR,
            "error ratio: too few samples: 0 of 7 points are numbers, 3 needed: 7 NaN (0/0",
        ),
        (
            [math.nan] * 5 + [0.001] * 2,
            Verdict.ERROR,
            "error ratio: too few samples: 2 of 7 points are numbers, 3 need",
        ),
        (
            [0.001] * 2,
            Verdict.ERROR,
            "error ratio: too few samples: 2 of 7 points are numbers, 3 needed: 5 missing (the",
        ),
        ([math.nan] * 4 + [0.001] * 3, Verdict.PASS, "error ratio < 0.01 holds: 0.001 (mean of 3 samples)"),
        ([math.inf] * 7, Verdict.FAIL, "error ratio: +Inf (mean of 7 samples; +Inf: a quantile beyond the highest"),
        ([math.inf, -math.inf, 0, 0], Verdict.ERROR, "error ratio: its points mix +Inf and -Inf, their mean is NaN"),
    ],
    ids=["all-nan", "mostly-nan", "gaps", "nan-ignored", "inf-compared", "inf-minus-inf"],
)
def test_nan_decides_nothing_and_inf_is_a_value(values: list[float], verdict: Verdict, said: str) -> None:
    result = judge(THRESHOLD, matrix(({}, values)), where="metrics:x")
    assert result.verdict is verdict
    assert result.message.startswith(said), result.message
    json.loads(result.evidence[0].content, parse_constant=_no_constants)  # NaN and Inf are strings in the evidence


def _no_constants(name: str) -> float:
    raise AssertionError(f"the evidence has a bare {name}, which is not JSON")


def test_a_baseline_of_inf_is_undecidable() -> None:
    result = judge(versus(ratio=0.2), matrix(({}, [0.2] * 7)), before(({}, [math.inf] * 7)), where="m")
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith("p95: the baseline is +Inf, which no tolerance can move;"), result.message


def test_several_series_worst_wins_and_each_is_named() -> None:
    result = judge(
        THRESHOLD,
        matrix(({"route": "/a"}, [0.2] * 7), ({"route": "/b"}, [0.001] * 7), ({"route": "/c"}, [0.5] * 7)),
        where="metrics:shop",
    )
    assert result.verdict is Verdict.FAIL
    assert result.message == (
        'error ratio < 0.01: 2 of 3 series fail: {route="/c"} 0.5 (mean of 7 samples), not < 0.01; {route="/a"} 0.2 '
        f"(mean of 7 samples), not < 0.01; {NOW_WINDOW}; query 'q'; look at what the release changed, its logs and "
        "its dashboards; roll back if it holds"
    )
    assert result.category is Category.METRICS


def test_a_series_that_cannot_be_judged_outranks_one_that_fails_and_both_are_named() -> None:
    result = judge(THRESHOLD, matrix(({"route": "/a"}, [0.2] * 7), ({"route": "/b"}, [math.nan] * 7)), where="m")
    assert result.verdict is Verdict.ERROR  # ERROR over FAIL, as everywhere in the suite
    assert result.message.startswith(
        'error ratio < 0.01: 1 of 2 series fails: {route="/a"} 0.2 (mean of 7 samples), not < 0.01; 1 of 2 series '
        'cannot be judged: {route="/b"} too few samples: 0 of 7 points are numbers, 3 needed: 7 NaN'
    ), result.message
    assert result.message.endswith(
        "roll back if it holds; for what cannot be judged, check that the service gets traffic and exports these "
        "series, and Prometheus' Status > Targets page (is the target up and scraped?)"
    )
    assert result.category is Category.UNDECIDED


def test_many_series_are_listed_up_to_a_few() -> None:
    result = judge(THRESHOLD, matrix(*(({"pod": f"p{i}"}, [0.1 + i / 100] * 7) for i in range(8))), where="m")
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith('error ratio < 0.01: 8 of 8 series fail: {pod="p7"} 0.17 (mean of 7 samples)')
    assert "; and 3 more (see the evidence);" in result.message


@pytest.mark.parametrize(
    ("rule", "now", "baseline", "verdict", "said"),
    [
        (
            versus("<=", ratio=0.1),
            0.22,
            0.2,
            Verdict.PASS,
            "p95 <= baseline +10 % holds: 0.22 (mean of 7 samples) vs 0.2",
        ),
        (
            versus("<", ratio=0.1),
            0.22,
            0.2,
            Verdict.FAIL,
            "p95: 0.22 (mean of 7 samples) vs 0.2 before the deploy (+10 %), not < 0.22 (baseline +10 %)",
        ),
        (
            versus("<=", ratio=0.1),
            0.2201,
            0.2,
            Verdict.FAIL,
            "p95: 0.2201 (mean of 7 samples) vs 0.2 before the deploy (+10 %), not <= 0.22",
        ),
        (versus("<=", absolute=0.05), 0.25, 0.2, Verdict.PASS, "p95 <= baseline +0.05 holds: 0.25"),
        (versus("<=", ratio=0.1, absolute=0.05), 0.25, 0.2, Verdict.PASS, "p95 <= baseline +max(10 %, 0.05) holds"),
        (versus("<=", ratio=0.5, absolute=0.05), 0.3, 0.2, Verdict.PASS, "p95 <= baseline +max(50 %, 0.05) holds"),
        (
            versus("<="),
            0.2,
            0.2,
            Verdict.PASS,
            "p95 <= baseline holds: 0.2 (mean of 7 samples) vs 0.2 before the deploy (+0 %)",
        ),
        (
            versus(">=", ratio=0.1),
            90.0,
            100.0,
            Verdict.PASS,
            "p95 >= baseline -10 % holds: 90 (mean of 7 samples) vs 100",
        ),
        (
            versus(">=", ratio=0.1),
            89.9,
            100.0,
            Verdict.FAIL,
            "p95: 89.9 (mean of 7 samples) vs 100 before the deploy (-10 %), not >= 90 (baseline -10 %)",
        ),
        (
            versus("<=", ratio=0.2),
            0.001,
            0.0,
            Verdict.FAIL,
            "p95: 0.001 (mean of 7 samples) vs 0 before the deploy, not <= 0 (baseline +20 %); a ratio tolerance allows nothing on a baseline of 0: add an absolute one;",
        ),
        (threshold("<=", 0.01), 0.01, 0.0, Verdict.PASS, "error ratio <= 0.01 holds: 0.01"),
        (threshold("<", 0.01), 0.01, 0.0, Verdict.FAIL, "error ratio: 0.01 (mean of 7 samples), not < 0.01;"),
        (threshold(">", 0.99), 0.995, 0.0, Verdict.PASS, "error ratio > 0.99 holds: 0.995"),
    ],
    ids=[
        "at-limit-le",
        "at-limit-lt",
        "just-over",
        "absolute",
        "larger-of-both-absolute",
        "larger-of-both-ratio",
        "no-tolerance-equal",
        "lower-bound-at-limit",
        "lower-bound-under",
        "zero-baseline",
        "threshold-at-limit-le",
        "threshold-at-limit-lt",
        "threshold-lower-bound",
    ],
)
def test_tolerance_edges(rule: MetricRule, now: float, baseline: float, verdict: Verdict, said: str) -> None:
    reference = before(({}, [baseline] * 7)) if rule.kind == "baseline" else None
    result = judge(rule, matrix(({}, [now] * 7)), reference, where="m")
    assert result.verdict is verdict, result.message
    assert result.message.startswith(said), result.message


def test_a_baseline_verdict_names_both_windows() -> None:
    result = judge(versus(ratio=0.2), matrix(({}, [0.9] * 7)), before(({}, [0.2] * 7)), where="metrics:x")
    assert result.message == (
        "p95: 0.9 (mean of 7 samples) vs 0.2 before the deploy (+350 %), not <= 0.24 (baseline +20 %); "
        f"{NOW_WINDOW}; {BEFORE_WINDOW}; query 'q'; look at what the release changed, its logs and its dashboards; "
        "roll back if it holds"
    )
    evidence = json.loads(result.evidence[0].content)
    assert evidence["baseline"]["end"] == "2026-12-03T08:00:00Z"
    assert evidence["now"]["series"][0] == {
        "labels": "{}",
        "value": 0.9,
        "samples": 7,
        "nan_points": 0,
        "missing_points": 0,
        "min": 0.9,
        "max": 0.9,
    }


def test_baseline_series_are_matched_by_labels() -> None:
    result = judge(
        versus(ratio=0.2),
        matrix(({"route": "/a"}, [0.2] * 7), ({"route": "/new"}, [0.2] * 7)),
        before(({"route": "/a"}, [0.2] * 7), ({"route": "/b"}, [0.2] * 7)),
        where="m",
    )
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith(
        'p95 <= baseline +20 %: 1 of 2 series cannot be judged: {route="/new"} no series with these labels before the '
        "deploy (aggregate away labels that change with a deploy, such as pod or instance);"
    ), result.message
    one_each = judge(
        versus(ratio=0.2), matrix(({"pod": "new"}, [0.2] * 7)), before(({"pod": "old"}, [0.2] * 7)), where="m"
    )
    assert one_each.verdict is Verdict.PASS, one_each.message  # one aggregate before, one after: compared


def test_an_empty_baseline_window_is_an_error() -> None:
    result = judge(versus(ratio=0.2), matrix(({}, [0.2] * 7)), before(), where="m")
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith(
        "p95: no series before the deploy for query 'q' over 60s from 2026-12-03T07:59:00Z to 2026-12-03T08:00:00Z, "
        "every 10s, nothing to compare with; was the service exporting these metrics then?"
    )


def test_a_baseline_rule_without_a_baseline_time_is_an_error() -> None:
    client = PrometheusClient("http://127.0.0.1:9")  # never asked
    result = evaluate(client, versus(ratio=0.2), {}, where="metrics:x", deadline=Deadline.after(5))
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "p95: a baseline rule, but no baseline time to compare with; record a baseline before the deploy with "
        "`-m predeploy`"
    )
    assert result.category is Category.UNDECIDED


# --- templates and rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "value", "filled"),
    [
        ('up{service="{component}"}', "reviews", 'up{service="reviews"}'),
        ('up{service="{component}"}', 'a"} or vector(1) #', 'up{service="a\\"} or vector(1) #"}'),
        ('up{service="{component}"}', "back\\slash", 'up{service="back\\\\slash"}'),
        ('up{service="{component}"}', "two\nlines\x01", 'up{service="two\\nlines\\x01"}'),
        ("up{service='{component}'}", "it's", "up{service='it\\'s'}"),
        ('up{service=~"{component}"}', "a.b+c", 'up{service=~"a\\\\.b\\\\+c"}'),
        ('up{service!~ "{component}-canary"}', "a|b", 'up{service!~ "a\\\\|b-canary"}'),
        ('up{service="{component}", note="\\"{component}\\""}', "x", 'up{service="x", note="\\"x\\""}'),
    ],
    ids=[
        "plain",
        "quote-injection",
        "backslash",
        "control",
        "single-quotes",
        "regex",
        "negative-regex",
        "escaped-quotes",
    ],
)
def test_placeholders_are_filled_as_escaped_label_values(template: str, value: str, filled: str) -> None:
    assert fill(template, {"component": value}) == filled


@pytest.mark.parametrize(
    ("template", "said"),
    [
        (
            "rate(x[{component}])",
            "placeholder {component} at column 8 of query 'rate(x[{component}])' is outside a quoted string: write "
            'it as a label value, e.g. service="{component}"',
        ),
        ("up{service=`{component}`}", "is inside a `raw` string, which cannot escape a value: use double quotes"),
        ('up{service="{namespace}"}', "has no value (the values given: component)"),
        ('up{service="{component}}', 'has an unterminated " string'),
    ],
    ids=["outside-quotes", "raw-string", "no-value", "unterminated"],
)
def test_templates_that_cannot_be_filled_safely_are_refused(template: str, said: str) -> None:
    with pytest.raises(TemplateError) as caught:
        fill(template, {"component": "x"})
    assert said in str(caught.value)


def test_a_rule_with_a_missing_label_is_an_error_not_a_query() -> None:
    rule = MetricRule("errors", 'up{service="{service}"}', "threshold", "<", 1.0)
    result = evaluate(
        PrometheusClient("http://127.0.0.1:9"), rule, {"component": "x"}, where="m", deadline=Deadline.after(5)
    )
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "errors: placeholder {service} at column 13 of query 'up{service=\"{service}\"}' has no value (the values "
        "given: component)"
    )


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"kind": "threshold", "op": "<"}, "a threshold rule needs a value to compare with"),
        ({"kind": "baseline", "op": "<", "value": 1.0}, "a baseline rule compares with the baseline window"),
        ({"kind": "threshold", "op": "=", "value": 1.0}, "op must be one of <, <=, >, >=, not '='"),
        ({"kind": "baseline", "op": "<", "tolerance": Tolerance(ratio=-0.1)}, "tolerance cannot be negative"),
        (
            {"kind": "threshold", "op": "<", "value": 1.0, "min_samples": 8},
            "min_samples must be between 1 and the 7 points a 60s window has at a 10s step, not 8",
        ),
        ({"kind": "threshold", "op": "<", "value": 1.0, "step": 0}, "need step > 0 and window >= step"),
        ({"kind": "threshold", "op": "<", "value": 1.0, "query": "x[{c}]"}, "is outside a quoted string"),
    ],
)
def test_rules_that_make_no_sense_are_refused_when_made(arguments: dict, said: str) -> None:
    arguments = {"name": "r", "query": "up", **arguments}
    with pytest.raises(ValueError, match=re.escape(said)):
        MetricRule(**arguments)


@pytest.mark.parametrize(
    "recorded_at",
    ["2026-12-03T08:10:00Z", "2026-12-03T08:10:00+00:00", "2026-12-03T09:10:00+01:00", "2026-12-03T08:10:00"],
)
def test_the_baseline_time_is_read_from_the_recorded_at_of_a_baseline(recorded_at: str) -> None:
    assert baseline_time(recorded_at) == T
