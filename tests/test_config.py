"""The environment loader: every shipped file loads, and each invalid file fails with its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy_verify.config import ConfigError, load_environment
from deploy_verify.durations import parse_duration

ROOT = Path(__file__).resolve().parent.parent
HEAD = "name: prod\n"
ENDPOINT = "components:\n  - {name: web, kind: endpoint, health: [{url: 'https://web.example.com/health'}]}\n"
ALLOWED_TOP = (
    "azure, budget, checks, clusters, components, defaults, description, extends, links, metrics, name, policy, "
    "promotes_from, protected, requires_soak, soak"
)
RULE_IDS = (
    "chart-version, disruption-budget, image-pinned, min-replicas, no-privilege-escalation, not-privileged, probes, "
    "read-only-root-filesystem, resources, run-as-non-root, schema"
)
KINDS = (
    "deployment, daemonset, statefulset, helm, containerapp, functionapp, endpoint, argocd, resource, apim, "
    "manifests, terraform"
)

CASES = [
    # Found by tests/test_loader_properties.py: both used to escape as a traceback or a two-line message.
    (
        "control character in the file",
        HEAD + "description: a\x1fb\n" + ENDPOINT,
        [
            "environments/prod.yaml:2: invalid YAML: character 0x001f is not allowed (special characters are not allowed)"
        ],
    ),
    (
        "key with a trailing space",
        HEAD + '"budget ": 5m\n' + ENDPOINT,
        [f"environments/prod.yaml:2: 'budget ': unknown key; allowed keys: {ALLOWED_TOP}"],
    ),
    (
        "unknown top-level key",
        HEAD + "nmae: x\n" + ENDPOINT,
        [f"environments/prod.yaml:2: nmae: unknown key; allowed keys: {ALLOWED_TOP}"],
    ),
    (
        "kind not allowed",
        HEAD + "components:\n  - {name: web, kind: deploy}\n",
        [f"environments/prod.yaml:3: components[0].kind: 'deploy' is not one of: {KINDS}"],
    ),
    (
        "misspelt component key",
        HEAD + ENDPOINT + "  - name: api\n    kind: endpoint\n    helth: []\n",
        [
            "environments/prod.yaml:6: components[1].helth: unknown key; allowed keys: allow_suspended, api_version, "
            "apis, application, certificates, chart, cluster, container, depends_on, health, kind, links, "
            "metrics, min_replicas, name, namespace, path, plan_json, release, release_key, resource, resource_group, "
            "resource_kind, select, services, subscription, tls, traffic, values, var_files, version_source, "
            "working_dir, workload, workspace"
        ],
    ),
    (
        "missing kind",
        HEAD + "components:\n  - name: web\n",
        ["environments/prod.yaml:3: components[0]: missing required key 'kind'"],
    ),
    ("missing name", "budget: 5m\n" + ENDPOINT, ["environments/prod.yaml:1: (top level): missing required key 'name'"]),
    (
        "bad duration",
        HEAD + "budget: soon\n" + ENDPOINT,
        ["environments/prod.yaml:2: budget: expected a duration like 30s, 5m or 250ms, got 'soon'"],
    ),
    (
        "zero duration",
        HEAD + "budget: 0s\n" + ENDPOINT,
        ["environments/prod.yaml:2: budget: a duration must be positive, got '0s'"],
    ),
    (
        "not a boolean",
        HEAD + "protected: maybe\n" + ENDPOINT,
        [
            "environments/prod.yaml:2: protected: input should be a valid boolean, unable to interpret input (got 'maybe')"
        ],
    ),
    (
        "TLS version not allowed",
        HEAD + "defaults:\n  tls:\n    min_version: '1.1'\n" + ENDPOINT,
        ["environments/prod.yaml:4: defaults.tls.min_version: '1.1' is not one of: 1.2, 1.3"],
    ),
    (
        "unknown key inside a named cluster",
        HEAD + "clusters:\n  aks:\n    contxt: x\n" + ENDPOINT,
        [
            "environments/prod.yaml:4: clusters.aks.contxt: unknown key; allowed keys: context, in_cluster, kubeconfig, reboot_annotations"
        ],
    ),
    (
        "cluster with neither context nor in_cluster",
        HEAD + "clusters:\n  aks: {kubeconfig: ~/.kube/prod}\n" + ENDPOINT,
        ["environments/prod.yaml:3: clusters.aks: give either context (a kubeconfig context) or in_cluster: true"],
    ),
    (
        "no components",
        HEAD + "components: []\n",
        ["environments/prod.yaml:2: components: list should have at least 1 item after validation, not 0 (got [])"],
    ),
    (
        "health URL without scheme",
        HEAD + "components:\n  - {name: web, kind: endpoint, health: [{url: web/health}]}\n",
        [
            "environments/prod.yaml:3: components[0].health[0].url: expected an http:// or https:// URL, got 'web/health'"
        ],
    ),
    (
        "two body rules",
        HEAD + "components:\n  - name: web\n    kind: endpoint\n    health:\n"
        "      - url: https://web/health\n        body: {contains: ok, json_path: status, equals: UP}\n",
        [
            "environments/prod.yaml:7: components[0].health[0].body: give exactly one of contains or json_path (with equals)"
        ],
    ),
    (
        "json rule without a value",
        HEAD + "components:\n  - name: web\n    kind: endpoint\n    health:\n"
        "      - url: https://web/health\n        body: {json_path: status}\n",
        [
            "environments/prod.yaml:7: components[0].health[0].body: json_path needs equals: the value a healthy answer "
            "has there"
        ],
    ),
    (
        "subscription id not a GUID",
        HEAD + "azure:\n  subscriptions:\n    main: {subscription_id: abc}\n" + ENDPOINT,
        [
            "environments/prod.yaml:4: azure.subscriptions.main.subscription_id: expected a GUID like "
            "00000000-0000-0000-0000-000000000000, got 'abc'"
        ],
    ),
    ("not a mapping", "- name: prod\n", ["environments/prod.yaml:1: expected a mapping at the top level, got list"]),
    (
        "YAML syntax",
        HEAD + "components: [\n",
        ["environments/prod.yaml:3: invalid YAML: expected the node content, but found '<stream end>'"],
    ),
    (
        "duplicate key",
        HEAD + "budget: 5m\nbudget: 10m\n" + ENDPOINT,
        ["environments/prod.yaml:3: budget: duplicate key"],
    ),
    (
        "name differs from file",
        "name: production\n" + ENDPOINT,
        ["environments/prod.yaml:1: name: 'production' does not match the file name; expected 'prod'"],
    ),
    (
        "duplicate component",
        HEAD + ENDPOINT + "  - {name: web, kind: endpoint, tls: [{host: web.example.com}]}\n",
        ["environments/prod.yaml:4: components[1].name: 'web' is defined twice"],
    ),
    (
        "unknown cluster",
        HEAD + "clusters:\n  aks-weu: {context: aks-prod}\ncomponents:\n"
        "  - {name: api, kind: deployment, cluster: aks-neu, namespace: api}\n",
        ["environments/prod.yaml:5: components[0].cluster: 'aks-neu' is not one of: aks-weu"],
    ),
    (
        "deployment without namespace",
        HEAD + "clusters:\n  aks: {context: aks}\ncomponents:\n  - {name: api, kind: deployment, cluster: aks}\n",
        ["environments/prod.yaml:5: components[0]: missing required key 'namespace' for kind deployment"],
    ),
    (
        "container app without azure",
        HEAD + "components:\n  - {name: app, kind: containerapp, subscription: main, resource_group: rg}\n",
        [
            "environments/prod.yaml:3: components[0].subscription: 'main' is not one of: none defined under "
            "azure.subscriptions"
        ],
    ),
    (
        "endpoint that checks nothing",
        HEAD + "components:\n  - {name: web, kind: endpoint}\n",
        [
            "environments/prod.yaml:3: components[0]: an endpoint component needs health, tls, certificates or metrics "
            "entries, or it checks nothing"
        ],
    ),
]


CASES += [
    (
        "unknown policy rule and level",
        HEAD + ENDPOINT + "policy:\n  rules: {probe: block, resources: strict}\n",
        [
            "environments/prod.yaml:5: policy.rules.resources: 'strict' is not one of: block, warn, off",
        ],
    ),
    (
        "misspelt policy rule",
        HEAD + ENDPOINT + "policy:\n  rules: {probe: block}\n  silence: [{rule: pdb, object: '*', reason: fine}]\n",
        [
            f"environments/prod.yaml:5: policy.rules.probe: 'probe' is not a policy rule; the rules are: {RULE_IDS}",
            f"environments/prod.yaml:6: policy.silence[0].rule: 'pdb' is not a policy rule; the rules are: {RULE_IDS}",
        ],
    ),
    (
        "silence without a reason",
        HEAD + ENDPOINT + "policy:\n  silence: [{rule: probes, object: 'Deployment/*'}]\n",
        ["environments/prod.yaml:5: policy.silence[0]: missing required key 'reason'"],
    ),
    (
        "terraform with both sources",
        HEAD + "components:\n  - {name: net, kind: terraform, working_dir: infra, plan_json: plan.json}\n",
        [
            "environments/prod.yaml:3: components[0]: a terraform component needs exactly one of working_dir "
            "(planned here) or plan_json (a saved plan)"
        ],
    ),
    (
        "chart on a deployment, apis without a backend kind",
        HEAD
        + "clusters: {c: {context: x}}\ncomponents:\n"
        + "  - {name: web, kind: deployment, cluster: c, namespace: n, chart: ./c}\n"
        + "  - {name: gw, kind: apim, subscription: s, resource_group: r, apis: [{name: a, fronts: web}]}\n",
        [
            "environments/prod.yaml:4: components[0].chart: only kind helm reads chart; this component is a "
            "deployment, which ignores it",
            "environments/prod.yaml:5: components[1].subscription: 's' is not one of: none defined under "
            "azure.subscriptions",
            "environments/prod.yaml:5: components[1].apis[0].fronts: 'web' is a deployment, which has no address to "
            "compare the API's backend with (kinds that do: containerapp, endpoint); give backend: HOST instead",
        ],
    ),
]


@pytest.mark.parametrize(("text", "messages"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_environment_is_reported_word_for_word(tmp_path, text, messages):
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "prod.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_environment("prod", env_dir)
    assert caught.value.problems == messages


def test_unknown_environment_lists_the_known_ones(tmp_path):
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "staging.yaml").write_text(HEAD + ENDPOINT)
    (env_dir / "prod.yaml").write_text(HEAD + ENDPOINT)
    with pytest.raises(ConfigError) as caught:
        load_environment("prd", env_dir)
    assert str(caught.value) == (
        "unknown environment 'prd': there is no environments/prd.yaml; known environments: prod, staging"
    )


@pytest.mark.parametrize("name", ["local", "local-broken", "example-prod"])
def test_shipped_environments_load(name):
    env = load_environment(name, ROOT / "environments")
    assert env.name == name
    assert env.components


def test_defaults_fill_in_and_ca_bundle_is_relative_to_the_repository():
    env = load_environment("local", ROOT / "environments")
    probe = env.component("payments-api").health_probes(env.defaults)[0]
    assert (probe.timeout, probe.latency_budget, probe.version_path) == (5.0, 1.0, "version")
    assert probe.ca_bundle == str(ROOT / ".testbed" / "tls" / "ca.pem")
    target, min_days = env.component("checkout-web").tls_targets(env.defaults)[0]
    assert (target.host, target.port, target.min_version, min_days) == ("localhost", 18442, "1.2", 14)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), (12, 12), ("2m30s", 150)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_example_prod_is_protected_and_promotes_from_staging():
    env = load_environment("example-prod", ROOT / "environments")
    assert env.protected
    assert env.promotes_from == "staging"
    assert {c.kind for c in env.components} >= {"deployment", "containerapp", "functionapp", "endpoint"}


def test_an_environment_file_that_is_not_utf8_names_the_line_and_byte(tmp_path):
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "prod.yaml").write_bytes(b"name: prod\n# owner: J\xf6rg\ncomponents: []\n")
    with pytest.raises(ConfigError) as caught:
        load_environment("prod", env_dir)
    assert caught.value.problems == [
        "environments/prod.yaml:2: not UTF-8: byte 0xf6 at column 11; save the file as UTF-8"
    ]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("../secrets/prod", "; did you mean --env prod?"),
        ("prod.yaml", "; did you mean --env prod?"),
        ("/etc/passwd", ""),
        ("Prod", ""),
        ("", ""),
    ],
)
def test_an_env_name_that_is_a_path_is_refused_before_any_file_is_opened(tmp_path, name, hint):
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "prod.yaml").write_text("name: prod\ncomponents: []\n")
    outside = tmp_path / "secrets"
    outside.mkdir()
    (outside / "prod.yaml").write_text("not: [valid")  # would give a YAML error if it were opened
    with pytest.raises(ConfigError) as caught:
        load_environment(name, env_dir)
    assert caught.value.problems == [
        f"--env {name!r} is not an environment name: give the name of a file in environments/ without .yaml "
        f"(lowercase letters, digits and '-'); known environments: prod{hint}"
    ]
