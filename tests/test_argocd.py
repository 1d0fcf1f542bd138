"""checks.argocd on the testbed's real control plane: Application objects (Argo CD's own CRD, v3.5.7) in a namespace
of their own on dv-b, with the status Argo CD's application controller writes. The Application CRD has no status
subresource: the controller patches status through the object, and so does `publish` here. The status documents
follow Argo CD's API types and its controller's test data (controller/testdata/diff-cache.yaml): sync, health,
operationState with syncResult, resources, conditions and history."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import deploy_verify.checks.argocd as argocd
from deploy_verify.checks.argocd import ApplicationRef, application_revision, check_application
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.runner import Absent
from deploy_verify.checks.transports.kube import UnknownResource
from tests.kube_world import World

ROOT = Path(__file__).resolve().parent.parent
# Where the testbed's kubectl is cached, read before pytester points HOME at a temporary directory.
KUBE_CACHE = os.environ.get("DV_CACHE_DIR") or str(Path.home() / ".cache" / "deploy-verify")
Obj = dict[str, Any]

REPO = "https://git.example.test/shop/deploy.git"
SHA = "ea8759964626a583667a2bfd08f334ec2070040a"
OLD = "3f0c8c2d41a6b5e9a7d0f1e2c3b4a5968778695a"
TAG = "v1.4.2"
SOURCE = {"repoURL": REPO, "path": "envs/prod", "targetRevision": TAG}
DESTINATION = {"server": "https://kubernetes.default.svc", "namespace": "shop"}
STARTED, FINISHED = "2026-12-02T10:00:05Z", "2026-12-02T10:00:09Z"


# --- Application documents ---------------------------------------------------------------------------------------


def resource(kind: str, name: str, health: str | None = "Healthy", sync: str = "Synced", **extra: Any) -> Obj:
    """One status.resources[] entry as the controller writes it (health only where it persists it)."""
    group = {"Deployment": "apps", "Rollout": "argoproj.io"}.get(kind, "")
    entry: Obj = {"version": "v1", "kind": kind, "namespace": "shop", "name": name, "status": sync, **extra}
    if group:
        entry["group"] = group
    if health is not None:
        entry["health"] = {"status": health}
    return entry


def operation(
    phase: str = "Succeeded", message: str = "successfully synced (all tasks run)", revision: str = SHA
) -> Obj:
    return {
        "operation": {
            "initiatedBy": {"automated": True},
            "retry": {"limit": 5},
            "sync": {"revision": revision, "syncStrategy": {"hook": {}}},
        },
        "phase": phase,
        "message": message,
        "startedAt": STARTED,
        **({"finishedAt": FINISHED} if phase not in ("Running", "Terminating") else {}),
        "syncResult": {
            "revision": revision,
            "source": SOURCE,
            "resources": [
                {
                    "group": "apps",
                    "version": "v1",
                    "kind": "Deployment",
                    "namespace": "shop",
                    "name": "web",
                    "status": "Synced" if phase == "Succeeded" else "SyncFailed",
                    "message": "deployment.apps/web configured" if phase == "Succeeded" else message,
                    "hookPhase": "Running",
                    "syncPhase": "Sync",
                }
            ],
        },
    }


def status(
    revision: str | None = SHA,
    sync: str = "Synced",
    health: str = "Healthy",
    health_message: str | None = None,
    resources: list[Obj] | None = None,
    op: Obj | None = None,
    compared: Obj | None = None,
    **extra: Any,
) -> Obj:
    """A status as the application controller writes it after a comparison (and, with `op`, a sync)."""
    document: Obj = {
        "controllerNamespace": "argocd",
        "health": {
            "status": health,
            "lastTransitionTime": FINISHED,
            **({"message": health_message} if health_message else {}),
        },
        "history": [
            {
                "id": 7,
                "revision": OLD,
                "deployStartedAt": "2026-11-30T09:00:00Z",
                "deployedAt": "2026-11-30T09:00:04Z",
                "source": {**SOURCE, "targetRevision": "v1.4.1"},
                "initiatedBy": {"automated": True},
            },
            {
                "id": 8,
                "revision": SHA,
                "deployStartedAt": STARTED,
                "deployedAt": FINISHED,
                "source": SOURCE,
                "initiatedBy": {"automated": True},
            },
        ],
        "reconciledAt": FINISHED,
        "resources": resources
        if resources is not None
        else [resource("Service", "web"), resource("Deployment", "web")],
        "sourceType": "Kustomize",
        "summary": {"images": ["registry.example.test/shop/web:1.4.2"]},
        "sync": {
            "status": sync,
            "comparedTo": {"source": compared or SOURCE, "destination": DESTINATION},
            **({"revision": revision} if revision else {}),
        },
        **extra,
    }
    if op is not None:
        document["operationState"] = op
    return document


HEALTHY = status(op=operation())


# --- the world ---------------------------------------------------------------------------------------------------


class Apps:
    """Applications in one namespace of dv-b: created with their spec, then their status published as Argo CD's
    controller does it (a merge patch of `status` on the object itself)."""

    def __init__(self, world: World) -> None:
        self.world = world

    @property
    def namespace(self) -> str:
        return self.world.namespace

    def create(self, name: str, app_status: Obj | None, spec: Obj | None = None) -> None:
        body = {"project": "default", "source": SOURCE, "destination": DESTINATION, **(spec or {})}
        self.world.apply(
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name}, "spec": body}
        )
        if app_status is not None:
            self.publish(name, app_status)

    def publish(self, name: str, app_status: Obj) -> None:
        patch = json.dumps({"status": app_status})
        self.world.kubectl("patch", "applications.argoproj.io", name, "--type=merge", "-p", patch)

    def check(self, name: str, expected: str | None = TAG, within: float | None = None) -> CheckResult:
        window = Deadline.after(within, f"{within:g}s window") if within else None
        return check_application(
            self.world.reader(), ApplicationRef(self.namespace, name), expected, Deadline.after(30), window, grace=0.5
        )


@pytest.fixture
def apps(testbed_kube) -> Iterator[Apps]:
    world = World(testbed_kube, f"argocd-{secrets.token_hex(3)}")
    testbed_kube.kubectl("dv-b", "create", "namespace", world.namespace)
    yield Apps(world)
    testbed_kube.kubectl("dv-b", "delete", "namespace", world.namespace, "--wait=false")


def said(result: CheckResult) -> tuple[Verdict, str, Category | None]:
    return result.verdict, result.message, result.category


# --- synced and healthy --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expected", [TAG, SHA, SHA[:7], SHA.upper()[:10]], ids=["tag", "sha", "sha7", "SHA10"])
def test_synced_and_healthy_at_the_expected_revision_passes(apps, expected):
    apps.create("shop", HEALTHY)
    result = apps.check("shop", expected)
    assert said(result) == (
        Verdict.PASS,
        f"Synced at revision ea8759964626 (targetRevision {TAG}) and Healthy; last sync Succeeded at {FINISHED}",
        None,
    )
    assert result.target == f"Application:{apps.namespace}/shop"
    evidence = json.loads(result.evidence[0].content)
    assert evidence["status"]["sync"]["revision"] == SHA
    assert [h["id"] for h in evidence["history"]] == [7, 8]


def test_a_commit_prefix_shorter_than_seven_is_not_taken_for_the_commit(apps):
    apps.create("shop", HEALTHY)
    result = apps.check("shop", SHA[:6])
    assert said(result) == (
        Verdict.FAIL,
        f"Argo CD compared it at revision ea8759964626 (targetRevision {TAG}), not the expected {SHA[:6]}; is the "
        "new revision pushed, and does targetRevision point at it?",
        Category.WRONG_VERSION,
    )


def test_synced_without_an_operation_and_health_kept_outside_passes_and_says_so(apps):
    """Argo CD 3.x keeps resource health in its app tree (resourceHealthSource: appTree); an app whose manifests
    already matched the cluster is Synced without any sync operation."""
    plain = [resource("Service", "web", health=None), resource("Deployment", "web", health=None)]
    apps.create("shop", status(resources=plain, resourceHealthSource="appTree"))
    assert said(apps.check("shop")) == (
        Verdict.PASS,
        f"Synced at revision ea8759964626 (targetRevision {TAG}) and Healthy; no sync operation recorded (its "
        "manifests matched the cluster); resource health kept outside the Application (resourceHealthSource: appTree)",
        None,
    )


def test_a_multi_source_app_matches_the_chart_version_of_one_source(apps):
    sources = [
        {"repoURL": "https://charts.example.test", "chart": "web", "targetRevision": "2.1.*"},
        {"repoURL": REPO, "targetRevision": "main", "ref": "values"},
    ]
    document = status(revision=None, op=operation())
    document["sync"] = {
        "status": "Synced",
        "revisions": ["2.1.3", SHA],
        "comparedTo": {"sources": sources, "destination": DESTINATION},
    }
    apps.create("shop", document, spec={"source": None, "sources": sources})
    assert said(apps.check("shop", "2.1.3"))[:2] == (
        Verdict.PASS,
        f"Synced at revision 2.1.3, ea8759964626 (targetRevision 2.1.*, main) and Healthy; last sync Succeeded at "
        f"{FINISHED}",
    )
    assert apps.check("shop", "2.1.2").verdict is Verdict.FAIL
    # What runs, for the inventory and the promotion check (ArgoApplication.running_version).
    ref = ApplicationRef(apps.namespace, "shop")
    assert application_revision(apps.world.reader(), ref, Deadline.after(10)) == f"2.1.3, {SHA}"


# --- broken states -------------------------------------------------------------------------------------------------


def test_out_of_sync_fails_naming_the_drifted_resources(apps):
    drifted = [
        resource("Service", "web"),
        resource("Deployment", "web", sync="OutOfSync"),
        resource("ConfigMap", "web-legacy", health=None, sync="OutOfSync", requiresPruning=True),
    ]
    apps.create("shop", status(sync="OutOfSync", resources=drifted, op=operation()))
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        f"OutOfSync at revision ea8759964626 (targetRevision {TAG}): Deployment shop/web, ConfigMap shop/web-legacy "
        "(requires pruning); `argocd app diff` shows the difference, a sync applies it",
        Category.WRONG_VERSION,
    )


def test_synced_to_another_revision_fails_naming_both(apps):
    before = {**SOURCE, "targetRevision": "v1.4.1"}
    apps.create("shop", status(revision=OLD, compared=before, op=operation(revision=OLD)), spec={"source": before})
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        f"Argo CD compared it at revision 3f0c8c2d41a6 (targetRevision v1.4.1), not the expected {TAG}; is the new "
        "revision pushed, and does targetRevision point at it?",
        Category.WRONG_VERSION,
    )


def test_a_spec_not_compared_yet_is_not_judged_on_the_old_status(apps):
    """The spec says v1.4.2, the status is of v1.4.1: Argo CD has not refreshed since the spec changed."""
    before = {**SOURCE, "targetRevision": "v1.4.1"}
    apps.create("shop", status(revision=OLD, compared=before, op=operation(revision=OLD)))
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        f"Argo CD has not compared the current spec yet (it targets {TAG}; the status is of revision 3f0c8c2d41a6 "
        "(targetRevision v1.4.1))",
        Category.WRONG_VERSION,
    )


def test_degraded_fails_with_argo_cds_message_and_the_degraded_resource(apps):
    sick = [
        resource("Service", "web"),
        {
            **resource("Deployment", "web"),
            "health": {"status": "Degraded", "message": 'Deployment "web" exceeded its progress deadline'},
        },
    ]
    apps.create(
        "shop", status(health="Degraded", health_message="apps/Deployment:shop/web", resources=sick, op=operation())
    )
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        'health Degraded: apps/Deployment:shop/web; Deployment shop/web: Degraded: Deployment "web" exceeded its '
        "progress deadline",
        Category.ROLLOUT_STUCK,
    )


@pytest.mark.parametrize("code", ["Suspended", "Unknown"])
def test_suspended_or_unknown_health_fails(apps, code):
    rollout = {**resource("Rollout", "web"), "health": {"status": code, "message": "Rollout is paused"}}
    apps.create("shop", status(health=code, resources=[resource("Service", "web"), rollout], op=operation()))
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        f"health {code}; Rollout shop/web: {code}: Rollout is paused",
        Category.ROLLOUT_STUCK,
    )


def test_missing_health_fails_as_provisioning(apps):
    gone = [resource("Service", "web", health="Missing", sync="OutOfSync")]
    apps.create("shop", status(health="Missing", sync="OutOfSync", resources=gone, op=operation()))
    result = apps.check("shop")
    assert said(result) == (
        Verdict.FAIL,
        f"OutOfSync at revision ea8759964626 (targetRevision {TAG}): Service shop/web; `argocd app diff` shows the "
        "difference, a sync applies it; health Missing; Service shop/web: Missing; none of its resources exist in the "
        "cluster",
        Category.WRONG_VERSION,
    )


def test_an_unhealthy_resource_fails_even_when_the_app_says_healthy(apps):
    """A child Application Missing or Unknown does not count against its parent (Argo CD's own rule)."""
    child = {**resource("Application", "payments"), "group": "argoproj.io", "health": {"status": "Unknown"}}
    job = {
        **resource("Job", "migrate"),
        "group": "batch",
        "health": {"status": "Degraded", "message": "BackoffLimitExceeded"},
    }
    apps.create("shop", status(resources=[child], op=operation()))
    assert apps.check("shop").verdict is Verdict.PASS
    apps.publish("shop", status(resources=[child, job], op=operation()))
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        "health Healthy, but Job shop/migrate: Degraded: BackoffLimitExceeded",
        Category.ROLLOUT_STUCK,
    )


def test_progressing_is_not_healthy_yet(apps):
    rolling = [
        resource("Service", "web"),
        {
            **resource("Deployment", "web"),
            "health": {
                "status": "Progressing",
                "message": "Waiting for rollout to finish: 1 of 3 updated replicas are available...",
            },
        },
    ]
    apps.create(
        "shop",
        status(health="Progressing", health_message="apps/Deployment:shop/web", resources=rolling, op=operation()),
    )
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        "not healthy yet: health Progressing: apps/Deployment:shop/web; Deployment shop/web: Progressing: Waiting "
        "for rollout to finish: 1 of 3 updated replicas are available...",
        Category.ROLLOUT_STUCK,
    )


def test_a_wait_watches_progressing_until_healthy(apps):
    rolling = [resource("Service", "web"), resource("Deployment", "web", health="Progressing")]
    apps.create("shop", status(health="Progressing", resources=rolling, op=operation()))
    later = threading.Timer(1.5, apps.publish, ("shop", HEALTHY))
    later.start()
    try:
        started = time.monotonic()
        result = apps.check("shop", within=20)
    finally:
        later.join()
    assert result.verdict is Verdict.PASS, result.message
    assert time.monotonic() - started < 15
    timeline = next(e.content for e in result.evidence if e.name == "wait timeline")
    assert "waiting: not healthy yet: health Progressing; Deployment shop/web: Progressing" in timeline


def test_a_running_sync_is_in_progress(apps):
    running = operation("Running", "one or more tasks are running")
    apps.create(
        "shop", status(sync="OutOfSync", resources=[resource("Deployment", "web", sync="OutOfSync")], op=running)
    )
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        f"OutOfSync at revision ea8759964626 (targetRevision {TAG}): Deployment shop/web; sync operation Running: "
        "one or more tasks are running",
        Category.WRONG_VERSION,
    )


def test_a_failed_sync_operation_fails_with_its_message(apps):
    message = (
        'one or more objects failed to apply, reason: Deployment.apps "web" is invalid: '
        "spec.template.spec.containers[0].image: Required value"
    )
    apps.create(
        "shop",
        status(
            sync="OutOfSync",
            resources=[resource("Deployment", "web", sync="OutOfSync")],
            op=operation("Failed", message),
        ),
    )
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        f"OutOfSync at revision ea8759964626 (targetRevision {TAG}): Deployment shop/web; `argocd app diff` shows "
        f"the difference, a sync applies it; last sync operation Failed: {message}",
        Category.WRONG_VERSION,
    )
    # Synced and healthy, the failure was of the SyncFail hook phase: the operation's failure still fails the check.
    apps.publish("shop", status(op=operation("Failed", "one or more synchronization tasks completed unsuccessfully")))
    assert said(apps.check("shop")) == (
        Verdict.FAIL,
        "last sync operation Failed: one or more synchronization tasks completed unsuccessfully",
        Category.PROVISIONING,
    )


def test_a_failed_operation_at_an_older_revision_is_superseded(apps):
    apps.create("shop", status(op=operation("Error", "rpc error: code = Unavailable", revision=OLD)))
    assert said(apps.check("shop"))[:2] == (
        Verdict.PASS,
        f"Synced at revision ea8759964626 (targetRevision {TAG}) and Healthy; the last sync operation (to "
        "3f0c8c2d41a6) Error, superseded",
    )


def test_a_comparison_error_fails_with_its_message(apps):
    message = (
        "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown "
        "desc = failed to list refs: authentication required: Repository not found."
    )
    condition = {"type": "ComparisonError", "message": message, "lastTransitionTime": FINISHED}
    apps.create("shop", status(revision=None, sync="Unknown", conditions=[condition], op=operation()))
    assert said(apps.check("shop")) == (Verdict.FAIL, f"ComparisonError: {message}", Category.PROVISIONING)


def test_an_unknown_sync_status_without_an_error_cannot_be_decided(apps):
    apps.create("shop", status(revision=None, sync="Unknown"))
    assert said(apps.check("shop")) == (
        Verdict.ERROR,
        "Argo CD reports sync status Unknown without an error condition: it could not compare the app; "
        "`argocd app get --refresh` shows why",
        Category.UNDECIDED,
    )


def test_an_application_never_reconciled_cannot_be_decided(apps):
    apps.create("shop", None)
    result = apps.check("shop")
    assert said(result) == (
        Verdict.ERROR,
        "the Application has no sync status yet: Argo CD's application controller has not reconciled it; is it "
        f"running, and does it watch namespace {apps.namespace}?",
        Category.UNDECIDED,
    )


def test_a_missing_application_fails(apps):
    apps.create("shop", HEALTHY)
    assert application_revision(apps.world.reader(), ApplicationRef(apps.namespace, "shop"), Deadline.after(10)) == SHA
    with pytest.raises(Absent, match="no Application 'cart' in namespace"):
        application_revision(apps.world.reader(), ApplicationRef(apps.namespace, "cart"), Deadline.after(10))
    assert said(apps.check("cart")) == (
        Verdict.FAIL,
        f"no Application 'cart' in namespace {apps.namespace!r}; is `namespace` the one Argo CD keeps its "
        "Applications in (usually argocd), and `application` its name?",
        Category.PROVISIONING,
    )


def test_no_expectation_is_an_error_that_says_how_to_give_one():
    result = check_application(None, ApplicationRef("argocd", "shop"), None, Deadline.after(5))  # type: ignore[arg-type]
    assert said(result) == (
        Verdict.ERROR,
        "no expected revision for this Application (a git commit SHA, tag or chart version): pass --release FILE or "
        "--expect COMPONENT=VERSION",
        Category.UNDECIDED,
    )


def test_a_crd_not_served_is_an_error(apps, monkeypatch):
    reader = apps.world.reader()
    with pytest.raises(UnknownResource) as raised:
        reader.resource("argoproj.example/v1alpha1", "Application", Deadline.after(10))
    assert str(raised.value) == (
        "cluster dv-b does not serve argoproj.example/v1alpha1 (is the CRD installed, and is that its served version?)"
    )
    monkeypatch.setattr(argocd, "API_VERSION", "argoproj.example/v1alpha1")
    assert said(apps.check("shop")) == (
        Verdict.ERROR,
        "cluster dv-b does not serve argoproj.example/v1alpha1 (is the CRD installed, and is that its served version?)",
        Category.UNDECIDED,
    )


# --- the suite, end to end -----------------------------------------------------------------------------------------


ENVIRONMENT = """\
name: local
budget: 1m
clusters:
  dv-b: {{context: kwok-dv-b, kubeconfig: {kubeconfig}}}
components:
  - {{name: shop, kind: argocd, cluster: dv-b, namespace: {namespace}}}
  - {{name: cart, kind: argocd, cluster: dv-b, namespace: {namespace}, application: cart-prod}}
  - {{name: orders, kind: argocd, cluster: dv-b, namespace: {namespace}}}
"""


def test_the_suite_passes_a_healthy_application_fails_a_broken_one_and_asks_for_a_missing_revision(
    apps, pytester, monkeypatch
):
    monkeypatch.setenv("DV_CACHE_DIR", KUBE_CACHE)
    apps.create("shop", HEALTHY)
    sick = [{**resource("Deployment", "cart"), "health": {"status": "Degraded", "message": "ImagePullBackOff"}}]
    apps.create(
        "cart-prod",
        status(health="Degraded", health_message="apps/Deployment:shop/cart", resources=sick, op=operation()),
    )
    shutil.copy(ROOT / "pyproject.toml", pytester.path)
    (pytester.path / "features").mkdir()
    (pytester.path / "environments").mkdir()
    (pytester.path / "environments" / "local.yaml").write_text(
        ENVIRONMENT.format(kubeconfig=ROOT / ".testbed" / "kubeconfig.yaml", namespace=apps.namespace)
    )
    (pytester.path / "release.yaml").write_text(f"components:\n  shop: {TAG}\n  cart: {SHA[:8]}\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = pytester.runpytest_subprocess(
        "features", "-m", "argocd", "--release", "release.yaml", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*deployment verification: local*",
            "shop * PASS * argocd_application",
            "cart * FAIL * argocd_application: Application:*/cart-prod: health Degraded: apps/Deployment:shop/cart; "
            "Deployment shop/cart: Degraded: ImagePullBackOff",
            # No entry in the manifest given: the check's "pass --release FILE" is reworded to name it.
            "orders * ERROR * argocd_application: Application:*/orders: no expected revision for this Application (a "
            "git commit SHA, tag or chart version): the release manifest release.yaml has no entry for 'orders': add "
            "it there, or pass --expect orders=VERSION",
            "GATE RED: 1 failed, 1 error of 3; details in *verdict.json",
        ]
    )
    verdict = json.loads((pytester.path / "reports" / "verdict.json").read_text())
    rows = {t["component"]: (t["check"], t["outcome"], t["category"]) for t in verdict["tests"]}
    assert rows == {
        "cart": ("argocd_application", "fail", "Rollout stuck"),
        "orders": ("argocd_application", "error", "Could not decide"),
        "shop": ("argocd_application", "pass", ""),
    }
    assert verdict["verdict"] == "red"
