"""The soak (deploy_verify.soak): a post-deploy run that holds its verdict, looking again at the fast checks and the
metric rules, and goes red at the first failure with the time it happened.

End to end, `pytest features --soak ...` in a subprocess against a real Prometheus (testbed.metrics) scraping the
demo exporter on ephemeral loopback ports, judged from verdict.json and the terminal; the schedule, the plan and the
loop on their own with a clock and checks the test controls."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import CheckResult, Verdict
from deploy_verify.config import ConfigError, Environment, load_environment
from deploy_verify.soak import Look, Plan, SoakError, decode_looks, encode_looks, hold, human, plan_of, schedule
from testbed.metrics import Behaviour, DemoExporter, Prometheus

ROOT = Path(__file__).resolve().parent.parent
ERROR_RATIO = (
    'sum(rate(http_requests_total{service="{component}",code=~"5.."}[3s]))'
    ' / sum(rate(http_requests_total{service="{component}"}[3s]))'
)
RULE = f"      - {{name: error ratio, query: '{ERROR_RATIO}', threshold: {{op: '<', value: 0.01}}, window: 4s, step: 1s}}\n"
SERVICES = ("steady", "flaky", "broken")


@dataclass(frozen=True)
class World:
    prometheus: Prometheus
    exporter: DemoExporter


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with (
        DemoExporter(list(SERVICES)) as exporter,
        Prometheus([exporter.target], tmp_path_factory.mktemp("prometheus")) as prometheus,
    ):
        prometheus.wait_for_samples('http_requests_total{code="200"}', minimum=len(SERVICES), timeout=30)
        exporter.set("broken", Behaviour.ERRORS)
        time.sleep(4 + 3 + 1.5)  # the window, the rate() behind its first point, a scrape of slack
        yield World(prometheus, exporter)


def project(tmp_path: Path, world: World, services: tuple[str, ...], soak: str = "") -> Path:
    repo = tmp_path / "repo"
    for folder in ("features", "environments", "reports"):
        (repo / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "pyproject.toml", repo)
    components = "".join(f"  - name: {name}\n    kind: endpoint\n    metrics:\n{RULE}" for name in services)
    (repo / "environments" / "local.yaml").write_text(
        f"name: local\nbudget: 1m\nmetrics:\n  prometheus: {{url: '{world.prometheus.url}'}}\n{soak}"
        f"defaults: {{timeouts: {{prometheus_request: 3s}}}}\ncomponents:\n{components}"
    )
    return repo


@dataclass
class Ran:
    code: int
    output: str
    verdict: dict
    took: float

    def rows(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {(t["component"], t["check"]): (t["outcome"], t["message"]) for t in self.verdict["tests"]}


def suite(repo: Path, *args: str, when_soaking: threading.Event | None = None, timeout: float = 120) -> Ran:
    """Run the metrics scenario; `when_soaking` is set once the run says it holds the verdict."""
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", "features", "-m", "postdeploy", "-p", "no:cacheprovider", *args]
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if when_soaking is not None and line.startswith("soak: holding the verdict"):
            when_soaking.set()
    code = process.wait(timeout=timeout)
    took = time.monotonic() - started
    output = "".join(lines)
    verdict = repo / "reports" / "verdict.json"
    assert verdict.is_file(), output[-3000:]
    return Ran(code, output, json.loads(verdict.read_text()), took)


def allure_soak(repo: Path) -> list[dict]:
    results = repo / "reports" / "allure-results"
    found = [json.loads(path.read_text()) for path in results.glob("*-result.json")]
    return [r for r in found if r.get("fullName", "").startswith("soak::")]


# --- end to end, against a real Prometheus ---------------------------------------------------------------------


def test_a_steady_service_holds_through_the_soak_and_each_look_is_printed(world: World, tmp_path: Path) -> None:
    repo = project(tmp_path, world, ("steady",), soak="soak: {duration: 1m, every: 2s}\n")
    ran = suite(repo, "--soak", "6s")  # the command line's duration, the environment's interval
    assert ran.code == 0, ran.output[-3000:]
    soak = ran.verdict["soak"]
    assert (soak["outcome"], soak["rounds"], soak["checks"], soak["held_s"]) == ("held", 3, 1, 6.0)
    assert soak["source"] == "--soak 6s"
    assert soak["failed_at"] is None
    for look in (1, 2, 3):
        assert f"soak: look {look} held (1 check); " in ran.output
    assert "soak held for 6s: 3 looks at 1 check, every 2s (--soak 6s)" in ran.output
    assert "GATE GREEN: 1 passed, held for 6s in environment 'local'" in ran.output
    [record] = allure_soak(repo)
    assert record["status"] == "passed"
    assert [s["name"] for s in record["steps"]] == [f"look {n}: held (1 check)" for n in (1, 2, 3)]
    assert 6 <= ran.took < 30, ran.took


def test_a_degradation_in_the_middle_of_the_soak_is_red_at_that_time_not_at_the_end(
    world: World, tmp_path: Path
) -> None:
    repo = project(tmp_path, world, ("steady", "flaky"), soak="soak: {duration: 40s, every: 2s}\n")
    soaking = threading.Event()

    def degrade() -> None:
        soaking.wait(60)
        time.sleep(6)
        world.exporter.set("flaky", Behaviour.ERRORS)

    thread = threading.Thread(target=degrade, daemon=True)
    thread.start()
    try:
        ran = suite(repo, when_soaking=soaking)
    finally:
        thread.join(70)
        world.exporter.set("flaky", Behaviour.HEALTHY)
    assert ran.code == 1, ran.output[-3000:]
    soak = ran.verdict["soak"]
    assert soak["outcome"] == "failed", soak
    assert soak["source"] == "the soak of environment 'local'"
    assert 3 <= soak["rounds"] < 15, soak  # seen within a few looks of the change, not at look 20 (the end)
    assert ran.took < 40, ran.took  # red at the failure: the run did not wait out the window
    rows = ran.rows()
    assert rows[("steady", "service_metrics")][0] == "pass"
    assert rows[("flaky", "service_metrics")][0] == "pass"
    outcome, message = rows[("flaky", "soak")]
    assert outcome == "fail"
    when = rf"at \d\d:\d\d:\d\dZ, (\d+(\.\d)?)s into the 40s soak \(look {soak['rounds']}\)"
    assert re.match(rf"component:flaky: failed {when}: error ratio: 0\.\d+ .*not < 0\.01", message)
    assert 'query \'sum(rate(http_requests_total{service="flaky",code=~"5.."}[3s]))' in message
    assert ("steady", "soak") not in rows  # only what failed is a row of the soak
    assert "soak: FAILED at " in ran.output
    assert ran.verdict["verdict"] == "red"
    [record] = allure_soak(repo)
    assert record["status"] == "failed"
    assert record["name"] == "The deployment holds through the soak [local]"
    assert [s["status"] for s in record["steps"]] == ["passed"] * (soak["rounds"] - 1) + ["failed"]
    kinds = {a["type"] for a in record["steps"][-1]["attachments"]}
    assert kinds == {"application/json", "image/svg+xml"}  # the rule's numbers and its plot, on the red look
    assert record["statusDetails"]["trace"].endswith("\ncategory: Service metrics degraded")
    assert f"soak FAILED {message.split('failed ', 1)[1].split(': error ratio')[0]}: 1 check no longer holds" in (
        ran.output
    )


def test_a_run_that_is_red_before_the_soak_does_not_soak(world: World, tmp_path: Path) -> None:
    repo = project(tmp_path, world, ("steady", "broken"))
    ran = suite(repo, "--soak", "30s")
    assert ran.code == 1
    assert ran.verdict["soak"]["outcome"] == "not started"
    assert ran.verdict["soak"]["reason"] == ("soak of 30s not started: the run is red before it; a red run is not held")
    assert ran.rows()[("broken", "service_metrics")][0] == "fail"
    assert ran.took < 25, ran.took


def plan_only(tmp_path: Path, soak: str = "") -> Path:
    """A repository whose one component is a saved, empty drift plan: a check no soak looks at again."""
    repo = tmp_path / "repo"
    for folder in ("features", "environments", "reports"):
        (repo / folder).mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", repo)
    plan = repo / "plan.json"
    plan.write_text(json.dumps({"format_version": "1.2", "resource_changes": [], "resource_drift": []}))
    (repo / "environments" / "local.yaml").write_text(
        f"name: local\nbudget: 1m\n{soak}components:\n  - {{name: network, kind: terraform, plan_json: {plan}}}\n"
    )
    return repo


def test_a_soak_asked_for_with_nothing_to_look_at_is_an_error(tmp_path: Path) -> None:
    ran = suite(plan_only(tmp_path), "--soak", "5s")
    assert ran.code == 1, ran.output[-2000:]
    assert ran.rows()[("network", "infrastructure_no_drift")][0] == "pass"  # a plan is not looked at again
    outcome, message = ran.rows()[("-", "soak")]
    assert outcome == "error"
    assert message.startswith(
        "--soak 5s: no passed post-deploy test has a check a soak looks at again (apim, argocd, certificate, "
    ), message
    assert message.endswith("); select them with -m postdeploy")
    assert ran.took < 20


def test_the_environment_s_soak_is_not_held_by_a_run_with_nothing_to_hold(tmp_path: Path) -> None:
    """A pre-deploy run (here: a drift plan) in an environment with a soak: no soak, no delay, nothing said."""
    ran = suite(plan_only(tmp_path, soak="soak: {duration: 10m}\n"))
    assert ran.code == 0, ran.output[-2000:]
    assert "soak" not in ran.verdict
    assert ran.took < 20


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (
            "ten minutes",
            "--soak ten minutes: expected a duration like 30s, 5m or 250ms, got 'ten minutes'; or 0 for no soak",
        ),
        ("-5m", "--soak -5m: expected a duration like 30s, 5m or 250ms, got '-5m'; or 0 for no soak"),
    ],
)
def test_a_soak_that_is_not_a_duration_is_refused_before_anything_runs(tmp_path: Path, value: str, said: str) -> None:
    repo = tmp_path / "repo"
    for folder in ("features", "environments"):
        (repo / folder).mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", repo)
    (repo / "environments" / "local.yaml").write_text(
        "name: local\ncomponents:\n  - {name: web, kind: endpoint, health: [{url: 'http://127.0.0.1:9/'}]}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "features", f"--soak={value}", "-p", "no:cacheprovider"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"ERROR: {said}" in done.stderr, done.stderr


# --- the plan, the schedule and the loop ---------------------------------------------------------------------


def env_with(soak: str, tmp_path: Path) -> Environment:
    (tmp_path / "local.yaml").write_text(
        f"name: local\n{soak}components:\n  - {{name: web, kind: endpoint, health: [{{url: 'http://127.0.0.1:9/'}}]}}\n"
    )
    return load_environment("local", tmp_path)


def test_the_command_line_overrides_the_environment_s_duration_and_keeps_its_interval(tmp_path: Path) -> None:
    env = env_with("soak: {duration: 10m, every: 1m}\n", tmp_path)
    assert plan_of(None, env) == Plan(600, 60, "the soak of environment 'local'", explicit=False)
    assert plan_of("20m", env) == Plan(1200, 60, "--soak 20m", explicit=True)
    assert plan_of("30s", env) == Plan(30, 30, "--soak 30s", explicit=True)  # never an interval past the end
    for off in ("0", "off", "OFF", "none", "no"):
        assert plan_of(off, env) is None
    bare = env_with("", tmp_path)
    assert plan_of(None, bare) is None
    assert plan_of("5m", bare) == Plan(300, 30, "--soak 5m", explicit=True)
    with pytest.raises(SoakError, match=r"^--soak 5 minutes later: expected a duration like 30s"):
        plan_of("5 minutes later", bare)


def test_an_interval_longer_than_the_soak_is_refused_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        env_with("soak: {duration: 1m, every: 2m}\n", tmp_path)
    assert "local.yaml:2" in str(caught.value)
    assert "every (120s) is longer than the soak's duration (60s)" in str(caught.value)


@pytest.mark.parametrize(
    ("duration", "every", "offsets"),
    [(6, 2, [2, 4, 6]), (5, 2, [2, 4, 5]), (2, 2, [2]), (1, 30, [1]), (0.9, 0.3, [0.3, 0.6, 0.9])],
)
def test_looks_come_every_interval_and_the_last_at_the_end_of_the_window(
    duration: float, every: float, offsets: list[float]
) -> None:
    assert schedule(Plan(duration, every, "--soak", True)) == pytest.approx(offsets)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def looks_failing_from(round_: int, clock: Clock, seen: list[float]):
    def evaluate(looks: list[Look], _calls: Deadline) -> list[tuple[Look, list[CheckResult]]]:
        seen.append(clock.now)
        verdict = Verdict.FAIL if len(seen) >= round_ else Verdict.PASS
        return [(look, [CheckResult("rollout_complete", f"deployment:{look.target}", verdict, "3 of 4 ready")])
                for look in looks]  # fmt: skip

    return evaluate


def test_the_loop_stops_at_the_first_failing_look_and_says_when() -> None:
    clock, seen, said = Clock(), list[float](), list[str]()
    looks = [Look("rollout", "web"), Look("rollout", "api")]
    outcome = hold(
        Plan(60, 10, "--soak 1m", True), looks, looks_failing_from(3, clock, seen), said.append,
        calls=Deadline.after(70), clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert seen == [10, 20, 30]  # no look after the failing one
    assert (outcome.state, outcome.rounds, outcome.failed_round, len(outcome.failed)) == ("failed", 3, 3, 2)
    assert [look.target for look, _ in outcome.failed] == ["web", "api"]
    assert outcome.held == 20
    assert said[0] == "soak: holding the verdict for 1m, looking at 2 checks every 10s (--soak 1m)"
    assert said[1:3] == ["soak: look 1 held (2 checks); 10s of 1m", "soak: look 2 held (2 checks); 20s of 1m"]
    assert said[3].startswith("soak: FAILED at ")
    assert said[3].endswith(": deployment:web: 3 of 4 ready")


def test_the_loop_holds_only_when_every_look_of_the_window_held() -> None:
    clock, seen = Clock(), list[float]()
    outcome = hold(
        Plan(25, 10, "--soak 25s", True), [Look("pods", "web")], looks_failing_from(99, clock, seen), lambda _: None,
        calls=Deadline.after(40), clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert seen == [10, 20, 25]
    assert (outcome.state, outcome.rounds, outcome.held, outcome.failed) == ("held", 3, 25, [])
    assert outcome.document()["outcome"] == "held"


def test_looks_travel_as_text_and_come_back_equal() -> None:
    looks = [
        Look("rollout", "web", wait="rollout"),
        Look("tls", "cluster:a", within="2 minutes", options=(("x", 1.5),)),
    ]
    assert decode_looks(encode_looks(looks)) == looks


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(4.5, "4.5s"), (30, "30s"), (8.01, "8s"), (59.97, "1m"), (90, "1m30s"), (600, "10m"), (3900, "1h5m")],
)
def test_soak_times_are_said_as_people_write_them(seconds: float, said: str) -> None:
    assert human(seconds) == said


def test_a_required_soak_needs_an_environment_to_promote_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        env_with("requires_soak: 15m\n", tmp_path)
    assert caught.value.problems == [
        f"{tmp_path.name}/local.yaml:2: requires_soak: a soak is required of the environment promoted from: set "
        "promotes_from"
    ]
    assert env_with("promotes_from: staging\nrequires_soak: 15m\n", tmp_path).requires_soak == 900


def test_a_soak_stopped_at_the_terminal_is_red_and_says_it_was_not_held(world: World, tmp_path: Path) -> None:
    repo = project(tmp_path, world, ("steady",), soak="soak: {duration: 1m, every: 2s}\n")
    command = [sys.executable, "-m", "pytest", "features", "-m", "postdeploy", "-p", "no:cacheprovider"]
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("soak: look 1 held"):
            process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert process.wait(timeout=30) == 1, "".join(output)[-2000:]
    verdict = json.loads((repo / "reports" / "verdict.json").read_text())
    assert verdict["soak"]["outcome"] == "interrupted"
    [row] = [t for t in verdict["tests"] if t["check"] == "soak"]
    assert row["outcome"] == "error"
    assert re.fullmatch(
        r"the soak of environment 'local': soak of 1m interrupted \d(\.\d)?s into it: not held", row["message"]
    ), row["message"]
    assert verdict["verdict"] == "red"
