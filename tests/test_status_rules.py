"""The status rules (checks.status) through the resource check (checks.resources), on the testbed's real control plane
(cluster dv-b): every rule healthy and in each broken state it claims to catch, asserting verdict and message.

How each state comes about is said per group:
- by the real controllers (Deployment, StatefulSet, DaemonSet, Job, CronJob, PV binder, EndpointSlice, HPA,
  disruption) and KWOK's stages (pods Ready at once, Job pods complete, `dv.test/fault: not-ready` pods never ready);
- by a status written through the status subresource where no controller runs (cert-manager Certificates, Argo
  Rollouts Rollouts, made-up CRDs, a LoadBalancer Service's and an Ingress' address, pods nobody schedules);
- where a real controller would overwrite a written status within its resync (the HPA), the object the API server
  returned from the status write is judged (`judge`), so the test never races the controller.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.resources import ResourceRef, check_object
from deploy_verify.checks.result import CheckResult, Verdict
from deploy_verify.checks.status import State, judge
from tests.kube_world import (
    CLUSTER,
    NOBODY,
    REGISTRY,
    TOLERATE_KWOK,
    World,
    bare_pod,
    container,
    daemonset,
    deployment,
    now,
    pod_status,
    service,
    statefulset,
    template,
    terminated,
    waiting,
)

ROLLOUT_CRD = "/root/go/pkg/mod/github.com/argoproj/argo-rollouts@v1.10.1/manifests/crds/rollout-crd.yaml"
GROUP = "states.dv.test"
WIDGET = f"{GROUP}/v1"  # a made-up CRD with a status subresource (conditions, phase, whatever its controller says)
IMG = f"{REGISTRY}/app:1.0.0"
ROLLOUTS = "argoproj.io/v1alpha1"
CERTS = "cert-manager.io/v1"
Obj = dict[str, Any]


def crd(kind: str, plural: str, with_status: bool) -> Obj:
    """A namespaced CRD in states.dv.test/v1; `with_status`: a status subresource, else no status at all (the schema
    has none, so the API server prunes any)."""
    properties: Obj = {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    version: Obj = {"name": "v1", "served": True, "storage": True}
    if with_status:
        properties["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        version["subresources"] = {"status": {}}
    version["schema"] = {"openAPIV3Schema": {"type": "object", "properties": properties}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [version],
        },
    }


CRDS = [crd("Widget", "widgets", with_status=True), crd("Gadget", "gadgets", with_status=False)]


def apply_crds(kube: Any) -> None:
    """The Rollout CRD (the testbed installs it too; server-side apply again is harmless) and the made-up ones. Left
    installed: cluster-wide, idempotent, and other sessions may be using them."""
    base = [*kube.kubectl_command(CLUSTER), "apply", "--server-side", "--force-conflicts"]
    subprocess.run([*base, "-f", ROLLOUT_CRD], check=True, capture_output=True, timeout=120)
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": CRDS})
    subprocess.run([*base, "-f", "-"], input=document, text=True, check=True, capture_output=True, timeout=120)
    names = ["crd/rollouts.argoproj.io", f"crd/widgets.{GROUP}", f"crd/gadgets.{GROUP}"]
    subprocess.run(
        [*kube.kubectl_command(CLUSTER), "wait", "--for=condition=Established", "--timeout=60s", *names],
        check=True,
        capture_output=True,
        timeout=90,
    )


@pytest.fixture(scope="session")
def crds(testbed_kube: Any) -> None:
    apply_crds(testbed_kube)


def budget(seconds: float = 30) -> Deadline:
    return Deadline.after(seconds, "test budget")


def custom(kind: str, name: str, api_version: str = WIDGET, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    meta: Obj = {"name": name, **({"labels": labels} if labels else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec or {"size": 1}}


def condition(kind: str, status: str, reason: str = "", message: str = "", **extra: Any) -> Obj:
    found: Obj = {"type": kind, "status": status, "lastTransitionTime": now(), **extra}
    return {**found, **({"reason": reason} if reason else {}), **({"message": message} if message else {})}


def rollout(name: str) -> Obj:
    return {
        "apiVersion": ROLLOUTS,
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container("app", IMG)]}},
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        },
    }


def certificate(name: str) -> Obj:
    return {
        "apiVersion": CERTS,
        "kind": "Certificate",
        "metadata": {"name": name},
        "spec": {"secretName": f"{name}-tls", "dnsNames": [f"{name}.example.test"], "issuerRef": {"name": "ca"}},
    }


def job(name: str, **spec: Any) -> Obj:
    pod_spec: Obj = {"tolerations": TOLERATE_KWOK, "containers": [container("run", IMG)], "restartPolicy": "Never"}
    pod_spec.update(spec.pop("pod", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"metadata": {"labels": {"job": name}}, "spec": pod_spec}, **spec},
    }


def cronjob(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job(name)["spec"]}, **spec},
    }


def pvc(name: str, storage_class: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def pv(name: str, storage_class: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "hostPath": {"path": f"/tmp/{name}"},
        },
    }


def hpa(name: str, target: str) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }


def pdb(name: str, selector: dict[str, str], **spec: Any) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": selector}, **spec},
    }


def ingress(name: str) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "ingressClassName": "dv-nginx",
            "rules": [
                {
                    "host": f"{name}.example.test",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def not_ready(app: str) -> Obj:
    return template(app, [container("app", IMG)], labels={"dv.test/fault": "not-ready"})


def _objects(pv_class: str) -> list[Obj]:
    with_cpu = template("web", [{**container("app", IMG), "resources": {"requests": {"cpu": "100m"}}}])
    nobody: Obj = {"schedulerName": NOBODY}
    return [
        # Workloads: the real controllers, KWOK pods.
        deployment("web", 2, with_cpu),
        deployment("stuck", 1, not_ready("stuck"), progressDeadlineSeconds=2),
        deployment("slow", 1, not_ready("slow")),
        deployment("frozen", 1, template("frozen", [container("app", IMG)]), paused=True),
        deployment("zero", 0, template("zero", [container("app", IMG)])),
        statefulset("db", 2, template("db", [container("app", IMG)])),
        statefulset("ondel", 1, template("ondel", [container("app", IMG)]), updateStrategy={"type": "OnDelete"}),
        statefulset(
            "staged",
            2,
            template("staged", [container("app", IMG)]),
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        ),
        statefulset("lagging", 1, not_ready("lagging")),
        daemonset("agent", template("agent", [container("app", IMG)])),
        daemonset("nowhere", template("nowhere", [container("app", IMG)], nodeSelector={"dv.test/none": "x"})),
        daemonset("ds-ondel", template("ds-ondel", [container("app", IMG)]), updateStrategy={"type": "OnDelete"}),
        daemonset("ds-slow", not_ready("ds-slow")),
        # Jobs: KWOK completes Job pods; pods nobody schedules stay active (or fail when the test says so).
        job("done", backoffLimit=0),
        job("late", backoffLimit=0, activeDeadlineSeconds=1, pod=nobody),
        job("crashing", backoffLimit=0, pod=nobody),
        job("queued", pod=nobody),
        job("held", suspend=True),
        cronjob("nightly"),
        cronjob("off", suspend=True),
        # Storage: the real PV binder.
        pv(f"{pv_class}-a", pv_class),
        pv(f"{pv_class}-b", pv_class),
        pvc("data", pv_class),
        pvc("lost", pv_class),
        pvc("orphan", f"{pv_class}-none"),
        # Services: the real EndpointSlice controller; no load-balancer controller runs.
        service("web", {"app": "web"}),
        service("slow", {"app": "slow"}),
        service("nobody", {"app": "nothing"}),
        service("manual"),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "alias"},
            "spec": {"type": "ExternalName", "externalName": "db.example.test"},
        },
        service("lb", {"app": "web"}, type="LoadBalancer"),
        service("lb-ready", {"app": "web"}, type="LoadBalancer"),
        ingress("site"),
        ingress("site-up"),
        # Autoscaling and disruption: the real HPA and disruption controllers (no metrics API runs).
        hpa("cpu", "web"),
        hpa("ghost", "missing"),
        hpa("idle", "zero"),
        hpa("written", "web"),
        pdb("web", {"app": "web"}, minAvailable=1),
        pdb("greedy", {"app": "web"}, minAvailable=3),
        pdb("empty", {"app": "nothing"}, minAvailable=1),
        pdb("bare", {"app": "loner"}, maxUnavailable=1),
        # Bare pods.
        bare_pod("loner", {"app": "loner"}, [container("app", IMG)]),
        bare_pod("crashy", {"app": "crashy"}, [container("app", IMG)], **nobody),
        bare_pod("pending", {"app": "pending"}, [container("app", IMG)], **nobody),
        bare_pod("finished", {"app": "finished"}, [container("app", IMG)], restartPolicy="Never", **nobody),
        # Kinds without status.
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"t": "x"}},
        # cert-manager Certificates (CRD, no controller).
        *(certificate(n) for n in ("ok", "issuing", "failed", "bad", "old", "fresh")),
        # Argo Rollouts (CRD, no controller).
        *(
            rollout(n)
            for n in ("healthy", "degraded", "paused", "aborted", "progressing", "behind", "legacy", "invalid", "new")
        ),
        # Made-up CRDs: one with a status subresource, one without any status.
        *(custom("Widget", n) for n in ("ready", "refused", "provisioning", "stalled", "reconciling", "available")),
        *(custom("Widget", n) for n in ("running", "crashed", "odd", "bare", "behind", "unknown", "none")),
        custom("Widget", "w-good", labels={"set": "mixed"}),
        custom("Widget", "w-bad", labels={"set": "mixed"}),
        custom("Gadget", "gizmo"),
    ]


CERT_READY = condition("Ready", "True", "Ready", "Certificate is up to date and has not expired")
STATUSES: list[tuple[str, str, Obj]] = [
    # Certificates, as cert-manager writes them.
    ("certificate", "ok", {"conditions": [CERT_READY], "notAfter": "2031-01-01T00:00:00Z"}),
    (
        "certificate",
        "issuing",
        {
            "conditions": [
                condition("Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist"),
                condition("Issuing", "True", "DoesNotExist", "Issuing certificate as Secret does not exist"),
            ]
        },
    ),
    (
        "certificate",
        "failed",
        {
            "conditions": [
                condition("Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist"),
                condition("Issuing", "False", "Failed", "The certificate request has failed to complete"),
            ],
            "lastFailureTime": "2030-01-01T00:00:00Z",
            "failedIssuanceAttempts": 3,
        },
    ),
    ("certificate", "bad", {"conditions": [condition("Ready", "False", "Expired", "Certificate expired")]}),
    ("certificate", "old", {"conditions": [{**CERT_READY, "observedGeneration": 1}]}),
    # Rollouts, as the Argo Rollouts controller writes them.
    ("rollout", "healthy", {"phase": "Healthy", "observedGeneration": "1", "replicas": 1, "availableReplicas": 1}),
    (
        "rollout",
        "degraded",
        {
            "phase": "Degraded",
            "message": "RolloutAborted: Rollout aborted update to revision 2",
            "observedGeneration": "1",
        },
    ),
    (
        "rollout",
        "paused",
        {
            "phase": "Paused",
            "message": "CanaryPauseStep",
            "observedGeneration": "1",
            "controllerPause": True,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": now()}],
        },
    ),
    (
        "rollout",
        "aborted",
        {
            "abort": True,
            "phase": "Degraded",
            "message": "RolloutAborted: metric error-rate failed",
            "observedGeneration": "1",
        },
    ),
    (
        "rollout",
        "progressing",
        {"phase": "Progressing", "message": "more replicas need to be updated", "observedGeneration": "1"},
    ),
    ("rollout", "behind", {"phase": "Healthy", "observedGeneration": "1"}),
    (
        "rollout",
        "legacy",
        {
            "observedGeneration": "5d7f9c8b6",  # before v0.10: a hash, which says nothing about generations
            "replicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                condition(
                    "Available", "True", "AvailableReason", "Rollout has minimum availability", lastUpdateTime=now()
                )
            ],
        },
    ),
    (
        "rollout",
        "invalid",
        {
            "conditions": [
                condition(
                    "InvalidSpec", "True", "InvalidSpec", "The Rollout uses an unknown strategy", lastUpdateTime=now()
                )
            ]
        },
    ),
    # Made-up CRD: what operators publish.
    ("widget", "ready", {"conditions": [condition("Ready", "True", "Succeeded")]}),
    (
        "widget",
        "refused",
        {"conditions": [condition("Ready", "False", "CredentialsRejected", "the token was refused")]},
    ),
    ("widget", "provisioning", {"conditions": [condition("Ready", "False", "Provisioning", "creating the bucket")]}),
    ("widget", "stalled", {"conditions": [condition("Stalled", "True", "QuotaExhausted", "no capacity left")]}),
    ("widget", "reconciling", {"conditions": [condition("Reconciling", "True", "Applying", "applying revision 4")]}),
    ("widget", "available", {"conditions": [condition("Available", "True", "MinimumReplicasAvailable")]}),
    ("widget", "running", {"phase": "Running"}),
    ("widget", "crashed", {"phase": "Failed", "message": "the worker exited"}),
    ("widget", "odd", {"phase": "Hibernating"}),
    ("widget", "bare", {"observedGeneration": 1, "size": 3}),
    ("widget", "behind", {"observedGeneration": 1, "conditions": [condition("Ready", "True", "Succeeded")]}),
    ("widget", "unknown", {"conditions": [condition("Ready", "Unknown", "Checking", "first probe pending")]}),
    ("widget", "w-good", {"conditions": [condition("Ready", "True", "Succeeded")]}),
    ("widget", "w-bad", {"conditions": [condition("Ready", "False", "BackendDown", "the backend is down")]}),
    # Addresses no controller writes here.
    ("service", "lb-ready", {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}),
    ("ingress", "site-up", {"loadBalancer": {"ingress": [{"hostname": "lb.example.test"}]}}),
]


class Shop:
    """The namespace and the objects above, in their states."""

    def __init__(self, world: World, pv_class: str) -> None:
        self.world, self.pv_class = world, pv_class


@pytest.fixture(scope="module")
def shop(testbed_kube: Any, crds: None) -> Iterator[Shop]:
    namespace = f"wsr-{secrets.token_hex(3)}"
    world = World(testbed_kube, namespace)
    pv_class = f"dv-{namespace}"
    testbed_kube.kubectl(CLUSTER, "create", "namespace", namespace)
    try:
        world.apply(*_objects(pv_class))
        for kind, name, status in STATUSES:
            world.write_status(kind, name, status)
        _bring_about(world, pv_class)
        yield Shop(world, pv_class)
    finally:
        world.release_finalizers()
        testbed_kube.kubectl(CLUSTER, "delete", "namespace", namespace, "--wait=false", check=False)
        for suffix in ("a", "b"):
            testbed_kube.kubectl(CLUSTER, "delete", "pv", f"{pv_class}-{suffix}", "--wait=false", check=False)


def _bring_about(world: World, pv_class: str) -> None:
    """The states that need a second step once the controllers have acted."""
    world.rolled_out("statefulset", "ondel")
    world.rolled_out("statefulset", "staged")
    world.rolled_out("daemonset", "ds-ondel")
    patch = json.dumps({"spec": {"template": {"spec": {"containers": [container("app", f"{REGISTRY}/app:2.0.0")]}}}})
    for kind, name in (("statefulset", "ondel"), ("statefulset", "staged"), ("daemonset", "ds-ondel")):
        world.kubectl("patch", kind, name, "--type=strategic", "-p", patch)
    # A pod the kubelet reports in CrashLoopBackOff, one that failed (its Job counts it), one that completed.
    crash = waiting("app", IMG, "CrashLoopBackOff", "back-off 5m0s restarting failed container", restarts=5)
    crash["lastState"] = {"terminated": {"reason": "Error", "exitCode": 1, "startedAt": now(), "finishedAt": now()}}
    world.write_status("pod", "crashy", pod_status("Running", [crash]))
    world.write_status(
        "pod", "finished", pod_status("Succeeded", [terminated("app", IMG, "Completed", 0)], ready=False)
    )
    world.wait_for("the crashing Job's pod", lambda: world.get("pods", selector="job=crashing")["items"])
    failed_pod = world.get("pods", selector="job=crashing")["items"][0]["metadata"]["name"]
    world.write_status("pod", failed_pod, pod_status("Failed", [terminated("app", IMG, "Error", 1)], ready=False))
    # Specs that change after their status was written: the status is about the generation before.
    bump = json.dumps({"spec": {"size": 2}})
    world.kubectl("patch", "widget", "behind", "--type=merge", "-p", bump)
    world.kubectl(
        "patch", "certificate", "old", "--type=merge", "-p", json.dumps({"spec": {"dnsNames": ["o.example.test"]}})
    )
    world.kubectl("patch", "rollout", "behind", "--type=merge", "-p", json.dumps({"spec": {"replicas": 2}}))
    # A claim whose volume goes away after it was bound: the binder marks it Lost.
    world.wait_for("claim lost bound", lambda: world.get("pvc", "lost").get("status", {}).get("phase") == "Bound")
    volume = world.get("pvc", "lost")["spec"]["volumeName"]
    world.kubectl("patch", "pv", volume, "--type=merge", "-p", json.dumps({"metadata": {"finalizers": None}}))
    world.kubectl("delete", "pv", volume, "--wait=false")


@dataclass(frozen=True)
class Row:
    api_version: str
    kind: str
    name: str
    verdict: Verdict
    message: str  # a regular expression the whole message must match; {ns} is the namespace
    may_suspend: bool = False


def row(api_version: str, kind: str, name: str, verdict: Verdict, message: str, may_suspend: bool = False) -> Any:
    suffix = "-may-suspend" if may_suspend else ""
    return pytest.param(Row(api_version, kind, name, verdict, message, may_suspend), id=f"{kind}-{name}{suffix}")


P, F, E = Verdict.PASS, Verdict.FAIL, Verdict.ERROR
N = r"\d+"
ROWS = [
    # Deployment
    row("apps/v1", "Deployment", "web", P, r"rolled out: 2/2 updated, 2/2 ready, 2/2 available"),
    row(
        "apps/v1",
        "Deployment",
        "stuck",
        F,
        r"rollout stuck: Progressing is False \(ProgressDeadlineExceeded: ReplicaSet \"stuck-\w+\" has timed out "
        r"progressing\.\); 1/1 updated, 0/1 ready, 0/1 available",
    ),
    row("apps/v1", "Deployment", "slow", F, r"rollout in progress: 1/1 updated, 0/1 ready, 0/1 available"),
    row(
        "apps/v1",
        "Deployment",
        "frozen",
        F,
        r"paused \(spec\.paused: true\): the controller rolls out no change until it is resumed \(kubectl rollout "
        r"resume deployment/frozen\)",
    ),
    row(
        "apps/v1",
        "Deployment",
        "zero",
        F,
        r"scaled to 0 \(spec\.replicas: 0\): it runs nothing; declare it may be suspended if that is intended",
    ),
    row("apps/v1", "Deployment", "zero", P, r"scaled to 0 \(spec\.replicas: 0\), which the environment allows", True),
    # StatefulSet
    row("apps/v1", "StatefulSet", "db", P, r"rolled out: 2/2 ready, 2/2 available, 2/2 at revision db-\w+"),
    row(
        "apps/v1",
        "StatefulSet",
        "ondel",
        F,
        r"updateStrategy OnDelete: 1 pods still run the previous revision and the controller replaces a pod only "
        r"when someone deletes it; 1/1 ready, 1/1 available, 0/1 at revision ondel-\w+",
    ),
    row(
        "apps/v1",
        "StatefulSet",
        "staged",
        F,
        r"updateStrategy\.rollingUpdate\.partition is 2: pods with an ordinal below 2 stay on revision staged-\w+ "
        r"until the partition is lowered; 2/2 ready, 2/2 available, 0/2 at revision staged-\w+",
    ),
    row(
        "apps/v1",
        "StatefulSet",
        "lagging",
        F,
        r"not all replicas ready: 0/1 ready, 0/1 available, 1/1 at revision lagging-\w+",
    ),
    # DaemonSet
    row("apps/v1", "DaemonSet", "agent", P, rf"rolled out: ({N})/\1 updated, \1/\1 ready, \1/\1 available"),
    row(
        "apps/v1",
        "DaemonSet",
        "nowhere",
        F,
        r"no node admits its pods \(desiredNumberScheduled 0\): it runs nothing; declare it may be suspended if that "
        r"is intended",
    ),
    row(
        "apps/v1",
        "DaemonSet",
        "ds-ondel",
        F,
        rf"updateStrategy OnDelete: ({N}) pods still run the previous revision and the controller replaces a pod only "
        rf"when someone deletes it; 0/\1 updated, \1/\1 ready, \1/\1 available",
    ),
    row("apps/v1", "DaemonSet", "ds-slow", F, rf"rollout in progress: ({N})/\1 updated, 0/\1 ready, 0/\1 available"),
    # Job
    row("batch/v1", "Job", "done", P, r"complete: 1/1 succeeded"),
    row(
        "batch/v1",
        "Job",
        "late",
        F,
        rf"failed: DeadlineExceeded: Job was active longer than specified deadline \({N} failed pods, 0/1 succeeded\)",
    ),
    row(
        "batch/v1",
        "Job",
        "crashing",
        F,
        r"failed: BackoffLimitExceeded: Job has reached the specified backoff limit \(1 failed pods, 0/1 succeeded\)",
    ),
    row("batch/v1", "Job", "queued", F, r"running: 1 active, 0/1 succeeded, 0 failed \(backoffLimit 6\)"),
    row(
        "batch/v1",
        "Job",
        "held",
        F,
        r"suspended \(spec\.suspend: true\): it starts no pod until resumed: it runs nothing; declare it may be "
        r"suspended if that is intended",
    ),
    row(
        "batch/v1",
        "Job",
        "held",
        P,
        r"suspended \(spec\.suspend: true\): it starts no pod until resumed, which the environment allows",
        True,
    ),
    # CronJob
    row("batch/v1", "CronJob", "nightly", P, r"scheduled \(0 3 \* \* \*\); last run never, last successful run never"),
    row(
        "batch/v1",
        "CronJob",
        "off",
        F,
        r"suspended \(spec\.suspend: true\): it schedules no Job until resumed: it runs nothing; declare it may be "
        r"suspended if that is intended",
    ),
    row("batch/v1", "CronJob", "off", P, r"suspended .*, which the environment allows", True),
    # PersistentVolumeClaim
    row("v1", "PersistentVolumeClaim", "data", P, r"Bound to PersistentVolume dv-wsr-\w+-[ab] \(1Gi\)"),
    row(
        "v1",
        "PersistentVolumeClaim",
        "orphan",
        F,
        r"phase Pending: no volume bound yet \(a provisioner creates one, or a WaitForFirstConsumer class binds when "
        r"a pod uses it\)",
    ),
    # Service
    row("v1", "Service", "web", P, r"2 ready endpoints"),
    row("v1", "Service", "slow", F, r"no ready endpoint \(1 endpoints, none ready\)"),
    row("v1", "Service", "nobody", F, r"no ready endpoint \(no endpoint at all: does any pod match app=nothing\?\)"),
    row("v1", "Service", "manual", P, r"no selector: its endpoints are managed outside Kubernetes; not judged"),
    row("v1", "Service", "alias", P, r"type ExternalName \(a DNS alias for db\.example\.test\): no endpoints"),
    row(
        "v1",
        "Service",
        "lb",
        F,
        r"type LoadBalancer without an address yet \(status\.loadBalancer\.ingress is empty\): is a load-balancer "
        r"controller provisioning it\?",
    ),
    row("v1", "Service", "lb-ready", P, r"2 ready endpoints; address 203\.0\.113\.7"),
    # Ingress
    row(
        "networking.k8s.io/v1",
        "Ingress",
        "site",
        F,
        r"no address \(status\.loadBalancer\.ingress is empty\): has the ingress controller of dv-nginx admitted it\?",
    ),
    row("networking.k8s.io/v1", "Ingress", "site-up", P, r"address lb\.example\.test"),
    # HorizontalPodAutoscaler: the real controller, without a metrics API
    row(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "cpu",
        F,
        r"cannot scale: ScalingActive is False \((FailedGetResourceMetric|AmbiguousSelector): .+\); 2 replicas, \d desired",
    ),
    row(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "ghost",
        F,
        r"cannot scale: AbleToScale is False \(FailedGetScale: .*missing.*\); 0 replicas, 0 desired",
    ),
    row(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "idle",
        F,
        r"scaling disabled: its target is scaled to 0 \(ScalingDisabled: .+\): it runs nothing; declare it may be "
        r"suspended if that is intended",
    ),
    row(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        "idle",
        P,
        r"scaling disabled: .+, which the environment allows",
        True,
    ),
    # PodDisruptionBudget: the real disruption controller
    row(
        "policy/v1",
        "PodDisruptionBudget",
        "web",
        P,
        r"2 healthy of 2 expected pods, 1 desired healthy, 1 disruptions allowed",
    ),
    row(
        "policy/v1",
        "PodDisruptionBudget",
        "greedy",
        F,
        r"too few healthy pods: 2 healthy of 2 expected pods, 3 desired healthy, 0 disruptions allowed",
    ),
    row(
        "policy/v1",
        "PodDisruptionBudget",
        "empty",
        F,
        r"its selector matches no pod \(0 healthy of 0 expected pods, .*\)",
    ),
    row(
        "policy/v1",
        "PodDisruptionBudget",
        "bare",
        F,
        r"the disruption controller cannot compute the budget( \(SyncFailed: .+\)|: its pods have no controller with a "
        r"scale \(bare pods need an integer minAvailable\) \(1 healthy of 0 expected pods, .+\))",
    ),
    # Pod
    row("v1", "Pod", "loner", P, r"Ready"),
    row("v1", "Pod", "crashy", F, r"container app CrashLoopBackOff, 5 restarts, last exit code 1"),
    row("v1", "Pod", "pending", F, r"not ready \(phase Pending\)"),
    row("v1", "Pod", "finished", P, r"completed \(phase Succeeded\)"),
    # Kinds without status
    row("v1", "ConfigMap", "settings", P, r"exists \(a ConfigMap publishes no status: existing is all it can do\)"),
    row("v1", "Secret", "token", P, r"exists \(a Secret publishes no status: existing is all it can do\)"),
    # cert-manager Certificate
    row(
        CERTS,
        "Certificate",
        "ok",
        P,
        r"Ready \(Ready: Certificate is up to date and has not expired\), expires 2031-01-01T00:00:00Z",
    ),
    row(
        CERTS,
        "Certificate",
        "issuing",
        F,
        r"issuing \(DoesNotExist: Issuing certificate as Secret does not exist\); not Ready yet",
    ),
    row(
        CERTS,
        "Certificate",
        "failed",
        F,
        r"issuance failed at 2030-01-01T00:00:00Z \(3 failed attempts\): Failed: The certificate request has failed to "
        r"complete",
    ),
    row(CERTS, "Certificate", "bad", F, r"not Ready \(Expired: Certificate expired\)"),
    row(
        CERTS,
        "Certificate",
        "old",
        F,
        r"condition Ready describes generation 1, the object is at generation 2: its controller has not caught up",
    ),
    row(CERTS, "Certificate", "fresh", F, r"no Ready condition yet \(is cert-manager running\?\)"),
    # Argo Rollouts Rollout
    row(ROLLOUTS, "Rollout", "healthy", P, r"phase Healthy"),
    row(ROLLOUTS, "Rollout", "degraded", F, r"phase Degraded \(RolloutAborted: Rollout aborted update to revision 2\)"),
    row(
        ROLLOUTS,
        "Rollout",
        "paused",
        F,
        r"paused \(CanaryPauseStep\): it waits for a promotion \(kubectl argo rollouts promote\)",
    ),
    row(ROLLOUTS, "Rollout", "aborted", F, r"aborted \(status\.abort\): RolloutAborted: metric error-rate failed"),
    row(ROLLOUTS, "Rollout", "progressing", F, r"phase Progressing \(more replicas need to be updated\)"),
    row(
        ROLLOUTS,
        "Rollout",
        "behind",
        F,
        r"its controller has not observed the newest spec yet \(status\.observedGeneration 1 < metadata\.generation 2\)",
    ),
    row(ROLLOUTS, "Rollout", "legacy", P, r"available: 1/1 updated, 1/1 available"),
    row(ROLLOUTS, "Rollout", "invalid", F, r"InvalidSpec \(InvalidSpec: The Rollout uses an unknown strategy\)"),
    row(ROLLOUTS, "Rollout", "new", F, r"the Argo Rollouts controller has not reported a status yet"),
    # A CRD the suite never heard of
    row(WIDGET, "Widget", "ready", P, r"condition Ready is True \(Succeeded\)"),
    row(WIDGET, "Widget", "refused", F, r"condition Ready is False \(CredentialsRejected: the token was refused\)"),
    row(WIDGET, "Widget", "provisioning", F, r"condition Ready is False \(Provisioning: creating the bucket\)"),
    row(WIDGET, "Widget", "stalled", F, r"condition Stalled is True \(QuotaExhausted: no capacity left\)"),
    row(WIDGET, "Widget", "reconciling", F, r"condition Reconciling is True \(Applying: applying revision 4\)"),
    row(WIDGET, "Widget", "available", P, r"condition Available is True \(MinimumReplicasAvailable\)"),
    row(WIDGET, "Widget", "running", P, r"status\.phase is Running"),
    row(WIDGET, "Widget", "crashed", F, r"status\.phase is Failed \(the worker exited\)"),
    row(
        WIDGET,
        "Widget",
        "odd",
        E,
        r"status\.phase is Hibernating, a phase the suite cannot judge for a Widget; the suite cannot tell whether it "
        r"is healthy: check it another way, or leave it out",
    ),
    row(
        WIDGET,
        "Widget",
        "bare",
        E,
        r"publishes no status the suite can judge: no Ready or Available condition, no Reconciling or Stalled "
        r"condition, no phase \(it has status fields observedGeneration, size\); the suite cannot tell whether it is "
        r"healthy: check it another way, or leave it out",
    ),
    row(
        WIDGET,
        "Widget",
        "behind",
        F,
        r"its controller has not observed the newest spec yet \(status\.observedGeneration 1 < metadata\.generation 2\)",
    ),
    row(WIDGET, "Widget", "unknown", F, r"condition Ready is Unknown \(Checking: first probe pending\)"),
    row(
        WIDGET,
        "Widget",
        "none",
        E,
        r"publishes no status the suite can judge: the Widget has no status at all; the suite cannot tell whether it "
        r"is healthy: check it another way, or leave it out",
    ),
    row(
        WIDGET,
        "Gadget",
        "gizmo",
        E,
        r"publishes no status the suite can judge: the Gadget has no status at all; .+",
    ),
    # Not there
    row(
        WIDGET,
        "Widget",
        "nope",
        F,
        r"Widget nope \(states\.dv\.test/v1\) not found in namespace {ns}; is the name right, was it deployed\?",
    ),
]


def look(shop: Shop, api_version: str, kind: str, name: str = "", selector: str = "", **kw: Any) -> CheckResult:
    ref = ResourceRef(api_version, kind, shop.world.namespace, name, selector, kw.pop("may_suspend", False))
    return check_object(shop.world.reader(), ref, budget(), **kw)


@pytest.mark.parametrize("case", ROWS)
def test_status_rule(shop: Shop, case: Row) -> None:
    """One look, taken again until the controllers have brought the state about (at most 30 seconds); the state is
    then asserted exactly."""
    pattern = case.message.replace("{ns}", re.escape(shop.world.namespace))
    end = time.monotonic() + 30
    while True:
        result = look(shop, case.api_version, case.kind, case.name, may_suspend=case.may_suspend)
        if (result.verdict is case.verdict and re.fullmatch(pattern, result.message)) or time.monotonic() > end:
            break
        time.sleep(0.5)
    assert result.verdict is case.verdict, result.message
    assert re.fullmatch(pattern, result.message), result.message
    assert result.target == f"{case.kind}:{shop.world.namespace}/{case.name}"
    if result.verdict is not Verdict.PASS:
        assert any(e.name.endswith("status") for e in result.evidence) or case.name == "nope"


# --- HPA states the controller would overwrite: judged as the API server stored them ---------------------------------


HPA_STATES = [
    (
        [condition("AbleToScale", "True", "ReadyForNewScale"), condition("ScalingActive", "True", "ValidMetricFound")],
        State.CURRENT,
        "able to scale, scaling active: 2 replicas, 2 desired",
    ),
    (
        [
            condition("AbleToScale", "True", "ReadyForNewScale"),
            condition("ScalingActive", "True", "ValidMetricFound"),
            condition(
                "ScalingLimited", "True", "TooManyReplicas", "the desired replica count is more than the maximum"
            ),
        ],
        State.CURRENT,
        "able to scale, scaling active: 2 replicas, 2 desired; ScalingLimited: TooManyReplicas: the desired replica "
        "count is more than the maximum",
    ),
    (
        [
            condition(
                "AbleToScale", "False", "BackoffBoth", "the time since the previous scale is still within both windows"
            )
        ],
        State.IN_PROGRESS,
        "AbleToScale is False (BackoffBoth: the time since the previous scale is still within both windows); 2 "
        "replicas, 2 desired",
    ),
    (
        [
            condition("AbleToScale", "True", "SucceededGetScale"),
            condition("ScalingActive", "False", "InvalidSelector", "bad"),
        ],
        State.FAILED,
        "cannot scale: ScalingActive is False (InvalidSelector: bad); 2 replicas, 2 desired",
    ),
    ([], State.IN_PROGRESS, "the HPA controller has not reported its conditions yet"),
]


@pytest.mark.parametrize(("conditions", "state", "reason"), HPA_STATES)
def test_hpa_states_as_stored(shop: Shop, conditions: list[Obj], state: State, reason: str) -> None:
    status = {"currentReplicas": 2, "desiredReplicas": 2, "conditions": conditions}
    patch = json.dumps({"status": status})
    done = shop.world.kubectl(
        "patch", "hpa", "written", "--subresource=status", "--type=merge", "-p", patch, "-o", "json"
    )
    stored = json.loads(done.stdout)
    stored["status"].pop("observedGeneration", None)  # the controller's, from a sync that may have come before
    judged = judge(stored, shop.world.reader(), budget())
    assert (judged.state, judged.reason) == (state, reason)


# --- selections, kinds not served, namespaces, waits ---------------------------------------------------------------


def test_selector_names_every_object_it_judges(shop: Shop) -> None:
    result = look(shop, WIDGET, "Widget", selector="set=mixed")
    ns = shop.world.namespace
    assert result.verdict is Verdict.FAIL
    assert result.target == f"Widget:{ns}/[set=mixed]"
    assert result.message == f"Widget:{ns}/w-bad: condition Ready is False (BackendDown: the backend is down)"
    assert look(shop, WIDGET, "Widget", selector="set=mixed,good notin (no)").verdict is Verdict.FAIL


def test_selector_of_current_objects_passes(shop: Shop) -> None:
    shop.world.kubectl("label", "widget", "w-good", "only=good", "--overwrite")
    result = look(shop, WIDGET, "Widget", selector="only=good")
    ns = shop.world.namespace
    assert (result.verdict, result.message) == (
        Verdict.PASS,
        f"all 1 matching objects are current: Widget:{ns}/w-good",
    )


def test_selector_matching_nothing_is_undecided(shop: Shop) -> None:
    result = look(shop, WIDGET, "Widget", selector="set=none")
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        f"no Widget (states.dv.test/v1) in namespace {shop.world.namespace} matches the label selector 'set=none': "
        "an empty selection is never a pass; check the selector and that the objects were deployed"
    )


def test_kind_not_served_is_undecided(shop: Shop) -> None:
    result = look(shop, WIDGET, "Sprocket", "x")
    assert result.verdict is Verdict.ERROR
    assert re.fullmatch(
        r"cluster dv-b serves no kind Sprocket in states\.dv\.test/v1 \(it serves .*Gadget, Widget.*\)", result.message
    )
    result = look(shop, "nope.dv.test/v1", "Sprocket", "x")
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "cluster dv-b does not serve nope.dv.test/v1 (is the CRD installed, and is that its served version?)"
    )


def test_missing_namespace_is_undecided(shop: Shop) -> None:
    ref = ResourceRef(WIDGET, "Widget", "wsr-nowhere", "ready")
    result = check_object(shop.world.reader(), ref, budget())
    assert result.verdict is Verdict.ERROR
    assert "namespace 'wsr-nowhere' not found" in result.message


def test_a_wait_follows_the_watch_until_current(shop: Shop) -> None:
    """Ready=False/Provisioning, then a controller (here: a thread) sets Ready=True: the wait passes on the watch."""
    shop.world.apply(custom("Widget", "later"))
    shop.world.write_status("widget", "later", {"conditions": [condition("Ready", "False", "Provisioning", "soon")]})

    def become_ready() -> None:
        time.sleep(1.5)
        shop.world.write_status("widget", "later", {"conditions": [condition("Ready", "True", "Succeeded")]})

    thread = threading.Thread(target=become_ready)
    thread.start()
    result = look(shop, WIDGET, "Widget", "later", within=budget(30), grace=0)
    thread.join()
    assert (result.verdict, result.message) == (Verdict.PASS, "condition Ready is True (Succeeded)")
    timeline = next(e.content for e in result.evidence if e.name == "wait timeline") if result.evidence else ""
    assert timeline == "" or "condition Ready is False (Provisioning: soon)" in timeline


def test_a_wait_that_runs_out_reports_the_last_state(shop: Shop) -> None:
    window = Deadline.after(2, "step deadline of 2s")
    result = look(shop, WIDGET, "Widget", "provisioning", within=window, grace=0)
    assert result.verdict is Verdict.ERROR
    assert re.fullmatch(
        r"still converging when the step deadline of 2s ran out: condition Ready is False \(Provisioning: creating "
        r"the bucket\)( \(\d+ looks\))?",
        result.message,
    ), result.message


def test_a_failure_during_a_wait_ends_it_after_the_grace(shop: Shop) -> None:
    started = time.monotonic()
    result = look(shop, WIDGET, "Widget", "refused", within=budget(30), grace=1)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("condition Ready is False (CredentialsRejected: the token was refused)")
    assert time.monotonic() - started < 10


def test_a_lost_claim_fails() -> None:
    """phase Lost (the binder's mark for a bound claim whose volume is gone). Judged on the spec's shape: on the
    testbed the binder keeps re-binding the claim to its protected volume, so the state cannot be held there."""
    from deploy_verify.checks.status import State, judge

    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "shop", "generation": 1},
        "spec": {"volumeName": "pv-data", "accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Lost"},
    }
    judged = judge(claim, None, Deadline.after(5, "test"))  # type: ignore[arg-type]  # the rule reads no list
    assert (judged.state, judged.reason) == (
        State.FAILED,
        "Lost: its PersistentVolume pv-data no longer exists; the data it held is not reachable",
    )
