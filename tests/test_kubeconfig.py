"""The run's kubeconfig, read once (checks.transports.kubeconfig): kubectl's merge rules for $KUBECONFIG, relative
certificate paths against their own file, one parse per process however many clusters, a file read again when it
changes, and each client's configuration holding its own context, cluster and user only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from deploy_verify.checks.transports import kubeconfig
from deploy_verify.checks.transports.kubeconfig import KubeconfigProblem, client_config, configure, merged, paths_for


def write(path: Path, contexts: dict[str, tuple[str, str]], servers: dict[str, str], **extra: object) -> Path:
    """contexts: name -> (cluster, user); servers: cluster -> server URL."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": c, "cluster": {"server": s, "certificate-authority": "ca.crt"}} for c, s in servers.items()
        ],
        "contexts": [{"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()],
        "users": [{"name": u, "user": {"token": f"token-of-{u}"}} for _, u in contexts.values()],
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    (path.parent / "ca.crt").write_text("not checked here")
    return path


def configured(context: str, kubeconfig: str | None) -> k8s.Configuration:
    configuration = k8s.Configuration()
    configure(configuration, context, kubeconfig)
    return configuration


def test_a_name_is_taken_from_the_first_file_that_defines_it_and_paths_resolve_against_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write(tmp_path / "a" / "config", {"prod": ("prod", "ops")}, {"prod": "https://prod.a:6443"})
    second = write(
        tmp_path / "b" / "config",
        {"prod": ("prod", "ops"), "stage": ("stage", "dev")},
        {"prod": "https://prod.b:6443", "stage": "https://stage.b:6443"},
    )
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}::{second}")
    prod, stage = configured("prod", None), configured("stage", None)
    assert prod.host == "https://prod.a:6443"  # the first file's, as kubectl merges
    assert stage.host == "https://stage.b:6443"
    assert Path(str(prod.ssl_ca_cert)).parent == first.parent  # relative to the file that named it
    assert Path(str(stage.ssl_ca_cert)).parent == second.parent
    assert stage.api_key == {"BearerToken": "Bearer token-of-dev"}
    assert paths_for(None) == (str(first), str(tmp_path / "missing"), str(second))
    assert merged(paths_for(None)).files == (str(first), str(second))  # a listed file that does not exist: skipped


def test_the_files_are_parsed_once_per_process_however_many_clusters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"org-{n:04d}" for n in range(1000)]
    path = write(tmp_path / "estate", {n: (n, n) for n in names}, {n: f"https://{n}.example:6443" for n in names})
    parsed: list[str] = []
    real = kubeconfig._parse

    def counted(path: str) -> dict:
        parsed.append(path)
        return real(path)

    monkeypatch.setattr(kubeconfig, "_parse", counted)
    for name in names:
        node = client_config(name, str(path))
        # Only this context, its cluster and its user: the loader's lookups stay O(1) at 1000 contexts.
        assert [len(node.value[s]) for s in ("contexts", "clusters", "users")] == [1, 1, 1]
    assert parsed == [str(path)]
    assert configured("org-0999", str(path)).host == "https://org-0999.example:6443"


def test_a_file_that_changes_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubeconfig, "RECHECK_S", 0.0)  # the next look, not up to a second later
    path = write(tmp_path / "config", {"prod": ("prod", "ops")}, {"prod": "https://old:6443"})
    assert configured("prod", str(path)).host == "https://old:6443"
    write(path, {"prod": ("prod", "ops")}, {"prod": "https://a-new-server:6443"})  # `az aks get-credentials` again
    assert configured("prod", str(path)).host == "https://a-new-server:6443"


def test_a_file_per_cluster_is_looked_at_once_per_second_not_once_per_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$KUBECONFIG naming a file per cluster (200 here): building every cluster's client looks at the files' sizes
    and times once, not 200 times 200; a file written again is seen once RECHECK_S has passed."""
    files = [
        write(
            tmp_path / f"org-{n:03d}" / "config",
            {f"org-{n:03d}": (f"c{n}", "u")},
            {f"c{n}": f"https://org-{n:03d}:6443"},
        )
        for n in range(200)
    ]
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(str(f) for f in files))
    looked: list[str] = []
    real = kubeconfig._stamp

    def counted(path: str) -> tuple[str, int, int]:
        looked.append(path)
        return real(path)

    monkeypatch.setattr(kubeconfig, "_stamp", counted)
    monkeypatch.setattr(kubeconfig, "RECHECK_S", 60.0)
    for n in range(200):
        assert configured(f"org-{n:03d}", None).host == f"https://org-{n:03d}:6443"
    assert len(looked) == 200  # each file once
    write(files[7], {"org-007": ("c7", "u")}, {"c7": "https://moved:6443"})
    assert configured("org-007", None).host == "https://org-007:6443"  # within the window: the parse held
    monkeypatch.setattr(kubeconfig, "RECHECK_S", 0.0)
    assert configured("org-007", None).host == "https://moved:6443"


def test_an_unknown_context_names_the_ones_there_are(tmp_path: Path) -> None:
    path = write(tmp_path / "config", {"b": ("b", "u"), "a": ("a", "u")}, {"a": "https://a:1", "b": "https://b:1"})
    with pytest.raises(KubeconfigProblem) as caught:
        client_config("c", str(path))
    assert str(caught.value) == f"kubeconfig {path} has no context 'c'; known contexts: a, b"


def test_a_context_whose_cluster_is_missing_says_so(tmp_path: Path) -> None:
    path = write(tmp_path / "config", {"a": ("gone", "u")}, {"other": "https://other:1"})
    with pytest.raises(KubeconfigProblem, match=r"context 'a' names cluster 'gone', which it lacks$"):
        client_config("a", str(path))


def test_a_context_without_a_user_is_anonymous(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://c:1"}}],
                "contexts": [{"name": "a", "context": {"cluster": "c"}}],
            }
        )
    )
    configuration = configured("a", str(path))
    assert (configuration.host, configuration.api_key) == ("https://c:1", {})


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("clusters: [\n", "is not YAML: did not find expected node content at line 2, column 1"),
        ("", "is empty or not a mapping"),
        ("- a\n- b\n", "is empty or not a mapping"),
        ("contexts: {a: b}\n", "contexts is not a list"),
        ("contexts: [{context: {}}]\n", "every entry of contexts needs a name"),
    ],
)
def test_a_broken_file_is_one_line_naming_it(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(KubeconfigProblem) as caught:
        client_config("a", str(path))
    assert str(path) in str(caught.value)
    assert said in str(caught.value)


def test_no_file_at_all_is_a_problem_not_an_empty_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing-here"))
    with pytest.raises(KubeconfigProblem, match=r"^no kubeconfig file exists of: .*nothing-here$"):
        client_config("a", None)


def test_the_c_parser_is_the_one_used_where_pyyaml_has_it() -> None:
    assert kubeconfig.SafeLoader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
