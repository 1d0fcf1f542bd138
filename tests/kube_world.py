"""Building target states on the testbed's real control plane for the workload predicates' state tables.

Objects are created in a namespace of their own (unique name, deleted afterwards) on cluster dv-b. Three ways a state
comes about, each named in the tests:
- the real controllers and KWOK's default stages (pods Ready at once), as in production;
- the real controllers plus a status written through the status subresource where a kubelet would write it (an
  evicted pod, an imageID): KWOK leaves a Running pod alone, so the write stays;
- pods the scheduler never binds (`schedulerName: dv-nobody`), whose whole status the test writes as a kubelet
  would: KWOK only acts on pods of its nodes, so any container state can be shown to the real ReplicaSet controller
  and to the checks.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy_verify.checks.transports.kube import KubeReader

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "dv-b"
NOBODY = "dv-nobody"  # a scheduler that does not exist: the pod stays unbound and its status is the test's to write
REGISTRY = "registry.example.test/states"
TOLERATE_KWOK = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]
Obj = dict[str, Any]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    """kubectl on one namespace of dv-b, and fresh readers (a reader caches its lists: one per look)."""

    def __init__(self, kube: Any, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [*self.kube.kubectl_command(CLUSTER), "-n", self.namespace, *args]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done

    def apply(self, *objects: Obj) -> None:
        items = [{**o, "metadata": {**o["metadata"], "namespace": self.namespace}} for o in objects]
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))

    def get(self, kind: str, name: str = "", selector: str = "") -> Obj:
        args = ["get", kind, *([name] if name else []), *(["-l", selector] if selector else []), "-o", "json"]
        document: Obj = json.loads(self.kubectl(*args).stdout)
        return document

    def pods(self, app: str) -> list[Obj]:
        items: list[Obj] = self.get("pods", selector=f"app={app}")["items"]
        return sorted(items, key=lambda p: p["metadata"]["name"])

    def write_status(self, kind: str, name: str, status: Obj) -> None:
        """Through the status subresource, as the kubelet (or a controller) would."""
        patch = json.dumps({"status": status})
        self.kubectl("patch", kind, name, "--subresource=status", "--type=merge", "-p", patch)

    def reader(self) -> KubeReader:
        return KubeReader.from_kubeconfig(CLUSTER, f"kwok-{CLUSTER}", str(ROOT / ".testbed" / "kubeconfig.yaml"))

    def wait_for(self, what: str, ready: Callable[..., object], *args: Any, seconds: float = 60) -> None:
        """Poll `ready(*args)` until it is true."""
        end = time.monotonic() + seconds
        while not ready(*args):
            if time.monotonic() > end:
                raise TimeoutError(f"{self.namespace}: {what} within {seconds}s")
            time.sleep(0.5)

    def rolled_out(self, kind: str, name: str) -> None:
        """`kubectl rollout status`, which refuses OnDelete workloads: for those, every pod ready and available."""
        obj = self.get(kind, name)
        if (obj["spec"].get("updateStrategy") or {}).get("type") != "OnDelete":
            self.kubectl("rollout", "status", f"{kind}/{name}", "--timeout=90s")
            return

        def ready() -> bool:
            found = self.get(kind, name)
            status = found.get("status", {})
            seen = status.get("observedGeneration", 0) >= found["metadata"]["generation"]
            if kind == "daemonset":
                return bool(seen and 0 < status.get("desiredNumberScheduled", 0) == status.get("numberAvailable", -1))
            return bool(seen and status.get("readyReplicas") == found["spec"]["replicas"])

        self.wait_for(f"{kind}/{name} ready", ready, seconds=90)

    def release_finalizers(self) -> None:
        """Pods held by the tests' finalizer must be let go, or the namespace never goes."""
        for pod in self.get("pods")["items"]:
            if pod["metadata"].get("finalizers"):
                patch = json.dumps({"metadata": {"finalizers": None}})
                self.kubectl("patch", "pod", pod["metadata"]["name"], "--type=merge", "-p", patch, check=False)


# --- objects -----------------------------------------------------------------------------------------------------


def container(name: str, image: str) -> Obj:
    return {"name": name, "image": image, "ports": [{"containerPort": 8080}]}


def template(
    app: str, containers: list[Obj], init: list[Obj] | None = None, labels: dict[str, str] | None = None, **spec: Any
) -> Obj:
    pod_spec: Obj = {"tolerations": TOLERATE_KWOK, "containers": containers, **spec}
    if init:
        pod_spec["initContainers"] = init
    return {"metadata": {"labels": {"app": app, **(labels or {})}}, "spec": pod_spec}


def deployment(name: str, replicas: int, pod: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": pod["metadata"]["labels"]["app"]}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            # Far away: a pod held not ready on purpose must be judged by its state, not by the controller's timeout.
            "progressDeadlineSeconds": 86400,
            "template": pod,
            **spec,
        },
    }


def daemonset(name: str, pod: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": pod["metadata"]["labels"]["app"]}}, "template": pod, **spec},
    }


def statefulset(name: str, replicas: int, pod: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": pod["metadata"]["labels"]["app"]}},
            "template": pod,
            **spec,
        },
    }


def bare_pod(name: str, labels: dict[str, str], containers: list[Obj], **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"tolerations": TOLERATE_KWOK, "containers": containers, **spec},
    }


def replicaset(name: str, replicas: int, labels: dict[str, str], containers: list[Obj]) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"tolerations": TOLERATE_KWOK, "containers": containers},
            },
        },
    }


def service(name: str, selector: dict[str, str] | None = None, **spec: Any) -> Obj:
    body: Obj = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}
    if selector:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def endpoint_slice(name: str, service_name: str, endpoints: list[Obj]) -> Obj:
    """A slice as a controller outside kube writes for a Service without a selector (managed-by names it)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/service-name": service_name,
                "endpointslice.kubernetes.io/managed-by": "states.dv.test",
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }


def pod_endpoint(pod: Obj, **conditions: bool) -> Obj:
    endpoint: Obj = {
        "addresses": [pod["status"].get("podIP") or "10.9.9.9"],
        "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]},
    }
    if conditions:
        endpoint["conditions"] = conditions
    return endpoint


# --- kubelet-shaped statuses for pods nobody schedules -------------------------------------------------------------


def running(
    name: str, image: str, ready: bool = True, restarts: int = 0, image_id: str | None = None, **extra: Any
) -> Obj:
    status: Obj = {
        "name": name,
        "image": image,
        "ready": ready,
        "started": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": now()}},
        **extra,
    }
    if image_id:
        status["imageID"] = image_id
    return status


def waiting(name: str, image: str, reason: str, message: str = "", restarts: int = 0, **extra: Any) -> Obj:
    state: Obj = {"reason": reason, **({"message": message} if message else {})}
    return {
        "name": name,
        "image": image,
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "state": {"waiting": state},
        **extra,
    }


def terminated(name: str, image: str, reason: str, code: int, restarts: int = 0, ready: bool = False) -> Obj:
    return {
        "name": name,
        "image": image,
        "ready": ready,
        "started": False,
        "restartCount": restarts,
        "state": {"terminated": {"reason": reason, "exitCode": code, "startedAt": now(), "finishedAt": now()}},
    }


def pod_status(
    phase: str,
    containers: list[Obj],
    init: list[Obj] | None = None,
    ready: bool | None = None,
    ready_reason: str = "ContainersNotReady",
    initialized: bool = True,
    extra_conditions: list[Obj] | None = None,
    **fields: Any,
) -> Obj:
    """What a kubelet writes: phase, conditions derived from the containers (unless `ready` says otherwise), IPs."""
    all_ready = all(c.get("ready") for c in containers) if ready is None else ready
    stamp = now()

    def condition(kind: str, value: bool, reason: str = "") -> Obj:
        found: Obj = {"type": kind, "status": "True" if value else "False", "lastTransitionTime": stamp}
        return {**found, "reason": reason} if reason and not value else found

    conditions = [
        condition("PodScheduled", True),
        condition("Initialized", initialized, "ContainersNotInitialized"),
        condition("ContainersReady", all(c.get("ready") for c in containers), "ContainersNotReady"),
        condition("Ready", all_ready, ready_reason),
        *(extra_conditions or []),
    ]
    status: Obj = {
        "phase": phase,
        "conditions": conditions,
        "containerStatuses": containers,
        "podIP": "10.200.0.10",
        "podIPs": [{"ip": "10.200.0.10"}],
        "startTime": stamp,
        **fields,
    }
    if init is not None:
        status["initContainerStatuses"] = init
    return status
