"""A pytest plugin that only fault-injection tests load (`-p tests.faults_plugin`): it kills the xdist worker that
runs the test whose node id contains $DV_FAULT_KILL_WORKER, the way an OOM kill or a node eviction would."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    victim = os.environ.get("DV_FAULT_KILL_WORKER")
    if victim and victim in item.nodeid and os.environ.get("PYTEST_XDIST_WORKER"):
        os._exit(137)  # no cleanup, no report: exactly what a SIGKILL leaves behind
