"""The Azure keys of the environment file: `traffic:` of a Container App and `version_source:` of a Function App are
validated when the file is loaded, each problem with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy_verify.config import ConfigError, load_environment

HEAD = """name: prod
azure:
  subscriptions:
    main: {subscription_id: 00000000-0000-0000-0000-0000000000aa}
clusters:
  c: {context: x}
components:
"""
APP = "  - name: app\n    kind: containerapp\n    subscription: main\n    resource_group: rg\n"
EVENTS = "  - name: events\n    kind: functionapp\n    subscription: main\n    resource_group: rg\n"
WEB = "  - name: web\n    kind: deployment\n    cluster: c\n    namespace: n\n"
SOURCES = "deployment_message, package_url, app_setting:NAME, tag:NAME"


def load(tmp_path: Path, text: str):
    folder = tmp_path / "environments"
    folder.mkdir(exist_ok=True)
    (folder / "prod.yaml").write_text(text)
    return load_environment("prod", folder)


VALID = [
    ("revision names and latest", APP + "    traffic: {latest: 80, app--v11: 20}\n", {"latest": 80, "app--v11": 20}),
    (
        "labels",
        APP + "    traffic:\n      label:blue: 90\n      label:green: 10\n",
        {"label:blue": 90, "label:green": 10},
    ),
    (
        "a weight of 0 keeps a label routed",
        APP + "    traffic: {latest: 100, 'label:old': 0}\n",
        {"latest": 100, "label:old": 0},
    ),
]


@pytest.mark.parametrize(("case", "component", "traffic"), VALID, ids=[c[0] for c in VALID])
def test_valid_traffic(tmp_path, case, component, traffic):
    assert load(tmp_path, HEAD + component).components[0].traffic == traffic


INVALID = [
    (
        "a bare label",
        APP + "    traffic:\n      latest: 80\n      blue: 20\n",
        [
            "environments/prod.yaml:14: components[0].traffic.blue: 'blue' is not a revision name (APP--SUFFIX), "
            "latest, or label:NAME; a revision label is written label:blue"
        ],
    ),
    (
        "a label that ARM would refuse",
        APP + "    traffic:\n      latest: 90\n      label:Blue_1: 10\n",
        [
            "environments/prod.yaml:14: components[0].traffic.label:Blue_1: 'Blue_1' is not a revision label: "
            "lower-case letters, digits and '-', starting with a letter"
        ],
    ),
    (
        "weights that do not add up to 100",
        APP + "    traffic:\n      latest: 80\n      app--v11: 10\n",
        [
            "environments/prod.yaml:13: components[0].traffic: the weights add up to 90, expected 100 (latest: 80, app--v11: 10)"
        ],
    ),
    (
        "a weight over 100",
        APP + "    traffic: {latest: 120}\n",
        [
            "environments/prod.yaml:12: components[0].traffic.latest: input should be less than or equal to 100 (got 120)"
        ],
    ),
    (
        "a negative weight",
        APP + "    traffic: {latest: 100, app--v1: -10}\n",
        [
            "environments/prod.yaml:12: components[0].traffic.app--v1: input should be greater than or equal to 0 (got -10)"
        ],
    ),
    (
        "a weight that is a string",
        APP + "    traffic: {latest: '100'}\n",
        ["environments/prod.yaml:12: components[0].traffic.latest: input should be a valid integer (got '100')"],
    ),
    (
        "a weight that is a fraction",
        APP + "    traffic: {latest: 99.5, app--v1: 0.5}\n",
        [
            "environments/prod.yaml:12: components[0].traffic.latest: input should be a valid integer (got 99.5)",
            "environments/prod.yaml:12: components[0].traffic.app--v1: input should be a valid integer (got 0.5)",
        ],
    ),
    (
        "no revision at all",
        APP + "    traffic: {}\n",
        [
            "environments/prod.yaml:12: components[0].traffic: give at least one revision and its weight, e.g. {latest: 100}"
        ],
    ),
    (
        "traffic on a kind that has none",
        WEB + "    traffic: {latest: 100}\n",
        [
            "environments/prod.yaml:12: components[0].traffic: only kind containerapp reads traffic; this component is "
            "a deployment, which ignores it"
        ],
    ),
    (
        "an unknown version source",
        EVENTS + "    version_source: appsetting:APP_VERSION\n",
        [f"environments/prod.yaml:12: components[0].version_source: 'appsetting:APP_VERSION' is not one of: {SOURCES}"],
    ),
    (
        "an app setting without a name",
        EVENTS + "    version_source: 'app_setting:'\n",
        [f"environments/prod.yaml:12: components[0].version_source: 'app_setting:' is not one of: {SOURCES}"],
    ),
    (
        "a version source on a Container App",
        APP + "    version_source: tag:version\n",
        [
            "environments/prod.yaml:12: components[0].version_source: only kind functionapp reads version_source; this "
            "component is a containerapp, which ignores it"
        ],
    ),
]


@pytest.mark.parametrize(("case", "component", "problems"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_azure_keys_name_file_and_line(tmp_path, case, component, problems):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, HEAD + component)
    assert caught.value.problems == problems


@pytest.mark.parametrize("source", ["deployment_message", "package_url", "app_setting:APP_VERSION", "tag:release"])
def test_valid_version_sources(tmp_path, source):
    env = load(tmp_path, HEAD + EVENTS + f"    version_source: {source}\n")
    assert env.components[0].version_source == source


def test_the_shipped_environments_load():
    root = Path(__file__).resolve().parent.parent / "environments"
    for name in ("local", "local-broken"):
        load_environment(name, root)
