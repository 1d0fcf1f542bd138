"""Whether `-n` paid off, said at the end of the run that used it (issue 17, part 5).

Workers share no start-up: each imports the suite, loads the environment and collects every test before it runs one.
They pay off when the tests' own work, spread over them, saves more than that; a run of quick reads on a fast network
is faster in one process (docs/sharding.md). The controller sees both: when each worker was started and when it
had collected, and how long every test took. When the work the workers saved is smaller than what starting them
cost, one line says so, with the numbers, so that the next run can drop the `-n`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Workers:
    started: dict[str, float] = field(default_factory=dict)  # worker id -> when its gateway was made
    ready: dict[str, float] = field(default_factory=dict)  # worker id -> when it had collected
    work: float = 0.0  # seconds of setup, call and teardown of every test, all workers together

    def start_up(self) -> float:
        """The slowest worker's start: every test waits for at least one worker, most for all of them."""
        spans = [self.ready[w] - self.started[w] for w in self.ready if w in self.started]
        return max(spans, default=0.0)

    def verdict(self) -> str | None:
        """The line to print when the workers cost more than they saved; None when they paid off (or there was no
        worker to judge)."""
        count = len(self.ready)
        if count < 2 or self.work <= 0:
            return None
        start_up = self.start_up()
        saved = self.work * (count - 1) / count  # at best: the work spread evenly over the workers
        if saved >= start_up:
            return None
        return (
            f"-n {count} did not pay off here: the tests' own work was {self.work:.1f}s in all, which {count} workers "
            f"could cut by at most {saved:.1f}s, and starting them (import, environment, collection) took "
            f"{start_up:.1f}s; one process (-n 0) would have been faster by at least {start_up - saved:.1f}s. "
            "Workers help when the tests wait on the network (docs/sharding.md, 'Workers (-n) or shards?')"
        )


class WorkerClock:
    """Registered on the xdist controller only (see pytest_configure)."""

    def __init__(self) -> None:
        self.workers = Workers()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_newgateway(self, gateway: Any) -> None:
        self.workers.started[str(gateway.id)] = time.monotonic()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.workers.ready[str(node.gateway.id)] = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.workers.work += report.duration

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        line = self.workers.verdict()
        if line is not None:
            terminalreporter.write_line(line, yellow=True)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return
    if config.getoption("dist", "no") == "no":
        return
    config.pluginmanager.register(WorkerClock(), "deploy-verify-worker-clock")
