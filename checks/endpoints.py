"""Service endpoints: every Service that selects the workload's pods has at least one ready endpoint
(EndpointSlices, `conditions.ready`).

    result = check_endpoints(reader, WorkloadRef("deployment", "payments", "payments-api"), deadline)
"""

from __future__ import annotations

from checks.deadline import Deadline
from checks.result import Category, CheckResult, Evidence, Verdict
from checks.runner import attempt
from checks.transports.kube import KubeReader, Obj
from checks.workloads import WorkloadRef, read_workload

CHECK = "service_endpoints"
SERVICE_LABEL = "kubernetes.io/service-name"


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
    labels = view.obj["spec"]["template"]["metadata"].get("labels", {})
    every = reader.listing("services", ref.namespace, deadline).items
    if named:
        services = [s for s in every if s["metadata"]["name"] in named]
        missing = sorted(set(named) - {s["metadata"]["name"] for s in services})
        if missing:
            return CheckResult(
                CHECK,
                ref.where,
                Verdict.FAIL,
                f"Service {', '.join(missing)} not found in {ref.namespace}; was it deployed, or renamed?",
                category=Category.PROVISIONING,
            )
    else:
        services = [s for s in every if _selects(s, labels)]
    if not services:
        return CheckResult(CHECK, ref.where, Verdict.PASS, "no Service selects these pods; nothing to route")
    slices = reader.listing("endpointslices", ref.namespace, deadline).items
    counts = {s["metadata"]["name"]: _ready_endpoints(s["metadata"]["name"], slices) for s in services}
    evidence = (Evidence.as_json(f"{ref.where} services", counts),)
    empty = sorted(name for name, ready in counts.items() if ready == 0)
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
    summary = ", ".join(f"{name}: {ready} ready" for name, ready in sorted(counts.items()))
    return CheckResult(CHECK, ref.where, Verdict.PASS, summary, evidence)


def _selects(service: Obj, labels: dict[str, str]) -> bool:
    selector = service.get("spec", {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _ready_endpoints(service: str, slices: list[Obj]) -> int:
    return sum(
        1
        for s in slices
        if s["metadata"].get("labels", {}).get(SERVICE_LABEL) == service
        for endpoint in s.get("endpoints") or []
        if endpoint.get("conditions", {}).get("ready") is not False
    )
