"""The `resource` component kind end to end: an environment file naming objects of any kind on the testbed's cluster
dv-b, the built-in @resource scenario run through pytest, verdicts and messages in the summary and verdict.json.
The objects are made-up CRDs' (tests.test_status_rules) in a namespace of the test's own, their status written as
their controller would."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kube_world import CLUSTER, World
from tests.test_status_rules import WIDGET, apply_crds, condition, custom

ROOT = Path(__file__).resolve().parent.parent

ENVIRONMENT = """\
name: local
budget: 1m
defaults:
  kubernetes: {{grace: 1s, rollout_timeout: 10s}}
clusters:
  dv-b: {{context: kwok-dv-b, kubeconfig: {kubeconfig}}}
components:
  - {{name: healthy, kind: resource, cluster: dv-b, namespace: {ns}, api_version: {widget}, resource_kind: Widget}}
  - name: broken
    kind: resource
    cluster: dv-b
    namespace: {ns}
    api_version: {widget}
    resource_kind: Widget
    resource: refused
  - {{name: sprocket, kind: resource, cluster: dv-b, namespace: {ns}, api_version: {widget}, resource_kind: Sprocket}}
  - {{name: gizmo, kind: resource, cluster: dv-b, namespace: {ns}, api_version: {widget}, resource_kind: Gadget}}
  - {{name: settings, kind: resource, cluster: dv-b, namespace: {ns}, api_version: v1, resource_kind: ConfigMap}}
"""


@pytest.fixture(scope="module")
def objects(testbed_kube: Any) -> Iterator[World]:
    apply_crds(testbed_kube)
    world = World(testbed_kube, f"wrk-{secrets.token_hex(3)}")
    testbed_kube.kubectl(CLUSTER, "create", "namespace", world.namespace)
    try:
        world.apply(
            custom("Widget", "healthy"),
            custom("Widget", "refused"),
            custom("Gadget", "gizmo"),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}},
        )
        world.write_status("widget", "healthy", {"conditions": [condition("Ready", "True", "Succeeded")]})
        refused = condition("Ready", "False", "CredentialsRejected", "the token was refused")
        world.write_status("widget", "refused", {"conditions": [refused]})
        yield world
    finally:
        testbed_kube.kubectl(CLUSTER, "delete", "namespace", world.namespace, "--wait=false", check=False)


@pytest.fixture
def suite(pytester: pytest.Pytester, objects: World) -> pytest.Pytester:
    shutil.copy(ROOT / "pyproject.toml", pytester.path)
    (pytester.path / "features").mkdir()
    (pytester.path / "environments").mkdir()
    text = ENVIRONMENT.format(kubeconfig=ROOT / ".testbed" / "kubeconfig.yaml", ns=objects.namespace, widget=WIDGET)
    (pytester.path / "environments" / "local.yaml").write_text(text)
    return pytester


def test_resource_components_pass_fail_and_error(suite: pytest.Pytester, objects: World) -> None:
    result = suite.runpytest("features", "-m", "resource")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1, errors=2)
    ns = objects.namespace
    result.stdout.fnmatch_lines_random(
        [
            "healthy * PASS * resource_status",
            "settings * PASS * resource_status",
            f"broken * FAIL * resource_status: Widget:{ns}/refused: condition Ready is False (CredentialsRejected: "
            "the token was refused)*",
            f"sprocket * ERROR * resource_status: Sprocket:{ns}/sprocket: cluster dv-b serves no kind Sprocket in "
            "states.dv.test/v1 (it serves *Gadget, Widget*)",
            f"gizmo * ERROR * resource_status: Gadget:{ns}/gizmo: publishes no status the suite can judge: the Gadget "
            "has no status at all; the suite cannot tell whether it is healthy: check it another way, or leave it out",
        ]
    )
    document = json.loads((suite.path / "reports" / "verdict.json").read_text())
    rows = {t["component"]: (t["check"], t["outcome"], t["category"]) for t in document["tests"]}
    assert rows == {
        "healthy": ("resource_status", "pass", ""),
        "settings": ("resource_status", "pass", ""),
        "broken": ("resource_status", "fail", "Provisioning"),
        "sprocket": ("resource_status", "error", "Could not decide"),
        "gizmo": ("resource_status", "error", "Could not decide"),
    }


def test_a_resource_component_needs_its_api_version_and_kind(suite: pytest.Pytester) -> None:
    env = suite.path / "environments" / "local.yaml"
    env.write_text(
        "name: local\nclusters:\n  dv-b: {context: kwok-dv-b}\ncomponents:\n"
        "  - {name: x, kind: resource, cluster: dv-b, namespace: default}\n"
        "  - {name: y, kind: deployment, cluster: dv-b, namespace: default, resource_kind: Rollout}\n"
    )
    result = suite.runpytest("features", "-m", "resource")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines_random(
        [
            "*components[[]0[]]*missing required key 'api_version' for kind resource (e.g. argoproj.io/v1alpha1)*",
            "*components[[]0[]]*missing required key 'resource_kind' for kind resource (e.g. Rollout)*",
            "*components[[]1[]]*only kind resource reads resource_kind; this component is a deployment*",
        ]
    )
