"""The health of one live Kubernetes object, by its kind's published status: one rule per kind, and the kstatus
conventions for every kind the suite has never heard of (CRDs included).

    judgment = judge(obj, reader, deadline)          # Judgment(State.FAILED, "phase Degraded: RolloutAborted: ...")
    where_of_object(obj)                             # "Rollout:shop/web", "ClusterIssuer:letsencrypt"

The object must carry `kind` and `apiVersion`: the items of a LIST of a built-in kind do not (`typed` sets them).

Order of the rules, each deciding or passing on:
1. being deleted (metadata.deletionTimestamp): IN_PROGRESS, it is going away;
2. a kind with no status by design (ConfigMap, Secret, ServiceAccount, RBAC, NetworkPolicy, ...): CURRENT, it exists;
3. status.observedGeneration (a number, or Argo Rollouts' numeric string) below metadata.generation: IN_PROGRESS, the
   status describes an older spec;
4. kstatus' abnormal-true conditions: Stalled=True is FAILED, Reconciling=True is IN_PROGRESS;
5. the kind's own rule (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, PersistentVolumeClaim,
   PersistentVolume, Service, Ingress, HorizontalPodAutoscaler, PodDisruptionBudget, ResourceQuota, Namespace,
   CustomResourceDefinition, cert-manager Certificate, Argo Rollouts Rollout);
6. any kind: condition Ready, else Available: True is CURRENT; False is FAILED with its reason and message, unless
   the reason says it is still on its way (Progressing, Reconciling, Pending, Creating, ...): IN_PROGRESS; Unknown is
   IN_PROGRESS. A condition whose own observedGeneration is below the object's generation is stale: IN_PROGRESS;
7. any kind: status.phase, when it is one of the phases Kubernetes and the common operators use;
8. nothing of the above: UNKNOWN (the check is an ERROR, never a PASS): kstatus calls such an object Current, which
   is how Helm 4's wait passes objects whose health nobody reads, and hangs on those it cannot read
   (helm/helm#32615).

`may_suspend`: the environment allows the object to be deliberately idle: a suspended Job or CronJob, a paused
Deployment, a workload scaled to 0, an HPA whose target is scaled to 0. Without it each of those is FAILED: the suite
never passes an object that runs nothing unless that was declared (as the rollout check's `min_replicas`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.endpoints import service_endpoints
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.checks.workloads import pod_problems

MAX_RESTARTS = 3  # a bare pod's restart limit: the rollout check's default (Limits.max_restarts)


class State(StrEnum):
    CURRENT = "Current"  # reconciled and healthy
    IN_PROGRESS = "InProgress"  # not there yet, may still get there (a wait may continue)
    FAILED = "Failed"  # terminal or definitely broken (fail fast)
    UNKNOWN = "Unknown"  # publishes no status the suite can judge -> the check is an ERROR, never a PASS


@dataclass(frozen=True)
class Judgment:
    state: State
    reason: str  # one line, without the object's name prefix


Rule = Callable[[Obj, KubeReader, Deadline, bool], Judgment | None]


def judge(obj: Obj, reader: KubeReader, deadline: Deadline, *, may_suspend: bool = False) -> Judgment:
    """The live object's health by its kind's rule; `reader` gives related lists (EndpointSlices of a Service),
    always through reader.listing (cached, one LIST per kind and namespace)."""
    kind = str(obj.get("kind") or "")
    if not kind:
        return _unknown(
            "the object carries no kind (LIST items of built-in kinds do not: set kind and apiVersion, "
            "checks.status.typed)"
        )
    key = (group_of(obj), kind)
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        finalizers = meta.get("finalizers") or []
        held = f", held by finalizers {', '.join(map(str, finalizers))}" if finalizers else ""
        return Judgment(State.IN_PROGRESS, f"being deleted since {meta['deletionTimestamp']}{held}")
    if key in NO_STATUS:
        return Judgment(State.CURRENT, f"exists (a {kind} publishes no status: existing is all it can do)")
    found = _stale(obj) or _kstatus_conditions(obj)
    if found is None and key in RULES:
        found = RULES[key](obj, reader, deadline, may_suspend)
    return found or _by_conditions(obj) or _by_phase(obj) or _nothing_to_judge(obj)


def where_of_object(obj: Obj) -> str:
    """ "Job:shop/migrate", "ClusterIssuer:letsencrypt" (cluster-scoped)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    name = meta.get("name", "?")
    kind = obj.get("kind") or "?"
    return f"{kind}:{namespace}/{name}" if namespace else f"{kind}:{name}"


def typed(obj: Obj, api_version: str, kind: str) -> Obj:
    """The object with kind and apiVersion set where its LIST left them out (built-in kinds)."""
    if obj.get("kind") and obj.get("apiVersion"):
        return obj
    return {**obj, "apiVersion": obj.get("apiVersion") or api_version, "kind": obj.get("kind") or kind}


def group_of(obj: Obj) -> str:
    """The API group of the object's apiVersion: "" for the core group (v1)."""
    return str(obj.get("apiVersion") or "").rpartition("/")[0]


# --- generic: generation, kstatus' conditions, Ready / Available, phase -------------------------------------------


def _stale(obj: Obj) -> Judgment | None:
    """status.observedGeneration below metadata.generation: the status is about an older spec."""
    generation = _number(obj.get("metadata", {}).get("generation"))
    observed = _number(_status(obj).get("observedGeneration"))
    if generation is None or observed is None or observed >= generation:
        return None
    return Judgment(
        State.IN_PROGRESS,
        f"its controller has not observed the newest spec yet (status.observedGeneration {observed} < "
        f"metadata.generation {generation})",
    )


def _kstatus_conditions(obj: Obj) -> Judgment | None:
    """kstatus' abnormal-true conditions, which any controller may publish."""
    stalled = _condition(obj, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return Judgment(State.FAILED, f"condition Stalled is True ({_why(stalled)})")
    reconciling = _condition(obj, "Reconciling")
    if reconciling is not None and reconciling.get("status") == "True":
        return Judgment(State.IN_PROGRESS, f"condition Reconciling is True ({_why(reconciling)})")
    return None


# Words in a False condition's reason that say it is on its way, not broken (checked after the failure words).
ON_ITS_WAY = (
    "progress",
    "reconcil",
    "pending",
    "creating",
    "provisioning",
    "initializ",
    "installing",
    "updating",
    "upgrading",
    "waiting",
    "issuing",
    "deploying",
    "starting",
    "scaling",
    "syncing",
    "applying",
)
BROKEN = ("fail", "error", "invalid", "denied", "forbidden", "notfound", "exceeded", "timeout", "timedout", "crash")


def _on_its_way(reason: str) -> bool:
    text = reason.lower()
    return not any(word in text for word in BROKEN) and any(word in text for word in ON_ITS_WAY)


def _by_conditions(obj: Obj) -> Judgment | None:
    """Condition Ready, else Available: what most controllers publish, whatever kstatus recommends."""
    for kind in ("Ready", "Available"):
        condition = _condition(obj, kind)
        if condition is None:
            continue
        old = _stale_condition(obj, condition)
        if old is not None:
            return old
        status, why = condition.get("status"), _why(condition)
        if status == "True":
            return Judgment(State.CURRENT, f"condition {kind} is True" + (f" ({why})" if why else ""))
        said = f"condition {kind} is {status or 'Unknown'}" + (f" ({why})" if why else "")
        if status == "False" and not _on_its_way(str(condition.get("reason") or "")):
            return Judgment(State.FAILED, said)
        return Judgment(State.IN_PROGRESS, said)
    return None


CURRENT_PHASES = frozenset(
    {"running", "active", "bound", "succeeded", "ready", "healthy", "available", "complete", "completed"}
    | {"established", "deployed", "synced", "provisioned", "online"}
)
FAILED_PHASES = frozenset({"failed", "error", "errored", "degraded", "lost", "crashloopbackoff", "invalid", "rejected"})
PROGRESS_PHASES = frozenset(
    {"pending", "progressing", "provisioning", "creating", "initializing", "deploying", "updating", "terminating"}
    | {"installing", "starting", "waiting", "reconciling", "paused", "unknown"}
)


def _by_phase(obj: Obj) -> Judgment | None:
    phase = _status(obj).get("phase")
    if not phase:
        return None
    message = _line(str(_status(obj).get("message") or _status(obj).get("reason") or ""))
    said = f"status.phase is {phase}" + (f" ({message})" if message else "")
    word = str(phase).lower()
    if word in CURRENT_PHASES:
        return Judgment(State.CURRENT, said)
    if word in FAILED_PHASES:
        return Judgment(State.FAILED, said)
    if word in PROGRESS_PHASES:
        return Judgment(State.IN_PROGRESS, said)
    return _unknown(f"{said}, a phase the suite cannot judge for a {obj.get('kind')}")


def _nothing_to_judge(obj: Obj) -> Judgment:
    status = obj.get("status")
    if not isinstance(status, dict) or not status:
        return _unknown(f"publishes no status the suite can judge: the {obj.get('kind')} has no status at all")
    types = [str(c.get("type")) for c in _conditions(obj)]
    has = f"conditions {', '.join(types)}" if types else f"status fields {', '.join(sorted(map(str, status)))}"
    return _unknown(
        "publishes no status the suite can judge: no Ready or Available condition, no Reconciling or Stalled "
        f"condition, no phase (it has {has})"
    )


def _unknown(reason: str) -> Judgment:
    return Judgment(State.UNKNOWN, reason)


# --- workloads ---------------------------------------------------------------------------------------------------


def _unobserved(obj: Obj) -> Judgment | None:
    """A built-in controller always publishes status.observedGeneration once it has seen the object."""
    if "observedGeneration" in _status(obj):
        return None
    return Judgment(State.IN_PROGRESS, f"the {obj.get('kind')} controller has not reported a status yet")


def _idle(obj: Obj, may_suspend: bool, what: str) -> Judgment:
    if may_suspend:
        return Judgment(State.CURRENT, f"{what}, which the environment allows")
    return Judgment(State.FAILED, f"{what}: it runs nothing; declare it may be suspended if that is intended")


def _deployment(obj: Obj, _reader: KubeReader, _deadline: Deadline, may_suspend: bool) -> Judgment | None:
    spec, status = obj.get("spec") or {}, _status(obj)
    if spec.get("paused") and not may_suspend:
        return Judgment(
            State.FAILED,
            "paused (spec.paused: true): the controller rolls out no change until it is resumed "
            f"(kubectl rollout resume deployment/{obj['metadata'].get('name')})",
        )
    unobserved = _unobserved(obj)
    if unobserved:
        return unobserved
    want = _int(spec.get("replicas"), 1)
    replicas, updated = _int(status.get("replicas")), _int(status.get("updatedReplicas"))
    ready, available = _int(status.get("readyReplicas")), _int(status.get("availableReplicas"))
    unavailable = _int(status.get("unavailableReplicas"))
    counts = f"{updated}/{want} updated, {ready}/{want} ready, {available}/{want} available"
    progressing = _condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Judgment(State.FAILED, f"rollout stuck: Progressing is False ({_why(progressing)}); {counts}")
    if want == 0:
        return _idle(obj, may_suspend, "scaled to 0 (spec.replicas: 0)")
    if updated < want or available < want or ready < want or unavailable:
        return Judgment(State.IN_PROGRESS, f"rollout in progress: {counts}{_replica_failure(obj)}")
    if replicas > want:
        return Judgment(State.IN_PROGRESS, f"{replicas - want} old replicas pending termination; {counts}")
    return Judgment(State.CURRENT, f"rolled out: {counts}")


def _replica_failure(obj: Obj) -> str:
    """ReplicaFailure=True (quota, admission): the controller retries, and a quota often frees up as old pods go,
    so it is said, not judged."""
    failure = _condition(obj, "ReplicaFailure")
    if failure is None or failure.get("status") != "True":
        return ""
    return f"; ReplicaFailure: {_why(failure)}"


def _replicaset(obj: Obj, _reader: KubeReader, _deadline: Deadline, may_suspend: bool) -> Judgment | None:
    unobserved = _unobserved(obj)
    if unobserved:
        return unobserved
    want = _int((obj.get("spec") or {}).get("replicas"), 1)
    status = _status(obj)
    replicas, ready, available = (_int(status.get(k)) for k in ("replicas", "readyReplicas", "availableReplicas"))
    counts = f"{ready}/{want} ready, {available}/{want} available"
    if want == 0:
        return _idle(obj, may_suspend, "scaled to 0 (spec.replicas: 0)")
    if ready < want or available < want:
        return Judgment(State.IN_PROGRESS, f"not all replicas available: {counts}{_replica_failure(obj)}")
    if replicas > want:
        return Judgment(State.IN_PROGRESS, f"{replicas - want} replicas pending termination; {counts}")
    return Judgment(State.CURRENT, counts)


def _statefulset(obj: Obj, _reader: KubeReader, _deadline: Deadline, may_suspend: bool) -> Judgment | None:
    unobserved = _unobserved(obj)
    if unobserved:
        return unobserved
    spec, status = obj.get("spec") or {}, _status(obj)
    want = _int(spec.get("replicas"), 1)
    replicas, ready, updated = (_int(status.get(k)) for k in ("replicas", "readyReplicas", "updatedReplicas"))
    available = _int(status.get("availableReplicas"), ready)
    current, update = status.get("currentRevision"), status.get("updateRevision")
    strategy = spec.get("updateStrategy") or {}
    partition = _int((strategy.get("rollingUpdate") or {}).get("partition"))
    counts = f"{ready}/{want} ready, {available}/{want} available, {updated}/{want} at revision {update}"
    if want == 0:
        return _idle(obj, may_suspend, "scaled to 0 (spec.replicas: 0)")
    if replicas < want or ready < want or available < want:
        return Judgment(State.IN_PROGRESS, f"not all replicas ready: {counts}")
    if replicas > want:
        return Judgment(State.IN_PROGRESS, f"{replicas - want} replicas pending termination; {counts}")
    if updated >= want and (strategy.get("type") == "OnDelete" or current == update):
        return Judgment(State.CURRENT, f"rolled out: {counts}")
    if strategy.get("type") == "OnDelete":
        return Judgment(
            State.FAILED,
            f"updateStrategy OnDelete: {want - updated} pods still run the previous revision and the controller "
            f"replaces a pod only when someone deletes it; {counts}",
        )
    if partition > 0 and updated >= want - partition:
        return Judgment(
            State.FAILED,
            f"updateStrategy.rollingUpdate.partition is {partition}: pods with an ordinal below {partition} stay on "
            f"revision {current} until the partition is lowered; {counts}",
        )
    return Judgment(State.IN_PROGRESS, f"rollout in progress (revision {current} -> {update}): {counts}")


def _daemonset(obj: Obj, _reader: KubeReader, _deadline: Deadline, may_suspend: bool) -> Judgment | None:
    unobserved = _unobserved(obj)
    if unobserved:
        return unobserved
    status = _status(obj)
    if "desiredNumberScheduled" not in status:
        return Judgment(State.IN_PROGRESS, "the DaemonSet controller has not counted its nodes yet")
    desired = _int(status.get("desiredNumberScheduled"))
    scheduled, updated = _int(status.get("currentNumberScheduled")), _int(status.get("updatedNumberScheduled"))
    ready, available = _int(status.get("numberReady")), _int(status.get("numberAvailable"))
    counts = f"{updated}/{desired} updated, {ready}/{desired} ready, {available}/{desired} available"
    if desired == 0:
        return _idle(obj, may_suspend, "no node admits its pods (desiredNumberScheduled 0)")
    on_delete = ((obj.get("spec") or {}).get("updateStrategy") or {}).get("type") == "OnDelete"
    if updated < desired and on_delete and scheduled >= desired and available >= desired:
        return Judgment(
            State.FAILED,
            f"updateStrategy OnDelete: {desired - updated} pods still run the previous revision and the controller "
            f"replaces a pod only when someone deletes it; {counts}",
        )
    if updated < desired or available < desired or ready < desired:
        return Judgment(State.IN_PROGRESS, f"rollout in progress: {counts}")
    return Judgment(State.CURRENT, f"rolled out: {counts}")


# --- batch -------------------------------------------------------------------------------------------------------


def _job(obj: Obj, _reader: KubeReader, _deadline: Deadline, may_suspend: bool) -> Judgment | None:
    spec, status = obj.get("spec") or {}, _status(obj)
    succeeded, failed, active = (_int(status.get(k)) for k in ("succeeded", "failed", "active"))
    completions = spec.get("completions")
    done = f"{succeeded}/{completions} succeeded" if completions is not None else f"{succeeded} succeeded"
    for kind in ("Complete", "SuccessCriteriaMet"):
        condition = _condition(obj, kind)
        if condition is not None and condition.get("status") == "True":
            return Judgment(State.CURRENT, f"complete: {done}")
    # FailureTarget: the controller has decided the Job failed and is terminating its pods (Kubernetes 1.31+).
    for kind in ("Failed", "FailureTarget"):
        condition = _condition(obj, kind)
        if condition is not None and condition.get("status") == "True":
            return Judgment(State.FAILED, f"failed: {_why(condition)} ({failed} failed pods, {done})")
    if spec.get("suspend"):
        return _idle(obj, may_suspend, "suspended (spec.suspend: true): it starts no pod until resumed")
    if not status.get("startTime"):
        return Judgment(State.IN_PROGRESS, "not started yet (no status.startTime)")
    backoff = _int(spec.get("backoffLimit"), 6)
    return Judgment(State.IN_PROGRESS, f"running: {active} active, {done}, {failed} failed (backoffLimit {backoff})")


def _cronjob(obj: Obj, _reader: KubeReader, _deadline: Deadline, may_suspend: bool) -> Judgment | None:
    spec, status = obj.get("spec") or {}, _status(obj)
    if spec.get("suspend"):
        return _idle(obj, may_suspend, "suspended (spec.suspend: true): it schedules no Job until resumed")
    last = status.get("lastScheduleTime") or "never"
    success = status.get("lastSuccessfulTime") or "never"
    return Judgment(
        State.CURRENT, f"scheduled ({spec.get('schedule')}); last run {last}, last successful run {success}"
    )


# --- pods, storage, namespaces -----------------------------------------------------------------------------------


def _pod(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    spec, status = obj.get("spec") or {}, _status(obj)
    if status.get("phase") == "Succeeded" and spec.get("restartPolicy", "Always") != "Always":
        return Judgment(State.CURRENT, "completed (phase Succeeded)")
    problems = pod_problems(obj, MAX_RESTARTS)
    if not problems:
        return Judgment(State.CURRENT, "Ready")
    first = problems[0]  # terminal problems come first
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return Judgment(State.FAILED if first.terminal else State.IN_PROGRESS, first.text + more)


def _pvc(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    phase, volume = _status(obj).get("phase"), (obj.get("spec") or {}).get("volumeName")
    if phase == "Bound":
        capacity = (_status(obj).get("capacity") or {}).get("storage")
        return Judgment(State.CURRENT, f"Bound to PersistentVolume {volume}" + (f" ({capacity})" if capacity else ""))
    if phase == "Lost":
        return Judgment(
            State.FAILED, f"Lost: its PersistentVolume {volume} no longer exists; the data it held is not reachable"
        )
    return Judgment(
        State.IN_PROGRESS,
        f"phase {phase or 'not set'}: no volume bound yet (a provisioner creates one, or a WaitForFirstConsumer "
        "class binds when a pod uses it)",
    )


def _pv(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    phase, message = _status(obj).get("phase"), _line(str(_status(obj).get("message") or ""))
    detail = f" ({message})" if message else ""
    if phase in ("Bound", "Available"):
        return Judgment(State.CURRENT, f"phase {phase}")
    if phase == "Failed":
        return Judgment(State.FAILED, f"phase Failed: reclaiming it failed{detail}")
    if phase == "Released":
        return Judgment(State.FAILED, f"phase Released: its claim was deleted and it is not bound again{detail}")
    return Judgment(State.IN_PROGRESS, f"phase {phase or 'not set'}{detail}")


def _namespace(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    phase = _status(obj).get("phase")
    if phase == "Active":
        return Judgment(State.CURRENT, "phase Active")
    return Judgment(State.IN_PROGRESS, f"phase {phase or 'not set'}")


def _quota(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    if "hard" not in _status(obj):
        return Judgment(State.IN_PROGRESS, "the quota controller has not computed its usage yet (no status.hard)")
    return Judgment(State.CURRENT, "usage computed (status.hard and status.used are set)")


def _crd(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    names = _condition(obj, "NamesAccepted")
    if names is not None and names.get("status") == "False":
        return Judgment(State.FAILED, f"condition NamesAccepted is False ({_why(names)})")
    established = _condition(obj, "Established")
    if established is not None and established.get("status") == "True":
        return Judgment(State.CURRENT, "condition Established is True")
    if established is not None and established.get("status") == "False" and established.get("reason") != "Installing":
        return Judgment(State.FAILED, f"condition Established is False ({_why(established)})")
    return Judgment(State.IN_PROGRESS, "not Established yet")


# --- networking --------------------------------------------------------------------------------------------------


def _addresses(obj: Obj) -> list[str]:
    ingress = (_status(obj).get("loadBalancer") or {}).get("ingress") or []
    return [str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname")]


def _service(obj: Obj, reader: KubeReader, deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    spec = obj.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    if kind == "ExternalName":
        return Judgment(State.CURRENT, f"type ExternalName (a DNS alias for {spec.get('externalName')}): no endpoints")
    if kind == "LoadBalancer" and not _addresses(obj):
        return Judgment(
            State.IN_PROGRESS,
            "type LoadBalancer without an address yet (status.loadBalancer.ingress is empty): is a load-balancer "
            "controller provisioning it?",
        )
    if not spec.get("selector"):
        return Judgment(State.CURRENT, "no selector: its endpoints are managed outside Kubernetes; not judged")
    slices = reader.listing("endpointslices", obj["metadata"].get("namespace"), deadline).items
    endpoints = service_endpoints(obj, slices)
    ready = [e for e in endpoints if e.ready]
    address = f"; address {', '.join(_addresses(obj))}" if kind == "LoadBalancer" else ""
    if ready:
        return Judgment(State.CURRENT, f"{len(ready)} ready endpoints{address}")
    selector = ",".join(f"{k}={v}" for k, v in spec["selector"].items())
    if endpoints:
        return Judgment(State.IN_PROGRESS, f"no ready endpoint ({len(endpoints)} endpoints, none ready)")
    return Judgment(State.IN_PROGRESS, f"no ready endpoint (no endpoint at all: does any pod match {selector}?)")


def _ingress(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    found = _addresses(obj)
    if found:
        return Judgment(State.CURRENT, f"address {', '.join(found)}")
    klass = (obj.get("spec") or {}).get("ingressClassName") or "the default class"
    return Judgment(
        State.IN_PROGRESS,
        f"no address (status.loadBalancer.ingress is empty): has the ingress controller of {klass} admitted it?",
    )


# --- autoscaling and disruption ----------------------------------------------------------------------------------

BACKOFF = ("BackoffBoth", "BackoffDownscale", "BackoffUpscale")  # AbleToScale=False while a scale window is open


def _hpa(obj: Obj, _reader: KubeReader, _deadline: Deadline, may_suspend: bool) -> Judgment | None:
    conditions = _conditions(obj) or _v1_hpa_conditions(obj)
    by_type = {str(c.get("type")): c for c in conditions}
    able, active = by_type.get("AbleToScale"), by_type.get("ScalingActive")
    if able is None and active is None:
        return Judgment(State.IN_PROGRESS, "the HPA controller has not reported its conditions yet")
    status = _status(obj)
    replicas = f"{_int(status.get('currentReplicas'))} replicas, {_int(status.get('desiredReplicas'))} desired"
    if able is not None and able.get("status") == "False":
        if able.get("reason") in BACKOFF:
            return Judgment(State.IN_PROGRESS, f"AbleToScale is False ({_why(able)}); {replicas}")
        return Judgment(State.FAILED, f"cannot scale: AbleToScale is False ({_why(able)}); {replicas}")
    if active is not None and active.get("status") == "False":
        if active.get("reason") == "ScalingDisabled":
            return _idle(obj, may_suspend, f"scaling disabled: its target is scaled to 0 ({_why(active)})")
        return Judgment(State.FAILED, f"cannot scale: ScalingActive is False ({_why(active)}); {replicas}")
    if active is None or active.get("status") != "True":
        return Judgment(State.IN_PROGRESS, f"ScalingActive not True yet; {replicas}")
    limited = by_type.get("ScalingLimited")
    limit = f"; ScalingLimited: {_why(limited)}" if limited and limited.get("status") == "True" else ""
    return Judgment(State.CURRENT, f"able to scale, scaling active: {replicas}{limit}")


def _v1_hpa_conditions(obj: Obj) -> list[Obj]:
    """autoscaling/v1 keeps the v2 conditions in an annotation."""
    text = (obj.get("metadata", {}).get("annotations") or {}).get("autoscaling.alpha.kubernetes.io/conditions")
    try:
        found = json.loads(text) if text else []
    except ValueError:
        return []
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _pdb(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    """The disruption controller's counts. Healthy pods short of desiredHealthy is IN_PROGRESS (pods still coming
    up, or not coming: the workload's own checks say which); a selector that matches no pod is IN_PROGRESS too, with
    that said; a controller that cannot compute the budget (SyncFailed) is FAILED."""
    unobserved = _unobserved(obj)
    if unobserved:
        return unobserved
    status = _status(obj)
    allowed = _condition(obj, "DisruptionAllowed")
    if allowed is not None and allowed.get("status") == "False" and allowed.get("reason") == "SyncFailed":
        return Judgment(State.FAILED, f"the disruption controller cannot compute the budget ({_why(allowed)})")
    healthy, desired = _int(status.get("currentHealthy")), _int(status.get("desiredHealthy"))
    expected, disruptions = _int(status.get("expectedPods")), _int(status.get("disruptionsAllowed"))
    counts = (
        f"{healthy} healthy of {expected} expected pods, {desired} desired healthy, {disruptions} disruptions allowed"
    )
    if expected == 0 and healthy > 0:
        # The controller found pods but could not count the expected ones: they have no controller with a scale
        # (bare pods), which a maxUnavailable or a percentage needs. It marks the budget SyncFailed a moment later.
        return Judgment(
            State.FAILED,
            f"the disruption controller cannot compute the budget: its pods have no controller with a scale "
            f"(bare pods need an integer minAvailable) ({counts})",
        )
    if expected == 0:
        return Judgment(State.IN_PROGRESS, f"its selector matches no pod ({counts})")
    if healthy < desired:
        return Judgment(State.IN_PROGRESS, f"too few healthy pods: {counts}")
    return Judgment(State.CURRENT, counts)


# --- cert-manager and Argo Rollouts ------------------------------------------------------------------------------


def _certificate(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    """cert-manager's own reading, as checks.certmanager reads Ready: Ready=True is issued and current; while
    Issuing=True a new certificate is on its way; a failed issuance (Issuing=False/Failed, status.lastFailureTime)
    and any other Ready=False are FAILED."""
    ready, issuing = _condition(obj, "Ready"), _condition(obj, "Issuing")
    status = _status(obj)
    if ready is not None:
        old = _stale_condition(obj, ready)
        if old is not None:
            return old
    if ready is not None and ready.get("status") == "True":
        expires = f", expires {status['notAfter']}" if status.get("notAfter") else ""
        renewing = "; renewing (Issuing is True)" if issuing and issuing.get("status") == "True" else ""
        return Judgment(State.CURRENT, f"Ready ({_why(ready)}){expires}{renewing}")
    if issuing is not None and issuing.get("status") == "True":
        return Judgment(State.IN_PROGRESS, f"issuing ({_why(issuing)}); not Ready yet")
    if status.get("lastFailureTime"):
        attempts = status.get("failedIssuanceAttempts")
        tries = f" ({attempts} failed attempts)" if attempts else ""
        cause = f": {_why(issuing)}" if issuing is not None else ""
        return Judgment(State.FAILED, f"issuance failed at {status['lastFailureTime']}{tries}{cause}")
    if ready is None:
        return Judgment(State.IN_PROGRESS, "no Ready condition yet (is cert-manager running?)")
    return Judgment(State.FAILED, f"not Ready ({_why(ready)})")


def _rollout(obj: Obj, _reader: KubeReader, _deadline: Deadline, _may_suspend: bool) -> Judgment | None:
    """Argo Rollouts: status.phase as the controller computes it (1.0+), else (older controllers) its conditions
    and counts. observedGeneration is a string there; a non-numeric one (before v0.10) says nothing."""
    spec, status = obj.get("spec") or {}, _status(obj)
    if not status:
        return Judgment(State.IN_PROGRESS, "the Argo Rollouts controller has not reported a status yet")
    if status.get("abort"):
        message = _line(str(status.get("message") or ""))
        return Judgment(State.FAILED, "aborted (status.abort)" + (f": {message}" if message else ""))
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return Judgment(State.IN_PROGRESS, "resuming: the pause was cleared and the controller has not acted yet")
    phase, message = status.get("phase"), _line(str(status.get("message") or ""))
    detail = f" ({message})" if message else ""
    if phase == "Healthy":
        return Judgment(State.CURRENT, f"phase Healthy{detail}")
    if phase == "Degraded":
        return Judgment(State.FAILED, f"phase Degraded{detail}")
    if phase == "Paused":
        return Judgment(State.IN_PROGRESS, f"paused{detail}: it waits for a promotion (kubectl argo rollouts promote)")
    if phase == "Progressing":
        return Judgment(State.IN_PROGRESS, f"phase Progressing{detail}")
    if phase:
        return _unknown(f"status.phase is {phase}, not one Argo Rollouts defines")
    return _rollout_without_phase(obj, spec, status)


def _rollout_without_phase(obj: Obj, spec: Obj, status: Obj) -> Judgment:
    for condition in _conditions(obj):
        if condition.get("type") == "InvalidSpec" and condition.get("status") == "True":
            return Judgment(State.FAILED, f"InvalidSpec ({_why(condition)})")
        if condition.get("reason") in ("RolloutAborted", "ProgressDeadlineExceeded"):
            return Judgment(State.FAILED, f"{condition.get('type')} is {condition.get('status')} ({_why(condition)})")
    if spec.get("paused") or status.get("pauseConditions"):
        reasons = ", ".join(str(p.get("reason")) for p in status.get("pauseConditions") or []) or "spec.paused"
        return Judgment(State.IN_PROGRESS, f"paused ({reasons}): it waits for a promotion")
    want = _int(spec.get("replicas"), 1)
    updated, available = _int(status.get("updatedReplicas")), _int(status.get("availableReplicas"))
    counts = f"{updated}/{want} updated, {available}/{want} available"
    if updated < want or available < updated:
        return Judgment(State.IN_PROGRESS, f"rollout in progress: {counts}")
    available_condition = _condition(obj, "Available")
    if available_condition is None or available_condition.get("status") != "True":
        return Judgment(State.IN_PROGRESS, f"condition Available is not True yet; {counts}")
    return Judgment(State.CURRENT, f"available: {counts}")


RULES: dict[tuple[str, str], Rule] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("", "Namespace"): _namespace,
    ("", "ResourceQuota"): _quota,
    ("", "Service"): _service,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("cert-manager.io", "Certificate"): _certificate,
    ("argoproj.io", "Rollout"): _rollout,
}
# Kinds whose API has no status at all: existing is everything they can be.
NO_STATUS: frozenset[tuple[str, str]] = frozenset(
    {("", k) for k in ("ConfigMap", "Secret", "ServiceAccount", "LimitRange", "Endpoints", "PodTemplate")}
    | {("rbac.authorization.k8s.io", k) for k in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")}
    | {("networking.k8s.io", k) for k in ("NetworkPolicy", "IngressClass")}
    | {("storage.k8s.io", k) for k in ("StorageClass", "CSIDriver")}
    | {("scheduling.k8s.io", "PriorityClass"), ("node.k8s.io", "RuntimeClass")}
    | {("admissionregistration.k8s.io", k) for k in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")}
)


# --- plumbing ----------------------------------------------------------------------------------------------------


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _conditions(obj: Obj) -> list[Obj]:
    found = _status(obj).get("conditions")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in _conditions(obj) if c.get("type") == kind), None)


def _stale_condition(obj: Obj, condition: Obj) -> Judgment | None:
    """metav1.Condition's own observedGeneration: a condition set for an older spec says nothing about this one."""
    generation = _number(obj.get("metadata", {}).get("generation"))
    observed = _number(condition.get("observedGeneration"))
    if generation is None or observed is None or observed >= generation:
        return None
    return Judgment(
        State.IN_PROGRESS,
        f"condition {condition.get('type')} describes generation {observed}, the object is at generation "
        f"{generation}: its controller has not caught up",
    )


def _why(condition: Obj | None) -> str:
    """'Reason: message' on one line (controllers write multi-line messages)."""
    if condition is None:
        return ""
    parts = [str(condition.get(key) or "") for key in ("reason", "message")]
    return _line(": ".join(p for p in parts if p))


def _line(text: str) -> str:
    return " ".join(text.split())


def _number(value: Any) -> int | None:
    """An integer, or a string of digits (Argo Rollouts' observedGeneration); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _int(value: Any, default: int = 0) -> int:
    found = _number(value)
    return default if found is None else found
