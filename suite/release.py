"""Expectations: what should be running, from a release manifest (`--release FILE`) and `--expect NAME=VERSION`.

A release manifest is what CI produces when it builds a release (YAML or JSON):

    release: 2026.11.21-1
    components:
      payments-api: {version: 1.4.2, image: acr.example.com/payments-api:1.4.2}
      checkout-web: 3.0.0            # shorthand for {version: 3.0.0}
      catalog: {version: 2.4.0, chart: 1.2.0}   # a Helm release: app version and chart version

The expected version is never guessed: a check that needs one and has none says how to give it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from suite.config import ConfigError, Strict, validate
from suite.yamlsource import YamlSourceError, load_yaml_with_lines


class Expectation(Strict):
    version: str | None = None  # image tag; for a Helm release, its app version
    chart: str | None = None  # Helm chart version
    image: str | None = None
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


def _shorthand(value: object) -> object:
    return {"version": str(value)} if isinstance(value, str | int | float) else value


class ReleaseManifest(Strict):
    release: str | None = None
    components: dict[str, Annotated[Expectation, BeforeValidator(_shorthand)]] = Field(default_factory=dict)


def load_release(path: Path | None, expects: list[str], component_names: list[str]) -> ReleaseManifest:
    """The manifest from `path` (if any) with each `NAME=VERSION` of --expect laid over it."""
    manifest = ReleaseManifest()
    if path is not None:
        try:
            data, lines = load_yaml_with_lines(path)
        except YamlSourceError as exc:
            raise ConfigError([f"--release: {exc}"]) from exc
        manifest = validate(ReleaseManifest, data, lines, str(path))
    overrides = dict(manifest.components)
    for item in expects:
        name, sep, version = item.partition("=")
        if not sep or not name or not version:
            raise ConfigError([f"--expect {item!r}: expected COMPONENT=VERSION, e.g. --expect payments-api=1.4.2"])
        if name not in component_names:
            known = ", ".join(sorted(component_names))
            raise ConfigError([f"--expect {item!r}: no component {name!r} in this environment; known: {known}"])
        base = overrides.get(name, Expectation())
        overrides[name] = base.model_copy(update={"version": version})
    return manifest.model_copy(update={"components": overrides})
