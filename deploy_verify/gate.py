"""The gate: one row per test, a one-screen summary, and reports/verdict.json that CI and people read.

Green means every selected test passed and at least one ran. Anything else is red: a failed check, a check that
could not decide, a setup error, zero selected tests.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pytest

from deploy_verify.files import write_json_atomic
from deploy_verify.verdicts import Undecided

if TYPE_CHECKING:
    from deploy_verify.run import Run

RANK = {"pass": 0, "skipped": 1, "fail": 2, "error": 3}


@dataclass
class Row:
    id: str
    nodeid: str
    component: str
    check: str
    scenario: str
    outcome: str = "pass"
    message: str = ""
    duration: float = 0.0
    category: str = ""  # the report category of a red outcome (checks.result.Category), from the result itself


def classify(excinfo: pytest.ExceptionInfo[BaseException] | None, when: str) -> tuple[str, str]:
    """(verdict, message) of a failed phase: assertion in the call -> fail; anything else could not decide."""
    if excinfo is None:
        return "error", f"{when} failed without an exception"
    value = excinfo.value
    if isinstance(value, Undecided):
        return "error", str(value)
    if isinstance(value, AssertionError) and when == "call":
        return "fail", str(value) or "assertion failed"
    first = str(value).strip().splitlines()[0] if str(value).strip() else ""
    return "error", f"{type(value).__name__} in {when}: {first}"


def record(rows: dict[str, Row], report: pytest.TestReport) -> None:
    """Fold one phase report into its test's row: outcomes only get worse, durations add up."""
    props = dict(report.user_properties)
    if "component" not in props:
        if not (report.failed and "[" in report.nodeid):
            return
        # A report no hook of ours saw: xdist's "worker crashed while running" for a test whose worker died. It
        # must count, or the test would vanish from the verdict.
        target = report.nodeid.rsplit("[", 1)[-1].rstrip("]").split("/", 1)[-1]
        lines = (report.longreprtext or "the test ended without a report").strip().splitlines()
        said = next((line for line in lines if "crashed" in line), lines[0])
        props = {"component": target, "check": "?", "verdict": "error", "message": said}
    row = rows.get(report.nodeid)
    if row is None:
        test_id = report.nodeid.rsplit("[", 1)[-1].rstrip("]") if "[" in report.nodeid else report.nodeid
        row = Row(test_id, report.nodeid, str(props["component"]), str(props["check"]), str(props.get("scenario", "")))
        rows[report.nodeid] = row
    row.duration += report.duration
    if report.passed and report.when == "call" and row.outcome == "pass":
        row.message = str(props.get("message", ""))
        return
    if report.failed:
        outcome, message = str(props.get("verdict", "error")), str(props.get("message", report.longreprtext[-500:]))
    elif report.skipped:
        outcome, message = "skipped", str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    else:
        return
    if RANK[outcome] > RANK[row.outcome]:
        row.outcome, row.message = outcome, message
        row.category = str(props.get("category", "")) if outcome in {"fail", "error"} else ""


def overall(rows: list[Row], exitstatus: int) -> tuple[str, str]:
    """('green'|'red', reason)."""
    if not rows:
        return "red", "no test selected"
    counts = {k: sum(1 for r in rows if r.outcome == k) for k in RANK}
    if exitstatus == 0 and counts["pass"] == len(rows):
        return "green", f"{len(rows)} passed"
    names = {"fail": "failed", "error": "errors" if counts["error"] > 1 else "error", "skipped": "skipped"}
    parts = [f"{counts[k]} {name}" for k, name in names.items() if counts[k]]
    return "red", ", ".join(parts) + f" of {len(rows)}" if parts else f"pytest exit status {exitstatus}"


def write_verdict(run: Run, exitstatus: int, config: pytest.Config) -> None:
    rows = sorted(run.rows.values(), key=lambda r: (r.component, r.check, r.nodeid))
    verdict, reason = overall(rows, int(exitstatus))
    document: dict[str, Any] = {
        "environment": run.env.name,
        "protected": run.env.protected,
        "markers": config.getoption("markexpr") or "",
        "shard": f"{run.shard[0]}/{run.shard[1]}" if run.shard else None,
        "release": {
            "name": run.release.release,
            "file": run.release_file,
            "expected": {k: v.model_dump(exclude_defaults=True) for k, v in run.release.components.items()},
        },
        "started": _iso(run.started),
        "finished": _iso(time.time()),
        "duration_s": round(time.time() - run.started, 3),
        "verdict": verdict,
        "reason": reason,
        "exit_status": int(exitstatus),
        "tests": [{**asdict(r), "duration": round(r.duration, 4)} for r in rows],
    }
    if run.soaked is not None:
        document["soak"] = run.soaked.document()
    write_json_atomic(run.reports / "verdict.json", document)
    # The same, under the environment's name: what a promotion out of this environment reads as its evidence.
    write_json_atomic(run.reports / f"verdict-{run.env.name}.json", document)


def _iso(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds")
