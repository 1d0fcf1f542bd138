"""The workload predicates as pure functions over spec-shaped objects (fields and values as the Kubernetes API reference
v1.36 defines them), for the states the real control plane cannot be made to hold still: a status from before the
newest generation, a stale ProgressDeadlineExceeded, minReadySeconds, start ordinals, node pressure. The real-cluster
tables are in tests/test_workload_states.py; these add to them, they do not replace them.
"""

from __future__ import annotations

import pytest

from deploy_verify.checks.endpoints import Endpoint, selects, service_endpoints
from deploy_verify.checks.images import ImageExpectation, plan_for
from deploy_verify.checks.nodes import _judge as judge_nodes
from deploy_verify.checks.result import Verdict
from deploy_verify.checks.rollout import Limits, rollout_state
from deploy_verify.checks.workloads import WorkloadRef, WorkloadView, below_minimum, pod_problems
from deploy_verify.config import ConfigError
from deploy_verify.kinds import AmbiguousContainer, released_container
from deploy_verify.release import ReleaseManifest

# --- rollout_state -------------------------------------------------------------------------------------------------


def deployment(
    generation: int = 2,
    observed: int = 2,
    replicas: int = 2,
    paused: bool = False,
    running: int | None = None,
    **status,
) -> dict:
    base = {
        "replicas": replicas if running is None else running,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
        "readyReplicas": replicas,
    }
    return {
        "metadata": {"name": "web", "generation": generation, "uid": "u"},
        "spec": {"replicas": replicas, "paused": paused, "template": {"metadata": {}, "spec": {"containers": []}}},
        "status": {"observedGeneration": observed, **base, **status},
    }


def statefulset(replicas: int = 2, strategy: dict | None = None, ordinals: int | None = None, **status) -> dict:
    spec: dict = {"replicas": replicas, "updateStrategy": strategy or {"type": "RollingUpdate"}}
    if ordinals is not None:
        spec["ordinals"] = {"start": ordinals}
    base = {
        "replicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "updatedReplicas": replicas,
        "currentRevision": "db-1",
        "updateRevision": "db-1",
    }
    return {
        "metadata": {"name": "db", "generation": 1, "uid": "u"},
        "spec": spec,
        "status": {"observedGeneration": 1, **base, **status},
    }


def pod(name: str, revision: str, ready: bool = True, **status) -> dict:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    labels = {"controller-revision-hash": revision, "pod-template-hash": revision}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {"phase": "Running", "conditions": [condition], **status},
    }


def progressing(reason: str, message: str = "") -> dict:
    return {"type": "Progressing", "status": "False", "reason": reason, "message": message}


ROLLOUT = {
    "complete": (deployment(), [], 1, Verdict.PASS, "rolled out: 2/2 updated, 2/2 available"),
    "status-from-before-the-newest-spec": (
        deployment(generation=3, observed=2),
        [],
        1,
        None,
        "rollout incomplete: 2/2 updated, 2/2 available, observedGeneration 2 < generation 3",
    ),
    "stale-progress-deadline-of-an-older-generation": (
        deployment(generation=3, observed=2, conditions=[progressing("ProgressDeadlineExceeded", "old")]),
        [],
        1,
        None,
        "rollout incomplete: 2/2 updated, 2/2 available, observedGeneration 2 < generation 3",
    ),
    "progress-deadline-of-the-newest-spec": (
        deployment(updatedReplicas=1, conditions=[progressing("ProgressDeadlineExceeded", 'ReplicaSet "w" timed out')]),
        [],
        1,
        Verdict.FAIL,
        'rollout stuck: ProgressDeadlineExceeded: ReplicaSet "w" timed out (1/2 updated, 2/2 available, '
        "1 old replicas still running)",
    ),
    "replica-failure-while-waiting": (
        deployment(
            running=1,
            availableReplicas=1,
            readyReplicas=1,
            updatedReplicas=1,
            unavailableReplicas=1,
            conditions=[
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "exceeded quota"}
            ],
        ),
        [],
        1,
        None,
        "rollout incomplete: 1/2 updated, 1/2 available, 1 unavailable; ReplicaFailure FailedCreate: exceeded quota",
    ),
    "collision-count-is-not-a-problem": (
        deployment(collisionCount=1),
        [],
        1,
        Verdict.PASS,
        "rolled out: 2/2 updated, 2/2 available",
    ),
    "statefulset-min-ready-seconds-not-yet": (
        statefulset(availableReplicas=1),
        [],
        1,
        None,
        "rollout incomplete: 2/2 ready, 1/2 available",
    ),
    "statefulset-ondelete-all-pods-updated": (
        statefulset(strategy={"type": "OnDelete"}, currentRevision="db-1", updateRevision="db-2"),
        [pod("db-0", "db-2"), pod("db-1", "db-2")],
        1,
        Verdict.PASS,
        "rolled out: 2/2 ready",
    ),
    "statefulset-partition-below-the-start-ordinal-holds-nothing": (
        statefulset(
            strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
            ordinals=5,
            updateRevision="db-2",
            updatedReplicas=1,
        ),
        [pod("db-5", "db-1"), pod("db-6", "db-2")],
        1,
        None,
        "rollout incomplete: 2/2 ready, revision db-1 -> db-2 in progress",
    ),
}


@pytest.mark.states("rollout complete")
@pytest.mark.parametrize(("obj", "pods", "minimum", "verdict", "message"), ROLLOUT.values(), ids=ROLLOUT.keys())
def test_rollout_state(obj, pods, minimum, verdict, message):
    kind = "statefulset" if "updateStrategy" in obj["spec"] else "deployment"
    current = obj["status"].get("updateRevision", "h")
    view = WorkloadView(WorkloadRef(kind, "ns", obj["metadata"]["name"]), obj, pods, current)
    state = rollout_state(view, Limits(min_replicas=minimum))
    assert (state.verdict, state.message) == (verdict, message)


@pytest.mark.states("rollout complete")
def test_daemonset_desired_count_is_not_judged_before_the_controller_saw_the_spec():
    obj = {
        "metadata": {"name": "agent", "generation": 2, "uid": "u"},
        "spec": {},
        "status": {"observedGeneration": 1, "desiredNumberScheduled": 0},
    }
    view = WorkloadView(WorkloadRef("daemonset", "ns", "agent"), obj, [], None)
    assert below_minimum(view, 1) is None
    state = rollout_state(view, Limits())
    assert (state.verdict, state.message) == (
        None,
        "rollout incomplete: 0/0 updated, 0/0 available, observedGeneration 1 < generation 2",
    )


# --- pod_problems --------------------------------------------------------------------------------------------------


def status(**fields) -> dict:
    return {"metadata": {"name": "p"}, "spec": fields.pop("spec", {}), "status": fields}


def container(state: dict, ready: bool = False, restarts: int = 0, **extra) -> dict:
    return {"name": "app", "ready": ready, "restartCount": restarts, "state": state, **extra}


READY = [{"type": "Ready", "status": "True"}]
NOT_READY = [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]
POD = {
    "ready": (status(phase="Running", conditions=READY, containerStatuses=[container({"running": {}}, True)]), []),
    "terminating": (
        {**status(phase="Running", conditions=READY), "metadata": {"name": "p", "deletionTimestamp": "x"}},
        [("terminating", False)],
    ),
    "evicted": (
        status(phase="Failed", reason="Evicted", message="low on memory"),
        [("phase Failed: Evicted low on memory", True)],
    ),
    "succeeded": (status(phase="Succeeded"), [("phase Succeeded: its containers exited and will not restart", True)]),
    "unschedulable": (
        status(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]),
        [("FailedScheduling:", True)],
    ),
    "scheduling-gated": (
        status(
            phase="Pending",
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
            spec={"schedulingGates": [{"name": "a"}, {"name": "b"}]},
        ),
        [("not scheduled: waiting for its scheduling gates (a, b)", False)],
    ),
    **{
        f"waiting-{reason}": (
            status(
                phase="Pending", conditions=NOT_READY, containerStatuses=[container({"waiting": {"reason": reason}})]
            ),
            [(f"container app {reason}, 0 restarts", True)],
        )
        for reason in (
            "CrashLoopBackOff",
            "ImagePullBackOff",
            "ErrImagePull",
            "ErrImageNeverPull",
            "InvalidImageName",
            "CreateContainerConfigError",
            "CreateContainerError",
            "RunContainerError",
            "ImageInspectError",
        )
    },
    "oomkilled-once-then-ready": (
        status(
            phase="Running",
            conditions=READY,
            containerStatuses=[
                container({"running": {}}, True, 1, lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}})
            ],
        ),
        [],
    ),
    "running-not-ready-yet": (
        status(phase="Running", conditions=NOT_READY, containerStatuses=[container({"running": {}})]),
        [("container app not ready (running)", False)],
    ),
    "no-status-at-all": (status(phase="Pending"), [("not ready (phase Pending)", False)]),
    "ready-condition-missing-with-ready-containers": (
        status(phase="Running", containerStatuses=[container({"running": {}}, True)]),
        [("not ready (phase Running)", False)],
    ),
}


def pulling(reason: str, message: str, restarts: int = 0) -> dict:
    waiting = {"reason": reason, "message": message}
    return status(
        phase="Pending", conditions=NOT_READY, containerStatuses=[container({"waiting": waiting}, False, restarts)]
    )


CONTAINERD_NOT_FOUND = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "registry.example.test/app:9.9.9": failed to '
    'resolve reference "registry.example.test/app:9.9.9": registry.example.test/app:9.9.9: not found'
)
# Whether a pod's problem will heal by itself: a wait fails a certain one at once, and gives the others their grace.
CERTAIN = {
    "image-tag-not-found": (pulling("ErrImagePull", CONTAINERD_NOT_FOUND), True),
    "back-off-on-a-missing-image": (
        pulling("ImagePullBackOff", f"Back-off pulling image: {CONTAINERD_NOT_FOUND}"),
        True,
    ),
    "manifest-unknown": (pulling("ErrImagePull", "manifest unknown: manifest tagged by 9.9.9 is not found"), True),
    "repository-does-not-exist": (
        pulling("ErrImagePull", "pull access denied, repository does not exist or may require 'docker login'"),
        False,  # "denied": a pull secret may be missing, and one can be added
    ),
    "unauthorized": (pulling("ErrImagePull", "failed to authorize: 401 Unauthorized"), False),
    "registry-timeout": (pulling("ErrImagePull", "dial tcp 10.0.0.1:443: i/o timeout"), False),
    "back-off-without-a-reason": (pulling("ImagePullBackOff", 'Back-off pulling image "app:1"'), False),
    "invalid-image-name": (pulling("InvalidImageName", 'Failed to apply default image tag "App:1"'), True),
    "never-pull": (pulling("ErrImageNeverPull", "Container image is not present with pull policy of Never"), True),
    "crash-loop-within-the-limit": (pulling("CrashLoopBackOff", "back-off 10s", restarts=3), False),
    "crash-loop-past-the-limit": (pulling("CrashLoopBackOff", "back-off 40s", restarts=4), True),
    "restarted-past-the-limit-and-running": (
        status(phase="Running", conditions=NOT_READY, containerStatuses=[container({"running": {}}, False, 7)]),
        True,
    ),
    "missing-config-map": (pulling("CreateContainerConfigError", 'configmap "app" not found'), False),  # can be made
}


@pytest.mark.states("pods healthy")
@pytest.mark.parametrize(("obj", "certain"), CERTAIN.values(), ids=CERTAIN.keys())
def test_a_problem_is_certain_only_when_the_state_says_it_cannot_heal(obj, certain):
    [problem] = pod_problems(obj, max_restarts=3)
    assert problem.terminal
    assert problem.certain is certain, problem.text


def test_a_rollout_stuck_on_a_certain_problem_is_final_and_leads_with_it():
    pods = [
        {**pulling("CrashLoopBackOff", "back-off", restarts=1), "metadata": {"name": "web-a", "labels": {}}},
        {**pulling("ErrImagePull", CONTAINERD_NOT_FOUND), "metadata": {"name": "web-b", "labels": {}}},
    ]
    obj = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 1},
    }
    view = WorkloadView(WorkloadRef("deployment", "ns", "web"), obj, pods, None)  # no hash: every pod is current
    assert [p.certain for p in view.problems(3, pods)] == [False, True]
    state = rollout_state(view, Limits())
    assert (state.verdict, state.final) == (Verdict.FAIL, True)
    assert state.message.startswith("rollout stuck: Pod web-b: container app ErrImagePull, 0 restarts: rpc error")
    assert state.message.endswith("(+1 more pods) (2/2 updated, 1/2 available, 1 old replicas still running)")
    healing = rollout_state(WorkloadView(view.ref, obj, pods[:1], None), Limits())
    assert (healing.verdict, healing.final) == (Verdict.FAIL, False)  # one crash: it gets its grace


@pytest.mark.states("pods healthy")
@pytest.mark.parametrize(("obj", "expected"), POD.values(), ids=POD.keys())
def test_pod_problems(obj, expected):
    found = [(p.text, p.terminal) for p in pod_problems(obj, max_restarts=3)]
    assert len(found) == len(expected), found
    for (text, terminal), (want, want_terminal) in zip(found, expected, strict=True):
        assert text.startswith(want), text
        assert terminal is want_terminal


# --- which container the image check compares -------------------------------------------------------------------------


def spec(*names: str, init: tuple[str, ...] = ()) -> dict:
    return {
        "containers": [{"name": n, "image": f"r/{n}:1"} for n in names],
        "initContainers": [{"name": n, "image": f"r/{n}:1"} for n in init],
    }


PLANS = {
    "only-container": (spec("x"), ImageExpectation(version="1"), ["container x"], None),
    "named-like-the-workload": (spec("proxy", "web"), ImageExpectation(version="1"), ["container web"], None),
    "named-like-the-component": (
        spec("proxy", "api"),
        ImageExpectation(version="1", component="api"),
        ["container api"],
        None,
    ),
    "named-by-the-environment": (
        spec("proxy", "app"),
        ImageExpectation(version="1", container="proxy"),
        ["container proxy"],
        None,
    ),
    "an-init-container-named-by-the-environment": (
        spec("app", init=("migrate",)),
        ImageExpectation(version="1", container="migrate"),
        ["init container migrate"],
        None,
    ),
    "several-and-none-named": (spec("proxy", "app"), ImageExpectation(version="1"), [], "cannot tell which container"),
    "init-containers-do-not-make-it-ambiguous": (
        spec("app", init=("migrate",)),
        ImageExpectation(version="1"),
        ["container app"],
        None,
    ),
    "per-container-only": (
        spec("proxy", "app", init=("migrate",)),
        ImageExpectation(containers={"migrate": ImageExpectation(version="1"), "app": ImageExpectation(version="1")}),
        ["container app", "init container migrate"],
        None,
    ),
}


@pytest.mark.states("image identity")
@pytest.mark.parametrize(("template", "expected", "labels", "ambiguous"), PLANS.values(), ids=PLANS.keys())
def test_plan_resolves_the_released_container_or_refuses_to_guess(template, expected, labels, ambiguous):
    plan = plan_for(template, "web", expected)
    assert [slot.label for slot, _ in plan.rules] == labels
    assert (plan.ambiguous or "").startswith(ambiguous or "")
    assert bool(plan.ambiguous) is bool(ambiguous)


@pytest.mark.states("image identity")
@pytest.mark.parametrize(
    ("rule", "image", "image_id", "matches"),
    [
        (ImageExpectation(version="2.0.0"), "r/app:2.0.0", None, True),
        (ImageExpectation(version="2.0.0"), "r/app:2.0.0-rc.1", None, False),
        (ImageExpectation(version="2.0.0"), "r:5000/app", None, False),  # a registry port is not a tag
        (ImageExpectation(image="r/app:2.0.0"), "r/app:2.0.0", None, True),
        (ImageExpectation(image="r/app:2.0.0"), "docker.io/r/app:2.0.0", None, False),
        (ImageExpectation(digest="sha256:" + "a" * 64), "r/app:2.0.0", "r/app@sha256:" + "a" * 64, True),
        (ImageExpectation(digest="sha256:" + "a" * 64), "r/app@sha256:" + "a" * 64, None, False),  # what runs
    ],
    ids=["tag", "tag-prefix", "registry-port", "reference", "other-registry", "digest", "digest-not-reported"],
)
def test_image_rule(rule, image, image_id, matches):
    assert rule.matches(image, image_id) is matches


# --- endpoints -----------------------------------------------------------------------------------------------------


def piece(service: str, *endpoints: dict) -> dict:
    return {"metadata": {"labels": {"kubernetes.io/service-name": service}}, "endpoints": list(endpoints)}


def ep(name: str | None, address: str = "10.0.0.1", **conditions) -> dict:
    found: dict = {"addresses": [address]}
    if name:
        found["targetRef"] = {"kind": "Pod", "name": name}
    if conditions:
        found["conditions"] = conditions
    return found


@pytest.mark.states("service endpoints")
@pytest.mark.parametrize(
    ("slices", "expected"),
    [
        ([piece("s", ep("a"))], [Endpoint("s", "a", "a", True)]),
        ([piece("s", ep("a", ready=False, serving=True, terminating=True))], [Endpoint("s", "a", "a", False)]),
        ([piece("s", ep("a", "10.0.0.1")), piece("s", ep("a", "fd00::1"))], [Endpoint("s", "a", "a", True)]),
        ([piece("s", ep("a", ready=False)), piece("s", ep("a", ready=True))], [Endpoint("s", "a", "a", True)]),
        ([piece("other", ep("a"))], []),
        ([piece("s", ep(None, "192.0.2.1"))], [Endpoint("s", "192.0.2.1", None, True)]),
    ],
    ids=["nil-conditions-ready", "terminating", "dual-stack-once", "moving-between-slices", "other-service", "no-pod"],
)
def test_service_endpoints(slices, expected):
    assert service_endpoints({"metadata": {"name": "s"}}, slices) == expected


def test_a_service_without_selector_selects_nothing_by_labels():
    assert not selects({"spec": {}}, {"app": "x"})
    assert selects({"spec": {"selector": {"app": "x"}}}, {"app": "x", "tier": "web"})
    assert not selects({"spec": {"selector": {"app": "x", "tier": "api"}}}, {"app": "x", "tier": "web"})


# --- nodes ---------------------------------------------------------------------------------------------------------


def node(name: str = "n1", ready: str | None = "True", unschedulable: bool = False, taints=(), **conditions) -> dict:
    found = [{"type": kind, "status": value, "reason": f"{kind}Reason"} for kind, value in conditions.items()]
    if ready is not None:
        found.append({"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "NotReady"})
    return {
        "metadata": {"name": name, "annotations": {}},
        "spec": {"unschedulable": unschedulable, "taints": [{"key": k, "effect": "NoExecute"} for k in taints]},
        "status": {"conditions": found},
    }


NODES = {
    "healthy": ([node()], Verdict.PASS, "1/1 nodes Ready and schedulable"),
    "not-ready": ([node(ready="False")], Verdict.FAIL, "Node n1 not Ready (NotReady)"),
    "unknown": ([node(ready="Unknown")], Verdict.FAIL, "Node n1 not Ready (NotReady)"),
    "no-ready-condition": ([node(ready=None)], Verdict.FAIL, "Node n1 not Ready (no Ready condition)"),
    "memory-pressure": (
        [node(MemoryPressure="True")],
        Verdict.FAIL,
        "Node n1 has MemoryPressure (MemoryPressureReason: )",
    ),
    "disk-pressure-false-is-fine": ([node(DiskPressure="False")], Verdict.PASS, "1/1 nodes Ready and schedulable"),
    "network-unavailable": (
        [node(NetworkUnavailable="True")],
        Verdict.FAIL,
        "Node n1 has NetworkUnavailable (NetworkUnavailableReason: )",
    ),
    "cordoned": ([node(unschedulable=True)], Verdict.FAIL, "Node n1 is cordoned"),
    "out-of-service": (
        [node(taints=["node.kubernetes.io/out-of-service"])],
        Verdict.FAIL,
        "Node n1 is marked out of service (taint node.kubernetes.io/out-of-service)",
    ),
    "autoscaler-removing": (
        [node(taints=["ToBeDeletedByClusterAutoscaler"])],
        Verdict.FAIL,
        "Node n1 is being removed by the cluster autoscaler (taint ToBeDeletedByClusterAutoscaler)",
    ),
    "no-nodes": ([], Verdict.FAIL, "the cluster has no nodes"),
}


@pytest.mark.states("nodes healthy")
@pytest.mark.parametrize(("nodes", "verdict", "message"), NODES.values(), ids=NODES.keys())
def test_nodes(nodes, verdict, message):
    result = judge_nodes("cluster:c", nodes, [])
    assert (result.verdict, result.message) == (verdict, message)


# --- the release manifest's per-container form, and the running version's container ---------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("2.0.0", {"version": "2.0.0"}),
        ("registry.example/x/migrate:2.0.0", {"image": "registry.example/x/migrate:2.0.0"}),
        ("registry:5000/x", {"image": "registry:5000/x"}),
        ("x@sha256:" + "a" * 64, {"image": "x@sha256:" + "a" * 64}),
        ("sha256:" + "a" * 64, {"digest": "sha256:" + "a" * 64}),
        ({"version": "2.0.0"}, {"version": "2.0.0"}),
    ],
    ids=["tag", "reference", "registry-port", "reference-with-digest", "digest", "mapping"],
)
def test_release_containers_shorthand(value, parsed):
    manifest = ReleaseManifest.model_validate({"components": {"web": {"containers": {"app": value}}}})
    rule = manifest.components["web"].containers["app"]
    assert rule.model_dump(exclude_none=True) == parsed


def test_release_containers_reject_a_short_digest():
    with pytest.raises(ValueError, match="should match pattern"):
        ReleaseManifest.model_validate({"components": {"web": {"containers": {"app": "sha256:abc"}}}})
    assert issubclass(ConfigError, Exception)


class _Component:
    def __init__(self, name: str, container: str | None = None) -> None:
        self.name, self.container = name, container


@pytest.mark.parametrize(
    ("component", "images", "chosen"),
    [
        (_Component("web"), {"app": "r/app:1"}, "app"),
        (_Component("web"), {"proxy": "r/p:1", "web": "r/web:1"}, "web"),
        (_Component("shop", "proxy"), {"proxy": "r/p:1", "web": "r/web:1"}, "proxy"),
    ],
)
def test_running_version_reads_the_released_container(component, images, chosen):
    assert released_container(component, "web", images) == chosen


def test_running_version_refuses_to_guess_between_containers():
    with pytest.raises(AmbiguousContainer, match="cannot tell which container runs the release"):
        released_container(_Component("shop"), "shop-v2", {"proxy": "r/p:1", "app": "r/app:1"})  # type: ignore[arg-type]
