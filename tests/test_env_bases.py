"""Shared bases for environment files (deploy_verify.bases) and YAML merge keys (deploy_verify.yamlsource): how files
merge, where each problem is reported (the file and line the value came from), every error word for word, and
--show-env through pytest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy_verify.bases import load_merged, show_environment
from deploy_verify.config import ConfigError, Environment, known_environments, load_environment
from deploy_verify.kinds import KINDS
from deploy_verify.yamlsource import YamlSourceError, load_yaml_with_lines

ROOT = Path(__file__).resolve().parent.parent
KIND_LIST = ", ".join(KINDS)

PLATFORM = """\
# shared by every environment
budget: 5m
defaults:
  http:
    timeout: 5s
    latency_budget: 2s
  tls: {min_days: 20}
links:
  runbook: https://wiki.example.com/runbook
components:
  - name: web
    kind: endpoint
    health: [{url: "https://web.example.com/health"}]
    links: {dashboard: "https://grafana.example.com/web"}
  - name: api
    kind: endpoint
    health:
      - url: https://api.example.com/health
        version_path: version
  - name: legacy
    kind: endpoint
    health: [{url: "https://legacy.example.com/health"}]
"""

STAGING = """\
extends: base/platform.yaml
name: staging
defaults:
  http:
    timeout: 10s
components:
  - name: api
    health: [{url: "https://api.staging.example.com/health"}]
  - {name: legacy, remove: true}
  - name: extra
    kind: endpoint
    health: [{url: "https://extra.staging.example.com/health"}]
"""


def estate(tmp_path: Path, files: dict[str, str]) -> Path:
    """A repository at tmp_path with these files (paths relative to it); returns its environments folder."""
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "environments"


def problems_of(env_dir: Path, name: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_environment(name, env_dir)
    return caught.value.problems


def staging(tmp_path: Path, base: str = PLATFORM, env: str = STAGING) -> Path:
    return estate(tmp_path, {"environments/base/platform.yaml": base, "environments/staging.yaml": env})


# ---- merge semantics ----------------------------------------------------------------------------------------------


def test_mappings_merge_recursively_scalars_and_lists_are_replaced_components_merge_by_name(tmp_path):
    env = load_environment("staging", staging(tmp_path))
    assert env.name == "staging"
    assert env.extends is None
    assert env.budget == 300  # only the base says it
    assert (env.defaults.http.timeout, env.defaults.http.latency_budget) == (10, 2)  # nested: one key overridden
    assert env.defaults.tls.min_days == 20
    assert env.links == {"runbook": "https://wiki.example.com/runbook"}
    assert [c.name for c in env.components] == ["web", "api", "extra"]  # base order, legacy dropped, extra appended
    api = env.component("api")
    assert api.kind == "endpoint"  # from the base entry it deep-merged over
    assert [(h.url, h.version_path) for h in api.health] == [("https://api.staging.example.com/health", None)]
    assert env.component("web").links == {"dashboard": "https://grafana.example.com/web"}


def test_the_merged_data_keeps_the_extending_files_order_and_never_holds_extends(tmp_path):
    env_dir = staging(tmp_path)
    data, origins = load_merged(env_dir / "staging.yaml", "environments/staging.yaml", tmp_path)
    assert list(data) == ["name", "defaults", "components", "budget", "links"]
    assert "extends" not in data
    assert ("extends",) not in origins
    assert list(data["components"][1]) == ["name", "health", "kind"]


def test_every_value_has_the_file_and_line_it_was_written_on(tmp_path):
    env_dir = staging(tmp_path)
    _, origins = load_merged(env_dir / "staging.yaml", "environments/staging.yaml", tmp_path)
    base, own = "environments/base/platform.yaml", "environments/staging.yaml"
    assert origins[("budget",)] == (base, 2)
    assert origins[("defaults", "http", "timeout")] == (own, 5)
    assert origins[("defaults", "http", "latency_budget")] == (base, 6)
    assert origins[("components", 0, "name")] == (base, 11)
    assert origins[("components", 1, "name")] == (own, 7)
    assert origins[("components", 1, "kind")] == (base, 16)
    assert origins[("components", 1, "health", 0, "url")] == (own, 8)
    assert origins[("components", 2, "kind")] == (own, 11)


def test_several_bases_merge_in_order_the_later_winning_and_a_base_may_extend_a_base(tmp_path):
    env_dir = estate(
        tmp_path,
        {
            "environments/base/core.yaml": "budget: 1m\ndescription: core\nlinks: {a: 'https://a.example.com'}\n",
            "environments/base/eu.yaml": "extends: core.yaml\nbudget: 2m\nlinks: {b: 'https://b.example.com'}\n",
            "environments/base/big.yaml": "budget: 3m\ndescription: big\n",
            "environments/prod.yaml": "extends: [base/eu.yaml, base/big.yaml]\nname: prod\n"
            + "components:\n  - {name: web, kind: endpoint, health: [{url: 'https://w.example.com/h'}]}\n",
        },
    )
    env = load_environment("prod", env_dir)
    assert (env.budget, env.description) == (180, "big")
    assert env.links == {"a": "https://a.example.com", "b": "https://b.example.com"}


def test_a_base_shared_by_two_bases_is_not_a_cycle(tmp_path):
    endpoint = "components:\n  - {name: web, kind: endpoint, health: [{url: 'https://w.example.com/h'}]}\n"
    env_dir = estate(
        tmp_path,
        {
            "environments/base/root.yaml": endpoint,
            "environments/base/a.yaml": "extends: root.yaml\nbudget: 1m\n",
            "environments/base/b.yaml": "extends: root.yaml\ndescription: b\n",
            "environments/prod.yaml": "extends: [base/a.yaml, base/b.yaml]\nname: prod\n",
        },
    )
    env = load_environment("prod", env_dir)
    assert (env.budget, env.description, [c.name for c in env.components]) == (60, "b", ["web"])


def test_a_name_written_twice_in_one_file_stays_twice_and_is_reported(tmp_path):
    env = STAGING + "  - {name: extra, kind: endpoint, health: [{url: 'https://e.example.com/h'}]}\n"
    assert problems_of(staging(tmp_path, env=env), "staging") == [
        "environments/staging.yaml:13: components[3].name: 'extra' is defined twice"
    ]


def test_bases_in_a_subfolder_are_never_offered_as_environments(tmp_path):
    assert known_environments(staging(tmp_path)) == ["staging"]


def test_the_shipped_environments_load_as_before():
    for name in known_environments(ROOT / "environments"):
        assert isinstance(load_environment(name, ROOT / "environments"), Environment)


# ---- problems are reported where the value came from --------------------------------------------------------------


def test_a_bad_value_in_the_base_is_reported_at_its_line_in_the_base(tmp_path):
    base = PLATFORM.replace("    kind: endpoint\n    health:\n", "    kind: deploy\n    health:\n")
    assert problems_of(staging(tmp_path, base=base), "staging") == [
        f"environments/base/platform.yaml:16: components[1].kind: 'deploy' is not one of: {KIND_LIST}"
    ]


def test_a_bad_value_in_the_extending_file_is_reported_there_and_first(tmp_path):
    base = PLATFORM.replace("budget: 5m", "budget: soon")
    env = STAGING.replace("timeout: 10s", "timeout: -1s")
    problems = problems_of(staging(tmp_path, base=base, env=env), "staging")
    assert [p.split(": ")[0] for p in problems] == ["environments/staging.yaml:5", "environments/base/platform.yaml:2"]
    assert problems[0].startswith("environments/staging.yaml:5: defaults.http.timeout: ")
    assert problems[1].startswith("environments/base/platform.yaml:2: budget: ")


def test_an_unknown_key_in_a_base_is_an_error(tmp_path):
    base = PLATFORM + "nmae: x\n"
    (problem,) = problems_of(staging(tmp_path, base=base), "staging")
    assert problem.startswith("environments/base/platform.yaml:23: nmae: unknown key; allowed keys: azure, budget, ")


def test_a_cross_check_problem_is_reported_where_the_component_was_written(tmp_path):
    base = PLATFORM + "  - {name: pay, kind: deployment, cluster: aks, namespace: pay}\n"
    assert problems_of(staging(tmp_path, base=base), "staging") == [
        "environments/base/platform.yaml:23: components[2].cluster: 'aks' is not one of: none defined under clusters"
    ]


def test_the_name_a_base_gives_must_still_match_the_extending_file(tmp_path):
    env = STAGING.replace("name: staging\n", "")
    assert problems_of(staging(tmp_path, base="name: platform\n" + PLATFORM, env=env), "staging") == [
        "environments/base/platform.yaml:1: name: 'platform' does not match the file name; expected 'staging'"
    ]


def test_a_key_neither_file_writes_is_missing_in_the_extending_file(tmp_path):
    assert problems_of(staging(tmp_path, base="budget: 5m\n", env="extends: base/platform.yaml\n"), "staging") == [
        "environments/staging.yaml:1: (top level): missing required key 'name'",
        "environments/staging.yaml:1: (top level): missing required key 'components'",
    ]


# ---- every extends: problem, word for word -------------------------------------------------------------------------

ENDPOINT = "components:\n  - {name: web, kind: endpoint, health: [{url: 'https://w.example.com/h'}]}\n"

EXTENDS_CASES = [
    (
        "missing base",
        {"environments/prod.yaml": "name: prod\nextends: base/platfrom.yaml\n" + ENDPOINT},
        [
            "environments/prod.yaml:2: extends: 'base/platfrom.yaml': there is no environments/base/platfrom.yaml (a "
            "base's path is relative to the file that extends it)"
        ],
    ),
    (
        "base is a list",
        {"environments/prod.yaml": "name: prod\nextends: base/b.yaml\n", "environments/base/b.yaml": "- a\n- b\n"},
        ["environments/base/b.yaml:1: expected a mapping at the top level, got list"],
    ),
    (
        "base is empty",
        {"environments/prod.yaml": "name: prod\nextends: base/b.yaml\n", "environments/base/b.yaml": "# nothing\n"},
        ["environments/base/b.yaml:1: expected a mapping at the top level, got NoneType"],
    ),
    (
        "extends is a number",
        {"environments/prod.yaml": "name: prod\nextends: 3\n" + ENDPOINT},
        ["environments/prod.yaml:2: extends: expected the path of a base file (or a list of them), got 3"],
    ),
    (
        "extends is a mapping",
        {"environments/prod.yaml": "name: prod\nextends: {file: b.yaml}\n" + ENDPOINT},
        [
            "environments/prod.yaml:2: extends: expected the path of a base file (or a list of them), got "
            "{'file': 'b.yaml'}"
        ],
    ),
    (
        "an entry of the list is not a path",
        {
            "environments/prod.yaml": "name: prod\nextends:\n  - base/b.yaml\n  - ''\n",
            "environments/base/b.yaml": ENDPOINT,
        },
        ["environments/prod.yaml:4: extends[1]: expected the path of a base file (or a list of them), got ''"],
    ),
    (
        "absolute path",
        {"environments/prod.yaml": "name: prod\nextends: /etc/base.yaml\n" + ENDPOINT},
        [
            "environments/prod.yaml:2: extends: '/etc/base.yaml' is not relative; give the base's path relative to "
            "environments/prod.yaml"
        ],
    ),
    (
        "home path",
        {"environments/prod.yaml": "name: prod\nextends: ~/base.yaml\n" + ENDPOINT},
        [
            "environments/prod.yaml:2: extends: '~/base.yaml' is not relative; give the base's path relative to "
            "environments/prod.yaml"
        ],
    ),
    (
        "outside the repository",
        {"environments/prod.yaml": "name: prod\nextends: ../../outside.yaml\n" + ENDPOINT, "../outside.yaml": "{}\n"},
        [
            "environments/prod.yaml:2: extends: '../../outside.yaml' leads outside the repository; bases are read "
            "only from inside it (e.g. environments/base/)"
        ],
    ),
    (
        "cycle through a base",
        {
            "environments/a.yaml": "name: a\nextends: base/b.yaml\n" + ENDPOINT,
            "environments/base/b.yaml": "budget: 1m\nextends: ../a.yaml\n",
        },
        [
            "environments/base/b.yaml:2: extends: environments/a.yaml -> environments/base/b.yaml -> "
            "environments/a.yaml is a cycle; a file cannot extend itself, directly or through a base"
        ],
    ),
    (
        "a file extends itself",
        {"environments/a.yaml": "name: a\nextends: [a.yaml]\n" + ENDPOINT},
        [
            "environments/a.yaml:2: extends[0]: environments/a.yaml -> environments/a.yaml is a cycle; a file cannot "
            "extend itself, directly or through a base"
        ],
    ),
    (
        "a bad base does not hide the extending file's other problems",
        {
            "environments/a.yaml": "name: a\nextends: [base/b.yaml, base/none.yaml]\n" + ENDPOINT,
            "environments/base/b.yaml": "extends: 7\n",
        },
        [
            "environments/base/b.yaml:1: extends: expected the path of a base file (or a list of them), got 7",
            "environments/a.yaml:2: extends[1]: 'base/none.yaml': there is no environments/base/none.yaml (a base's "
            "path is relative to the file that extends it)",
        ],
    ),
    (
        "remove is not true",
        {"environments/prod.yaml": "name: prod\nextends: b.yaml\ncomponents:\n  - {name: web, remove: 'yes'}\n"},
        ["environments/prod.yaml:4: components[0].remove: expected true (drop the base's component), got 'yes'"],
    ),
    (
        "remove without a name",
        {"environments/prod.yaml": "name: prod\nextends: b.yaml\ncomponents:\n  - remove: true\n"},
        ["environments/prod.yaml:4: components[0]: remove: true needs the name of the base's component to drop"],
    ),
    (
        "remove with other keys",
        {
            "environments/prod.yaml": "name: prod\nextends: b.yaml\ncomponents:\n"
            "  - {name: web, remove: true, kind: endpoint, cluster: a}\n"
        },
        [
            "environments/prod.yaml:4: components[0]: remove: true drops the base's 'web' and takes no other keys; "
            "got cluster, kind"
        ],
    ),
    (
        "remove a name the bases do not have",
        {"environments/prod.yaml": "name: prod\nextends: b.yaml\ncomponents:\n  - {name: api, remove: true}\n"},
        [
            "environments/prod.yaml:4: components[0]: 'api' is not a component of the bases (or is already merged "
            "above), so there is nothing to remove"
        ],
    ),
    (
        "remove in a file without a base",
        {"environments/prod.yaml": "name: prod\n" + ENDPOINT + "  - {name: web, remove: true}\n"},
        [
            "environments/prod.yaml:4: components[1]: 'web' is not a component of the bases (or is already merged "
            "above), so there is nothing to remove"
        ],
    ),
]


@pytest.mark.parametrize(("files", "messages"), [c[1:] for c in EXTENDS_CASES], ids=[c[0] for c in EXTENDS_CASES])
def test_extends_problems_word_for_word(tmp_path, files, messages):
    repo = tmp_path / "repo"
    files = {"environments/b.yaml": ENDPOINT, **files}
    name = "a" if "environments/a.yaml" in files else "prod"
    assert problems_of(estate(repo, files), name) == messages


def test_a_base_that_does_not_parse_is_named(tmp_path):
    assert problems_of(staging(tmp_path, base="budget: [1m\n"), "staging") == [
        "environments/base/platform.yaml:2: invalid YAML: expected ',' or ']', but got '<stream end>'"
    ]


def test_a_symlink_out_of_the_repository_is_refused(tmp_path):
    (tmp_path / "elsewhere.yaml").write_text(ENDPOINT)
    env_dir = estate(tmp_path / "repo", {"environments/prod.yaml": "name: prod\nextends: base.yaml\n"})
    (env_dir / "base.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    assert problems_of(env_dir, "prod") == [
        "environments/prod.yaml:2: extends: 'base.yaml' leads outside the repository; bases are read only from inside "
        "it (e.g. environments/base/)"
    ]


# ---- YAML merge keys -----------------------------------------------------------------------------------------------


def parsed(tmp_path: Path, text: str) -> tuple[Any, dict[Any, int]]:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return load_yaml_with_lines(path, "x.yaml")


def yaml_problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(YamlSourceError) as caught:
        parsed(tmp_path, text)
    return str(caught.value)


def test_merge_key_keys_written_in_the_mapping_override_merged_ones(tmp_path):
    data, lines = parsed(tmp_path, "base: &b\n  x: 1\n  y: 2\nc:\n  <<: *b\n  y: 20\n")
    assert data["c"] == {"x": 1, "y": 20}
    assert (lines[("c", "x")], lines[("c", "y")]) == (2, 6)  # a merged value's line is under the anchor


def test_merge_key_list_earlier_wins_and_merged_mappings_merge_too(tmp_path):
    text = "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nr: &r {<<: *a, z: 3}\nc:\n  <<: [*r, *b]\n  w: 4\n"
    data, lines = parsed(tmp_path, text)
    assert data["c"] == {"x": 1, "z": 3, "y": 2, "w": 4}
    assert (lines[("c", "x")], lines[("c", "y")], lines[("c", "z")], lines[("c", "w")]) == (1, 2, 3, 6)


def test_merge_key_quoted_is_an_ordinary_key(tmp_path):
    data, _ = parsed(tmp_path, "a: &a {x: 1}\nc: {'<<': *a}\n")
    assert data["c"] == {"<<": {"x": 1}}


def test_a_key_written_twice_is_still_a_duplicate_with_a_merge_key(tmp_path):
    assert yaml_problem(tmp_path, "a: &a {x: 1}\nc:\n  <<: *a\n  y: 1\n  y: 2\n") == "x.yaml:5: c.y: duplicate key"


def test_two_merge_keys_in_one_mapping_are_a_duplicate(tmp_path):
    text = "a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n"
    assert yaml_problem(tmp_path, text) == "x.yaml:5: c.<<: duplicate key"


def test_merging_a_scalar_or_a_list_of_lists_is_refused(tmp_path):
    expected = "expected an alias of a mapping (<<: *base) or a list of them (<<: [*a, *b]), got"
    assert yaml_problem(tmp_path, "s: &s text\nc: {<<: *s}\n") == f"x.yaml:1: c.<<: {expected} 'text'"
    assert yaml_problem(tmp_path, "c:\n  <<: [[a]]\n") == f"x.yaml:2: c.<<: {expected} a list"


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    assert yaml_problem(tmp_path, "a: &a\n  b: *a\n") == "x.yaml:1: a.b: an alias refers to the node that holds it"
    text = "a: &a\n  b: 1\n  c: {<<: *a}\n"  # c merges a, whose c is c itself
    assert yaml_problem(tmp_path, text) == "x.yaml:3: a.c.c: an alias refers to the node that holds it"
    text = "a: &a {<<: *a, b: 1}\n"
    assert yaml_problem(tmp_path, text) == "x.yaml:1: a.<<: merges the mapping that holds it"


def test_an_environment_with_merge_keys_loads_and_reports_merged_values_at_the_anchor(tmp_path):
    text = (
        "name: prod\n"
        "components:\n"
        "  - &web\n"
        "    name: web\n"
        "    kind: endpoint\n"
        "    health: [{url: 'https://web.example.com/health'}]\n"
        "  - <<: *web\n"
        "    name: web-eu\n"
    )
    env = load_environment("prod", estate(tmp_path, {"environments/prod.yaml": text}))
    assert [(c.name, c.kind, c.health[0].url) for c in env.components] == [
        ("web", "endpoint", "https://web.example.com/health"),
        ("web-eu", "endpoint", "https://web.example.com/health"),
    ]
    bad = text.replace("https://web", "ftp://web")
    assert problems_of(estate(tmp_path, {"environments/prod.yaml": bad}), "prod") == [
        "environments/prod.yaml:6: components[0].health[0].url: expected an http:// or https:// URL, got "
        "'ftp://web.example.com/health'",
        "environments/prod.yaml:6: components[1].health[0].url: expected an http:// or https:// URL, got "
        "'ftp://web.example.com/health'",
    ]


# ---- --show-env ----------------------------------------------------------------------------------------------------


def test_show_env_prints_each_value_with_its_origin(tmp_path):
    text = show_environment("staging", staging(tmp_path))
    lines = text.splitlines()
    assert lines[0] == "# environments/staging.yaml, merged over environments/base/platform.yaml"
    shown = [re.sub(r"\s+#", " #", line) for line in lines]
    assert "name: staging # environments/staging.yaml:2" in shown
    assert "    timeout: 10s # environments/staging.yaml:5" in shown
    assert "    latency_budget: 2s # environments/base/platform.yaml:6" in shown
    assert "  - name: web # environments/base/platform.yaml:11" in shown
    assert "      - url: https://api.staging.example.com/health # environments/staging.yaml:8" in shown
    assert "legacy" not in text
    columns = {line.index("#") for line in lines[1:] if "#" in line}
    assert len(columns) == 1  # one column of origins


def run_pytest(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DV_SECRET_TOKEN": "tok-must-not-show"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "features", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A team's repository: the suite's pytest settings, a features/ folder, a base and an environment."""
    root = tmp_path / "repo"
    staging(root, env=STAGING + "azure:\n  credential: token-env\n  token_env: DV_SECRET_TOKEN\n  subscriptions: {}\n")
    (root / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (root / "features").mkdir()
    return root


def test_show_env_through_pytest_prints_valid_yaml_with_origins_and_exits_0_without_running(repo):
    result = run_pytest(repo, "--env", "staging", "--show-env")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# environments/staging.yaml, merged over environments/base/platform.yaml\n")
    assert re.search(r"\n    timeout: 10s +# environments/staging\.yaml:5\n", result.stdout)
    assert re.search(r"\n  - name: web +# environments/base/platform\.yaml:11\n", result.stdout)
    assert "Exit: --show-env: printed environment 'staging'; nothing was run" in result.stderr
    assert "tok-must-not-show" not in result.stdout + result.stderr
    assert "DV_SECRET_TOKEN" in result.stdout  # the variable's name, as written
    assert not (repo / "reports").exists()  # nothing ran, nothing was written
    data, _ = load_merged(repo / "environments" / "staging.yaml", "staging", repo)
    assert yaml.safe_load(result.stdout) == data


def test_show_env_of_a_bad_environment_is_a_usage_error_naming_the_base(repo):
    base = repo / "environments" / "base" / "platform.yaml"
    base.write_text(PLATFORM.replace("budget: 5m", "budgit: 5m"))
    result = run_pytest(repo, "--env", "staging", "--show-env")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: environments/base/platform.yaml:2: budgit: unknown key; allowed keys: " in result.stderr
    assert result.stdout == ""


def test_the_docs_example_loads_and_shows_as_documented(tmp_path):
    doc = (ROOT / "docs" / "environments.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    files = {block.splitlines()[0].split(":")[0].removeprefix("# "): block for block in blocks[:3]}
    assert sorted(files) == ["environments/base/platform.yaml", "environments/prod.yaml", "environments/staging.yaml"]
    env_dir = estate(tmp_path, files)
    staging_env, prod = load_environment("staging", env_dir), load_environment("prod", env_dir)
    assert [c.name for c in staging_env.components] == ["payments-api", "storefront"]
    assert staging_env.component("payments-api").namespace == "payments-staging"
    assert [c.name for c in prod.components] == ["payments-api", "storefront", "batch-reports", "fraud-scoring"]
    shown = [" ".join(line.split()) for line in show_environment("staging", env_dir).splitlines()]
    documented = [" ".join(line.split()) for line in blocks[-1].splitlines() if line.strip() != "..."]
    assert shown[: len(documented)] == documented


# ---- properties ----------------------------------------------------------------------------------------------------

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Keys whose first letter fixes the type of their value (m: mapping, l: list, else scalar): merging is associative
# only where every file gives a key the same kind of value (a scalar over a mapping drops the mapping's other keys).
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["a", "5s", "x y", "https://h"]))


def _mapping(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    keys = ["sa", "sb", "sc"] + (["ma", "mb", "la"] if depth else [])
    return st.fixed_dictionaries({}, optional={key: _typed(key, depth) for key in keys})


def _typed(key: str, depth: int) -> st.SearchStrategy[Any]:
    if key.startswith("m"):
        return _mapping(depth - 1)
    if key.startswith("l"):
        return st.lists(scalars, max_size=3)
    return scalars


components = st.lists(
    st.tuples(st.sampled_from(["web", "api", "db", "q"]), _mapping(1)), max_size=4, unique_by=lambda t: t[0]
).map(lambda entries: [{"name": name, **body} for name, body in entries])
documents = st.fixed_dictionaries({}, optional={"top": _mapping(2), "components": components, "sa": scalars})


def write(path: Path, data: Any, extends: str | list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = ({"extends": extends} if extends else {}) | data
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


@SETTINGS
@given(document=documents)
def test_merging_over_an_empty_base_gives_the_file(tmp_path_factory, document):
    root = tmp_path_factory.mktemp("repo")
    (root / "base.yaml").write_text("{}\n")
    write(root / "env.yaml", document, extends="base.yaml")
    data, origins = load_merged(root / "env.yaml", "env.yaml", root)
    assert data == document
    assert {file for file, _ in origins.values()} == {"env.yaml"}


@SETTINGS
@given(a=documents, b=documents, c=documents)
def test_merging_a_chain_is_associative(tmp_path_factory, a, b, c):
    root = tmp_path_factory.mktemp("repo")
    write(root / "a.yaml", a)
    write(root / "b.yaml", b, extends="a.yaml")
    write(root / "c.yaml", c, extends="b.yaml")
    chained, _ = load_merged(root / "c.yaml", "c.yaml", root)  # (a + b) + c
    write(root / "c-over-b.yaml", c, extends="b-alone.yaml")
    write(root / "b-alone.yaml", b)
    b_and_c, _ = load_merged(root / "c-over-b.yaml", "c-over-b.yaml", root)
    write(root / "bc.yaml", b_and_c, extends="a.yaml")
    grouped, _ = load_merged(root / "bc.yaml", "bc.yaml", root)  # a + (b + c)
    write(root / "listed.yaml", c, extends=["a.yaml", "b-alone.yaml"])
    listed, _ = load_merged(root / "listed.yaml", "listed.yaml", root)  # extends: [a, b]: a, then b, then the file
    assert chained == grouped == listed


LOCAL = yaml.safe_load((ROOT / "environments" / "local.yaml").read_text())
junk = st.one_of(
    scalars, st.lists(scalars, max_size=2), st.dictionaries(st.sampled_from(["x", "kind", "url"]), scalars)
)
paths = st.lists(st.sampled_from(["components", 0, 1, "kind", "health", "url", "defaults", "http", "budget", "x"]))


def _set(document: Any, path: list[Any], value: Any) -> None:
    """Put `value` at `path` where the path exists, else leave the document as it is."""
    node = document
    for key in path[:-1]:
        if isinstance(node, dict) and isinstance(key, str):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value


@SETTINGS
@given(
    base_changes=st.lists(st.tuples(paths.filter(bool), junk), max_size=3),
    env_changes=st.lists(st.tuples(paths.filter(bool), junk), max_size=3),
    split=st.integers(0, 3),
)
def test_every_reported_line_exists_in_the_file_named_and_show_env_round_trips(
    tmp_path_factory, base_changes, env_changes, split
):
    base = json.loads(json.dumps({k: v for k, v in LOCAL.items() if k != "name"}))
    env = {"name": "prop", "components": json.loads(json.dumps(LOCAL["components"][:split]))}
    for path, value in base_changes:
        _set(base, path, value)
    for path, value in env_changes:
        _set(env, path, value)
    root = tmp_path_factory.mktemp("repo")
    write(root / "environments" / "base" / "local.yaml", base)
    write(root / "environments" / "prop.yaml", env, extends="base/local.yaml")
    try:
        load_environment("prop", root / "environments")
    except ConfigError as exc:
        for problem in exc.problems:
            match = re.match(r"^(environments/[\w/.]+\.yaml):(\d+): \S", problem)
            assert match, problem
            written = (root / match[1]).read_text().count("\n")
            assert 1 <= int(match[2]) <= max(written, 1), problem
        return
    data, _ = load_merged(root / "environments" / "prop.yaml", "environments/prop.yaml", root)
    assert yaml.safe_load(show_environment("prop", root / "environments")) == data
