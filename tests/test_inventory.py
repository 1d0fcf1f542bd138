"""The version inventory across environments, read-only, on the testbed: versions per component and environment,
drift marked, unreadable cells said, JSON and Allure written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from deploy_verify.inventory import collect, render_table

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = str(ROOT / ".testbed" / "kubeconfig.yaml")


def write_env(folder: Path, name: str, components: list[dict], context: str = "kwok-dv-a") -> None:
    clusters = {
        "dv-a": {"context": context, "kubeconfig": KUBECONFIG},
        "dv-b": {"context": "kwok-dv-b", "kubeconfig": KUBECONFIG},
    }
    document = {"name": name, "budget": "30s", "clusters": clusters, "components": components}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(document))


def estate(folder: Path) -> Path:
    """staging runs storefront 2.3.0 and the catalog release; prod runs storefront 2.2.9 (the testbed's stale one)."""
    folder.mkdir()
    storefront = {"name": "storefront", "kind": "deployment", "cluster": "dv-a", "workload": "storefront"}
    catalog = {"name": "catalog", "kind": "helm", "cluster": "dv-b", "namespace": "catalog"}
    web = {"name": "web", "kind": "endpoint", "tls": [{"host": "localhost", "port": 18441}]}
    write_env(folder, "staging", [{**storefront, "namespace": "shop"}, catalog, web])
    write_env(folder, "prod", [{**storefront, "namespace": "broken"}, web])
    write_env(folder, "gone", [{**storefront, "namespace": "shop"}], context="kwok-nowhere")
    return folder


def test_inventory_shows_versions_and_drift(testbed, tmp_path):
    inventory = collect(["staging", "prod", "gone", "nosuch"], estate(tmp_path / "envs"))
    table = render_table(inventory).splitlines()
    assert table[:4] == [
        "  component   staging  prod   gone  nosuch",
        "  catalog     2.4.0    -      -     -",
        "* storefront  2.3.0    2.2.9  ?     -",
        "  web         n/a      n/a    -     -",
    ]
    assert table[4] == "drift (*): storefront"
    assert table[5].startswith("nosuch: not read: unknown environment 'nosuch'")
    assert table[6].startswith("? storefront in gone: cluster dv-a: kubeconfig")
    assert "has no context 'kwok-nowhere'" in table[6]
    assert not inventory.complete


def test_cli_writes_json_and_allure_and_exits_by_completeness(testbed, tmp_path):
    envs = estate(tmp_path / "envs")
    command = [sys.executable, "-m", "deploy_verify.inventory", "staging", "prod", f"--env-dir={envs}"]
    command += [f"--json={tmp_path / 'inventory.json'}", f"--allure-results={tmp_path / 'allure'}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "* storefront  2.3.0    2.2.9" in done.stdout
    document = json.loads((tmp_path / "inventory.json").read_text())
    assert document["components"]["storefront"]["drift"] is True
    assert document["components"]["storefront"]["versions"]["prod"] == {
        "version": "2.2.9",
        "image": "registry.example.test/shop/storefront:2.2.9",
        "problem": None,
    }
    results = [json.loads(p.read_text()) for p in (tmp_path / "allure").glob("*-result.json")]
    assert [(r["name"], r["status"], r["statusDetails"]["message"]) for r in results] == [
        ("Version inventory", "passed", "drift: storefront")
    ]
    names = {a["name"] for a in results[0]["attachments"]}
    assert names == {"version inventory", "version inventory (JSON)"}
    for attachment in results[0]["attachments"]:
        assert (tmp_path / "allure" / attachment["source"]).is_file()


def test_inventory_is_read_only(testbed, tmp_path):
    """Every request the inventory makes is a GET: the readers it uses refuse anything else."""
    from deploy_verify.clients import KubeClients
    from deploy_verify.config import load_environment

    env = load_environment("staging", estate(tmp_path / "envs"))
    reader = KubeClients(env).reader("dv-a")
    assert reader.api.call_api.__name__ == "read_only_call"
