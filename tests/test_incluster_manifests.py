"""deploy/incluster/ and deploy/image/: the suite as an Argo CD PostSync Job and an Argo Workflows template.

The manifests go through the testbed's real kube-apiserver with a server-side dry-run (the WorkflowTemplate against
the full-schema CRD of the pinned Argo Workflows), a broken copy of each is rejected (so the dry-run validates), the
Job's identity is the read-only deploy-verify account, and the suite accepts the exact command line the Job and the
Workflow give it, run in a copy of the image's working directory with the package installed. No Docker engine
exists here, so the Containerfile is checked by reading it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.kube import kube_bin

ROOT = Path(__file__).resolve().parent.parent
INCLUSTER = ROOT / "deploy" / "incluster"
CONTAINERFILE = ROOT / "deploy" / "image" / "Containerfile"
IGNOREFILE = ROOT / "deploy" / "image" / "Containerfile.dockerignore"
CLUSTER = "dv-a"
NAMESPACE = "deploy-verify"
SUITE_ACCOUNT = "system:serviceaccount:deploy-verify:deploy-verify"
MANIFESTS = (
    "environment-configmap.yaml",
    "argocd-postsync-job.yaml",
    "argo-executor-rbac.yaml",
    "argo-workflowtemplate.yaml",
)
ENTRYPOINT = ["python", "-m", "pytest", "--reports-dir=/reports"]
SOURCE = "/tmp/src/"  # where the Containerfile puts what it builds the package from
WORKFLOW_CRD = "argoproj.io_workflowtemplates.yaml"


def versions() -> dict[str, str]:
    text = (ROOT / "testbed" / "kube" / "versions.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((INCLUSTER / name).read_text()) if d]


def one(name: str) -> dict[str, Any]:
    (document,) = documents(name)
    return document


# --- the Containerfile, read --------------------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, "the Containerfile ends inside a continued line"
    return result


def values(keyword: str) -> list[str]:
    return [rest for word, rest in instructions() if word == keyword]


def copies() -> list[tuple[str, str]]:
    """(source, destination) of every COPY, one pair per source."""
    pairs: list[tuple[str, str]] = []
    for rest in values("COPY"):
        parts = rest.split()
        assert not parts[0].startswith("--from"), rest  # one stage, everything comes from the repository
        *sources, destination = parts
        assert len(sources) == 1 or destination.endswith("/"), rest
        for source in sources:
            # A file into a folder keeps its name; a folder's contents go into the destination folder itself.
            into = destination.endswith("/") and not source.endswith("/")
            pairs.append((source, destination + Path(source).name if into else destination))
    return pairs


def copied_sources() -> list[str]:
    return [source for source, _ in copies()]


def test_containerfile_base_image_is_python_311_or_newer_pinned_by_tag():
    (base,) = values("FROM")
    match = re.fullmatch(
        r"(?:docker\.io/library/)?python:(3)\.(\d+)\.(\d+)-slim(?:-\w+)?(?:@sha256:[0-9a-f]{64})?", base
    )
    assert match, f"expected a pinned slim Python tag like python:3.13.9-slim-trixie, got {base!r}"
    assert int(match.group(2)) >= 11


def test_containerfile_copies_the_package_source_and_the_working_directory_and_nothing_else():
    pairs = copies()
    for source, _ in pairs:
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    built = {source.rstrip("/") for source, destination in pairs if destination.startswith(SOURCE)}
    assert built == {"requirements.lock", "pyproject.toml", "README.md", "deploy_verify", "checks", "steps", "features"}
    workdir = {source: destination for source, destination in pairs if not destination.startswith("/")}
    assert workdir == {
        "deploy/image/pytest.ini": "pytest.ini",
        "environments/example-prod.yaml": "environments/example-prod.yaml",
    }
    top = {source.rstrip("/").split("/")[0] for source, _ in pairs}
    assert not top & {"testbed", "tests", "bench", "scripts", ".testbed", ".venv", "reports", "conftest.py"}


def test_containerfile_copies_what_the_package_is_built_from():
    """Every package pyproject.toml lists, its package data (README included) and every local module it imports is in
    /tmp/src; the symlinked subpackages land beside deploy_verify/ there, as in the repository, so they resolve."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())
    destinations = {source.rstrip("/"): destination.rstrip("/") for source, destination in copies()}
    for package in tool["tool"]["setuptools"]["packages"]:
        folder = ROOT / package.replace(".", "/")
        real = folder.resolve().relative_to(ROOT)  # deploy_verify/checks/transports -> checks/transports
        assert real.parts[0] in destinations, f"{package}: {real.parts[0]}/ is not copied"
        if folder.is_symlink():  # deploy_verify/checks -> ../checks, followed inside the image
            link = Path(destinations["deploy_verify"], *folder.relative_to(ROOT / "deploy_verify").parent.parts)
            assert os.path.normpath(link / folder.readlink()) == destinations[str(real)], package
    readme = tool["project"]["readme"]
    assert destinations[readme] == SOURCE + readme  # setuptools reads it for the metadata
    local = {p.stem for p in ROOT.iterdir() if (p.is_dir() and not p.name.startswith(".")) or p.suffix == ".py"}
    imported: set[str] = set()
    for path in (f for d in ("deploy_verify", "checks", "steps", "features") for f in (ROOT / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    imported |= {entry.split(".")[0] for entry in tool["project"]["entry-points"]["pytest11"].values()}
    needed = imported & local
    assert needed == {"deploy_verify"}, f"the package imports local modules outside it: {sorted(needed)}"


def test_containerfile_installs_the_locked_versions_without_a_cache_then_the_package_without_dependencies():
    dependencies, package = (run for run in values("RUN") if "pip install" in run)
    assert "pip install --no-cache-dir --only-binary=:all: -r /tmp/requirements.txt setuptools" in dependencies
    assert "-c /tmp/src/requirements.lock" in dependencies  # every package, direct or transitive, at the locked version
    assert f"pip install --no-cache-dir --no-deps --no-build-isolation {SOURCE.rstrip('/')}" in package
    assert f"rm -rf {SOURCE.rstrip('/')}" in package  # the installed package is what runs, not a copy of the source
    lock = {
        re.split(r"[=<>!~ ]", line)[0].lower().replace("_", "-")
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[=<>!~\[ ;]", requirement)[0].lower().replace("_", "-")
        assert name in lock, f"{name} (pyproject.toml) is not pinned in requirements.lock"


def test_containerfile_runs_as_non_root_with_an_exec_form_entrypoint():
    keywords = [word for word, _ in instructions()]
    assert values("WORKDIR") == ["/opt/deploy-verify"]
    user = values("USER")[-1]
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: numeric, so runAsNonRoot can be checked"
    assert int(user.split(":")[0]) != 0
    assert keywords.index("USER") > max(i for i, word in enumerate(keywords) if word == "RUN")
    (entrypoint,) = values("ENTRYPOINT")
    assert json.loads(entrypoint) == ENTRYPOINT  # exec form: `docker run IMAGE --env prod -m postdeploy` appends
    assert "CMD" not in keywords


def test_ignore_file_keeps_exactly_what_is_copied():
    lines = [line.strip() for line in IGNOREFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert kept == {s.rstrip("/") for s in copied_sources()}
    assert (ROOT / "deploy_verify" / "checks").is_symlink()  # copied as a link: its target must be in the context too


# --- the manifests, read ------------------------------------------------------------------------------------------


def job_container() -> dict[str, Any]:
    (container,) = one("argocd-postsync-job.yaml")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def workflow_container() -> dict[str, Any]:
    templates = {t["name"]: t for t in one("argo-workflowtemplate.yaml")["spec"]["templates"]}
    return dict(templates["suite"]["container"])


def test_job_is_an_argocd_postsync_hook_that_fails_the_sync_on_a_red_gate():
    job = one("argocd-postsync-job.yaml")
    assert (job["apiVersion"], job["kind"], job["metadata"]["namespace"]) == ("batch/v1", "Job", NAMESPACE)
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PostSync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0  # the first red run fails the Job, and with it the sync
    assert spec["ttlSecondsAfterFinished"] >= 3600  # a short TTL can delete the Job before Argo CD sees it finish
    pod = spec["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("deploy-verify", True)
    assert pod["restartPolicy"] == "Never"


def test_job_deadline_leaves_room_for_the_environment_budget():
    from deploy_verify.durations import parse_duration

    configmap = documents("environment-configmap.yaml")[0]
    budgets = [parse_duration(yaml.safe_load(text)["budget"]) for text in configmap["data"].values()]
    assert one("argocd-postsync-job.yaml")["spec"]["activeDeadlineSeconds"] >= max(budgets) + 120
    assert one("argo-workflowtemplate.yaml")["spec"]["activeDeadlineSeconds"] >= max(budgets) + 120


def test_job_and_workflow_run_the_image_read_only_as_its_non_root_user():
    image_user = int(values("USER")[-1].split(":")[0])
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    pods = [
        one("argocd-postsync-job.yaml")["spec"]["template"]["spec"]["securityContext"],
        one("argo-workflowtemplate.yaml")["spec"]["securityContext"],
    ]
    for pod, container in zip(pods, (job_container(), workflow_container()), strict=True):
        assert (pod["runAsNonRoot"], pod["runAsUser"]) == (True, image_user)
        assert container["image"].endswith(f"/deploy-verify:{version}")
        context = container["securityContext"]
        assert (context["readOnlyRootFilesystem"], context["allowPrivilegeEscalation"]) == (True, False)
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert {"/reports", "/tmp", "/config/environments"} <= set(mounts)
    assert job_container()["image"] == workflow_container()["image"]
    assert workflow_container()["command"] == ENTRYPOINT  # emissary would otherwise look it up in the registry
    assert workflow_container()["workingDir"] == values("WORKDIR")[0]  # where the image's pytest.ini is
    assert "command" not in job_container()  # the image's ENTRYPOINT
    for manifest in (
        one("argocd-postsync-job.yaml")["spec"]["template"]["spec"],
        one("argo-workflowtemplate.yaml")["spec"],
    ):
        kinds = {v["name"]: next(k for k in v if k != "name") for v in manifest["volumes"]}
        assert kinds["reports"] == kinds["tmp"] == "emptyDir"
        assert manifest["volumes"][0]["configMap"]["name"] == "deploy-verify-environments"


def test_workflow_template_takes_env_markers_and_release():
    spec = one("argo-workflowtemplate.yaml")["spec"]
    parameters = {p["name"]: p for p in spec["arguments"]["parameters"]}
    assert set(parameters) == {"env", "markers", "release"}
    assert (parameters["env"]["value"], parameters["markers"]["value"]) == ("prod", "postdeploy")
    assert "value" not in parameters["release"]  # required: the expected versions are never guessed
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == ("deploy-verify", True)
    assert spec["executor"]["serviceAccountName"] == "deploy-verify-executor"


def materialize(root: Path) -> Path:
    """The two ConfigMaps as the pods see them under /config; returns that folder."""
    config = root / "config"
    environments, release = documents("environment-configmap.yaml")
    for folder, configmap in (("environments", environments), ("release", release)):
        (config / folder).mkdir(parents=True)
        for key, text in configmap["data"].items():
            (config / folder / key).write_text(text)
    return config


def substitute(args: list[str], config: Path, reports: Path) -> list[str]:
    replaced = [a.replace("=/config/", f"={config}/").replace("=/reports", f"={reports}") for a in args]
    return [
        a.replace("{{workflow.parameters.env}}", "prod").replace("{{workflow.parameters.markers}}", "postdeploy")
        for a in replaced
    ]


def image_workdir(root: Path) -> Path:
    """The image's working directory as the Containerfile fills it (its COPYs to relative destinations); the package
    itself is this venv's (installed editable, loaded from its entry point as in the image)."""
    workdir = root / "opt" / "deploy-verify"
    for source, destination in copies():
        if not destination.startswith("/"):
            (workdir / destination).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, workdir / destination)
    return workdir


@pytest.mark.parametrize("runner", ["job", "workflow"])
def test_the_suite_accepts_the_command_line_and_configuration_the_pod_gets(runner, tmp_path):
    config, reports, workdir = materialize(tmp_path), tmp_path / "reports", image_workdir(tmp_path)
    if runner == "job":
        args = ENTRYPOINT[1:] + job_container()["args"]
    else:
        args = workflow_container()["command"][1:] + workflow_container()["args"]
    command = [sys.executable, *substitute(args, config, reports), "--collect-only", "-q"]
    assert not [a for a in command if "=/config/" in a or a.endswith("=/reports")], command  # all redirected
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    environment = yaml.safe_load((config / "environments" / "prod.yaml").read_text())
    for component in environment["components"]:
        assert f"[prod/{component['name']}]" in done.stdout, component["name"]
    assert "[prod/cluster:aks-weu]" in done.stdout
    assert "deploy_verify/health.feature::" in done.stdout  # the built-in scenarios, from the installed package
    assert (reports / "allure-results").is_dir()
    assert not (workdir / ".pytest_cache").exists()  # the image's root filesystem is read-only


def test_the_image_workdir_runs_its_example_environment_and_refuses_a_run_without_env(tmp_path):
    workdir = image_workdir(tmp_path)
    base = [sys.executable, *ENTRYPOINT[1:-1], f"--reports-dir={tmp_path / 'reports'}", "--collect-only", "-q"]
    done = subprocess.run([*base, "--env", "example-prod"], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (
        "deploy_verify/health.feature::test_health_endpoints_answer_healthy_after_the_deploy[example-prod/orders]"
        in (done.stdout)
    )
    done = subprocess.run(base, cwd=workdir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4
    assert (
        f"name the environment to verify: pytest --env NAME (environments in {workdir / 'environments'}: example-prod)"
        in done.stderr
    )


# --- the manifests, against the real API server -------------------------------------------------------------------


def workflow_crd() -> Path:
    folder = kube_bin("kubectl").parent.parent / "crds" / "argo-workflows"
    want = versions()["ARGO_WORKFLOWS_VERSION"]
    marker = folder / ".version"
    got = marker.read_text().split()[0] if marker.is_file() else "none"
    if got != want or not (folder / WORKFLOW_CRD).is_file():
        pytest.fail(
            f"the Argo Workflows {want} WorkflowTemplate CRD is not cached in {folder} (found: {got}): "
            "run testbed/kube/build.sh",
            pytrace=False,
        )
    return folder / WORKFLOW_CRD


def kubectl(testbed_kube, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [*testbed_kube.kubectl_command(CLUSTER), *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def api(testbed_kube):
    """dv-a with deploy/rbac and the WorkflowTemplate CRD applied (server-side, idempotent)."""
    crd = workflow_crd()
    for path in (ROOT / "deploy" / "rbac", crd):
        done = kubectl(testbed_kube, "apply", "--server-side", "--force-conflicts", "-f", str(path))
        assert done.returncode == 0, done.stderr
    # Polled, not `kubectl wait`: right after creation the CRD has no status.conditions yet and `wait` errors out.
    established = '{.status.conditions[?(@.type=="Established")].status}'
    deadline = time.monotonic() + 60
    while (
        state := kubectl(testbed_kube, "get", "crd/workflowtemplates.argoproj.io", f"-o=jsonpath={established}")
    ).stdout != "True":
        assert time.monotonic() < deadline, f"CRD workflowtemplates.argoproj.io not Established: {state.stderr}"
        time.sleep(0.2)
    return testbed_kube


def dry_run(api, text: str) -> subprocess.CompletedProcess[str]:
    return kubectl(api, "apply", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-", stdin=text)


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_passes_a_server_side_dry_run(api, name):
    done = dry_run(api, (INCLUSTER / name).read_text())
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    returned = answer["items"] if answer["kind"] == "List" else [answer]
    assert [(o["kind"], o["metadata"]["name"]) for o in returned] == [
        (d["kind"], d["metadata"]["name"]) for d in documents(name)
    ]
    for document in returned:  # a dry run persists nothing
        kind, name_ = document["kind"].lower(), document["metadata"]["name"]
        assert kubectl(api, "-n", NAMESPACE, "get", f"{kind}/{name_}").returncode != 0, f"{kind}/{name_} exists"


def test_server_fills_the_job_pod_as_the_read_only_account(api):
    done = dry_run(api, (INCLUSTER / "argocd-postsync-job.yaml").read_text())
    assert done.returncode == 0, done.stderr
    pod = json.loads(done.stdout)["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("deploy-verify", True)
    assert kubectl(api, "-n", NAMESPACE, "get", "serviceaccount", "deploy-verify").returncode == 0


def broken(name: str, change: str) -> str:
    document = one(name)
    if change == "wrong type":
        document["spec"]["activeDeadlineSeconds"] = "fifteen minutes"
    elif change == "unknown field":
        spec = document["spec"]["template"]["spec"] if document["kind"] == "Job" else document["spec"]["templates"][1]
        container = spec["containers"][0] if document["kind"] == "Job" else spec["container"]
        container["volumeMount"] = container.pop("volumeMounts")  # a typo a client could silently drop
    return yaml.safe_dump(document)


@pytest.mark.parametrize(
    ("name", "change", "says"),
    [
        ("argocd-postsync-job.yaml", "wrong type", "spec.activeDeadlineSeconds of type int64"),
        ("argocd-postsync-job.yaml", "unknown field", 'unknown field "spec.template.spec.containers[0].volumeMount"'),
        ("argo-workflowtemplate.yaml", "wrong type", "spec.activeDeadlineSeconds in body must be of type integer"),
        ("argo-workflowtemplate.yaml", "unknown field", 'unknown field "spec.templates[1].container.volumeMount"'),
    ],
)
def test_a_broken_copy_is_rejected_by_the_server(api, name, change, says):
    done = dry_run(api, broken(name, change))
    assert done.returncode != 0, f"the server accepted a copy with a {change}: {done.stdout[:500]}"
    assert says in done.stderr


def test_the_configmap_data_must_be_text(api):
    document = documents("environment-configmap.yaml")[0]
    document["data"]["prod.yaml"] = yaml.safe_load(document["data"]["prod.yaml"])
    done = dry_run(api, yaml.safe_dump(document))
    assert done.returncode != 0
    assert "cannot unmarshal object into Go struct field ConfigMap.data of type string" in done.stderr


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("list", "pods", "yes"),
        ("watch", "deployments.apps", "yes"),
        ("get", "certificates.cert-manager.io", "yes"),
        ("create", "deployments.apps", "no"),
        ("patch", "deployments.apps", "no"),
        ("delete", "pods", "no"),
        ("get", "secrets", "no"),  # only through the per-namespace binding
        ("create", "workflowtaskresults.argoproj.io", "no"),  # that is the executor's account, not the suite's
    ],
)
def test_the_job_account_may_read_and_nothing_else(api, verb, resource, allowed):
    # Impersonated: the audit log records kwok-admin as the user (and the account as impersonatedUser), so
    # test_kube_rbac's "no mutating call by the suite's account" still holds after these reviews.
    done = kubectl(api, "auth", "can-i", f"--as={SUITE_ACCOUNT}", verb, resource, "--all-namespaces")
    assert done.stdout.strip() == allowed, done.stdout + done.stderr


def test_the_bound_cluster_role_grants_get_list_watch_only(api):
    done = kubectl(api, "get", "clusterrole", "deploy-verify-reader", "-o", "json")
    assert done.returncode == 0, done.stderr
    verbs = {verb for rule in json.loads(done.stdout)["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
