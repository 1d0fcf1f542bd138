"""Selections (deploy_verify.selection): a component that stands for a set, on the real control plane.

Every form is tested through the suite as a gate runs it (a subprocess, under xdist): workloads by namespace, labels
and kind on one cluster and on every cluster, Helm releases by namespace, the release manifest mapped by label, an
empty selection (ERROR, never a pass), a member that appears or disappears between collection and run, and the
loader's errors word for word.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy_verify.config import ConfigError, load_environment
from deploy_verify.selection import SelectorSyntaxError, parse_labels

ROOT = Path(__file__).resolve().parent.parent
KWOK = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]


# --- label selectors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "api"}, False),
        ("app=web", {}, False),
        ("app!=web", {"app": "api"}, True),
        ("app!=web", {}, True),  # as the API server decides: != also matches objects without the label
        ("app!=web", {"app": "web"}, False),
        ("app in (web, api)", {"app": "api"}, True),
        ("app in (web,api)", {"app": "db"}, False),
        ("app notin (web, api)", {"app": "db"}, True),
        ("app notin (web, api)", {}, True),
        ("app notin (web)", {"app": "web"}, False),
        ("canary", {"canary": ""}, True),
        ("canary", {}, False),
        ("!canary", {}, True),
        ("!canary", {"canary": "true"}, False),
        ("app=web,release=r1", {"app": "web", "release": "r1"}, True),
        ("app=web,release=r1", {"app": "web", "release": "r2"}, False),
        ("app in (a,b),!canary,tier=front", {"app": "b", "tier": "front"}, True),
        ("app.kubernetes.io/name=altinn", {"app.kubernetes.io/name": "altinn"}, True),
        ("", {"anything": "x"}, None),
    ],
)
def test_label_selectors_match_as_the_api_server_does(selector, labels, matches):
    if matches is None:
        with pytest.raises(SelectorSyntaxError, match="empty requirement"):
            parse_labels(selector)
        return
    assert parse_labels(selector).matches(labels) is matches


def test_a_mapping_is_equality_on_every_label():
    assert parse_labels({"app": "web", "release": "r1"}).matches({"app": "web", "release": "r1", "x": "y"})
    assert not parse_labels({"app": "web", "release": "r1"}).matches({"app": "web"})
    assert parse_labels(None).matches({})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("app=web,", "empty requirement in label selector 'app=web,'"),
        (
            "app >= 3",
            "'app >= 3' is not a label selector requirement (key, !key, key=value, key!=value, key in (a,b), "
            "key notin (a,b))",
        ),
        ("!app in (a)", "'!app in (a)': '!' only negates a bare key (!key)"),
        ("app in ()", "'app in ()': the set needs values like (a, b)"),
        ("app in (a,,b)", "'app in (a,,b)': the set needs values like (a, b)"),
    ],
)
def test_bad_selectors_are_named(selector, message):
    with pytest.raises(SelectorSyntaxError) as raised:
        parse_labels(selector)
    assert str(raised.value) == message


LABEL = st.from_regex(r"\A[a-z]([a-z0-9-]{0,6}[a-z0-9])?\Z")


@given(st.dictionaries(LABEL, LABEL, max_size=4), st.dictionaries(LABEL, LABEL, max_size=4))
def test_equality_selectors_select_exactly_the_superset_labels(wanted, labels):
    """A {label: value} selector matches exactly the label sets that contain it."""
    assert parse_labels(wanted).matches(labels) is (wanted.items() <= labels.items())


@given(LABEL, st.lists(LABEL, min_size=1, max_size=4), st.dictionaries(LABEL, LABEL, max_size=3))
def test_notin_is_the_complement_of_in(key, values, labels):
    inside = parse_labels(f"{key} in ({', '.join(values)})").matches(labels)
    outside = parse_labels(f"{key} notin ({', '.join(values)})").matches(labels)
    assert inside is not outside


# --- the loader ---------------------------------------------------------------------------------------------------

HEAD = """\
name: sel
clusters:
  a: {context: kwok-dv-a}
  b: {context: kwok-dv-b}
azure:
  subscriptions:
    s: {subscription_id: 00000000-0000-0000-0000-0000000000aa}
components:
"""


def _load(tmp_path: Path, components: str) -> list[str]:
    (tmp_path / "sel.yaml").write_text(HEAD + textwrap.indent(textwrap.dedent(components), "  "))
    try:
        load_environment("sel", tmp_path)
    except ConfigError as exc:
        return [problem.split("/", 1)[1] for problem in exc.problems]  # without the tmp folder's name
    return []


@pytest.mark.parametrize(
    ("components", "problems"),
    [
        (
            """\
            - name: web
              kind: deployment
              cluster: a
              select: {namespaces: [shop], labels: "app in (a,b)"}
            """,
            [],
        ),
        (
            """\
            - name: web
              kind: deployment
              select: {clusters: [a, c], namespaces: [shop]}
            """,
            ["sel.yaml:11: components[0].select.clusters[1]: 'c' is not one of: a, b"],
        ),
        (
            """\
            - name: web
              kind: deployment
              cluster: a
              select: {labels: app=web}
            """,
            ["sel.yaml:12: components[0].select: missing required key 'namespaces': the namespaces to look in"],
        ),
        (
            """\
            - name: web
              kind: deployment
              cluster: a
              select: {namespaces: [shop], labels: "app >= 2"}
            """,
            [
                "sel.yaml:12: components[0].select.labels: 'app >= 2' is not a label selector requirement (key, "
                "!key, key=value, key!=value, key in (a,b), key notin (a,b))"
            ],
        ),
        (
            """\
            - name: web
              kind: deployment
              cluster: a
              select: {namespaces: [shop], resource_groups: [rg]}
            """,
            [
                "sel.yaml:12: components[0].select.resource_groups: a deployment selection does not select by "
                "resource_groups; it selects by clusters, kinds, labels, namespaces"
            ],
        ),
        (
            """\
            - name: web
              kind: daemonset
              cluster: a
              select: {namespaces: [shop], kinds: [daemonset, pod]}
            """,
            ["sel.yaml:12: components[0].select.kinds[1]: 'pod' is not one of: daemonset, deployment, statefulset"],
        ),
        (
            """\
            - name: apps
              kind: containerapp
              subscription: s
              resource_group: rg
              select: {tags: {env: prod}}
            """,
            [
                "sel.yaml:13: components[0].select: missing required key 'resource_groups': the resource groups to "
                "look in"
            ],
        ),
        (
            """\
            - name: site
              kind: endpoint
              health: [{url: "https://x.example/health"}]
              select: {namespaces: [shop]}
            """,
            [
                "sel.yaml:12: components[0].select: a endpoint component cannot be a selection; kinds that can: "
                "argocd, containerapp, daemonset, deployment, functionapp, helm, resource, statefulset"
            ],
        ),
        (
            """\
            - name: web
              kind: deployment
              cluster: a
              namespace: shop
              release_key: label:app
            """,
            [
                "sel.yaml:13: components[0].release_key: only a selection (a component with select:) maps members "
                "by release_key"
            ],
        ),
        (
            """\
            - name: web
              kind: deployment
              cluster: a
              select: {namespaces: [shop]}
              release_key: app
            """,
            [
                "sel.yaml:13: components[0].release_key: 'app' is not one of: name, label:KEY (Kubernetes), "
                "tag:KEY (Azure)"
            ],
        ),
    ],
)
def test_selection_errors_name_file_line_and_what_to_write(tmp_path, components, problems):
    assert _load(tmp_path, components) == problems


def test_dependencies_must_exist_and_never_close_a_cycle(tmp_path):
    endpoint = 'kind: endpoint, health: [{url: "https://x.example/h"}]'
    problems = _load(
        tmp_path,
        f"""\
        - {{name: a, {endpoint}, depends_on: [b]}}
        - {{name: b, {endpoint}, depends_on: [c, nope]}}
        - {{name: c, {endpoint}, depends_on: [a]}}
        - {{name: d, {endpoint}, depends_on: [d]}}
        """,
    )
    assert problems == [
        "sel.yaml:10: components[1].depends_on[1]: 'nope' is not one of: a, b, c, d",
        "sel.yaml:12: components[3].depends_on[0]: 'd' cannot depend on itself",
        "sel.yaml:9: components[0].depends_on: dependency cycle: a -> b -> c -> a",
    ]


# --- on the real control plane --------------------------------------------------------------------------------


def _deployment(name: str, labels: dict[str, str], image: str = "registry.example.test/sel/app:1.0") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"sel": name}},
            "template": {
                "metadata": {"labels": {"sel": name, **labels}},
                "spec": {"containers": [{"name": name, "image": image}], "tolerations": KWOK},
            },
        },
    }


class Estate:
    """A namespace of its own on both testbed clusters, with labelled Deployments."""

    def __init__(self, kube, tmp: Path) -> None:
        self.kube, self.tmp = kube, tmp
        self.namespace = f"sel-{uuid.uuid4().hex[:8]}"

    def kubectl(self, cluster: str, *args: str, stdin: str | None = None) -> str:
        command = [*self.kube.kubectl_command(cluster), *args]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def apply(self, cluster: str, *objects: dict) -> None:
        items = [{**o, "metadata": {**o["metadata"], "namespace": self.namespace}} for o in objects]
        self.kubectl(
            cluster, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        )

    def rolled_out(self, cluster: str, *names: str) -> None:
        for name in names:
            self.kubectl(cluster, "-n", self.namespace, "rollout", "status", f"deployment/{name}", "--timeout=60s")

    def environment(self, components: str) -> Path:
        env_dir = self.tmp / "environments"
        env_dir.mkdir(exist_ok=True)
        kubeconfig = ROOT / ".testbed" / "kubeconfig.yaml"
        (env_dir / "sel.yaml").write_text(
            textwrap.dedent(
                f"""\
                name: sel
                budget: 2m
                defaults:
                  kubernetes: {{rollout_timeout: 20s, grace: 1s}}
                clusters:
                  dv-a: {{context: kwok-dv-a, kubeconfig: {kubeconfig}}}
                  dv-b: {{context: kwok-dv-b, kubeconfig: {kubeconfig}}}
                components:
                """
            )
            + textwrap.indent(textwrap.dedent(components), "  ")
        )
        return env_dir

    def suite(self, env_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
        reports = self.tmp / f"reports-{uuid.uuid4().hex[:6]}"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "features",
            "--env",
            "sel",
            f"--env-dir={env_dir}",
            f"--reports-dir={reports}",
            "-p",
            "no:randomly",
            *args,
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
        verdict = json.loads((reports / "verdict.json").read_text()) if (reports / "verdict.json").exists() else {}
        return done, verdict


@pytest.fixture(scope="module")
def estate(testbed_kube, tmp_path_factory):
    estate = Estate(testbed_kube, tmp_path_factory.mktemp("selection"))
    for cluster in ("dv-a", "dv-b"):
        estate.kubectl(cluster, "create", "namespace", estate.namespace)
        estate.apply(
            cluster,
            _deployment("altinn-authentication", {"app": "altinn-authentication", "release": "altinn"}),
            _deployment("altinn-resource-registry", {"app": "altinn-resource-registry", "release": "altinn"}),
            _deployment("unrelated", {"app": "unrelated", "release": "other"}),
        )
        estate.rolled_out(cluster, "altinn-authentication", "altinn-resource-registry", "unrelated")
    yield estate
    for cluster in ("dv-a", "dv-b"):
        subprocess.run(
            [*testbed_kube.kubectl_command(cluster), "delete", "namespace", estate.namespace, "--wait=false"],
            capture_output=True,
            timeout=60,
            check=False,
        )


def _tests(verdict: dict) -> dict[str, tuple[str, str]]:
    """test id -> (outcome, message)."""
    return {t["id"]: (t["outcome"], t["message"]) for t in verdict["tests"]}


def test_a_selection_over_every_cluster_is_one_test_per_scenario_and_member(estate):
    env_dir = estate.environment(
        f"""\
        - name: altinn
          kind: deployment
          select:
            clusters: all
            namespaces: [{estate.namespace}]
            labels: "release=altinn"
        """
    )
    done, verdict = estate.suite(env_dir, "-m", "rollout or pods", "-n", "2")
    assert done.returncode == 0, done.stdout[-3000:]
    assert sorted(t["id"] for t in verdict["tests"]) == sorted(
        f"sel/{app}@{cluster}"
        for app in ("altinn-authentication", "altinn-resource-registry")
        for cluster in ("dv-a", "dv-b")
        for _check in ("rollout", "pods")
    )
    assert verdict["verdict"] == "green"
    assert "[sel/altinn-authentication@dv-b]" in done.stdout or "altinn-authentication@dv-b" in done.stdout


def test_the_release_manifest_maps_onto_members_by_label(estate):
    env_dir = estate.environment(
        f"""\
        - name: altinn
          kind: deployment
          cluster: dv-a
          select: {{namespaces: [{estate.namespace}], labels: "app in (altinn-authentication, unrelated)"}}
          release_key: label:app
        """
    )
    release = estate.tmp / "release.yaml"
    release.write_text("release: r1\ncomponents:\n  altinn-authentication: '1.0'\n  unrelated: '2.0'\n")
    done, verdict = estate.suite(env_dir, "-m", "image", f"--release={release}")
    tests = _tests(verdict)
    assert tests["sel/altinn-authentication@dv-a"][0] == "pass", done.stdout[-3000:]
    outcome, message = tests["sel/unrelated@dv-a"]
    assert outcome == "fail"
    assert "2.0" in message, message
    assert "1.0" in message, message


def test_a_release_entry_no_member_maps_to_is_refused(estate):
    env_dir = estate.environment(
        f"""\
        - name: altinn
          kind: deployment
          cluster: dv-a
          select: {{namespaces: [{estate.namespace}], labels: release=altinn}}
        """
    )
    release = estate.tmp / "typo.yaml"
    release.write_text("components:\n  altinn-authentcation: '1.0'\n")
    done, _ = estate.suite(env_dir, "-m", "image", f"--release={release}")
    assert done.returncode == 4
    assert (
        f"{release}:2: components.altinn-authentcation: no component 'altinn-authentcation' in this environment; "
        "known: altinn-authentication, altinn-resource-registry"
    ) in done.stderr


def test_an_empty_selection_is_an_error_never_a_pass(estate):
    env_dir = estate.environment(
        f"""\
        - name: altinn
          kind: daemonset
          cluster: dv-a
          select: {{namespaces: [{estate.namespace}], labels: release=altinn}}
        """
    )
    done, verdict = estate.suite(env_dir, "-m", "rollout or pods")
    assert done.returncode == 1
    assert verdict["verdict"] == "red"
    assert {t["id"]: t["outcome"] for t in verdict["tests"]} == {"sel/altinn": "error"}
    message = verdict["tests"][0]["message"]
    assert message.startswith(
        f"selection:altinn: the selection matches nothing: no daemonset in namespace(s) {estate.namespace} with labels release=altinn "
        "on cluster(s) dv-a; check the labels and namespaces under `select:`"
    ), message
    assert "GATE RED" in done.stdout


def test_a_selection_on_an_unreachable_cluster_is_an_error(estate, tmp_path):
    env_dir = estate.environment(
        f"""\
        - name: altinn
          kind: deployment
          cluster: dv-a
          select: {{namespaces: [{estate.namespace}]}}
        """
    )
    text = (env_dir / "sel.yaml").read_text().replace("context: kwok-dv-a,", "context: kwok-nowhere,")
    (env_dir / "sel.yaml").write_text(text)
    done, verdict = estate.suite(env_dir, "-m", "rollout")
    assert done.returncode == 1
    (test,) = verdict["tests"]
    assert test["outcome"] == "error"
    assert test["message"].startswith("selection:altinn: the selection could not be read: cluster dv-a:"), test[
        "message"
    ]
    assert "kwok-nowhere" in test["message"]


def test_helm_releases_are_selected_by_namespace(estate, testbed_kube):
    """The testbed's catalog release (namespace catalog on dv-b): one member, named by the release."""
    env_dir = estate.environment(
        """\
        - name: charts
          kind: helm
          cluster: dv-b
          select: {namespaces: [catalog]}
        """
    )
    done, _ = estate.suite(env_dir, "-m", "helmrelease", "--collect-only", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "features/helm.feature::test_the_helm_release_is_deployed[sel/catalog@dv-b]" in done.stdout


PLUGIN = '''
"""Between resolution (pytest_configure) and the run: one member appears, one disappears."""
import subprocess

def pytest_sessionstart(session):
    if hasattr(session.config, "workerinput"):
        return
    for args in {changes!r}:
        subprocess.run(args, check=True, capture_output=True, timeout=60)
'''


def test_a_member_that_appears_or_disappears_during_the_run_turns_the_gate_red(estate):
    cluster = "dv-b"
    estate.apply(cluster, _deployment("altinn-doomed", {"app": "altinn-doomed", "release": "altinn"}))
    estate.rolled_out(cluster, "altinn-doomed")
    newcomer = _deployment("altinn-newcomer", {"app": "altinn-newcomer", "release": "altinn"})
    newcomer["metadata"]["namespace"] = estate.namespace
    kubectl = estate.kube.kubectl_command(cluster)
    changes = [
        [*kubectl, "-n", estate.namespace, "delete", "deployment", "altinn-doomed", "--wait=true"],
        [*kubectl, "apply", "-f", str(estate.tmp / "newcomer.json")],
    ]
    (estate.tmp / "newcomer.json").write_text(json.dumps(newcomer))
    (estate.tmp / "changes_plugin.py").write_text(PLUGIN.format(changes=changes))
    env_dir = estate.environment(
        f"""\
        - name: altinn
          kind: deployment
          cluster: {cluster}
          select: {{namespaces: [{estate.namespace}], labels: release=altinn}}
        """
    )
    command_env = {"PYTHONPATH": str(estate.tmp)}
    import os

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "features",
            "--env",
            "sel",
            f"--env-dir={env_dir}",
            f"--reports-dir={estate.tmp / 'reports-change'}",
            "-m",
            "pods",
            "-n",
            "2",
            "-p",
            "changes_plugin",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **command_env},
    )
    verdict = json.loads((estate.tmp / "reports-change" / "verdict.json").read_text())
    tests = _tests(verdict)
    assert done.returncode == 1, done.stdout[-3000:]
    assert tests["sel/altinn-authentication@dv-b"][0] == "pass"
    outcome, message = tests["sel/altinn-doomed@dv-b"]
    assert outcome == "fail", message
    assert "altinn-doomed" in message
    outcome, message = tests["altinn"]
    assert (outcome, message) == (
        "error",
        "selection altinn: altinn-newcomer@dv-b appeared after the tests were collected and was not verified; run "
        "the gate again",
    )
    assert "sel/altinn-newcomer@dv-b" not in tests


def test_a_selection_over_500_deployments_costs_one_list_per_kind_and_namespace(estate, testbed_kube):
    """Resolving the set and running the four workload checks on every member, in one process, through the reader
    the suite uses: the requests are one LIST per (kind, namespace) the checks read, not one per Deployment."""
    from deploy_verify.checks.deadline import Deadline
    from deploy_verify.checks.endpoints import check_endpoints
    from deploy_verify.checks.images import check_image
    from deploy_verify.checks.pods import check_pods
    from deploy_verify.checks.rollout import Limits, check_rollout
    from deploy_verify.clients import AzureClients, KubeClients
    from deploy_verify.kinds import Clients, Workload, kind_of
    from deploy_verify.selection import expand, resolve

    namespace = f"{estate.namespace}-500"
    estate.kubectl("dv-b", "create", "namespace", namespace)
    try:
        many = []
        for i in range(500):
            obj = _deployment(f"svc-{i:03d}", {"app": f"svc-{i:03d}", "tier": "bulk"})
            obj["metadata"]["namespace"] = namespace
            obj["spec"]["replicas"] = 0
            many.append(obj)
        estate.kubectl(
            "dv-b", "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": many})
        )
        env_dir = estate.environment(
            f"""\
            - name: bulk
              kind: deployment
              cluster: dv-b
              min_replicas: 0
              select: {{namespaces: [{namespace}], labels: tier=bulk}}
            """
        )
        env = load_environment("sel", env_dir)
        deadline = Deadline.after(120, "test budget")
        kube = KubeClients(env)
        clients = Clients(kube, AzureClients(env, deadline))
        resolution = resolve(env, clients, deadline)
        reader = kube.reader("dv-b")
        assert reader.requests == 1  # the Deployments of the namespace, once
        members = expand(env, resolution).components
        assert len(members) == 500
        assert members[0].name == "svc-000@dv-b"
        limits = Limits(min_replicas=0)
        for member in members:
            kind = kind_of(member)
            assert isinstance(kind, Workload)
            ref = kind.ref(member)
            check_rollout(reader, ref, limits, deadline)
            check_pods(reader, ref, limits, deadline)
            check_image(reader, ref, None, deadline)
            check_endpoints(reader, ref, deadline)
        listed = sorted({(kind, ns) for kind, ns, _ in reader.cache})
        # deployments, replicasets, pods, services, endpointslices (and the namespace list a check may ask for)
        assert len(listed) <= 7, listed
        assert reader.requests == len(reader.cache), (reader.requests, listed)
        kube.close()
    finally:
        estate.kubectl("dv-b", "delete", "namespace", namespace, "--wait=false")


# --- Azure: Container Apps and Function Apps by resource group and tags (the ARM test server, the real SDKs) --------

ARM_TOKEN = "selection-arm-token-7d2e"
SUB_ID = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"


def _arm_state() -> dict:
    group = f"/subscriptions/{SUB_ID}/resourceGroups"

    def app(rg: str, name: str, tags: dict[str, str]) -> tuple[str, dict]:
        return f"{group}/{rg}/providers/Microsoft.App/containerApps/{name}", {
            "location": "West Europe",
            "tags": tags,
            "properties": {"provisioningState": "Succeeded", "runningStatus": "Running"},
        }

    def site(rg: str, name: str, kind: str, tags: dict[str, str]) -> tuple[str, dict]:
        return f"{group}/{rg}/providers/Microsoft.Web/sites/{name}", {
            "location": "West Europe",
            "kind": kind,
            "tags": tags,
            "properties": {"state": "Running", "enabled": True},
        }

    resources = dict(
        [
            (f"{group}/rg-altinn-at22", {"location": "West Europe"}),
            (f"{group}/rg-other", {"location": "West Europe"}),
            app("rg-altinn-at22", "altinn-events", {"system": "altinn", "env": "at22"}),
            app("rg-altinn-at22", "altinn-broker", {"system": "altinn", "env": "at22"}),
            app("rg-altinn-at22", "sandbox", {"system": "sandbox"}),
            app("rg-other", "altinn-events", {"system": "altinn"}),
            site("rg-altinn-at22", "altinn-notifications", "functionapp,linux", {"system": "altinn"}),
            site("rg-altinn-at22", "altinn-portal", "app,linux", {"system": "altinn"}),
        ]
    )
    return {"resources": resources}


@pytest.fixture(scope="module")
def arm_server(pki):
    from testbed.arm import ArmServer

    chain, key, _ = pki
    server = ArmServer(0, chain, key, _arm_state(), ARM_TOKEN)
    server.start()
    yield server
    server.stop()


def _azure_env(tmp: Path, server, pki, components: str):
    env_dir = tmp / "azure-environments"
    env_dir.mkdir(exist_ok=True)
    (env_dir / "apps.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: apps
            azure:
              arm_endpoint: {server.url}
              ca_bundle: {pki[2]}
              credential: token-env
              token_env: DV_SELECTION_ARM_TOKEN
              subscriptions:
                altinn: {{subscription_id: {SUB_ID}}}
            components:
            """
        )
        + textwrap.indent(textwrap.dedent(components), "  ")
    )
    return load_environment("apps", env_dir)


def _resolve_members(env) -> tuple[dict, list]:
    from deploy_verify.checks.deadline import Deadline
    from deploy_verify.clients import AzureClients, KubeClients
    from deploy_verify.kinds import Clients
    from deploy_verify.selection import expand, resolve

    deadline = Deadline.after(60, "test budget")
    azure = AzureClients(env, deadline)
    try:
        resolution = resolve(env, Clients(KubeClients(env), azure), deadline)
    finally:
        azure.close()
    return resolution, expand(env, resolution).components


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        (
            "{resource_groups: [rg-altinn-at22]}",
            ["altinn-broker@rg-altinn-at22", "altinn-events@rg-altinn-at22", "sandbox@rg-altinn-at22"],
        ),
        (
            "{resource_groups: [rg-altinn-at22], tags: {system: altinn}}",
            ["altinn-broker@rg-altinn-at22", "altinn-events@rg-altinn-at22"],
        ),
        (
            "{resource_groups: [rg-altinn-at22, rg-other], tags: {system: altinn}}",
            ["altinn-broker@rg-altinn-at22", "altinn-events@rg-altinn-at22", "altinn-events@rg-other"],
        ),
    ],
)
def test_container_apps_are_selected_by_resource_group_and_tags(
    tmp_path, arm_server, pki, monkeypatch, select, expected
):
    monkeypatch.setenv("DV_SELECTION_ARM_TOKEN", ARM_TOKEN)
    env = _azure_env(
        tmp_path, arm_server, pki, f"- {{name: apps, kind: containerapp, subscription: altinn, select: {select}}}\n"
    )
    _, members = _resolve_members(env)
    assert [m.name for m in members] == expected
    assert {(m.resource, m.resource_group, m.member_of) for m in members} == {
        (name.split("@")[0], name.split("@")[1], "apps") for name in expected
    }


def test_function_apps_are_the_sites_whose_kind_says_so(tmp_path, arm_server, pki, monkeypatch):
    monkeypatch.setenv("DV_SELECTION_ARM_TOKEN", ARM_TOKEN)
    env = _azure_env(
        tmp_path,
        arm_server,
        pki,
        "- {name: functions, kind: functionapp, subscription: altinn, select: {resource_groups: [rg-altinn-at22]},"
        " release_key: 'tag:system'}\n",
    )
    _, members = _resolve_members(env)
    assert [(m.name, m.kind, m.release_name) for m in members] == [
        ("altinn-notifications@rg-altinn-at22", "functionapp", "altinn")
    ]


def test_an_empty_or_unreadable_azure_selection_is_an_error(tmp_path, arm_server, pki, monkeypatch):
    monkeypatch.setenv("DV_SELECTION_ARM_TOKEN", ARM_TOKEN)
    env = _azure_env(
        tmp_path,
        arm_server,
        pki,
        "- {name: none, kind: containerapp, subscription: altinn, select: {resource_groups: [rg-other], tags: "
        "{system: sandbox}}}\n"
        "- {name: lost, kind: containerapp, subscription: altinn, select: {resource_groups: [rg-missing]}}\n",
    )
    resolution, members = _resolve_members(env)
    assert resolution["none"].problem == (
        "the selection matches nothing: containerapp in resource group(s) rg-other tagged system=sandbox; check the "
        "resource groups and tags under `select:`, and that the release was deployed where the environment says"
    )
    assert resolution["lost"].problem.startswith("the selection could not be read: "), resolution["lost"].problem
    assert "rg-missing" in resolution["lost"].problem
    assert [(m.name, m.unresolved is not None) for m in members] == [("none", True), ("lost", True)]


def test_the_altinn_example_estate_loads_in_both_forms_and_is_shorter_with_selections():
    """docs/examples/altinn: two environments written out by hand, and the same with a shared base and selections;
    the README quotes the line counts."""
    examples = ROOT / "docs" / "examples" / "altinn"
    for name in ("altinn-at22", "altinn-tt02"):
        by_hand = load_environment(name, examples / "hand-written")
        selected = load_environment(name, examples / "environments")
        assert (selected.clusters, selected.azure, selected.promotes_from, selected.protected) == (
            by_hand.clusters,
            by_hand.azure,
            by_hand.promotes_from,
            by_hand.protected,
        )
        assert [c.kind for c in selected.components] == ["daemonset", "containerapp", "functionapp"]
        assert sorted(selected.selections) == ["altinn", "apps", "functions"]

    def lines(folder: Path) -> int:
        return sum(len(p.read_text().splitlines()) for p in folder.rglob("*.yaml"))

    assert (lines(examples / "hand-written"), lines(examples / "environments")) == (82, 53)


def test_argo_cd_applications_are_selected_by_namespace_and_labels(estate):
    from deploy_verify.checks.deadline import Deadline
    from deploy_verify.clients import AzureClients, KubeClients
    from deploy_verify.kinds import Clients
    from deploy_verify.selection import expand, resolve

    def application(name: str, team: str) -> dict:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "labels": {"team": team}},
            "spec": {
                "project": "default",
                "source": {"repoURL": "https://git.example.com/apps.git", "path": name, "targetRevision": "HEAD"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
            },
        }

    estate.apply("dv-b", application("storefront", "shop"), application("checkout", "shop"), application("hr", "hr"))
    env_dir = estate.environment(
        f"""\
        - name: shop-apps
          kind: argocd
          cluster: dv-b
          select: {{namespaces: [{estate.namespace}], labels: team=shop}}
        """
    )
    env = load_environment("sel", env_dir)
    deadline = Deadline.after(60, "test budget")
    kube = KubeClients(env)
    try:
        members = expand(env, resolve(env, Clients(kube, AzureClients(env, deadline)), deadline)).components
    finally:
        kube.close()
    assert [(m.name, m.application, m.namespace) for m in members] == [
        ("checkout@dv-b", "checkout", estate.namespace),
        ("storefront@dv-b", "storefront", estate.namespace),
    ]
