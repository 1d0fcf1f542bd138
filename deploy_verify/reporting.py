"""Outcomes and reports: FAIL vs ERROR, the report category, the summary, verdict.json, the baseline file and the
Allure extras. The controller alone writes the run-level files."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import threading
import time
import traceback
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from deploy_verify import allure_meta, gate, selection, soak
from deploy_verify.baseline import STATE_PROPERTY, write_baseline
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.clients import AzureClients, KubeClients
from deploy_verify.collection import family_of, scenario_of
from deploy_verify.family import CLUSTER_PREFIX, FAMILIES, Family
from deploy_verify.fixtures import terminal_line
from deploy_verify.kinds import KINDS, Clients
from deploy_verify.run import LOOKS, RECORDED, RESULTS, RUN, Run
from deploy_verify.verdicts import Undecided, red_worst_first, summarize


def category_of(family: Family | None, results: list[CheckResult], excinfo: Any) -> Category | None:
    """The category of a red test: that of its worst result (the first line of its message), or "Could not
    decide" for a refusal the suite raised itself; None for an exception the suite did not expect (a bug)."""
    bad = red_worst_first(results)
    if bad:
        worst = bad[0]
        if worst.category is not None:
            return worst.category
        if family is not None and worst.verdict is Verdict.FAIL:
            return family.category
        return Category.UNDECIDED
    if excinfo is not None and isinstance(excinfo.value, Undecided):
        return Category.UNDECIDED
    return None


# trylast: this wrapper sits inside allure's, so the longrepr it rewrites is the trace allure files the result by.
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Tag each report with component, check, verdict and category (they travel to the xdist controller), and keep
    the message short: the check's own words, not a traceback through pytest-bdd."""
    report: pytest.TestReport = yield
    run = item.config.stash.get(RUN, None)
    if run is None or "target_name" not in getattr(item, "fixturenames", ()):
        return report
    component = item.callspec.params.get("target_name") if hasattr(item, "callspec") else None
    family = family_of(item)
    scenario = scenario_of(item)[1]
    report.user_properties += [
        ("component", component),
        ("check", family.check if family else "?"),
        ("scenario", scenario),
    ]
    if report.passed and report.when == "call":
        report.user_properties.append(("message", summarize(item.stash.get(RESULTS, []))))
        if RECORDED in item.stash:
            report.user_properties.append((STATE_PROPERTY, item.stash[RECORDED]))
        if LOOKS in item.stash:
            report.user_properties.append((soak.LOOKS_PROPERTY, soak.encode_looks(item.stash[LOOKS])))
    if report.failed:
        verdict, message = gate.classify(call.excinfo, report.when)
        category = category_of(family, item.stash.get(RESULTS, []), call.excinfo)
        report.user_properties += [("verdict", verdict), ("message", message)]
        bad = red_worst_first(item.stash.get(RESULTS, []))
        if bad:  # where the leading reason is about: the summary says it once per line, not before every reason
            report.user_properties.append((WHERE, bad[0].target))
        if category is not None:
            report.user_properties.append(("category", category.value))
        if call.excinfo is not None and isinstance(call.excinfo.value, AssertionError | Undecided):
            filed = f"\n{allure_meta.CATEGORY_LINE}{category.value}" if category is not None else ""
            report.longrepr = f"{verdict.upper()} {item.nodeid}\n{message}{filed}"
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """A call that could not decide shows as ERROR (E), not as a failed assertion."""
    if report.when == "call" and report.failed and ("verdict", "error") in report.user_properties:
        return "error", "E", ("ERROR", {"red": True})
    return None


class GateRecorder:
    """Controller-side: collects one row per test from reports (its own or the workers') and writes the gate."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.where: dict[str, str] = {}  # nodeid -> the target its leading red reason is about

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        run = self.config.stash.get(RUN, None)
        if run is None:
            return
        gate.record(run.rows, report)
        props = dict(report.user_properties)
        if WHERE in props:
            self.where.setdefault(report.nodeid, str(props[WHERE]))
        if STATE_PROPERTY in props:
            run.recorded[str(props["component"])] = str(props[STATE_PROPERTY])
        elif props.get("check") == "baseline_recorded" and report.failed:
            run.unrecorded.append(str(props["component"]))
        if soak.LOOKS_PROPERTY in props:
            run.looks += soak.decode_looks(str(props[soak.LOOKS_PROPERTY]))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        run = self.config.stash.get(RUN, None)
        if run is None or self.config.option.collectonly:
            return
        self._write_baseline(run)
        deadline = run.deadline
        if run.soak is not None:
            deadline = self._soak(run, run.soak, int(exitstatus))
            if any(key.startswith(SOAK_ROW) for key in run.rows):  # a look failed, or there was nothing to look at
                session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
        if self._selections_changed(run, deadline):
            session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
        gate.write_verdict(run, exitstatus, self.config)
        if self.config.option.allure_report_dir:
            allure_meta.write(Path(self.config.option.allure_report_dir), run)

    def _soak(self, run: Run, plan: soak.Plan, exitstatus: int) -> Deadline | None:
        """Hold the verdict (deploy_verify.soak) when every test passed; a failure becomes a row of its own. Returns
        the deadline what follows may still use: after a soak, the run's budget is long spent, so one of its own."""
        if not run.looks and not plan.explicit:
            return run.deadline  # the environment's soak, in a run with nothing to hold (a pre-deploy run)
        rows = list(run.rows.values())
        if exitstatus != 0 or not rows or any(r.outcome != "pass" for r in rows):
            run.soaked = soak.Outcome(plan, not_started="the run is red before it; a red run is not held")
            return run.deadline
        if not run.looks:  # asked for, and nothing to hold: a gate that says it soaked must have soaked
            run.soaked = soak.Outcome(plan, not_started="no passed post-deploy test has a check a soak looks at")
            looked_at = ", ".join(sorted(f.tag for f in FAMILIES.values() if f.soak))
            message = f"{plan.source}: {run.soaked.not_started} again ({looked_at}); select them with -m postdeploy"
            run.rows["soak::-"] = soak_row("-", "error", Category.UNDECIDED.value, message)
            return run.deadline
        calls = Deadline.after(
            plan.duration + plan.every, f"soak of {soak.human(plan.duration)}", run.env.call_timeouts()
        )
        guard = LastResort(self.config, run, calls, "soak")
        guard.timer.start()
        begun = time.monotonic()
        try:
            say = terminal_line(self.config) or (lambda _line: None)
            run.soaked = soak.hold(plan, run.looks, soak.evaluator(run), say, calls=calls)
        except KeyboardInterrupt:  # Ctrl-C in the middle of the window: the verdict was not held, and says so
            run.soaked = soak.Outcome(plan, checks=len(run.looks), interrupted=time.monotonic() - begun)
            run.rows["soak::-"] = soak_row(
                "-", "error", Category.UNDECIDED.value, f"{plan.source}: {run.soaked.line()}"
            )
            return run.deadline
        finally:
            guard.timer.cancel()
        for look, result in run.soaked.failed:
            key = f"{SOAK_ROW}{look.family}::{look.target}::{result.target}"
            category = (result.category or FAMILIES[look.family].category).value
            message = f"{result.target}: failed {run.soaked.when()}: {result.message}"
            run.rows[key] = soak_row(look.target, result.verdict.value, category, message, key)
            self.where[key] = result.target
        return Deadline.after(
            min(run.env.budget, 120.0), "re-reading the selections after the soak", run.env.call_timeouts()
        )

    @staticmethod
    def _selections_changed(run: Run, deadline: Deadline | None) -> bool:
        """Read the selections again: a member that appeared while the tests ran was not verified, so the gate is
        red with a row saying so (a member that disappeared already failed its own checks)."""
        resolved = {name: r for name, r in run.resolution.items() if r.problem is None}
        if not resolved or deadline is None or deadline.expired():
            return False
        kube, azure = KubeClients(run.env), AzureClients(run.env, deadline)
        try:
            now = selection.resolve(
                run.env.model_copy(update={"components": list(run.env.selections.values())}),
                Clients(kube, azure),
                deadline,
            )
        finally:
            kube.close()
            azure.close()
        appeared = False
        for name in sorted(resolved):
            gained = sorted(set(now.get(name, selection.Resolved()).names) - set(resolved[name].names))
            if gained:
                appeared = True
                run.rows[f"selection::{name}"] = gate.Row(
                    name,
                    f"selection::{name}",
                    name,
                    "selection",
                    "The selection is what was verified",
                    outcome="error",
                    category=str(Category.UNDECIDED),
                    message=f"selection {name}: {', '.join(gained)} appeared after the tests were collected and "
                    "was not verified; run the gate again",
                )
        return appeared

    @staticmethod
    def _write_baseline(run: Run) -> None:
        """All or nothing: a baseline missing a component would mislead the rollback check that reads it."""
        assert run.baseline is not None
        if run.unrecorded:
            names = ", ".join(sorted(set(run.unrecorded)))
            run.baseline_note = f"baseline NOT written: could not record {names}; {run.baseline.path} is unchanged"
        elif run.recorded:
            written = write_baseline(run.baseline.path, run.env.name, run.release.release, run.recorded)
            run.baseline_note = f"baseline of {len(written.components)} components written to {run.baseline.path}"

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_print_gate(self, session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
        """The outermost sessionfinish (pytest reads hooks from pytest_* names only; specname says which): its tail
        runs after pytest's own summary and statistics line, so the component table and the GATE line are the last
        screen of the run, where a person reads first."""
        yield
        run = self.config.stash.get(RUN, None)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if run is None or reporter is None or self.config.option.collectonly or exitstatus not in SUMMARY_EXITS:
            return
        print_gate(reporter, run, exitstatus, self.config.getoption("markexpr") or "", self.where)


def soak_row(component: str, outcome: str, category: str, message: str, key: str = "soak::-") -> gate.Row:
    """A row of the gate for what the soak found: under the component whose look failed."""
    assert key.startswith(SOAK_ROW)
    return gate.Row(key, key, component, "soak", SOAK_SCENARIO, outcome=outcome, category=category, message=message)


SOAK_SCENARIO = "The deployment holds through the soak"
SOAK_ROW = "soak::"  # the key prefix of the gate's rows the soak adds


# The exit statuses after which pytest prints its summary; after any other (an internal error) neither do we.
SUMMARY_EXITS = frozenset(
    {
        pytest.ExitCode.OK,
        pytest.ExitCode.TESTS_FAILED,
        pytest.ExitCode.INTERRUPTED,
        pytest.ExitCode.USAGE_ERROR,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    }
)
WHERE = "where"  # the user property naming the target of a red test's leading reason


def print_gate(reporter: Any, run: Run, exitstatus: int, markexpr: str, where: dict[str, str]) -> None:
    """One line per component, green ones first, then what is shared by several (a missing kubeconfig: said once),
    then each red cluster and component with its reasons, then the GATE line, last. Nothing is cut: the reason is
    the point."""
    rows = sorted(run.rows.values(), key=lambda r: (r.component, r.check, r.nodeid))
    verdict, reason = gate.overall(rows, int(exitstatus))
    reporter.write_sep("=", f"deployment verification: {run.env.name}", bold=True)
    lines = table_lines(rows, where)
    for outcome, line in lines:
        reporter.write_line(line, **_colour(outcome))
    if run.baseline_note:
        reporter.write_line(run.baseline_note, bold=True)
    if run.soaked is not None:
        reporter.write_line(run.soaked.line(), bold=True, **({"red": True} if run.soaked.failed else {}))
    if verdict == "green":
        held = f", held for {soak.human(run.soaked.plan.duration)}" if run.soaked and run.soaked.state == "held" else ""
        reporter.write_line(f"GATE GREEN: {reason}{held} in environment {run.env.name!r}", green=True, bold=True)
        return
    if not rows:
        selection = f" with -m {markexpr!r}" if markexpr else ""
        reason = (
            f"no test selected for environment {run.env.name!r}{selection}: check the marker expression and "
            "that the environment has components the scenarios apply to"
        )
    reporter.write_line(f"GATE RED: {reason}; details in {run.reports / 'verdict.json'}", red=True, bold=True)


def table_lines(rows: list[gate.Row], where: dict[str, str]) -> list[tuple[str, str]]:
    """(outcome, line) of the summary: the component x check table folded to one line per component, so the red
    part of a broken environment fits a screen; a reason shared by several components is one line of its own."""
    width = max((len(r.component) for r in rows), default=0)
    red = [r for r in rows if r.outcome != "pass"]
    reasons = {r.nodeid: _reason(r, where.get(r.nodeid, "")) for r in red}
    owners: dict[str, set[str]] = {}
    for r in red:
        owners.setdefault(reasons[r.nodeid][1], set()).add(r.component)
    shared = {cause for cause, names in owners.items() if len(names) > 1}
    by_component: dict[str, list[gate.Row]] = {}
    for r in rows:
        by_component.setdefault(r.component, []).append(r)
    lines: list[tuple[str, str]] = []
    for name, own in by_component.items():
        if all(r.outcome == "pass" for r in own):
            lines.append(("pass", f"{name:<{width}}  {'PASS':<6} {', '.join(r.check for r in own)}"))
    for cause in sorted(shared):
        hit = [r for r in red if reasons[r.nodeid][1] == cause]
        worst = _worst(hit)
        names = sorted({r.component for r in hit})
        label = f"{len(names)} components"
        lines.append((worst, f"{label:<{width}}  {worst.upper():<6} {cause} [{', '.join(names)}: {len(hit)} checks]"))
    # Clusters before components: a cluster's problem (a node waiting for a reboot) often explains its components'.
    for name, own in sorted(by_component.items(), key=lambda item: not item[0].startswith(CLUSTER_PREFIX)):
        mine = [r for r in own if r.outcome != "pass" and reasons[r.nodeid][1] not in shared]
        if mine:
            worst = _worst(mine)
            passed = [r.check for r in own if r.outcome == "pass"]
            tail = f" | passed: {', '.join(passed)}" if passed else ""
            lines.append((worst, f"{name:<{width}}  {worst.upper():<6} {_said_once(mine, reasons)}{tail}"))
    return lines


def _reason(row: gate.Row, where: str) -> tuple[str, str]:
    """(where, cause): the first line of the row's message, split at its target when known; "(+N more)" when the
    test had several red results."""
    lines = row.message.strip().splitlines() or [""]
    first = lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")
    if where and first.startswith(f"{where}: "):
        return where, first[len(where) + 2 :]
    return "", first


def _said_once(rows: list[gate.Row], reasons: dict[str, tuple[str, str]]) -> str:
    """`check: where: cause | check2: cause2`: the target once per line, checks with the same cause together."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in sorted(rows, key=lambda r: (gate.RANK[r.outcome] * -1, r.check)):
        grouped.setdefault(reasons[r.nodeid], []).append(r.check)
    parts, said = [], ""
    for (where, cause), checks in grouped.items():
        located = f"{where}: {cause}" if where and where != said else cause
        said = where or said
        parts.append(f"{', '.join(checks)}: {located}")
    return " | ".join(parts)


def _worst(rows: list[gate.Row]) -> str:
    return max((r.outcome for r in rows), key=lambda o: gate.RANK[o])


def _colour(outcome: str) -> dict[str, bool]:
    return {"pass": {"green": True}, "skipped": {"yellow": True}}.get(outcome, {"red": True})


def slack(budget: float) -> float:
    """How long past its budget a run may take to finish reporting: 10 % of the budget, at least 5 s, at most 30 s."""
    return min(30.0, max(5.0, budget * 0.1))


class LastResort:
    """Controller-side: every call is bounded by the budget, but a name lookup (getaddrinfo) or a defect can still
    block. If the session has not finished by budget + slack, the gate is written red with where the run was stuck,
    and the process ends with exit status 3: nothing can hang the gate."""

    def __init__(
        self, config: pytest.Config, run: Run, deadline: Deadline | None = None, bound: str = "budget"
    ) -> None:
        deadline = deadline or run.deadline
        assert deadline is not None
        self.config, self.run, self.bound = config, run, bound
        self.budget = deadline.total()
        self.after = deadline.remaining() + slack(self.budget)
        self.main = threading.main_thread().ident
        self.timer = threading.Timer(self.after, self.fire)
        self.timer.daemon = True

    def fire(self) -> None:
        frames = sys._current_frames()
        stack = traceback.format_stack(frames[self.main])[-3:] if self.main in frames else []
        where = " <- ".join(line.strip().splitlines()[0] for line in reversed(stack)) or "unknown"
        message = (
            f"the run did not end within its {self.bound} of {self.budget:.0f}s plus {slack(self.budget):.0f}s: "
            f"stopped; stuck at {where}"
        )
        for row in self.run.rows.values():
            if row.outcome == "pass" and not row.message:  # set up, never finished: the test that was running
                row.outcome, row.message, row.category = "error", f"interrupted: {message}", Category.UNREACHABLE.value
        row = gate.Row("run", "run", "-", "run_deadline", "", "error", message, self.after, Category.UNREACHABLE.value)
        self.run.rows["run"] = row
        with contextlib.suppress(Exception):  # the verdict is the point; a failure to write it must not keep us here
            gate.write_verdict(self.run, 3, self.config)
        capture = self.config.pluginmanager.getplugin("capturemanager")
        with contextlib.suppress(Exception):  # the test's output capture would swallow the one line that matters
            capture.suspend_global_capture(in_=False)
        sys.stderr.write(f"\nGATE RED: {message}; details in {self.run.reports / 'verdict.json'}\n")
        sys.stderr.flush()
        os._exit(3)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    run = config.stash.get(RUN, None)
    if run is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(GateRecorder(config), "deploy-verify-gate")
        _drop_short_summary_of_verdicts(config)
        if not config.option.collectonly:
            guard = LastResort(config, run)
            guard.timer.start()
            config.stash[GUARD] = guard


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    guard = session.config.stash.get(GUARD, None)
    if guard is not None:
        guard.timer.cancel()


GUARD = pytest.StashKey[LastResort]()


def _drop_short_summary_of_verdicts(config: pytest.Config) -> None:
    """pytest's "short test summary info" repeats, node id by node id, what the gate's table says once per
    component, and would push the table off the last screen. Left out unless the user asked with -r."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or _asked_for_report_chars(config):
        return
    reporter.reportchars = reporter.reportchars.replace("f", "").replace("E", "")


def _asked_for_report_chars(config: pytest.Config) -> bool:
    """-r CHARS on the command line, in PYTEST_ADDOPTS or in the ini addopts: honoured as given."""
    words = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    words += config.getini("addopts")
    return any(w == "--report-chars" or w.startswith("--report-chars=") or _is_short_r(w) for w in words)


def _is_short_r(word: str) -> bool:
    return word.startswith("-r") and not word.startswith("--")


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """Allure: titles that name the component and environment, labels to group by them; the promotion record's
    severity, links and environment parameter (runs after allure-pytest-bdd has started the test's result)."""
    if "target_name" not in request.fixturenames:
        return
    target = request.getfixturevalue("target_name")
    run = request.getfixturevalue("run")
    kind = "cluster" if target.startswith(CLUSTER_PREFIX) else KINDS[run.env.component(target).kind].name
    allure_meta.describe_test(request.config, run, target, kind, feature.name, scenario.name)


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_step_call(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any, step_func_args: Any
) -> None:
    """Runs after allure recorded the step's arguments: strip the ones that are not plain values."""
    if request.config.option.allure_report_dir:
        allure_meta.keep_plain_step_parameters(request.config, step, step_func_args)


def pytest_bdd_after_step(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any, step_func_args: Any
) -> None:
    """Remember the check results a step worked on, so a passing test's summary line says what was seen."""
    for value in step_func_args.values():
        if isinstance(value, list) and value and all(isinstance(r, CheckResult) for r in value):
            request.node.stash[RESULTS] = value
