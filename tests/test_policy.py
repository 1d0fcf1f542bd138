"""Pre-deploy manifest policy end to end: the reviews chart (testbed/charts/reviews) rendered by the real helm with
per-variant values, validated against dv-a's own OpenAPI schema (CRDs included), judged by every rule, through the
built-in @policy scenario. One component per broken variant, each rule broken alone, verdict and message asserted;
the schema findings are cross-checked with the real API server (`kubectl apply --dry-run=server` refuses them too).
The rules' finer dimensions (effective requests, pod-level resources, Windows pods, selectors, autoscalers) are
judged on objects directly below."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_verify.checks.helm import HelmRevision
from deploy_verify.checks.helm_resources import parse_quantity as quantity
from deploy_verify.checks.policy import (
    RULES,
    ImageRule,
    PolicyInput,
    Silence,
    evaluate,
    judge,
)
from deploy_verify.checks.render import ChartFacts, Manifest, RenderFailed, read_folder
from deploy_verify.checks.result import Verdict
from testbed.kube import kube_bin

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "testbed" / "charts" / "reviews"
LOCAL_VALUES = ROOT / "environments" / "values" / "reviews.local.yaml"
CLUSTER = "dv-a"

# component -> values that break exactly one rule (helm merges them over the chart's; null deletes a key)
VARIANTS: dict[str, dict[str, Any]] = {
    "ok": {"certificate": {"enabled": True}},  # the CRD object too, valid
    "schema-type": {"replicas": "2"},
    "crd-field": {"certificate": {"enabled": True, "duration": 2160}},
    "no-resources": {"resources": None},
    "no-probes": {"probes": {"liveness": None}},
    "root": {"podSecurityContext": {"runAsNonRoot": None, "runAsUser": None}},
    "escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "admin": {"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
    "writable": {"securityContext": {"readOnlyRootFilesystem": False}},
    "latest": {"image": {"tag": "latest"}},
    "stale-image": {"image": {"tag": "3.0.9"}},
    "one-replica": {"replicas": 1},
    "no-budget": {"disruptionBudget": {"enabled": False}},
    "drain-blocked": {"disruptionBudget": {"minAvailable": "100%"}},
    "silenced": {"disruptionBudget": {"enabled": False}},
}


@pytest.fixture(scope="module")
def namespace(testbed_kube: Any) -> Iterator[str]:
    name = f"pol-{secrets.token_hex(3)}"
    testbed_kube.kubectl(CLUSTER, "create", "namespace", name)
    yield name
    testbed_kube.kubectl(CLUSTER, "delete", "namespace", name, "--wait=false", check=False)


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    kubeconfig = ROOT / ".testbed" / "kubeconfig.yaml"
    command = [str(kube_bin("helm")), "--kubeconfig", str(kubeconfig), "--kube-context", f"kwok-{CLUSTER}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def charts(namespace: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of the chart: `unbumped` and `bumped` are installed as released and then change a template (one
    without a version bump); `broken` has a template that does not render."""
    tmp = tmp_path_factory.mktemp("charts")
    made: dict[str, Path] = {}
    for name in ("unbumped", "bumped", "broken"):
        made[name] = tmp / name
        shutil.copytree(CHART, made[name])
    for name in ("unbumped", "bumped"):
        _helm("install", name, str(made[name]), "-n", namespace, "-f", str(LOCAL_VALUES))
        deployment = made[name] / "templates" / "deployment.yaml"
        deployment.write_text(
            deployment.read_text().replace("app.kubernetes.io/version:", "tier: web\n    app.kubernetes.io/version:")
        )
    chart_yaml = made["bumped"] / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("version: 0.3.0", "version: 0.3.1"))
    (made["broken"] / "templates" / "service.yaml").write_text("{{ .Values.service.port | required }}\n")
    return made


def _environment(namespace: str, values_dir: Path, charts: dict[str, Path], folder: Path, rules: str) -> str:
    components = []
    for name, values in VARIANTS.items():
        path = values_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        components.append(
            {"name": name, "chart": str(CHART), "values": [str(LOCAL_VALUES), str(path)]},
        )
    components += [{"name": name, "chart": str(path), "values": [str(LOCAL_VALUES)]} for name, path in charts.items()]
    entries = [{"kind": "helm", "cluster": CLUSTER, "namespace": namespace, **c} for c in components] + [
        {"name": "plain", "kind": "manifests", "cluster": CLUSTER, "namespace": namespace, "path": str(folder)}
    ]
    document = {
        "name": "local",
        "budget": "2m",
        "clusters": {CLUSTER: {"context": f"kwok-{CLUSTER}", "kubeconfig": str(ROOT / ".testbed/kubeconfig.yaml")}},
        "components": entries,
        "policy": {
            "rules": yaml.safe_load(rules) or {},
            "silence": [
                {"rule": "disruption-budget", "object": f"Deployment/{namespace}/silenced", "reason": "a batch API"}
            ],
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


def _release(names: list[str]) -> str:
    versions = {name: {"version": "3.1.0"} for name in names}
    versions["unbumped"] = {"version": "3.1.0", "chart": "0.3.0"}
    versions["bumped"] = {"version": "3.1.0", "chart": "0.3.0"}  # the manifest was not updated with the chart
    return yaml.safe_dump({"release": "test", "components": versions})


def _folder(tmp: Path) -> Path:
    """Plain manifests: a Deployment with a probe misspelled (readinesProbe), which the cluster's schema refuses."""
    folder = tmp / "manifests"
    folder.mkdir()
    rendered = subprocess.run(
        [str(kube_bin("helm")), "template", "plain", str(CHART), "--skip-tests", "-f", str(LOCAL_VALUES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    (folder / "app.yaml").write_text(rendered.replace("readinessProbe:", "readinesProbe:"))
    return folder


def _run(workdir: Path, text: str, release: str) -> dict[str, dict[str, str]]:
    """The built-in @policy scenario through pytest, in a directory of its own (as a team's repository runs it)."""
    (workdir / "environments" / "local.yaml").write_text(text)
    (workdir / "release.yaml").write_text(release)
    command = [sys.executable, "-m", "pytest", "features", "-m", "predeploy and policy", "--release", "release.yaml"]
    variables = {**os.environ, "DV_HELM": str(kube_bin("helm"))}
    done = subprocess.run(
        [*command, "-n", "2", "-p", "no:cacheprovider"],
        cwd=workdir,
        env=variables,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads((workdir / "reports" / "verdict.json").read_text())
    return {t["component"]: t for t in document["tests"]}


@pytest.fixture(scope="module")
def suite(charts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(values dir, manifests folder, the directory the suite runs in)."""
    tmp = tmp_path_factory.mktemp("policy")
    (tmp / "values").mkdir()
    workdir = tmp / "repo"
    (workdir / "features").mkdir(parents=True)
    (workdir / "environments").mkdir()
    shutil.copy(ROOT / "pyproject.toml", workdir)
    return tmp / "values", _folder(tmp), workdir


NAMES = [*VARIANTS, "unbumped", "bumped", "broken", "plain"]


@pytest.fixture(scope="module")
def results(suite: tuple[Path, Path, Path], namespace: str, charts: dict[str, Path]) -> dict[str, dict[str, str]]:
    values, folder, workdir = suite
    return _run(workdir, _environment(namespace, values, charts, folder, ""), _release(NAMES))


def _verdict(results: dict[str, dict[str, str]], name: str) -> tuple[str, str]:
    test = results[name]
    return test["outcome"], test["message"].split(": ", 1)[1]  # after "HelmChart:NS/NAME: "


def test_the_chart_passes_every_rule(results: dict[str, dict[str, str]], namespace: str) -> None:
    outcome, message = _verdict(results, "ok")
    assert outcome == "pass", message
    assert message.startswith("4 objects pass the manifest policy"), message  # the Certificate included
    assert results["ok"]["check"] == "manifest_policy"


@pytest.mark.parametrize(
    ("name", "rule", "detail"),
    [
        ("schema-type", "schema", 'spec.replicas: expected integer, got string "2"'),
        ("crd-field", "schema", "spec.duration: expected string, got integer 2160"),
        ("no-resources", "resources", "container reviews has no request cpu and no request memory and no limit memory"),
        ("no-probes", "probes", "container reviews has no livenessProbe"),
        ("root", "run-as-non-root", "container reviews may run as root"),
        ("escalation", "no-privilege-escalation", "container reviews allows privilege escalation"),
        ("admin", "not-privileged", "container reviews adds capability SYS_ADMIN"),
        ("latest", "image-pinned", "image registry.example.test/shop/reviews:latest is tagged latest"),
        (
            "stale-image",
            "image-pinned",
            "no image is the released tag 3.1.0 (the render uses registry.example.test/shop/reviews:3.0.9)",
        ),
        ("one-replica", "min-replicas", "has 1 replica: one pod, no redundancy while it restarts"),
        ("no-budget", "disruption-budget", "no PodDisruptionBudget selects its pods"),
        ("drain-blocked", "disruption-budget", "PodDisruptionBudget drain-blocked has minAvailable: 100%"),
        (
            "unbumped",
            "chart-version",
            "templates changed since revision 1 (templates/deployment.yaml) but the chart version is still 0.3.0",
        ),
        ("bumped", "chart-version", "Chart.yaml says version 0.3.1, the release manifest says 0.3.0"),
        ("plain", "schema", "spec.template.spec.containers[0].readinesProbe: unknown field"),
    ],
)
def test_each_broken_variant_fails_on_its_rule(
    results: dict[str, dict[str, str]], namespace: str, name: str, rule: str, detail: str
) -> None:
    outcome, message = _verdict(results, name)
    assert outcome == "fail", message
    assert results[name]["category"] == "Manifest policy"
    assert f"{rule}: " in message, message
    assert detail in message, message
    assert f"Fix: {rule}: {RULES[rule].fix}" in message, message
    # the misspelt probe leaves the container without one, and the probes rule says so too
    also = {"probes"} if name == "plain" else set()
    others = {r for r in RULES if r != rule and f"; {r}: " in message.split(". Fix:")[0]} - also
    assert not others, f"{name} broke more than {rule}: {message}"


def test_a_warning_is_shown_and_green_until_the_environment_blocks_on_it(
    results: dict[str, dict[str, str]], suite: tuple[Path, Path, Path], namespace: str, charts: dict[str, Path]
) -> None:
    outcome, message = _verdict(results, "writable")
    assert outcome == "pass", message
    assert "1 warning (read-only-root-filesystem: " in message, message
    assert "has a writable root filesystem" in message, message
    values, folder, workdir = suite
    blocking = _run(
        workdir,
        _environment(namespace, values, charts, folder, "{read-only-root-filesystem: block, min-replicas: off}"),
        _release(NAMES),
    )
    outcome, message = _verdict(blocking, "writable")
    assert outcome == "fail", message
    assert "read-only-root-filesystem: " in message, message
    assert _verdict(blocking, "one-replica")[0] == "pass"  # the rule is off


def test_a_silenced_finding_passes_and_says_so(results: dict[str, dict[str, str]]) -> None:
    outcome, message = _verdict(results, "silenced")
    assert outcome == "pass", message
    assert message.endswith("; 1 silenced"), message


def test_a_chart_that_does_not_render_fails_with_helms_words(results: dict[str, dict[str, str]]) -> None:
    outcome, message = _verdict(results, "broken")
    assert outcome == "fail", message
    assert message.startswith("does not render: helm template broken "), message
    assert "templates/service.yaml" in message, message


@pytest.mark.parametrize(
    ("values", "field"),
    [({"replicas": "2"}, "spec.replicas"), ({"certificate": {"enabled": True, "duration": 2160}}, "spec.duration")],
)
def test_the_api_server_refuses_what_the_schema_check_refuses(
    testbed_kube: Any, namespace: str, tmp_path: Path, values: dict[str, Any], field: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    rendered = _helm("template", "dry", str(CHART), "-n", namespace, "-f", str(LOCAL_VALUES), "-f", str(path)).stdout
    done = subprocess.run(
        [*testbed_kube.kubectl_command(CLUSTER), "apply", "--dry-run=server", "-n", namespace, "-f", "-"],
        input=rendered,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    assert field in done.stderr, done.stderr


# ------------------------------------------------------------------------------------------- the rules on objects


def _deployment(**pod: Any) -> Manifest:
    container = {
        "name": "app",
        "image": "reg/app:1.0",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
        "readinessProbe": {"tcpSocket": {"port": 80}},
        "livenessProbe": {"tcpSocket": {"port": 80}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
    }
    container.update(pod.pop("container", {}))
    spec = {"securityContext": {"runAsNonRoot": True}, "containers": [container], **pod}
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}}, "spec": spec},
        },
    }
    return Manifest(obj, "d.yaml")


PDB = Manifest(
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "app"}}},
    },
    "pdb.yaml",
)


def _rules(manifests: list[Manifest], **given: Any) -> set[tuple[str, str]]:
    levels = {"read-only-root-filesystem": "block"}
    return {(f.rule, f.detail) for f in evaluate(PolicyInput(manifests, **given), levels)}  # type: ignore[arg-type]


def test_a_well_formed_deployment_has_no_finding() -> None:
    assert _rules([_deployment(), PDB]) == set()


@pytest.mark.parametrize(
    ("container", "pod", "found"),
    [
        # a limit alone is the request too (the API server copies it)
        ({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}, {}, set()),
        ({"resources": {"requests": {"cpu": "1"}}}, {}, {"no request memory and no limit memory"}),
        ({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}, {}, {"no limit memory"}),
        # pod-level resources (PodLevelResources) cover the containers
        ({"resources": None}, {"resources": {"requests": {"cpu": "1"}, "limits": {"memory": "2Gi"}}}, set()),
        (
            {"resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
            {},
            {"requests 1500m cpu, more than its limit 1"},
        ),
    ],
)
def test_resources_read_effective_requests(container: dict[str, Any], pod: dict[str, Any], found: set[str]) -> None:
    details = {d for r, d in _rules([_deployment(container=container, **pod), PDB]) if r == "resources"}
    assert {any(f in d for d in details) for f in found} <= {True}
    assert len(details) == len(found), details


@pytest.mark.parametrize(
    ("pod", "container", "finding"),
    [
        ({"securityContext": {"runAsUser": 1000}}, {}, None),  # a non-zero user is enough
        ({"securityContext": {"runAsNonRoot": True}}, {"securityContext": {"runAsUser": 0}}, "runs as root"),
        ({"securityContext": {}}, {"securityContext": {"runAsNonRoot": True}}, None),  # the container's own
        ({"securityContext": {"runAsNonRoot": True}}, {"securityContext": {"runAsNonRoot": False}}, "may run as root"),
    ],
)
def test_run_as_non_root_takes_the_container_over_the_pod(
    pod: dict[str, Any], container: dict[str, Any], finding: str | None
) -> None:
    base = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
    container = {"securityContext": {**base, **container.get("securityContext", {})}}
    details = [d for r, d in _rules([_deployment(container=container, **pod), PDB]) if r == "run-as-non-root"]
    if finding is None:
        assert details == []
    else:
        assert len(details) == 1, details
        assert finding in details[0]


def test_windows_pods_skip_the_linux_only_rules() -> None:
    container: dict[str, Any] = {"securityContext": {}}
    windows = _deployment(container=container, securityContext={}, os={"name": "windows"})
    assert {r for r, _ in _rules([windows, PDB])} == set()
    linux = _deployment(container=container, securityContext={})
    assert {r for r, _ in _rules([linux, PDB])} == {
        "run-as-non-root",
        "no-privilege-escalation",
        "read-only-root-filesystem",
    }


def test_jobs_need_no_probes_nor_replicas_and_init_containers_no_probes() -> None:
    deployment = _deployment(
        initContainers=[
            {
                **_deployment().obj["spec"]["template"]["spec"]["containers"][0],
                "name": "migrate",
                "readinessProbe": None,
                "livenessProbe": None,
            }
        ]
    )
    job = Manifest({**deployment.obj, "kind": "Job", "apiVersion": "batch/v1"}, "j.yaml")
    job.obj["spec"] = {"template": deployment.obj["spec"]["template"]}
    assert _rules([deployment, PDB, job]) == set()


@pytest.mark.parametrize(
    ("selector", "budget", "finding"),
    [
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["app", "x"]}]}, {"maxUnavailable": 1}, None),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["app"]}]},
            {"maxUnavailable": 1},
            "no PodDisruptionBudget",
        ),
        ({}, {"maxUnavailable": "25%"}, None),  # policy/v1: an empty selector selects every pod of the namespace
        (None, {"maxUnavailable": 1}, "no PodDisruptionBudget"),  # an absent one none
        ({"matchLabels": {"app": "app"}}, {"maxUnavailable": 0}, "has maxUnavailable: 0"),
        ({"matchLabels": {"app": "app"}}, {"minAvailable": 2}, "has minAvailable: 2 with 2 replicas"),
        ({"matchLabels": {"app": "app"}}, {"minAvailable": 1}, None),
    ],
)
def test_disruption_budgets_select_and_allow_an_eviction(
    selector: dict[str, Any] | None, budget: dict[str, Any], finding: str | None
) -> None:
    spec = {**budget, **({"selector": selector} if selector is not None else {})}
    pdb = Manifest({**PDB.obj, "spec": spec}, "pdb.yaml")
    details = [d for r, d in _rules([_deployment(), pdb]) if r == "disruption-budget"]
    assert (details == []) if finding is None else (len(details) == 1 and finding in details[0]), details


def test_a_budget_already_on_the_cluster_counts_and_a_rendered_one_replaces_it() -> None:
    live = {**PDB.obj, "kind": "PodDisruptionBudget"}
    assert _rules([_deployment()], live=[live]) == set()
    rendered = Manifest({**PDB.obj, "spec": {**PDB.obj["spec"], "maxUnavailable": 0}}, "pdb.yaml")
    assert {r for r, _ in _rules([_deployment(), rendered], live=[live])} == {"disruption-budget"}


def test_an_autoscaler_minimum_stands_for_replicas() -> None:
    one = _deployment()
    one.obj["spec"].pop("replicas")  # absent: 1, the API server's default
    hpa: dict[str, Any] = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "app"}, "minReplicas": 3, "maxReplicas": 6},
    }
    assert _rules([one, PDB]) == {("min-replicas", "has 1 replica: one pod, no redundancy while it restarts")}
    assert _rules([one, PDB], live=[hpa]) == set()
    hpa["spec"].pop("minReplicas")
    assert {d for _, d in _rules([one, PDB], live=[hpa])} == {
        "its autoscaler's minReplicas is 1: one pod, no redundancy while it restarts"
    }


@pytest.mark.parametrize(
    ("images", "rule", "found"),
    [
        (["reg/app@sha256:" + "a" * 64], ImageRule(digest="sha256:" + "a" * 64), set()),
        (["reg/app"], None, {"image reg/app has no tag, so it runs whatever latest is"}),
        (["reg/app:2.0", "reg/sidecar:9"], ImageRule(version="2.0"), set()),
        (["reg/app:2.0", "reg/app:1.9"], ImageRule(version="2.0"), {"image reg/app:1.9, but the release is tag 2.0"}),
        (["reg/app:1.9"], ImageRule(image="reg/app:2.0"), {"no image is the released reg/app:2.0"}),
    ],
)
def test_images_are_pinned_to_the_release(images: list[str], rule: ImageRule | None, found: set[str]) -> None:
    manifests = []
    for i, image in enumerate(images):
        m = _deployment(container={"image": image})
        m.obj["metadata"] = {"name": f"app{i}", "namespace": "ns"}
        manifests.append(m)
    pdbs = [Manifest({**PDB.obj, "metadata": {"name": f"p{i}", "namespace": "ns"}}, "p") for i in range(len(images))]
    details = {d for r, d in _rules(manifests + pdbs, images=rule) if r == "image-pinned"}
    assert all(any(f in d for d in details) for f in found), details
    assert len(details) == len(found), details


def test_chart_version_only_where_a_release_of_the_same_version_differs() -> None:
    deployed = HelmRevision(3, "deployed", "", "reviews", "0.3.0", "3.1.0", "", {}, "", (("templates/a.yaml", "1"),))
    same = ChartFacts("0.3.0", (("templates/a.yaml", "1"),), deployed)
    assert _rules([_deployment(), PDB], chart=same) == set()
    changed = ChartFacts("0.3.0", (("templates/a.yaml", "2"), ("templates/b.yaml", "3")), deployed)
    assert _rules([_deployment(), PDB], chart=changed) == {
        (
            "chart-version",
            "templates changed since revision 3 (templates/a.yaml, templates/b.yaml) but the chart version is still "
            "0.3.0",
        )
    }
    assert _rules([_deployment(), PDB], chart=ChartFacts("0.4.0", changed.templates, deployed)) == set()
    assert _rules([_deployment(), PDB], chart=ChartFacts("0.3.0", changed.templates, None)) == set()  # first install


def test_silences_by_environment_glob_and_by_annotation() -> None:
    bare = _deployment()
    bare.obj["metadata"]["annotations"] = {"deploy-verify.io/silence.min-replicas": "a singleton scheduler"}
    bare.obj["spec"]["replicas"] = 1
    findings = evaluate(PolicyInput([bare]), {}, [Silence("disruption-budget", "Deployment/ns/*", "batch tier")])
    assert {(f.rule, f.silenced) for f in findings} == {
        ("min-replicas", "a singleton scheduler (annotation)"),
        ("disruption-budget", "batch tier"),
    }
    result = judge("manifest_policy", "HelmChart:ns/app", findings, 1)
    assert result.verdict is Verdict.PASS
    assert result.message == "1 object pass the manifest policy; 2 silenced"
    evidence = json.loads(result.evidence[0].content)
    assert {f["silenced"] for f in evidence["findings"]} == {"a singleton scheduler (annotation)", "batch tier"}


def test_a_failure_names_at_most_five_findings_and_the_fixes() -> None:
    manifests = []
    for i in range(7):
        m = _deployment(container={"image": "reg/app:latest"})
        m.obj["metadata"] = {"name": f"app{i}", "namespace": "ns"}
        manifests.append(m)
    result = judge("manifest_policy", "x", evaluate(PolicyInput(manifests), {"disruption-budget": "off"}), 7)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("7 findings block the deploy: image-pinned: Deployment/ns/app0 (d.yaml) ")
    assert "; and 2 more. Fix: image-pinned: tag every image with the released version" in result.message


def test_quantities_compare_as_numbers() -> None:
    assert quantity("500m") == quantity("0.5")
    assert quantity("1Gi") == 1024**3
    assert quantity("1e3") == 1000
    assert quantity("1 core") is None


def test_a_folder_reads_every_document_and_lists(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "kind: ConfigMap\nmetadata: {name: a}\n---\n---\nkind: List\nitems:\n- {kind: Secret, metadata: {name: s}}\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text('{"kind": "Service", "metadata": {"name": "b", "namespace": "other"}}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    found = [(m.ident, m.source) for m in read_folder(str(tmp_path), "ns")]
    assert found == [("ConfigMap/ns/a", "a.yaml#1"), ("Secret/ns/s", "a.yaml#2"), ("Service/other/b", "sub/b.json#1")]
    (tmp_path / "c.yml").write_text("- just a list\n")
    with pytest.raises(RenderFailed, match=r"c.yml#1 is not a Kubernetes object \(a list, not a mapping\)"):
        read_folder(str(tmp_path), "ns")


def test_helm_is_the_pinned_binary() -> None:
    assert os.access(kube_bin("helm"), os.X_OK), "run testbed/kube/build.sh (make tools)"


def test_a_wrong_value_that_may_be_a_secret_is_shown_by_its_type_only(testbed_kube: Any) -> None:
    from deploy_verify.checks.deadline import Deadline
    from deploy_verify.checks.schema import ClusterSchema
    from deploy_verify.checks.transports.kube import KubeReader

    reader = KubeReader.from_kubeconfig(CLUSTER, f"kwok-{CLUSTER}", str(ROOT / ".testbed" / "kubeconfig.yaml"))
    deployment = _deployment(container={"env": [{"name": "DB_PASSWORD", "value": 8675309}], "image": "r/a:1"})
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"PORT": 8080}}
    problems = ClusterSchema(reader).problems(deployment.obj, Deadline.after(30))
    problems += ClusterSchema(reader).problems(config, Deadline.after(30))
    assert problems == [
        "spec.template.spec.containers[0].env[0].value: expected string, got integer",
        "data.PORT: expected string, got integer",
    ]
    assert not [p for p in problems if "8675309" in p or "8080" in p]


def test_a_key_given_twice_is_a_schema_finding_though_kubectl_keeps_the_last(
    testbed_kube: Any, namespace: str, tmp_path: Path
) -> None:
    """PyYAML, kubectl and helm all keep the last of two equal keys without a word: the first value is lost."""
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: twice\n  labels: {app: a}\n  labels: {app: b}\n"
    (tmp_path / "cm.yaml").write_text(
        text + "---\n" + text.replace("twice", "once").replace("  labels: {app: b}\n", "")
    )
    manifests = read_folder(str(tmp_path), namespace)
    said = (
        "key 'labels' is given twice (line 6 of the document): the last one is applied and the first silently lost "
        "(kubeconform -strict refuses such a document)"
    )
    assert [m.parse_problems for m in manifests] == [(said,), ()]
    assert [(f.rule, f.detail) for f in evaluate(PolicyInput(manifests), {})] == [("schema", said)]
    create = ["create", "--dry-run=server", "-n", namespace, "-f", "-", "-o", "jsonpath={.metadata.labels.app}"]
    done = subprocess.run(
        [*testbed_kube.kubectl_command(CLUSTER), *create],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == "b"  # the API server was given the last value only: app=a is gone
