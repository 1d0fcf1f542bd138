"""Ordered layers: a component that `depends_on` others is judged only once they are healthy.

    - {name: 010-cert-manager, kind: helm, ...}
    - {name: 020-cluster-issuers, kind: helm, depends_on: [010-cert-manager], ...}

When cert-manager is broken, the issuers' checks are not a wall of unrelated reds: each is one ERROR saying it was
not judged because of the first broken layer under it, and cert-manager's own checks say what is wrong with it.

A dependency is healthy when every family that applies to it (its kind's own checks and its endpoints'; not the
baseline, rollback or promotion ones, which judge history rather than health) passes on one look. Each worker
judges a dependency once and keeps the answer; the reads are the shared lists, so this costs little.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.config import Component
from deploy_verify.family import FAMILIES, Family

# Families that judge history or another environment, not whether the component works now.
NOT_HEALTH = frozenset({"baseline", "restored", "drill", "promotion"})


@dataclass(frozen=True)
class Broken:
    """Why a dependency is not healthy: the first broken layer under it and what its check said."""

    layer: str
    reason: str


_judged: dict[tuple[int, str], Broken | None] = {}
_lock = threading.Lock()


def health_families(component: Component) -> list[Family]:
    return [f for f in FAMILIES.values() if f.applies_to(component) and f.tag not in NOT_HEALTH and not f.needs_source]


def blocked(family: Family, ctx: object, component: Component) -> CheckResult | None:
    """An ERROR result of `family` when a dependency of `component` is not healthy; None when all are."""
    from deploy_verify.context import Context, where_of

    assert isinstance(ctx, Context)
    for name in ctx.env.dependencies(component):
        broken = _broken(ctx, name, ())
        if broken is not None:
            via = "" if broken.layer == name else f" (through {name})"
            return CheckResult(
                family.check,
                where_of(component),
                Verdict.ERROR,
                f"not judged: it depends on {broken.layer}{via}, which is not healthy: {broken.reason}; fix "
                f"{broken.layer} first",
                category=Category.UNDECIDED,
            )
    return None


def _broken(ctx: object, name: str, path: tuple[str, ...]) -> Broken | None:
    """The first broken layer at or under `name` (its own dependencies first), judged once per run and worker."""
    from deploy_verify.context import Context, run_family

    assert isinstance(ctx, Context)
    key = (id(ctx.run), name)
    with _lock:
        if key in _judged:
            return _judged[key]
    component = ctx.env.component(name)
    found: Broken | None = None
    for below in ctx.env.dependencies(component):
        if below not in path:  # the loader refuses cycles; this only guards the recursion
            found = _broken(ctx, below, (*path, name))
            if found is not None:
                break
    if found is None:
        look = dataclasses.replace(
            ctx,
            expectation=ctx.run.release.components.get(component.release_name),
            within=None,
            options={},
        )
        for family in health_families(component):
            red = [r for r in run_family(family, look, component) if not r.ok]
            if red:
                found = Broken(name, f"{red[0].check} {red[0].verdict.value.upper()}: {red[0].message.splitlines()[0]}")
                break
    with _lock:
        _judged[key] = found
    return found
