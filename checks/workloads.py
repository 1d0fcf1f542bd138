"""What a workload looks like right now, read from shared lists: the object, its pods, which revision each pod runs,
and what is wrong with each pod. Shared by the rollout, pods, image and endpoints checks; not a check itself.

    view = read_workload(reader, WorkloadRef("deployment", "payments", "payments-api"), deadline)
    view.current_pods, view.old_pods, view.problems(max_restarts=3)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category
from deploy_verify.checks.transports.kube import KubeReader, KubeUnavailable, Obj

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
        "ErrImageNeverPull",  # imagePullPolicy Never and the image is not on the node: no retry can fetch it
        "ImageInspectError",
    }
)
TERMINATED_PHASES = frozenset({"Succeeded", "Failed"})  # terminal pod phases: the pod never runs again
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


# Waiting reasons that say themselves they cannot heal: the image name cannot be parsed, or the pod may not pull it.
CERTAIN_WAITING = frozenset({"InvalidImageName", "ErrImageNeverPull"})
# An image pull that failed because the image is not there: the registry answered (not a network or a credential
# problem that may clear), and no retry will create the tag. containerd: "...: not found"; registries (OCI
# distribution spec): MANIFEST_UNKNOWN / "manifest unknown", NAME_UNKNOWN / "repository ... not found"; CRI-O and
# Docker: "manifest unknown", "does not exist". A pull refused for credentials says "unauthorized" or "denied".
IMAGE_MISSING = re.compile(r"not found|manifest unknown|name unknown|does not exist|code = NotFound", re.IGNORECASE)
MAY_CLEAR = re.compile(r"unauthorized|denied|forbidden|timeout|timed out|i/o|connection|tls|x509|toomanyrequests")


@dataclass(frozen=True)
class PodProblem:
    pod: str
    text: str
    terminal: bool  # True: waiting cannot fix it (CrashLoopBackOff, ...); False: may clear (not ready yet)
    # True: the state says itself it will not heal (an image that does not exist, a container already restarted
    # past the limit), so a wait fails at once instead of sitting out the grace period kept for states that may.
    certain: bool = False

    def line(self) -> str:
        return f"Pod {self.pod}: {self.text}"


@dataclass
class WorkloadView:
    ref: WorkloadRef
    obj: Obj | None
    pods: list[Obj] = field(default_factory=list)  # the owner chain's pods, every revision, every phase
    current_hash: str | None = None  # pod-template-hash / controller-revision-hash of the newest revision
    history: list[dict[str, Any]] = field(default_factory=list)  # revisions, newest first

    @property
    def current_pods(self) -> list[Obj]:
        return [p for p in self.pods if _pod_hash(p) == self.current_hash]

    @property
    def old_pods(self) -> list[Obj]:
        return [p for p in self.pods if _pod_hash(p) != self.current_hash]

    @property
    def active_pods(self) -> list[Obj]:
        """The pods the controller counts (kube's IsPodActive): neither terminated nor being deleted."""
        return [p for p in self.pods if is_active(p)]

    @property
    def settled_pods(self) -> list[Obj]:
        """Terminated (Succeeded/Failed, e.g. Evicted) or terminating pods: the controller no longer counts them and
        replaces them, so they never hold a rollout up; they are reported, not judged."""
        return [p for p in self.pods if not is_active(p)]

    def problems(self, max_restarts: int, pods: list[Obj] | None = None) -> list[PodProblem]:
        found: list[PodProblem] = []
        for pod in self.pods if pods is None else pods:
            found += pod_problems(pod, max_restarts)
        return found

    def desired(self) -> int:
        """How many pods the workload wants: spec.replicas (defaulted to 1 by the API server), or for a DaemonSet the
        controller's desiredNumberScheduled (the nodes its selector, affinity and tolerations admit)."""
        assert self.obj is not None
        if self.ref.kind == "daemonset":
            return int(self.obj.get("status", {}).get("desiredNumberScheduled", 0))
        replicas = self.obj.get("spec", {}).get("replicas")
        return 1 if replicas is None else int(replicas)

    def observed(self) -> bool:
        """Whether the controller has seen the newest spec (a status from before it says nothing about it)."""
        assert self.obj is not None
        generation = self.obj["metadata"].get("generation", 0)
        return bool(self.obj.get("status", {}).get("observedGeneration", 0) >= generation)


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


def below_minimum(view: WorkloadView, minimum: int) -> str | None:
    """Why the workload wants fewer pods than must run, or None. A Deployment scaled to 0 is complete by every count
    (0 == 0): only a declared minimum of 0 lets that pass."""
    if view.obj is None or (view.ref.kind == "daemonset" and not view.observed()):
        return None  # a DaemonSet's desired count is the controller's: not known before it has seen the spec
    want = view.desired()
    if want >= minimum:
        return None
    if view.ref.kind == "daemonset":
        admits = "no node admits its pods" if want == 0 else f"only {want} nodes admit its pods"
        return (
            f"desiredNumberScheduled is {want}, at least {minimum} must run: {admits}; check its nodeSelector, "
            "affinity and tolerations against the nodes' labels and taints"
            + ("; declare min_replicas: 0 on the component if no pod is intended" if want == 0 else "")
        )
    if want == 0:
        return (
            f"spec.replicas is 0, at least {minimum} must run: it is scaled to 0; scale it up, or declare "
            "min_replicas: 0 on the component if 0 is intended"
        )
    return f"spec.replicas is {want}, at least {minimum} must run; scale it up, or lower the component's min_replicas"


def replica_failures(obj: Obj) -> list[str]:
    """The ReplicaFailure conditions of a workload (a Deployment mirrors its ReplicaSet's): pods its controller
    could not create (quota, admission) or delete."""
    return [
        f"ReplicaFailure {c.get('reason', '')}: {c.get('message', '')}".strip()
        for c in obj.get("status", {}).get("conditions", [])
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"
    ]


def owner_of(pod: Obj) -> str:
    """'ReplicaSet/web-7d9' (the controller reference, else the first owner), or 'no owner'."""
    owners: list[Obj] = pod["metadata"].get("ownerReferences") or []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    return f"{owner.get('kind', '?')}/{owner.get('name', '?')}" if owner else "no owner"


def is_terminated(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") in TERMINATED_PHASES


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """kube's controller.IsPodActive: what ReplicaSet, StatefulSet and DaemonSet controllers count and replace."""
    return not is_terminated(pod) and not is_terminating(pod)


def settled_line(pod: Obj) -> str:
    """'Pod web-1: Evicted (The node was low on resource: memory.)' for a pod that no longer counts."""
    name, status = pod["metadata"]["name"], pod.get("status", {})
    if is_terminated(pod):
        reason = status.get("reason") or f"phase {status.get('phase')}"
        message = status.get("message")
        return f"Pod {name}: {reason}" + (f" ({message})" if message else "")
    return f"Pod {name}: terminating"


def pod_problems(pod: Obj, max_restarts: int) -> list[PodProblem]:
    """What is wrong with one pod, terminal states first."""
    name = pod["metadata"]["name"]
    status = pod.get("status", {})
    if is_terminating(pod):
        return [PodProblem(name, "terminating", terminal=False)]
    scheduled = _condition(status, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return [PodProblem(name, f"FailedScheduling: {scheduled.get('message', '')}".strip(), terminal=True)]
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "SchedulingGated":
        # Not terminal: a controller is expected to remove the gate; until it does, the scheduler skips the pod.
        gates = ", ".join(g.get("name", "?") for g in pod.get("spec", {}).get("schedulingGates") or [])
        return [PodProblem(name, f"not scheduled: waiting for its scheduling gates ({gates})", terminal=False)]
    if status.get("phase") == "Failed":
        return [
            PodProblem(
                name, f"phase Failed: {status.get('reason', '')} {status.get('message', '')}".strip(), terminal=True
            )
        ]
    if status.get("phase") == "Succeeded":
        return [PodProblem(name, "phase Succeeded: its containers exited and will not restart", terminal=True)]
    found: list[PodProblem] = []
    for container in status.get("initContainerStatuses", []):
        found += _container_problems(name, container, max_restarts, init=True)
    for container in status.get("containerStatuses", []):
        found += _container_problems(name, container, max_restarts, init=False)
    ready = _condition(status, "Ready")
    if not found and (ready is None or ready.get("status") != "True"):
        phase = status.get("phase", "Unknown")
        found.append(PodProblem(name, f"not ready (phase {phase}{_why_not_ready(pod, ready)})", terminal=False))
    return sorted(found, key=lambda p: not p.terminal)


def _why_not_ready(pod: Obj, ready: Obj | None) -> str:
    """The readiness gates that are not True, else the Ready condition's reason: what a reader looks at next."""
    conditions = {c.get("type"): c for c in pod.get("status", {}).get("conditions", [])}
    gates = [g.get("conditionType", "") for g in pod.get("spec", {}).get("readinessGates") or []]
    pending = [g for g in gates if conditions.get(g, {}).get("status") != "True"]
    if pending:
        return "; readiness gate " + ", ".join(
            f"{g} is {conditions[g].get('status')}" if g in conditions else f"{g} not reported" for g in pending
        )
    if ready and ready.get("reason"):
        return f"; {ready['reason']}" + (f": {ready['message']}" if ready.get("message") else "")
    return ""


def _container_problems(pod: str, container: Obj, max_restarts: int, init: bool) -> list[PodProblem]:
    name = ("init container " if init else "container ") + str(container["name"])
    restarts = int(container.get("restartCount", 0))
    last = container.get("lastState", {}).get("terminated") or {}
    state = container.get("state", {})
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    if reason in TERMINAL_WAITING:
        detail = f"{name} {reason}, {restarts} restarts"
        if "exitCode" in last:
            detail += f", last exit code {last['exitCode']}"
        # The back-off message only repeats the reason; an image pull or config error says what is missing.
        message = waiting.get("message") if reason != "CrashLoopBackOff" else None
        certain = restarts > max_restarts or reason in CERTAIN_WAITING or _image_missing(reason, message or "")
        return [PodProblem(pod, detail + (f": {message}" if message else ""), terminal=True, certain=certain)]
    oom = last.get("reason") == "OOMKilled" or (state.get("terminated") or {}).get("reason") == "OOMKilled"
    if oom and restarts >= 2:
        return [PodProblem(pod, f"{name} OOMKilled repeatedly ({restarts} restarts)", terminal=True)]
    if restarts > max_restarts:
        text = f"{name} restarted {restarts} times (at most {max_restarts} allowed)"
        return [PodProblem(pod, text, terminal=True, certain=True)]
    terminated = state.get("terminated") or {}
    if init and terminated and terminated.get("exitCode") == 0:
        return []  # a completed init container: done, as it should be (the kubelet marks it ready too)
    if not container.get("ready", False):
        if terminated:
            what = f"terminated: {terminated.get('reason', '?')}, exit code {terminated.get('exitCode', '?')}"
        else:
            what = reason or next(iter(state), "unknown")
        return [PodProblem(pod, f"{name} not ready ({what})", terminal=False)]
    return []


def _image_missing(reason: str, message: str) -> bool:
    """An image pull the registry refused because the image is not there (not a pull that may work next time)."""
    pulling = reason in ("ErrImagePull", "ImagePullBackOff")
    return pulling and bool(IMAGE_MISSING.search(message)) and not MAY_CLEAR.search(message)


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
