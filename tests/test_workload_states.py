"""The workload predicates (rollout, pods, image, endpoints) over the dimensions of the state they read, on the
testbed's real control plane: real Deployment, ReplicaSet, DaemonSet, StatefulSet, EndpointSlice controllers and
scheduler, KWOK kubelets. Each row asserts verdict and message.

How each state is made is said per group (see tests/kube_world.py): by the controllers and KWOK; by the controllers
plus a status written through the status subresource where the kubelet would write it (eviction, imageID); or, for
container states KWOK has no stage for, by pods nobody schedules whose status the test writes as a kubelet would.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.endpoints import check_endpoints
from deploy_verify.checks.images import ImageExpectation, check_image
from deploy_verify.checks.nodes import _judge as judge_nodes
from deploy_verify.checks.pods import check_pods
from deploy_verify.checks.result import CheckResult, Verdict
from deploy_verify.checks.rollout import Limits, check_rollout
from deploy_verify.checks.workloads import WorkloadRef
from tests.kube_world import (
    CLUSTER,
    NOBODY,
    REGISTRY,
    World,
    bare_pod,
    container,
    daemonset,
    deployment,
    endpoint_slice,
    pod_endpoint,
    pod_status,
    replicaset,
    running,
    service,
    statefulset,
    template,
    terminated,
    waiting,
)
from tests.test_workload_predicates import NODES as NODE_STATES

IMG = f"{REGISTRY}/app:1.0.0"
MIG = f"{REGISTRY}/migrate:1.0.0"
PROXY = f"{REGISTRY}/proxy:2.0.0"
DIGEST_APP = "sha256:" + "a1" * 32
DIGEST_MIG = "sha256:" + "b2" * 32
OTHER_DIGEST = "sha256:" + "c3" * 32
P = r"\S+"  # a pod name the controller chose
EVICTED = r"Evicted \(The node was low on resource: memory\.\)"


def budget(seconds: float = 60) -> Deadline:
    return Deadline.after(seconds, "test budget")


# --- the world: everything is created at once, then brought into its state -----------------------------------------


def _objects() -> list[dict]:
    app = [container("app", IMG)]
    nobody: dict[str, Any] = {"schedulerName": NOBODY}
    objects: list[dict] = [
        # Images: a sidecar first, the application second (named like the workload).
        deployment("web", 2, template("web", [container("proxy", PROXY), container("web", f"{REGISTRY}/web:1.9.0")])),
        service("web", {"app": "web"}),
        # Images: two containers and an init container, none named like the workload.
        deployment(
            "duo",
            1,
            template(
                "duo",
                [container("sidecar", f"{REGISTRY}/sidecar:2.0.0"), container("app", f"{REGISTRY}/app:1.9.0")],
                init=[container("migrate", MIG)],
            ),
        ),
        # Pods outside the owner chain behind the workload's Service: a bare pod and another ReplicaSet's pod.
        # (The Service selects `role`, not the Deployment's `app`: a Deployment adopts any ReplicaSet its selector
        # matches, and would scale the legacy one down.)
        deployment("api", 2, template("api", [container("api", f"{REGISTRY}/api:2.0.0")], labels={"role": "api"})),
        service("api", {"role": "api"}),
        bare_pod("api-stray", {"role": "api"}, [container("api", f"{REGISTRY}/api:1.9.0")]),
        replicaset("api-legacy", 1, {"role": "api", "track": "legacy"}, [container("api", f"{REGISTRY}/api:1.8.0")]),
        # ...one that runs the release too (fine), one of the old version that is not ready (not routed to).
        deployment("shop", 1, template("shop", [container("shop", f"{REGISTRY}/shop:2.0.0")])),
        service("shop", {"app": "shop"}),
        bare_pod("shop-twin", {"app": "shop"}, [container("shop", f"{REGISTRY}/shop:2.0.0")]),
        bare_pod(
            "shop-old", {"app": "shop", "dv.test/fault": "not-ready"}, [container("shop", f"{REGISTRY}/shop:1.0.0")]
        ),
        # A pod reached only through an EndpointSlice written by hand (Service without a selector).
        deployment("edge", 1, template("edge", [container("edge", f"{REGISTRY}/edge:2.0.0")])),
        bare_pod("edge-stray", {"app": "elsewhere"}, [container("edge", f"{REGISTRY}/edge:1.0.0")]),
        *(
            service(name)
            for name in ("edge-manual", "edge-foreign", "edge-dup", "edge-draining", "edge-nil", "edge-ext")
        ),
        service("edge-alias", type="ExternalName", externalName="edge.example.test"),
        # Rollouts with pods the controller no longer counts.
        deployment("roll", 2, template("roll", [container("roll", f"{REGISTRY}/roll:1.0.0")])),
        deployment("evict", 3, template("evict", app)),
        deployment("hold", 2, template("hold", app)),
        # Replicas.
        deployment("zero", 0, template("zero", app)),
        deployment("few", 2, template("few", app)),
        daemonset("nowhere", template("nowhere", app, nodeSelector={"dv.test/no-such-node": "true"})),
        statefulset("empty-sts", 0, template("empty-sts", app)),
        # Rollouts that cannot progress by themselves.
        deployment("paused", 2, template("paused", app)),
        deployment("paused-done", 2, template("paused-done", app)),
        daemonset("ds-ondelete", template("ds-ondelete", app), updateStrategy={"type": "OnDelete"}),
        statefulset("sts-ondelete", 2, template("sts-ondelete", app), updateStrategy={"type": "OnDelete"}),
        statefulset("sts-part", 2, template("sts-part", app), **_partition(1)),
        statefulset("sts-part-all", 2, template("sts-part-all", app), **_partition(5)),
        statefulset("sts-part-idle", 2, template("sts-part-idle", app), **_partition(1)),
        # Waiting for scheduling gates: real, the scheduler writes SchedulingGated.
        deployment("gated", 1, template("gated", app, schedulingGates=[{"name": "dv.test/hold"}])),
    ]
    for name, spec in NOBODY_STATES.items():
        init = [container("migrate", MIG)] if spec.init else None
        if spec.sidecar:
            init = [{**container("proxy", PROXY), "restartPolicy": "Always"}]
        extra: dict[str, Any] = {"readinessGates": [{"conditionType": "example.com/lb"}]} if spec.gate else {}
        objects.append(deployment(f"ps-{name}", 1, template(f"ps-{name}", app, init, None, **nobody, **extra)))
    return objects


def _partition(partition: int) -> dict:
    return {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}


@dataclass(frozen=True)
class Written:
    """A pod status the test writes as the kubelet would, for a pod nobody schedules."""

    status: Callable[[], dict] | None  # None: leave the pod as the API server created it (phase Pending, no status)
    init: bool = False
    sidecar: bool = False
    gate: bool = False


def _crashing_init() -> dict:
    last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2026-01-01T00:00:00Z"}}
    return pod_status(
        "Pending",
        [waiting("app", IMG, "PodInitializing")],
        init=[waiting("migrate", MIG, "CrashLoopBackOff", "back-off 40s restarting", restarts=4, lastState=last)],
        initialized=False,
    )


NOBODY_STATES: dict[str, Written] = {
    "healthy": Written(lambda: pod_status("Running", [running("app", IMG)])),
    "fresh": Written(None),
    "creating": Written(lambda: pod_status("Pending", [waiting("app", IMG, "ContainerCreating")])),
    "never-pull": Written(
        lambda: pod_status(
            "Pending",
            [
                waiting(
                    "app", IMG, "ErrImageNeverPull", f'Container image "{IMG}" is not present with pull policy of Never'
                )
            ],
        )
    ),
    "config-error": Written(
        lambda: pod_status(
            "Pending", [waiting("app", IMG, "CreateContainerConfigError", 'secret "db-credentials" not found')]
        )
    ),
    "exited": Written(lambda: pod_status("Running", [terminated("app", IMG, "Error", 137, restarts=1)])),
    "oom-now": Written(lambda: pod_status("Running", [terminated("app", IMG, "OOMKilled", 137, restarts=2)])),
    "restarts": Written(lambda: pod_status("Running", [running("app", IMG, restarts=5)])),
    "init-crash": Written(_crashing_init, init=True),
    "init-running": Written(
        lambda: pod_status(
            "Pending",
            [waiting("app", IMG, "PodInitializing")],
            init=[running("migrate", MIG, ready=False)],
            initialized=False,
        ),
        init=True,
    ),
    "init-done": Written(
        lambda: pod_status(
            "Running", [running("app", IMG)], init=[terminated("migrate", MIG, "Completed", 0, ready=True)]
        ),
        init=True,
    ),
    "sidecar-crash": Written(
        lambda: pod_status(
            "Running",
            [running("app", IMG)],
            init=[waiting("proxy", PROXY, "CrashLoopBackOff", "back-off", restarts=6)],
            ready=False,
        ),
        sidecar=True,
    ),
    "gate-false": Written(
        lambda: pod_status(
            "Running",
            [running("app", IMG)],
            ready=False,
            ready_reason="ReadinessGatesNotReady",
            extra_conditions=[{"type": "example.com/lb", "status": "False"}],
        ),
        gate=True,
    ),
    "gate-missing": Written(
        lambda: pod_status("Running", [running("app", IMG)], ready=False, ready_reason="ReadinessGatesNotReady"),
        gate=True,
    ),
    "digest": Written(
        lambda: pod_status(
            "Running",
            [running("app", IMG, image_id=f"{REGISTRY}/app@{DIGEST_APP}")],
            init=[
                {
                    **terminated("migrate", MIG, "Completed", 0, ready=True),
                    "imageID": f"{REGISTRY}/migrate@{DIGEST_MIG}",
                }
            ],
        ),
        init=True,
    ),
}


@pytest.fixture(scope="module")
def world(testbed_kube) -> Iterator[World]:
    namespace = f"wst-{secrets.token_hex(3)}"
    world = World(testbed_kube, namespace)
    testbed_kube.kubectl(CLUSTER, "create", "namespace", namespace)
    try:
        world.apply(*_objects())
        _bring_about(world)
        yield world
    finally:
        world.release_finalizers()
        testbed_kube.kubectl(CLUSTER, "delete", "namespace", namespace, "--wait=false", check=False)


def _bring_about(world: World) -> None:
    for kind, name in (
        ("deployment", "web"),
        ("deployment", "duo"),
        ("deployment", "api"),
        ("deployment", "shop"),
        ("deployment", "edge"),
        ("deployment", "roll"),
        ("deployment", "evict"),
        ("deployment", "hold"),
        ("deployment", "paused"),
        ("deployment", "paused-done"),
        ("daemonset", "ds-ondelete"),
        ("statefulset", "sts-ondelete"),
        ("statefulset", "sts-part"),
        ("statefulset", "sts-part-all"),
        ("statefulset", "sts-part-idle"),
    ):
        world.rolled_out(kind, name)
    _write_nobody_statuses(world)
    _evictions(world)
    _held_rollouts(world)
    _slices(world)
    for pod in ("api-stray", "shop-twin", "edge-stray"):
        world.wait_for(f"{pod} ready", lambda name: _ready(world.get("pod", name)), pod)
    world.wait_for("api-legacy ready", lambda: world.get("rs", "api-legacy")["status"].get("readyReplicas") == 1)
    world.wait_for(
        "shop-old running, not ready", lambda: world.get("pod", "shop-old")["status"].get("phase") == "Running"
    )
    # The EndpointSlice controller has caught up with every pod the api Service selects.
    world.wait_for("api endpoints", lambda: _ready_endpoints(world, "api") == 4)
    for name, count in (("evict", 3), ("hold", 2), ("few", 2)):
        world.wait_for(
            f"{name}: {count} active ready pods", lambda name, count: _active_ready(world, name) == count, name, count
        )
    for kind, name in (("daemonset", "nowhere"), ("statefulset", "empty-sts"), ("deployment", "zero")):
        world.wait_for(f"{name} observed", lambda kind, name: _observed(world.get(kind, name)), kind, name)
    world.wait_for(
        "gated pod waiting for its gate",
        lambda: any(
            c.get("reason") == "SchedulingGated"
            for p in world.pods("gated")
            for c in p.get("status", {}).get("conditions", [])
        ),
    )


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _active_ready(world: World, app: str) -> int:
    pods = world.pods(app)
    return sum(
        1
        for p in pods
        if _ready(p) and not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"
    )


def _ready_endpoints(world: World, service_name: str) -> int:
    slices = world.get("endpointslices", selector=f"kubernetes.io/service-name={service_name}")["items"]
    return sum(1 for s in slices for e in s.get("endpoints") or [] if e.get("conditions", {}).get("ready"))


def _write_nobody_statuses(world: World) -> None:
    for name, spec in NOBODY_STATES.items():
        world.wait_for(f"ps-{name} pod created", lambda name: bool(world.pods(f"ps-{name}")), name)
        if spec.status is not None:
            world.write_status("pod", world.pods(f"ps-{name}")[0]["metadata"]["name"], spec.status())
    # The ReplicaSet and Deployment controllers count what was written: wait until they have.
    for name in ("healthy", "restarts", "init-done", "digest"):
        world.wait_for(
            f"ps-{name} available",
            lambda name: world.get("deployment", f"ps-{name}").get("status", {}).get("availableReplicas") == 1,
            name,
        )


def _evictions(world: World) -> None:
    """Pods the kubelet evicted (phase Failed, reason Evicted) or that completed (Succeeded): written through the
    status subresource as the kubelet writes them; the ReplicaSet controller replaces them for real."""
    evicted = {
        "phase": "Failed",
        "reason": "Evicted",
        "message": "The node was low on resource: memory.",
        "conditions": [{"type": "Ready", "status": "False", "reason": "PodFailed"}],
    }
    done = {
        "phase": "Succeeded",
        "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
        "containerStatuses": [terminated("app", IMG, "Completed", 0)],
    }
    first, second = (p["metadata"]["name"] for p in world.pods("evict")[:2])
    world.write_status("pod", first, evicted)
    world.write_status("pod", second, done)
    # roll: an old-revision pod evicted, another held terminating by a finalizer, then the new revision rolled out.
    old_a, old_b = (p["metadata"]["name"] for p in world.pods("roll"))
    world.write_status("pod", old_a, evicted)
    world.kubectl(
        "patch", "pod", old_b, "--type=merge", "-p", json.dumps({"metadata": {"finalizers": ["dv.test/hold"]}})
    )
    world.kubectl("set", "image", "deployment/roll", f"roll={REGISTRY}/roll:2.0.0")
    # hold: a current pod held terminating; its ReplicaSet replaces it.
    held = world.pods("hold")[0]["metadata"]["name"]
    world.kubectl(
        "patch", "pod", held, "--type=merge", "-p", json.dumps({"metadata": {"finalizers": ["dv.test/hold"]}})
    )
    world.kubectl("delete", "pod", held, "--wait=false")
    for name in ("evict", "roll", "hold"):
        world.rolled_out("deployment", name)


def _held_rollouts(world: World) -> None:
    world.kubectl("rollout", "pause", "deployment/paused")
    world.kubectl("set", "image", "deployment/paused", f"app={REGISTRY}/app:2.0.0")
    world.kubectl("rollout", "pause", "deployment/paused-done")
    for kind, name in (
        ("daemonset", "ds-ondelete"),
        ("statefulset", "sts-ondelete"),
        ("statefulset", "sts-part"),
        ("statefulset", "sts-part-all"),
    ):
        world.kubectl("set", "image", f"{kind}/{name}", f"app={REGISTRY}/app:2.0.0")
    for kind, name in (("deployment", "paused"), ("daemonset", "ds-ondelete"), ("statefulset", "sts-ondelete")):
        world.wait_for(f"{name} observed", lambda kind, name: _observed(world.get(kind, name)), kind, name)
    # sts-part: the pod at or above the partition (ordinal 1) is updated; ordinal 0 stays.
    world.wait_for("sts-part-1 updated", lambda: _sts_settled(world, "sts-part", 1))
    world.wait_for("sts-part-all observed", lambda: _sts_settled(world, "sts-part-all", 0))


def _observed(obj: dict) -> bool:
    return bool(obj.get("status", {}).get("observedGeneration", 0) >= obj["metadata"]["generation"])


def _sts_settled(world: World, name: str, updated: int) -> bool:
    obj = world.get("statefulset", name)
    status = obj.get("status", {})
    return (
        _observed(obj)
        and status.get("updateRevision") != status.get("currentRevision")
        and status.get("updatedReplicas", 0) == updated
        and status.get("readyReplicas") == 2
    )


def _slices(world: World) -> None:
    edge = world.pods("edge")[0]
    stray = world.get("pod", "edge-stray")
    world.wait_for("edge-stray has an IP", lambda: bool(world.get("pod", "edge-stray")["status"].get("podIP")))
    stray = world.get("pod", "edge-stray")
    world.apply(
        endpoint_slice("edge-manual-1", "edge-manual", [pod_endpoint(edge), pod_endpoint(stray)]),
        endpoint_slice("edge-foreign-1", "edge-foreign", [pod_endpoint(stray)]),
        endpoint_slice("edge-dup-1", "edge-dup", [pod_endpoint(edge, ready=True)]),
        endpoint_slice("edge-dup-2", "edge-dup", [pod_endpoint(edge, ready=True)]),
        endpoint_slice(
            "edge-draining-1", "edge-draining", [pod_endpoint(edge, ready=False, serving=True, terminating=True)]
        ),
        endpoint_slice("edge-nil-1", "edge-nil", [pod_endpoint(edge)]),
        endpoint_slice("edge-ext-1", "edge-ext", [{"addresses": ["192.0.2.10"]}]),
    )


# --- the tables ----------------------------------------------------------------------------------------------------


def deploy(name: str) -> tuple[str, str]:
    return ("deployment", name)


@dataclass(frozen=True)
class Row:
    ref: tuple[str, str]
    run: Callable[[World, WorkloadRef], CheckResult]
    verdict: Verdict
    message: str  # a regular expression the whole message must match; {ns} is the namespace


def image(expected: ImageExpectation, services: list[str] | None = None, minimum: int = 1):
    return lambda w, ref: check_image(w.reader(), ref, expected, budget(), services, minimum)


def rollout(minimum: int = 1, within: float | None = None):
    def run(w: World, ref: WorkloadRef) -> CheckResult:
        limits = Limits(grace=1, min_replicas=minimum)
        window = budget(60).sub(within, f"step deadline of {within:.0f}s") if within else None
        return check_rollout(w.reader(), ref, limits, budget(), within=window)

    return run


def pods(minimum: int = 1):
    return lambda w, ref: check_pods(w.reader(), ref, Limits(min_replicas=minimum), budget())


def endpoints(*named: str):
    return lambda w, ref: check_endpoints(w.reader(), ref, budget(), list(named) or None)


def _tag(version: str, **more) -> ImageExpectation:
    return ImageExpectation(version=version, **more)


def _each(**rules: str | ImageExpectation) -> ImageExpectation:
    return ImageExpectation(
        containers={k: v if isinstance(v, ImageExpectation) else ImageExpectation(version=v) for k, v in rules.items()}
    )


R = REGISTRY.replace(".", r"\.")
IMAGES = {
    "sidecar-first-app-wrong": Row(
        deploy("web"),
        image(_tag("2.0.0")),
        Verdict.FAIL,
        rf"spec runs {R}/web:1\.9\.0, expected tag 2\.0\.0 \(container web\); Pod web-{P} runs {R}/web:1\.9\.0, "
        rf"expected tag 2\.0\.0 \(container web\); Pod web-{P} runs {R}/web:1\.9\.0, expected tag 2\.0\.0 "
        r"\(container web\)",
    ),
    "sidecar-first-app-right": Row(
        deploy("web"), image(_tag("1.9.0")), Verdict.PASS, rf"spec and 2 ready pods run {R}/web:1\.9\.0"
    ),
    "named-container": Row(
        deploy("web"),
        image(_tag("2.0.0", container="proxy")),
        Verdict.PASS,
        rf"spec and 2 ready pods run {R}/proxy:2\.0\.0",
    ),
    "several-containers-none-named": Row(
        deploy("duo"),
        image(_tag("2.0.0")),
        Verdict.ERROR,
        r"cannot tell which container runs the release: the pod template has containers sidecar, app; init "
        r"containers: migrate, none named duo; name it with `container: NAME` on the component in the environment "
        r"file, or give each container's image under `containers:` for this component in the release manifest",
    ),
    "container-named-like-the-component": Row(
        deploy("duo"),
        image(_tag("1.9.0", component="app")),
        Verdict.PASS,
        rf"spec and 1 ready pods run {R}/app:1\.9\.0",
    ),
    "per-container-app-wrong": Row(
        deploy("duo"),
        image(_each(app="2.0.0")),
        Verdict.FAIL,
        rf"spec runs {R}/app:1\.9\.0, expected tag 2\.0\.0 \(container app\); Pod duo-{P} runs {R}/app:1\.9\.0, "
        r"expected tag 2\.0\.0 \(container app\)",
    ),
    "per-container-init-wrong": Row(
        deploy("duo"),
        image(_each(app="1.9.0", migrate=ImageExpectation(image=f"{REGISTRY}/migrate:2.0.0"))),
        Verdict.FAIL,
        rf"spec runs {R}/migrate:1\.0\.0, expected {R}/migrate:2\.0\.0 \(init container migrate\); Pod duo-{P} runs "
        rf"{R}/migrate:1\.0\.0, expected {R}/migrate:2\.0\.0 \(init container migrate\)",
    ),
    "per-container-all-right": Row(
        deploy("duo"),
        image(_each(app="1.9.0", sidecar="2.0.0", migrate=ImageExpectation(image=MIG))),
        Verdict.PASS,
        rf"spec and 1 ready pods run container app {R}/app:1\.9\.0, init container migrate {R}/migrate:1\.0\.0, "
        rf"container sidecar {R}/sidecar:2\.0\.0",
    ),
    "per-container-unknown-name": Row(
        deploy("duo"),
        image(_each(worker="1.0.0")),
        Verdict.FAIL,
        r"the pod template has no container 'worker' \(it has sidecar, app and init containers migrate\)",
    ),
    "named-container-missing": Row(
        deploy("web"),
        image(_tag("2.0.0", container="nope")),
        Verdict.FAIL,
        r"the pod template has no container 'nope' \(it has proxy, web\)",
    ),
    "digests-app-and-init-right": Row(
        deploy("ps-digest"),
        image(_each(app=ImageExpectation(digest=DIGEST_APP), migrate=ImageExpectation(digest=DIGEST_MIG))),
        Verdict.PASS,
        rf"spec and 1 ready pods run container app {R}/app:1\.0\.0, init container migrate {R}/migrate:1\.0\.0",
    ),
    "digest-init-wrong": Row(
        deploy("ps-digest"),
        image(_each(migrate=ImageExpectation(digest=OTHER_DIGEST))),
        Verdict.FAIL,
        rf"Pod ps-digest-{P} runs {R}/migrate@{DIGEST_MIG}, expected {OTHER_DIGEST} \(init container migrate\)",
    ),
    "digest-not-reported": Row(
        deploy("ps-healthy"),
        image(ImageExpectation(digest=DIGEST_APP)),
        Verdict.FAIL,
        rf"Pod ps-healthy-{P} runs no imageID, expected {DIGEST_APP} \(container app\)",
    ),
    "foreign-pods-behind-the-service": Row(
        deploy("api"),
        image(_tag("2.0.0")),
        Verdict.FAIL,
        rf"Pod api-legacy-{P} \(ReplicaSet/api-legacy, not of Deployment:{{ns}}/api, behind Service api\) runs "
        rf"{R}/api:1\.8\.0, expected tag 2\.0\.0 \(container api\); Pod api-stray \(no owner, not of "
        rf"Deployment:{{ns}}/api, behind Service api\) runs {R}/api:1\.9\.0, expected tag 2\.0\.0 \(container api\)",
    ),
    "foreign-pod-same-version-and-unready-old-one": Row(
        deploy("shop"),
        image(_tag("2.0.0")),
        Verdict.PASS,
        rf"spec and 1 ready pods run {R}/shop:2\.0\.0; 1 pod outside Deployment:{{ns}}/shop that its Services route "
        r"to run it too: shop-twin \(no owner\)",
    ),
    "foreign-pod-only-in-a-hand-written-slice": Row(
        deploy("edge"),
        image(_tag("2.0.0"), services=["edge-manual"]),
        Verdict.FAIL,
        rf"Pod edge-stray \(no owner, not of Deployment:{{ns}}/edge, behind Service edge-manual\) runs "
        rf"{R}/edge:1\.0\.0, expected tag 2\.0\.0 \(container edge\)",
    ),
    "old-revision-evicted-and-terminating": Row(
        deploy("roll"),
        image(_tag("2.0.0")),
        Verdict.PASS,
        rf"spec and 2 ready pods run {R}/roll:2\.0\.0; 2 terminated or terminating pods are not counted",
    ),
    "scaled-to-zero": Row(
        deploy("zero"),
        image(_tag("1.0.0")),
        Verdict.FAIL,
        rf"no ready pod runs the release: the spec runs {R}/app:1\.0\.0, but none of the 0 pods of the current "
        r"revision is ready; see the rollout and pods checks",
    ),
    "scaled-to-zero-declared": Row(
        deploy("zero"), image(_tag("1.0.0"), minimum=0), Verdict.PASS, rf"spec and 0 ready pods run {R}/app:1\.0\.0"
    ),
}

ZERO = (
    r"spec\.replicas is 0, at least 1 must run: it is scaled to 0; scale it up, or declare min_replicas: 0 on the "
    r"component if 0 is intended"
)
NOWHERE = (
    r"desiredNumberScheduled is 0, at least 1 must run: no node admits its pods; check its nodeSelector, affinity "
    r"and tolerations against the nodes' labels and taints; declare min_replicas: 0 on the component if no pod is "
    r"intended"
)
ROLLOUTS = {
    "scaled-to-zero": Row(
        deploy("zero"), rollout(), Verdict.FAIL, rf"too few replicas: {ZERO} \(0/0 updated, 0/0 available\)"
    ),
    "scaled-to-zero-declared": Row(deploy("zero"), rollout(0), Verdict.PASS, r"rolled out: 0/0 updated, 0/0 available"),
    "below-declared-minimum": Row(
        deploy("few"),
        rollout(3),
        Verdict.FAIL,
        r"too few replicas: spec\.replicas is 2, at least 3 must run; scale it up, or lower the component's "
        r"min_replicas \(2/2 updated, 2/2 available\)",
    ),
    "daemonset-no-node-matches": Row(
        ("daemonset", "nowhere"),
        rollout(),
        Verdict.FAIL,
        rf"too few replicas: {NOWHERE} \(0/0 updated, 0/0 available\)",
    ),
    "daemonset-no-node-matches-declared": Row(
        ("daemonset", "nowhere"), rollout(0), Verdict.PASS, r"rolled out: 0/0 updated, 0/0 available"
    ),
    "statefulset-zero": Row(
        ("statefulset", "empty-sts"),
        rollout(),
        Verdict.FAIL,
        rf"too few replicas: {ZERO} \(0/0 ready\)",
    ),
    "statefulset-zero-declared": Row(("statefulset", "empty-sts"), rollout(0), Verdict.PASS, r"rolled out: 0/0 ready"),
    "paused-mid-change": Row(
        deploy("paused"),
        rollout(),
        Verdict.FAIL,
        r"rollout cannot progress by itself: Deployment:{ns}/paused is paused \(spec\.paused: true\): the controller "
        r"rolls out no change until it is resumed; resume it with `kubectl -n {ns} rollout resume deployment/paused` "
        r"\(0/2 updated, 2/2 available, 2 old replicas still running\)",
    ),
    "paused-after-complete": Row(
        deploy("paused-done"),
        rollout(),
        Verdict.FAIL,
        r"rollout cannot progress by itself: Deployment:{ns}/paused-done is paused \(spec\.paused: true\): the "
        r"controller rolls out no change until it is resumed \(its current template is rolled out; later changes will "
        r"not be\); resume it with `kubectl -n {ns} rollout resume deployment/paused-done` \(2/2 updated, 2/2 "
        r"available\)",
    ),
    "daemonset-ondelete-pending": Row(
        ("daemonset", "ds-ondelete"),
        rollout(),
        Verdict.FAIL,
        rf"rollout cannot progress by itself: updateStrategy OnDelete: 3 pods still run the previous revision "
        rf"\(ds-ondelete-{P}, ds-ondelete-{P}, ds-ondelete-{P}\) and the controller replaces a pod only when someone "
        r"deletes it; delete them \(`kubectl -n {ns} delete pod \.\.\.`\) or use updateStrategy RollingUpdate "
        r"\(0/3 updated, 3/3 available\)",
    ),
    "statefulset-ondelete-pending": Row(
        ("statefulset", "sts-ondelete"),
        rollout(),
        Verdict.FAIL,
        r"rollout cannot progress by itself: updateStrategy OnDelete: 2 pods still run the previous revision "
        r"\(sts-ondelete-0, sts-ondelete-1\) and the controller replaces a pod only when someone deletes it; delete "
        r"them \(`kubectl -n {ns} delete pod \.\.\.`\) or use updateStrategy RollingUpdate \(2/2 ready, 0/2 at "
        rf"revision sts-ondelete-{P}\)",
    ),
    "statefulset-partition-holds-pods": Row(
        ("statefulset", "sts-part"),
        rollout(),
        Verdict.FAIL,
        r"rollout cannot progress by itself: updateStrategy\.rollingUpdate\.partition is 1: pods with an ordinal "
        r"below 1 \(sts-part-0\) stay on the previous revision until the partition is lowered; finish the staged "
        r"rollout with `kubectl -n {ns} patch statefulset sts-part -p "
        r"'\{\"spec\":\{\"updateStrategy\":\{\"rollingUpdate\":\{\"partition\":0\}\}\}\}'` "
        rf"\(2/2 ready, revision sts-part-{P} -> sts-part-{P} in progress\)",
    ),
    "statefulset-partition-above-replicas": Row(
        ("statefulset", "sts-part-all"),
        rollout(),
        Verdict.FAIL,
        r"rollout cannot progress by itself: updateStrategy\.rollingUpdate\.partition is 5: pods with an ordinal "
        r"below 5 \(sts-part-all-0, sts-part-all-1\) stay on the previous revision .*",
    ),
    "statefulset-partition-no-pending-update": Row(
        ("statefulset", "sts-part-idle"), rollout(), Verdict.PASS, r"rolled out: 2/2 ready"
    ),
    "evicted-and-completed-pods-replaced": Row(
        deploy("evict"), rollout(), Verdict.PASS, r"rolled out: 3/3 updated, 3/3 available"
    ),
    "evicted-replaced-while-waiting": Row(
        deploy("evict"), rollout(within=20), Verdict.PASS, r"rolled out: 3/3 updated, 3/3 available"
    ),
    "old-revision-evicted-and-terminating": Row(
        deploy("roll"), rollout(), Verdict.PASS, r"rolled out: 2/2 updated, 2/2 available"
    ),
    "current-pod-terminating-replaced": Row(
        deploy("hold"), rollout(), Verdict.PASS, r"rolled out: 2/2 updated, 2/2 available"
    ),
    "scheduling-gated": Row(
        deploy("gated"),
        rollout(),
        Verdict.FAIL,
        rf"rollout incomplete: 1/1 updated, 0/1 available, 1 unavailable; Pod gated-{P}: not scheduled: waiting for "
        r"its scheduling gates \(dv\.test/hold\)",
    ),
    "kubelet-healthy": Row(deploy("ps-healthy"), rollout(), Verdict.PASS, r"rolled out: 1/1 updated, 1/1 available"),
    "kubelet-init-crash": Row(
        deploy("ps-init-crash"),
        rollout(),
        Verdict.FAIL,
        rf"rollout stuck: Pod ps-init-crash-{P}: init container migrate CrashLoopBackOff, 4 restarts, last exit code 1 "
        r"\(1/1 updated, 0/1 available, 1 unavailable\)",
    ),
    "kubelet-init-running": Row(
        deploy("ps-init-running"),
        rollout(),
        Verdict.FAIL,
        rf"rollout incomplete: 1/1 updated, 0/1 available, 1 unavailable; Pod ps-init-running-{P}: init container "
        r"migrate not ready \(running\)",
    ),
    "kubelet-sidecar-crash": Row(
        deploy("ps-sidecar-crash"),
        rollout(),
        Verdict.FAIL,
        rf"rollout stuck: Pod ps-sidecar-crash-{P}: init container proxy CrashLoopBackOff, 6 restarts "
        r"\(1/1 updated, 0/1 available, 1 unavailable\)",
    ),
    "kubelet-never-pull": Row(
        deploy("ps-never-pull"),
        rollout(),
        Verdict.FAIL,
        rf"rollout stuck: Pod ps-never-pull-{P}: container app ErrImageNeverPull, 0 restarts: Container image "
        rf"\"{R}/app:1\.0\.0\" is not present with pull policy of Never \(1/1 updated, 0/1 available, 1 unavailable\)",
    ),
    "kubelet-restarts-while-ready": Row(
        deploy("ps-restarts"), rollout(), Verdict.PASS, r"rolled out: 1/1 updated, 1/1 available"
    ),
    "kubelet-fresh": Row(
        deploy("ps-fresh"),
        rollout(),
        Verdict.FAIL,
        rf"rollout incomplete: 1/1 updated, 0/1 available, 1 unavailable; Pod ps-fresh-{P}: not ready \(phase Pending\)",
    ),
}

POD = {
    "scaled-to-zero": Row(deploy("zero"), pods(), Verdict.FAIL, rf"too few replicas: {ZERO}"),
    "scaled-to-zero-declared": Row(deploy("zero"), pods(0), Verdict.PASS, r"no pods \(0 wanted\)"),
    "daemonset-no-node-matches": Row(("daemonset", "nowhere"), pods(), Verdict.FAIL, rf"too few replicas: {NOWHERE}"),
    "daemonset-no-node-matches-declared": Row(("daemonset", "nowhere"), pods(0), Verdict.PASS, r"no pods \(0 wanted\)"),
    "evicted-and-completed-pods-replaced": Row(
        deploy("evict"),
        pods(),
        Verdict.PASS,
        rf"3/3 pods ready; not counted, as their controller no longer counts them: (Pod evict-{P}: ({EVICTED}|phase "
        rf"Succeeded)(; |$)){{2}}",
    ),
    "current-pod-terminating-replaced": Row(
        deploy("hold"),
        pods(),
        Verdict.PASS,
        rf"2/2 pods ready; not counted, as their controller no longer counts them: Pod hold-{P}: terminating",
    ),
    "scheduling-gated": Row(
        deploy("gated"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod gated-{P}: not scheduled: waiting for its scheduling gates \(dv\.test/hold\)",
    ),
    "kubelet-healthy": Row(deploy("ps-healthy"), pods(), Verdict.PASS, r"1/1 pods ready"),
    "kubelet-fresh": Row(
        deploy("ps-fresh"), pods(), Verdict.FAIL, rf"1/1 pods unhealthy: Pod ps-fresh-{P}: not ready \(phase Pending\)"
    ),
    "kubelet-creating": Row(
        deploy("ps-creating"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-creating-{P}: container app not ready \(ContainerCreating\)",
    ),
    "kubelet-never-pull": Row(
        deploy("ps-never-pull"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-never-pull-{P}: container app ErrImageNeverPull, 0 restarts: Container image "
        rf"\"{R}/app:1\.0\.0\" is not present with pull policy of Never",
    ),
    "kubelet-config-error": Row(
        deploy("ps-config-error"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-config-error-{P}: container app CreateContainerConfigError, 0 restarts: secret "
        r"\"db-credentials\" not found",
    ),
    "kubelet-exited": Row(
        deploy("ps-exited"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-exited-{P}: container app not ready \(terminated: Error, exit code 137\)",
    ),
    "kubelet-oom-now": Row(
        deploy("ps-oom-now"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-oom-now-{P}: container app OOMKilled repeatedly \(2 restarts\)",
    ),
    "kubelet-restarts-while-ready": Row(
        deploy("ps-restarts"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-restarts-{P}: container app restarted 5 times \(at most 3 allowed\)",
    ),
    "kubelet-init-crash": Row(
        deploy("ps-init-crash"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-init-crash-{P}: init container migrate CrashLoopBackOff, 4 restarts, last exit "
        rf"code 1; Pod ps-init-crash-{P}: container app not ready \(PodInitializing\)",
    ),
    "kubelet-init-running": Row(
        deploy("ps-init-running"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-init-running-{P}: init container migrate not ready \(running\); Pod "
        rf"ps-init-running-{P}: container app not ready \(PodInitializing\)",
    ),
    "kubelet-init-done": Row(deploy("ps-init-done"), pods(), Verdict.PASS, r"1/1 pods ready"),
    "kubelet-sidecar-crash": Row(
        deploy("ps-sidecar-crash"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-sidecar-crash-{P}: init container proxy CrashLoopBackOff, 6 restarts",
    ),
    "kubelet-readiness-gate-false": Row(
        deploy("ps-gate-false"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-gate-false-{P}: not ready \(phase Running; readiness gate example\.com/lb is "
        r"False\)",
    ),
    "kubelet-readiness-gate-missing": Row(
        deploy("ps-gate-missing"),
        pods(),
        Verdict.FAIL,
        rf"1/1 pods unhealthy: Pod ps-gate-missing-{P}: not ready \(phase Running; readiness gate example\.com/lb "
        r"not reported\)",
    ),
}

ENDPOINTS = {
    "own-and-foreign-endpoint": Row(
        deploy("edge"), endpoints("edge-manual"), Verdict.PASS, r"edge-manual: 1 ready \(\+1 not of this workload\)"
    ),
    "only-foreign-endpoints": Row(
        deploy("edge"),
        endpoints("edge-foreign"),
        Verdict.FAIL,
        r"Service {ns}/edge-foreign has 1 ready endpoint, none of them a pod of Deployment:{ns}/edge \(Pod "
        r"edge-stray \(no owner\)\); check the Service's selector and which pods carry its labels",
    ),
    "same-pod-in-two-slices": Row(deploy("edge"), endpoints("edge-dup"), Verdict.PASS, r"edge-dup: 1 ready"),
    "only-terminating-serving-endpoint": Row(
        deploy("edge"),
        endpoints("edge-draining"),
        Verdict.FAIL,
        r"Service {ns}/edge-draining has no ready endpoint; check the pods' readiness and the Service's selector and "
        r"ports",
    ),
    "conditions-unset-mean-ready": Row(deploy("edge"), endpoints("edge-nil"), Verdict.PASS, r"edge-nil: 1 ready"),
    "address-without-a-pod": Row(
        deploy("edge"),
        endpoints("edge-ext"),
        Verdict.FAIL,
        r"Service {ns}/edge-ext has 1 ready endpoint, none of them a pod of Deployment:{ns}/edge \(address "
        r"192\.0\.2\.10 \(no pod\)\); .*",
    ),
    "external-name": Row(
        deploy("edge"),
        endpoints("edge-alias"),
        Verdict.FAIL,
        r"Service {ns}/edge-alias is of type ExternalName \(a DNS alias for edge\.example\.test\): it routes to no pod, "
        r"so it cannot route to this workload; check the environment's services list and the Service's type",
    ),
    "selector-service-with-foreign-pods": Row(
        deploy("api"), endpoints(), Verdict.PASS, r"api: 2 ready \(\+2 not of this workload\)"
    ),
}


def _run(world: World, row: Row) -> CheckResult:
    ref = WorkloadRef(row.ref[0], world.namespace, row.ref[1])
    result = row.run(world, ref)
    assert result.target == ref.where
    pattern = row.message.replace("{ns}", re.escape(world.namespace))
    assert (result.verdict, bool(re.fullmatch(pattern, result.message))) == (row.verdict, True), result.message
    return result


@pytest.mark.states("image identity")
@pytest.mark.parametrize("row", IMAGES.values(), ids=IMAGES.keys())
def test_image_states(world, row):
    _run(world, row)


@pytest.mark.states("rollout complete")
@pytest.mark.parametrize("row", ROLLOUTS.values(), ids=ROLLOUTS.keys())
def test_rollout_states(world, row):
    _run(world, row)


@pytest.mark.states("pods healthy")
@pytest.mark.parametrize("row", POD.values(), ids=POD.keys())
def test_pod_states(world, row):
    _run(world, row)


@pytest.mark.states("service endpoints")
@pytest.mark.parametrize("row", ENDPOINTS.values(), ids=ENDPOINTS.keys())
def test_endpoint_states(world, row):
    _run(world, row)


@pytest.mark.states("rollout complete")
@pytest.mark.parametrize("name", ["paused", "ds-ondelete", "sts-part"])
def test_a_rollout_that_cannot_progress_fails_at_once_not_at_the_deadline(world, name):
    kind = {"paused": "deployment", "ds-ondelete": "daemonset", "sts-part": "statefulset"}[name]
    started = time.monotonic()
    result = rollout(within=60)(world, WorkloadRef(kind, world.namespace, name))
    elapsed = time.monotonic() - started
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("rollout cannot progress by itself: "), result.message
    assert elapsed < 15, f"took {elapsed:.1f}s of a 60 s window"


@pytest.mark.states("rollout complete")
@pytest.mark.parametrize("kind", ["daemonset", "statefulset"])
def test_an_ondelete_update_completes_once_its_pods_are_deleted(world, kind):
    """With OnDelete a StatefulSet's currentRevision never advances (the controller does that only for RollingUpdate):
    the pods' revisions decide, or this rollout could never pass."""
    name = {"daemonset": "ds-ondelete", "statefulset": "sts-ondelete"}[kind]
    world.kubectl("delete", "pod", "-l", f"app={name}", "--wait=false")
    world.wait_for(
        f"{name} updated",
        lambda: rollout()(world, WorkloadRef(kind, world.namespace, name)).verdict is Verdict.PASS,
        seconds=90,
    )
    result = rollout()(world, WorkloadRef(kind, world.namespace, name))
    want = "rolled out: 3/3 updated, 3/3 available" if kind == "daemonset" else "rolled out: 2/2 ready"
    assert (result.verdict, result.message) == (Verdict.PASS, want)


@pytest.fixture(scope="module")
def capped(testbed_kube) -> Iterator[World]:
    """A namespace whose ResourceQuota admits one pod, and a Deployment that wants two: the real ReplicaSet
    controller's FailedCreate, mirrored on the Deployment as ReplicaFailure."""
    world = World(testbed_kube, f"wsq-{secrets.token_hex(3)}")
    testbed_kube.kubectl(CLUSTER, "create", "namespace", world.namespace)
    try:
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "pods"},
            "spec": {"hard": {"pods": "1"}},
        }
        world.apply(quota)
        world.wait_for("quota counted", lambda: world.get("resourcequota", "pods").get("status", {}).get("hard"))
        world.apply(deployment("capped", 2, template("capped", [container("app", IMG)])))
        world.wait_for(
            "ReplicaFailure",
            lambda: any(
                c["type"] == "ReplicaFailure" and c["status"] == "True"
                for c in world.get("deployment", "capped").get("status", {}).get("conditions", [])
            ),
        )
        world.wait_for("one pod ready", lambda: _active_ready(world, "capped") == 1)
        world.wait_for(
            "the Deployment counts it",
            lambda: world.get("deployment", "capped")["status"].get("availableReplicas") == 1,
        )
        yield world
    finally:
        testbed_kube.kubectl(CLUSTER, "delete", "namespace", world.namespace, "--wait=false", check=False)


QUOTA = r"ReplicaFailure FailedCreate: pods \"capped-\S+\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1"
CAPPED = {
    "rollout": Row(
        deploy("capped"),
        rollout(),
        Verdict.FAIL,
        rf"rollout incomplete: 1/2 updated, 1/2 available, 1 unavailable; {QUOTA}",
    ),
    "pods": Row(deploy("capped"), pods(), Verdict.FAIL, rf"1/2 wanted pods exist, all ready; {QUOTA}"),
}


@pytest.mark.states("rollout complete")
@pytest.mark.parametrize("row", [CAPPED["rollout"]], ids=["replica-failure-quota"])
def test_rollout_names_the_pods_its_controller_could_not_create(capped, row):
    _run(capped, row)


@pytest.mark.states("pods healthy")
@pytest.mark.parametrize("row", [CAPPED["pods"]], ids=["replica-failure-quota"])
def test_pods_check_counts_the_pods_that_do_not_exist(capped, row):
    _run(capped, row)


# --- nodes: the shared clusters' nodes are not ours to break, so each state is a Node the real API server admits and
# defaults in a server-side dry run (validated, never stored), then judged -------------------------------------------


@pytest.mark.states("nodes healthy")
@pytest.mark.parametrize(("nodes", "verdict", "message"), NODE_STATES.values(), ids=NODE_STATES.keys())
def test_node_states_as_the_api_server_admits_them(testbed_kube, nodes, verdict, message):
    world = World(testbed_kube, "default")
    admitted = []
    for node in nodes:
        name = node["metadata"]["name"]
        unique = {"apiVersion": "v1", "kind": "Node", **node, "metadata": {**node["metadata"], "name": f"{name}-dry"}}
        done = world.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(unique))
        stored = json.loads(done.stdout)  # as the API server would store it: validated and defaulted
        admitted.append({**stored, "metadata": {**stored["metadata"], "name": name}})
    result = judge_nodes("cluster:dry-run", admitted, [])
    assert (result.verdict, result.message) == (verdict, message)
