"""Azure Container App: provisioning succeeded and the latest revision really runs the release.

    result = check_container_app(client, AppRef("rg-orders", "orders"), AppExpectation(image=...), deadline)

PASS when the app's provisioningState is Succeeded; latestRevisionName == latestReadyRevisionName; that revision (and
every other revision that receives traffic) is Provisioned, Healthy and Running with at least minReplicas replicas;
traffic is split as the environment expects (all on the latest revision by default); and the template image is the
released one. "Deployment succeeded" while the new revision never started (azure-cli-extensions#6251) fails here
with ARM's own provisioning error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from checks.converge import State, Timeline, look_or_wait, poll
from checks.deadline import Deadline
from checks.images import ImageExpectation
from checks.result import Category, CheckResult, Evidence, Verdict
from checks.runner import attempt
from checks.transports.arm import arm_call, as_dict, redact

if TYPE_CHECKING:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

CHECK = "containerapp_healthy"
SETTLED_APP = {"Succeeded"}
FAILED_APP = {"Failed", "Canceled"}
RUNNING = {"Running", "RunningAtMaxScale"}
FAILED_RUNNING = {"Failed", "Degraded", "Stopped"}
ABSENT = "{}; was it deployed to this resource group?"  # an app that ARM does not know


@dataclass(frozen=True)
class AppRef:
    resource_group: str
    name: str

    @property
    def where(self) -> str:
        return f"ContainerApp:{self.resource_group}/{self.name}"


@dataclass(frozen=True)
class AppExpectation:
    image: ImageExpectation | None = None
    traffic: dict[str, int] | None = None  # revision name (or "latest") -> weight; None: everything on the latest


@dataclass
class AppView:
    app: dict[str, Any]
    revisions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def props(self) -> dict[str, Any]:
        return dict(self.app.get("properties", {}))

    @property
    def latest(self) -> str | None:
        return self.props.get("latestRevisionName")


def check_container_app(
    client: ContainerAppsAPIClient,
    ref: AppRef,
    expected: AppExpectation,
    deadline: Deadline,
    within: Deadline | None = None,
    interval: float = 5.0,
) -> CheckResult:
    """One look, or (with `within`) polling until settled, failed, or out of time."""
    views: list[AppView] = []
    timeline = Timeline()

    def evaluate() -> State:
        views.append(read_app(client, ref, deadline))
        return app_state(views[-1], expected)

    def judge() -> CheckResult:
        state = look_or_wait(evaluate, within, lambda window: poll(window, interval), grace=0, timeline=timeline)
        assert state.verdict is not None
        evidence = _evidence(views[-1]) if views and state.verdict is not Verdict.PASS else ()
        return CheckResult(
            CHECK, ref.where, state.verdict, state.message, (*evidence, *timeline.evidence()), state.category
        )

    return attempt(CHECK, ref.where, judge, absent=ABSENT)


def read_app(client: ContainerAppsAPIClient, ref: AppRef, deadline: Deadline) -> AppView:
    """The app, then each revision that matters (latest, latest ready, those named in traffic) by direct GET: an app
    keeps every old revision, and a list would page through all of them to find three."""
    app = as_dict(
        arm_call(lambda **kw: client.container_apps.get(ref.resource_group, ref.name, **kw), deadline, ref.where)
    )
    view = AppView(app)
    config = view.props.get("configuration", {})
    named = [t.get("revisionName") for t in (config.get("ingress") or {}).get("traffic") or []]
    wanted = dict.fromkeys(n for n in (view.latest, view.props.get("latestReadyRevisionName"), *named) if n)
    for name in wanted:
        view.revisions[name] = _revision(client, ref, name, deadline)
    return view


def _revision(client: ContainerAppsAPIClient, ref: AppRef, name: str, deadline: Deadline) -> dict[str, Any]:
    revisions = client.container_apps_revisions
    return as_dict(
        arm_call(
            lambda **kw: revisions.get_revision(ref.resource_group, ref.name, name, **kw),
            deadline,
            f"{ref.where} revision {name}",
        )
    )


def app_state(view: AppView, expected: AppExpectation) -> State:
    props = view.props
    provisioning = props.get("provisioningState", "Unknown")
    if provisioning in FAILED_APP:
        return State(Verdict.FAIL, f"app provisioningState {provisioning}{_latest_error(view)}", Category.PROVISIONING)
    if provisioning not in SETTLED_APP:
        return State(None, f"app provisioningState {provisioning}", Category.PROVISIONING)
    latest, ready = view.latest, props.get("latestReadyRevisionName")
    revision = view.revisions.get(latest or "")
    if revision is None:
        return State(
            Verdict.FAIL, f"latest revision {latest!r} is not among the app's revisions", Category.PROVISIONING
        )
    broken = _revision_problem(revision, view)
    if broken is not None and broken.verdict is Verdict.FAIL:
        return broken
    if latest != ready:
        return State(None, f"latest revision {latest} is not ready yet (latest ready: {ready})", Category.PROVISIONING)
    if broken is not None:
        return broken
    traffic, wanted = traffic_of(view), _wanted_traffic(view, expected.traffic)
    if traffic != wanted:
        return State(Verdict.FAIL, f"traffic {_weights(traffic)}, expected {_weights(wanted)}", Category.WRONG_VERSION)
    for name, weight in traffic.items():
        other = view.revisions.get(name)
        problem = _revision_problem(other, view) if other is not None and name != latest and weight > 0 else None
        if problem is not None:
            return State(
                Verdict.FAIL,
                f"revision {name} receives {weight}% of traffic but {problem.message}",
                Category.PROVISIONING,
            )
    image_problem = _image_problem(view, revision, expected.image)
    if image_problem:
        return image_problem
    replicas = revision.get("properties", {}).get("replicas", 0)
    return State(
        Verdict.PASS,
        f"Succeeded; revision {latest} Provisioned, Healthy, Running with {replicas} "
        f"replicas; traffic {_weights(traffic)}{_image_note(revision)}",
    )


def _revision_problem(revision: dict[str, Any], view: AppView) -> State | None:
    """None when Provisioned, Healthy, Running with enough replicas; a FAIL when it cannot get there."""
    props, name = revision.get("properties", {}), revision.get("name")
    provisioning = props.get("provisioningState", "Unknown")
    if provisioning == "Failed":
        error = props.get("provisioningError") or "no provisioningError given"
        return State(Verdict.FAIL, f"revision {name} provisioningState Failed: {error}", Category.PROVISIONING)
    if provisioning != "Provisioned":
        return State(None, f"revision {name} provisioningState {provisioning}", Category.PROVISIONING)
    running, health = props.get("runningState", "Unknown"), props.get("healthState", "None")
    if running in FAILED_RUNNING or health == "Unhealthy":
        return State(
            Verdict.FAIL,
            f"revision {name} is {health}, runningState {running}, {_replica_note(props)}{_running_details(props)}",
            Category.PROVISIONING,
        )
    if running not in RUNNING or health != "Healthy":
        return State(None, f"revision {name} runningState {running}, healthState {health}", Category.PROVISIONING)
    minimum = int(props.get("template", {}).get("scale", {}).get("minReplicas") or 0)
    if int(props.get("replicas", 0)) < minimum:
        return State(
            Verdict.FAIL,
            f"revision {name} runs {props.get('replicas', 0)} replicas, minReplicas {minimum}",
            Category.PROVISIONING,
        )
    return None


def traffic_of(view: AppView) -> dict[str, int]:
    """Effective weight per revision name, resolving `latestRevision: true`."""
    config = view.props.get("configuration", {})
    entries = (config.get("ingress") or {}).get("traffic") or []
    if not entries or config.get("activeRevisionsMode", "Single") == "Single":
        return {view.latest or "?": 100}  # single mode: the latest revision takes all traffic
    weights: dict[str, int] = {}
    for entry in entries:
        name = view.latest if entry.get("latestRevision") else entry.get("revisionName")
        weights[str(name)] = weights.get(str(name), 0) + int(entry.get("weight", 0))
    return {name: weight for name, weight in weights.items() if weight > 0}


def _wanted_traffic(view: AppView, policy: dict[str, int] | None) -> dict[str, int]:
    if policy is None:
        return {view.latest or "?": 100}
    return {(view.latest or "?") if name == "latest" else name: weight for name, weight in policy.items() if weight}


def _image_problem(view: AppView, revision: dict[str, Any], expected: ImageExpectation | None) -> State | None:
    if expected is None:
        return None
    for label, template in (
        ("app template", view.props.get("template", {})),
        (f"revision {revision.get('name')}", revision.get("properties", {}).get("template", {})),
    ):
        containers = template.get("containers") or []
        name = expected.container or (containers[0].get("name") if containers else None)
        image = next((c.get("image", "") for c in containers if c.get("name") == name), None)
        if image is None:
            return State(Verdict.FAIL, f"{label} has no container {name!r}", Category.PROVISIONING)
        if not expected.matches(image, image if expected.digest else None):
            return State(Verdict.FAIL, f"{label} runs {image}, expected {expected.describe()}", Category.WRONG_VERSION)
    return None


def _image_note(revision: dict[str, Any]) -> str:
    containers = revision.get("properties", {}).get("template", {}).get("containers") or []
    return f"; image {containers[0].get('image')}" if containers else ""


def _latest_error(view: AppView) -> str:
    revision = view.revisions.get(view.latest or "", {})
    error = revision.get("properties", {}).get("provisioningError")
    return f": revision {view.latest}: {error}" if error else ""


def _running_details(props: dict[str, Any]) -> str:
    details = props.get("runningStateDetails")
    return f": {details}" if details else ""


def _replica_note(props: dict[str, Any]) -> str:
    minimum = props.get("template", {}).get("scale", {}).get("minReplicas")
    return f"{props.get('replicas', 0)} replicas" + (f" (minReplicas {minimum})" if minimum else "")


def _weights(traffic: dict[str, int]) -> str:
    return ", ".join(f"{weight}% {name}" for name, weight in sorted(traffic.items(), key=lambda kv: -kv[1]))


def _evidence(view: AppView) -> tuple[Evidence, ...]:
    return (
        Evidence.as_json(f"ContainerApp {view.app.get('name')}", redact(view.app)),
        Evidence.as_json(f"ContainerApp {view.app.get('name')} revisions", redact(list(view.revisions.values()))),
    )
