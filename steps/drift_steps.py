"""Infrastructure drift (checks.drift): the family and its steps.

What runs, for a working_dir: `tofu init` (backend and providers, .terraform in a temporary TF_DATA_DIR), `tofu
workspace select` when the component names one, `tofu plan -detailed-exitcode` with refresh and the component's
var_files, `tofu show -json` of that plan. For a plan_json: the file is read. Both are judged the same way.
"""

from __future__ import annotations

from pytest_bdd import then, when

from deploy_verify.checks.drift import CHECK, PlanRequest, judge, plan_working_dir, read_plan_json, tofu_command
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.checks.runner import attempt
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import kind_of


def drift(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    component, where = target, kind_of(target).where(target)

    def check() -> CheckResult:
        if component.plan_json is not None:
            return judge(CHECK, where, read_plan_json(component.plan_json))
        assert component.working_dir is not None  # the kind requires exactly one of the two
        request = PlanRequest(component.working_dir, tuple(component.var_files or ()), component.workspace)
        return judge(CHECK, where, plan_working_dir(tofu_command(), request, ctx.deadline))

    return [attempt(CHECK, where, check)]


DRIFT = declare(
    Family(
        tag="drift",
        check=CHECK,
        marker="applies to terraform components: OpenTofu/Terraform plans no change (what runs matches the "
        "infrastructure code; a change by hand or code not yet applied is drift)",
        category=Category.DRIFT,
        run=drift,
        transport="files",  # the tool's own backends and providers; the suite reads files and runs a binary
        applies=by_kind,
    )
)


@when("the infrastructure code is planned against what runs", target_fixture="drift_results")
def planned(verify: Verify) -> list[CheckResult]:
    return verify(DRIFT)


@then("the plan has no change to make")
def no_change(drift_results: list[CheckResult], component: Component) -> None:
    assert_results(drift_results, component)
