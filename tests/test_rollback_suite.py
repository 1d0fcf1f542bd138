"""The rollback workflow as an operator runs it, end to end through the suite: record a baseline (-m predeploy),
deploy, roll back part of it (-m restored is red and says what was not restored), refuse the drill without
--allow-mutations and always on a protected environment, then let the drill roll everything back (green).

Everything runs against its own namespace on dv-b, its own Helm release (helm v4) and its own ARM test server, so the
testbed's demo state is never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testbed.arm import ArmServer
from testbed.arm_state import SUBSCRIPTION, local_state
from testbed.helm import CHART, Helm
from testbed.kube import kube_bin

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "registry.example.test/shop/{}:{}"

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      tolerations: [{{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}}]
      containers: [{{name: {name}, image: "{image}"}}]
"""


def environment(name: str, namespace: str, arm: ArmServer, bundle: str, protected: bool = False) -> dict:
    return {
        "name": name,
        "protected": protected,
        "budget": "2m",
        "defaults": {"kubernetes": {"grace": "3s", "rollout_timeout": "60s"}},
        "clusters": {"dv-b": {"context": "kwok-dv-b", "kubeconfig": str(ROOT / ".testbed" / "kubeconfig.yaml")}},
        "azure": {
            "arm_endpoint": arm.url,
            "ca_bundle": bundle,
            "credential": "token-env",
            "token_env": "DV_ARM_TOKEN",
            "subscriptions": {"demo": {"subscription_id": SUBSCRIPTION}},
        },
        "components": [
            {"name": "web-a", "kind": "deployment", "cluster": "dv-b", "namespace": namespace},
            {"name": "web-b", "kind": "deployment", "cluster": "dv-b", "namespace": namespace},
            {"name": "cat", "kind": "helm", "cluster": "dv-b", "namespace": namespace},
            {"name": "pricing", "kind": "containerapp", "subscription": "demo", "resource_group": "rg-demo"},
        ],
    }


@pytest.fixture(scope="module")
def world(testbed, testbed_kube, pki, tmp_path_factory):
    """A namespace with two Deployments and a Helm release, an ARM server with the 80/20 pricing app, and two
    environment files over them: `drill` and the protected `drill-prod`."""
    chain, key, bundle = pki
    namespace = f"rbs-{secrets.token_hex(3)}"
    kubectl = [*testbed_kube.kubectl_command("dv-b"), "-n", namespace]
    testbed_kube.kubectl("dv-b", "create", "namespace", namespace)
    arm = ArmServer(0, chain, key, local_state(), os.environ["DV_ARM_TOKEN"])
    arm.start()
    for name in ("web-a", "web-b"):
        manifest = DEPLOYMENT.format(name=name, ns=namespace, image=IMAGE.format(name, "1.0.0"))
        subprocess.run([*kubectl, "apply", "-f", "-"], input=manifest, text=True, check=True, capture_output=True)
    helm = Helm.for_testbed("helm", "dv-b")
    helm("install", "cat", str(CHART), "-n", namespace)
    folder = tmp_path_factory.mktemp("rollback-suite")
    envs = folder / "environments"
    envs.mkdir()
    for name, protected in (("drill", False), ("drill-prod", True)):
        document = environment(name, namespace, arm, bundle, protected)
        (envs / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    yield {"namespace": namespace, "kubectl": kubectl, "helm": helm, "arm": arm, "envs": envs, "folder": folder}
    arm.stop()
    testbed_kube.kubectl("dv-b", "delete", "namespace", namespace, "--wait=false")


def suite(world, reports: Path, *args: str, env: str = "drill") -> tuple[subprocess.CompletedProcess[str], dict]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "features",
        "--env",
        env,
        f"--env-dir={world['envs']}",
        f"--reports-dir={reports}",
        f"--baseline={world['folder'] / 'baseline-drill.json'}",
        "-n",
        "2",
        *args,
    ]
    variables = {**os.environ, "DV_HELM": str(kube_bin("helm"))}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=variables)
    verdict = json.loads((reports / "verdict.json").read_text())
    return done, {t["component"]: t for t in verdict["tests"]}


def rollout(world, *names: str) -> None:
    for name in names:
        subprocess.run([*world["kubectl"], "rollout", "status", f"deployment/{name}", "--timeout=60s"], check=True)


def test_rollback_workflow(world, tmp_path):
    # 1. Before the deploy: record what runs.
    rollout(world, "web-a", "web-b")
    done, tests = suite(world, tmp_path / "predeploy", "-m", "baseline")
    assert done.returncode == 0, done.stdout[-3000:]
    baseline_file = world["folder"] / "baseline-drill.json"
    assert f"baseline of 4 components written to {baseline_file}" in done.stdout
    recorded = json.loads(baseline_file.read_text())
    assert sorted(recorded["components"]) == ["cat", "pricing", "web-a", "web-b"]
    assert recorded["components"]["pricing"]["traffic"] == {"pricing--v12": 80, "pricing--v11": 20}

    # 2. The deploy: new images, a Helm upgrade with other values, all traffic on the new Container App revision.
    for name in ("web-a", "web-b"):
        subprocess.run(
            [*world["kubectl"], "set", "image", f"deployment/{name}", f"{name}={IMAGE.format(name, '2.0.0')}"],
            check=True,
            capture_output=True,
        )
    world["helm"]("upgrade", "cat", str(CHART), "-n", world["namespace"], "--set", "replicas=3")
    arm = world["arm"]
    state = arm.state()
    app_id = next(k for k in state["resources"] if k.endswith("/containerapps/pricing"))
    state["resources"][app_id]["properties"]["configuration"]["ingress"]["traffic"] = [
        {"revisionName": "pricing--v12", "weight": 100}
    ]
    arm.set_state(state)
    rollout(world, "web-a", "web-b")

    # 3. A partial rollback: only web-a is undone. The gate is red and says what was not restored.
    subprocess.run([*world["kubectl"], "rollout", "undo", "deployment/web-a"], check=True, capture_output=True)
    rollout(world, "web-a")
    done, tests = suite(world, tmp_path / "partial", "-m", "restored")
    assert done.returncode == 1, done.stdout[-3000:]
    assert tests["web-a"]["outcome"] == "pass"
    assert tests["web-b"]["outcome"] == "fail"
    assert (
        f"image web-b: baseline {IMAGE.format('web-b', '1.0.0')}, now {IMAGE.format('web-b', '2.0.0')}"
        in tests["web-b"]["message"]
    )
    assert tests["cat"]["outcome"] == "fail"
    assert "manifest lines changed: -  replicas: 2 | +  replicas: 3" in tests["cat"]["message"]
    assert tests["pricing"]["outcome"] == "fail"
    assert "traffic: baseline 80% pricing--v12, 20% pricing--v11, now 100% pricing--v12" in tests["pricing"]["message"]

    # 4. The drill is refused without --allow-mutations ...
    done, tests = suite(world, tmp_path / "refused", "-m", "drill")
    assert done.returncode == 1
    assert {t["outcome"] for t in tests.values()} == {"error"}
    assert tests["web-b"]["message"] == (
        "refused: this scenario changes environment 'drill' (@mutating); pass --allow-mutations to run it, or "
        "select -m 'not mutating'"
    )

    # 5. ... and always on a protected environment, whatever the flag says.
    done, tests = suite(world, tmp_path / "protected", "-m", "drill", "--allow-mutations", env="drill-prod")
    assert done.returncode == 1
    assert {t["outcome"] for t in tests.values()} == {"error"}
    assert tests["web-b"]["message"] == (
        "refused: environment 'drill-prod' is protected; @mutating scenarios never run against it, whatever "
        "--allow-mutations says"
    )

    # 6. The drill rolls everything back to the baseline and verifies it: green.
    done, tests = suite(world, tmp_path / "drill", "-m", "drill", "--allow-mutations")
    assert done.returncode == 0, done.stdout[-4000:]
    assert "already runs the baseline template" in tests["web-a"]["message"]
    assert "pod template of ReplicaSet web-b-" in tests["web-b"]["message"]
    assert "helm rollback to revision 1" in tests["cat"]["message"]
    assert "traffic switched back to 20% pricing--v11, 80% pricing--v12" in tests["pricing"]["message"]

    # 7. And a plain read-only rollback verification agrees.
    done, tests = suite(world, tmp_path / "after", "-m", "restored")
    assert done.returncode == 0, done.stdout[-3000:]
    assert {t["outcome"] for t in tests.values()} == {"pass"}
