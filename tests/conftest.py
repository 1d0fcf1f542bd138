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


@pytest.fixture(scope="session", autouse=True)
def helm_binary() -> str:
    """The pinned helm the testbed runs (testbed/kube/build.sh), for suite subprocesses that render or roll back
    charts: these machines have no helm on PATH, and a user's own helm must not decide what the tests see."""
    from testbed.kube import kube_bin

    os.environ.setdefault("DV_HELM", str(kube_bin("helm")))
    return os.environ["DV_HELM"]


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
        # Generous: `up` waits its turn behind another session's `up` (they are serialised), and starts two clusters.
        [sys.executable, "-m", "testbed", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def testbed_kube(testbed: Path):
    """The testbed's clusters, for tests that change them briefly (and put them back)."""
    from testbed.kube import KubeTestbed

    return KubeTestbed(ROOT / ".testbed")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A CA and a certificate for localhost/127.0.0.1, for servers a test starts itself (the ARM test server on an
    ephemeral port); returns (chain, key, CA bundle) paths."""
    import trustme

    ca = trustme.CA(organization_name="deploy-verify test CA")
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("pki")
    chain, key, bundle = folder / "chain.pem", folder / "key.pem", folder / "ca.pem"
    chain.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(bundle))
    return chain, key, str(bundle)


# --- how many states each predicate was tried on ------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "states(predicate): a table-driven test of that predicate over one state; counted in the summary",
    )


def pytest_runtest_logreport(report):
    """Count each state a predicate was judged on (a test marked `@pytest.mark.states("rollout")` that ran)."""
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "predicate-state":
            counts = _STATE_COUNTS.setdefault(value, 0)
            _STATE_COUNTS[value] = counts + 1


_STATE_COUNTS: dict[str, int] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        for mark in item.iter_markers("states"):
            report.user_properties.append(("predicate-state", str(mark.args[0])))


def pytest_terminal_summary(terminalreporter):
    if _STATE_COUNTS:
        terminalreporter.section("states tried per predicate")
        for name, count in sorted(_STATE_COUNTS.items()):
            terminalreporter.write_line(f"{name:<24} {count:>4} states")
        terminalreporter.write_line(f"{'total':<24} {sum(_STATE_COUNTS.values()):>4} states")
