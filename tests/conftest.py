"""Fixtures for the project's own tests: the real testbed, started once, stopped at the end if we started it.

Missing infrastructure is a failure of the setup, never a skip: if the testbed cannot start, every test that needs it
errors with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", autouse=True)
def arm_token() -> str:
    """The testbed ARM server's token, where the local environments read it (inherited by suite subprocesses)."""
    from testbed.services import ARM_TOKEN

    os.environ["DV_ARM_TOKEN"] = ARM_TOKEN
    return ARM_TOKEN


@pytest.fixture(scope="session")
def testbed() -> Iterator[Path]:
    """The demo services (python -m testbed up); yields the CA bundle that trusts them."""
    was_running = _testbed("status").returncode == 0
    started = _testbed("up")
    if started.returncode != 0:
        pytest.fail(f"the testbed did not start: {started.stdout}{started.stderr}", pytrace=False)
    yield ROOT / ".testbed" / "tls" / "ca.pem"
    if not was_running:
        _testbed("down")


@pytest.fixture(scope="session")
def ca_bundle(testbed: Path) -> str:
    return str(testbed)


def _testbed(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testbed", command], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="session")
def testbed_kube(testbed: Path):
    """The testbed's clusters, for tests that change them briefly (and put them back)."""
    from testbed.kube import KubeTestbed

    return KubeTestbed(ROOT / ".testbed")
