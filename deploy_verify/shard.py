"""Deterministic sharding (`--shard 2/4`) and the merge of the shards' results into one gate decision.

    pytest features --env prod -m postdeploy --shard 1/2 --reports-dir=reports/shard-1     # machine 1
    pytest features --env prod -m postdeploy --shard 2/2 --reports-dir=reports/shard-2     # machine 2
    python -m deploy_verify.shard merge --out reports/merged reports/shard-1 reports/shard-2      # one gate, exit 0/1

Tests are split by locality, not one by one: everything on one cluster (or one Azure resource group, or one plain
endpoint component) lands in the same shard, so each machine keeps the one-LIST-per-kind-and-namespace sharing and
talks to as few API servers as possible. Localities are sorted and dealt round-robin, so every machine (and every
xdist worker on it) computes the same split from the environment file alone, and shards stay balanced by count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from deploy_verify.config import Component, Environment
from deploy_verify.family import CLUSTER_PREFIX

SHARED_ALLURE_FILES = ("environment.properties", "executor.json", "categories.json")


class ShardError(Exception):
    """A bad --shard value or shard set; the message is the operator's one line."""


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); 1-based, as CI matrices and Kubernetes Indexed Jobs (index + 1) count."""
    index, sep, total = text.partition("/")
    if not sep or not index.isdigit() or not total.isdigit():
        raise ShardError(f"--shard {text!r}: expected INDEX/TOTAL, e.g. --shard 1/4")
    i, n = int(index), int(total)
    if n < 1 or not 1 <= i <= n:
        raise ShardError(f"--shard {text!r}: INDEX must be between 1 and TOTAL, and TOTAL at least 1")
    return i, n


def locality(env: Environment, target: str) -> str:
    """The unit a shard takes whole: a cluster, an Azure resource group, or a plain endpoint component."""
    if target.startswith(CLUSTER_PREFIX):
        return f"cluster/{target.removeprefix(CLUSTER_PREFIX)}"
    return _component_locality(env.component(target))


def _component_locality(component: Component) -> str:
    if component.cluster is not None:
        return f"cluster/{component.cluster}"
    if component.resource_group is not None:
        return f"azure/{component.subscription}/{component.resource_group}"
    return f"component/{component.name}"


def assignment(env: Environment, total: int) -> dict[str, int]:
    """locality -> shard (1-based), dealt round-robin over the sorted localities of the whole environment."""
    localities = {f"cluster/{name}" for name in env.clusters} | {_component_locality(c) for c in env.components}
    # Every resource group a selection looks in, whether or not it had members when this process resolved it: the
    # shards resolve on their own, and must still deal the same localities.
    localities |= {
        f"azure/{c.subscription}/{group}"
        for c in env.selections.values()
        for group in (c.select.resource_groups if c.select else [])
    }
    return {key: position % total + 1 for position, key in enumerate(sorted(localities))}


# --- merging -------------------------------------------------------------------------------------------------------


def merge(shard_dirs: list[Path], out: Path) -> dict[str, Any]:
    """One verdict from the shards' verdict.json files, and their Allure results in one folder. Red unless every
    shard of the set is present exactly once, agrees on what was run, and is green."""
    verdicts = [_read_verdict(folder) for folder in shard_dirs]
    problems = _set_problems(verdicts, shard_dirs)
    tests = sorted(
        (t for v in verdicts for t in v.get("tests", [])), key=lambda t: (t["component"], t["check"], t["nodeid"])
    )
    reds = [f"shard {v.get('shard')}: {v['reason']}" for v in verdicts if v.get("verdict") != "green"]
    first = verdicts[0] if verdicts else {}
    document = {
        "environment": first.get("environment"),
        "protected": first.get("protected"),
        "markers": first.get("markers"),
        "release": first.get("release"),
        "shards": [v.get("shard") for v in verdicts],
        "started": min((v["started"] for v in verdicts if "started" in v), default=None),
        "finished": max((v["finished"] for v in verdicts if "finished" in v), default=None),
        "verdict": "red" if problems or reds or not tests else "green",
        "reason": "; ".join(problems + reds) or (f"{len(tests)} passed" if tests else "no test selected"),
        "tests": tests,
    }
    soaked = _merged_soak(verdicts)
    if soaked is not None:
        document["soak"] = soaked
    out.mkdir(parents=True, exist_ok=True)
    (out / "verdict.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    _merge_allure(shard_dirs, out / "allure-results")
    return document


SOAK_RANK = {"held": 0, "not started": 1, "interrupted": 2, "failed": 3}


def _merged_soak(verdicts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The shards' soaks as one (what a promotion that requires a soak reads): held only if every shard that soaked
    held, for the shortest duration any of them held; otherwise the worst outcome, with each shard's."""
    blocks = [(str(v.get("shard")), v["soak"]) for v in verdicts if isinstance(v.get("soak"), dict)]
    if not blocks:
        return None
    worst = max((b.get("outcome", "failed") for _, b in blocks), key=lambda o: SOAK_RANK.get(o, 3))
    duration = min(float(b.get("duration_s") or 0) for _, b in blocks)
    return {
        "outcome": worst,
        "duration_s": duration,
        "every_s": max(float(b.get("every_s") or 0) for _, b in blocks),
        "shards": {shard: b.get("outcome") for shard, b in blocks},
        "reason": "; ".join(f"shard {shard}: {b.get('reason', '')}" for shard, b in blocks),
    }


def _read_verdict(folder: Path) -> dict[str, Any]:
    path = folder / "verdict.json"
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"shard": None, "verdict": "red", "reason": f"no verdict.json in {folder} (did the shard run?)"}
    except ValueError as exc:
        return {"shard": None, "verdict": "red", "reason": f"{path} is not JSON: {exc}"}
    return document


def _set_problems(verdicts: list[dict[str, Any]], folders: list[Path]) -> list[str]:
    if not verdicts:
        return ["no shard given"]
    shards = [str(v["shard"]) for v in verdicts if v.get("shard")]
    totals = {int(s.split("/")[1]) for s in shards}
    if len(totals) > 1:
        return [f"shards of different splits: {', '.join(sorted(shards))}"]
    problems: list[str] = []
    if totals:
        total = totals.pop()
        seen = [int(s.split("/")[0]) for s in shards]
        missing = [f"{i}/{total}" for i in range(1, total + 1) if i not in seen]
        twice = sorted({f"{i}/{total}" for i in seen if seen.count(i) > 1})
        problems += [f"shard {s} missing" for s in missing] + [f"shard {s} given twice" for s in twice]
    unsharded = [str(f) for f, v in zip(folders, verdicts, strict=True) if not v.get("shard") and "tests" in v]
    problems += [f"{folder} is not a shard's result (run with --shard)" for folder in unsharded]
    for key in ("environment", "markers", "release"):
        values = {json.dumps(v.get(key), sort_keys=True) for v in verdicts if "tests" in v}
        if len(values) > 1:
            problems.append(f"shards disagree on {key}: {', '.join(sorted(values))}")
    return problems


def _merge_allure(shard_dirs: list[Path], target: Path) -> None:
    """Results and attachments have unique (uuid) names; the shared files are taken from the first shard."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for folder in shard_dirs:
        source = folder / "allure-results"
        if not source.is_dir():
            continue
        for path in source.iterdir():
            if path.name in SHARED_ALLURE_FILES and (target / path.name).exists():
                continue
            shutil.copy2(path, target / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy_verify.shard", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    merging = commands.add_parser("merge", help="merge the shards' reports into one verdict (exit 0 green, 1 red)")
    merging.add_argument("--out", type=Path, required=True, help="where the merged verdict.json and allure-results go")
    merging.add_argument("shards", type=Path, nargs="+", help="each shard's --reports-dir")
    args = parser.parse_args(argv)
    document = merge(args.shards, args.out)
    colour = "GATE GREEN" if document["verdict"] == "green" else "GATE RED"
    print(f"{colour}: {document['reason']} across shards {', '.join(map(str, document['shards']))}; {args.out}")
    return 0 if document["verdict"] == "green" else 1


if __name__ == "__main__":
    sys.exit(main())
