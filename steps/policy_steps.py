"""Pre-deploy manifest policy (checks.render, checks.schema, checks.policy): the family and its steps.

What runs, in order: render (helm template with the environment's values, or the folder as it is), validate every
object against the target cluster's schema, read the PodDisruptionBudgets and autoscalers already there and the
release running now (all GET/LIST), then apply the rules at the environment's levels.
"""

from __future__ import annotations

from dataclasses import replace

from pytest_bdd import then, when

from deploy_verify.checks.policy import CHECK, ImageRule, PolicyInput, Silence, evaluate, judge
from deploy_verify.checks.render import Manifest, RenderFailed
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.schema import ClusterSchema, crd_schemas, problems_against
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.config import Component
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, by_kind, declare
from deploy_verify.fixtures import Verify
from deploy_verify.kinds import kind_of
from deploy_verify.release import Expectation

# Listed live in each target namespace: what the render does not carry but the rules must see.
LIVE = {"poddisruptionbudgets": "PodDisruptionBudget", "horizontalpodautoscalers": "HorizontalPodAutoscaler"}


def policy(ctx: Context, target: Target) -> list[CheckResult]:
    assert isinstance(target, Component)
    component, kind = target, kind_of(target)
    where = kind.where(component)

    def check(reader: KubeReader) -> CheckResult:
        try:
            pending = kind.pending(component, ctx.clients, ctx.deadline)
        except RenderFailed as exc:
            return CheckResult(CHECK, where, Verdict.FAIL, f"does not render: {exc}", category=Category.POLICY)
        manifests = pending.manifests
        expected_chart = ctx.expectation.chart if ctx.expectation else None
        given = PolicyInput(
            manifests,
            schema=_schema_problems(manifests, reader, ctx),
            live=_live(manifests, str(component.namespace), reader, ctx),
            images=_image_rule(ctx.expectation),
            chart=replace(pending.chart, expected_version=expected_chart) if pending.chart else None,
        )
        settings = ctx.env.policy
        silences = [Silence(s.rule, s.object, s.reason) for s in settings.silence]
        return judge(CHECK, where, evaluate(given, settings.rules, silences), len(manifests))

    return ctx.on_cluster(POLICY, str(component.cluster), where, check)


def _schema_problems(manifests: list[Manifest], reader: KubeReader, ctx: Context) -> dict[int, list[str]]:
    """What the cluster would refuse, per object; objects of a CRD the render itself installs are checked against
    that CRD's schema, since the cluster may not serve the kind before the deploy."""
    schema = ClusterSchema(reader)
    installed = crd_schemas([m.obj for m in manifests])
    found: dict[int, list[str]] = {}
    for index, manifest in enumerate(manifests):
        group, _, version = str(manifest.obj.get("apiVersion") or "").rpartition("/")
        own = installed.get((group, version, manifest.kind))
        problems = problems_against(manifest.obj, own) if own else schema.problems(manifest.obj, ctx.deadline)
        if problems:
            found[index] = problems
    return found


def _live(manifests: list[Manifest], namespace: str, reader: KubeReader, ctx: Context) -> list[Obj]:
    """The disruption budgets and autoscalers already in the namespaces the render lands in (one LIST each)."""
    namespaces = sorted({m.namespace or namespace for m in manifests if m.kind != "CustomResourceDefinition"})
    return [
        {**obj, "kind": kind}
        for ns in namespaces
        for key, kind in LIVE.items()
        for obj in reader.listing(key, ns, ctx.deadline).items
    ]


def _image_rule(expectation: Expectation | None) -> ImageRule | None:
    if expectation is None:
        return None
    containers = {
        name: ImageRule(version=c.version, image=c.image, digest=c.digest) for name, c in expectation.containers.items()
    }
    return ImageRule(expectation.version, expectation.image, expectation.digest, containers)


POLICY = declare(
    Family(
        tag="policy",
        check=CHECK,
        marker="applies to Helm components with a chart and to manifest folders: rendered with the environment's "
        "values, every object is valid for the target cluster and passes the manifest policy",
        category=Category.POLICY,
        run=policy,
        transport="kubernetes",
        applies=by_kind,  # manifest folders, and Helm components with `chart:` (HelmRelease.applies)
    )
)


@when("what is about to be deployed is rendered with the environment's values", target_fixture="policy_results")
def rendered(verify: Verify) -> list[CheckResult]:
    return verify(POLICY)


@then("every object is valid for the target cluster and passes the release checklist")
def passes(policy_results: list[CheckResult], component: Component) -> None:
    assert_results(policy_results, component)
