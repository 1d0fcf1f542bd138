"""Pods healthy: every pod of the workload is Ready, restarted at most `max_restarts` times, and in no terminal state
(CrashLoopBackOff, ImagePullBackOff/ErrImagePull, CreateContainerConfigError, InvalidImageName, repeated OOMKilled,
FailedScheduling).

    result = check_pods(reader, WorkloadRef("deployment", "payments", "payments-api"), Limits(), deadline)

On failure the evidence holds what `kubectl describe` and `kubectl logs --previous` would have shown: the pods'
states, the events of the workload and its pods, and the log tails of the failing containers.
"""

from __future__ import annotations

from checks.deadline import Deadline
from checks.result import Category, CheckResult, Evidence, Verdict
from checks.rollout import Limits, workload_evidence
from checks.runner import attempt
from checks.transports.kube import KubeReader, Obj
from checks.workloads import PodProblem, WorkloadRef, WorkloadView, read_workload

CHECK = "pods_healthy"
MAX_LOGS = 3  # log tails of at most this many failing pods: enough to see the pattern, small enough to read


def check_pods(reader: KubeReader, ref: WorkloadRef, limits: Limits, deadline: Deadline) -> CheckResult:
    return attempt(CHECK, ref.where, lambda: _judge(reader, ref, limits, deadline))


def _judge(reader: KubeReader, ref: WorkloadRef, limits: Limits, deadline: Deadline) -> CheckResult:
    view = read_workload(reader, ref, deadline)
    if view.obj is None:
        return CheckResult(CHECK, ref.where, Verdict.FAIL, f"{ref.where} not found", category=Category.PROVISIONING)
    if not view.pods:
        wanted = view.obj.get("spec", {}).get("replicas", 1)
        if wanted == 0:
            return CheckResult(CHECK, ref.where, Verdict.PASS, f"no pods ({wanted} wanted)")
        return CheckResult(
            CHECK, ref.where, Verdict.FAIL, f"no pods ({wanted} wanted)", category=Category.ROLLOUT_STUCK
        )
    problems = view.problems(limits.max_restarts)
    if not problems:
        return CheckResult(CHECK, ref.where, Verdict.PASS, f"{len(view.pods)}/{len(view.pods)} pods ready")
    evidence = workload_evidence(view) + failure_evidence(reader, view, problems, deadline)
    bad = len({p.pod for p in problems})
    message = f"{bad}/{len(view.pods)} pods unhealthy: " + "; ".join(p.line() for p in problems[:3])
    message += f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return CheckResult(CHECK, ref.where, Verdict.FAIL, message, evidence, Category.ROLLOUT_STUCK)


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
    for container in pod.get("spec", {}).get("containers", []):
        for previous in (False, True):
            label = "previous" if previous else "current"
            text = reader.logs(name, namespace, container["name"], previous, deadline)
            parts.append(f"--- {container['name']} ({label}) ---\n{text.rstrip()}")
    return "\n".join(parts)
