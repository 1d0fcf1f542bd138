"""Node health after patching: every node Ready, none cordoned, under no resource pressure (the kubelet evicts pods
from a node with MemoryPressure, DiskPressure or PIDPressure), its network configured, not marked out of service or
for deletion by the cluster autoscaler, and none carrying a pending-reboot marker (such as Kured's reboot annotations)
when the environment names one.

    result = check_nodes(reader, reboot_markers=["weave.works/kured-reboot-in-progress"], deadline=deadline)
"""

from __future__ import annotations

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.kube import KubeReader, Obj

CHECK = "nodes_healthy"
# Conditions that are bad when True (the kubelet and the cloud route controller set them).
BAD_WHEN_TRUE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
# Taints that mean the node is being taken away: node.kubernetes.io/out-of-service (non-graceful shutdown) and the
# cluster autoscaler's scale-down mark.
LEAVING = {
    "node.kubernetes.io/out-of-service": "is marked out of service",
    "ToBeDeletedByClusterAutoscaler": "is being removed by the cluster autoscaler",
}


def check_nodes(reader: KubeReader, reboot_markers: list[str], deadline: Deadline) -> CheckResult:
    where = f"cluster:{reader.cluster}"
    return attempt(CHECK, where, lambda: _judge(where, reader.listing("nodes", None, deadline).items, reboot_markers))


def _judge(where: str, nodes: list[Obj], reboot_markers: list[str]) -> CheckResult:
    # Node trouble is filed with the infrastructure: the deployment cannot fix a node that is down or drained.
    if not nodes:
        return CheckResult(CHECK, where, Verdict.FAIL, "the cluster has no nodes", category=Category.UNREACHABLE)
    problems = [p for node in nodes for p in _node_problems(node, reboot_markers)]
    evidence = (Evidence.as_json(f"{where} nodes", [_summary(n) for n in nodes]),)
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        message = "; ".join(problems[:3]) + more
        return CheckResult(CHECK, where, Verdict.FAIL, message, evidence, Category.UNREACHABLE)
    return CheckResult(CHECK, where, Verdict.PASS, f"{len(nodes)}/{len(nodes)} nodes Ready and schedulable", evidence)


def _node_problems(node: Obj, reboot_markers: list[str]) -> list[str]:
    name = node["metadata"]["name"]
    conditions = {c.get("type"): c for c in node.get("status", {}).get("conditions", [])}
    ready: Obj = conditions.get("Ready", {})
    found = []
    if ready.get("status") != "True":
        found.append(f"Node {name} not Ready ({ready.get('reason', 'no Ready condition')})")
    found += [
        f"Node {name} has {kind} ({conditions[kind].get('reason', '')}: {conditions[kind].get('message', '')})"
        for kind in BAD_WHEN_TRUE
        if conditions.get(kind, {}).get("status") == "True"
    ]
    if node.get("spec", {}).get("unschedulable"):
        found.append(f"Node {name} is cordoned")
    taints = {t.get("key") for t in node.get("spec", {}).get("taints") or []}
    found += [f"Node {name} {what} (taint {key})" for key, what in LEAVING.items() if key in taints]
    annotations = node["metadata"].get("annotations", {})
    found += [f"Node {name} is waiting for a reboot ({marker})" for marker in reboot_markers if marker in annotations]
    return found


def _summary(node: Obj) -> dict[str, object]:
    conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
    return {
        "name": node["metadata"]["name"],
        "ready": conditions.get("Ready"),
        "unschedulable": bool(node.get("spec", {}).get("unschedulable")),
        "kubelet": node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion"),
    }
