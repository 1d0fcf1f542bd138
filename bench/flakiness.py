"""Flakiness: the healthy local environment, verified N times in a row, must be green every time.

    .venv/bin/python bench/flakiness.py [--runs 20] [--workers 4] [--results bench/RESULTS.md]

Brings the testbed up (`python -m testbed up`, idempotent), runs `pytest features --env local -m postdeploy -n W
--release testbed/release-local.yaml` RUNS times, and prints how many were green, the spread of wall times, and every
non-green run's reasons. With --results the summary is appended to that Markdown file as its own section. Exit 0
only when every run was green.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "DV_ARM_TOKEN": os.environ.get("DV_ARM_TOKEN", "dv-testbed-arm-token-3f9c"),  # the testbed's, not a secret
}


def one_run(reports: Path, workers: int) -> tuple[str, float, list[str], int]:
    command = [sys.executable, "-m", "pytest", "features", "--env", "local", "-m", "postdeploy", "-q"]
    command += ["-n", str(workers), "--release=testbed/release-local.yaml", f"--reports-dir={reports}"]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    took = time.perf_counter() - started
    verdict = json.loads((reports / "verdict.json").read_text())
    reasons = [f"{t['component']} {t['check']}: {t['message']}" for t in verdict["tests"] if t["outcome"] != "pass"]
    return verdict["verdict"], took, reasons, len(verdict["tests"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--results", type=Path, help="append the summary to this Markdown file")
    args = parser.parse_args()
    up = subprocess.run([sys.executable, "-m", "testbed", "up"], cwd=ROOT, capture_output=True, text=True, check=False)
    if up.returncode != 0:
        print(f"testbed did not come up:\n{up.stdout}{up.stderr}", file=sys.stderr)
        return 2
    outcomes: list[tuple[str, float, list[str], int]] = []
    with tempfile.TemporaryDirectory(prefix="dv-flaky-") as tmp:
        for i in range(args.runs):
            outcomes.append(one_run(Path(tmp) / f"run-{i}", args.workers))
            verdict, took, reasons, tests = outcomes[-1]
            print(f"run {i + 1:>2}/{args.runs}: {verdict.upper():<5} {tests} tests in {took:5.2f} s", flush=True)
            for reason in reasons:
                print(f"    {reason}", flush=True)
    green = sum(1 for o in outcomes if o[0] == "green")
    times = [o[1] for o in outcomes]
    summary = (
        f"{green}/{args.runs} green runs of `pytest features --env local -m postdeploy -n {args.workers}` "
        f"({outcomes[0][3]} tests each); wall time min {min(times):.2f} s, median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s"
    )
    print(summary)
    if args.results:
        with args.results.open("a", encoding="utf-8") as results:
            results.write(f"\n## Flakiness\n\nProduced by `bench/flakiness.py --runs {args.runs}`: {summary}.\n")
            for i, (verdict, _, reasons, _) in enumerate(outcomes):
                if verdict != "green":
                    results.write(f"- run {i + 1}: {'; '.join(reasons)}\n")
    return 0 if green == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
