"""The pytest plugin: the suite's parts, each its own plugin module, and every step module that declares a check
family (found, not listed: suite.family.step_modules).

Registered by the root conftest.py. It only arms itself when the run collects the Gherkin suite (features/); the
project's own tests (`pytest tests`) see the fixtures but no gate.
"""

from __future__ import annotations

from deploy_verify.family import step_modules

pytest_plugins = [
    "deploy_verify.options",  # command line, markers, the run resolved at start-up
    "deploy_verify.collection",  # one test per (scenario, target), sharding
    "deploy_verify.fixtures",  # clients, the run's deadline, `verify`
    "deploy_verify.reporting",  # verdicts, categories, summary, verdict.json, Allure extras
    "deploy_verify.pertest",  # per-test bookkeeping done once where every test would repeat it
    "deploy_verify.workers",  # under -n: whether the workers paid off, said at the end
    *step_modules(),
]
