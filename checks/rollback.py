"""Rollback: what runs now is what ran when the baseline was recorded.

    result = check_workload_restored(reader, ref, recorded, "2026-11-22T01:00:00Z", deadline)

Every tool can roll back; none checks that the rollback restored the previous state (helm/helm#13346). A rollback
to the wrong revision, a partial one (one component left on the new version) or a Helm rollback whose manifest differs
from the recorded revision fail here with a line per difference. Whether the restored version is also rolled out and
healthy is the rollout, pods and health checks' job: a `-m rollback` run selects them too.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from deploy_verify.checks.baseline import (
    ComponentState,
    HelmState,
    NotRecordable,
    container_app_state,
    describe,
    differences,
    helm_state_of,
    workload_state,
)
from deploy_verify.checks.containerapps import AppRef
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.helm import HelmRef, HelmRevision, release_history
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.kube import KubeReader
from deploy_verify.checks.workloads import WorkloadRef

if TYPE_CHECKING:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

CHECK = "rollback_restored"
MANIFEST_DIFF_LINES = 400  # evidence stays readable; the digests in the message are exact either way


def check_workload_restored(
    reader: KubeReader, ref: WorkloadRef, recorded: ComponentState, recorded_at: str, deadline: Deadline
) -> CheckResult:
    return _judge(ref.where, recorded, recorded_at, lambda: (workload_state(reader, ref, deadline), ()))


def check_helm_restored(
    reader: KubeReader, ref: HelmRef, recorded: ComponentState, recorded_at: str, deadline: Deadline
) -> CheckResult:
    def now() -> tuple[ComponentState, tuple[Evidence, ...]]:
        history = release_history(reader, ref, deadline)
        if not history:
            raise NotRecordable(f"no Helm release {ref.name!r} in namespace {ref.namespace!r}")
        state = helm_state_of(ref, history[0])
        return state, _manifest_diff(recorded, history)

    result = _judge(ref.where, recorded, recorded_at, now)
    diff = next((e.content for e in result.evidence if e.name == "manifest diff"), None)
    if diff is None:
        return result
    return replace(result, message=f"{result.message}; {_first_changes(diff)}")


def check_app_restored(
    client: ContainerAppsAPIClient, ref: AppRef, recorded: ComponentState, recorded_at: str, deadline: Deadline
) -> CheckResult:
    return _judge(ref.where, recorded, recorded_at, lambda: (container_app_state(client, ref, deadline), ()))


def _judge(
    where: str,
    recorded: ComponentState,
    recorded_at: str,
    read_now: Callable[[], tuple[ComponentState, tuple[Evidence, ...]]],
) -> CheckResult:
    def compare() -> CheckResult:
        now, extra = read_now()
        found = differences(recorded, now)
        evidence = (
            Evidence.as_json("baseline and now", {"baseline": recorded.model_dump(), "now": now.model_dump()}),
            *extra,
        )
        if found:
            message = f"not the baseline of {recorded_at}: " + "; ".join(found)
            return CheckResult(CHECK, where, Verdict.FAIL, message, evidence, Category.WRONG_VERSION)
        return CheckResult(
            CHECK, where, Verdict.PASS, f"matches the baseline of {recorded_at}: {describe(now)}", evidence
        )

    had_it = recorded_at.replace("{", "{{").replace("}", "}}")
    result = attempt(CHECK, where, compare, absent=f"{{}}; the baseline of {had_it} had it")
    # A component that is gone (NotRecordable, ArmNotFound) is one the rollback did not bring back: whatever runs,
    # it is not the recorded version, so every FAIL of this check is filed as the wrong version.
    return replace(result, category=Category.WRONG_VERSION) if result.verdict is Verdict.FAIL else result


def _first_changes(diff: str, shown: int = 4) -> str:
    """'changed lines: -image: x:1 +image: x:2 (+3 more)': enough of the diff to read in the summary line."""
    changed = [
        line.strip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---")) and line[1:].strip()
    ]
    more = f" (+{len(changed) - shown} more, see the manifest diff)" if len(changed) > shown else ""
    return "manifest lines changed: " + " | ".join(changed[:shown]) + more


def _manifest_diff(recorded: ComponentState, history: list[HelmRevision]) -> tuple[Evidence, ...]:
    """The recorded revision's manifest against the latest one's, when Helm still keeps it (default: 10 revisions)."""
    if not isinstance(recorded, HelmState) or recorded.manifest == history[0].manifest_digest:
        return ()
    before = next((r for r in history if r.revision == recorded.revision), None)
    if before is None or before.manifest_digest != recorded.manifest:
        return ()  # the recorded revision is gone from the history (or was rewritten): only the digests can speak
    lines = list(
        difflib.unified_diff(
            before.manifest.splitlines(),
            history[0].manifest.splitlines(),
            f"revision {before.revision} (baseline)",
            f"revision {history[0].revision} (now)",
            lineterm="",
        )
    )
    text = "\n".join(lines[:MANIFEST_DIFF_LINES]) + ("\n…" if len(lines) > MANIFEST_DIFF_LINES else "")
    return (Evidence("manifest diff", text),)
