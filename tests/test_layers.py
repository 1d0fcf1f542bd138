"""Ordered layers (deploy_verify.layers): a component that depends on a broken one is not judged; its checks say which
layer broke first, and the broken layer's own checks say what is wrong with it.

The layers are the testbed's real HTTPS endpoints: 18441 answers healthy, 18461 answers 503 (local-broken's
`unavailable`); a chain of numbered charts is modelled as components that each depend on the one before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEALTHY = "https://localhost:18441/health"
BROKEN = "https://localhost:18461/health"


def _estate(tmp: Path, layers: list[tuple[str, str, list[str]]]) -> Path:
    env_dir = tmp / "environments"
    env_dir.mkdir()
    components = "".join(
        f"  - name: {name}\n    kind: endpoint\n    health: [{{url: {url!r}}}]\n"
        + (f"    depends_on: [{', '.join(deps)}]\n" if deps else "")
        for name, url, deps in layers
    )
    (env_dir / "layers.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: layers
            budget: 1m
            defaults:
              tls: {{ca_bundle: {ROOT / ".testbed" / "tls" / "ca.pem"}}}
            components:
            """
        )
        + components
    )
    return env_dir


def _run(tmp: Path, env_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, tuple[str, str]]]:
    reports = tmp / "reports"
    command = [sys.executable, "-m", "pytest", "features", "--env", "layers", f"--env-dir={env_dir}"]
    command += [f"--reports-dir={reports}", "-m", "http", "-p", "no:randomly", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    verdict = json.loads((reports / "verdict.json").read_text())
    return done, {t["component"]: (t["outcome"], t["message"]) for t in verdict["tests"]}


@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_dependents_of_a_broken_layer_say_it_instead_of_failing_on_their_own(testbed, tmp_path, workers):
    env_dir = _estate(
        tmp_path,
        [
            ("005-tainters", HEALTHY, []),
            ("010-cert-manager", BROKEN, ["005-tainters"]),
            ("020-cluster-issuers", HEALTHY, ["010-cert-manager"]),
            ("030-ingress", HEALTHY, ["020-cluster-issuers"]),
            ("950-examples", HEALTHY, ["005-tainters"]),
        ],
    )
    done, tests = _run(tmp_path, env_dir, *workers)
    assert done.returncode == 1, done.stdout[-3000:]
    assert tests["005-tainters"][0] == "pass"
    assert tests["950-examples"][0] == "pass"  # depends only on a healthy layer: judged as usual
    outcome, message = tests["010-cert-manager"]
    assert outcome == "fail"
    assert "503" in message, message
    outcome, message = tests["020-cluster-issuers"]
    assert outcome == "error"
    assert message.startswith(
        "component:020-cluster-issuers: not judged: it depends on 010-cert-manager, which is not healthy: "
        "http_health FAIL: HTTP 503 "
    ), message
    assert message.endswith("; fix 010-cert-manager first"), message
    outcome, message = tests["030-ingress"]
    assert outcome == "error"
    # The first broken layer, not the nearest: the issuers are not broken, they were not judged.
    assert message.startswith(
        "component:030-ingress: not judged: it depends on 010-cert-manager (through 020-cluster-issuers), which is "
        "not healthy: http_health FAIL: HTTP 503 "
    ), message
    verdict_line = [line for line in done.stdout.splitlines() if line.startswith("GATE RED")]
    assert verdict_line, done.stdout[-2000:]


def test_a_healthy_chain_is_judged_layer_by_layer(testbed, tmp_path):
    env_dir = _estate(
        tmp_path,
        [("010-cert-manager", HEALTHY, []), ("020-cluster-issuers", HEALTHY, ["010-cert-manager"])],
    )
    done, tests = _run(tmp_path, env_dir)
    assert done.returncode == 0, done.stdout[-3000:]
    assert {name: outcome for name, (outcome, _) in tests.items()} == {
        "010-cert-manager": "pass",
        "020-cluster-issuers": "pass",
    }
