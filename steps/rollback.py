"""Steps for baselines, rollback verification and the rollback drill (checks.baseline, .rollback, .drill)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_bdd import given, then, when

from checks.transports.arm import ArmNotFound, ArmUnavailable
from checks.baseline import (
    ComponentState,
    ContainerAppState,
    HelmState,
    NotRecordable,
    WorkloadState,
    describe,
)
from checks.deadline import Deadline
from checks.drill import DrillImpossible, roll_back_helm, roll_back_traffic, roll_back_workload
from checks.helm import UnreadableRelease
from checks.transports.kube import KubeUnavailable, ReadOnlyViolation
from checks.result import CheckResult, Verdict
from checks.rollback import check_app_restored, check_helm_restored, check_workload_restored
from checks.rollout import Limits, check_rollout
from steps.common import assert_results, attach_results
from suite.baseline import BaselineMissing, BaselineSource
from suite.clients import AzureClients, KubeClients
from suite.config import Component, Environment
from suite.plugin import RECORDED, Run
from suite.verdicts import Undecided
from suite.versions import app_ref, helm_ref, read_state, workload_ref
from suite.versions import where as where_of

UNDECIDED = (KubeUnavailable, ArmUnavailable, UnreadableRelease)


# --- recording (-m predeploy) ------------------------------------------------------------------------------------


@when("what runs now is read for the baseline", target_fixture="baseline_results")
def record(
    request: pytest.FixtureRequest, component: Component, kube: KubeClients, azure: AzureClients, deadline: Deadline
) -> list[CheckResult]:
    where = where_of(component)
    try:
        state = read_state(component, kube, azure, deadline)
    except UNDECIDED as exc:
        return attach_results([CheckResult("baseline_recorded", where, Verdict.ERROR, str(exc))])
    except (NotRecordable, ArmNotFound) as exc:
        return attach_results([CheckResult("baseline_recorded", where, Verdict.FAIL, f"nothing to record: {exc}")])
    request.node.stash[RECORDED] = state.model_dump_json()
    return attach_results([CheckResult("baseline_recorded", where, Verdict.PASS, f"recorded {describe(state)}")])


# --- verifying (-m rollback) -------------------------------------------------------------------------------------


def _restored(
    component: Component, baseline: BaselineSource, kube: KubeClients, azure: AzureClients, deadline: Deadline
) -> CheckResult:
    where = where_of(component)
    try:
        recorded, recorded_at = baseline.entry(component.name)
    except BaselineMissing as exc:
        return CheckResult("rollback_restored", where, Verdict.ERROR, str(exc))
    try:
        if component.kind == "containerapp":
            client = azure.container_apps(str(component.subscription))
            return check_app_restored(client, app_ref(component), recorded, recorded_at, deadline)
        reader = kube.reader(str(component.cluster))
    except UNDECIDED as exc:
        return CheckResult("rollback_restored", where, Verdict.ERROR, str(exc))
    if component.kind == "helm":
        return check_helm_restored(reader, helm_ref(component), recorded, recorded_at, deadline)
    return check_workload_restored(reader, workload_ref(component), recorded, recorded_at, deadline)


@when("what runs now is compared with the baseline", target_fixture="baseline_results")
def compare(
    component: Component, baseline: BaselineSource, kube: KubeClients, azure: AzureClients, deadline: Deadline
) -> list[CheckResult]:
    return attach_results([_restored(component, baseline, kube, azure, deadline)])


@then("it is kept as the baseline a rollback is judged against")
@then("it is what ran when the baseline was recorded")
def baseline_ok(baseline_results: list[CheckResult], component: Component) -> None:
    assert_results(baseline_results, component)


# --- the drill (@mutating) ---------------------------------------------------------------------------------------


@given("the environment allows mutations")
def mutations_allowed(run: Run) -> None:
    """Refused for protected environments whatever the flag says, and unless --allow-mutations was given."""
    if run.env.protected:
        raise Undecided(
            f"refused: environment {run.env.name!r} is protected; @mutating scenarios never run against it, "
            "whatever --allow-mutations says"
        )
    if not run.allow_mutations:
        raise Undecided(
            f"refused: this scenario changes environment {run.env.name!r} (@mutating); pass --allow-mutations to "
            "run it, or select -m 'not mutating'"
        )


@when("the component is rolled back to its baseline", target_fixture="drill_results")
def drill(
    component: Component,
    environment: Environment,
    baseline: BaselineSource,
    kube: KubeClients,
    azure: AzureClients,
    deadline: Deadline,
) -> list[CheckResult]:
    where = where_of(component)
    try:
        recorded, _ = baseline.entry(component.name)
        action = _roll_back(component, recorded, kube, azure, deadline)
        done = CheckResult("rollback_drill", where, Verdict.PASS, action())
    except BaselineMissing as exc:
        done = CheckResult("rollback_drill", where, Verdict.ERROR, str(exc))
    except (DrillImpossible, ReadOnlyViolation, *UNDECIDED) as exc:
        done = CheckResult("rollback_drill", where, Verdict.ERROR, f"rollback not done: {exc}")
    if not done.ok:
        return attach_results([done])
    verified = [done]
    if component.kind in {"deployment", "daemonset", "statefulset"}:
        seconds = environment.defaults.kubernetes.rollout_timeout
        window = deadline.sub(seconds, f"rollout deadline of {seconds:g}s")
        limits = Limits(environment.defaults.kubernetes.max_restarts, environment.defaults.kubernetes.grace)
        reader = kube.writer(str(component.cluster))  # uncached: the shared reader's lists predate the rollback
        verified.append(check_rollout(reader, workload_ref(component), limits, deadline, within=window))
    fresh = KubeClients(environment)  # the restored state, read anew rather than from lists read before it
    try:
        verified.append(_restored(component, baseline, fresh, azure, deadline))
    finally:
        fresh.close()
    return attach_results(verified)


def _roll_back(
    component: Component, recorded: ComponentState, kube: KubeClients, azure: AzureClients, deadline: Deadline
) -> Callable[[], str]:
    """The rollback as a deferred call, so every failure to start it is reported the same way."""
    if component.kind == "containerapp" and isinstance(recorded, ContainerAppState):
        client = azure.container_apps(str(component.subscription))
        return lambda: roll_back_traffic(client, app_ref(component), recorded, deadline)
    cluster = str(component.cluster)
    if component.kind == "helm" and isinstance(recorded, HelmState):
        return lambda: roll_back_helm(kube.helm_command(cluster), helm_ref(component), recorded, deadline)
    if isinstance(recorded, WorkloadState) and recorded.kind == component.kind:
        writer = kube.writer(cluster)
        return lambda: roll_back_workload(writer, workload_ref(component), recorded, deadline)
    raise DrillImpossible(f"the baseline recorded a {recorded.kind}, but the component is a {component.kind}")


@then("its rollout completes and what runs is what ran when the baseline was recorded")
def drill_ok(drill_results: list[CheckResult], component: Component) -> None:
    assert_results(drill_results, component)
