"""Per-test bookkeeping done once (deploy_verify.pertest, and the -m targets in deploy_verify.collection): the same
answers as before, found with less work. Each short cut is checked against the thing it stands in for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from allure_commons import model2
from allure_commons.logger import AllureFileLogger

from deploy_verify.pertest import FileWriter, cached_step_lookup, write_item
from tests.test_extension import TOY_FEATURE, project, run_quota  # noqa: F401  # the team-repository fixture

ROOT = Path(__file__).resolve().parent.parent


# --- the step lookup -------------------------------------------------------------------------------------------


def _node(parent_id: str) -> SimpleNamespace:
    return SimpleNamespace(parent=SimpleNamespace(nodeid=parent_id))


def _step(kind: str, text: str) -> SimpleNamespace:
    return SimpleNamespace(type=kind, name=text)


def test_a_step_is_looked_up_once_per_feature_file_and_text() -> None:
    calls: list[tuple[str, str]] = []

    def find(step, manager, node):
        calls.append((node.parent.nodeid, step.name))
        return [f"def of {step.name} in {node.parent.nodeid}"]

    lookup = cached_step_lookup(find, registry={})
    manager = object()
    for _ in range(3):  # three tests of each of two feature files
        for feature in ("features/a.feature", "features/b.feature"):
            assert list(lookup(_step("when", "read"), manager, _node(feature))) == [f"def of read in {feature}"]
            assert list(lookup(_step("then", "read"), manager, _node(feature))) == [f"def of read in {feature}"]
    assert calls == [
        ("features/a.feature", "read"), ("features/a.feature", "read"),
        ("features/b.feature", "read"), ("features/b.feature", "read"),
    ]  # fmt: skip  # once per (file, type, text): a When and a Then of the same words are different steps


def test_a_step_definition_registered_later_is_seen() -> None:
    registry: dict[str, str] = {"read": "first"}
    lookup = cached_step_lookup(lambda step, manager, node: [registry[step.name]], registry)
    manager = object()
    assert list(lookup(_step("when", "read"), manager, _node("f"))) == ["first"]
    registry["late"] = "a plugin imported late"
    registry["read"] = "overridden"
    assert list(lookup(_step("when", "read"), manager, _node("f"))) == ["overridden"]


def test_no_step_found_is_remembered_as_none_found() -> None:
    calls: list[int] = []

    def find(step, manager, node):
        calls.append(1)
        return []

    lookup = cached_step_lookup(find, registry={})
    for _ in range(2):
        assert list(lookup(_step("given", "nothing matches"), object, _node("f"))) == []
    assert calls == [1]


TOY_OVERRIDE = """
from pytest_bdd import then


@then("it is within its limit")
def strictly_within_limit(quota_results, component):
    raise AssertionError(f"strict directory: {component.name} may use no quota at all")
"""


def test_a_step_a_directory_overrides_applies_only_to_that_directory(project) -> None:  # noqa: F811
    """The same step text under features/ and under features/strict/ with its own definition: each feature file's
    tests get their own directory's definition, however many tests ran before them."""
    strict = project.path / "features" / "strict"
    strict.mkdir()
    (strict / "quota.feature").write_text(TOY_FEATURE)
    (strict / "conftest.py").write_text(TOY_OVERRIDE)
    result = run_quota(project, "-m", "quota", "-rA")
    outcomes = {
        line.split()[1]: line.split()[0] for line in result.outlines if line.split()[:1] in (["PASSED"], ["FAILED"])
    }
    assert outcomes == {
        "features/quota.feature::test_the_quota_holds[local/broken]": "FAILED",
        "features/quota.feature::test_the_quota_holds[local/web]": "PASSED",
        "features/strict/quota.feature::test_the_quota_holds[local/broken]": "FAILED",
        "features/strict/quota.feature::test_the_quota_holds[local/web]": "FAILED",
    }, result.stdout.str()
    result.stdout.fnmatch_lines(["*strict directory: web may use no quota at all*"])


# --- the Allure writer -----------------------------------------------------------------------------------------


def _result() -> model2.TestResult:
    step = model2.TestStepResult(
        name="When the workload's rollout is watched", status=model2.Status.PASSED, start=1, stop=2
    )
    return model2.TestResult(
        uuid="u-1", name="The rollout completes [bench/app-0001 — é, ✓]", status=model2.Status.PASSED,
        labels=[model2.Label(name="component", value="app-0001")], steps=[step], start=1, stop=3,
    )  # fmt: skip


@pytest.mark.parametrize("indent", ["", "1"])
def test_the_allure_writer_writes_what_allure_writes(tmp_path: Path, monkeypatch, indent: str) -> None:
    if indent:
        monkeypatch.setenv("ALLURE_INDENT_OUTPUT", indent)
    else:
        monkeypatch.delenv("ALLURE_INDENT_OUTPUT", raising=False)
    theirs, ours, threaded = tmp_path / "theirs", tmp_path / "ours", tmp_path / "threaded"
    AllureFileLogger(theirs).report_result(_result())
    ours.mkdir()
    write_item(ours, _result())
    threaded.mkdir()
    writer = FileWriter()
    write_item(threaded, _result(), writer)
    writer.flush()
    [their_file], [our_file], [thread_file] = (list(d.iterdir()) for d in (theirs, ours, threaded))
    assert thread_file.read_bytes() == their_file.read_bytes()
    assert our_file.name.endswith("-result.json")
    assert their_file.name.endswith("-result.json")
    assert our_file.read_bytes() == their_file.read_bytes()
    assert json.loads(our_file.read_text(encoding="utf8"))["name"].endswith("é, ✓]")


def test_the_writer_keeps_order_and_says_when_a_file_could_not_be_written(tmp_path: Path) -> None:
    writer = FileWriter()
    for i in range(200):
        writer.write(tmp_path / f"{i:03d}-result.json", f'{{"i": {i}}}')
    writer.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i:03d}-result.json" for i in range(200)]  # no .tmp
    writer.write(tmp_path / "gone" / "x-result.json", "{}")  # a directory that does not exist
    with pytest.raises(RuntimeError, match=r"^Allure results could not be written: .*No such file or directory"):
        writer.flush()
    writer.flush()  # said once; the writer goes on
    writer.write(tmp_path / "after-result.json", "{}")
    writer.flush()
    assert (tmp_path / "after-result.json").read_text() == "{}"


# --- the targets -m can select ---------------------------------------------------------------------------------

ENV = """\
name: plain
clusters: {a: {context: a}, b: {context: b}}
components:
  - {name: web, kind: endpoint, health: [{url: 'http://127.0.0.1:9/'}], tls: [{host: web.example.test}]}
  - {name: api, kind: deployment, cluster: a, namespace: shop}
  - {name: db, kind: statefulset, cluster: b, namespace: data}
  - {name: agent, kind: daemonset, cluster: a, namespace: ops}
"""

# pytest's own -m, applied by a plugin to everything collected without -m: the oracle the pruned collection must match.
ORACLE = """
import os
import pytest
from _pytest.mark import MarkMatcher
from _pytest.mark.expression import Expression


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    expression = Expression.compile(os.environ["ORACLE_M"])
    items[:] = [i for i in items if expression.evaluate(MarkMatcher.from_markers(i.iter_markers()))]
"""


def _ids(repo: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    command = [sys.executable, "-m", "pytest", "features", "--env", "plain", "--co", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, *args], cwd=repo, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(repo)]), **(env or {})},
    )  # fmt: skip
    assert done.returncode in (0, 5), done.stdout + done.stderr
    return sorted(line for line in done.stdout.splitlines() if "::" in line)


@pytest.mark.parametrize(
    "expression",
    [
        "rollout",
        "postdeploy and deployment",
        "(pods or image) and not statefulset",
        "nodes",
        "postdeploy and not (rollout or endpoint)",
        "smoke or tls",
        "predeploy",
        "http and deployment",  # no target at all: nothing, and no error
    ],
)
def test_targets_are_built_only_where_m_can_select_them(tmp_path: Path, expression: str) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "features").mkdir()
    (tmp_path / "environments" / "plain.yaml").write_text(ENV)
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    (tmp_path / "oracle.py").write_text(ORACLE)
    pruned = _ids(tmp_path, "-m", expression)
    everything = _ids(tmp_path, "-p", "oracle", env={"ORACLE_M": expression})
    assert pruned == everything
    if expression == "rollout":
        assert pruned == [
            "deploy_verify/kubernetes.feature::test_the_rollout_completes[plain/agent]",
            "deploy_verify/kubernetes.feature::test_the_rollout_completes[plain/api]",
            "deploy_verify/kubernetes.feature::test_the_rollout_completes[plain/db]",
        ]


def test_the_pruned_collection_says_nothing_of_the_targets_it_did_not_build(tmp_path: Path) -> None:
    """500 Deployments with -m rollout: 500 tests built, not the seven of every family of a workload."""
    lines = ["name: plain", "clusters: {a: {context: a}}", "components:"]
    lines += [f"  - {{name: app-{i:03d}, kind: deployment, cluster: a, namespace: ns}}" for i in range(500)]
    (tmp_path / "environments").mkdir()
    (tmp_path / "features").mkdir()
    (tmp_path / "environments" / "plain.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    command = [sys.executable, "-m", "pytest", "features", "--env", "plain", "--co", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run([*command, "-m", "rollout"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("500/"), summary
    built = int(summary.split("/")[1].split()[0])
    assert built < 520, summary  # 500 and the deselected placeholders of scenarios with no target


def test_step_signatures_are_read_once_per_step_function() -> None:
    import importlib
    import inspect

    from deploy_verify.pertest import install_signature_cache

    install_signature_cache()
    utils = importlib.import_module("pytest_bdd.utils")

    def step(verify, component, within: str = "5 minutes"):
        pass

    assert utils.signature(step) == inspect.signature(step)
    assert utils.signature(step) is utils.signature(step)
    assert utils.get_required_args(step) == ["verify", "component"]


# --- whether -n paid off ---------------------------------------------------------------------------------------


def _workers(work: float, start_up: float, count: int = 2):
    from deploy_verify.workers import Workers

    ids = [f"gw{i}" for i in range(count)]
    return Workers(started=dict.fromkeys(ids, 100.0), ready=dict.fromkeys(ids, 100.0 + start_up), work=work)


def test_workers_that_cost_more_than_they_saved_are_named_with_the_numbers() -> None:
    line = _workers(work=1.6, start_up=1.0).verdict()
    assert line == (
        "-n 2 did not pay off here: the tests' own work was 1.6s in all, which 2 workers could cut by at most 0.8s, "
        "and starting them (import, environment, collection) took 1.0s; one process (-n 0) would have been faster "
        "by at least 0.2s. Workers help when the tests wait on the network (docs/sharding.md, 'Workers (-n) or "
        "shards?')"
    )


@pytest.mark.parametrize(
    ("work", "start_up", "count"),
    [
        (30.0, 1.0, 2),  # network waits: 15 s saved for 1 s of start-up
        (2.0, 1.0, 2),  # exactly even: nothing to say
        (5.0, 1.0, 1),  # one worker: nothing spread, nothing to compare
        (0.0, 1.0, 2),  # no test ran
    ],
)
def test_workers_that_paid_off_or_cannot_be_judged_say_nothing(work: float, start_up: float, count: int) -> None:
    assert _workers(work, start_up, count).verdict() is None


def test_the_slowest_worker_s_start_up_is_the_one_waited_for() -> None:
    from deploy_verify.workers import Workers

    workers = Workers(started={"gw0": 10.0, "gw1": 10.2}, ready={"gw0": 11.0, "gw1": 12.7})
    assert workers.start_up() == pytest.approx(2.5)


# --- the test's Allure description, in one update ---------------------------------------------------------------

DESCRIBED = """\
name: plain
protected: true
links: {dashboard: "https://grafana.example.test/d/estate"}
components:
  - name: web
    kind: endpoint
    health: [{url: 'http://127.0.0.1:9/health'}]
    links: {runbook: "https://runbooks.example.test/web"}
  - {name: api, kind: endpoint, health: [{url: 'http://127.0.0.1:9/'}]}
"""

# The ten allure.dynamic calls the suite made per test before describe_test, put back for the comparison.
DYNAMIC = """
import deploy_verify.allure_meta as meta


def pytest_configure(config):
    def described(config, run, target, kind, feature, scenario):
        meta.label_test(run.env.name, target, kind, feature, scenario)
        meta.record_test(run, target, meta.phases_of(config.getoption("markexpr") or ""))

    meta.describe_test = described
"""


def _described(repo: Path, reports: str, *args: str) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "pytest", "features", "--env", "plain", "-m", "postdeploy", "-q"]
    command += ["-p", "no:cacheprovider", f"--reports-dir={reports}", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(repo)])}
    subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120, check=False, env=env)
    results = [json.loads(p.read_text()) for p in (repo / reports / "allure-results").glob("*-result.json")]
    for r in results:
        # The thread label names the process (its pid), and allure adds the scenario's tags from a set, in an order
        # that differs between any two runs; what the suite adds is compared, not allure's order.
        r["labels"] = sorted((x["name"], x["value"]) for x in r["labels"] if x["name"] != "thread")
    keep = ("name", "labels", "parameters", "links")
    return sorted(({k: r.get(k) for k in keep} for r in results), key=lambda r: str(r["name"]))


def test_one_update_describes_a_test_as_the_ten_dynamic_calls_did(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "features").mkdir()
    (tmp_path / "environments" / "plain.yaml").write_text(DESCRIBED)
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    (tmp_path / "dynamic_describe.py").write_text(DYNAMIC)
    now = _described(tmp_path, "now")
    before = _described(tmp_path, "before", "-p", "dynamic_describe")
    assert len(now) == 2
    assert now == before
    web = next(r for r in now if "[plain/web]" in str(r["name"]))
    assert web["name"] == "Health endpoints answer healthy after the deploy [plain/web]"
    assert ("severity", "blocker") in web["labels"]
    assert [link["name"] for link in web["links"]] == ["runbook", "dashboard"]
