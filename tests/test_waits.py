"""Waits that do not flake: a terminal-looking state that heals inside the grace period does not fail, one that
lasts does, and every state a wait went through is in the report (the "wait timeline" evidence)."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from pathlib import Path

from deploy_verify.checks.converge import State, Timeline, converge
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Verdict
from deploy_verify.checks.rollout import Limits, check_rollout
from deploy_verify.checks.transports.kube import KubeReader
from deploy_verify.checks.workloads import WorkloadRef

ROOT = Path(__file__).resolve().parent.parent


def scripted(states: list[State]):
    """evaluate() answers the next state each time; the last one repeats."""
    remaining = list(states)

    def evaluate() -> State:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return evaluate


def ticks(seconds: float, every: float = 0.05):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(every)
        yield None


def test_a_crash_that_heals_inside_the_grace_period_is_not_a_failure():
    crash = State(Verdict.FAIL, "Pod web-1: container web CrashLoopBackOff, 1 restarts")
    states = [
        State(None, "1/2 updated"),
        crash,
        crash,
        State(None, "2/2 updated, 1/2 available"),
        State(Verdict.PASS, "rolled out"),
    ]
    timeline = Timeline()
    state, looks = converge(scripted(states), ticks(5), Deadline.after(5), grace=2.0, timeline=timeline)
    assert (state.verdict, state.message, looks) == (Verdict.PASS, "rolled out", 5)
    assert [line.split(" ", 1)[1] for line in timeline.lines] == [
        "waiting: 1/2 updated",
        "FAIL: Pod web-1: container web CrashLoopBackOff, 1 restarts",
        "waiting: 2/2 updated, 1/2 available",
        "PASS: rolled out",
    ]
    assert timeline.evidence()[0].name == "wait timeline"


def test_a_crash_that_lasts_through_the_grace_period_fails_then_and_not_at_the_deadline():
    crash = State(Verdict.FAIL, "Pod web-1: container web CrashLoopBackOff, 3 restarts")
    started = time.monotonic()
    state, _ = converge(scripted([State(None, "1/2 updated"), crash]), ticks(30), Deadline.after(30), grace=0.5)
    assert (state.verdict, state.message) == (Verdict.FAIL, crash.message)
    assert time.monotonic() - started < 3  # grace, not the 30 s deadline


def test_a_state_that_says_it_cannot_heal_fails_at_once_without_the_grace():
    missing = State(Verdict.FAIL, "Pod web-1: container web ErrImagePull: ...: not found", final=True)
    started = time.monotonic()
    state, looks = converge(scripted([State(None, "1/2 updated"), missing]), ticks(30), Deadline.after(30), grace=10)
    assert (state.verdict, state.message, looks) == (Verdict.FAIL, missing.message, 2)
    assert time.monotonic() - started < 1  # not the 10 s grace


def test_a_real_rollout_is_waited_for_and_its_timeline_reported(testbed, testbed_kube):
    namespace = f"wait-{secrets.token_hex(3)}"
    kubectl = [*testbed_kube.kubectl_command("dv-b"), "-n", namespace]
    testbed_kube.kubectl("dv-b", "create", "namespace", namespace)
    try:
        subprocess.run(
            [*kubectl, "create", "deployment", "web", "--image=registry.example.test/web:1", "--replicas=3"],
            check=True,
            capture_output=True,
        )
        patch = (
            '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},"template":{"spec":'
            '{"tolerations":[{"key":"kwok.x-k8s.io/node","operator":"Exists"}]}}}}'
        )
        subprocess.run([*kubectl, "patch", "deployment", "web", "-p", patch], check=True, capture_output=True)
        subprocess.run(
            [*kubectl, "rollout", "status", "deployment/web", "--timeout=60s"], check=True, capture_output=True
        )
        subprocess.run(
            [*kubectl, "set", "image", "deployment/web", "web=registry.example.test/web:2"],
            check=True,
            capture_output=True,
        )
        reader = KubeReader.from_kubeconfig("dv-b", "kwok-dv-b", str(ROOT / ".testbed" / "kubeconfig.yaml"))
        window = Deadline.after(60, "rollout deadline of 60s")
        result = check_rollout(
            reader, WorkloadRef("deployment", namespace, "web"), Limits(grace=3), window, within=window
        )
    finally:
        testbed_kube.kubectl("dv-b", "delete", "namespace", namespace, "--wait=false")
    assert result.verdict is Verdict.PASS, result.message
    assert result.message.startswith("rolled out: 3/3 updated, 3/3 available")
    timeline = next(e.content for e in result.evidence if e.name == "wait timeline").splitlines()
    # The first look is a wait state, taken at once (the first LISTs take a moment on a loaded machine).
    assert re.match(r"\+0\.\ds waiting: ", timeline[0]), timeline
    assert timeline[-1].split(" ", 1)[1].startswith("PASS: rolled out: 3/3 updated"), timeline
