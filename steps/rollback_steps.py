"""Baselines, rollback verification and the rollback drill (checks.baseline, .rollback, .drill): the families and
their steps. What a kind records and how it rolls back is its adapter's (suite.kinds)."""

from __future__ import annotations

from pytest_bdd import given, then, when

from deploy_verify.baseline import BaselineMissing
from deploy_verify.checks.baseline import describe
from deploy_verify.checks.drill import DrillImpossible
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.rollout import check_rollout
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.kube import ReadOnlyViolation
from deploy_verify.clients import KubeClients
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import Clients, Workload, kind_of
from deploy_verify.run import Run
from deploy_verify.verdicts import Undecided

# --- recording (-m predeploy) ------------------------------------------------------------------------------------


def record(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    kind = kind_of(target)

    def read() -> CheckResult:
        state = kind.read_state(target, ctx.clients, ctx.deadline)
        ctx.keep(state.model_dump_json())
        return CheckResult(BASELINE.check, kind.where(target), Verdict.PASS, f"recorded {describe(state)}")

    return [attempt(BASELINE.check, kind.where(target), read, absent="nothing to record: {}")]


# --- verifying (-m rollback) -------------------------------------------------------------------------------------


def restored(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    return [_restored(ctx, target, ctx.clients)]


def _restored(ctx: Context, component: Component, clients: Clients) -> CheckResult:
    kind = kind_of(component)
    where = kind.where(component)
    assert ctx.run.baseline is not None
    try:
        recorded, recorded_at = ctx.run.baseline.entry(component.name)
    except BaselineMissing as exc:
        return CheckResult(RESTORED.check, where, Verdict.ERROR, str(exc))
    return attempt(
        RESTORED.check, where, lambda: kind.restored(component, clients, recorded, recorded_at, ctx.deadline)
    )


# --- the drill (@mutating) ---------------------------------------------------------------------------------------


def drill(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    done = _roll_back(ctx, target)
    if not done.ok:
        return [done]
    verified = [done]
    kind = kind_of(target)
    if isinstance(kind, Workload):
        window = ctx.deadline.sub(ctx.env.defaults.kubernetes.rollout_timeout, _rollout_label(ctx))
        reader = ctx.clients.kube.writer(str(target.cluster))  # uncached: the shared reader's lists predate it
        verified.append(check_rollout(reader, kind.ref(target), ctx.limits(target), ctx.deadline, within=window))
    fresh = KubeClients(ctx.env)  # the restored state, read anew rather than from lists read before it
    try:
        verified.append(_restored(ctx, target, Clients(fresh, ctx.clients.azure)))
    finally:
        fresh.close()
    return verified


def _roll_back(ctx: Context, component: Component) -> CheckResult:
    """The rollback itself; every reason it could not start or finish is an ERROR that says so."""
    kind = kind_of(component)
    where = kind.where(component)
    assert ctx.run.baseline is not None
    baseline = ctx.run.baseline

    def roll_back() -> CheckResult:
        recorded, _ = baseline.entry(component.name)
        return CheckResult(
            DRILL.check, where, Verdict.PASS, kind.roll_back(component, ctx.clients, recorded, ctx.deadline)()
        )

    try:
        return attempt(DRILL.check, where, roll_back, unreachable=NOT_DONE, undecidable=NOT_DONE)
    except BaselineMissing as exc:
        return CheckResult(DRILL.check, where, Verdict.ERROR, str(exc))
    except (DrillImpossible, ReadOnlyViolation) as exc:
        return CheckResult(DRILL.check, where, Verdict.ERROR, NOT_DONE.format(exc))


NOT_DONE = "rollback not done: {}"


def _rollout_label(ctx: Context) -> str:
    return f"rollout deadline of {ctx.env.defaults.kubernetes.rollout_timeout:g}s"


BASELINE = declare(
    Family(
        tag="baseline",
        check="baseline_recorded",
        marker="applies to workloads, Helm releases and Container Apps: record what runs now "
        "(reports/baseline-ENV.json)",
        category=Category.PROVISIONING,
        run=record,
        transport="kubernetes",
        applies=by_kind,
    )
)
RESTORED = declare(
    Family(
        tag="restored",
        check="rollback_restored",
        marker="applies to workloads, Helm releases and Container Apps: what runs equals the recorded baseline",
        category=Category.WRONG_VERSION,
        run=restored,
        transport="kubernetes",
        applies=by_kind,
    )
)
DRILL = declare(
    Family(
        tag="drill",
        check="rollback_drill",
        marker="applies to workloads, Helm releases and Container Apps: roll back to the baseline, then verify "
        "(mutating)",
        category=Category.WRONG_VERSION,
        run=drill,
        transport="kubernetes",
        applies=by_kind,
    )
)


@when("what runs now is read for the baseline", target_fixture="baseline_results")
def record_step(verify: Verify) -> list[CheckResult]:
    return verify(BASELINE)


@when("what runs now is compared with the baseline", target_fixture="baseline_results")
def compare(verify: Verify) -> list[CheckResult]:
    return verify(RESTORED)


@then("it is kept as the baseline a rollback is judged against")
@then("it is what ran when the baseline was recorded")
def baseline_ok(baseline_results: list[CheckResult], component: Component) -> None:
    assert_results(baseline_results, component)


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
def drill_step(verify: Verify) -> list[CheckResult]:
    return verify(DRILL)


@then("its rollout completes and what runs is what ran when the baseline was recorded")
def drill_ok(drill_results: list[CheckResult], component: Component) -> None:
    assert_results(drill_results, component)
