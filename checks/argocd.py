"""Argo CD Application: synced to the release's revision, healthy, and its last sync operation succeeded.

    result = check_application(reader, ApplicationRef("argocd", "shop"), "1a2b3c4", deadline)

Read from the Application object (argoproj.io/v1alpha1) that Argo CD's application controller keeps up to date, not
through the argocd CLI or API server: one LIST of Applications per namespace serves every component there. The
fields and their values are those of Argo CD's API (pkg/apis/application/v1alpha1/types.go, gitops-engine's health
and operation phases):

- status.sync: `status` Synced / OutOfSync / Unknown, and the `revision` (`revisions` for a multi-source app) the
  comparison was made at: a resolved git commit SHA, or a Helm chart version. `comparedTo.source(s)` is the spec it
  compared; a spec that differs from it has not been compared yet (Argo CD refreshes when the two differ).
- status.health: the app's health, the worst of its resources' (Healthy < Suspended < Progressing < Missing <
  Degraded < Unknown); its `message` names the resources that caused it.
- status.operationState: the last operation (a sync): `phase` Running / Terminating / Failed / Error / Succeeded.
  An app can be Synced without any operation (its manifests already matched the cluster).
- status.resources[]: each managed resource's sync status and, where Argo CD persists it (before 3.0, or with
  controller.resource.health.persist=true), its health; `resourceHealthSource: appTree` says it is kept elsewhere.
- status.conditions[]: a type ending in "Error" (ComparisonError, SyncError, InvalidSpecError, ...) is an error.

The expected revision is the release manifest's `version` for the component: a commit SHA (full, or a prefix of at
least 7 hex digits), or the tag / chart version the Application tracks (its targetRevision, which Argo CD resolved to
`revision` when it compared). It is never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from deploy_verify.checks.converge import State, Timeline, look_or_wait
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import Absent, attempt
from deploy_verify.checks.transports.kube import KubeReader, Obj

CHECK = "argocd_application"
API_VERSION = "argoproj.io/v1alpha1"
KIND = "Application"
# A git commit as a release manifest may name it: SHA-1 (40) or SHA-256 (64) hex, or a prefix git would accept.
COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
RUNNING = frozenset({"Running", "Terminating"})  # gitops-engine's phases of an operation that has not ended
FAILED = frozenset({"Failed", "Error"})
SHOWN = 5  # resources named in one message; the evidence has all of them


@dataclass(frozen=True)
class ApplicationRef:
    namespace: str  # where the Application object lives (usually argocd), not where its resources go
    name: str

    @property
    def where(self) -> str:
        return f"Application:{self.namespace}/{self.name}"


@dataclass
class Findings:
    """What one look found: terminal problems (FAIL), states Argo CD is still working on, and notes for a PASS."""

    problems: list[tuple[str, Category]] = field(default_factory=list)
    pending: list[tuple[str, Category]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_application(
    reader: KubeReader,
    ref: ApplicationRef,
    expected: str | None,
    deadline: Deadline,
    within: Deadline | None = None,
    grace: float = 5.0,
) -> CheckResult:
    """One look, or (with `within`) a watch on the namespace's Applications until synced and healthy, failed, or out
    of time. A failed state must last `grace` seconds during a wait: auto-sync may be about to act on it."""
    if not expected:
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.ERROR,
            "no expected revision for this Application (a git commit SHA, tag or chart version): "
            "pass --release FILE or --expect COMPONENT=VERSION",
            category=Category.UNDECIDED,
        )
    seen: list[Obj | None] = []
    timeline = Timeline()

    def judge() -> CheckResult:
        key = reader.resource(API_VERSION, KIND, deadline)  # UnknownResource (ERROR) when the CRD is not served

        def evaluate() -> State:
            seen.append(reader.listing(key, ref.namespace, deadline).named(ref.name))
            return application_state(seen[-1], ref, expected)

        def wakeups(window: Deadline) -> Iterable[object]:
            return reader.wakeups([(key, ref.namespace)], window)

        state = look_or_wait(evaluate, within, wakeups, grace, timeline)
        assert state.verdict is not None
        evidence = (_evidence(seen[-1]),) if seen and seen[-1] is not None else ()
        return CheckResult(
            CHECK, ref.where, state.verdict, state.message, (*evidence, *timeline.evidence()), state.category
        )

    return attempt(CHECK, ref.where, judge)


def application_revision(reader: KubeReader, ref: ApplicationRef, deadline: Deadline) -> str:
    """The revision the Application was last compared at (revisions of a multi-source app joined by ", "): what runs,
    for the inventory and the promotion check. Absent when there is no such Application or it has no revision."""
    key = reader.resource(API_VERSION, KIND, deadline)
    app = reader.listing(key, ref.namespace, deadline).named(ref.name)
    if app is None:
        raise Absent(f"no Application {ref.name!r} in namespace {ref.namespace!r}")
    revisions = _revisions(_status(app).get("sync") or {})
    if not revisions:
        raise Absent(f"Application {ref.namespace}/{ref.name} has no synced revision yet")
    return ", ".join(revisions)


def application_state(app: Obj | None, ref: ApplicationRef, expected: str) -> State:
    if app is None:
        return State(
            Verdict.FAIL,
            f"no Application {ref.name!r} in namespace {ref.namespace!r}; is `namespace` the one Argo CD keeps its "
            "Applications in (usually argocd), and `application` its name?",
            Category.PROVISIONING,
        )
    status = _status(app)
    sync = status.get("sync") or {}
    if not sync.get("status"):
        return State(
            Verdict.ERROR,
            "the Application has no sync status yet: Argo CD's application controller has not reconciled it; is it "
            f"running, and does it watch namespace {ref.namespace}?",
            Category.UNDECIDED,
        )
    found = Findings()
    errors = [c for c in status.get("conditions") or [] if str(c.get("type", "")).endswith("Error")]
    found.problems += [(f"{c['type']}: {_one_line(c.get('message'))}", Category.PROVISIONING) for c in errors]
    if sync["status"] == "Unknown" and not errors:
        return State(
            Verdict.ERROR,
            "Argo CD reports sync status Unknown without an error condition: it could not compare the app; "
            "`argocd app get --refresh` shows why",
            Category.UNDECIDED,
        )
    stale = _not_compared(app, sync)
    if stale:
        found.pending.append((stale, Category.WRONG_VERSION))
    operation = status.get("operationState")
    _judge_sync(found, app, sync, expected, operation, stale=stale is not None)
    _judge_operation(found, sync, expected, operation)
    _judge_health(found, status)
    return _verdict(found, sync)


def _judge_sync(found: Findings, app: Obj, sync: Obj, expected: str, operation: Obj | None, *, stale: bool) -> None:
    """Synced at the expected revision. Not yet, while a sync runs or the status is of an older spec: pending; and
    OutOfSync under automated sync, which will apply it (unless its last attempt failed)."""
    if sync["status"] == "Unknown":
        return  # the error condition above says why
    if stale:
        return  # the status is of an older spec; saying how it differs is enough
    syncing = operation is not None and operation.get("phase") in RUNNING
    automated = "automated" in ((app.get("spec") or {}).get("syncPolicy") or {})
    revisions = _revisions(sync)
    at = _describe(sync)
    if not revision_matches(expected, revisions, _targets(sync)):
        problem = f"Argo CD compared it at {at}, not the expected {expected}"
        hint = "; is the new revision pushed, and does targetRevision point at it?"
        (found.pending if syncing else found.problems).append((problem + hint, Category.WRONG_VERSION))
    if sync["status"] != "Synced":
        drifted = [r for r in _resources(_status(app)) if r.get("status") == "OutOfSync"]
        listed = _listing(
            [_resource_name(r) + (" (requires pruning)" if r.get("requiresPruning") else "") for r in drifted]
        )
        problem = f"{sync['status']} at {at}: {listed or 'no resource listed'}"
        if syncing or (automated and not _failed(operation)):
            found.pending.append((problem, Category.WRONG_VERSION))
        else:
            hint = "; `argocd app diff` shows the difference, a sync applies it"
            found.problems.append((problem + hint, Category.WRONG_VERSION))


def _judge_operation(found: Findings, sync: Obj, expected: str, operation: Obj | None) -> None:
    if operation is None:
        found.notes.append("no sync operation recorded (its manifests matched the cluster)")
        return
    phase = str(operation.get("phase", ""))
    message = _one_line(operation.get("message")) or "(no message)"
    if phase in RUNNING:
        found.pending.append((f"sync operation {phase}: {message}", Category.ROLLOUT_STUCK))
    elif phase in FAILED:
        done_at = _operation_revisions(operation)
        superseded = (
            sync.get("status") == "Synced"
            and bool(done_at)
            and not set(done_at) & set(_revisions(sync))
            and revision_matches(expected, _revisions(sync), _targets(sync))
        )
        if superseded:
            found.notes.append(f"the last sync operation (to {', '.join(map(_short, done_at))}) {phase}, superseded")
        else:
            found.problems.append((f"last sync operation {phase}: {message}", Category.PROVISIONING))
    elif phase == "Succeeded":
        finished = operation.get("finishedAt")
        found.notes.append(f"last sync Succeeded{f' at {finished}' if finished else ''}")
    else:
        found.problems.append((f"last sync operation in phase {phase or '(none)'}: {message}", Category.PROVISIONING))


def _judge_health(found: Findings, status: Obj) -> None:
    health = status.get("health") or {}
    code = str(health.get("status") or "")
    sick = [r for r in _resources(status) if _counts_as_unhealthy(r)]
    details = _listing([f"{_resource_name(r)}: {_health_line(r['health'])}" for r in sick])
    said = _one_line(health.get("message"))
    summary = f"health {code}" + (f": {said}" if said else "") + (f"; {details}" if details else "")
    if not code:
        found.problems.append(("Argo CD published no health for the app", Category.UNDECIDED))
    elif code == "Progressing":
        found.pending.append((f"not healthy yet: {summary}", Category.ROLLOUT_STUCK))
    elif code == "Missing":
        found.problems.append((f"{summary}; none of its resources exist in the cluster", Category.PROVISIONING))
    elif code != "Healthy":
        found.problems.append((summary, Category.ROLLOUT_STUCK))
    elif sick:
        found.problems.append((f"health Healthy, but {details}", Category.ROLLOUT_STUCK))
    if status.get("resourceHealthSource") == "appTree":
        found.notes.append("resource health kept outside the Application (resourceHealthSource: appTree)")


def _verdict(found: Findings, sync: Obj) -> State:
    if found.problems:
        return State(Verdict.FAIL, "; ".join(p for p, _ in found.problems), found.problems[0][1])
    if found.pending:
        return State(None, "; ".join(p for p, _ in found.pending), found.pending[0][1])
    notes = "".join(f"; {n}" for n in found.notes)
    return State(Verdict.PASS, f"Synced at {_describe(sync)} and Healthy{notes}")


def revision_matches(expected: str, revisions: list[str], targets: list[str]) -> bool:
    """The expected version is the revision Argo CD compared at (a commit SHA or prefix of one, a chart version), or
    the targetRevision (tag, chart version) it resolved to that revision."""
    wanted = expected.strip()
    for revision in revisions:
        if revision == wanted:
            return True
        if COMMIT.fullmatch(wanted.lower()) and revision.lower().startswith(wanted.lower()):
            return True
    return wanted in targets


# --- reading the status ----------------------------------------------------------------------------------------


def _status(app: Obj) -> Obj:
    status: Obj = app.get("status") or {}
    return status


def _revisions(sync: Obj) -> list[str]:
    """The single source's revision, else each source's of a multi-source app."""
    if sync.get("revision"):
        return [str(sync["revision"])]
    return [str(r) for r in sync.get("revisions") or [] if r]


def _targets(sync: Obj) -> list[str]:
    compared = sync.get("comparedTo") or {}
    sources = compared.get("sources") or ([compared["source"]] if compared.get("source") else [])
    return [str(s["targetRevision"]) for s in sources if s.get("targetRevision")]


def _describe(sync: Obj) -> str:
    revisions = ", ".join(map(_short, _revisions(sync))) or "no revision"
    targets = ", ".join(_targets(sync))
    return f"revision {revisions}" + (f" (targetRevision {targets})" if targets else "")


def _short(revision: str) -> str:
    return revision[:12] if COMMIT.fullmatch(revision) and len(revision) > 12 else revision


SOURCE_KEYS = ("repoURL", "path", "chart", "targetRevision")


def _not_compared(app: Obj, sync: Obj) -> str | None:
    """The spec's sources differ from those the status was compared against: the status is about an older spec, and
    Argo CD will compare again (it refreshes when they differ). Apps rendered by the source hydrator compare the
    hydrated source, which the spec does not hold: not judged here."""
    spec = app.get("spec") or {}
    if spec.get("sourceHydrator"):
        return None
    compared = sync.get("comparedTo") or {}
    wanted = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
    had = compared.get("sources") or ([compared["source"]] if compared.get("source") else [])
    if not wanted or not had:
        return None
    if [_source_key(s) for s in wanted] == [_source_key(s) for s in had]:
        return None
    targets = ", ".join(str(s.get("targetRevision") or "HEAD") for s in wanted)
    return f"Argo CD has not compared the current spec yet (it targets {targets}; the status is of {_describe(sync)})"


def _source_key(source: Obj) -> tuple[str, ...]:
    return tuple(str(source.get(k) or "") for k in SOURCE_KEYS)


def _operation_revisions(operation: Obj) -> list[str]:
    result = operation.get("syncResult") or {}
    requested = (operation.get("operation") or {}).get("sync") or {}
    for holder in (result, requested):
        if holder.get("revision"):
            return [str(holder["revision"])]
        if holder.get("revisions"):
            return [str(r) for r in holder["revisions"] if r]
    return []


def _failed(operation: Obj | None) -> bool:
    return operation is not None and operation.get("phase") in FAILED


def _resources(status: Obj) -> list[Obj]:
    return [r for r in status.get("resources") or [] if isinstance(r, dict)]


def _counts_as_unhealthy(resource: Obj) -> bool:
    """A resource with a health other than Healthy, as Argo CD aggregates it: a child Application that is Missing or
    Unknown does not count against its parent (app-of-apps)."""
    code = (resource.get("health") or {}).get("status")
    if not code or code == "Healthy":
        return False
    child_app = resource.get("group") == "argoproj.io" and resource.get("kind") == KIND
    return not (child_app and code in ("Missing", "Unknown"))


def _resource_name(resource: Obj) -> str:
    """`Deployment shop/web`, `ClusterRole web` (cluster-scoped), as `argocd app resources` names them."""
    namespace = resource.get("namespace")
    name = f"{namespace}/{resource.get('name')}" if namespace else str(resource.get("name"))
    return f"{resource.get('kind')} {name}"


def _health_line(health: Obj) -> str:
    message = _one_line(health.get("message"))
    return f"{health.get('status')}: {message}" if message else str(health.get("status"))


def _listing(lines: list[str]) -> str:
    more = f" (+{len(lines) - SHOWN} more)" if len(lines) > SHOWN else ""
    return ", ".join(lines[:SHOWN]) + more


def _one_line(text: object) -> str:
    """Argo CD's messages may span lines (a SyncFail hook's message is appended after a newline)."""
    return " ".join(str(text or "").split())


def _evidence(app: Obj) -> Evidence:
    status = _status(app)
    keep = ("sync", "health", "operationState", "conditions", "resources", "resourceHealthSource", "reconciledAt")
    spec = app.get("spec") or {}
    return Evidence.as_json(
        "Argo CD Application status",
        {
            "spec": {k: spec[k] for k in ("source", "sources", "syncPolicy") if k in spec},
            "status": {k: status[k] for k in keep if k in status},
            "history": (status.get("history") or [])[-3:],
        },
    )
