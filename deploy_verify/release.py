"""Expectations: what should be running, from a release manifest (`--release FILE`) and `--expect NAME=VERSION`.

A release manifest is what CI produces when it builds a release (YAML or JSON):

    release: 2026.11.21-1
    components:
      payments-api: {version: 1.4.2, image: acr.example.com/payments-api:1.4.2}
      checkout-web: 3.0.0            # shorthand for {version: 3.0.0}
      catalog: {version: 2.4.0, chart: 1.2.0}   # a Helm release: app version and chart version
      orders: {containers: {app: 2.0.0, migrate: acr.example.com/orders-migrate:2.0.0}}  # per container, init too

The expected version is never guessed: a check that needs one and has none says how to give it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from deploy_verify.config import ConfigError, Environment, Strict, validate
from deploy_verify.yamlsource import YamlSourceError, dotted, line_of, load_yaml_with_lines


class ContainerImage(Strict):
    """What one container of a workload runs: a tag, a full reference, or a digest (compared with the imageID)."""

    version: str | None = None
    image: str | None = None
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


def _container_shorthand(value: object) -> object:
    """`app: 2.0.0` (a tag), `app: registry/x/app:2.0.0` (a reference), `app: sha256:...` (a digest). A tag cannot hold
    '/', ':' or '@' (the OCI distribution spec's tag grammar), so the three forms never overlap."""
    if not isinstance(value, str | int | float):
        return value
    text = str(value)
    if text.startswith("sha256:"):
        return {"digest": text}
    return {"image": text} if any(c in text for c in "/:@") else {"version": text}


class Expectation(Strict):
    version: str | None = None  # image tag; for a Helm release, its app version
    chart: str | None = None  # Helm chart version
    image: str | None = None
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    # Per container of a workload, init containers included: `containers: {app: 2.0.0, migrate: reg/x/migrate:2.0.0}`
    containers: dict[
        Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")],
        Annotated[ContainerImage, BeforeValidator(_container_shorthand)],
    ] = Field(default_factory=dict)
    # API Management: the revision each API of the component must be current at (`revisions: {payments: "4"}`)
    revisions: dict[str, Annotated[str, BeforeValidator(str), Field(pattern=r"^[1-9][0-9]*$")]] = Field(
        default_factory=dict
    )


def _shorthand(value: object) -> object:
    return {"version": str(value)} if isinstance(value, str | int | float) else value


class ReleaseManifest(Strict):
    release: str | None = None
    components: dict[str, Annotated[Expectation, BeforeValidator(_shorthand)]] = Field(default_factory=dict)


def release_names(env: Environment) -> list[str]:
    """The names a release manifest may hold entries for: each component's (a selection member's by its
    `release_key` rule), and, while a selection is unresolved, anything (its members are not known; the run is red
    for it anyway)."""
    names = {c.release_name for c in env.components}
    if any(c.unresolved for c in env.components):
        return [ANY_NAME]
    return sorted(names)


ANY_NAME = "*"  # in release_names: entries are not checked against the environment


def load_release(path: Path | None, expects: list[str], component_names: list[str]) -> ReleaseManifest:
    """The manifest from `path` (if any) with each `NAME=VERSION` of --expect laid over it."""
    manifest = ReleaseManifest()
    if path is not None:
        try:
            data, lines = load_yaml_with_lines(path)
        except YamlSourceError as exc:
            raise ConfigError([f"--release: {exc}"]) from exc
        manifest = validate(ReleaseManifest, data, lines, str(path))
        unknown = [] if ANY_NAME in component_names else sorted(set(manifest.components) - set(component_names))
        if unknown:
            # A typo here would leave the component without an expectation and its checks asking for one.
            known = ", ".join(sorted(component_names))
            raise ConfigError(
                [
                    f"{path}:{line_of(lines, ('components', name))}: {dotted(('components', name))}: no component "
                    f"{name!r} in this environment; known: {known}"
                    for name in unknown
                ]
            )
    overrides = dict(manifest.components)
    for item in expects:
        name, sep, version = item.partition("=")
        if not sep or not name or not version:
            raise ConfigError([f"--expect {item!r}: expected COMPONENT=VERSION, e.g. --expect payments-api=1.4.2"])
        if name not in component_names and ANY_NAME not in component_names:
            known = ", ".join(sorted(component_names))
            raise ConfigError([f"--expect {item!r}: no component {name!r} in this environment; known: {known}"])
        base = overrides.get(name, Expectation())
        overrides[name] = base.model_copy(update={"version": version})
    return manifest.model_copy(update={"components": overrides})
