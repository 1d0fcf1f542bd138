"""reports/baseline-<env>.json: written atomically from recorded states, and loaded strictly, with a message that
says how to record one whenever it cannot be used."""

from __future__ import annotations

import json

import pytest

from deploy_verify.baseline import BaselineMissing, BaselineSource, load_baseline, write_baseline
from deploy_verify.checks.baseline import ContainerAppState, HelmState, WorkloadState, differences

HOW = "record one before the deploy with `pytest features --env prod -m predeploy`"
WORKLOAD = WorkloadState(
    kind="deployment",
    target="Deployment:shop/web",
    revision=3,
    template_hash="abc123",
    images={"web": "r/web:1.0.0"},
    digests={"web": ["r/web@sha256:" + "a" * 64]},
)


def test_written_baseline_loads_back_equal(tmp_path):
    path = tmp_path / "baseline-prod.json"
    written = write_baseline(path, "prod", "2026.11", {"web": WORKLOAD.model_dump_json()})
    assert load_baseline(path, "prod") == written
    assert not list(tmp_path.glob("*.json.*"))  # no partial file left behind
    assert BaselineSource(path, "prod").entry("web") == (WORKLOAD, written.recorded_at)


def test_missing_file_says_how_to_record_one(tmp_path):
    with pytest.raises(BaselineMissing) as caught:
        load_baseline(tmp_path / "baseline-prod.json", "prod")
    assert str(caught.value) == f"no baseline for environment 'prod' at {tmp_path / 'baseline-prod.json'}; {HOW}"


def test_malformed_file_names_line_and_key(tmp_path):
    path = tmp_path / "baseline-prod.json"
    document = {
        "environment": "prod",
        "recorded_at": "2026-11-22T00:00:00+00:00",
        "components": {"web": {"kind": "deployment", "target": "x", "images": {}}},
    }
    path.write_text(json.dumps(document, indent=2))
    with pytest.raises(BaselineMissing) as caught:
        load_baseline(path, "prod")
    assert str(caught.value) == (
        f"baseline {path} is malformed: {path}:5: components.web.deployment: missing required key "
        f"'template_hash'; {HOW}"
    )


def test_not_json_at_all(tmp_path):
    path = tmp_path / "baseline-prod.json"
    path.write_text("{not: [json")
    with pytest.raises(BaselineMissing) as caught:
        load_baseline(path, "prod")
    assert str(caught.value).startswith(f"baseline {path}:")
    assert str(caught.value).endswith(HOW)


def test_baseline_of_another_environment_is_refused(tmp_path):
    path = tmp_path / "baseline-prod.json"
    write_baseline(path, "staging", None, {})
    with pytest.raises(BaselineMissing) as caught:
        load_baseline(path, "prod")
    assert str(caught.value) == f"baseline {path} was recorded for environment 'staging', not 'prod'; {HOW}"


def test_component_without_an_entry(tmp_path):
    path = tmp_path / "baseline-prod.json"
    written = write_baseline(path, "prod", None, {"web": WORKLOAD.model_dump_json()})
    with pytest.raises(BaselineMissing) as caught:
        BaselineSource(path, "prod").entry("api")
    assert str(caught.value) == (
        f"the baseline {path} of {written.recorded_at} has no entry for 'api' (it has: web); {HOW}"
    )


def test_differences_ignore_revision_numbers_but_not_content():
    undone = WORKLOAD.model_copy(update={"revision": 5})
    assert differences(WORKLOAD, undone) == []
    other = WORKLOAD.model_copy(update={"template_hash": "def456", "images": {"web": "r/web:2.0.0"}})
    assert differences(WORKLOAD, other) == [
        "image web: baseline r/web:1.0.0, now r/web:2.0.0",
        "pod template: baseline abc123 (revision 3), now def456 (revision 3)",
    ]
    helm = HelmState(
        kind="helm",
        target="h",
        revision=2,
        status="deployed",
        chart="c-1.0.0",
        app_version="1",
        manifest="m",
        values="v",
    )
    assert differences(helm, helm.model_copy(update={"revision": 4})) == []
    assert differences(helm, helm.model_copy(update={"revision": 4, "status": "failed"})) == [
        "status: revision 4 is failed"
    ]
    app = ContainerAppState(kind="containerapp", target="a", latest_revision="a--2", traffic={"a--2": 100}, images={})
    assert differences(app, WORKLOAD) == ["kind: baseline containerapp, now deployment"]
