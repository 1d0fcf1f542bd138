"""Pods healthy: every pod of the workload is Ready, restarted at most `max_restarts` times, and in no terminal state
(CrashLoopBackOff, ImagePullBackOff/ErrImagePull, CreateContainerConfigError, InvalidImageName, repeated OOMKilled,
FailedScheduling), init containers included; as many pods exist as the workload wants, and it wants at least
`Limits.min_replicas` (1 unless the component declares 0).

Pods the controller no longer counts (terminated, e.g. Evicted, or terminating) are not judged: it has replaced them
(or the count says it has not). They are named in the message.
The pods judged are the owner chain's. A pod of another owner behind the workload's Services is judged by what it
runs (the image check); its health is its own workload's: if it is not ready its endpoint carries no traffic.

    result = check_pods(reader, WorkloadRef("deployment", "payments", "payments-api"), Limits(), deadline)

On failure the evidence holds what `kubectl describe` and `kubectl logs --previous` would have shown: the pods'
states, the events of the workload and its pods, and the log tails of the failing containers.
"""

from __future__ import annotations

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.rollout import Limits, workload_evidence
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.checks.workloads import (
    PodProblem,
    WorkloadRef,
    WorkloadView,
    below_minimum,
    read_workload,
    replica_failures,
    settled_line,
)

CHECK = "pods_healthy"
MAX_LOGS = 3  # log tails of at most this many failing pods: enough to see the pattern, small enough to read


def check_pods(reader: KubeReader, ref: WorkloadRef, limits: Limits, deadline: Deadline) -> CheckResult:
    return attempt(CHECK, ref.where, lambda: _judge(reader, ref, limits, deadline))


def _judge(reader: KubeReader, ref: WorkloadRef, limits: Limits, deadline: Deadline) -> CheckResult:
    view = read_workload(reader, ref, deadline)
    if view.obj is None:
        return CheckResult(CHECK, ref.where, Verdict.FAIL, f"{ref.where} not found", category=Category.PROVISIONING)
    short = below_minimum(view, limits.min_replicas)
    if short:
        return CheckResult(
            CHECK, ref.where, Verdict.FAIL, f"too few replicas: {short}", category=Category.ROLLOUT_STUCK
        )
    active, wanted = view.active_pods, view.desired()
    left = _not_counted(view)
    if not active:
        if wanted == 0:
            return CheckResult(CHECK, ref.where, Verdict.PASS, f"no pods ({wanted} wanted){left}")
        return CheckResult(
            CHECK, ref.where, Verdict.FAIL, f"no pods ({wanted} wanted){left}", category=Category.ROLLOUT_STUCK
        )
    problems = view.problems(limits.max_restarts, active)
    if problems:
        evidence = workload_evidence(view) + failure_evidence(reader, view, problems, deadline)
        bad = len({p.pod for p in problems})
        message = f"{bad}/{len(active)} pods unhealthy: " + "; ".join(p.line() for p in problems[:3])
        message += f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return CheckResult(CHECK, ref.where, Verdict.FAIL, message, evidence, Category.ROLLOUT_STUCK)
    if len(active) < wanted:
        # Every pod there is fine, but some the workload wants do not exist (quota, admission, a node that went).
        why = "".join(f"; {line}" for line in _creation_failures(reader, view, deadline))
        message = f"{len(active)}/{wanted} wanted pods exist, all ready{why}{left}"
        return CheckResult(CHECK, ref.where, Verdict.FAIL, message, workload_evidence(view), Category.ROLLOUT_STUCK)
    return CheckResult(CHECK, ref.where, Verdict.PASS, f"{len(active)}/{len(active)} pods ready{left}")


def _not_counted(view: WorkloadView) -> str:
    """'; not counted: ...' naming the terminated or terminating pods, which the controller has replaced."""
    settled = view.settled_pods
    if not settled:
        return ""
    lines = "; ".join(settled_line(p) for p in settled[:3]) + (
        f" (+{len(settled) - 3} more)" if len(settled) > 3 else ""
    )
    return f"; not counted, as their controller no longer counts them: {lines}"


def _creation_failures(reader: KubeReader, view: WorkloadView, deadline: Deadline) -> list[str]:
    """ReplicaFailure conditions (the Deployment mirrors its ReplicaSet's) and FailedCreate events of the workload."""
    assert view.obj is not None
    found = replica_failures(view.obj)
    if found:
        return found
    events = reader.listing("events", view.ref.namespace, deadline).items
    owners = {view.ref.name, *(h["name"] for h in view.history)}
    failed = [
        e for e in events if e.get("reason") == "FailedCreate" and e.get("involvedObject", {}).get("name") in owners
    ]
    failed.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [f"FailedCreate: {failed[-1].get('message', '')}"] if failed else []


def failure_evidence(
    reader: KubeReader, view: WorkloadView, problems: list[PodProblem], deadline: Deadline
) -> tuple[Evidence, ...]:
    """Events of the workload and its pods, and the current and previous log tails of the failing containers."""
    names = {p["metadata"]["name"] for p in view.pods} | {view.ref.name}
    events = [
        e
        for e in reader.listing("events", view.ref.namespace, deadline).items
        if e.get("involvedObject", {}).get("name") in names
    ]
    timeline = [
        f"{e.get('lastTimestamp') or e.get('eventTime') or ''} {e.get('type', '')} {e.get('reason', '')} "
        f"{e['involvedObject'].get('kind', '')}/{e['involvedObject']['name']}: {e.get('message', '')}"
        for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    ]
    found = [Evidence(f"{view.ref.where} events", "\n".join(timeline) or "(no events)")]
    failing = [p for p in view.pods if p["metadata"]["name"] in {x.pod for x in problems}][:MAX_LOGS]
    for pod in failing:
        found.append(Evidence(f"logs of pod {pod['metadata']['name']}", _logs(reader, pod, deadline)))
    return tuple(found)


def _logs(reader: KubeReader, pod: Obj, deadline: Deadline) -> str:
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    parts = []
    spec = pod.get("spec", {})
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        for previous in (False, True):
            label = "previous" if previous else "current"
            text = reader.logs(name, namespace, container["name"], previous, deadline)
            parts.append(f"--- {container['name']} ({label}) ---\n{text.rstrip()}")
    return "\n".join(parts)
