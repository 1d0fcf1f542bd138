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

from deploy_verify.checks.result import Category

if TYPE_CHECKING:
    from deploy_verify.run import Run

# Failure classes for the report's Categories tab (Allure 2 `categories.json`). The category is data: each red
# result carries one (checks.result.Category, set by the check or by its family), and the suite writes it as the
# last line of the test's trace, `category: Wrong version`; Allure matches `traceRegex` against the whole trace. No
# pattern looks at the message, so rewording a check's message never moves its failures to another class.
CATEGORY_LINE = "category: "
FAILURE_CLASSES = [c for c in Category if c is not Category.UNDECIDED]
CATEGORIES: list[dict[str, Any]] = [
    {
        "name": category.value,
        "matchedStatuses": ["failed", "broken"],
        "traceRegex": rf"(?s).*\n{CATEGORY_LINE}{category.value}",
    }
    for category in FAILURE_CLASSES
] + [
    # Everything else the suite could not decide (a missing expectation, a wrong namespace, a missing baseline, a
    # refused drill, or a defect of the suite itself); without it Allure would file such results as "Test defects".
    {"name": Category.UNDECIDED.value, "matchedStatuses": ["broken"]},
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


def _title_path(request: pytest.FixtureRequest, feature: Any) -> list[str]:
    """The report's tree path of a scenario: its feature file's folders under the rootdir, then the feature's name.
    A built-in feature file lives in site-packages, outside the rootdir, and sits under `deploy_verify`."""
    path = Path(feature.filename)
    try:
        parts = path.relative_to(request.config.rootpath).parts
    except ValueError:
        parts = ("deploy_verify", path.name)
    return [*parts[:-1], feature.name or parts[-1]]


def _install_title_path() -> None:
    """allure-pytest-bdd 2.16 computes the path with Path.relative_to(rootdir) and raises ValueError for a feature
    file outside the rootdir (every built-in one in a team's repository), failing the test; its listener imported
    the helper by name, so the replacement goes there."""
    from allure_pytest_bdd import pytest_bdd_listener

    pytest_bdd_listener.get_title_path = _title_path


_install_title_path()
