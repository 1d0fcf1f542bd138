"""The slow-peer fault class: peers that answer, but too slowly, or trickle, or stall. Every call (an HTTP probe, a TLS
handshake, a Kubernetes LIST/GET/log and watch, an ARM call) must end by its bound whatever the peer does, red, with
a message that names the call that was cut and after how long; the whole run must end red inside its budget plus a
small slack.

Every peer is a real loopback server this file starts (testbed.slowpeer: real HTTP/1.1, real TLS with a certificate
of the test's own CA; only the timing is hostile), reached through the suite's real clients: requests for the probes,
the kubernetes client inside KubeReader, the Azure SDK over its bounded transport. The Kubernetes API server here is
a stand-in serving only the few paths the calls ask for: a hand-written API is acceptable for this fault alone,
because a real kube-apiserver cannot be made to trickle; every other Kubernetes test runs against the real control
plane. The ARM call that never completes also runs against the ARM test server's own `delay` fault.

Each test asserts the verdict, the message, and the wall-clock bound: elapsed <= the call's bound + SLACK.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from azure.mgmt.appcontainers import ContainerAppsAPIClient

from deploy_verify.checks.containerapps import AppExpectation, AppRef, check_container_app
from deploy_verify.checks.deadline import CallTimeouts, Deadline
from deploy_verify.checks.http_probe import HealthProbe, probe_health
from deploy_verify.checks.images import ImageExpectation
from deploy_verify.checks.result import Category, Verdict
from deploy_verify.checks.rollout import Limits, check_rollout
from deploy_verify.checks.tls import HandshakeFailed, TlsTarget, inspect_tls, served_leaf
from deploy_verify.checks.transports.azure_http import BoundedRequestsTransport
from deploy_verify.checks.transports.kube import KubeReader
from deploy_verify.checks.workloads import WorkloadRef
from deploy_verify.clients import StaticToken
from testbed.arm import ArmServer
from testbed.arm_state import SUBSCRIPTION, local_state
from testbed.slowpeer import NORMAL, SILENT, STALL, TRICKLE_BODY, TRICKLE_HEADERS, Reply, SlowPeer

ROOT = Path(__file__).resolve().parent.parent
SLACK = 1.5  # seconds a cut call may take past its bound: the cut itself, the exception, the message
BOUND = 1.5  # every call's timeout here
TRICKLE = 0.2  # seconds between two trickled bytes: far faster than any per-read timeout would notice
HEALTH = json.dumps({"status": "UP", "version": "1.4.2", "padding": "x" * 400}).encode()
pytestmark = pytest.mark.states("bounded call")


@pytest.fixture(scope="module")
def tls_files(pki) -> tuple[Path, Path]:
    chain, key, _ = pki
    return Path(chain), Path(key)


def peer(tls_files, reply: Reply | None = None, handshake: str = "normal", tls: bool = True, **kw) -> SlowPeer:
    handler = kw.pop("handler", None) or (lambda _path: reply or Reply(200, HEALTH))
    return SlowPeer(handler, tls=tls_files if tls else None, handshake=handshake, interval=TRICKLE, **kw)


def timed(call):
    began = time.monotonic()
    result = call()
    return result, time.monotonic() - began


def assert_within(took: float, bound: float = BOUND) -> None:
    assert took <= bound + SLACK, f"took {took:.2f}s with a bound of {bound:g}s (+{SLACK:g}s slack)"


# --- HTTP probes --------------------------------------------------------------------------------------------------


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:  # a plain session: the probe makes it bounded itself
        yield s


def probe(session, pki, url: str, budget: float = 30.0, timeout: float = BOUND):
    target = HealthProbe(url=url, timeout=timeout, latency_budget=60.0, ca_bundle=pki[2])
    return timed(lambda: probe_health(session, target, None, Deadline.after(budget, "time budget")))


TRICKLED = r"{n} bytes so far, the last 0\.\d+s before the cut \(the server trickles {it}\)"
HTTP_CASES = {
    # reply mode, handshake, expected message (a regex over the whole message)
    "trickled body": (
        Reply(200, HEALTH, mode=TRICKLE_BODY),
        "normal",
        r"{url}: the request was cut off after 1\.5s \(timeout 1\.5s\): the body was still arriving: "
        + TRICKLED.format(n=r"[4-9]", it="it")
        + "; check the service's logs and load, and any proxy in front of it",
    ),
    "trickled body without a length (ends at close)": (
        Reply(200, HEALTH, mode=TRICKLE_BODY, framed=False),
        "normal",
        r"{url}: the request was cut off after 1\.5s \(timeout 1\.5s\): the body was still arriving: "
        + TRICKLED.format(n=r"[4-9]", it="it")
        + "; check the service's logs and load, and any proxy in front of it",
    ),
    "trickled headers": (
        Reply(200, HEALTH, mode=TRICKLE_HEADERS),
        "normal",
        r"{url}: the request was cut off after 1\.5s \(timeout 1\.5s\): the status line and headers were still arriving: "
        + TRICKLED.format(n=r"[4-9]", it="them")
        + "; check the service's logs and load, and any proxy in front of it",
    ),
    "trickled header lines after a prompt status line": (
        Reply(200, HEALTH, mode=TRICKLE_HEADERS, at_once=len(b"HTTP/1.1 200 OK\r\n")),
        "normal",
        r"{url}: the request was cut off after 1\.5s \(timeout 1\.5s\): the status line and headers were still "
        r"arriving: (2[0-9]) bytes so far, the last 0\.\d+s before the cut \(the server trickles them\); check the "
        r"service's logs and load, and any proxy in front of it",
    ),
    "headers, then a body that never comes": (
        Reply(200, HEALTH, mode=STALL),
        "normal",
        r"{url}: the request was cut off after 1\.5s \(timeout 1\.5s\): the headers had arrived, then no byte of the body in "
        r"1\.[45]s \(the server stalls\); check the service's logs and load, and any proxy in front of it",
    ),
    "accepts, reads the request, never answers": (
        Reply(200, HEALTH, mode=SILENT),
        "normal",
        r"{url}: no answer within 1\.5s; check the service's logs and load",
    ),
    "trickled TLS handshake": (
        None,
        "trickle",
        r"{url}: the request was cut off after 1\.5s \(timeout 1\.5s\): the TLS handshake had not completed; check the TLS "
        r"termination in front of the service \(and run the TLS check\)",
    ),
    "accepts and never speaks TLS": (
        None,
        "silent",
        r"{url}: the request was cut off after 1\.5s \(timeout 1\.5s\): the TLS handshake had not completed; check the TLS "
        r"termination in front of the service \(and run the TLS check\)",
    ),
}


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_a_slow_health_endpoint_fails_by_its_timeout_naming_the_cut(session, pki, tls_files, case):
    reply, handshake, expected = HTTP_CASES[case]
    with peer(tls_files, reply, handshake) as server:
        url = f"{server.url}/health"
        result, took = probe(session, pki, url)
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(expected.format(url=re.escape(url)), result.line()), result.line()
    assert result.category is Category.UNHEALTHY_ENDPOINT
    assert_within(took)
    if result.evidence:
        cut = json.loads(result.evidence[0].content)
        assert cut["call"] == "the request"
        assert 1.4 <= cut["cut_after_s"] <= BOUND + SLACK


def test_plain_http_trickled_body_is_cut_too(session, pki, tls_files):
    with peer(tls_files, Reply(200, HEALTH, mode=TRICKLE_BODY), tls=False) as server:
        url = f"{server.url}/health"
        result, took = probe(session, pki, url)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("the request was cut off after 1.5s (timeout 1.5s): the body was still arriving: ")
    assert_within(took)


def test_a_pooled_connection_reused_for_a_trickled_answer_is_cut(session, pki, tls_files):
    """The second probe reuses the first one's connection (no connect): it must still be bounded."""
    replies = iter([Reply(200, HEALTH), Reply(200, HEALTH, mode=TRICKLE_BODY)])
    with peer(tls_files, handler=lambda _path: next(replies)) as server:
        url = f"{server.url}/health"
        first, _ = probe(session, pki, url)
        second, took = probe(session, pki, url)
        connections = server.connections
    assert first.verdict is Verdict.PASS, first.message
    assert connections == 1  # the same connection served both
    assert second.verdict is Verdict.FAIL
    assert second.message.startswith("the request was cut off after 1.5s (timeout 1.5s): the body was still arriving")
    assert_within(took)


def test_the_budget_bounds_a_probe_whose_timeout_is_longer(session, pki, tls_files):
    with peer(tls_files, Reply(200, HEALTH, mode=TRICKLE_BODY)) as server:
        url = f"{server.url}/health"
        result, took = probe(session, pki, url, budget=1.0, timeout=30.0)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith(
        "the request was cut off after 1.0s (when the time budget ran out): the body was still arriving: "
    ), result.message
    assert_within(took, 1.0)


def test_a_prompt_answer_passes_through_the_bounded_session(session, pki, tls_files):
    with peer(tls_files, Reply(200, HEALTH)) as server:
        result, took = probe(session, pki, f"{server.url}/health")
    assert result.verdict is Verdict.PASS
    assert result.message.startswith("HTTP 200 OK in ")
    assert took < 1.0


# --- TLS handshakes -----------------------------------------------------------------------------------------------


def tls_target(server: SlowPeer, pki, timeout: float = BOUND) -> TlsTarget:
    return TlsTarget(host="localhost", port=server.port, ca_bundle=pki[2], timeout=timeout)


def test_a_trickled_tls_handshake_fails_by_its_timeout_saying_how_far_it_got(pki, tls_files):
    with peer(tls_files, handshake="trickle") as server:
        result, took = timed(lambda: inspect_tls(tls_target(server, pki), 14, Deadline.after(30)))
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(
        rf"TLS handshake with localhost:{server.port} was cut off after 1\.5s \(timeout 1\.5s\): the server's handshake "
        r"messages were still arriving: [4-9] bytes so far, the last 0\.\d+s before the cut \(the server trickles "
        r"them\); check the TLS termination in front of the service",
        result.message,
    ), result.message
    assert result.category is Category.UNHEALTHY_ENDPOINT
    assert_within(took)


def test_a_tls_peer_that_never_speaks_fails_by_its_timeout(pki, tls_files):
    with peer(tls_files, handshake="silent") as server:
        result, took = timed(lambda: inspect_tls(tls_target(server, pki), 14, Deadline.after(30)))
    assert result.verdict is Verdict.FAIL
    assert result.message == f"no TLS handshake with localhost:{server.port} within 1.5s"
    assert_within(took)


def test_the_budget_bounds_a_handshake_and_says_so(pki, tls_files):
    with peer(tls_files, handshake="silent") as server:
        target = tls_target(server, pki, timeout=30.0)
        result, took = timed(lambda: inspect_tls(target, 14, Deadline.after(1.0, "time budget of environment 'x'")))
    assert result.verdict is Verdict.FAIL
    assert result.message == (
        f"no TLS handshake with localhost:{server.port} within 1.0s (when the time budget of environment 'x' ran out)"
    )
    assert_within(took, 1.0)


def test_the_served_certificate_read_of_cert_manager_is_bounded_too(pki, tls_files):
    with peer(tls_files, handshake="trickle") as server:
        began = time.monotonic()
        with pytest.raises(HandshakeFailed) as caught:
            served_leaf(tls_target(server, pki), Deadline.after(30))
        took = time.monotonic() - began
    assert str(caught.value).startswith(
        f"TLS handshake with localhost:{server.port} was cut off after 1.5s (timeout 1.5s)"
    )
    assert_within(took)


def test_a_prompt_handshake_still_verifies_and_passes(pki, tls_files):
    with peer(tls_files) as server:
        result, took = timed(lambda: inspect_tls(tls_target(server, pki), 14, Deadline.after(30)))
    assert result.verdict is Verdict.PASS, result.message
    assert result.message.startswith("TLSv1.3, ")
    assert took < 1.0


# --- Kubernetes: a stand-in API server (see the module docstring) -------------------------------------------------

NAMESPACES = {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": "5"}}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "app", "uid": "u-web", "generation": 2, "resourceVersion": "6"},
    # The controller has not yet seen generation 2: in progress, whatever else the status says.
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": []}}},
    "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 0, "availableReplicas": 1},
}


def api_document(path: str) -> bytes:
    """A small, valid answer for any LIST the reader asks: the namespace `app`, one Deployment mid-rollout."""
    route = path.split("?", 1)[0]
    if route == "/api/v1/namespaces":
        return json.dumps({**NAMESPACES, "items": [{"metadata": {"name": "app"}}]}).encode()
    items = [DEPLOYMENT] if route.endswith("/deployments") else []
    return json.dumps({"kind": "List", "metadata": {"resourceVersion": "7"}, "items": items}).encode()


def api_server(tls_files, lists: str = NORMAL, watches: str = NORMAL, logs: str = NORMAL) -> SlowPeer:
    def handler(path: str) -> Reply:
        if "watch=1" in path:
            return Reply(200, b"", mode=watches)
        if path.split("?")[0].endswith("/log"):
            return Reply(200, b"a log line that takes its time\n" * 4, "text/plain", mode=logs)
        return Reply(200, api_document(path), mode=lists)

    return peer(tls_files, handler=handler)


def reader_for(server: SlowPeer, pki, tmp_path: Path) -> KubeReader:
    return KubeReader.from_kubeconfig("slow", "slow", str(write_kubeconfig(server, pki, tmp_path)))


def write_kubeconfig(server: SlowPeer, pki, tmp_path: Path) -> Path:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server.url, "certificate-authority": pki[2]}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "slow", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return kubeconfig


def kube_deadline(budget: float = 30.0, watch: float = 300.0) -> Deadline:
    return Deadline.after(budget, "time budget", CallTimeouts(kubernetes_request=BOUND, kubernetes_watch=watch))


KUBE_CASES = {
    "trickled LIST body": (
        TRICKLE_BODY,
        r"the body was still arriving: [4-9] bytes so far, the last 0\.\d+s before the cut \(the server trickles it\)",
    ),
    "trickled LIST headers": (
        TRICKLE_HEADERS,
        r"the status line and headers were still arriving: [4-9] bytes so far, the last 0\.\d+s before the cut "
        r"\(the server trickles them\)",
    ),
    "LIST never answered": (SILENT, r"no byte of an answer had arrived"),
}


@pytest.mark.parametrize("case", list(KUBE_CASES))
def test_a_slow_kubernetes_list_is_an_error_by_its_timeout_naming_the_cut(pki, tls_files, tmp_path, case):
    mode, interrupted = KUBE_CASES[case]
    with api_server(tls_files, lists=mode) as server:
        reader = reader_for(server, pki, tmp_path)
        ref = WorkloadRef("deployment", "app", "web")
        result, took = timed(lambda: check_rollout(reader, ref, Limits(), kube_deadline()))
        first = server.requests[0].split("?")[0]
    assert result.verdict is Verdict.ERROR
    assert re.fullmatch(
        rf"cluster slow: API server {re.escape(server.url)} did not answer in time: GET {re.escape(first)} was cut off "
        rf"after 1\.5s \(defaults\.timeouts\.kubernetes_request 1\.5s\): {interrupted}; check the API server's load "
        rf"and that context 'slow' of {re.escape(str(tmp_path / 'kubeconfig'))} points at it",
        result.message,
    ), result.message
    assert result.category is Category.UNREACHABLE
    assert_within(took)


def test_a_trickled_log_read_is_cut_and_said_instead_of_the_log(pki, tls_files, tmp_path):
    with api_server(tls_files, logs=TRICKLE_BODY) as server:
        reader = reader_for(server, pki, tmp_path)
        log, took = timed(lambda: reader.logs("web-1", "app", "web", False, kube_deadline()))
    assert log.startswith("(no log: cluster slow: API server ")
    assert "GET /api/v1/namespaces/app/pods/web-1/log was cut off after 1.5s" in log
    assert_within(took)


def test_a_watch_that_sends_nothing_ends_with_its_window(pki, tls_files, tmp_path):
    """Headers, then silence: a quiet watch is legitimate, so it is not an error, but the wait ends on time."""
    with api_server(tls_files, watches=STALL) as server:
        reader = reader_for(server, pki, tmp_path)
        deadline = kube_deadline()
        reader.listing("deployments", "app", deadline)
        window = deadline.sub(2.0, "step deadline of 2s")
        wakeups, took = timed(lambda: list(reader.wakeups([("deployments", "app")], window)))
    assert all(w is None for w in wakeups)  # ticks only: no event ever came
    assert_within(took, 2.0)


def test_a_watch_whose_server_stops_mid_window_is_cut_by_the_watch_timeout(pki, tls_files, tmp_path):
    """Its own window (kubernetes_watch) is shorter than the wait: the stream is cut when it ends, then reopened."""
    with api_server(tls_files, watches=STALL) as server:
        reader = reader_for(server, pki, tmp_path)
        deadline = kube_deadline(watch=1.0)
        listing = reader.listing("deployments", "app", deadline)
        events, took = timed(lambda: list(reader.watch("deployments", "app", listing.resource_version, deadline)))
    assert events == []
    assert_within(took, 2.0)  # the server's timeoutSeconds (1s), plus the one second it is given to end the stream


def test_a_watch_that_never_opens_is_an_error_naming_it(pki, tls_files, tmp_path):
    with api_server(tls_files, watches=SILENT) as server:
        reader = reader_for(server, pki, tmp_path)
        ref = WorkloadRef("deployment", "app", "web")
        deadline = kube_deadline()
        window = deadline.sub(10.0, "step deadline of 10s")
        result, took = timed(lambda: check_rollout(reader, ref, Limits(grace=0.0), deadline, within=window))
    assert result.verdict is Verdict.ERROR
    assert re.search(
        r"did not answer in time: watch of /apis/apps/v1/namespaces/app/(deployments|pods|replicasets) was cut off after "
        r"1\.5s \(defaults\.timeouts\.kubernetes_request 1\.5s\): no byte of an answer had arrived",
        result.message,
    ), result.message
    assert_within(took)


def test_a_rollout_wait_on_silent_watches_ends_with_its_window_as_an_error(pki, tls_files, tmp_path):
    with api_server(tls_files, watches=STALL) as server:
        reader = reader_for(server, pki, tmp_path)
        ref = WorkloadRef("deployment", "app", "web")
        deadline = kube_deadline()
        window = deadline.sub(2.0, "step deadline of 2s")
        result, took = timed(lambda: check_rollout(reader, ref, Limits(grace=0.0), deadline, within=window))
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith("still converging when the step deadline of 2s ran out: "), result.message
    assert_within(took, 2.0)


# --- ARM: the real SDK over its bounded transport ------------------------------------------------------------------


def container_apps(url: str, bundle: str, deadline: Deadline) -> ContainerAppsAPIClient:
    transport = BoundedRequestsTransport(deadline, connection_verify=bundle)
    return ContainerAppsAPIClient(StaticToken("t"), SUBSCRIPTION, base_url=url, transport=transport)


def arm_deadline() -> Deadline:
    return Deadline.after(30, "time budget", CallTimeouts(arm_request=BOUND))


def check_app(url: str, bundle: str):
    deadline = arm_deadline()
    client = container_apps(url, bundle, deadline)
    expected = AppExpectation(image=ImageExpectation(version="3.4.0"))
    return timed(lambda: check_container_app(client, AppRef("rg-demo", "orders"), expected, deadline))


ARM_CASES = {
    "trickled body": (
        TRICKLE_BODY,
        r"the body was still arriving: [4-9] bytes so far, the last 0\.\d+s before the cut \(the server trickles it\)",
    ),
    "trickled headers": (
        TRICKLE_HEADERS,
        r"the status line and headers were still arriving: [4-9] bytes so far, the last 0\.\d+s before the cut "
        r"\(the server trickles them\)",
    ),
    "never answers": (SILENT, "no byte of an answer had arrived"),
}
APP_PATH = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-demo/providers/Microsoft.App/containerApps/orders"


@pytest.mark.parametrize("case", list(ARM_CASES))
def test_a_slow_arm_call_is_an_error_by_its_timeout_naming_the_cut(pki, tls_files, case):
    mode, interrupted = ARM_CASES[case]
    document = json.dumps({"id": APP_PATH, "name": "orders", "properties": {"provisioningState": "Succeeded"}})
    with peer(tls_files, Reply(200, document.encode(), mode=mode)) as server:
        result, took = check_app(server.url, pki[2])
    assert result.verdict is Verdict.ERROR
    assert re.search(
        rf"ARM did not answer in time or is unreachable: GET {re.escape(server.url + APP_PATH)}\?api-version=[\d-]+ "
        rf"was cut off after 1\.5s \(defaults\.timeouts\.arm_request 1\.5s\): {interrupted}",
        result.message,
    ), result.message
    assert result.category is Category.UNREACHABLE
    assert_within(took)


def test_an_arm_call_the_test_server_never_completes_is_cut(pki):
    chain, key, bundle = pki
    arm = ArmServer(0, chain, key, local_state(), "t")
    arm.start()
    try:
        arm.set_faults([{"prefix": "", "delay": 60}])
        result, took = check_app(arm.url, bundle)
    finally:
        arm.stop()
    assert result.verdict is Verdict.ERROR
    assert "cut off after 1.5s (defaults.timeouts.arm_request 1.5s): no byte of an answer had arrived" in result.message
    assert_within(took)


def test_a_prompt_arm_answer_passes_through_the_bounded_transport(pki):
    chain, key, bundle = pki
    with ArmServer(0, chain, key, local_state(), "t") as arm:
        result, took = check_app(arm.url, bundle)
    assert result.verdict is Verdict.PASS, result.message
    assert took < 3.0


def test_a_spent_budget_sends_no_arm_call():
    client = container_apps("https://localhost:1", "/nonexistent", Deadline.after(0.0, "time budget"))
    from azure.core.exceptions import ServiceRequestError

    with pytest.raises(ServiceRequestError, match="not sent: time budget of 0s is spent"):
        client.container_apps.get("rg", "app", retry_total=0)


# --- the whole run --------------------------------------------------------------------------------------------------

RUN_BUDGET = 10.0
# Interpreter start, plugin import and collection come before the budget starts, the reports after it ends: about
# 2 s here; the README's time section states 5 s.
RUN_SLACK = 5.0
CUT_OR_SPENT = re.compile(r"was cut off after \d+\.\ds|is spent|no TLS handshake with .+ within|no answer within")


def test_the_whole_run_ends_red_inside_its_budget_whatever_the_peers_do(pki, tls_files, tmp_path):
    """`pytest features --env slow`: every component's peer trickles or stalls; the gate is red inside the budget,
    and every row says which call was cut after how long, or that the budget was spent before it could ask."""
    document = json.dumps({"id": APP_PATH, "name": "orders", "properties": {"provisioningState": "Succeeded"}})
    with (
        peer(tls_files, Reply(200, HEALTH, mode=TRICKLE_BODY)) as trickled_body,
        peer(tls_files, Reply(200, HEALTH, mode=TRICKLE_HEADERS)) as trickled_headers,
        peer(tls_files, handshake="trickle") as trickled_handshake,
        api_server(tls_files, lists=TRICKLE_BODY, watches=STALL) as api,
        peer(tls_files, Reply(200, document.encode(), mode=TRICKLE_BODY)) as arm,
    ):
        envs = tmp_path / "envs"
        envs.mkdir()
        (envs / "slow.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": "slow",
                    "budget": f"{RUN_BUDGET:g}s",
                    "defaults": {
                        "http": {"timeout": "3s"},
                        "tls": {"timeout": "3s", "ca_bundle": pki[2]},
                        "timeouts": {"kubernetes_request": "3s", "arm_request": "3s"},
                        "kubernetes": {"rollout_timeout": "30s"},
                    },
                    "clusters": {"slow": {"context": "slow", "kubeconfig": str(write_kubeconfig(api, pki, tmp_path))}},
                    "azure": {
                        "arm_endpoint": arm.url,
                        "ca_bundle": pki[2],
                        "credential": "token-env",
                        "token_env": "DV_SLOW_TOKEN",
                        "subscriptions": {"demo": {"subscription_id": SUBSCRIPTION}},
                    },
                    "components": [
                        {"name": "body", "kind": "endpoint", "health": [{"url": f"{trickled_body.url}/health"}]},
                        {"name": "headers", "kind": "endpoint", "health": [{"url": f"{trickled_headers.url}/health"}]},
                        {
                            "name": "handshake",
                            "kind": "endpoint",
                            "tls": [{"host": "localhost", "port": trickled_handshake.port}],
                        },
                        {"name": "web", "kind": "deployment", "cluster": "slow", "namespace": "app"},
                        {"name": "orders", "kind": "containerapp", "subscription": "demo", "resource_group": "rg-demo"},
                    ],
                }
            )
        )
        command = [sys.executable, "-m", "pytest", "features", "--env", "slow", f"--env-dir={envs}", "-m", "postdeploy"]
        command += [f"--reports-dir={tmp_path / 'r'}", "--expect", "web=1.0.0", "--expect", "orders=1.0.0", "-q"]
        began = time.monotonic()
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_BUDGET + 60,
            env={**os.environ, "DV_SLOW_TOKEN": "t"},
            check=False,
        )
        took = time.monotonic() - began
    output = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 1, output
    assert took <= RUN_BUDGET + RUN_SLACK, f"the run took {took:.1f}s with a budget of {RUN_BUDGET:g}s\n{output}"
    verdict = json.loads((tmp_path / "r" / "verdict.json").read_text())
    assert verdict["verdict"] == "red"
    rows = {(t["component"], t["check"]): t for t in verdict["tests"]}
    assert {component for component, _ in rows} >= {"body", "headers", "handshake", "web", "orders"}, rows
    for key, row in rows.items():
        assert row["outcome"] in ("fail", "error"), (key, row)
        assert CUT_OR_SPENT.search(row["message"]), (key, row["message"])
    # The first tests run with the whole budget ahead of them: cut at their own 3 s bound, saying where.
    full = [
        row["message"]
        for row in rows.values()
        if re.search(r"was cut off after 3\.0s \((timeout|defaults)", row["message"])
    ]
    assert full, rows
