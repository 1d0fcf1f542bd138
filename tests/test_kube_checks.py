"""Kubernetes checks against the testbed's real control plane (KWOK nodes): each healthy and each broken case,
asserting the verdict and the message."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.endpoints import check_endpoints
from deploy_verify.checks.images import ImageExpectation, check_image
from deploy_verify.checks.nodes import check_nodes
from deploy_verify.checks.pods import check_pods
from deploy_verify.checks.result import Verdict
from deploy_verify.checks.rollout import Limits, check_rollout
from deploy_verify.checks.transports.kube import KubeReader, KubeUnavailable, ReadOnlyViolation
from deploy_verify.checks.workloads import WorkloadRef

ROOT = Path(__file__).resolve().parent.parent
CART_DIGEST = "sha256:" + "c0ffee" * 10 + "c0ff"


@pytest.fixture
def kubeconfig(testbed) -> str:
    return str(ROOT / ".testbed" / "kubeconfig.yaml")


@pytest.fixture
def dv_a(kubeconfig) -> KubeReader:
    return KubeReader.from_kubeconfig("dv-a", "kwok-dv-a", kubeconfig)


def budget(seconds: float = 60) -> Deadline:
    return Deadline.after(seconds, "test budget")


def deploy(namespace: str, name: str) -> WorkloadRef:
    return WorkloadRef("deployment", namespace, name)


# --- rollout -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (deploy("shop", "storefront"), "rolled out: 3/3 updated, 3/3 available"),
        (WorkloadRef("statefulset", "platform", "ledger"), "rolled out: 2/2 ready"),
        (WorkloadRef("daemonset", "platform", "node-agent"), "rolled out: 3/3 updated, 3/3 available"),
    ],
    ids=["deployment", "statefulset", "daemonset"],
)
def test_complete_rollouts_pass(dv_a, ref, message):
    result = check_rollout(dv_a, ref, Limits(), budget())
    assert (result.verdict, result.message) == (Verdict.PASS, message)
    assert result.target == ref.where


@pytest.mark.parametrize(
    ("ref", "pattern"),
    [
        (
            deploy("broken", "checkout"),
            r"rollout stuck: Pod checkout-\w+-\w+: container checkout CrashLoopBackOff, 5 restarts, last exit code 1 "
            r"\(1/3 updated, 3/3 available, 1 unavailable, 3 old replicas still running\)",
        ),
        (
            deploy("broken", "search"),
            r"rollout stuck: Pod search-\w+-\w+: container search ImagePullBackOff, 0 restarts: Back-off pulling image "
            r"\"registry.example.test/shop/search:9.9.9-typo\" \(\+1 more pods\) \(2/2 updated, 0/2 available, "
            r"2 unavailable\)",
        ),
        (
            deploy("broken", "reports"),
            r"rollout stuck: Pod reports-\w+-\w+: FailedScheduling: 0/3 nodes are available: 3 node\(s\) didn't match "
            r"Pod's node affinity/selector\..*\(1/1 updated, 0/1 available, 1 unavailable\)",
        ),
        (
            deploy("broken", "mailer"),
            r"rollout stuck: ProgressDeadlineExceeded: ReplicaSet \"mailer-\w+\" has timed out progressing\. "
            r"\(1/1 updated, 0/1 available, 1 unavailable\)",
        ),
        (
            deploy("broken", "recommendations"),
            r"rollout incomplete: 2/2 updated, 0/2 available, 2 unavailable; Pod recommendations-\w+-\w+: container "
            r"recommendations not ready \(running\)",
        ),
        (
            WorkloadRef("daemonset", "broken", "log-shipper"),
            r"rollout stuck: Pod log-shipper-\w+: container log-shipper ImagePullBackOff, .* \(3/3 updated, "
            r"0/3 available\)",
        ),
        (
            WorkloadRef("statefulset", "broken", "queue"),
            r"rollout stuck: Pod queue-0: container queue CrashLoopBackOff, 5 restarts, last exit code 1 \(0/2 ready\)",
        ),
        (
            deploy("broken", "nope"),
            r"Deployment:broken/nope not found; is the namespace and name right, was it "
            r"deployed\?",
        ),
    ],
    ids=[
        "crashloop-new-replicaset",
        "imagepull",
        "unschedulable",
        "progress-deadline",
        "not-ready",
        "daemonset-imagepull",
        "statefulset-crashloop",
        "missing",
    ],
)
def test_broken_rollouts_fail_with_the_reason(dv_a, ref, pattern):
    result = check_rollout(dv_a, ref, Limits(), budget())
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(pattern, result.message), result.message


def test_failed_rollout_carries_status_pods_and_history(dv_a):
    result = check_rollout(dv_a, deploy("broken", "checkout"), Limits(), budget())
    names = [e.name for e in result.evidence]
    assert names == [
        "Deployment:broken/checkout status",
        "Deployment:broken/checkout pods",
        "Deployment:broken/checkout revision history",
    ]
    history = json.loads(result.evidence[2].content)
    assert [h["revision"] for h in history] == [2, 1]
    assert history[0]["images"] == ["registry.example.test/shop/checkout:4.1.0"]


def test_stuck_rollout_is_red_within_seconds_not_after_the_progress_deadline(dv_a):
    """The new ReplicaSet crash-loops while the old pods serve: `kubectl rollout status` would wait 600 s."""
    started = time.monotonic()
    window = budget(120).sub(120, "step deadline of 2 minutes")
    result = check_rollout(dv_a, deploy("broken", "checkout"), Limits(grace=2), budget(120), within=window)
    elapsed = time.monotonic() - started
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("rollout stuck: Pod checkout-")
    assert elapsed < 30, f"took {elapsed:.1f}s"  # grace 2 s plus reads; far from the 120 s window


def test_waiting_rollout_reports_the_last_state_when_the_window_ends(dv_a):
    window = budget(30).sub(3, "step deadline of 3 seconds")
    result = check_rollout(dv_a, deploy("broken", "recommendations"), Limits(), budget(30), within=window)
    assert result.verdict is Verdict.ERROR
    assert re.fullmatch(
        r"still converging when the step deadline of 3 seconds ran out: rollout incomplete: 2/2 "
        r"updated, 0/2 available, 2 unavailable; Pod recommendations-\w+-\w+: container "
        r"recommendations not ready \(running\) \(\d+ looks\)",
        result.message,
    ), result.message


def test_waiting_on_a_complete_rollout_returns_at_once(dv_a):
    window = budget(30).sub(30, "step deadline of 30 seconds")
    result = check_rollout(dv_a, deploy("shop", "cart"), Limits(), budget(30), within=window)
    assert (result.verdict, result.message) == (Verdict.PASS, "rolled out: 2/2 updated, 2/2 available")


# --- pods --------------------------------------------------------------------------------------------------------


def test_healthy_pods_pass(dv_a):
    result = check_pods(dv_a, deploy("shop", "storefront"), Limits(), budget())
    assert (result.verdict, result.message) == (Verdict.PASS, "3/3 pods ready")


@pytest.mark.parametrize(
    ("ref", "pattern"),
    [
        (
            deploy("broken", "checkout"),
            r"1/4 pods unhealthy: Pod checkout-\w+-\w+: container checkout CrashLoopBackOff, 5 restarts, last exit "
            r"code 1",
        ),
        (
            deploy("broken", "thumbnails"),
            r"1/1 pods unhealthy: Pod thumbnails-\w+-\w+: container thumbnails OOMKilled repeatedly \(7 restarts\)",
        ),
        (
            deploy("broken", "recommendations"),
            r"2/2 pods unhealthy: Pod recommendations-\w+-\w+: container recommendations not ready \(running\); "
            r"Pod recommendations-\w+-\w+: container recommendations not ready \(running\)",
        ),
        (deploy("broken", "reports"), r"1/1 pods unhealthy: Pod reports-\w+-\w+: FailedScheduling: .*"),
        (deploy("broken", "search"), r"2/2 pods unhealthy: Pod search-\w+-\w+: container search ImagePullBackOff.*"),
    ],
    ids=["crashloop", "oomkilled", "not-ready", "unschedulable", "imagepull"],
)
def test_unhealthy_pods_fail_with_the_reason(dv_a, ref, pattern):
    result = check_pods(dv_a, ref, Limits(), budget())
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(pattern, result.message), result.message


def test_restart_threshold_is_configurable(dv_a):
    # thumbnails restarted 7 times, last OOMKilled: fails at any threshold, because repeated OOMKills are terminal
    assert check_pods(dv_a, deploy("broken", "thumbnails"), Limits(max_restarts=10), budget()).verdict is Verdict.FAIL


def test_failing_pods_carry_events_and_logs(dv_a):
    result = check_pods(dv_a, deploy("broken", "checkout"), Limits(), budget())
    evidence = {e.name: e.content for e in result.evidence}
    assert "BackOff" in evidence["Deployment:broken/checkout events"]
    logs = next(v for k, v in evidence.items() if k.startswith("logs of pod checkout-"))
    assert "--- checkout (current) ---" in logs
    assert "--- checkout (previous) ---" in logs


# --- image identity ----------------------------------------------------------------------------------------------


def test_released_tag_passes(dv_a):
    result = check_image(dv_a, deploy("shop", "storefront"), ImageExpectation(version="2.3.0"), budget())
    assert (result.verdict, result.message) == (
        Verdict.PASS,
        "spec and 3 ready pods run registry.example.test/shop/storefront:2.3.0",
    )


def test_released_full_image_reference_passes(dv_a):
    expected = ImageExpectation(image="registry.example.test/shop/storefront:2.3.0")
    assert check_image(dv_a, deploy("shop", "storefront"), expected, budget()).verdict is Verdict.PASS


def test_released_digest_is_compared_with_what_runs(dv_a):
    result = check_image(dv_a, deploy("shop", "cart"), ImageExpectation(digest=CART_DIGEST), budget())
    assert result.verdict is Verdict.PASS
    assert result.message == "spec and 2 ready pods run registry.example.test/shop/cart:1.8.1 (sha256:c0ffeec0ffee…)"


def test_other_digest_fails(dv_a):
    other = "sha256:" + "ab" * 32
    result = check_image(dv_a, deploy("shop", "cart"), ImageExpectation(digest=other), budget())
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(
        rf"Pod cart-\w+-\w+ runs registry.example.test/shop/cart@{CART_DIGEST}, expected {other} \(container cart\); "
        rf"Pod cart-\w+-\w+ runs registry.example.test/shop/cart@{CART_DIGEST}, expected {other} \(container cart\)",
        result.message,
    ), result.message


def test_wrong_tag_fails_on_spec_and_pods(dv_a):
    result = check_image(dv_a, deploy("broken", "storefront"), ImageExpectation(version="2.3.0"), budget())
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(
        r"spec runs registry.example.test/shop/storefront:2.2.9, expected tag 2.3.0 \(container storefront\); Pod "
        r"storefront-\w+-\w+ runs registry.example.test/shop/storefront:2.2.9, expected tag 2.3.0 \(container "
        r"storefront\); Pod storefront-\w+-\w+ runs registry.example.test/shop/storefront:2.2.9, expected tag "
        r"2.3.0 \(container storefront\)",
        result.message,
    ), result.message


def test_leftover_pods_of_an_older_revision_fail(dv_a):
    result = check_image(dv_a, deploy("broken", "checkout"), ImageExpectation(version="4.1.0"), budget())
    assert result.verdict is Verdict.FAIL
    old = r"Pod checkout-\w+-\w+ of an older revision remains \(registry.example.test/shop/checkout:4.0.0\)"
    assert re.fullmatch(f"{old}; {old}; {old}", result.message), result.message


def test_missing_expectation_is_an_error_saying_how_to_give_one(dv_a):
    result = check_image(dv_a, deploy("shop", "storefront"), None, budget())
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "no expected version, image or digest for this component: pass --release FILE or --expect COMPONENT=VERSION"
    )


# --- endpoints and nodes -----------------------------------------------------------------------------------------


def test_services_with_ready_endpoints_pass(dv_a):
    result = check_endpoints(dv_a, deploy("shop", "storefront"), budget())
    assert (result.verdict, result.message) == (Verdict.PASS, "storefront: 3 ready")


def test_service_without_ready_endpoints_fails(dv_a):
    result = check_endpoints(dv_a, deploy("broken", "recommendations"), budget())
    assert result.verdict is Verdict.FAIL
    assert result.message == (
        "Service broken/recommendations has no ready endpoint; check the pods' readiness and "
        "the Service's selector and ports"
    )


def test_named_service_that_does_not_exist_fails(dv_a):
    result = check_endpoints(dv_a, deploy("broken", "orphan"), budget(), named=["orphan"])
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "Service orphan not found in broken; was it deployed, or renamed?",
    )


def test_workload_no_service_selects_has_nothing_to_route(dv_a):
    result = check_endpoints(dv_a, WorkloadRef("daemonset", "platform", "node-agent"), budget())
    assert (result.verdict, result.message) == (Verdict.PASS, "no Service selects these pods; nothing to route")


def test_healthy_nodes_pass(dv_a):
    result = check_nodes(dv_a, [], budget())
    assert (result.verdict, result.message) == (Verdict.PASS, "3/3 nodes Ready and schedulable")


def test_node_waiting_for_a_reboot_fails_when_the_environment_names_the_marker(dv_a):
    result = check_nodes(dv_a, ["dv.test/reboot-required"], budget())
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        "Node node-000002 is waiting for a reboot (dv.test/reboot-required)",
    )


def test_cordoned_node_fails(kubeconfig, testbed_kube):
    testbed_kube.kubectl("dv-b", "cordon", "node-000001")
    try:
        reader = KubeReader.from_kubeconfig("dv-b", "kwok-dv-b", kubeconfig)
        result = check_nodes(reader, [], budget())
    finally:
        testbed_kube.kubectl("dv-b", "uncordon", "node-000001")
    assert (result.verdict, result.message) == (Verdict.FAIL, "Node node-000001 is cordoned")


# --- faults: each is an ERROR with a precise message, inside the budget -------------------------------------------


def test_unknown_context_names_the_known_ones(kubeconfig):
    with pytest.raises(KubeUnavailable) as caught:
        KubeReader.from_kubeconfig("dv-a", "kwok-dv-c", kubeconfig)
    assert str(caught.value) == (
        f"cluster dv-a: kubeconfig {kubeconfig} has no context 'kwok-dv-c'; known contexts: kwok-dv-a, kwok-dv-b"
    )


def test_missing_namespace_is_an_error_not_a_failure(dv_a):
    result = check_rollout(dv_a, deploy("shopp", "storefront"), Limits(), budget())
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "cluster dv-a: namespace 'shopp' not found; check the environment file's namespace and the kubeconfig context"
    )


def _pointed_at(dv_a: KubeReader, server: str) -> KubeReader:
    reader = KubeReader.from_kubeconfig("dv-a", "kwok-dv-a", dv_a.where.split(" of ")[-1])
    reader.api.configuration.host = server
    return reader


def test_api_server_down_is_an_error(dv_a):
    reader = _pointed_at(dv_a, "https://127.0.0.1:18469")  # nothing listens there
    started = time.monotonic()
    result = check_rollout(reader, deploy("shop", "storefront"), Limits(), budget())
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "cluster dv-a: API server https://127.0.0.1:18469 refused the connection; check that the "
        "cluster is up and that context 'kwok-dv-a' of "
        f"{ROOT / '.testbed' / 'kubeconfig.yaml'} points at it"
    )
    assert time.monotonic() - started < 10


def test_api_server_that_never_answers_is_an_error_inside_the_budget(dv_a):
    reader = _pointed_at(dv_a, "https://127.0.0.1:18465")  # accepts connections, never speaks
    started = time.monotonic()
    result = check_pods(reader, deploy("shop", "storefront"), Limits(), budget(2))
    elapsed = time.monotonic() - started
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith("cluster dv-a: API server https://127.0.0.1:18465 did not answer in time")
    assert elapsed < 5, elapsed


def test_spent_budget_asks_nothing(dv_a):
    result = check_pods(dv_a, deploy("shop", "storefront"), Limits(), Deadline.after(0, "time budget"))
    assert (result.verdict, result.message) == (Verdict.ERROR, "cluster dv-a: not asked: time budget of 0s is spent")
    assert dv_a.requests == 0


def test_reader_refuses_mutating_verbs(dv_a):
    with pytest.raises(ReadOnlyViolation) as caught:
        dv_a.api.call_api("DELETE", f"{dv_a.server}/api/v1/namespaces/shop/pods/x")
    assert str(caught.value).startswith("refused DELETE https://127.0.0.1:")
    assert str(caught.value).endswith(
        "this run is read-only (mutations need a @mutating scenario and --allow-mutations)"
    )


def test_one_list_per_kind_and_namespace_serves_every_check(dv_a):
    for name in ("storefront", "cart"):
        for check in (check_rollout, check_pods):
            check(dv_a, deploy("shop", name), Limits(), budget())
        check_image(dv_a, deploy("shop", name), ImageExpectation(version="x"), budget())
        check_endpoints(dv_a, deploy("shop", name), budget())
    # deployments, replicasets, pods, services, endpointslices in `shop`: five LISTs for eight checks
    assert dv_a.requests == 5
