"""Outcomes and reports: FAIL vs ERROR, the report category, the summary, verdict.json, the baseline file and the
Allure extras. The controller alone writes the run-level files."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from deploy_verify import allure_meta, gate
from deploy_verify.baseline import STATE_PROPERTY, write_baseline
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.collection import family_of
from deploy_verify.family import CLUSTER_PREFIX, Family
from deploy_verify.kinds import KINDS
from deploy_verify.run import RECORDED, RESULTS, RUN, Run
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
    scenario = (getattr(item, "obj", None).__doc__ or "").partition(": ")[2]
    report.user_properties += [
        ("component", component),
        ("check", family.check if family else "?"),
        ("scenario", scenario),
    ]
    if report.passed and report.when == "call":
        report.user_properties.append(("message", summarize(item.stash.get(RESULTS, []))))
        if RECORDED in item.stash:
            report.user_properties.append((STATE_PROPERTY, item.stash[RECORDED]))
    if report.failed:
        verdict, message = gate.classify(call.excinfo, report.when)
        category = category_of(family, item.stash.get(RESULTS, []), call.excinfo)
        report.user_properties += [("verdict", verdict), ("message", message)]
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

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        run = self.config.stash.get(RUN, None)
        if run is None:
            return
        gate.record(run.rows, report)
        props = dict(report.user_properties)
        if STATE_PROPERTY in props:
            run.recorded[str(props["component"])] = str(props[STATE_PROPERTY])
        elif props.get("check") == "baseline_recorded" and report.failed:
            run.unrecorded.append(str(props["component"]))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        run = self.config.stash.get(RUN, None)
        if run is None or self.config.option.collectonly:
            return
        self._write_baseline(run)
        gate.write_verdict(run, exitstatus, self.config)
        if self.config.option.allure_report_dir:
            allure_meta.write(Path(self.config.option.allure_report_dir), run)

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

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        run = self.config.stash.get(RUN, None)
        if run is not None and not self.config.option.collectonly:
            gate.print_summary(terminalreporter, run, exitstatus, self.config.getoption("markexpr") or "")
            if run.baseline_note:
                terminalreporter.write_line(run.baseline_note, bold=True)


def slack(budget: float) -> float:
    """How long past its budget a run may take to finish reporting: 10 % of the budget, at least 5 s, at most 30 s."""
    return min(30.0, max(5.0, budget * 0.1))


class LastResort:
    """Controller-side: every call is bounded by the budget, but a name lookup (getaddrinfo) or a defect can still
    block. If the session has not finished by budget + slack, the gate is written red with where the run was stuck,
    and the process ends with exit status 3: nothing can hang the gate."""

    def __init__(self, config: pytest.Config, run: Run) -> None:
        assert run.deadline is not None
        self.config, self.run = config, run
        self.budget = run.deadline.total()
        self.after = run.deadline.remaining() + slack(self.budget)
        self.main = threading.main_thread().ident
        self.timer = threading.Timer(self.after, self.fire)
        self.timer.daemon = True

    def fire(self) -> None:
        frames = sys._current_frames()
        stack = traceback.format_stack(frames[self.main])[-3:] if self.main in frames else []
        where = " <- ".join(line.strip().splitlines()[0] for line in reversed(stack)) or "unknown"
        message = (
            f"the run did not end within its budget of {self.budget:.0f}s plus {slack(self.budget):.0f}s: stopped; "
            f"stuck at {where}"
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


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """Allure: titles that name the component and environment; labels to group by environment and component."""
    if "target_name" not in request.fixturenames:
        return
    target = request.getfixturevalue("target_name")
    env = request.getfixturevalue("environment")
    kind = "cluster" if target.startswith(CLUSTER_PREFIX) else KINDS[env.component(target).kind].name
    allure_meta.label_test(env.name, target, kind, feature.name, scenario.name)


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
