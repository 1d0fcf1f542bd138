"""The rollback drill: put a component back to its recorded baseline, the way an operator would.

    did = roll_back_workload(writer, ref, recorded, deadline)      # `kubectl rollout undo --to-revision` semantics
    did = roll_back_helm(helm_command, ref, recorded, deadline)    # `helm rollback <release> <revision>`
    did = roll_back_traffic(client, app_ref, recorded, deadline)   # Container App traffic back to the baseline

These are the only functions in checks/ that change anything. They need a writer (a KubeReader built with
allow_mutations, which the suite only builds for @mutating scenarios with --allow-mutations on an unprotected
environment); the verification afterwards is the ordinary rollout and rollback checks.
"""

from __future__ import annotations

import io
import json
import subprocess
from typing import TYPE_CHECKING

from deploy_verify.checks.baseline import ContainerAppState, HelmState, WorkloadState
from deploy_verify.checks.containerapps import AppRef
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.helm import HelmRef
from deploy_verify.checks.transports.arm import arm_call
from deploy_verify.checks.transports.kube import KubeReader
from deploy_verify.checks.workloads import PLURALS, WorkloadRef, read_workload, revision_hash

if TYPE_CHECKING:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

TEMPLATE_HASH = "pod-template-hash"


class DrillImpossible(Exception):
    """The baseline cannot be restored this way (its revision is gone, no helm binary, ...): said, not guessed."""


def roll_back_workload(writer: KubeReader, ref: WorkloadRef, recorded: WorkloadState, deadline: Deadline) -> str:
    """Put the recorded pod template back. A Deployment gets the template of the ReplicaSet with the recorded
    pod-template-hash (what `kubectl rollout undo --to-revision` does); a DaemonSet or StatefulSet gets its
    ControllerRevision's stored patch applied, as kubectl does for them."""
    view = read_workload(writer, ref, deadline)
    if view.obj is None:
        raise DrillImpossible(f"{ref.where} not found")
    if view.current_hash == recorded.template_hash:
        return f"{ref.where} already runs the baseline template {recorded.template_hash}; nothing rolled back"
    uid = view.obj["metadata"]["uid"]
    if ref.kind == "deployment":
        sets = writer.listing("replicasets", ref.namespace, deadline).owned_by(uid)
        match = next(
            (r for r in sets if r["metadata"].get("labels", {}).get(TEMPLATE_HASH) == recorded.template_hash), None
        )
        if match is None:
            raise DrillImpossible(_gone(ref, recorded, "ReplicaSet"))
        template = match["spec"]["template"]
        labels = {k: v for k, v in template.get("metadata", {}).get("labels", {}).items() if k != TEMPLATE_HASH}
        template = {**template, "metadata": {**template.get("metadata", {}), "labels": labels}}
        writer.patch(
            "deployments",
            ref.namespace,
            ref.name,
            [{"op": "replace", "path": "/spec/template", "value": template}],
            "application/json-patch+json",
            deadline,
        )
        return f"{ref.where}: pod template of ReplicaSet {match['metadata']['name']} restored"
    revisions = writer.listing("controllerrevisions", ref.namespace, deadline).owned_by(uid)
    match = next((r for r in revisions if revision_hash(r) == recorded.template_hash), None)
    if match is None:
        raise DrillImpossible(_gone(ref, recorded, "ControllerRevision"))
    writer.patch(
        PLURALS[ref.kind], ref.namespace, ref.name, match["data"], "application/strategic-merge-patch+json", deadline
    )
    return f"{ref.where}: ControllerRevision {match['metadata']['name']} restored"


def roll_back_helm(helm: list[str] | None, ref: HelmRef, recorded: HelmState, deadline: Deadline) -> str:
    """`helm rollback` to the recorded revision, through the helm binary (the release format is Helm's own: the suite
    does not rewrite it). `helm` is the command prefix with kubeconfig and context, None when there is no binary."""
    if helm is None:
        raise DrillImpossible(
            f"no helm binary (DV_HELM or helm on PATH): roll {ref.where} back to revision {recorded.revision} "
            "by hand, then run -m rollback"
        )
    command = [*helm, "rollback", ref.name, str(recorded.revision), "--namespace", ref.namespace]
    try:
        done = subprocess.run(  # noqa: S603 - the configured helm binary, arguments from the environment file
            command, capture_output=True, text=True, timeout=deadline.timeout(deadline.calls.subprocess), check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DrillImpossible(f"helm rollback of {ref.where} did not finish in {exc.timeout:.0f}s") from exc
    if done.returncode != 0:
        raise DrillImpossible(f"helm rollback of {ref.where} failed: {done.stderr.strip()[-400:]}")
    return f"{ref.where}: helm rollback to revision {recorded.revision}: {done.stdout.strip()[-200:]}"


def roll_back_traffic(
    client: ContainerAppsAPIClient, ref: AppRef, recorded: ContainerAppState, deadline: Deadline
) -> str:
    """Send traffic back to the recorded revisions (multiple-revision mode: the old revisions are still there)."""
    traffic = [{"revisionName": name, "weight": weight} for name, weight in sorted(recorded.traffic.items())]
    # The merge patch as JSON bytes: the SDK sends them as they are (its model type would add read-only defaults).
    patch = io.BytesIO(json.dumps({"properties": {"configuration": {"ingress": {"traffic": traffic}}}}).encode())
    poller = arm_call(
        lambda **kw: client.container_apps.begin_update(
            ref.resource_group, ref.name, patch, content_type="application/json", **kw
        ),
        deadline,
        ref.where,
    )
    arm_call(lambda **kw: poller.result(timeout=deadline.timeout(deadline.calls.arm_operation)), deadline, ref.where)
    split = ", ".join(f"{t['weight']}% {t['revisionName']}" for t in traffic)
    return f"{ref.where}: traffic switched back to {split}"


def _gone(ref: WorkloadRef, recorded: WorkloadState, what: str) -> str:
    return (
        f"{ref.where}: no {what} with the baseline template {recorded.template_hash} is left (revisionHistoryLimit?); "
        "redeploy the baseline version instead"
    )
