"""Which scenarios apply to which components: one entry per check family, keyed by its Gherkin tag.

A scenario tagged `@http` runs once for every component with health endpoints, `@tls` for every component with TLS
hosts. Adding a check family means: a module in checks/, its steps, its feature file, and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from suite.config import Component


@dataclass(frozen=True)
class Family:
    tag: str
    check: str  # the name shown in the summary and verdict.json
    applies: Callable[[Component], bool]


FAMILIES: dict[str, Family] = {
    f.tag: f
    for f in (
        Family("http", "http_health", lambda c: bool(c.health)),
        Family("tls", "tls_certificate", lambda c: bool(c.tls)),
    )
}
