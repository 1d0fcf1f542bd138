"""Azure Container App: provisioning succeeded and the latest revision really runs the release.

    result = check_container_app(client, AppRef("rg-orders", "orders"), AppExpectation(image=...), deadline)

PASS when the app's provisioningState is Succeeded and its runningStatus Running; latestRevisionName ==
latestReadyRevisionName; that revision (and every other revision that receives traffic) is active, Provisioned,
Healthy and Running with at least minReplicas replicas; traffic is split as the environment expects (all on the
latest revision by default; by revision name, `latest`, or `label:NAME`); and the template image is the released
one. "Deployment succeeded" while the new revision never started (azure-cli-extensions#6251) fails here with ARM's
own provisioning error.

Every state the 2025-07-01 API documents is decided (`APP_PROVISIONING`, `APP_RUNNING`, `REVISION_PROVISIONING`,
`REVISION_RUNNING`, `REVISION_HEALTH`): good, transient (waited for within the window), terminal (FAIL at once), or
undecidable (ERROR at once: ARM itself cannot tell, or the value is one the API does not document). A state field
that is absent is undecidable too: a revision whose provisioningState nobody reported is not known to be provisioned.
Values compare case-insensitively, as the SDKs' enums do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from deploy_verify.checks.converge import State, Timeline, look_or_wait, poll
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.images import ImageExpectation, plan_for
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.arm import (
    GENERIC_CREDENTIAL,
    Credential,
    arm_call,
    as_dict,
    documented,
    malformed,
    properties_of,
    redact,
)

if TYPE_CHECKING:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

CHECK = "containerapp_healthy"
ABSENT = "was it deployed to this resource group?"  # the hint for an app that ARM does not know
LABEL = "label:"  # the `traffic:` key form for a revision label: `label:blue`


class Is(Enum):
    """What a documented state means for the verdict."""

    GOOD = "good"
    TRANSIENT = "transient"  # waited for within the window; a FAIL after one look
    TERMINAL = "terminal"  # FAIL at once: waiting will not fix it
    UNDECIDABLE = "undecidable"  # ERROR at once: nobody can tell from this state


# ContainerAppProvisioningState (ContainerApps.json, 2025-07-01).
APP_PROVISIONING = {
    "InProgress": Is.TRANSIENT,
    "Succeeded": Is.GOOD,
    "Failed": Is.TERMINAL,
    "Canceled": Is.TERMINAL,
    "Deleting": Is.TERMINAL,  # the app is going away: it will never serve this release
}
# ContainerAppRunningStatus. Suspended and Ready are documented as states of Container Apps *jobs*.
APP_RUNNING = {
    "Progressing": Is.TRANSIENT,  # "transitioning between Stopped and Running"
    "Running": Is.GOOD,
    "Stopped": Is.TERMINAL,  # stopped by someone (az containerapp stop): it does not start by itself
    "Suspended": Is.TERMINAL,
    "Ready": Is.UNDECIDABLE,  # a job's "ready to be triggered": says nothing about an app's replicas
}
# RevisionProvisioningState (ContainerAppsRevisions.json).
REVISION_PROVISIONING = {
    "Provisioning": Is.TRANSIENT,
    "Provisioned": Is.GOOD,
    "Failed": Is.TERMINAL,
    "Deprovisioning": Is.TERMINAL,  # being torn down (deactivated, or its app deleted): it cannot become the one
    "Deprovisioned": Is.TERMINAL,
}
# RevisionRunningState. RunningAtMaxScale is not in the 2025-07-01 enum (modelAsString: open) but ARM reports it for
# a revision running at its maxReplicas; it runs.
REVISION_RUNNING = {
    "Running": Is.GOOD,
    "RunningAtMaxScale": Is.GOOD,
    "Processing": Is.TRANSIENT,
    "Stopped": Is.TERMINAL,
    "Degraded": Is.TERMINAL,
    "Failed": Is.TERMINAL,
    "Unknown": Is.UNDECIDABLE,  # ARM itself cannot tell whether the revision runs
}
# RevisionHealthState. None: no health reported yet (a revision still starting).
REVISION_HEALTH = {"Healthy": Is.GOOD, "Unhealthy": Is.TERMINAL, "None": Is.TRANSIENT}


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
    # revision name, "latest" or "label:NAME" -> weight (validated by the config loader); None: all on the latest
    traffic: dict[str, int] | None = None


@dataclass
class AppView:
    app: dict[str, Any]
    revisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    where: str = "ContainerApp"

    @property
    def props(self) -> dict[str, Any]:
        return properties_of(self.app, self.where)

    @property
    def app_name(self) -> str:
        return self.where.rsplit("/", 1)[-1]

    @property
    def latest(self) -> str | None:
        return documented(self.props.get("latestRevisionName"), str, self.where, "properties.latestRevisionName")

    @property
    def ready(self) -> str | None:
        return documented(
            self.props.get("latestReadyRevisionName"), str, self.where, "properties.latestReadyRevisionName"
        )

    @property
    def mode(self) -> str:
        mode = documented(self.config.get("activeRevisionsMode"), str, self.where, "activeRevisionsMode")
        return str(mode or "Single")  # the spec's default when no value is given

    @property
    def config(self) -> dict[str, Any]:
        return dict(documented(self.props.get("configuration"), dict, self.where, "properties.configuration") or {})

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The ingress traffic weights, each checked to be an object."""
        ingress = documented(self.config.get("ingress"), dict, self.where, "configuration.ingress") or {}
        raw = documented(ingress.get("traffic"), list, self.where, "configuration.ingress.traffic") or []
        return [documented(e, dict, self.where, f"configuration.ingress.traffic[{i}]") or {} for i, e in enumerate(raw)]


def check_container_app(
    client: ContainerAppsAPIClient,
    ref: AppRef,
    expected: AppExpectation,
    deadline: Deadline,
    within: Deadline | None = None,
    interval: float = 5.0,
    credential: Credential = GENERIC_CREDENTIAL,
) -> CheckResult:
    """One look, or (with `within`) polling until settled, failed, or out of time."""
    views: list[AppView] = []
    timeline = Timeline()

    def evaluate() -> State:
        views.append(read_app(client, ref, deadline, credential))
        return app_state(views[-1], expected)

    def judge() -> CheckResult:
        state = look_or_wait(evaluate, within, lambda window: poll(window, interval), grace=0, timeline=timeline)
        assert state.verdict is not None
        evidence = _evidence(views[-1]) if views and state.verdict is not Verdict.PASS else ()
        return CheckResult(
            CHECK, ref.where, state.verdict, state.message, (*evidence, *timeline.evidence()), state.category
        )

    return attempt(CHECK, ref.where, judge, evidence=lambda: _evidence(views[-1]) if views else ())


def read_app(
    client: ContainerAppsAPIClient, ref: AppRef, deadline: Deadline, credential: Credential = GENERIC_CREDENTIAL
) -> AppView:
    """The app, then each revision that matters (latest, latest ready, those named in traffic) by direct GET: an app
    keeps every old revision, and a list would page through all of them to find three."""
    app = as_dict(
        arm_call(
            lambda **kw: client.container_apps.get(ref.resource_group, ref.name, **kw),
            deadline,
            ref.where,
            credential=credential,
            absent=ABSENT,
        ),
        ref.where,
    )
    view = AppView(app, where=ref.where)
    # Single mode routes everything to the latest ready revision: names left in its traffic entries are not read.
    entries = view.entries if view.mode.lower() != "single" else []
    named = [documented(e.get("revisionName"), str, ref.where, "traffic revisionName") for e in entries]
    wanted = dict.fromkeys(n for n in (view.latest, view.ready, *named) if n)
    for name in wanted:
        view.revisions[name] = _revision(client, ref, name, deadline, credential)
    return view


def _revision(
    client: ContainerAppsAPIClient, ref: AppRef, name: str, deadline: Deadline, credential: Credential
) -> dict[str, Any]:
    revisions, what = client.container_apps_revisions, f"{ref.where} revision {name}"
    return as_dict(
        arm_call(
            lambda **kw: revisions.get_revision(ref.resource_group, ref.name, name, **kw),
            deadline,
            what,
            credential=credential,
            absent="the app names it (as its latest, latest ready, or in its traffic), but ARM has no such revision",
        ),
        what,
    )


def app_state(view: AppView, expected: AppExpectation) -> State:
    app_problem = _app_problem(view)
    if app_problem is not None:
        return app_problem
    latest, ready = view.latest, view.ready
    if latest is None:
        return _undecidable("ARM reported no properties.latestRevisionName: cannot tell which revision is the latest")
    revision = view.revisions.get(latest)
    if revision is None:
        return State(
            Verdict.FAIL, f"latest revision {latest!r} is not among the app's revisions", Category.PROVISIONING
        )
    broken = _revision_problem(revision, view)
    if broken is not None and broken.verdict in (Verdict.FAIL, Verdict.ERROR):
        return broken
    if latest != ready:
        return State(None, f"latest revision {latest} is not ready yet (latest ready: {ready})", Category.PROVISIONING)
    if broken is not None:
        return broken
    traffic = traffic_of(view)
    wanted = wanted_traffic(view, expected.traffic)
    if isinstance(wanted, State):
        return wanted
    if traffic != wanted:
        return State(
            Verdict.FAIL,
            f"traffic {_weights(traffic, view)}, expected {_weights(wanted, view)}{_traffic_note(view, wanted)}",
            Category.WRONG_VERSION,
        )
    serving = _serving_problem(view, traffic, latest)
    if serving is not None:
        return serving
    image_problem = _image_problem(view, revision, expected.image)
    if image_problem:
        return image_problem
    replicas = properties_of(revision, view.where).get("replicas", 0)
    idle = " (scaled to zero: minReplicas 0)" if replicas == 0 else ""
    return State(
        Verdict.PASS,
        f"Succeeded; revision {latest} Provisioned, Healthy, Running with {replicas} "
        f"replicas{idle}; traffic {_weights(traffic, view)}{_image_note(revision)}",
    )


def _app_problem(view: AppView) -> State | None:
    """The app's own provisioningState and runningStatus; None when both allow the revisions to be judged."""
    props = view.props
    provisioning = documented(props.get("provisioningState"), str, view.where, "properties.provisioningState")
    meaning = _meaning(APP_PROVISIONING, provisioning)
    if provisioning is None:
        return _undecidable("ARM reported no properties.provisioningState: cannot tell whether the app provisioned")
    if meaning is None:
        return _undocumented("app provisioningState", provisioning, APP_PROVISIONING)
    if meaning is Is.TERMINAL:
        why = {"deleting": ": the app is being deleted; it will not serve this release"}.get(provisioning.lower(), "")
        return State(
            Verdict.FAIL, f"app provisioningState {provisioning}{why}{_latest_error(view)}", Category.PROVISIONING
        )
    if meaning is Is.TRANSIENT:
        return State(None, f"app provisioningState {provisioning}", Category.PROVISIONING)
    running = documented(props.get("runningStatus"), str, view.where, "properties.runningStatus")
    if running is None:  # older API versions do not report it: the revisions' own states decide
        return None
    return _app_running_problem(running)


def _app_running_problem(running: str) -> State | None:
    meaning = _meaning(APP_RUNNING, running)
    if meaning is None:
        return _undocumented("app runningStatus", running, APP_RUNNING)
    if meaning is Is.TERMINAL:
        return State(
            Verdict.FAIL,
            f"app runningStatus {running}: it runs no replicas; start it (az containerapp start) if it should serve "
            "this release",
            Category.PROVISIONING,
        )
    if meaning is Is.TRANSIENT:
        return State(None, f"app runningStatus {running} (between Stopped and Running)", Category.PROVISIONING)
    if meaning is Is.UNDECIDABLE:
        return _undecidable(
            f"app runningStatus {running}, which the API documents for Container Apps jobs only: cannot tell "
            "whether the app runs; is this component a job?"
        )
    return None


def _revision_problem(revision: dict[str, Any], view: AppView) -> State | None:
    """None when active, Provisioned, Healthy, Running with enough replicas; else what is wrong, as a State."""
    where = f"{view.where} revision {revision.get('name')}"
    props, name = properties_of(revision, where), revision.get("name")
    provisioning = documented(props.get("provisioningState"), str, where, "properties.provisioningState")
    meaning = _meaning(REVISION_PROVISIONING, provisioning)
    if provisioning is None:
        return _undecidable(f"ARM reported no provisioningState for revision {name}: cannot tell whether it is ready")
    if meaning is None:
        return _undocumented(f"revision {name} provisioningState", provisioning, REVISION_PROVISIONING)
    if provisioning.lower() == "failed":
        error = props.get("provisioningError") or "no provisioningError given"
        return State(Verdict.FAIL, f"revision {name} provisioningState Failed: {error}", Category.PROVISIONING)
    if meaning is Is.TERMINAL:
        return State(
            Verdict.FAIL,
            f"revision {name} provisioningState {provisioning}: it is being taken down (deactivated, or its app "
            "deleted) and cannot serve",
            Category.PROVISIONING,
        )
    if meaning is Is.TRANSIENT:
        return State(None, f"revision {name} provisioningState {provisioning}", Category.PROVISIONING)
    if documented(props.get("active"), bool, where, "properties.active") is False:
        return State(
            Verdict.FAIL,
            f"revision {name} is inactive (active: false): it runs no replicas and serves nothing; activate it "
            "(az containerapp revision activate) or send the traffic to an active revision",
            Category.PROVISIONING,
        )
    return _running_problem(props, str(name), where)


def _running_problem(props: dict[str, Any], name: str, where: str) -> State | None:
    running = documented(props.get("runningState"), str, where, "properties.runningState")
    health = documented(props.get("healthState"), str, where, "properties.healthState")
    run_is, health_is = _meaning(REVISION_RUNNING, running), _meaning(REVISION_HEALTH, health)
    if Is.TERMINAL in (run_is, health_is):
        return State(
            Verdict.FAIL,
            f"revision {name} is {health or 'None'}, runningState {running}, {_replica_note(props)}"
            f"{_running_details(props)}",
            Category.PROVISIONING,
        )
    if running is None or health is None:
        missing = "runningState" if running is None else "healthState"
        return _undecidable(f"ARM reported no {missing} for revision {name}: cannot tell whether it runs healthy")
    if run_is is None:
        return _undocumented(f"revision {name} runningState", running, REVISION_RUNNING)
    if health_is is None:
        return _undocumented(f"revision {name} healthState", health, REVISION_HEALTH)
    if run_is is Is.UNDECIDABLE:
        return _undecidable(
            f"revision {name} runningState {running}: ARM cannot tell whether it runs; look at its replicas "
            "(az containerapp replica list --revision NAME)"
        )
    if Is.TRANSIENT in (run_is, health_is):
        return State(None, f"revision {name} runningState {running}, healthState {health}", Category.PROVISIONING)
    return _replica_problem(props, name, where)


def _replica_problem(props: dict[str, Any], name: str, where: str) -> State | None:
    replicas = documented(props.get("replicas"), int, where, "properties.replicas")
    if replicas is None:
        return _undecidable(f"ARM reported no replica count for revision {name}: cannot tell whether it runs")
    minimum = _min_replicas(props, where)
    if replicas < minimum:
        return State(
            Verdict.FAIL, f"revision {name} runs {replicas} replicas, minReplicas {minimum}", Category.PROVISIONING
        )
    return None


def _min_replicas(props: dict[str, Any], where: str) -> int:
    template = documented(props.get("template"), dict, where, "properties.template") or {}
    scale = documented(template.get("scale"), dict, where, "template.scale") or {}
    return int(documented(scale.get("minReplicas"), int, where, "template.scale.minReplicas") or 0)


def _serving_problem(view: AppView, traffic: dict[str, int], latest: str) -> State | None:
    """Every other revision that takes traffic must be as healthy as the latest; a transient one is waited for."""
    for name, weight in traffic.items():
        other = view.revisions.get(name)
        problem = _revision_problem(other, view) if other is not None and name != latest and weight > 0 else None
        if problem is not None:
            return State(
                problem.verdict,
                f"revision {name} receives {weight}% of traffic but {problem.message}",
                problem.category or Category.PROVISIONING,
            )
    return None


def traffic_of(view: AppView) -> dict[str, int]:
    """Effective weight per revision name. `latestRevision: true` is the latest *ready* revision ("the latest stable
    revision": traffic does not move to a new revision before it is ready); a label adds no weight of its own."""
    entries = view.entries
    serving = view.ready or view.latest or "?"
    if not entries or view.mode.lower() == "single":
        return {serving: 100}  # single mode: the latest ready revision takes all traffic; weights do not apply
    weights: dict[str, int] = {}
    for i, entry in enumerate(entries):
        name = _entry_revision(entry, i, view)
        weight = documented(entry.get("weight"), int, view.where, f"configuration.ingress.traffic[{i}].weight") or 0
        weights[name] = weights.get(name, 0) + weight
    return {name: weight for name, weight in weights.items() if weight > 0}


def _traffic_note(view: AppView, wanted: dict[str, int]) -> str:
    """Why the app cannot have the expected split at all, when that is the reason."""
    if len(wanted) < 2:
        return ""
    if not view.entries:
        return "; the app has no ingress traffic weights (configuration.ingress), so nothing splits by weight"
    if view.mode.lower() == "single":
        return "; the app is in single-revision mode (activeRevisionsMode Single), where weights do not apply"
    return ""


def labels_of(view: AppView) -> dict[str, str]:
    """Traffic label -> the revision it routes to (multiple-revision mode only; single mode has no weights)."""
    labels: dict[str, str] = {}
    for i, entry in enumerate(view.entries):
        label = documented(entry.get("label"), str, view.where, f"configuration.ingress.traffic[{i}].label")
        if label:
            labels[label] = _entry_revision(entry, i, view)
    return labels


def _entry_revision(entry: dict[str, Any], i: int, view: AppView) -> str:
    name = documented(entry.get("revisionName"), str, view.where, f"configuration.ingress.traffic[{i}].revisionName")
    latest = documented(entry.get("latestRevision"), bool, view.where, f"configuration.ingress.traffic[{i}]")
    if latest:
        resolved = view.ready or view.latest or "?"
        if name and name != resolved:
            raise malformed(view.where, f"traffic[{i}] naming revision {name} and latestRevision: true ({resolved})")
        return resolved
    if not name:
        raise malformed(view.where, f"traffic[{i}] naming no revision (neither revisionName nor latestRevision)")
    return str(name)


def wanted_traffic(view: AppView, policy: dict[str, int] | None) -> dict[str, int] | State:
    """The expected weight per revision name: `latest` is the latest revision, `label:NAME` the revision the label
    routes to; a label the app does not carry is a FAIL that names the labels it does carry."""
    latest = view.latest or "?"
    if policy is None:
        return {latest: 100}
    labels = labels_of(view) if view.mode.lower() != "single" else {}
    wanted: dict[str, int] = {}
    for key, weight in policy.items():
        if key == "latest":
            name = latest
        elif key.startswith(LABEL):
            label = key.removeprefix(LABEL)
            if label not in labels:
                carried = ", ".join(sorted(labels)) or "none"
                return State(
                    Verdict.FAIL,
                    f"no traffic entry carries label {label!r} (labels on the app: {carried}; "
                    f"activeRevisionsMode {view.mode}); expected {weight}% through it",
                    Category.WRONG_VERSION,
                )
            name = labels[label]
        else:
            name = key
        wanted[name] = wanted.get(name, 0) + weight
    return {name: weight for name, weight in wanted.items() if weight > 0}


def _image_problem(view: AppView, revision: dict[str, Any], expected: ImageExpectation | None) -> State | None:
    """The released image in the app's template and in the latest revision's, per container as `plan_for` resolves
    the expectation (the named container, one named like the app or component, the only one, or each one the release
    lists; several and nothing says which: ERROR, never the first)."""
    if expected is None or not (expected.given or expected.containers):
        return None
    where = f"{view.where} revision {revision.get('name')}"
    for label, template in (
        ("app template", _template(view.props, view.where)),
        (f"revision {revision.get('name')}", _template(properties_of(revision, where), where)),
    ):
        plan = plan_for(template, view.app_name, expected)
        if plan.missing:
            names = ", ".join(repr(n) for n in plan.missing)
            return State(
                Verdict.FAIL, f"{label} has no container {names} ({_containers_found(template)})", Category.PROVISIONING
            )
        if plan.ambiguous:
            return _undecidable(plan.ambiguous.replace("the pod template", f"the {label}"))
        for slot, rule in plan.rules:
            image = next(c["image"] for c in _listed(template, slot.init) if c["name"] == slot.name)
            if not rule.matches(image, image if rule.digest else None):
                found = f"{label} {slot.label} runs {image}, expected {rule.describe()}"
                return State(Verdict.FAIL, found, Category.WRONG_VERSION)
    return None


def _template(props: dict[str, Any], where: str) -> dict[str, Any]:
    """The template's containers and initContainers, each checked to carry a name and an image (the API requires
    both of a container)."""
    template = documented(props.get("template"), dict, where, "properties.template") or {}
    checked: dict[str, Any] = {}
    for key in ("containers", "initContainers"):
        listed = documented(template.get(key), list, where, f"template.{key}") or []
        for i, container in enumerate(listed):
            path = f"template.{key}[{i}]"
            documented(container, dict, where, path)
            if not isinstance(container, dict) or not all(isinstance(container.get(k), str) for k in ("name", "image")):
                raise malformed(where, f"{path} without a name and an image, which the API requires of a container")
        checked[key] = listed
    return checked


def _listed(template: dict[str, Any], init: bool) -> list[dict[str, Any]]:
    return list(template["initContainers" if init else "containers"])


def _containers_found(template: dict[str, Any]) -> str:
    names = ", ".join(c["name"] for c in template["containers"]) or "none"
    init = ", ".join(c["name"] for c in template["initContainers"])
    return f"it has {names}" + (f" and init containers {init}" if init else "")


def _meaning(table: dict[str, Is], value: str | None) -> Is | None:
    if value is None:
        return None
    return next((meaning for state, meaning in table.items() if state.lower() == value.lower()), None)


def _undecidable(message: str) -> State:
    return State(Verdict.ERROR, message, Category.UNDECIDED)


def _undocumented(what: str, value: str, table: dict[str, Is]) -> State:
    documented_states = ", ".join(table)
    return _undecidable(f"{what} {value!r} is not one the API documents ({documented_states}): cannot tell its meaning")


def _image_note(revision: dict[str, Any]) -> str:
    containers = _dig(revision, "properties", "template", "containers")
    images = [c.get("image") for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []
    return f"; image {', '.join(map(str, images))}" if images else ""


def _latest_error(view: AppView) -> str:
    error = _dig(view.revisions.get(view.latest or "", {}), "properties", "provisioningError")
    return f": revision {view.latest}: {error}" if error else ""


def _running_details(props: dict[str, Any]) -> str:
    details = props.get("runningStateDetails")
    return f": {details}" if details else ""


def _replica_note(props: dict[str, Any]) -> str:
    minimum = _dig(props, "template", "scale", "minReplicas")
    return f"{props.get('replicas', 0)} replicas" + (f" (minReplicas {minimum})" if minimum else "")


def _dig(document: Any, *keys: str) -> Any:
    """document[k1][k2]... for what a message only shows; None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _weights(traffic: dict[str, int], view: AppView | None = None) -> str:
    """`80% pricing--v12, 20% pricing--v11 (label staging)`: the labels say which expectation a revision met."""
    if not traffic:
        return "none (every weight is 0)"
    labels: dict[str, list[str]] = {}
    for label, name in (_safe_labels(view) if view is not None else {}).items():
        labels.setdefault(name, []).append(label)
    return ", ".join(
        f"{weight}% {name}" + (f" (label {', '.join(sorted(labels[name]))})" if name in labels else "")
        for name, weight in sorted(traffic.items(), key=lambda kv: -kv[1])
    )


def _safe_labels(view: AppView) -> dict[str, str]:
    return labels_of(view) if view.mode.lower() != "single" else {}


def _evidence(view: AppView) -> tuple[Evidence, ...]:
    return (
        Evidence.as_json(f"ContainerApp {view.app.get('name')}", redact(view.app)),
        Evidence.as_json(f"ContainerApp {view.app.get('name')} revisions", redact(list(view.revisions.values()))),
    )
