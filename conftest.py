"""Registers the suite: the plugin (options, environment, gate) and the step libraries."""

pytest_plugins = [
    "suite.plugin",
    "steps.http",
    "steps.tls",
    "steps.kubernetes",
    "steps.helm",
    "steps.certmanager",
    "steps.azure",
    "steps.rollback",
    "steps.promotion",
]
