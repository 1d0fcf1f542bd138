"""Baselines and rollback verification on the real control plane, with real `kubectl rollout undo` and real helm
(v4 and v3): a good rollback passes; the wrong revision, a Helm rollback to other content and a drill without
permission do not."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy_verify.checks.baseline import HelmState, helm_state, workload_state
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.drill import roll_back_workload
from deploy_verify.checks.helm import HelmRef
from deploy_verify.checks.result import Verdict
from deploy_verify.checks.rollback import check_helm_restored, check_workload_restored
from deploy_verify.checks.transports.kube import KubeReader, ReadOnlyViolation
from deploy_verify.checks.workloads import WorkloadRef
from testbed.helm import BINARIES, CHART, Helm

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = str(ROOT / ".testbed" / "kubeconfig.yaml")
IMAGE = "registry.example.test/shop/web"
AT = "2026-11-22T00:00:00+00:00"

WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      tolerations: [{{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}}]
      containers: [{{name: web, image: "{image}:1.0.0"}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {ns}}}
spec:
  replicas: 1
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      tolerations: [{{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}}]
      containers: [{{name: db, image: "registry.example.test/shop/db:1.0.0"}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      tolerations: [{{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}}]
      containers: [{{name: agent, image: "registry.example.test/shop/agent:1.0.0"}}]
"""


@pytest.fixture
def namespace(testbed_kube) -> Iterator[str]:
    name = f"rb-{secrets.token_hex(3)}"
    testbed_kube.kubectl("dv-b", "create", "namespace", name)
    yield name
    testbed_kube.kubectl("dv-b", "delete", "namespace", name, "--wait=false")


@pytest.fixture
def kubectl(testbed_kube, namespace):
    def run(*args: str, stdin: str | None = None) -> str:
        import subprocess

        command = [*testbed_kube.kubectl_command("dv-b"), "-n", namespace, *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, check=True, timeout=120).stdout

    return run


@pytest.fixture
def workloads(kubectl, namespace):
    kubectl("apply", "-f", "-", stdin=WORKLOADS.format(ns=namespace, image=IMAGE))
    settle(kubectl)
    return namespace


def settle(kubectl) -> None:
    for workload in ("deployment/web", "statefulset/db", "daemonset/agent"):
        kubectl("rollout", "status", workload, "--timeout=60s")


def reader(allow_mutations: bool = False) -> KubeReader:
    """A new reader per look: a cached list would hide what kubectl or helm just changed."""
    return KubeReader.from_kubeconfig("dv-b", "kwok-dv-b", KUBECONFIG, allow_mutations=allow_mutations)


def budget() -> Deadline:
    return Deadline.after(60, "test budget")


def web(namespace: str) -> WorkloadRef:
    return WorkloadRef("deployment", namespace, "web")


def test_rollout_undo_restores_the_baseline_and_the_upgrade_is_caught(workloads, kubectl):
    recorded = workload_state(reader(), web(workloads), budget())
    kubectl("set", "image", "deployment/web", f"web={IMAGE}:2.0.0")
    settle(kubectl)
    upgraded = check_workload_restored(reader(), web(workloads), recorded, AT, budget())
    assert upgraded.verdict is Verdict.FAIL
    assert re.fullmatch(
        rf"not the baseline of {re.escape(AT)}: image web: baseline {IMAGE}:1\.0\.0, now {IMAGE}:2\.0\.0; "
        rf"pod template: baseline {recorded.template_hash} \(revision 1\), now \w+ \(revision 2\)",
        upgraded.message,
    ), upgraded.message
    kubectl("rollout", "undo", "deployment/web")
    settle(kubectl)
    restored = check_workload_restored(reader(), web(workloads), recorded, AT, budget())
    assert (restored.verdict, restored.message) == (
        Verdict.PASS,
        # The undo gave the old template revision 3; the template, not the number, is what must match.
        f"matches the baseline of {AT}: pod template {recorded.template_hash} (revision 3), web={IMAGE}:1.0.0",
    )


def test_rollback_to_the_wrong_revision_fails_with_the_difference(workloads, kubectl):
    kubectl("set", "image", "deployment/web", f"web={IMAGE}:2.0.0")
    settle(kubectl)
    recorded = workload_state(reader(), web(workloads), budget())  # the baseline: 2.0.0, revision 2
    kubectl("set", "image", "deployment/web", f"web={IMAGE}:3.0.0")
    settle(kubectl)
    kubectl("rollout", "undo", "deployment/web", "--to-revision=1")  # one too far
    settle(kubectl)
    result = check_workload_restored(reader(), web(workloads), recorded, AT, budget())
    assert result.verdict is Verdict.FAIL
    assert re.fullmatch(
        rf"not the baseline of {re.escape(AT)}: image web: baseline {IMAGE}:2\.0\.0, now {IMAGE}:1\.0\.0; "
        rf"pod template: baseline {recorded.template_hash} \(revision 2\), now \w+ \(revision 4\)",
        result.message,
    ), result.message


@pytest.mark.parametrize(("kind", "name", "container"), [("statefulset", "db", "db"), ("daemonset", "agent", "agent")])
def test_drill_undo_of_statefulsets_and_daemonsets(workloads, kubectl, kind, name, container):
    ref = WorkloadRef(kind, workloads, name)
    recorded = workload_state(reader(), ref, budget())
    kubectl("set", "image", f"{kind}/{name}", f"{container}=registry.example.test/shop/{name}:2.0.0")
    settle(kubectl)
    assert check_workload_restored(reader(), ref, recorded, AT, budget()).verdict is Verdict.FAIL
    did = roll_back_workload(reader(allow_mutations=True), ref, recorded, budget())
    assert re.fullmatch(rf"{ref.where}: ControllerRevision {name}-\w+ restored", did), did
    settle(kubectl)
    result = check_workload_restored(reader(), ref, recorded, AT, budget())
    assert result.verdict is Verdict.PASS, result.message


def test_the_read_only_reader_refuses_the_drill(workloads, kubectl):
    recorded = workload_state(reader(), web(workloads), budget())
    kubectl("set", "image", "deployment/web", f"web={IMAGE}:2.0.0")
    settle(kubectl)
    with pytest.raises(ReadOnlyViolation, match=r"refused PATCH .*/deployments/web: this run is read-only"):
        roll_back_workload(reader(), web(workloads), recorded, budget())


@pytest.mark.parametrize("binary", BINARIES, ids=["helm-v4", "helm-v3"])
def test_helm_rollback_to_other_content_fails_with_a_manifest_diff(namespace, binary):
    helm = Helm.for_testbed(binary, "dv-b")
    ref = HelmRef(namespace, "catalog")
    helm("install", "catalog", str(CHART), "-n", namespace)
    helm("upgrade", "catalog", str(CHART), "-n", namespace, "--set", "replicas=3")
    recorded = helm_state(reader(), ref, budget())  # the baseline: revision 2, three replicas
    assert isinstance(recorded, HelmState)
    assert recorded.revision == 2
    helm("rollback", "catalog", "1", "-n", namespace)  # the wrong revision: same chart, other values
    wrong = check_helm_restored(reader(), ref, recorded, AT, budget())
    assert wrong.verdict is Verdict.FAIL
    assert re.fullmatch(
        rf"not the baseline of {re.escape(AT)}: values: baseline sha256:\w+ \(revision 2\), now sha256:\w+ "
        r"\(revision 3\); manifest: baseline sha256:\w+ \(revision 2\), now sha256:\w+ \(revision 3\); "
        r"manifest lines changed: -  replicas: 3 \| \+  replicas: 2",
        wrong.message,
    ), wrong.message
    diff = next(e.content for e in wrong.evidence if e.name == "manifest diff")
    assert "--- revision 2 (baseline)" in diff
    assert "+++ revision 3 (now)" in diff
    helm("rollback", "catalog", "2", "-n", namespace)
    right = check_helm_restored(reader(), ref, recorded, AT, budget())
    assert right.verdict is Verdict.PASS
    assert right.message.startswith(f"matches the baseline of {AT}: revision 4: chart catalog-1.2.0, app version 2.4.0")
