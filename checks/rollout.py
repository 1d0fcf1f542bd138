"""Rollout complete: the controller has seen the newest spec and every replica runs it and is available.

    result = check_rollout(reader, WorkloadRef("deployment", "payments", "payments-api"), Limits(), deadline)
    result = check_rollout(..., within=deadline.sub(120, "2 minutes"))   # waits, on watches

- Deployment: observedGeneration >= generation, updatedReplicas == replicas == availableReplicas, no
  unavailableReplicas; Progressing=False/ProgressDeadlineExceeded is terminal; spec.paused fails at once.
- DaemonSet: observedGeneration >= generation, updatedNumberScheduled == desiredNumberScheduled == numberAvailable.
- StatefulSet: observedGeneration >= generation, currentRevision == updateRevision (RollingUpdate; with OnDelete the
  controller never advances currentRevision, so updatedReplicas == replicas), readyReplicas == availableReplicas ==
  replicas.
- Every kind: the desired count is at least `Limits.min_replicas` (1 unless the component declares otherwise): a
  workload scaled to 0 is complete by every count, and only a declared 0 may pass.
A pod of the new revision in a terminal state (CrashLoopBackOff, ImagePullBackOff, FailedScheduling, ...) makes the
rollout stuck at once: `kubectl rollout status` would sit out progressDeadlineSeconds instead. So does a rollout
that cannot progress by itself: a paused Deployment, an OnDelete update with pods left on the old revision, a
StatefulSet partition that holds pods back. Pods the controller no longer counts (terminated, e.g. Evicted, or
terminating) never hold a rollout up: it has replaced them, as `kubectl rollout status` agrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy_verify.checks.converge import State, Timeline, look_or_wait
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.checks.workloads import (
    PLURALS,
    WorkloadRef,
    WorkloadView,
    below_minimum,
    is_active,
    is_ready,
    read_workload,
    replica_failures,
)

CHECK = "rollout_complete"


@dataclass(frozen=True)
class Limits:
    max_restarts: int = 3
    grace: float = 5.0  # a terminal-looking state must last this long during a wait before it fails the check
    min_replicas: int = 1  # the fewest pods the workload may want; 0 only when the component declares it


def check_rollout(
    reader: KubeReader, ref: WorkloadRef, limits: Limits, deadline: Deadline, within: Deadline | None = None
) -> CheckResult:
    """One look, or (with `within`) a watch until complete, stuck, or out of time."""
    views: list[WorkloadView] = []
    timeline = Timeline()

    def evaluate() -> State:
        views.append(read_workload(reader, ref, deadline))
        return rollout_state(views[-1], limits)

    streams: list[tuple[str, str | None]] = [(PLURALS[ref.kind], ref.namespace), ("pods", ref.namespace)]
    if ref.kind == "deployment":
        streams.append(("replicasets", ref.namespace))

    def judge() -> CheckResult:
        state = look_or_wait(evaluate, within, lambda window: reader.wakeups(streams, window), limits.grace, timeline)
        assert state.verdict is not None
        evidence = workload_evidence(views[-1]) if views and state.verdict is not Verdict.PASS else ()
        return CheckResult(
            CHECK, ref.where, state.verdict, state.message, (*evidence, *timeline.evidence()), state.category
        )

    return attempt(CHECK, ref.where, judge)


def rollout_state(view: WorkloadView, limits: Limits) -> State:
    if view.obj is None:
        return State(
            Verdict.FAIL,
            f"{view.ref.where} not found; is the namespace and name right, was it deployed?",
            Category.PROVISIONING,
        )
    complete, numbers = _numbers(view.ref.kind, view.obj)
    short = below_minimum(view, limits.min_replicas)
    if short:
        return State(Verdict.FAIL, f"too few replicas: {short} ({numbers})", Category.ROLLOUT_STUCK)
    # Pods first: "CrashLoopBackOff, last exit code 1" says more than the ProgressDeadlineExceeded it leads to.
    # Only pods that are not ready hold a rollout up; a ready pod that restarts too often is the pods check's finding.
    # A terminated or terminating pod is no longer counted by its controller, which has replaced it.
    blocking = [p for p in view.current_pods if is_active(p) and not is_ready(p)]
    terminal = [p for p in view.problems(limits.max_restarts, blocking) if p.terminal]
    if terminal:
        terminal.sort(key=lambda p: not p.certain)  # lead with the one that will not heal
        more = f" (+{len(terminal) - 1} more pods)" if len(terminal) > 1 else ""
        message = f"rollout stuck: {terminal[0].line()}{more} ({numbers})"
        return State(Verdict.FAIL, message, Category.ROLLOUT_STUCK, final=terminal[0].certain)
    stalled = _progress_deadline(view.obj)
    if stalled:
        return State(Verdict.FAIL, f"rollout stuck: {stalled} ({numbers})", Category.ROLLOUT_STUCK)
    held = _held(view, complete)
    if held:
        return State(Verdict.FAIL, f"rollout cannot progress by itself: {held} ({numbers})", Category.ROLLOUT_STUCK)
    if complete:
        return State(Verdict.PASS, f"rolled out: {numbers}")
    waiting = view.problems(limits.max_restarts, [p for p in view.current_pods if is_active(p)])
    details = [*replica_failures(view.obj), *(p.line() for p in waiting[:1])]
    detail = "".join(f"; {d}" for d in details)
    return State(None, f"rollout incomplete: {numbers}{detail}", Category.ROLLOUT_STUCK)


def _numbers(kind: str, obj: Obj) -> tuple[bool, str]:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    generation, observed = obj["metadata"].get("generation", 0), status.get("observedGeneration", 0)
    seen = observed >= generation
    lag = "" if seen else f", observedGeneration {observed} < generation {generation}"
    if kind == "deployment":
        want = spec.get("replicas", 1)
        updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
        unavailable = status.get("unavailableReplicas", 0)
        done = seen and updated == want == available and not unavailable and status.get("replicas", 0) == want
        extra = f", {unavailable} unavailable" if unavailable else ""
        old = status.get("replicas", 0) - updated
        extra += f", {old} old replicas still running" if old > 0 else ""
        return done, f"{updated}/{want} updated, {available}/{want} available{extra}{lag}"
    if kind == "daemonset":
        want = status.get("desiredNumberScheduled", 0)
        updated, available = status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0)
        done = seen and updated == want == available
        return done, f"{updated}/{want} updated, {available}/{want} available{lag}"
    return _statefulset_numbers(spec, status, seen, lag)


def _statefulset_numbers(spec: Obj, status: Obj, seen: bool, lag: str) -> tuple[bool, str]:
    want = spec.get("replicas", 1)
    ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", ready)  # ready for minReadySeconds; absent only before 1.22
    current, update = status.get("currentRevision"), status.get("updateRevision")
    counted = ready == want == available and status.get("replicas", want) == want
    if _strategy(spec) == "OnDelete":
        # The controller advances currentRevision only for RollingUpdate (completeRollingUpdate): with OnDelete it
        # stays on the first revision for ever, and the pods' revisions are what tells.
        done = seen and counted and updated == want
        revision = "" if updated == want else f", {updated}/{want} at revision {update}"
    else:
        done = seen and counted and current == update
        revision = "" if current == update else f", revision {current} -> {update} in progress"
    unavailable = f", {available}/{want} available" if available != ready else ""
    return done, f"{ready}/{want} ready{unavailable}{revision}{lag}"


def _strategy(spec: Obj) -> str:
    strategy = spec.get("updateStrategy") or spec.get("strategy") or {}
    return str(strategy.get("type") or "RollingUpdate")


def _progress_deadline(obj: Obj) -> str | None:
    """Progressing=False/ProgressDeadlineExceeded of the spec the controller has seen: a condition from before the
    newest generation is about an older rollout (kubectl rollout status reads it only once observed, too)."""
    status = obj.get("status", {})
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
        return None
    for condition in status.get("conditions", []):
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return f"ProgressDeadlineExceeded: {condition.get('message', '')}".strip()
    return None


def _held(view: WorkloadView, complete: bool) -> str | None:
    """Why the controller will not finish this rollout without someone acting, or None."""
    assert view.obj is not None
    spec, ref = view.obj.get("spec", {}), view.ref
    command = f"kubectl -n {ref.namespace}"
    if ref.kind == "deployment" and spec.get("paused"):
        done = " (its current template is rolled out; later changes will not be)" if complete else ""
        return (
            f"{ref.where} is paused (spec.paused: true): the controller rolls out no change until it is resumed{done}; "
            f"resume it with `{command} rollout resume deployment/{ref.name}`"
        )
    if complete or ref.kind == "deployment" or not view.observed():
        return None
    old = [p for p in view.old_pods if is_active(p)]
    if _strategy(spec) == "OnDelete" and old:
        return (
            f"updateStrategy OnDelete: {len(old)} pods still run the previous revision ({_names(old)}) and the "
            f"controller replaces a pod only when someone deletes it; delete them (`{command} delete pod ...`) or "
            "use updateStrategy RollingUpdate"
        )
    if ref.kind == "statefulset":
        return _partitioned(view, old, command)
    return None


def _partitioned(view: WorkloadView, old: list[Obj], command: str) -> str | None:
    """A StatefulSet partition P keeps every pod with an ordinal below P on its revision (a staged rollout)."""
    assert view.obj is not None
    spec = view.obj.get("spec", {})
    partition = int(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)
    held = [p for p in old if _ordinal(p) < partition]
    if not held:
        return None
    patch = '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'
    return (
        f"updateStrategy.rollingUpdate.partition is {partition}: pods with an ordinal below {partition} "
        f"({_names(held)}) stay on the previous revision until the partition is lowered; finish the staged rollout "
        f"with `{command} patch statefulset {view.ref.name} -p '{patch}'`"
    )


def _names(pods: list[Obj]) -> str:
    more = f" (+{len(pods) - 3} more)" if len(pods) > 3 else ""
    return ", ".join(p["metadata"]["name"] for p in pods[:3]) + more


def _ordinal(pod: Obj) -> int:
    """A StatefulSet pod's ordinal: the label the controller sets (1.28+), else the name's numeric suffix; -1 for a
    pod with neither (the controller sorts such pods first, too)."""
    labels = pod["metadata"].get("labels", {})
    text = str(labels.get("apps.kubernetes.io/pod-index") or pod["metadata"]["name"].rsplit("-", 1)[-1])
    return int(text) if text.isdigit() else -1


def workload_evidence(view: WorkloadView) -> tuple[Evidence, ...]:
    """What an operator would look at first: the status, every pod's state and the revision history."""
    if view.obj is None:
        return ()
    pods = [
        {
            "name": p["metadata"]["name"],
            "revision": "current" if p in view.current_pods else "old",
            "phase": p.get("status", {}).get("phase"),
            "node": p.get("spec", {}).get("nodeName"),
            "containers": p.get("status", {}).get("containerStatuses", []),
        }
        for p in view.pods
    ]
    return (
        Evidence.as_json(
            f"{view.ref.where} status",
            {
                "generation": view.obj["metadata"].get("generation"),
                "spec_replicas": view.obj.get("spec", {}).get("replicas"),
                "status": view.obj.get("status", {}),
            },
        ),
        Evidence.as_json(f"{view.ref.where} pods", pods),
        Evidence.as_json(f"{view.ref.where} revision history", view.history),
    )
