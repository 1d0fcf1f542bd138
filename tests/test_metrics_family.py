"""The metrics family end to end: `pytest features -m "postdeploy and metrics"` in a subprocess, against a real
Prometheus (testbed.metrics) scraping the demo exporter on ephemeral loopback ports, judged from verdict.json; and
the environment file's metric keys, refused word for word when they are wrong."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy_verify.config import ConfigError, load_environment
from testbed.metrics import Behaviour, DemoExporter, Prometheus, free_port

ROOT = Path(__file__).resolve().parent.parent
RATE = "3s"  # rate() over 3 s: at least two scrapes at a 1 s interval
WINDOW = "5s"  # a point a second: 6 points, 4 of them numbers needed
SETTLE = 5 + 3 + 1.5  # the window, the rate() behind its first point, a scrape of slack
ERROR_RATIO = (
    f'sum(rate(http_requests_total{{service="{{component}}",code=~"5.."}}[{RATE}]))'
    f' / sum(rate(http_requests_total{{service="{{component}}"}}[{RATE}]))'
)
P95 = (
    "histogram_quantile(0.95, sum by (le) "
    f'(rate(http_request_duration_seconds_bucket{{service="{{component}}"}}[{RATE}])))'
)
RULES = (
    f"      - {{name: error ratio, query: '{ERROR_RATIO}', threshold: {{op: '<', value: 0.01}},"
    f" window: {WINDOW}, step: 1s, min_samples: 4}}\n"
    f"      - {{name: p95 latency, query: '{P95}', baseline: {{tolerance: {{ratio: 0.2}}}},"
    f" window: {WINDOW}, step: 1s, min_samples: 4}}\n"
)


@dataclass(frozen=True)
class World:
    prometheus: Prometheus
    baseline_at: str  # ISO 8601: when "-m predeploy" recorded the baseline, before the "deploy"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    services = ["reviews", "ratings", "search"]
    with (
        DemoExporter(services) as exporter,
        Prometheus([exporter.target], tmp_path_factory.mktemp("prometheus")) as prometheus,
    ):
        prometheus.wait_for_samples('http_requests_total{code="200"}', minimum=len(services), timeout=30)
        time.sleep(SETTLE)
        baseline_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        time.sleep(1)  # recorded_at is to the second: the deploy comes after it
        exporter.set("ratings", Behaviour.ERRORS)
        exporter.set("search", Behaviour.SLOW)
        time.sleep(SETTLE)
        yield World(prometheus, baseline_at)


def project(tmp_path: Path, url: str, baseline_at: str | None) -> Path:
    repo = tmp_path / "repo"
    for folder in ("features", "environments", "reports"):
        (repo / folder).mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", repo)
    components = "".join(
        f"  - name: {name}\n    kind: endpoint\n    metrics:\n{RULES}" for name in ("reviews", "ratings", "search")
    )
    (repo / "environments" / "local.yaml").write_text(
        f"name: local\nbudget: 1m\nmetrics:\n  prometheus: {{url: '{url}'}}\n"
        f"defaults: {{timeouts: {{prometheus_request: 3s}}}}\ncomponents:\n{components}"
    )
    if baseline_at is not None:
        baseline: dict[str, object] = {
            "environment": "local",
            "recorded_at": baseline_at,
            "release": None,
            "components": {},
        }
        (repo / "reports" / "baseline-local.json").write_text(json.dumps(baseline))
    return repo


def suite(repo: Path) -> tuple[dict[str, tuple[str, str, str]], dict[str, str], float]:
    """Run the metrics scenario; (component -> (check, outcome, category), component -> message, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "features", "-m", "postdeploy and metrics", "-p", "no:cacheprovider"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - started
    verdict = repo / "reports" / "verdict.json"
    assert verdict.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(verdict.read_text())
    rows = {t["component"]: (t["check"], t["outcome"], t["category"]) for t in document["tests"]}
    messages = {t["component"]: t["message"] for t in document["tests"]}
    return rows, messages, took


ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
NOW = rf"over 5s from {ISO} to {ISO}, every 1s"
BEFORE = rf"before the deploy: 5s from {ISO} to {ISO}, every 1s"
N = r"[0-9.e+-]+"
SVG = "{http://www.w3.org/2000/svg}"
ADVICE = "look at what the release changed, its logs and its dashboards; roll back if it holds"


def test_a_healthy_service_passes_and_a_degraded_one_fails_naming_the_query_and_the_numbers(
    world: World, tmp_path: Path
) -> None:
    rows, messages, _ = suite(project(tmp_path, world.prometheus.url, world.baseline_at))
    assert rows == {
        "reviews": ("service_metrics", "pass", ""),
        "ratings": ("service_metrics", "fail", "Service metrics degraded"),
        "search": ("service_metrics", "fail", "Service metrics degraded"),
    }
    healthy = (
        rf"component:reviews: error ratio < 0.01 holds: 0\.00{N} \(mean of 6 samples\); {NOW}\n"
        rf"component:reviews: p95 latency <= baseline \+20 % holds: 0\.{N} \(mean of 6 samples\) vs 0\.{N} before "
        rf"the deploy \([+-]\d+ %\); {NOW}; {BEFORE}"
    )
    assert re.fullmatch(healthy, messages["reviews"]), messages["reviews"]
    erroring = (
        rf"component:ratings: error ratio: 0\.2{N} \(mean of 6 samples\), not < 0.01; {NOW}; query "
        + re.escape(repr(ERROR_RATIO.replace("{component}", "ratings")))
        + f"; {ADVICE}"
    )
    assert re.fullmatch(erroring, messages["ratings"].splitlines()[0]), messages["ratings"]
    slower = (
        rf"component:search: p95 latency: 0\.[6-9]{N} \(mean of 6 samples\) vs 0\.{N} before the deploy "
        rf"\(\+\d+ %\), not <= 0\.{N} \(baseline \+20 %\); {NOW}; {BEFORE}; query "
        + re.escape(repr(P95.replace("{component}", "search")))
        + f"; {ADVICE}"
    )
    assert re.fullmatch(slower, messages["search"].splitlines()[-1]), messages["search"]


def test_a_baseline_rule_without_a_recorded_baseline_is_an_error_that_says_to_record_one(
    world: World, tmp_path: Path
) -> None:
    repo = project(tmp_path, world.prometheus.url, None)
    rows, messages, _ = suite(repo)
    assert rows["reviews"] == ("service_metrics", "error", "Could not decide")
    assert messages["reviews"] == (  # the red result only: the error ratio rule passed
        "component:reviews: p95 latency: compared with the window before the deploy, but no baseline for environment "
        f"'local' at {repo / 'reports' / 'baseline-local.json'}; record one before the deploy with "
        "`pytest features --env local -m predeploy`"
    )


def test_prometheus_down_is_an_error_within_the_budget(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    rows, messages, took = suite(project(tmp_path, url, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
    assert rows == {name: ("service_metrics", "error", "Infrastructure unreachable") for name in rows}
    assert len(rows) == 3
    first, second = messages["reviews"].splitlines()
    advice = "is Prometheus running at that address and reachable from here?"
    assert first == (
        f"component:reviews: Prometheus at {url}: cannot connect (Connection refused) for query "
        f"{ERROR_RATIO.replace('{component}', 'reviews')!r}; {advice}"
    )
    assert second.startswith(f"component:reviews: Prometheus at {url}: cannot connect"), second
    assert took < 30, took


def test_each_rule_s_plot_is_an_svg_attached_to_the_step_that_read_the_metrics(world: World, tmp_path: Path) -> None:
    repo = project(tmp_path, world.prometheus.url, world.baseline_at)
    suite(repo)
    results = repo / "reports" / "allure-results"
    [scenario] = [
        r
        for r in map(json.loads, map(Path.read_text, results.glob("*-result.json")))
        if r["name"].endswith("[local/search]")  # red against its baseline: where a reviewer looks at the plot
    ]
    [step] = [s for s in scenario["steps"] if s["name"].startswith("When the service's metrics are read")]
    titles = {}
    for attachment in step["attachments"]:
        if attachment["type"] == "image/svg+xml":
            assert attachment["source"].endswith(".svg"), attachment
            root = ET.fromstring((results / attachment["source"]).read_text())
            assert root.tag == f"{SVG}svg"
            titles[attachment["name"]] = root.findtext(f"{SVG}title")
    assert titles == {
        "plot: error ratio: component:search": "error ratio < 0.01",
        "plot: p95 latency: component:search": "p95 latency <= baseline +20 %",
    }
    names = [a["name"] for a in step["attachments"]]  # each plot right after its rule's JSON evidence
    assert names == [
        "metric rule: error ratio: component:search",
        "plot: error ratio: component:search",
        "metric rule: p95 latency: component:search",
        "plot: p95 latency: component:search",
    ]


HEAD = "name: prod\n"
PROMETHEUS = "metrics: {prometheus: {url: 'http://127.0.0.1:9090'}}\n"
QUERY = "'rate(http_requests_total{service=\"{component}\"}[1m])'"


def component(rule: str) -> str:
    return f"components:\n  - name: web\n    kind: endpoint\n    metrics:\n      - {rule}\n"


CONFIG_CASES = [
    (
        "metric rules without a Prometheus",
        HEAD + component(f"{{name: rate, query: {QUERY}, threshold: {{op: '<', value: 1}}}}"),
        [
            "environments/prod.yaml:6: components[0].metrics: metric rules need a Prometheus to query: add metrics: "
            "{prometheus: {url: ...}} to the environment"
        ],
    ),
    (
        "a placeholder outside a quoted string",
        HEAD + PROMETHEUS + component("{name: rate, query: 'up{service={component}}', threshold: {op: '<', value: 1}}"),
        [
            "environments/prod.yaml:7: components[0].metrics[0].query: placeholder {component} at column 12 of query "
            "'up{service={component}}' is outside a quoted string: write it as a label value, e.g. "
            'service="{component}"'
        ],
    ),
    (
        "a placeholder the component has no value for",
        HEAD + PROMETHEUS + component("{name: rate, query: 'up{ns=\"{namespace}\"}', threshold: {op: '<', value: 1}}"),
        [
            "environments/prod.yaml:7: components[0].metrics[0].query: placeholder {namespace} at column 8 of query "
            "'up{ns=\"{namespace}\"}' has no value (the values given: component, release)"
        ],
    ),
    (
        "both a threshold and a baseline",
        HEAD
        + PROMETHEUS
        + component(f"{{name: rate, query: {QUERY}, threshold: {{op: '<', value: 1}}, baseline: {{}}}}"),
        [
            "environments/prod.yaml:7: components[0].metrics[0]: give exactly one of threshold ({op, value}) or "
            "baseline ({op, tolerance})"
        ],
    ),
    (
        "a window shorter than its step",
        HEAD
        + PROMETHEUS
        + component(f"{{name: rate, query: {QUERY}, threshold: {{op: '<', value: 1}}, window: 5s, step: 10s}}"),
        [
            "environments/prod.yaml:7: components[0].metrics[0]: metric rule 'rate': need step > 0 and window >= "
            "step (window 5s, step 10s)"
        ],
    ),
    (
        "an operator that is not one",
        HEAD + PROMETHEUS + component(f"{{name: rate, query: {QUERY}, threshold: {{op: '=<', value: 1}}}}"),
        ["environments/prod.yaml:7: components[0].metrics[0].threshold.op: '=<' is not one of: <, <=, >, >="],
    ),
    (
        "a misspelt rule key",
        HEAD + PROMETHEUS + component(f"{{name: rate, query: {QUERY}, treshold: {{op: '<', value: 1}}}}"),
        [
            "environments/prod.yaml:7: components[0].metrics[0].treshold: unknown key; allowed keys: aggregate, "
            "baseline, min_samples, name, query, step, threshold, window"
        ],
    ),
]


@pytest.mark.parametrize(("text", "messages"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_invalid_metric_rules_are_reported_word_for_word(tmp_path: Path, text: str, messages: list[str]) -> None:
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "prod.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_environment("prod", env_dir)
    assert caught.value.problems == messages


def test_a_valid_rule_loads_into_a_metric_rule_and_the_timeout_into_the_budget(tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    rule = f"{{name: p95, query: {QUERY}, baseline: {{tolerance: {{ratio: 0.2, absolute: 0.01}}}}, window: 2m}}"
    (env_dir / "prod.yaml").write_text(
        HEAD + PROMETHEUS + "defaults: {timeouts: {prometheus_request: 4s}}\n" + component(rule)
    )
    env = load_environment("prod", env_dir)
    loaded = env.components[0].metrics[0].rule()
    assert (loaded.kind, loaded.op, loaded.window, loaded.step, loaded.min_samples) == ("baseline", "<=", 120, 10, 3)
    assert loaded.condition() == "<= baseline +max(20 %, 0.01)"
    assert env.budget_deadline().calls.prometheus_request == 4.0
    assert env.components[0].metric_labels() == {"component": "web", "release": "web"}


def test_each_member_of_a_selection_fills_the_rule_with_its_own_names(tmp_path: Path) -> None:
    """A `select:` component's rules run once per member, each query with that member's workload, namespace and
    cluster, and the selection's name: a bad rule on one worker is that worker's red test, not the selection's."""
    from deploy_verify.selection import Member, Resolved, expand

    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    query = 'max(consumer_lag{namespace="{namespace}", group="{workload}", cluster="{cluster}", set="{selection}"})'
    (env_dir / "prod.yaml").write_text(
        HEAD
        + PROMETHEUS
        + "clusters:\n  aks-a: {context: a}\n  aks-b: {context: b}\n"
        + "components:\n  - name: workers\n    kind: deployment\n    cluster: aks-a\n"
        + "    select: {clusters: all, namespaces: [jobs], labels: tier=worker}\n"
        + f"    metrics:\n      - {{name: lag, query: '{query}', threshold: {{op: '<', value: 1000}}}}\n"
    )
    env = load_environment("prod", env_dir)
    members = (
        Member("billing@aks-a", "deployment", "billing", None, cluster="aks-a", namespace="jobs"),
        Member("billing@aks-b", "deployment", "billing", None, cluster="aks-b", namespace="jobs"),
        Member("mailer@aks-a", "deployment", "mailer", None, cluster="aks-a", namespace="jobs"),
    )
    expanded = expand(env, {"workers": Resolved(members)})
    queries = {c.name: c.metrics[0].rule().filled(c.metric_labels()) for c in expanded.components}
    assert queries == {
        "billing@aks-a": 'max(consumer_lag{namespace="jobs", group="billing", cluster="aks-a", set="workers"})',
        "billing@aks-b": 'max(consumer_lag{namespace="jobs", group="billing", cluster="aks-b", set="workers"})',
        "mailer@aks-a": 'max(consumer_lag{namespace="jobs", group="mailer", cluster="aks-a", set="workers"})',
    }
