"""Promotion: only what a green post-deploy run verified in the source environment, and what still runs there, is
promoted. Unit cases on the decision, then the whole flow through the suite on the testbed."""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy_verify.checks.promotion import Candidate, PromotionFacts, check_promotion
from deploy_verify.checks.result import Verdict

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "registry.example.test/shop/web"


def verdict(version: str = "1.0.0", outcome: str = "green", markers: str = "postdeploy") -> dict:
    return {
        "environment": "staging",
        "markers": markers,
        "verdict": outcome,
        "reason": "1 passed" if outcome == "green" else "1 failed of 1",
        "finished": "2026-11-22T00:00:00+00:00",
        "release": {"expected": {"web": {"version": version}}},
        "tests": [{"component": "web", "check": "image_identity", "outcome": "pass"}],
    }


def facts(candidate: str | None = "1.0.0", running: str | None = "1.0.0", **kw) -> PromotionFacts:
    return PromotionFacts(
        "web",
        "staging",
        Candidate(version=candidate) if candidate else None,
        kw.pop("document", None) or verdict(**kw),
        "reports/verdict-staging.json",
        {"image": f"{IMAGE}:{running}", "version": running} if running else None,
    )


@pytest.mark.parametrize(
    ("case", "verdict_", "message"),
    [
        (
            facts(),
            Verdict.PASS,
            "version 1.0.0 was verified green in staging (2026-11-22T00:00:00+00:00) and still runs there",
        ),
        (
            facts(candidate="1.1.0"),
            Verdict.FAIL,
            "the candidate version 1.1.0 is not what staging verified: its last green post-deploy run checked "
            "version 1.0.0",
        ),
        (
            facts(outcome="red"),
            Verdict.FAIL,
            "the last post-deploy run of staging was red (1 failed of 1); a red release is never promoted",
        ),
        (
            facts(markers="predeploy"),
            Verdict.FAIL,
            "the last recorded run of staging (reports/verdict-staging.json) was not a post-deploy run "
            "(-m 'predeploy'); verify staging with -m postdeploy first",
        ),
        (
            facts(running="1.0.1-hotfix"),
            Verdict.FAIL,
            "staging runs version 1.0.1-hotfix, not the verified 1.0.0: a manual deployment replaced what the "
            "pipeline verified, and an unverified build is never promoted; redeploy the release to staging and "
            "verify it again",
        ),
        (
            facts(candidate=None),
            Verdict.ERROR,
            "no candidate version for this component: pass the release manifest being promoted with --release FILE",
        ),
    ],
    ids=["verified", "other-version", "red-source", "not-postdeploy", "manual-deployment", "no-candidate"],
)
def test_promotion_decision(case, verdict_, message):
    result = check_promotion(case)
    assert (result.verdict, result.message) == (verdict_, message)


def test_an_unverified_component_is_not_promoted():
    document = verdict()
    document["release"]["expected"] = {}
    result = check_promotion(facts(document=document))
    assert result.verdict is Verdict.FAIL
    assert "did not check web's version" in result.message


def soaked(outcome: str | None, duration: float = 600.0) -> dict:
    document = verdict()
    if outcome is not None:
        document["soak"] = {"outcome": outcome, "duration_s": duration, "every_s": 30.0}
    return document


REQUIRED = (
    "this environment requires a soak of at least 10m in staging before promotion (requires_soak), but the last "
    "post-deploy run of staging"
)
AGAIN = "verify staging again with -m postdeploy --soak 10m"


@pytest.mark.parametrize(
    ("document", "required", "verdict_", "message"),
    [
        (soaked("held", 600), 600.0, Verdict.PASS, None),
        (soaked("held", 1800), 600.0, Verdict.PASS, None),
        (soaked(None), None, Verdict.PASS, None),  # nothing required: a run without a soak promotes as before
        (soaked(None), 600.0, Verdict.FAIL, f"{REQUIRED} did not soak; {AGAIN}"),
        (soaked("held", 300), 600.0, Verdict.FAIL, f"{REQUIRED} held for only 5m; {AGAIN}"),
        # A soak that did not start belongs to a red run (refused above); on its own it is still no soak.
        (soaked("not started"), 600.0, Verdict.FAIL, f"{REQUIRED} did not soak; {AGAIN}"),
    ],
    ids=["held-long-enough", "held-longer", "not-required", "no-soak", "too-short", "not-started"],
)
def test_a_promotion_that_requires_a_soak_needs_the_source_to_have_held_that_long(
    document, required, verdict_, message
):
    case = facts(document=document)
    result = check_promotion(dataclasses.replace(case, required_soak=required))
    assert result.verdict is verdict_, result.message
    if message is not None:
        assert result.message == message
    assert json.loads(result.evidence[0].content)["verdict"]["soak"] == document.get("soak")


# --- through the suite -------------------------------------------------------------------------------------------------


@pytest.fixture
def estate(testbed, testbed_kube, tmp_path):
    """staging and prod (promotes_from: staging) over one Deployment of our own on dv-b."""
    namespace = f"promo-{secrets.token_hex(3)}"
    kubectl = [*testbed_kube.kubectl_command("dv-b"), "-n", namespace]
    testbed_kube.kubectl("dv-b", "create", "namespace", namespace)
    subprocess.run(
        [*kubectl, "create", "deployment", "web", f"--image={IMAGE}:1.0.0", "--replicas=1"],
        check=True,
        capture_output=True,
    )
    tolerate = '{"spec":{"template":{"spec":{"tolerations":[{"key":"kwok.x-k8s.io/node","operator":"Exists"}]}}}}'
    subprocess.run([*kubectl, "patch", "deployment", "web", "-p", tolerate], check=True, capture_output=True)
    subprocess.run([*kubectl, "rollout", "status", "deployment/web", "--timeout=60s"], check=True, capture_output=True)
    envs = tmp_path / "environments"
    envs.mkdir()
    for name, source in (("staging", None), ("prod", "staging")):
        document = {
            "name": name,
            "promotes_from": source,
            "budget": "1m",
            "clusters": {"dv-b": {"context": "kwok-dv-b", "kubeconfig": str(ROOT / ".testbed" / "kubeconfig.yaml")}},
            "components": [{"name": "web", "kind": "deployment", "cluster": "dv-b", "namespace": namespace}],
        }
        (envs / f"{name}.yaml").write_text(yaml.safe_dump(document))
    yield {"envs": envs, "kubectl": kubectl, "reports": tmp_path / "reports"}
    testbed_kube.kubectl("dv-b", "delete", "namespace", namespace, "--wait=false")


def suite(estate, env: str, marker: str, version: str) -> tuple[int, dict]:
    command = [sys.executable, "-m", "pytest", "features", "--env", env, "-m", marker, "--expect", f"web={version}"]
    command += [f"--env-dir={estate['envs']}", f"--reports-dir={estate['reports']}", "-n", "0"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    document = json.loads((estate["reports"] / "verdict.json").read_text())
    return done.returncode, {t["check"]: t for t in document["tests"]}


def test_promotion_through_the_suite(estate):
    code, tests = suite(estate, "prod", "promotion", "1.0.0")
    assert code == 1  # nothing verified in staging yet
    assert "promotion:staging/web: no verified run of 'staging' at " in tests["promotion_verified"]["message"]

    code, _ = suite(estate, "staging", "postdeploy", "1.0.0")
    assert code == 0
    code, tests = suite(estate, "prod", "promotion", "1.0.0")
    assert code == 0, tests
    assert "version 1.0.0 was verified green in staging" in tests["promotion_verified"]["message"]

    code, tests = suite(estate, "prod", "promotion", "1.1.0")
    assert code == 1
    assert "the candidate version 1.1.0 is not what staging verified" in tests["promotion_verified"]["message"]

    # Someone deploys a hotfix to staging by hand: it was never verified, so 1.0.0 may not be promoted either.
    subprocess.run(
        [*estate["kubectl"], "set", "image", "deployment/web", f"web={IMAGE}:1.0.1-hotfix"],
        check=True,
        capture_output=True,
    )
    code, tests = suite(estate, "prod", "promotion", "1.0.0")
    assert code == 1
    assert (
        "staging runs version 1.0.1-hotfix, not the verified 1.0.0: a manual deployment replaced what the pipeline "
        "verified" in tests["promotion_verified"]["message"]
    )
