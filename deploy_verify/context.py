"""What every family's check function receives, and the runner that calls it.

    def rollout(ctx: Context, component: Target) -> list[CheckResult]:
        return ctx.on_workload(ROLLOUT, component, lambda reader, ref: check_rollout(reader, ref, ...))

A `Context` holds the transports (built once per worker and shared), the run's deadline and the step's wait window,
the environment's limits, and the component's expectation. `run_family` calls a family on one target, turns any
transport failure that escaped it into one ERROR result (checks.runner), and files every red result under a report
category: the result's own, else the family's for a FAIL, else "Could not decide".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.rollout import Limits
from deploy_verify.checks.runner import attempt, attempt_all
from deploy_verify.checks.transports.kube import KubeReader
from deploy_verify.checks.workloads import WorkloadRef
from deploy_verify.config import ClusterConfig, Component, Environment
from deploy_verify.family import CLUSTER_PREFIX, Family
from deploy_verify.kinds import Clients, Workload, kind_of
from deploy_verify.release import Expectation
from deploy_verify.run import Run


@dataclass(frozen=True)
class Cluster:
    """The target of a cluster-scoped family (`@nodes`)."""

    name: str
    config: ClusterConfig

    @property
    def where(self) -> str:
        return f"{CLUSTER_PREFIX}{self.name}"


Target = Component | Cluster


@dataclass(frozen=True)
class Context:
    run: Run
    clients: Clients
    http: requests.Session
    deadline: Deadline  # the run's budget
    expectation: Expectation | None = None
    within: Deadline | None = None  # the step's wait window (inside the budget); None: look once
    options: Mapping[str, float | str | bool] = field(default_factory=dict)  # step-specific, e.g. a TLS window
    keep: Callable[[str], None] = lambda _state: None  # a @baseline test hands its recorded state to the run
    fixture: Callable[[str], object] = lambda name: None  # a per-worker resource a family shares (a pytest fixture)

    @property
    def env(self) -> Environment:
        return self.run.env

    def limits(self, component: Component) -> Limits:
        """The environment's limits with the component's own minimum replica count (default: Limits' 1)."""
        k8s = self.env.defaults.kubernetes
        wanted = {} if component.min_replicas is None else {"min_replicas": component.min_replicas}
        return Limits(max_restarts=k8s.max_restarts, grace=k8s.grace, **wanted)

    def on_cluster(
        self, family: Family, cluster: str, where: str, check: Callable[[KubeReader], CheckResult]
    ) -> list[CheckResult]:
        """One check with the cluster's shared reader; a cluster that cannot be asked is an ERROR result."""
        return [attempt(family.check, where, lambda: check(self.clients.kube.reader(cluster)))]

    def on_workload(
        self, family: Family, component: Component, check: Callable[[KubeReader, WorkloadRef], CheckResult]
    ) -> list[CheckResult]:
        kind = kind_of(component)
        assert isinstance(kind, Workload)  # the family's kind declaration only enrols workloads
        ref = kind.ref(component)
        return self.on_cluster(family, str(component.cluster), ref.where, lambda reader: check(reader, ref))


def where_of(target: Target) -> str:
    return target.where if isinstance(target, Cluster) else kind_of(target).where(target)


# How a check asks for an expectation it lacks. A check cannot know whether a release manifest was given; the run
# does, and when one was, "pass --release FILE" would send the reader to a file they already passed.
ASK_FOR_EXPECTATION = (
    "pass --release FILE (version, chart) or --expect COMPONENT=VERSION",
    "pass --release FILE or --expect COMPONENT=VERSION",
    "pass the release manifest being promoted with --release FILE",
)


def run_family(family: Family, ctx: Context, target: Target) -> list[CheckResult]:
    """The family's results on `target`, each red one filed under a category. A selection that stands for nothing,
    and a component whose dependency is broken, are not looked at: one ERROR says why."""
    if isinstance(target, Component) and target.unresolved is not None:
        why, category = target.unresolved
        where = f"selection:{target.name}"
        return [CheckResult(family.check, where, Verdict.ERROR, why, category=Category(category))]
    if isinstance(target, Component) and target.depends_on:
        from deploy_verify.layers import blocked

        stopped = blocked(family, ctx, target)
        if stopped is not None:
            return [stopped]
    results = attempt_all(family.check, where_of(target), lambda: family.run(ctx, target))
    return [_say_which_manifest(ctx, target, file_under(family, result)) for result in results]


def _say_which_manifest(ctx: Context, target: Target, result: CheckResult) -> CheckResult:
    if result.verdict is not Verdict.ERROR or ctx.run.release_file is None:
        return result
    manifest = ctx.run.release_file
    entry = "has no entry for" if ctx.expectation is None else "lacks the version this check needs in its entry for"
    told = (
        f"the release manifest {manifest} {entry} {target.name!r}: add it there, or pass --expect {target.name}=VERSION"
    )
    message = result.message
    for asked in ASK_FOR_EXPECTATION:
        message = message.replace(asked, told)
    return result if message == result.message else dataclasses.replace(result, message=message)


def file_under(family: Family, result: CheckResult) -> CheckResult:
    if result.ok or result.category is not None:
        return result
    category = family.category if result.verdict is Verdict.FAIL else Category.UNDECIDED
    return dataclasses.replace(result, category=category)
