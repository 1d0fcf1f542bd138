"""An estate of many clusters: what `-m rollout` costs per cluster as the estate grows, against the floor.

    .venv/bin/python bench/estate.py --clusters 1 50 200 [--latency-ms 50] [--memory 1000] [--results FILE]

One KWOK API server (`dv-bench`, state in /tmp/dv-estate-state, never the testbed's) holds one namespace
`org-NNNN` with one Deployment `app` per cluster; the estate's kubeconfig has one context, cluster and user per
organisation (`org-NNNN`), all pointing at that server, as a merged kubeconfig of hundreds of AKS clusters would. The
environment has one cluster and one component per context. For each size, in one run, interleaved:
  - the suite, `pytest features --env estate -m rollout -n 0`, with the kubeconfig merged in one file and split into
    one file per context ($KUBECONFIG lists them all, as `az aks get-credentials --file` per cluster leaves them);
  - the floor, bench/floor.py: the same LISTs (deployments, replicasets, pods per cluster and namespace) over one
    connection per cluster, concurrently, judged by the suite's rollout predicate;
  - `kubectl rollout status` for each cluster's Deployment, one after the other (up to 200 clusters);
and prints each figure with its ratio to the floor and kubectl's to the suite. With --latency-ms, every cluster's
server is reached through a loopback TCP proxy that holds each chunk for half the round trip each way, and the suite
and the floor run again behind it. With --memory N, the suite collects and judges an estate of N clusters and its
peak resident memory is printed (target: under 500 MB at 1000).

Targets (issue 17): 200 clusters at most 3x the floor; with 50 ms round trips, within 2x of the floor's time.
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import sys
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kube as kb  # the KWOK cluster, processes and audit helpers of the rollout bench

STATE = Path("/tmp/dv-estate-state")
ORG = "org-{:04d}"


# --- the estate --------------------------------------------------------------------------------------------------


def estate_yaml(count: int) -> str:
    docs = []
    for i in range(count):
        namespace = ORG.format(i)
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n")
        docs.append(kb.deployment_yaml(namespace, "app", "registry.example.test/bench/app:1.0.0", 1))
    return "---\n".join(docs)


def deploy_estate(cluster: kb.Cluster, count: int, work: Path) -> None:
    manifest = work / f"estate-{count}.yaml"
    manifest.write_text(estate_yaml(count))
    cluster.kubectl("apply", "--server-side", "-f", str(manifest), timeout=1200)
    cluster.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-A", "--timeout=900s", timeout=960)


def kubeconfigs(base: Path, count: int, server: str, work: Path, tag: str) -> tuple[Path, list[Path]]:
    """(merged file, one file per context) for `count` contexts on `server`, written as JSON (valid YAML)."""
    source = yaml.safe_load(base.read_text())
    cluster, user = source["clusters"][0]["cluster"], source["users"][0]["user"]
    merged: dict[str, list[dict[str, object]]] = {"clusters": [], "contexts": [], "users": []}
    split = []
    folder = work / f"kubeconfig-{tag}-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = ORG.format(i)
        one = {
            "clusters": [{"name": name, "cluster": {**cluster, "server": server}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "users": [{"name": name, "user": user}],
        }
        for section, entries in one.items():
            merged[section] += entries
        path = folder / f"{name}.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", **one}))
        split.append(path)
    whole = folder / "merged.json"
    whole.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", **merged}))
    return whole, split


def write_environment(directory: Path, count: int, kubeconfig: Path | None) -> None:
    located = f", kubeconfig: {kubeconfig}" if kubeconfig else ""
    lines = ["name: estate", "budget: 30m", "defaults:", "  kubernetes: {rollout_timeout: 15m, grace: 2s}", "clusters:"]
    lines += [f"  {ORG.format(i)}: {{context: {ORG.format(i)}{located}}}" for i in range(count)]
    lines += ["components:"]
    lines += [
        f"  - {{name: {ORG.format(i)}, kind: deployment, cluster: {ORG.format(i)}, namespace: {ORG.format(i)}, "
        "workload: app}"
        for i in range(count)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "estate.yaml").write_text("\n".join(lines) + "\n")


# --- a loopback proxy with a round-trip delay ----------------------------------------------------------------------


class DelayProxy:
    """127.0.0.1:PORT -> the API server, holding every chunk for half the round trip in each direction (TLS passes
    through untouched, so the server's certificate for 127.0.0.1 still verifies)."""

    def __init__(self, target: tuple[str, int], rtt: float) -> None:
        self.target, self.half = target, rtt / 2
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                time.sleep(self.half)
                sink.sendall(chunk)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


# --- the runs ----------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    what: str
    seconds: float
    requests: int | None = None
    peak_mb: float | None = None


def suite(env_dir: Path, reports: Path, count: int, kubeconfig_list: list[Path] | None) -> Figure:
    command = [sys.executable, "-m", "pytest", "features", "--env", "estate", f"--env-dir={env_dir}", "-m", "rollout"]
    command += ["-n", "0", "-q", f"--reports-dir={reports}"]
    env = dict(kb.ENV)
    if kubeconfig_list is not None:
        env["KUBECONFIG"] = ":".join(str(p) for p in kubeconfig_list)
    done = kb.run(command, 3600, env=env, check=False, memory=True)
    verdict = json.loads((reports / "verdict.json").read_text())
    if verdict["verdict"] != "green" or len(verdict["tests"]) != count:
        raise kb.BenchError(f"suite not green with {count} tests:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return Figure("suite", done.seconds, None, max(done.peak_mb.values(), default=0.0))


def floor(kubeconfig: Path, count: int, work: Path) -> Figure:
    plan = work / f"plan-{count}.json"
    plan.write_text(json.dumps([[ORG.format(i), ORG.format(i), "app"] for i in range(count)]))
    command = [
        sys.executable,
        str(Path(__file__).with_name("floor.py")),
        f"--kubeconfig={kubeconfig}",
        f"--plan={plan}",
    ]
    done = kb.run(command, 600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Figure("floor", done.seconds, int(result["requests"]))


def kubectl_each(cluster: kb.Cluster, kubeconfig: Path, count: int) -> Figure:
    binary = cluster.kubectl_cmd()[0]
    started = time.perf_counter()
    for i in range(count):
        name = ORG.format(i)
        command = [binary, "--kubeconfig", str(kubeconfig), "--context", name, "-n", name, "--cache-dir"]
        kb.run([*command, str(cluster.cache_dir), "rollout", "status", "deployment/app", "--timeout=60s"], 120)
    return Figure("kubectl rollout status, each", time.perf_counter() - started)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "-"


HEADER = (
    f"{'clusters':>8}  {'path':<8} {'form':<7} {'suite s':>8} {'floor s':>8} {'suite/floor':>11} "
    f"{'kubectl s':>9} {'kubectl/suite':>13} {'peak MB':>8} {'floor LISTs':>11}"
)


def one_size(cluster: kb.Cluster, count: int, path: tuple[str, str], work: Path, kubectl_max: int) -> list[str]:
    """The suite (merged and split kubeconfig), the floor and kubectl on an estate of `count` clusters."""
    label, url = path
    merged, split = kubeconfigs(cluster.kubeconfig, count, url, work, label.strip("+"))
    base = floor(merged, count, work)
    kubectl = kubectl_each(cluster, merged, count) if label == "direct" and count <= kubectl_max else None
    lines = []
    for form in ("merged", "split"):
        env_dir, reports = work / f"env-{label}-{count}-{form}", work / f"reports-{label}-{count}-{form}"
        write_environment(env_dir, count, merged if form == "merged" else None)
        run = suite(env_dir, reports, count, split if form == "split" else None)
        versus = (
            f"{kubectl.seconds:9.2f} {ratio(kubectl.seconds, run.seconds):>13}" if kubectl else f"{'-':>9} {'-':>13}"
        )
        lines.append(
            f"{count:>8}  {label:<8} {form:<7} {run.seconds:8.2f} {base.seconds:8.2f} "
            f"{ratio(run.seconds, base.seconds):>11} {versus} {run.peak_mb or 0:8.0f} {base.requests:>11}"
        )
    return lines


def memory(cluster: kb.Cluster, count: int, server: str, work: Path) -> str:
    merged, _ = kubeconfigs(cluster.kubeconfig, count, server, work, "memory")
    env_dir, reports = work / f"env-memory-{count}", work / f"reports-memory-{count}"
    write_environment(env_dir, count, merged)
    run = suite(env_dir, reports, count, None)
    base = floor(merged, count, work)
    return (
        f"{count} clusters collected and judged: {run.seconds:.1f} s, peak {run.peak_mb or 0:.0f} MB "
        f"(target < 500 MB); floor {base.seconds:.2f} s, suite/floor {ratio(run.seconds, base.seconds)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--latency-ms", type=float, default=0.0, help="also run behind a proxy adding this round trip")
    parser.add_argument("--memory", type=int, default=0, help="also verify an estate of this many clusters, for RSS")
    parser.add_argument("--kubectl-max", type=int, default=200, help="largest estate kubectl is run against")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up")
    parser.add_argument("--results", type=Path, help="append the figures of this run to this Markdown file")
    args = parser.parse_args()
    largest = max([*args.clusters, args.memory])
    work = Path(tempfile.mkdtemp(prefix="dv-estate-"))
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    with kb.sigterm_as_exit():
        cluster = kb.start_cluster(STATE, max(3, largest // 100 + 1), work)
        proxy: DelayProxy | None = None
        try:
            deploy_estate(cluster, largest, work)
            server = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
            host, port = server.removeprefix("https://").rsplit(":", 1)
            paths = [("direct", server)]
            if args.latency_ms:
                proxy = DelayProxy((host, int(port)), args.latency_ms / 1000)
                paths.append((f"+{args.latency_ms:g}ms", f"https://127.0.0.1:{proxy.port}"))
            say(HEADER)
            for count in sorted(args.clusters):
                for path in paths:
                    for line in one_size(cluster, count, path, work, args.kubectl_max):
                        say(line)
            if args.memory:
                say()
                say(memory(cluster, args.memory, server, work))
        finally:
            if proxy is not None:
                proxy.close()
            if not args.keep:
                kb.stop_cluster(STATE)
    if args.results:
        command = shlex.join(["bench/estate.py", *sys.argv[1:]])
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        text = "\n".join(lines)
        with args.results.open("a", encoding="utf-8") as results:  # a section after bench/kube.py's, not in place
            results.write(f"\n## Estate ({command}, {stamp})\n\n```\n{text}\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
