"""Rollout complete: the controller has seen the newest spec and every replica runs it and is available.

    result = check_rollout(reader, WorkloadRef("deployment", "payments", "payments-api"), Limits(), deadline)
    result = check_rollout(..., within=deadline.sub(120, "2 minutes"))   # waits, on watches

- Deployment: observedGeneration >= generation, updatedReplicas == replicas == availableReplicas, no
  unavailableReplicas; Progressing=False/ProgressDeadlineExceeded is terminal.
- DaemonSet: observedGeneration >= generation, updatedNumberScheduled == desiredNumberScheduled == numberAvailable.
- StatefulSet: observedGeneration >= generation, currentRevision == updateRevision, readyReplicas == replicas.
A pod of the new revision in a terminal state (CrashLoopBackOff, ImagePullBackOff, FailedScheduling, ...) makes the
rollout stuck at once: `kubectl rollout status` would sit out progressDeadlineSeconds instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.converge import State, Timeline, look_or_wait
from checks.deadline import Deadline
from checks.result import Category, CheckResult, Evidence, Verdict
from checks.runner import attempt
from checks.transports.kube import KubeReader, Obj
from checks.workloads import PLURALS, WorkloadRef, WorkloadView, is_ready, read_workload

CHECK = "rollout_complete"


@dataclass(frozen=True)
class Limits:
    max_restarts: int = 3
    grace: float = 5.0  # a terminal-looking state must last this long during a wait before it fails the check


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
    # Pods first: "CrashLoopBackOff, last exit code 1" says more than the ProgressDeadlineExceeded it leads to.
    # Only pods that are not ready hold a rollout up; a ready pod that restarts too often is the pods check's finding.
    blocking = [p for p in view.current_pods if not is_ready(p)]
    terminal = [p for p in view.problems(limits.max_restarts, blocking) if p.terminal]
    if terminal:
        more = f" (+{len(terminal) - 1} more pods)" if len(terminal) > 1 else ""
        return State(Verdict.FAIL, f"rollout stuck: {terminal[0].line()}{more} ({numbers})", Category.ROLLOUT_STUCK)
    stalled = _progress_deadline(view.obj)
    if stalled:
        return State(Verdict.FAIL, f"rollout stuck: {stalled} ({numbers})", Category.ROLLOUT_STUCK)
    if complete:
        return State(Verdict.PASS, f"rolled out: {numbers}")
    waiting = [p for p in view.problems(limits.max_restarts, view.current_pods)]
    detail = f"; {waiting[0].line()}" if waiting else ""
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
    want = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    current, update = status.get("currentRevision"), status.get("updateRevision")
    done = seen and current == update and ready == want
    revision = "" if current == update else f", revision {current} -> {update} in progress"
    return done, f"{ready}/{want} ready{revision}{lag}"


def _progress_deadline(obj: Obj) -> str | None:
    for condition in obj.get("status", {}).get("conditions", []):
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return f"ProgressDeadlineExceeded: {condition.get('message', '')}".strip()
    return None


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
