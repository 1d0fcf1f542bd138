"""Baselines: what runs now, per component, recorded before a deploy so a rollback can be judged against it.

    state = workload_state(reader, WorkloadRef("deployment", "shop", "storefront"), deadline)
    differences(recorded, state)   # [] when the rollback restored it; readable lines otherwise

A state is what identifies a running version, not what merely counts versions: a `kubectl rollout undo` bumps the
Deployment's revision number and `helm rollback` writes a new revision, so those numbers are shown but never compared.
Compared are the pod-template hash (Deployment) or controller-revision hash (DaemonSet, StatefulSet), images and
the digests that actually run; for Helm the chart, app version, and digests of the rendered manifest and the values;
for a Container App the traffic split and the image of every revision that takes traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deploy_verify.checks.containerapps import AppRef, read_app, traffic_of
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.helm import HelmRef, HelmRevision, release_history
from deploy_verify.checks.runner import Absent
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.checks.workloads import REVISION, WorkloadRef, is_ready, read_workload

if TYPE_CHECKING:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient


class NotRecordable(Absent):
    """There is nothing to record (the workload or release does not exist): the baseline would be a lie."""


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkloadState(_State):
    kind: Literal["deployment", "daemonset", "statefulset"]
    target: str
    revision: int | None = None  # shown, not compared: an undo gives the restored template a new number
    template_hash: str  # pod-template-hash (Deployment) or controller-revision-hash (DaemonSet, StatefulSet)
    images: dict[str, str]  # container -> image in the pod template
    digests: dict[str, list[str]] = {}  # container -> imageIDs the ready pods of that revision run


class HelmState(_State):
    kind: Literal["helm"]
    target: str
    revision: int  # shown, not compared: a rollback writes a new revision with the old content
    status: str
    chart: str  # name-version
    app_version: str
    manifest: str  # sha256 of the rendered manifest
    values: str  # sha256 of the user-supplied values


class ContainerAppState(_State):
    kind: Literal["containerapp"]
    target: str
    latest_revision: str | None
    traffic: dict[str, int]  # revision -> weight, `latestRevision` resolved to its name
    images: dict[str, str]  # revision taking traffic -> its first container's image


ComponentState = Annotated[WorkloadState | HelmState | ContainerAppState, Field(discriminator="kind")]


class Baseline(_State):
    """reports/baseline-<env>.json."""

    environment: str
    recorded_at: str  # ISO 8601, UTC
    release: str | None = None  # the release manifest's name, when one was given
    components: dict[str, ComponentState]


# --- recording ---------------------------------------------------------------------------------------------------


def workload_state(reader: KubeReader, ref: WorkloadRef, deadline: Deadline) -> WorkloadState:
    view = read_workload(reader, ref, deadline)
    if view.obj is None:
        raise NotRecordable(f"{ref.where} not found")
    if view.current_hash is None:
        raise NotRecordable(f"{ref.where} has no revision yet (no ReplicaSet or ControllerRevision)")
    containers = view.obj["spec"]["template"]["spec"].get("containers", [])
    revision = view.obj["metadata"].get("annotations", {}).get(REVISION) if ref.kind == "deployment" else None
    if revision is None and view.history:
        revision = next((h["revision"] for h in view.history if h["hash"] == view.current_hash), None)
    return WorkloadState(
        kind=ref.kind,
        target=ref.where,
        revision=int(revision) if revision is not None else None,
        template_hash=view.current_hash,
        images={c["name"]: c.get("image", "") for c in containers},
        digests=_digests(view.current_pods),
    )


def helm_state(reader: KubeReader, ref: HelmRef, deadline: Deadline) -> HelmState:
    history = release_history(reader, ref, deadline)
    if not history:
        raise NotRecordable(f"no Helm release {ref.name!r} in namespace {ref.namespace!r}")
    return helm_state_of(ref, history[0])


def helm_state_of(ref: HelmRef, revision: HelmRevision) -> HelmState:
    return HelmState(
        kind="helm",
        target=ref.where,
        revision=revision.revision,
        status=revision.status,
        chart=revision.chart_ref,
        app_version=revision.app_version,
        manifest=revision.manifest_digest,
        values=revision.values_digest,
    )


def container_app_state(client: ContainerAppsAPIClient, ref: AppRef, deadline: Deadline) -> ContainerAppState:
    view = read_app(client, ref, deadline)
    traffic = traffic_of(view)
    images: dict[str, str] = {}
    for name in traffic:  # read_app fetched every revision named in traffic, and the latest
        containers = view.revisions.get(name, {}).get("properties", {}).get("template", {}).get("containers") or [{}]
        images[name] = str(containers[0].get("image", ""))
    return ContainerAppState(
        kind="containerapp", target=ref.where, latest_revision=view.latest, traffic=traffic, images=images
    )


def _digests(pods: list[Obj]) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for pod in pods:
        if not is_ready(pod):
            continue
        for status in pod.get("status", {}).get("containerStatuses", []):
            if status.get("imageID"):
                found.setdefault(status["name"], set()).add(status["imageID"])
    return {name: sorted(ids) for name, ids in sorted(found.items())}


def describe(state: ComponentState) -> str:
    """The short form of what runs, for a passing line."""
    if isinstance(state, HelmState):
        chart = f"chart {state.chart}, app version {state.app_version}"
        return f"revision {state.revision}: {chart}, manifest {state.manifest[:19]}…"
    if isinstance(state, ContainerAppState):
        return "traffic " + ", ".join(f"{w}% {n} ({state.images.get(n, '?')})" for n, w in state.traffic.items())
    images = ", ".join(f"{name}={image}" for name, image in state.images.items())
    return f"pod template {state.template_hash} (revision {state.revision}), {images}"


# --- comparing ---------------------------------------------------------------------------------------------------


def differences(recorded: ComponentState, now: ComponentState) -> list[str]:
    """Readable lines, `what: baseline X, now Y`, for everything that identifies the running version."""
    if recorded.kind != now.kind:
        return [f"kind: baseline {recorded.kind}, now {now.kind}"]
    return list(_compare(recorded, now))


def _compare(recorded: ComponentState, now: ComponentState) -> Iterator[str]:
    if isinstance(recorded, WorkloadState) and isinstance(now, WorkloadState):
        yield from _maps("image", recorded.images, now.images)
        if recorded.template_hash != now.template_hash:
            yield (
                f"pod template: baseline {recorded.template_hash} (revision {recorded.revision}), "
                f"now {now.template_hash} (revision {now.revision})"
            )
        if recorded.digests and now.digests:  # both sides must have seen what runs to compare it
            yield from _maps("digest", recorded.digests, now.digests)
    elif isinstance(recorded, HelmState) and isinstance(now, HelmState):
        for label, before, after in (
            ("chart", recorded.chart, now.chart),
            ("app version", recorded.app_version, now.app_version),
            ("values", recorded.values, now.values),
            ("manifest", recorded.manifest, now.manifest),
        ):
            if before != after:
                was, now_at = recorded.revision, now.revision
                yield f"{label}: baseline {before} (revision {was}), now {after} (revision {now_at})"
        if now.status != "deployed":
            yield f"status: revision {now.revision} is {now.status}"
    elif isinstance(recorded, ContainerAppState) and isinstance(now, ContainerAppState):
        if recorded.traffic != now.traffic:
            yield f"traffic: baseline {_weights(recorded.traffic)}, now {_weights(now.traffic)}"
        yield from _maps("image of revision", recorded.images, now.images)


def _maps(label: str, before: dict[str, Any], after: dict[str, Any]) -> Iterator[str]:
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            yield f"{label} {key}: baseline {_show(old)}, now {_show(new)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


def _weights(traffic: dict[str, int]) -> str:
    return ", ".join(f"{weight}% {name}" for name, weight in sorted(traffic.items(), key=lambda kv: (-kv[1], kv[0])))
