"""The floor: the reads `-m rollout` needs and nothing else, made as fast as the network allows, judged by the suite's
own rollout predicate. What the suite is measured against (bench/estate.py, issue 17).

    .venv/bin/python bench/floor.py --kubeconfig estate.json --plan plan.json [--concurrency 64]

`plan.json` lists what to verify: [[context, namespace, deployment], ...]. For each context, one HTTPS connection
(http.client, the context's CA and client certificate from the kubeconfig) makes one LIST of deployments, replicasets
and pods per namespace of that context, concurrently across contexts; then each Deployment is judged with
checks.workloads.read_workload and checks.rollout.rollout_state, the suite's predicate, on those lists. Stdlib only
for the network: the kubeconfig is read as JSON (which is YAML; bench/estate.py writes it so), so no YAML parser and
no Kubernetes client is imported. Prints one JSON line: seconds, requests, verdicts; exit 1 if any is not PASS.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AGENT = "deploy-verify-floor/1"  # what the benches find this script's requests by in the audit log
PLURALS = {"deployments": "/apis/apps/v1", "replicasets": "/apis/apps/v1", "pods": "/api/v1"}


@dataclass
class Lists:
    """A stand-in for the suite's KubeReader: the lists the floor read, served as the predicate asks for them."""

    cluster: str
    lists: dict[tuple[str, str], Any] = field(default_factory=dict)

    def listing(self, kind: str, namespace: str | None, deadline: Any, select: str = "") -> Any:
        return self.lists[(kind, str(namespace))]

    def namespace_exists(self, namespace: str, deadline: Any) -> bool:
        return True  # the bench made every namespace it lists


def context_of(kubeconfig: dict[str, Any], name: str) -> tuple[str, ssl.SSLContext]:
    """(server URL, TLS context) of a kubeconfig context, client certificate included."""
    by_name = {
        section: {e["name"]: e for e in kubeconfig.get(section, [])} for section in ("contexts", "clusters", "users")
    }
    context = by_name["contexts"][name]["context"]
    cluster = by_name["clusters"][context["cluster"]]["cluster"]
    user = by_name["users"][context["user"]]["user"]
    tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
    tls.load_cert_chain(user["client-certificate"], user["client-key"])
    return cluster["server"], tls


def read_context(kubeconfig: dict[str, Any], name: str, namespaces: list[str]) -> tuple[Lists, int]:
    """Every list one context's Deployments need, over one connection; (lists, requests made)."""
    from deploy_verify.checks.transports.kube import Listing

    server, tls = context_of(kubeconfig, name)
    url = urlsplit(server)
    connection = http.client.HTTPSConnection(url.hostname or "", url.port or 443, context=tls, timeout=60)
    found, requests = Lists(name), 0
    try:
        for namespace in namespaces:
            for plural, prefix in PLURALS.items():
                connection.request(
                    "GET",
                    f"{prefix}/namespaces/{namespace}/{plural}",
                    headers={"Accept": "application/json", "User-Agent": AGENT},
                )
                response = connection.getresponse()
                body = response.read()
                requests += 1
                if response.status != 200:
                    raise RuntimeError(f"{name}: LIST {plural} in {namespace}: HTTP {response.status}")
                document = json.loads(body)
                found.lists[(plural, namespace)] = Listing(document["items"], document["metadata"]["resourceVersion"])
    finally:
        connection.close()
    return found, requests


def floor(kubeconfig: dict[str, Any], plan: list[tuple[str, str, str]], concurrency: int) -> dict[str, Any]:
    from deploy_verify.checks.deadline import Deadline
    from deploy_verify.checks.rollout import Limits, rollout_state
    from deploy_verify.checks.workloads import WorkloadRef, read_workload

    started = time.perf_counter()
    namespaces: dict[str, list[str]] = {}
    for context, namespace, _ in plan:
        if namespace not in namespaces.setdefault(context, []):
            namespaces[context].append(namespace)
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(namespaces)))) as pool:
        read = dict(
            zip(namespaces, pool.map(lambda c: read_context(kubeconfig, c, namespaces[c]), namespaces), strict=True)
        )
    read_s = time.perf_counter() - started
    deadline, verdicts = Deadline.after(60), {}
    for context, namespace, name in plan:
        ref = WorkloadRef("deployment", namespace, name)
        view = read_workload(read[context][0], ref, deadline)  # type: ignore[arg-type]
        verdicts[f"{context}/{namespace}/{name}"] = str(rollout_state(view, Limits()).verdict)
    return {
        "seconds": round(time.perf_counter() - started, 4),
        "read_seconds": round(read_s, 4),
        "requests": sum(r for _, r in read.values()),
        "contexts": len(namespaces),
        "verdicts": verdicts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True, type=Path, help="a kubeconfig written as JSON")
    parser.add_argument("--plan", required=True, type=Path, help="JSON: [[context, namespace, deployment], ...]")
    parser.add_argument("--concurrency", type=int, default=64, help="contexts read at once (one connection each)")
    args = parser.parse_args()
    began = time.perf_counter()
    result = floor(json.loads(args.kubeconfig.read_text()), [tuple(p) for p in json.loads(args.plan.read_text())],
                   args.concurrency)  # fmt: skip
    result["process_seconds"] = round(time.perf_counter() - began, 4)
    bad = {k: v for k, v in result["verdicts"].items() if v != "pass"}
    print(json.dumps({**result, "verdicts": len(result["verdicts"]), "not_pass": bad}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
