"""checks.helm_resources: the manifest parser and the drift comparison (pure), then releases of the testbed's `bundle`
chart (Deployment, Service, ConfigMap, Job, CronJob, PersistentVolumeClaim and its PersistentVolume, a hook)
installed with the real helm binaries on dv-b, each in a namespace of its own, brought into each state the check
claims to catch:

- by the real controllers and KWOK (pods Ready, the Job completed, the claim bound, endpoints ready);
- by KWOK's failure stage for pods labelled dv.test/fault=crashloop (the status a kubelet writes for a crash loop);
- by values that make an object fail for real: a Job pod no scheduler binds runs out of activeDeadlineSeconds, a
  claim of a class nobody provisions stays Pending (and the scheduler leaves its pods unscheduled), a Service selects
  no pod, a CronJob is suspended, an Issuer gets no status (no cert-manager controller runs);
- by hand, as an operator would: kubectl delete, set image, scale, after an upgrade and a rollback.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from deploy_verify.checks.baseline import helm_state
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.helm import HelmRef, UnreadableRelease
from deploy_verify.checks.helm_resources import (
    MISSING,
    Difference,
    check_helm_resources,
    drift,
    exact_map_drift,
    parse_manifest,
    parse_quantity,
    same_quantity,
    subset_drift,
)
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.rollback import check_helm_restored
from deploy_verify.checks.transports.kube import KubeReader
from testbed.helm import BINARIES, Helm
from testbed.kube import kube_bin

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "testbed" / "charts" / "bundle"
RELEASE = "storefront"
WEB = "registry.example.test/bundle/web"
KINDS = "1 ConfigMap, 1 CronJob, 1 Deployment, 1 Job, 1 PersistentVolume, 1 PersistentVolumeClaim, 1 Secret, 1 Service"
P = r"storefront-web-[a-z0-9]+-[a-z0-9]+"  # a pod name the ReplicaSet controller chose


# --- the manifest ----------------------------------------------------------------------------------------------------

MANIFEST = """---
# Source: bundle/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  released: 2026-01-31
---
---
# Source: bundle/templates/empty.yaml
---
# Source: bundle/templates/hook.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: db-migrate
  annotations:
    "helm.sh/hook": pre-upgrade
spec: {}
---
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Service, metadata: {name: web}}
  - {apiVersion: v1, kind: ServiceAccount, metadata: {name: web, namespace: elsewhere}}
"""


def test_manifest_keeps_objects_and_leaves_out_empty_documents_and_hooks():
    parsed = parse_manifest(MANIFEST)
    assert [(o["kind"], o["metadata"]["name"]) for o in parsed.objects] == [
        ("ConfigMap", "web-config"),
        ("Service", "web"),
        ("ServiceAccount", "web"),
    ]
    assert parsed.hooks == ["Job/db-migrate"]
    # As Helm's YAML-to-JSON reads it: an unquoted date is a string, not a datetime.
    assert parsed.objects[0]["data"] == {"released": "2026-01-31"}
    assert parsed.objects[2]["metadata"]["namespace"] == "elsewhere"


def test_empty_manifest_has_no_objects():
    assert parse_manifest("").objects == []
    assert parse_manifest("---\n# Source: x.yaml\n---\n").objects == []


@pytest.mark.parametrize(
    ("manifest", "said"),
    [
        ("kind: [unclosed", "the release manifest is not YAML"),
        ("- just\n- a list\n", 'the release manifest holds a document that is no object: ["just","a list"]'),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "the release manifest holds a document that is no object"),
    ],
)
def test_a_manifest_that_is_not_objects_cannot_be_judged(manifest, said):
    with pytest.raises(UnreadableRelease, match=re.escape(said)):
        parse_manifest(manifest)


# --- quantities and the subset comparison ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        (0.5, Decimal("0.5")),
        ("1", Decimal(1)),
        (2, Decimal(2)),
        ("1Gi", Decimal(1024**3)),
        ("0.125Gi", Decimal(128 * 1024**2)),
        ("128Mi", Decimal(128 * 1024**2)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("100n", Decimal("1e-7")),
        (".5", Decimal("0.5")),
        ("lots", None),
        ("1Gb", None),
        (True, None),
    ],
)
def test_quantities_are_read_as_kubernetes_does(text, value):
    assert parse_quantity(text) == value


def test_quantities_compare_by_value():
    assert same_quantity("500m", "0.5")
    assert same_quantity(0.5, "500m")
    assert same_quantity("1024Mi", "1Gi")
    assert same_quantity("1000m", 1)
    assert not same_quantity("500m", "0.6")
    assert not same_quantity("1G", "1Gi")
    assert not same_quantity("x", "x")


TEMPLATE = {
    "metadata": {"labels": {"app": "web"}, "annotations": {"checksum/config": "abc"}},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "reg/web:1.2",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "EMPTY", "value": ""}],
                "resources": {"requests": {"cpu": 0.5, "memory": "64Mi"}, "limits": {"memory": "0.125Gi"}},
                "args": ["--port", "8080"],
            }
        ],
        "initContainers": [{"name": "init", "image": "reg/init:1"}],
        "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
        "hostNetwork": False,
        "nodeSelector": {},
    },
}


def live_template() -> dict:
    """TEMPLATE as the API server keeps it: defaults filled, quantities canonical, a sidecar and labels added by
    others, lists in another order, empty values and false dropped."""
    return {
        "metadata": {
            "labels": {"app": "web", "pod-template-hash": "x"},
            "annotations": {"checksum/config": "abc", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
        },
        "spec": {
            "containers": [
                {"name": "istio-proxy", "image": "istio/proxyv2:1.20"},
                {
                    "name": "web",
                    "image": "reg/web:1.2",
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "env": [{"name": "EMPTY"}, {"name": "LOG_LEVEL", "value": "info"}],
                    "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                    "args": ["--port", "8080"],
                    "terminationMessagePath": "/dev/termination-log",
                },
            ],
            "initContainers": [{"name": "init", "image": "reg/init:1", "imagePullPolicy": "IfNotPresent"}],
            "tolerations": [
                {"key": "b", "operator": "Exists"},
                {"key": "a", "operator": "Exists"},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
            ],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
        },
    }


def test_what_the_api_server_and_other_controllers_add_is_not_drift():
    assert subset_drift(TEMPLATE, live_template(), "spec.template") == []


def changed(path: list[str | int], value: object) -> dict:
    found = live_template()
    node = found
    for step in path[:-1]:
        node = node[step]
    if value is MISSING:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return found


WEB_CONTAINER = ["spec", "containers", 1]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            [*WEB_CONTAINER, "image"],
            "reg/web:1.1",
            Difference("spec.template.spec.containers[web].image", "reg/web:1.1", "reg/web:1.2"),
        ),
        (
            [*WEB_CONTAINER, "env", 1, "value"],
            "debug",
            Difference("spec.template.spec.containers[web].env[LOG_LEVEL].value", "debug", "info"),
        ),
        (
            [*WEB_CONTAINER, "env"],
            [{"name": "EMPTY"}],
            Difference(
                "spec.template.spec.containers[web].env[LOG_LEVEL]", MISSING, {"name": "LOG_LEVEL", "value": "info"}
            ),
        ),
        (
            [*WEB_CONTAINER, "resources", "requests", "cpu"],
            "600m",
            Difference("spec.template.spec.containers[web].resources.requests.cpu", "600m", 0.5),
        ),
        (
            [*WEB_CONTAINER, "ports", 0, "name"],
            "web",
            Difference("spec.template.spec.containers[web].ports[8080].name", "web", "http"),
        ),
        (
            [*WEB_CONTAINER, "args"],
            ["8080", "--port"],
            Difference("spec.template.spec.containers[web].args", ["8080", "--port"], ["--port", "8080"]),
        ),
        (
            ["spec", "initContainers", 0, "image"],
            "reg/init:2",
            Difference("spec.template.spec.initContainers[init].image", "reg/init:2", "reg/init:1"),
        ),
        (
            ["metadata", "annotations", "checksum/config"],
            "def",
            Difference("spec.template.metadata.annotations.checksum/config", "def", "abc"),
        ),
        (
            ["spec", "tolerations"],
            [{"key": "a", "operator": "Exists"}],
            Difference(
                "spec.template.spec.tolerations",
                [{"key": "a", "operator": "Exists"}],
                [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
            ),
        ),
        (["spec", "hostNetwork"], True, Difference("spec.template.spec.hostNetwork", True, False)),
    ],
    ids=[
        "image",
        "env-value",
        "env-gone",
        "cpu",
        "port-name",
        "args-order",
        "init-image",
        "annotation",
        "toleration",
        "false-vs-true",
    ],
)
def test_each_change_of_a_rendered_field_is_drift_with_its_path(path, value, expected):
    assert subset_drift(TEMPLATE, changed(path, value), "spec.template") == [expected]


def test_a_container_gone_live_is_drift():
    live = changed(["spec", "containers"], [live_template()["spec"]["containers"][0]])
    [difference] = subset_drift(TEMPLATE, live, "spec.template")
    assert (difference.path, difference.live) == ("spec.template.spec.containers[web]", MISSING)
    assert difference.line().startswith("spec.template.spec.containers[web] is not set live, the release rendered {")


def test_zero_and_false_match_a_field_the_api_server_omitted_but_not_another_value():
    assert subset_drift({"replicas": 0, "paused": False}, {}, "spec") == []
    assert subset_drift({"replicas": 0}, {"replicas": 3}, "spec") == [Difference("spec.replicas", 3, 0)]
    assert subset_drift({"replicas": 1}, {"replicas": True}, "spec") == [Difference("spec.replicas", True, 1)]


def test_a_map_the_release_owns_is_compared_whole():
    assert exact_map_drift({"a": "1"}, {"a": "1"}, "data") == []
    assert exact_map_drift({"a": "1", "b": "2"}, {"a": "9", "c": "3"}, "data") == [
        Difference("data.a", "9", "1"),
        Difference("data.b", MISSING, "2"),
        Difference("data.c", "3", MISSING),
    ]
    assert exact_map_drift(None, {"c": "3"}, "data") == [Difference("data.c", "3", MISSING)]


def test_drift_of_each_kind_compares_what_it_owns():
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
    }
    live = {
        "metadata": {
            "name": "web",
            "labels": {"app": "web", "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"deployment.kubernetes.io/revision": "4", "meta.helm.sh/release-name": "storefront"},
        },
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": live_template()},
        "status": {"replicas": 3},
    }
    assert drift(deployment, live) == [Difference("spec.replicas", 3, 2)]
    service = {
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"type": "ClusterIP", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    live_service = {
        "metadata": {"name": "web"},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.0.0.7",
            "selector": {"app": "web", "track": "canary"},
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}],
            "sessionAffinity": "None",
        },
    }
    assert drift(service, live_service) == [
        Difference("spec.type", "NodePort", "ClusterIP"),
        Difference("spec.ports[80].targetPort", 8080, "http"),
        Difference("spec.selector.track", "canary", MISSING),
    ]
    config = {"kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"owner": "team-a"}}, "data": {"k": "v"}}
    live_config = {"metadata": {"name": "c", "annotations": {"owner": "team-b"}}, "data": {"k": "v"}}
    assert drift(config, live_config) == [Difference("metadata.annotations.owner", "team-b", "team-a")]
    cronjob = {"kind": "CronJob", "metadata": {"name": "r"}, "spec": {"schedule": "*/5 * * * *", "suspend": False}}
    assert drift(cronjob, {"metadata": {"name": "r"}, "spec": {"schedule": "0 * * * *", "suspend": True}}) == [
        Difference("spec.schedule", "0 * * * *", "*/5 * * * *")  # suspend is health (allow_suspended), not drift
    ]


def test_a_difference_says_the_field_both_values_and_how_it_was_likely_made():
    assert Difference("spec.template.spec.containers[web].image", "reg/web:1.1", "reg/web:1.2").line() == (
        "spec.template.spec.containers[web].image is reg/web:1.1 live, the release rendered reg/web:1.2 "
        "(changed outside Helm: kubectl edit/patch/set image?)"
    )
    assert Difference("spec.replicas", 5, 2).line() == (
        "spec.replicas is 5 live, the release rendered 2 (changed outside Helm: kubectl scale/edit/patch?)"
    )
    long = Difference("data.nginx.conf", "server {\n  listen 80;\n}\n" * 10, MISSING).line()
    assert long.startswith('data.nginx.conf is "server {\\n  listen 80;\\n}\\nserver')
    assert "…" in long
    assert "\n" not in long


# --- releases on the real control plane ---------------------------------------------------------------------------


class Release:
    """A namespace of its own on dv-b, the bundle chart installed there by one helm binary, and kubectl on it."""

    def __init__(self, kube, helm: Helm, namespace: str) -> None:
        self.kube, self.helm, self.namespace = kube, helm, namespace

    def install(self, *values: str) -> None:
        self.helm("install", RELEASE, str(CHART), "-n", self.namespace, *_sets(values))

    def upgrade(self, *values: str) -> None:
        self.helm("upgrade", RELEASE, str(CHART), "-n", self.namespace, *_sets(values))

    def kubectl(self, *args: str) -> str:
        command = [*self.kube.kubectl_command("dv-b"), "-n", self.namespace, *args]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout

    def rolled_out(self) -> None:
        self.kubectl("rollout", "status", "deployment/storefront-web", "--timeout=90s")

    @property
    def ref(self) -> HelmRef:
        return HelmRef(self.namespace, RELEASE)

    def look(self, allow_suspended: tuple[str, ...] = (), reader: KubeReader | None = None) -> CheckResult:
        """One look with a fresh reader (a reader caches its lists)."""
        return check_helm_resources(reader or fresh(), self.ref, Deadline.after(30), allow_suspended)

    def settle(self, done: Callable[[CheckResult], bool], seconds: float = 60, **kwargs) -> CheckResult:
        """Look until `done` holds (the controllers and KWOK take a moment), then return that look."""
        end = time.monotonic() + seconds
        while True:
            result = self.look(**kwargs)
            if done(result) or time.monotonic() > end:
                return result
            time.sleep(0.5)


def _sets(values: tuple[str, ...]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


def fresh() -> KubeReader:
    return KubeReader.from_kubeconfig("dv-b", "kwok-dv-b", str(ROOT / ".testbed" / "kubeconfig.yaml"))


def lines(result: CheckResult) -> list[str]:
    return result.message.split("\n")


def passed(result: CheckResult) -> bool:
    return result.verdict is Verdict.PASS


def says(*patterns: str) -> Callable[[CheckResult], bool]:
    """The result's problem lines (after the summary) match these, in any order."""

    def check(result: CheckResult) -> bool:
        found = lines(result)[1:]
        return len(found) == len(patterns) and all(any(re.fullmatch(p, line) for line in found) for p in patterns)

    return check


def assert_lines(result: CheckResult, summary: str, *patterns: str) -> None:
    assert lines(result)[0] == summary, result.message
    assert says(*patterns)(result), result.message


def _release(helm_binary: str, kube) -> Iterator[Release]:
    namespace = f"hr-{secrets.token_hex(3)}"
    kube.kubectl("dv-b", "create", "namespace", namespace)
    helm = Helm.for_testbed(helm_binary, "dv-b")
    yield Release(kube, helm, namespace)
    # The PersistentVolume is cluster-scoped: only the uninstall removes it.
    helm("uninstall", RELEASE, "-n", namespace, "--wait=false", check=False)
    kube.kubectl("dv-b", "delete", "namespace", namespace, "--wait=false")


@pytest.fixture
def release(testbed, testbed_kube) -> Iterator[Release]:
    yield from _release("helm", testbed_kube)


@pytest.fixture(params=BINARIES, ids=["helm-v4", "helm-v3"])
def any_helm(request, testbed, testbed_kube) -> Iterator[Release]:
    yield from _release(request.param, testbed_kube)


def test_healthy_release_passes_and_lists_what_it_judged(any_helm):
    any_helm.install()
    result = any_helm.settle(passed)
    assert (result.verdict, result.message) == (
        Verdict.PASS,
        f"revision 1: 8 objects healthy and as rendered ({KINDS})",
    )
    assert result.target == f"HelmRelease:{any_helm.namespace}/storefront"
    table = json.loads(result.evidence[0].content)
    assert table["revision"] == 1
    assert table["hooks (not judged)"] == []  # Helm keeps hooks out of the manifest (release.hooks): never judged
    assert {row["object"]: row["state"] for row in table["objects"]} == {
        f"ConfigMap:{any_helm.namespace}/storefront-config": "Current",
        f"Secret:{any_helm.namespace}/storefront-token": "Current",
        f"PersistentVolume:{any_helm.namespace}-storefront-data": "Current",
        f"PersistentVolumeClaim:{any_helm.namespace}/storefront-data": "Current",
        f"Service:{any_helm.namespace}/storefront-web": "Current",
        f"Deployment:{any_helm.namespace}/storefront-web": "Current",
        f"Job:{any_helm.namespace}/storefront-migrate": "Current",
        f"CronJob:{any_helm.namespace}/storefront-report": "Current",
    }


def test_crash_looping_release_fails_naming_the_pods_and_the_reason(release):
    release.install("fault=crashloop")
    ns = release.namespace
    crash = rf"Deployment:{ns}/storefront-web: Pod {P}: container web CrashLoopBackOff, 5 restarts, last exit code 1"
    result = release.settle(
        says(
            rf"Service:{ns}/storefront-web: not ready yet: no ready endpoint \(2 endpoints, none ready\)",
            rf"Deployment:{ns}/storefront-web: not ready yet: rollout in progress: 2/2 updated, 0/2 ready, "
            r"0/2 available",
            crash,
            crash,
        )
    )
    assert_lines(
        result,
        "revision 1: 2 of 8 rendered objects are not healthy or not as rendered",
        rf"Service:{ns}/storefront-web: not ready yet: no ready endpoint \(2 endpoints, none ready\)",
        rf"Deployment:{ns}/storefront-web: not ready yet: rollout in progress: 2/2 updated, 0/2 ready, 0/2 available",
        crash,
        crash,
    )
    assert (result.verdict, result.category) == (Verdict.FAIL, Category.ROLLOUT_STUCK)
    assert any(e.name == f"Deployment:{ns}/storefront-web pods" for e in result.evidence)


def test_failed_job_fails(release):
    release.install("job.unschedulable=true")
    ns = release.namespace
    job = (
        rf"Job:{ns}/storefront-migrate: failed: DeadlineExceeded: Job was active longer than specified deadline "
        r"\(1 failed pods, 0/1 succeeded\)"
    )
    result = release.settle(says(job))
    assert_lines(result, "revision 1: 1 of 8 rendered objects are not healthy or not as rendered", job)
    assert result.verdict is Verdict.FAIL


def test_suspended_cronjob_fails_unless_the_environment_allows_it(release):
    release.install("cronjob.suspend=true")
    ns = release.namespace
    suspended = (
        rf"CronJob:{ns}/storefront-report: suspended \(spec.suspend: true\): it schedules no Job until resumed: it "
        r"runs nothing; declare it may be suspended if that is intended"
    )
    result = release.settle(says(suspended))
    assert_lines(result, "revision 1: 1 of 8 rendered objects are not healthy or not as rendered", suspended)
    allowed = release.settle(passed, allow_suspended=("storefront-report",))
    assert allowed.message == f"revision 1: 8 objects healthy and as rendered ({KINDS})"


def test_pending_claim_fails_and_so_do_the_pods_that_wait_for_it(release):
    release.install("pvc.pending=true")
    ns = release.namespace
    claim = (
        rf"PersistentVolumeClaim:{ns}/storefront-data: not ready yet: phase Pending: no volume bound yet \(a "
        r"provisioner creates one, or a WaitForFirstConsumer class binds when a pod uses it\)"
    )
    unscheduled = (
        rf"Deployment:{ns}/storefront-web: Pod {P}: FailedScheduling: 0/\d+ nodes are available: pod has unbound "
        r"immediate PersistentVolumeClaims\..*"
    )
    result = release.settle(
        says(
            claim,
            rf"Service:{ns}/storefront-web: not ready yet: no ready endpoint \(no endpoint at all: .*",
            rf"Deployment:{ns}/storefront-web: not ready yet: rollout in progress: 2/2 updated, 0/2 ready, "
            "0/2 available",
            unscheduled,
            unscheduled,
        )
    )
    assert lines(result)[0] == "revision 1: 3 of 7 rendered objects are not healthy or not as rendered", result.message
    assert (result.verdict, result.category) == (Verdict.FAIL, Category.ROLLOUT_STUCK)


def test_service_without_ready_endpoints_fails(release):
    release.install("service.selector=nobody")
    ns = release.namespace
    service = (
        rf"Service:{ns}/storefront-web: not ready yet: no ready endpoint \(no endpoint at all: does any pod match "
        r"app=nobody\?\)"
    )
    result = release.settle(says(service))
    assert_lines(result, "revision 1: 1 of 8 rendered objects are not healthy or not as rendered", service)


def test_custom_resource_without_a_status_is_an_error_naming_it(release):
    release.install("issuer.enabled=true")
    result = release.settle(lambda r: r.verdict is Verdict.ERROR and "Deployment" not in r.message)
    assert (result.verdict, result.category) == (Verdict.ERROR, Category.UNDECIDED)
    assert lines(result) == [
        "revision 1: the health of 1 of 9 rendered objects cannot be judged",
        f"Issuer:{release.namespace}/storefront-ca: its health cannot be judged: publishes no status the suite can "
        "judge: the Issuer has no status at all",
    ]


def test_object_deleted_by_hand_fails_as_missing(release):
    release.install()
    release.settle(passed)
    release.kubectl("delete", "configmap", "storefront-config")
    result = release.look()
    assert (result.verdict, result.category) == (Verdict.FAIL, Category.PROVISIONING)
    assert lines(result) == [
        "revision 1: 1 of 8 rendered objects are not healthy or not as rendered",
        f"ConfigMap:{release.namespace}/storefront-config: rendered by release storefront revision 1 but not in the "
        "cluster",
    ]


def image_drift(namespace: str, live: str, rendered: str) -> str:
    return (
        f"Deployment:{namespace}/storefront-web: spec.template.spec.containers[web].image is {live} live, the release "
        f"rendered {rendered} (changed outside Helm: kubectl edit/patch/set image?)"
    )


def test_image_set_by_hand_fails_naming_the_field_and_both_values(any_helm):
    any_helm.install()
    any_helm.settle(passed)
    any_helm.kubectl("set", "image", "deployment/storefront-web", f"web={WEB}:6.6.6")
    any_helm.rolled_out()
    drifted = image_drift(any_helm.namespace, f"{WEB}:6.6.6", f"{WEB}:1.0.0")
    result = any_helm.settle(says(re.escape(drifted)))
    assert (result.verdict, result.category) == (Verdict.FAIL, Category.WRONG_VERSION)
    assert lines(result) == ["revision 1: 1 of 8 rendered objects are not healthy or not as rendered", drifted]
    table = json.loads(result.evidence[0].content)
    row = next(r for r in table["objects"] if r["object"].startswith("Deployment:"))
    assert row["drift"] == [
        {"field": "spec.template.spec.containers[web].image", "live": f"{WEB}:6.6.6", "rendered": f"{WEB}:1.0.0"}
    ]


def test_replicas_scaled_by_hand_fail(release):
    release.install()
    release.settle(passed)
    release.kubectl("scale", "deployment/storefront-web", "--replicas=3")
    release.rolled_out()
    scaled = (
        f"Deployment:{release.namespace}/storefront-web: spec.replicas is 3 live, the release rendered 2 (changed "
        "outside Helm: kubectl scale/edit/patch?)"
    )
    result = release.settle(says(re.escape(scaled)))
    assert lines(result) == ["revision 1: 1 of 8 rendered objects are not healthy or not as rendered", scaled]


def test_replicas_an_hpa_owns_are_not_drift(release):
    """The HPA controller runs, but no metrics API exists here: it cannot scale (and says so, which is its own FAIL),
    so the count set by hand stays, as one an HPA set would."""
    release.install("hpa.enabled=true")
    release.rolled_out()
    release.kubectl("scale", "deployment/storefront-web", "--replicas=3")
    release.rolled_out()
    ns = release.namespace
    hpa = (
        rf"HorizontalPodAutoscaler:{ns}/storefront-web: cannot scale: ScalingActive is False "
        r"\(FailedGetResourceMetric: .*"
    )
    result = release.settle(says(hpa))
    assert_lines(result, "revision 1: 1 of 9 rendered objects are not healthy or not as rendered", hpa)
    table = json.loads(result.evidence[0].content)
    row = next(r for r in table["objects"] if r["object"].startswith("Deployment:"))
    assert row == {
        "object": f"Deployment:{ns}/storefront-web",
        "state": "Current",
        "problems": [],
        "note": "spec.replicas is owned by HorizontalPodAutoscaler storefront-web",
    }


def test_rolled_back_then_patched_by_hand_fails_although_the_release_record_is_restored(release):
    release.install()
    release.settle(passed)
    baseline = helm_state(fresh(), release.ref, Deadline.after(10))
    release.upgrade("image.tag=2.0.0")
    release.helm("rollback", RELEASE, "1", "-n", release.namespace)
    release.rolled_out()
    assert release.settle(passed).message == f"revision 3: 8 objects healthy and as rendered ({KINDS})"
    release.kubectl("set", "image", "deployment/storefront-web", f"web={WEB}:2.0.1")
    release.rolled_out()
    restored = check_helm_restored(fresh(), release.ref, baseline, "2026-12-01T10:00:00Z", Deadline.after(10))
    assert restored.verdict is Verdict.PASS, restored.message  # Helm's record is the baseline's...
    drifted = image_drift(release.namespace, f"{WEB}:2.0.1", f"{WEB}:1.0.0")
    result = release.settle(says(re.escape(drifted)))  # ... what runs is not
    assert lines(result) == ["revision 3: 1 of 8 rendered objects are not healthy or not as rendered", drifted]


def test_one_list_per_kind_and_namespace_whatever_the_number_of_objects(release):
    release.install("config.copies=6")
    release.settle(passed)
    fresh().resource("v1", "PersistentVolume", Deadline.after(10))  # discovery, once per process, done before counting
    reader = fresh()
    result = release.look(reader=reader)
    assert result.message.startswith("revision 1: 14 objects healthy and as rendered (7 ConfigMap, ")
    # One LIST per (kind, namespace) of what was rendered: ConfigMap (7 objects), PersistentVolume (cluster-scoped),
    # PersistentVolumeClaim, Service, Deployment, Job, CronJob, and Secret (those Helm labels as managed by it).
    rendered_kinds = 8
    release_secrets = 1  # the release history: Helm's own Secrets (owner=helm)
    related = 3  # EndpointSlices (the Service's endpoints), Pods and ReplicaSets (the Deployment's pods)
    assert reader.requests == rendered_kinds + release_secrets + related < 14
    ns = release.namespace
    assert sorted((kind, namespace or "", select) for kind, namespace, select in reader.cache) == sorted(
        [(k, ns, "") for k in ("configmaps", "persistentvolumeclaims", "services", "deployments", "jobs")]
        + [(k, ns, "") for k in ("cronjobs", "endpointslices", "pods", "replicasets")]
        + [("persistentvolumes", "", ""), ("secrets", ns, "labels:owner=helm")]
        + [("secrets", ns, "labels:app.kubernetes.io/managed-by=Helm")]
    )


def test_failed_upgrade_fails_as_not_applied_not_as_changed_by_hand(any_helm):
    any_helm.install()
    any_helm.settle(passed)
    upgrade = any_helm.helm(
        "upgrade", RELEASE, str(CHART), "-n", any_helm.namespace, "--set", "service.type=Bogus", check=False
    )
    assert upgrade.returncode != 0
    result = any_helm.look()
    assert (result.verdict, result.category) == (Verdict.FAIL, Category.PROVISIONING)
    assert lines(result) == [
        "revision 2 (failed): 1 of 8 rendered objects are not healthy or not as rendered (the revision is failed: "
        "what it rendered may never have been applied)",
        f"Service:{any_helm.namespace}/storefront-web: spec.type is ClusterIP live, the release rendered Bogus "
        "(revision 2 is failed: not applied)",
    ]


def test_no_release_fails(release):
    result = check_helm_resources(fresh(), HelmRef(release.namespace, "nothing-here"), Deadline.after(10))
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"no Helm release 'nothing-here' in namespace {release.namespace!r}",
    )


# --- through the suite: -m rollback after a rollback patched by hand -------------------------------------------------


def test_suite_rollback_run_catches_a_rollback_patched_by_hand(release, tmp_path):
    """Baseline (-m baseline), upgrade, helm rollback, kubectl set image; then `-m rollback`: the release record is
    the baseline's (restored passes), what runs is not (helm_resources fails)."""
    release.install()
    release.settle(passed)
    envs = tmp_path / "environments"
    envs.mkdir()
    environment = {
        "name": "hr",
        "budget": "2m",
        "clusters": {"dv-b": {"context": "kwok-dv-b", "kubeconfig": str(ROOT / ".testbed" / "kubeconfig.yaml")}},
        "components": [{"name": RELEASE, "kind": "helm", "cluster": "dv-b", "namespace": release.namespace}],
    }
    (envs / "hr.yaml").write_text(yaml.safe_dump(environment, sort_keys=False))

    def suite(reports: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, dict]]:
        command = [
            sys.executable,
            "-m",
            "pytest",
            "features",
            "--env",
            "hr",
            f"--env-dir={envs}",
            f"--reports-dir={tmp_path / reports}",
            f"--baseline={tmp_path / 'baseline-hr.json'}",
            "-p",
            "no:randomly",
            *args,
        ]
        variables = {**os.environ, "DV_HELM": str(kube_bin("helm"))}
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=variables
        )
        verdict = json.loads((tmp_path / reports / "verdict.json").read_text())
        return done, {t["check"]: t for t in verdict["tests"]}

    done, _ = suite("before", "-m", "baseline")
    assert done.returncode == 0, done.stdout[-3000:]
    release.upgrade("image.tag=2.0.0")
    release.helm("rollback", RELEASE, "1", "-n", release.namespace)
    release.rolled_out()
    release.kubectl("set", "image", "deployment/storefront-web", f"web={WEB}:2.0.1")
    release.rolled_out()
    done, tests = suite("after", "-m", "rollback")
    assert done.returncode == 1, done.stdout[-3000:]
    assert tests["rollback_restored"]["outcome"] == "pass", tests["rollback_restored"]["message"]
    assert tests["helm_resources"]["outcome"] == "fail"
    assert image_drift(release.namespace, f"{WEB}:2.0.1", f"{WEB}:1.0.0") in tests["helm_resources"]["message"]
