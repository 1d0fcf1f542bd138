"""Bad input, generated: the environment, release-manifest and baseline loaders either load a document or reject it
with the schema's own message (file, line, key path). Never a traceback: an operator must always get one line that
says what to fix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy_verify.baseline import BaselineMissing, load_baseline
from deploy_verify.config import ConfigError, Environment, load_environment
from deploy_verify.release import ReleaseManifest, load_release

ROOT = Path(__file__).resolve().parent.parent
LOCAL = yaml.safe_load((ROOT / "environments" / "local.yaml").read_text())
NAMES = ["payments-api", "checkout-web", "storefront-a", "catalog"]
# Keys the schemas know, mixed with noise, so generated documents reach deep into the models.
KEYS = [
    "name", "kind", "cluster", "namespace", "workload", "components", "clusters", "context", "kubeconfig",
    "in_cluster", "health", "url", "tls", "host", "port", "budget", "defaults", "http", "timeout", "azure",
    "subscriptions", "subscription_id", "certificates", "endpoints", "traffic", "version", "image", "digest",
    "chart", "release", "environment", "recorded_at", "template_hash", "images", "digests", "revision",
    "deployment", "helm", "containerapp", "endpoint", "body", "json_path", "equals", "contains", "x", "",
]  # fmt: skip
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["local", "deployment", "dv-a", "5s", "1h30m", "-1s", "https://x", "sha256:abc", "2.4.0"]),
    st.text(max_size=20),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
# A path into a document and what to put there: mutations of a real, valid environment file.
mutations = st.lists(
    st.tuples(st.lists(st.sampled_from([*KEYS, 0, 1, 2, 5]), min_size=1, max_size=4), documents), max_size=4
)

PROBLEM = re.compile(r"^\S+:\d+: \S")  # file:line: what


def assert_schema_message(exc: ConfigError, shown: str) -> None:
    assert exc.problems, "a ConfigError without a problem"
    for line in exc.problems:
        assert "\n" not in line
        assert line.startswith(shown) or line.startswith("unknown environment"), line
        assert PROBLEM.match(line) or line.startswith("unknown environment"), line


def write_env(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prop.yaml").write_text(text, encoding="utf-8")


def load_or_message(folder: Path) -> Environment | None:
    try:
        return load_environment("prop", folder)
    except ConfigError as exc:
        assert_schema_message(exc, "environments/prop.yaml:")
        return None


@SETTINGS
@given(document=documents)
def test_any_yaml_document_loads_or_gets_the_schema_message(tmp_path_factory, document):
    folder = tmp_path_factory.mktemp("env") / "environments"
    write_env(folder, yaml.safe_dump(document, allow_unicode=True))
    load_or_message(folder)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_loads_or_gets_the_schema_message(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("env") / "environments"
    write_env(folder, text)
    load_or_message(folder)


def mutate(document: Any, path: list[Any], value: Any) -> Any:
    """Set `value` at `path` where the path exists (or can be made to), else leave the document as it is."""
    node = document
    for key in path[:-1]:
        node = _child(node, key)
        if node is None:
            return document
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value
    return document


def _child(node: Any, key: Any) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


@SETTINGS
@given(changes=mutations)
def test_a_mutated_real_environment_loads_or_gets_the_schema_message(tmp_path_factory, changes):
    document = json.loads(json.dumps(LOCAL))
    document["name"] = "prop"
    for path, value in changes:
        document = mutate(document, ["components", 0, *path] if path[0] in (0, 1, 2, 5) else path, value)
    folder = tmp_path_factory.mktemp("env") / "environments"
    write_env(folder, yaml.safe_dump(document, allow_unicode=True))
    load_or_message(folder)


@SETTINGS
@given(document=documents, expects=st.lists(st.text(max_size=15), max_size=3))
def test_release_manifests_load_or_get_the_schema_message(tmp_path_factory, document, expects):
    path = tmp_path_factory.mktemp("release") / "release.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    try:
        manifest = load_release(path, expects, NAMES)
    except ConfigError as exc:
        for line in exc.problems:
            assert line.startswith((str(path), "--expect ", "--release: ")), line
        return
    assert isinstance(manifest, ReleaseManifest)


@SETTINGS
@given(
    document=st.one_of(
        documents,
        st.fixed_dictionaries(
            {"environment": st.just("prop"), "recorded_at": st.text(max_size=10)},
            optional={"components": st.dictionaries(st.text(max_size=6), documents, max_size=3)},
        ),
    )
)
def test_baselines_load_or_say_how_to_record_one(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("baseline") / "baseline-prop.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    try:
        load_baseline(path, "prop")
    except BaselineMissing as exc:
        message = str(exc)
    else:
        return
    assert message.endswith("record one before the deploy with `pytest features --env prop -m predeploy`")
    assert "\n" not in message
