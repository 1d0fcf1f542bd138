"""Which scenarios apply to what: one entry per check family, keyed by its Gherkin tag.

A scenario tagged `@http` runs once for every component with health endpoints, `@rollout` for every Kubernetes
workload, `@nodes` once per cluster. Adding a check family means: a module in checks/, its steps, its feature file,
and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from suite.config import WORKLOAD_KINDS, Component


@dataclass(frozen=True)
class Family:
    tag: str
    check: str  # the name shown in the summary and verdict.json
    applies: Callable[[Component], bool] = lambda _: False
    scope: Literal["component", "cluster"] = "component"
    needs_source: bool = False  # only in an environment that promotes from another (`promotes_from`)


def _workload(component: Component) -> bool:
    return component.kind in WORKLOAD_KINDS


def _has_state(component: Component) -> bool:
    """What a baseline records and a rollback restores: workloads, Helm releases, Container Apps."""
    return component.kind in WORKLOAD_KINDS or component.kind in {"helm", "containerapp"}


FAMILIES: dict[str, Family] = {
    f.tag: f
    for f in (
        Family("http", "http_health", lambda c: bool(c.health)),
        Family("tls", "tls_certificate", lambda c: bool(c.tls)),
        Family("rollout", "rollout_complete", _workload),
        Family("pods", "pods_healthy", _workload),
        Family("image", "image_identity", _workload),
        Family("endpoints", "service_endpoints", _workload),
        Family("nodes", "nodes_healthy", scope="cluster"),
        Family("helmrelease", "helm_release", lambda c: c.kind == "helm"),
        Family("certificate", "certmanager_certificate", lambda c: bool(c.certificates)),
        Family("containerapp", "containerapp_healthy", lambda c: c.kind == "containerapp"),
        Family("functionapp", "functionapp_deployed", lambda c: c.kind == "functionapp"),
        Family("baseline", "baseline_recorded", _has_state),
        Family("restored", "rollback_restored", _has_state),
        Family("drill", "rollback_drill", _has_state),
        Family("promotion", "promotion_verified", lambda c: c.kind != "endpoint", needs_source=True),
    )
}
CLUSTER_PREFIX = "cluster:"
