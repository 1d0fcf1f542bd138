"""Allure extras: per-test titles and labels, and the run-level files the controller writes once at the end.

Workers write test results; only the controller writes environment.properties, executor.json and categories.json,
so parallel workers never race on them.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import allure
import pytest

if TYPE_CHECKING:
    from suite.plugin import Run

# Failure classes for the report's Categories tab (Allure 2 `categories.json`). Allure matches messageRegex against the
# whole message, `suite.verdicts.CheckFailed: <target>: <message>` (FAIL, Allure "failed") or
# `suite.verdicts.Undecided: ...` (ERROR, Allure "broken"), one line per result, worst first; each result lands in the
# first category it matches. Every pattern looks at the first line only (`[^\n]*`): that is the worst result, so an
# ERROR is not filed under a FAIL that happens to follow it. The phrases are the checks' own words (checks/*.py); each
# holds a space or a capital, so a component's name (a lowercase DNS label) cannot match one by itself.
CATEGORIES = [
    {
        "name": "Wrong version",
        "matchedStatuses": ["failed"],
        "messageRegex": r"(?s)[^\n]*(?:"
        r"reports version |the version at \S+ is unreadable"  # HTTP version_path
        r"| runs (?:\S+|no imageID), expected |of an older revision remains"  # images, Container App template
        r"| runs chart \S+, expected version | runs app version \S+, expected "  # Helm
        r"|: traffic \d+% [^\n]*, expected \d+% | is not version "  # Container App traffic, Function App deployment
        r"|not the baseline of |; the baseline of [^\n]* had it"  # rollback verification
        r"| is not what \S+ verified: | a manual deployment replaced | a red release is never promoted"  # promotion
        r"|was not a post-deploy run |did not check \S+ version |ran no check of "
        r").*",
    },
    {
        "name": "Certificate",
        "matchedStatuses": ["failed"],
        "messageRegex": r"(?s)[^\n]*(?:"
        r"chain does not verify: |certificate is not valid before |expires in -?[\d.]+ days \(\S+\), inside the "
        r"|the server sent no certificate|certificate unreadable: |TLS handshake failed: |no TLS \S+ or newer offered"
        r"|Certificate \S+ not found|: not Ready: |without status\.notAfter|, but Secret \S+ holds "  # cert-manager
        r"|\(spec\.secretName\) does not exist|has an empty tls\.crt|tls\.crt holds no PEM certificate"
        r").*",
    },
    {
        "name": "Rollout stuck",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": r"(?s)[^\n]*(?:"
        r"rollout stuck: |rollout incomplete: |still converging when the rollout deadline |pods unhealthy: "
        r"|no pods \(\d+ wanted\)|CrashLoopBackOff|ImagePullBackOff|ErrImagePull|CreateContainerConfigError"
        r"|InvalidImageName|FailedScheduling|ProgressDeadlineExceeded|OOMKilled|restarted \d+ times"
        r").*",
    },
    {
        "name": "Unhealthy endpoint",
        "matchedStatuses": ["failed"],
        "messageRegex": r"(?s)[^\n]*(?:"
        r"HTTP \d{3} [^\n]*, expected 2xx|ms latency budget|body rule |the body does not contain "
        r"|no answer within |no connection within |cannot connect|request failed: |no TLS handshake with "
        r"|has no ready endpoint"  # a Service with no ready endpoint
        r").*",
    },
    {
        "name": "Provisioning",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": r"(?s)[^\n]*(?:"
        r"provisioningState |revision \S+ is \w+, runningState |runs \d+ replicas, minReplicas "  # Container App
        r"|receives \d+% of traffic but |latest revision \S+ is not among |still converging when the provisioning "
        r"|latest deployment \S+ (?:failed|is status)|no deployment recorded|site state |0 functions are loaded"
        r"|revision \d+ is [a-z-]+: |no Helm release "  # Helm: a failed or interrupted install/upgrade
        r"|was it deployed|not found(?=\n|$)"  # the workload, Service, app or release is not there at all
        r").*",
    },
    {
        "name": "Infrastructure unreachable",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": r"(?s)[^\n]*(?:"
        r"API server \S+ (?:refused the connection|did not answer in time|is unreachable)|stopped answering"
        r"|credentials of [^\n]* were refused|forbidden \(403\)|GET \S+ answered \d{3}|did not answer JSON"
        r"|cannot read kubeconfig|cannot load kubeconfig|has no context '|in-cluster config unavailable"
        r"|watch of \S+ ended"
        r"|credentials refused \(\d+\)|ARM answered \d{3}|ARM did not answer|throttled by ARM"
        r"|is empty or not set; the environment's azure\.credential"
        r"|not asked: |not probed: |not checked: | is spent"  # the time budget ran out before the call
        r"|Node \S+ (?:not Ready|is cordoned|is waiting for a reboot)|the cluster has no nodes"  # the nodes check
        r").*",
    },
    # Everything else the suite could not decide (a missing expectation, a wrong namespace, a missing baseline, a
    # refused drill); without it Allure would file such results as "Test defects".
    {"name": "Could not decide", "matchedStatuses": ["broken"]},
]


_dynamic: Any = allure.dynamic  # allure's API is untyped


def label_test(env_name: str, target: str, kind: str, feature: str, scenario: str) -> None:
    _dynamic.title(f"{scenario} [{env_name}/{target}]")
    _dynamic.parent_suite(env_name)
    _dynamic.suite(feature)
    _dynamic.sub_suite(target)
    _dynamic.label("component", target)
    _dynamic.tag(kind)


def keep_plain_step_parameters(config: pytest.Config, step: Any, step_args: dict[str, Any]) -> None:
    """allure-pytest-bdd records every argument of a step function as a step parameter: the whole environment,
    clients, sessions. That is noise at best and a credential leak at worst; keep only plain values (the ones parsed
    from the Gherkin text, like `5 minutes`)."""
    listener = next((p for p in config.pluginmanager.get_plugins() if type(p).__name__ == "PytestBDDListener"), None)
    if listener is None:
        return
    from allure_pytest_bdd.steps import get_step_uuid  # only importable where the allure plugin is active

    plain = {name for name, value in step_args.items() if isinstance(value, str | int | float | bool)}
    with listener.lifecycle.update_step(uuid=get_step_uuid(step)) as result:
        if result is not None:
            result.parameters = [p for p in result.parameters if p.name in plain]


def write(results_dir: Path, run: Run) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    properties = {
        "environment": run.env.name,
        "protected": str(run.env.protected).lower(),
        "promotes_from": run.env.promotes_from or "-",
        "release": run.release.release or "-",
        "release_file": run.release_file or "-",
        "python": platform.python_version(),
        "pytest": pytest.__version__,
    }
    lines = [f"{key}={_escape(value)}" for key, value in properties.items()]
    (results_dir / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (results_dir / "executor.json").write_text(json.dumps(_executor(), indent=2), encoding="utf-8")
    (results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2), encoding="utf-8")


def _executor() -> dict[str, str]:
    """Who ran the gate: a GitHub Actions run links back to itself; anything else is 'local'."""
    if os.environ.get("GITHUB_RUN_ID"):
        url = f"{os.environ.get('GITHUB_SERVER_URL', '')}/{os.environ.get('GITHUB_REPOSITORY', '')}"
        return {
            "name": "GitHub Actions",
            "type": "github",
            "buildName": os.environ.get("GITHUB_WORKFLOW", ""),
            "buildOrder": os.environ["GITHUB_RUN_ID"],
            "buildUrl": f"{url}/actions/runs/{os.environ['GITHUB_RUN_ID']}",
        }
    return {"name": "local", "type": "local", "buildName": f"deploy-verify on {platform.node()}"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
