"""What a workload looks like right now, read from shared lists: the object, its pods, which revision each pod runs,
and what is wrong with each pod. Shared by the rollout, pods, image and endpoints checks; not a check itself.

    view = read_workload(reader, WorkloadRef("deployment", "payments", "payments-api"), deadline)
    view.current_pods, view.old_pods, view.problems(max_restarts=3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checks.deadline import Deadline
from checks.result import Category
from checks.transports.kube import KubeReader, KubeUnavailable, Obj

KIND_NAMES = {"deployment": "Deployment", "daemonset": "DaemonSet", "statefulset": "StatefulSet"}
PLURALS = {"deployment": "deployments", "daemonset": "daemonsets", "statefulset": "statefulsets"}
# Waiting reasons that no amount of waiting fixes: fail at once instead of sitting out the deadline.
TERMINAL_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "InvalidImageName",
        "CreateContainerError",
        "RunContainerError",
    }
)
REVISION = "deployment.kubernetes.io/revision"


class NamespaceNotFound(KubeUnavailable):
    """The workload's namespace does not exist: not a broken deployment but a wrong question (the environment file's
    namespace or kubeconfig context). Nothing there can be judged: ERROR, "Could not decide", not "unreachable"."""

    category = Category.UNDECIDED


@dataclass(frozen=True)
class WorkloadRef:
    kind: str  # deployment | daemonset | statefulset
    namespace: str
    name: str

    @property
    def where(self) -> str:
        return f"{KIND_NAMES[self.kind]}:{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PodProblem:
    pod: str
    text: str
    terminal: bool  # True: waiting cannot fix it (CrashLoopBackOff, ...); False: may clear (not ready yet)

    def line(self) -> str:
        return f"Pod {self.pod}: {self.text}"


@dataclass
class WorkloadView:
    ref: WorkloadRef
    obj: Obj | None
    pods: list[Obj] = field(default_factory=list)
    current_hash: str | None = None  # pod-template-hash / controller-revision-hash of the newest revision
    history: list[dict[str, Any]] = field(default_factory=list)  # revisions, newest first

    @property
    def current_pods(self) -> list[Obj]:
        return [p for p in self.pods if _pod_hash(p) == self.current_hash]

    @property
    def old_pods(self) -> list[Obj]:
        return [p for p in self.pods if _pod_hash(p) != self.current_hash]

    def problems(self, max_restarts: int, pods: list[Obj] | None = None) -> list[PodProblem]:
        found: list[PodProblem] = []
        for pod in self.pods if pods is None else pods:
            found += pod_problems(pod, max_restarts)
        return found


def read_workload(reader: KubeReader, ref: WorkloadRef, deadline: Deadline) -> WorkloadView:
    """The workload, its pods (by owner, not by label guesswork) and its revision history, from cached lists."""
    obj = reader.listing(PLURALS[ref.kind], ref.namespace, deadline).named(ref.name)
    if obj is None:
        if not reader.namespace_exists(ref.namespace, deadline):
            # Not a broken deployment but a wrong question: nothing in this namespace can be judged.
            raise NamespaceNotFound(
                f"cluster {reader.cluster}: namespace {ref.namespace!r} not found; check the "
                "environment file's namespace and the kubeconfig context"
            )
        return WorkloadView(ref, None)
    pods = reader.listing("pods", ref.namespace, deadline)
    uid = obj["metadata"]["uid"]
    if ref.kind == "deployment":
        sets = reader.listing("replicasets", ref.namespace, deadline).owned_by(uid)
        mine = [p for s in sets for p in pods.owned_by(s["metadata"]["uid"])]
        return WorkloadView(ref, obj, _sorted(mine), *_deployment_revision(obj, sets))
    mine = pods.owned_by(uid)
    if ref.kind == "statefulset":
        return WorkloadView(
            ref,
            obj,
            _sorted(mine),
            obj.get("status", {}).get("updateRevision"),
            _statefulset_history(reader, ref, uid, deadline),
        )
    history = _statefulset_history(reader, ref, uid, deadline)
    newest = history[0]["hash"] if history else None
    return WorkloadView(ref, obj, _sorted(mine), newest, history)


def pod_problems(pod: Obj, max_restarts: int) -> list[PodProblem]:
    """What is wrong with one pod, terminal states first."""
    name = pod["metadata"]["name"]
    status = pod.get("status", {})
    if pod["metadata"].get("deletionTimestamp"):
        return [PodProblem(name, "terminating", terminal=False)]
    unschedulable = _condition(status, "PodScheduled")
    if unschedulable and unschedulable.get("status") == "False" and unschedulable.get("reason") == "Unschedulable":
        return [PodProblem(name, f"FailedScheduling: {unschedulable.get('message', '')}".strip(), terminal=True)]
    if status.get("phase") == "Failed":
        return [
            PodProblem(
                name, f"phase Failed: {status.get('reason', '')} {status.get('message', '')}".strip(), terminal=True
            )
        ]
    found: list[PodProblem] = []
    for container in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        found += _container_problems(name, container, max_restarts)
    ready = _condition(status, "Ready")
    if not found and (ready is None or ready.get("status") != "True"):
        phase = status.get("phase", "Unknown")
        found.append(PodProblem(name, f"not ready (phase {phase})", terminal=False))
    return sorted(found, key=lambda p: not p.terminal)


def _container_problems(pod: str, container: Obj, max_restarts: int) -> list[PodProblem]:
    name = container["name"]
    restarts = int(container.get("restartCount", 0))
    last = container.get("lastState", {}).get("terminated") or {}
    waiting = container.get("state", {}).get("waiting") or {}
    reason = waiting.get("reason", "")
    if reason in TERMINAL_WAITING:
        detail = f"container {name} {reason}, {restarts} restarts"
        if "exitCode" in last:
            detail += f", last exit code {last['exitCode']}"
        # The back-off message only repeats the reason; an image pull or config error says what is missing.
        message = waiting.get("message") if reason != "CrashLoopBackOff" else None
        return [PodProblem(pod, detail + (f": {message}" if message else ""), terminal=True)]
    if last.get("reason") == "OOMKilled" and restarts >= 2:
        return [PodProblem(pod, f"container {name} OOMKilled repeatedly ({restarts} restarts)", terminal=True)]
    if restarts > max_restarts:
        return [
            PodProblem(
                pod, f"container {name} restarted {restarts} times (at most {max_restarts} allowed)", terminal=True
            )
        ]
    if not container.get("ready", False):
        state = reason or next(iter(container.get("state", {})), "unknown")
        return [PodProblem(pod, f"container {name} not ready ({state})", terminal=False)]
    return []


def _deployment_revision(obj: Obj, sets: list[Obj]) -> tuple[str | None, list[dict[str, Any]]]:
    """The newest ReplicaSet's pod-template-hash (the one carrying the Deployment's revision) and the history."""
    history = sorted(
        (
            {
                "revision": int(r["metadata"].get("annotations", {}).get(REVISION, 0)),
                "hash": r["metadata"].get("labels", {}).get("pod-template-hash"),
                "name": r["metadata"]["name"],
                "replicas": r.get("status", {}).get("replicas", 0),
                "images": [c.get("image") for c in r["spec"]["template"]["spec"].get("containers", [])],
            }
            for r in sets
        ),
        key=lambda h: -h["revision"],
    )
    wanted = obj["metadata"].get("annotations", {}).get(REVISION)
    current = next((h["hash"] for h in history if str(h["revision"]) == wanted), None)
    return (current or (history[0]["hash"] if history else None)), history


def _statefulset_history(reader: KubeReader, ref: WorkloadRef, uid: str, deadline: Deadline) -> list[dict[str, Any]]:
    revisions = reader.listing("controllerrevisions", ref.namespace, deadline).owned_by(uid)
    return sorted(
        (
            {
                "revision": int(r.get("revision", 0)),
                "name": r["metadata"]["name"],
                "hash": revision_hash(r),
            }
            for r in revisions
        ),
        key=lambda h: -h["revision"],
    )


def revision_hash(revision: Obj) -> str:
    """A ControllerRevision's hash as its pods carry it: the label (DaemonSet) or, for a StatefulSet, whose pods
    carry the revision's name, the name."""
    return str(revision["metadata"].get("labels", {}).get("controller-revision-hash", revision["metadata"]["name"]))


def is_ready(pod: Obj) -> bool:
    ready = _condition(pod.get("status", {}), "Ready")
    return ready is not None and ready.get("status") == "True"


def _pod_hash(pod: Obj) -> str | None:
    labels: dict[str, str] = pod["metadata"].get("labels", {})
    return labels.get("pod-template-hash") or labels.get("controller-revision-hash")


def _condition(status: Obj, kind: str) -> Obj | None:
    return next((c for c in status.get("conditions", []) if c.get("type") == kind), None)


def _sorted(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=lambda p: p["metadata"]["name"])
