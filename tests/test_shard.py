"""--shard I/N and the merge: two shards together are one unsharded run; a missing or foreign shard is red."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy_verify.config import load_environment
from deploy_verify.shard import ShardError, assignment, locality, merge, parse_shard

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "--release=testbed/release-local.yaml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "--shard '2': expected INDEX/TOTAL, e.g. --shard 1/4"),
        ("a/b", "--shard 'a/b': expected INDEX/TOTAL, e.g. --shard 1/4"),
        ("0/2", "--shard '0/2': INDEX must be between 1 and TOTAL, and TOTAL at least 1"),
        ("3/2", "--shard '3/2': INDEX must be between 1 and TOTAL, and TOTAL at least 1"),
    ],
)
def test_bad_shard_values_are_refused(text, message):
    with pytest.raises(ShardError) as caught:
        parse_shard(text)
    assert str(caught.value) == message


def test_assignment_keeps_localities_whole_and_is_balanced():
    env = load_environment("local", ROOT / "environments")
    shards = assignment(env, 2)
    assert shards == assignment(env, 2)  # deterministic: every machine and worker computes the same split
    assert sorted(shards) == [
        "azure/demo/rg-demo",
        "cluster/dv-a",
        "cluster/dv-b",
        "component/checkout-web",
        "component/inventory-api",
    ]
    sizes = [list(shards.values()).count(i) for i in (1, 2)]
    assert sorted(sizes) == [2, 3]
    # A component on a cluster goes with the cluster's nodes check, wherever it is.
    assert locality(env, "storefront-b") == locality(env, "cluster:dv-b") == "cluster/dv-b"
    assert locality(env, "payments-api") == "cluster/dv-a"  # its cert-manager Certificate lives on dv-a


def run(reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "features", "--env", "local", "-m", "postdeploy", RELEASE]
    command += ["-n", "2", f"--reports-dir={reports}", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def rows(verdict: dict) -> set[tuple[str, str, str]]:
    return {(t["component"], t["check"], t["outcome"]) for t in verdict["tests"]}


def test_two_shards_merged_equal_one_unsharded_run(testbed, tmp_path):
    whole = run(tmp_path / "whole")
    assert whole.returncode == 0, whole.stdout[-2000:]
    for i in (1, 2):
        shard = run(tmp_path / f"shard-{i}", f"--shard={i}/2")
        assert shard.returncode == 0, shard.stdout[-2000:]
    one = json.loads((tmp_path / "whole" / "verdict.json").read_text())
    parts = [json.loads((tmp_path / f"shard-{i}" / "verdict.json").read_text()) for i in (1, 2)]
    assert [p["shard"] for p in parts] == ["1/2", "2/2"]
    assert not rows(parts[0]) & rows(parts[1])  # disjoint
    merged = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy_verify.shard",
            "merge",
            f"--out={tmp_path / 'merged'}",
            *(str(tmp_path / f"shard-{i}") for i in (1, 2)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert merged.stdout.startswith(f"GATE GREEN: {len(one['tests'])} passed across shards 1/2, 2/2")
    together = json.loads((tmp_path / "merged" / "verdict.json").read_text())
    assert rows(together) == rows(one)
    assert (together["verdict"], together["environment"], together["release"]) == ("green", "local", one["release"])

    def results(folder: Path) -> list[str]:
        return sorted(
            json.loads(p.read_text())["fullName"] + json.dumps(json.loads(p.read_text())["parameters"])
            for p in (folder / "allure-results").glob("*-result.json")
        )

    assert results(tmp_path / "merged") == results(tmp_path / "whole")
    assert (tmp_path / "merged" / "allure-results" / "categories.json").is_file()


def shard_verdict(folder: Path, shard: str, verdict: str = "green", environment: str = "local") -> Path:
    folder.mkdir(parents=True)
    tests = [{"component": f"c{shard[0]}", "check": "http_health", "nodeid": f"n{shard[0]}", "outcome": "pass"}]
    document = {
        "environment": environment,
        "markers": "postdeploy",
        "release": None,
        "shard": shard,
        "started": "2026-11-22T00:00:00+00:00",
        "finished": "2026-11-22T00:01:00+00:00",
        "verdict": verdict,
        "reason": "1 passed" if verdict == "green" else "1 failed of 1",
        "tests": tests,
    }
    (folder / "verdict.json").write_text(json.dumps(document))
    return folder


def test_a_missing_shard_makes_the_merge_red(tmp_path):
    merged = merge([shard_verdict(tmp_path / "a", "1/3"), shard_verdict(tmp_path / "b", "3/3")], tmp_path / "out")
    assert (merged["verdict"], merged["reason"]) == ("red", "shard 2/3 missing")


def test_a_red_shard_makes_the_merge_red(tmp_path):
    merged = merge(
        [shard_verdict(tmp_path / "a", "1/2"), shard_verdict(tmp_path / "b", "2/2", verdict="red")], tmp_path / "out"
    )
    assert (merged["verdict"], merged["reason"]) == ("red", "shard 2/2: 1 failed of 1")


def test_shards_of_different_environments_are_refused(tmp_path):
    merged = merge(
        [shard_verdict(tmp_path / "a", "1/2"), shard_verdict(tmp_path / "b", "2/2", environment="prod")],
        tmp_path / "out",
    )
    assert merged["verdict"] == "red"
    assert merged["reason"] == 'shards disagree on environment: "local", "prod"'


def test_a_shard_that_never_ran_is_red(tmp_path):
    (tmp_path / "b").mkdir()
    merged = merge([shard_verdict(tmp_path / "a", "1/2"), tmp_path / "b"], tmp_path / "out")
    assert merged["verdict"] == "red"
    assert (
        merged["reason"] == f"shard 2/2 missing; shard None: no verdict.json in {tmp_path / 'b'} (did the shard run?)"
    )


def soaked(folder: Path, outcome: str | None, duration: float = 600.0) -> Path:
    path = folder / "verdict.json"
    document = json.loads(path.read_text())
    if outcome is not None:
        document["soak"] = {"outcome": outcome, "duration_s": duration, "every_s": 30.0, "reason": f"soak {outcome}"}
    path.write_text(json.dumps(document))
    return folder


@pytest.mark.parametrize(
    ("first", "second", "merged_soak"),
    [
        (("held", 600), ("held", 900), ("held", 600.0)),  # the shortest soak any shard held
        (("held", 600), ("failed", 600), ("failed", 600.0)),
        (("held", 600), ("interrupted", 60), ("interrupted", 60.0)),
        (("held", 600), (None, 0), ("held", 600.0)),  # a shard with nothing to hold says nothing
        ((None, 0), (None, 0), None),
    ],
)
def test_the_merge_carries_the_shards_soaks_as_one(tmp_path, first, second, merged_soak):
    """What a promotion with requires_soak reads of a sharded source: held only if every shard that soaked held."""
    shards = [
        soaked(shard_verdict(tmp_path / "a", "1/2"), *first),
        soaked(shard_verdict(tmp_path / "b", "2/2"), *second),
    ]
    merged = merge(shards, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert written == merged
    if merged_soak is None:
        assert "soak" not in written
        return
    assert (written["soak"]["outcome"], written["soak"]["duration_s"]) == merged_soak
    assert written["soak"]["shards"]["1/2"] == first[0]


def test_bad_shard_option_is_a_usage_error(testbed, tmp_path):
    done = run(tmp_path, "--shard=3/2")
    assert done.returncode == 4
    assert "--shard '3/2': INDEX must be between 1 and TOTAL, and TOTAL at least 1" in done.stderr
