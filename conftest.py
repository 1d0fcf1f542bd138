"""Registers the suite: the plugin, which finds its parts and every step module that declares a check family."""

pytest_plugins = ["suite.plugin"]
