"""Check families: each declared once, in the step module that binds it, with everything the suite needs to know.

    ROLLOUT = declare(
        Family(
            tag="rollout",                      # Gherkin tag and pytest marker (@rollout, -m rollout)
            check="rollout_complete",           # the id in the summary and verdict.json
            marker="applies to Kubernetes workloads: the rollout is complete",
            category=Category.ROLLOUT_STUCK,    # where its FAILs are filed unless a result says otherwise
            applies=by_kind,                    # the kind adapters that list "rollout" (suite.kinds)
            transport="kubernetes",
            run=rollout,                        # (Context, Target) -> list[CheckResult]
            soak=True,                          # looked at again during a soak (--soak 10m)
        )
    )

Like blackbox_exporter's `Probers` map: one registry, one signature. The markers are registered from it, the
environment schema's `checks:` values are checked against it, the report category of a red result comes from it
(or from the result itself), and the plugin finds the step modules that declare families without a hand-kept list:
every module of the `steps` package, plus any module named in the `deploy_verify.steps` entry-point group or loaded
as a pytest plugin (`-p my_family`, a conftest's `pytest_plugins`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from deploy_verify.checks.result import Category, CheckResult

if TYPE_CHECKING:
    from deploy_verify.config import Component
    from deploy_verify.context import Context, Target

Scope = Literal["component", "cluster"]
Transport = Literal["kubernetes", "azure", "http", "tls", "files", "none"]
CLUSTER_PREFIX = "cluster:"
STEP_PACKAGES = ("deploy_verify.steps",)  # the built-in step modules, imported on first use of the registry


def by_kind(family: Family, component: Component) -> bool:
    """The family applies where the component's kind adapter lists its tag (`suite.kinds`)."""
    from deploy_verify.kinds import kind_of

    kind = kind_of(component)
    return family.tag in kind.families and kind.applies(family.tag, component)


@dataclass(frozen=True)
class Family:
    tag: str
    check: str
    marker: str
    category: Category
    run: Callable[[Context, Target], list[CheckResult]]
    transport: Transport = "none"
    applies: Callable[[Family, Component], bool] = field(default=lambda _family, _component: False)
    scope: Scope = "component"
    needs_source: bool = False  # only in an environment that promotes from another (`promotes_from`)
    # Looked at again during a soak (`--soak`): a read-only check that answers in seconds and says whether the
    # deployment still serves. Not a plan, a render or anything that changes the environment.
    soak: bool = False

    def applies_to(self, component: Component) -> bool:
        return self.scope == "component" and self.applies(self, component)


FAMILIES: dict[str, Family] = {}


def declare(family: Family) -> Family:
    """Enrol a family (at import of the module that declares it). Tags and check ids are unique."""
    for other in FAMILIES.values():
        if other.tag == family.tag and other.run is not family.run:
            raise ValueError(f"check family @{family.tag} is declared twice ({other.run.__module__})")
        if other.check == family.check and other.tag != family.tag:
            raise ValueError(f"check id {family.check!r} is used by @{other.tag} and @{family.tag}")
    FAMILIES[family.tag] = family
    return family


def _builtin_modules() -> list[str]:
    """The modules of the built-in step packages, in a stable order (`_private` ones are helpers, not steps)."""
    found = []
    for package_name in STEP_PACKAGES:
        package = importlib.import_module(package_name)
        found += [
            f"{package_name}.{m.name}"
            for m in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name)
            if not m.name.startswith("_")
        ]
    return found


def load_builtin() -> dict[str, Family]:
    """Import every built-in step module once, so the registry holds the built-in families."""
    for name in _builtin_modules():
        importlib.import_module(name)
    return FAMILIES


def step_modules() -> list[str]:
    """The built-in step modules (pytest plugins), then those other packages add through the `deploy_verify.steps`
    entry-point group."""
    from importlib.metadata import entry_points

    return _builtin_modules() + sorted(ep.value for ep in entry_points(group="deploy_verify.steps"))


def family_tags() -> list[str]:
    """Every declared tag, sorted: what an environment's `checks:` list may name."""
    return sorted(load_builtin())
