"""Service endpoints: every Service of the workload has at least one ready endpoint, and one of them is a pod of the
workload (EndpointSlices, `conditions.ready`; a nil `ready` means true, as the API says).

    result = check_endpoints(reader, WorkloadRef("deployment", "payments", "payments-api"), deadline)

The workload's Services are the ones the environment names, else every Service whose selector matches the pod
template (an ExternalName Service is a DNS alias: it routes to no pod and is never selected). What those Services route
to is also what the image check compares (`routed_pods`): a pod that serves the workload's traffic runs the release,
whoever owns it.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.checks.workloads import WorkloadRef, WorkloadView, is_active, is_ready, owner_of, read_workload

CHECK = "service_endpoints"
SERVICE_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a Service, once however many slices list it (dual-stack Services have a slice per family, and
    a pod can sit in two slices while the controller moves it)."""

    service: str
    key: str  # the target pod's name, else the addresses
    pod: str | None  # targetRef.name when it is a Pod
    ready: bool


def check_endpoints(
    reader: KubeReader, ref: WorkloadRef, deadline: Deadline, named: list[str] | None = None
) -> CheckResult:
    """`named`: the Services the environment says must route to this workload; by default every Service whose
    selector matches the pod template (a workload no Service selects, like a node agent, has nothing to check)."""
    return attempt(CHECK, ref.where, lambda: _judge(reader, ref, deadline, named))


def _judge(reader: KubeReader, ref: WorkloadRef, deadline: Deadline, named: list[str] | None) -> CheckResult:
    view = read_workload(reader, ref, deadline)
    if view.obj is None:
        return CheckResult(CHECK, ref.where, Verdict.FAIL, f"{ref.where} not found", category=Category.PROVISIONING)
    services, missing = workload_services(reader, view, named, deadline)
    if missing:
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.FAIL,
            f"Service {', '.join(missing)} not found in {ref.namespace}; was it deployed, or renamed?",
            category=Category.PROVISIONING,
        )
    if not services:
        return CheckResult(CHECK, ref.where, Verdict.PASS, "no Service selects these pods; nothing to route")
    aliases = [s for s in services if _is_alias(s)]
    if aliases:
        alias = aliases[0]
        target = alias.get("spec", {}).get("externalName", "?")
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.FAIL,
            f"Service {ref.namespace}/{alias['metadata']['name']} is of type ExternalName (a DNS alias for {target}): "
            "it routes to no pod, so it cannot route to this workload; check the environment's services list and "
            "the Service's type",
            category=Category.UNHEALTHY_ENDPOINT,
        )
    slices = reader.listing("endpointslices", ref.namespace, deadline).items
    own = {p["metadata"]["name"] for p in view.pods}
    ready = {s["metadata"]["name"]: [e for e in service_endpoints(s, slices) if e.ready] for s in services}
    evidence = (Evidence.as_json(f"{ref.where} services", _evidence(ready, own)),)
    empty = sorted(name for name, found in ready.items() if not found)
    if empty:
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.FAIL,
            f"Service {', '.join(f'{ref.namespace}/{n}' for n in empty)} has no ready endpoint; "
            "check the pods' readiness and the Service's selector and ports",
            evidence,
            Category.UNHEALTHY_ENDPOINT,
        )
    foreign = sorted(name for name, found in ready.items() if not any(e.pod in own for e in found))
    if foreign:
        name = foreign[0]
        pods = reader.listing("pods", ref.namespace, deadline)
        others = ", ".join(_describe(e, pods.named(e.pod) if e.pod else None) for e in ready[name][:3])
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.FAIL,
            f"Service {ref.namespace}/{name} has {_count(len(ready[name]), 'ready endpoint')}, none of them a pod of "
            f"{ref.where} ({others}); check the Service's selector and which pods carry its labels",
            evidence,
            Category.UNHEALTHY_ENDPOINT,
        )
    return CheckResult(CHECK, ref.where, Verdict.PASS, _summary(ready, own), evidence)


def workload_services(
    reader: KubeReader, view: WorkloadView, named: list[str] | None, deadline: Deadline
) -> tuple[list[Obj], list[str]]:
    """(the workload's Services, the named ones that do not exist)."""
    assert view.obj is not None
    every = reader.listing("services", view.ref.namespace, deadline).items
    if named:
        services = [s for s in every if s["metadata"]["name"] in named]
        return services, sorted(set(named) - {s["metadata"]["name"] for s in services})
    labels = view.obj["spec"]["template"]["metadata"].get("labels", {})
    return [s for s in every if not _is_alias(s) and selects(s, labels)], []


def routed_pods(
    reader: KubeReader, view: WorkloadView, services: list[Obj], deadline: Deadline
) -> list[tuple[Obj, str]]:
    """(pod, Service) for every pod outside the workload's owner chain that one of its Services routes to: the target
    of a ready endpoint in its EndpointSlices, or a Ready pod its selector matches (the EndpointSlice controller may
    not have caught up, and slices of a Service without a selector are written by hand)."""
    pods = reader.listing("pods", view.ref.namespace, deadline)
    slices = reader.listing("endpointslices", view.ref.namespace, deadline).items
    own = {p["metadata"]["name"] for p in view.pods}
    found: dict[str, tuple[Obj, str]] = {}
    for service in (s for s in services if not _is_alias(s)):
        name = service["metadata"]["name"]
        for endpoint in service_endpoints(service, slices):
            pod = pods.named(endpoint.pod) if endpoint.ready and endpoint.pod else None
            if pod is not None and is_active(pod):
                found.setdefault(pod["metadata"]["name"], (pod, name))
        selector = service.get("spec", {}).get("selector") or {}
        for pod in pods.items if selector else []:
            if selects(service, pod["metadata"].get("labels", {})) and is_active(pod) and is_ready(pod):
                found.setdefault(pod["metadata"]["name"], (pod, name))
    return [found[n] for n in sorted(found) if n not in own]


def service_endpoints(service: Obj, slices: list[Obj]) -> list[Endpoint]:
    """The Service's endpoints across all its EndpointSlices, each once (ready if any slice says so)."""
    name = service["metadata"]["name"]
    found: dict[str, Endpoint] = {}
    for piece in slices:
        if piece["metadata"].get("labels", {}).get(SERVICE_LABEL) != name:
            continue
        for endpoint in piece.get("endpoints") or []:
            target = endpoint.get("targetRef") or {}
            pod = target.get("name") if target.get("kind") == "Pod" else None
            key = pod or ",".join(sorted(endpoint.get("addresses") or []))
            ready = endpoint.get("conditions", {}).get("ready") is not False  # nil means ready (discovery/v1)
            known = found.get(key)
            found[key] = Endpoint(name, key, pod, ready or bool(known and known.ready))
    return [found[k] for k in sorted(found)]


def selects(service: Obj, labels: dict[str, str]) -> bool:
    selector = service.get("spec", {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _is_alias(service: Obj) -> bool:
    return bool(service.get("spec", {}).get("type") == "ExternalName")


def _describe(endpoint: Endpoint, pod: Obj | None) -> str:
    if endpoint.pod is None:
        return f"address {endpoint.key} (no pod)"
    return f"Pod {endpoint.pod} ({owner_of(pod) if pod else 'not found'})"


def _evidence(ready: dict[str, list[Endpoint]], own: set[str]) -> dict[str, object]:
    return {
        name: {"ready": len(found), "of the workload": sum(1 for e in found if e.pod in own)}
        for name, found in sorted(ready.items())
    }


def _summary(ready: dict[str, list[Endpoint]], own: set[str]) -> str:
    parts = []
    for name, found in sorted(ready.items()):
        mine = sum(1 for e in found if e.pod in own)
        others = len(found) - mine
        parts.append(f"{name}: {mine} ready" + (f" (+{others} not of this workload)" if others else ""))
    return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
