"""The pytest plugin: the suite's parts, each its own plugin module, and every step module that declares a check
family (found, not listed: suite.family.step_modules).

Registered by the root conftest.py. It only arms itself when the run collects the Gherkin suite (features/); the
project's own tests (`pytest tests`) see the fixtures but no gate.
"""

from __future__ import annotations

from suite.family import step_modules

pytest_plugins = [
    "suite.options",  # command line, markers, the run resolved at start-up
    "suite.collection",  # one test per (scenario, target), sharding
    "suite.fixtures",  # clients, the run's deadline, `verify`
    "suite.reporting",  # verdicts, categories, summary, verdict.json, Allure extras
    *step_modules(),
]
