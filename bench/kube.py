"""Kubernetes rollout verification at scale on KWOK: time to verdict, API requests, and kubectl for comparison.

    .venv/bin/python bench/kube.py [--deployments 50 500] [--workers 0 4] [--repeat 3] [--full]
                                   [--forms listed selection | --selection]

Starts its own KWOK cluster `dv-bench` (state in /tmp/dv-bench-state, never the testbed's dv-a/dv-b), creates 10
namespaces with N Deployments (1 replica each) and one headless Service per Deployment (a ClusterIP for each would
exhaust kwokctl's service range, ~250 addresses) by server-side apply of one generated
multi-document YAML, and waits until every Deployment is rolled out and every Service has a ready endpoint: what is
timed is verification, not deployment. Then, for each N (ascending; each N adds Deployments to the previous ones):
  - the suite with `-m rollout` (one "rollout completes" test per Deployment) and with
    `-m "rollout or pods or image or endpoints"` (four per Deployment, with a release file), for each worker count:
    wall time of the command and the session time of verdict.json (`duration_s`); every run must be green;
  - the API requests each run made, from the API server's audit log (user agent of the official Python client,
    `OpenAPI-Generator/...`): total, per namespace, per (verb, resource), and the largest number of LISTs of one kind
    in one namespace; and, as a cross-check from `/metrics`, the LIST+WATCH delta of `apiserver_request_total` (all
    clients: the background controllers only GET/PUT leases and PATCH status in steady state);
  - in the same run, the same question asked with kubectl, the way it is scripted: `kubectl rollout status` per
    Deployment, one after the other, and `kubectl wait --for=condition=Available deployment --all` per namespace;
    printed as ratios kubectl / suite (`-m rollout`, wall time against wall time).
The environment file takes one of two forms (`--forms`, default `listed`; `--selection` = `--forms selection`):
`listed`, one hand-named component per Deployment; `selection`, ONE component `bulk` with
`select: {namespaces: [ns-00 .. ns-09], labels: "tier=bulk"}` (every bench Deployment carries that label), which the
suite resolves on the xdist controller into N members `app-NNNN@dv-bench` and reads again at the end of the run (a
member that appeared meanwhile turns the gate red); the release file maps by name in both. With both forms, each suite
run is repeated per form, interleaved, and the ratios selection / listed are printed; the suite's LISTs of the
selected kind are split by time into the controller's resolution (the leading LISTs, one per namespace, before any
other request), the final re-read (the trailing ones, after every check's request) and the checks' own.
Then a crash loop: Deployment `crash/crash-app` (2 replicas, maxSurge 1, maxUnavailable 0) is updated from a healthy
v1 to a v2 whose pods crash-loop (label dv.test/fault: crashloop) while the v1 pods keep serving; from the moment of
the update, the suite (`-m rollout`, an environment holding only that Deployment) and `kubectl rollout status` run
side by side, and each one's time to its failure is measured. kubectl only fails when progressDeadlineSeconds expires:
60 s here (--full: the default 600 s, which takes ten minutes); the default-deadline figure is then stated as
600 s + the overhead measured beyond 60 s, and both ratios are printed, labelled.

Targets (issue): the API requests per namespace do not grow with the number of Deployments in it (one LIST per kind
and namespace per pytest process, no per-object GETs); a crash loop is reported at least 50x sooner than
`kubectl rollout status` reports it with the default deadline.

The cluster is stopped on every exit path (also Ctrl-C and SIGTERM) unless --keep is given; every subprocess runs in
its own process group with a timeout and is killed with its children when that runs out. Subprocesses run with
bytecode caching on (see bench/overhead.py). 500 pods need more than the testbed's 3 nodes (110 pods each): the node
count is max(3, pods / 100) unless --nodes says otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KUBE_DIR = ROOT / "testbed" / "kube"
CLUSTER = "dv-bench"
CONTEXT = f"kwok-{CLUSTER}"
NAMESPACES = 10
CRASH_NS, CRASH_NAME = "crash", "crash-app"
DEFAULT_PROGRESS_DEADLINE = 600.0  # seconds: a Deployment's progressDeadlineSeconds when unset
SHORT_PROGRESS_DEADLINE = 60
SUITE_AGENT = "OpenAPI-Generator/"  # the official kubernetes Python client's User-Agent prefix
KUBECTL_AGENT = "kubectl/"
FLOOR_AGENT = "deploy-verify-floor/"  # bench/floor.py's AGENT
SELECTIONS = {"rollout": "rollout", "4 checks": "rollout or pods or image or endpoints"}
FORMS = ("listed", "selection")  # N hand-named components, or one `select:` component standing for all N
SELECTION_NAME, SELECTION_LABELS = "bulk", "tier=bulk"  # the selection component; every bench Deployment has the label
SELECTED_PLURAL = "deployments"  # what the selection lists: its kind's resource
CRASH_TARGET = 50.0  # "at least 50 times sooner"

# Bytecode caching on, as on a user's machine (see bench/overhead.py).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class BenchError(Exception):
    """The benchmark cannot go on (a command failed, timed out, or a run was not green)."""


# --- processes ---------------------------------------------------------------------------------------------------


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    ended: float  # time.perf_counter() when the process exited
    peak_mb: dict[int, float] = field(default_factory=dict)  # pid -> peak RSS (VmHWM) of each process in the group


class RssSampler:
    """Peak resident memory of every process in a process group (pytest's controller and its xdist workers), read
    from /proc/PID/status VmHWM (the kernel's own high-water mark, so sampling every 0.1 s misses no peak of a process
    that is still alive at the next look; a process that ends between looks keeps its last value)."""

    def __init__(self, group: int) -> None:
        self.group = group
        self.peak: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(0.1):
            self.sample()

    def sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[2]) != self.group:  # field 5: process group
                    continue
                status = Path(entry.path, "status").read_text()
            except (OSError, ValueError, IndexError):
                continue
            match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            if match:
                self.peak[int(entry.name)] = max(self.peak.get(int(entry.name), 0.0), int(match.group(1)) / 1024)

    def finish(self) -> dict[int, float]:
        self.stop.set()
        self.thread.join(2)
        return self.peak


def run(
    cmd: list[str], timeout: float, env: dict[str, str] | None = None, check: bool = True, memory: bool = False
) -> Done:
    """Run `cmd` in its own process group, bounded by `timeout`; the whole group is killed on timeout or interrupt.
    With `memory`, the peak RSS of every process in the group is sampled (a little CPU: one /proc scan per 0.1 s)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    sampler = RssSampler(proc.pid) if memory else None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        raise BenchError(f"timed out after {timeout:.0f}s: {shlex.join(cmd)}\n{out[-2000:]}\n{err[-2000:]}") from None
    except BaseException:
        _kill(proc)
        proc.communicate()
        raise
    ended = time.perf_counter()
    done = Done(proc.returncode, out, err, ended - started, ended, sampler.finish() if sampler else {})
    if check and done.returncode != 0:
        raise BenchError(f"exit {done.returncode}: {shlex.join(cmd)}\n{out[-3000:]}\n{err[-3000:]}")
    return done


class Background:
    """A process started now and reaped by a thread, so the moment it exits is known to the millisecond."""

    def __init__(self, cmd: list[str], timeout: float) -> None:
        self.cmd, self.timeout = cmd, timeout
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.ended: float | None = None
        self.output = ("", "")
        self.thread = threading.Thread(target=self._reap, daemon=True)
        self.thread.start()

    def _reap(self) -> None:
        self.output = self.proc.communicate()
        self.ended = time.perf_counter()

    def wait(self) -> Done:
        self.thread.join(max(0.0, self.started + self.timeout - time.perf_counter()))
        if self.ended is None:
            self.stop()
            raise BenchError(f"timed out after {self.timeout:.0f}s: {shlex.join(self.cmd)}")
        return Done(self.proc.returncode, *self.output, self.ended - self.started, self.ended)

    def stop(self) -> None:
        if self.proc.poll() is None:
            _kill(self.proc)
        self.thread.join(10)


def _kill(proc: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created for it: pytest-xdist workers go with it


# --- the cluster -------------------------------------------------------------------------------------------------


def _kube_version() -> str:
    text = (KUBE_DIR / "versions.env").read_text()
    found = re.search(r"^KUBE_VERSION=(\S+)", text, re.MULTILINE)
    assert found, "versions.env has no KUBE_VERSION"
    return found.group(1)


@dataclass
class Cluster:
    state_dir: Path
    kubeconfig: Path
    cache_dir: Path  # kubectl's discovery cache, kept out of ~/.kube

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "kwok" / "clusters" / CLUSTER / "logs" / "audit.log"

    def kubectl_cmd(self, *args: str) -> list[str]:
        cache = Path(os.environ.get("DV_CACHE_DIR", Path.home() / ".cache" / "deploy-verify"))
        binary = cache / "kube" / _kube_version() / "bin" / "kubectl"
        return [
            str(binary),
            "--kubeconfig",
            str(self.kubeconfig),
            "--context",
            CONTEXT,
            "--cache-dir",
            str(self.cache_dir),
            *args,
        ]

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True) -> Done:
        return run(self.kubectl_cmd(*args), timeout, check=check)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json", timeout=120).stdout)


def cluster_env(state_dir: Path) -> dict[str, str]:
    return {**ENV, "DV_STATE_DIR": str(state_dir)}


def start_cluster(state_dir: Path, nodes: int, work: Path) -> Cluster:
    script = str(KUBE_DIR / "cluster.sh")
    # A fresh cluster every time: objects or audit entries left by an earlier run would skew every figure.
    run(["bash", script, "stop", CLUSTER], 120, env=cluster_env(state_dir))
    done = run(["bash", script, "start", CLUSTER, str(nodes)], 600, env=cluster_env(state_dir))
    kubeconfig = Path(done.stdout.strip().splitlines()[-1])
    return Cluster(state_dir, kubeconfig, work / "kubectl-cache")


def stop_cluster(state_dir: Path) -> None:
    run(["bash", str(KUBE_DIR / "cluster.sh"), "stop", CLUSTER], 120, env=cluster_env(state_dir), check=False)


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the `finally` that stops the cluster runs."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- workloads ---------------------------------------------------------------------------------------------------


def app(i: int) -> tuple[str, str]:
    """(namespace, name) of Deployment i: round-robin over the namespaces."""
    return f"ns-{i % NAMESPACES:02d}", f"app-{i:04d}"


TOLERATION = "[{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]"


def deployment_yaml(
    namespace: str,
    name: str,
    image: str,
    replicas: int,
    extra_labels: str = "",
    progress_deadline: int | None = None,
    labels: str = "",
) -> str:
    deadline = f"\n  progressDeadlineSeconds: {progress_deadline}" if progress_deadline else ""
    own = f", labels: {{{labels}}}" if labels else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}{own}}}
spec:
  replicas: {replicas}{deadline}
  selector: {{matchLabels: {{app: {name}}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: {name}{extra_labels}}}}}
    spec:
      tolerations: {TOLERATION}
      containers: [{{name: app, image: {image}, ports: [{{containerPort: 8080}}]}}]
"""


def service_yaml(namespace: str, name: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  clusterIP: None
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""


def workloads_yaml(count: int, replicas: int) -> str:
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{n:02d}}}\n" for n in range(NAMESPACES)]
    for i in range(count):
        namespace, name = app(i)
        key, _, value = SELECTION_LABELS.partition("=")
        labels = f"{key}: {value}"  # what the `selection` form selects on (the listed form ignores it)
        docs += [deployment_yaml(namespace, name, "registry.example.test/bench/app:1.0.0", replicas, labels=labels)]
        docs += [service_yaml(namespace, name)]
    return "---\n".join(docs)


def deploy(cluster: Cluster, count: int, replicas: int, work: Path) -> float:
    """Apply N Deployments + Services and wait until every rollout is complete and every Service has a ready
    endpoint (Available alone is not enough for the one-shot endpoints check). Seconds taken."""
    started = time.perf_counter()
    manifest = work / f"workloads-{count}.yaml"
    manifest.write_text(workloads_yaml(count, replicas))
    cluster.kubectl("apply", "--server-side", "-f", str(manifest), timeout=900)
    cluster.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-A", "--timeout=600s", timeout=660)
    settle_until = time.monotonic() + 300
    while True:
        lagging = unsettled(cluster, count)
        if not lagging:
            return time.perf_counter() - started
        if time.monotonic() > settle_until:
            raise BenchError(f"workloads not settled after 300 s: {lagging[:5]} ({len(lagging)} in all)")
        time.sleep(1)


def unsettled(cluster: Cluster, count: int) -> list[str]:
    wanted = {app(i) for i in range(count)}
    lagging = []
    for d in cluster.get_json("deployments", "-A")["items"]:
        key = d["metadata"]["namespace"], d["metadata"]["name"]
        status, want = d.get("status", {}), d["spec"]["replicas"]
        done = d["metadata"]["generation"] == status.get("observedGeneration") and (
            status.get("updatedReplicas") == status.get("availableReplicas") == status.get("replicas") == want
        )
        if key in wanted and not done:
            lagging.append(f"deployment {key[0]}/{key[1]}")
    ready: set[tuple[str, str]] = set()
    for s in cluster.get_json("endpointslices", "-A")["items"]:
        service = s["metadata"].get("labels", {}).get("kubernetes.io/service-name")
        if any(e.get("conditions", {}).get("ready") for e in s.get("endpoints") or []):
            ready.add((s["metadata"]["namespace"], service))
    lagging += [f"service {ns}/{name}" for ns, name in sorted(wanted - ready)]
    return lagging


def write_environment(
    directory: Path, name: str, cluster: Cluster, components: list[tuple[str, str]], form: str = "listed"
) -> None:
    """`listed`: one component per (namespace, Deployment); `selection`: one component selecting every Deployment
    labelled tier=bulk in the bench namespaces (the cluster holds exactly `components` of them)."""
    lines = [
        f"name: {name}",
        "budget: 30m",
        "defaults:",
        "  kubernetes: {rollout_timeout: 15m, grace: 2s}",
        "clusters:",
        f"  {CLUSTER}: {{context: {CONTEXT}, kubeconfig: {cluster.kubeconfig}}}",
        "components:",
    ]
    if form == "selection":
        namespaces = ", ".join(f"ns-{n:02d}" for n in range(NAMESPACES))
        lines += [
            f"  - name: {SELECTION_NAME}",
            "    kind: deployment",
            f"    cluster: {CLUSTER}",
            f'    select: {{namespaces: [{namespaces}], labels: "{SELECTION_LABELS}"}}',
        ]
    else:
        lines += [
            f"  - {{name: {n}, kind: deployment, cluster: {CLUSTER}, namespace: {ns}, workload: {n}}}"
            for ns, n in components
        ]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yaml").write_text("\n".join(lines) + "\n")


def write_release(path: Path, components: list[tuple[str, str]]) -> None:
    path.write_text("release: bench\ncomponents:\n" + "".join(f"  {n}: 1.0.0\n" for _, n in components))


# --- counting API requests ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    at: float  # requestReceivedTimestamp, seconds since the epoch
    verb: str
    resource: str
    namespace: str | None


@dataclass
class Requests:
    """Requests of one client (by User-Agent) in an audit-log window, plus the all-client LIST+WATCH metric delta."""

    total: int = 0
    by_verb_resource: Counter[str] = field(default_factory=Counter)
    per_namespace: Counter[str] = field(default_factory=Counter)
    lists_per_kind_ns: Counter[str] = field(default_factory=Counter)
    object_gets: int = 0  # GETs of one named object: what "does not grow with N" rules out
    metric_list_watch: float = 0.0
    timeline: list[Request] = field(default_factory=list)  # every request, in the order the API server received them

    def phases(self, plural: str) -> tuple[list[Request], list[Request]]:
        """(resolution, final re-read) of a selection over `plural`: the leading and the trailing run of LISTs of
        it, one per namespace, that no other request interrupts. The controller resolves before any worker exists and
        re-reads after every test has ended, so both are contiguous; a worker's first (or last) LIST of the kind in a
        namespace already read in the run ends the run. Meaningful for the selection form only (in a listed run the
        first worker's first LIST would be taken for a resolution)."""

        def run_of(requests: list[Request]) -> list[Request]:
            taken: list[Request] = []
            for r in requests:
                if r.verb != "list" or r.resource != plural or r.namespace in {t.namespace for t in taken}:
                    break
                taken.append(r)
            return taken

        leading = run_of(self.timeline)
        trailing = run_of(self.timeline[len(leading) :][::-1])[::-1]
        return leading, trailing

    @property
    def max_per_namespace(self) -> int:
        return max(self.per_namespace.values(), default=0)

    @property
    def max_lists_per_kind_ns(self) -> int:
        return max(self.lists_per_kind_ns.values(), default=0)


class Audit:
    """The API server's audit log (Metadata level, one JSON line per stage) read from a byte offset."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.path = cluster.audit_log

    def mark(self) -> tuple[int, float]:
        metric = self._list_watch_metric()  # first, so that this GET /metrics falls before the window
        return self.path.stat().st_size, metric

    def since(self, mark: tuple[int, float], agent: str) -> Requests:
        time.sleep(1.0)  # let the API server write the last ResponseComplete entries
        offset, metric_before = mark
        with self.path.open("rb") as log:
            log.seek(offset)
            chunk = log.read()
        metric_after = self._list_watch_metric()  # after the window: this GET /metrics is not in it
        events: dict[str, dict[str, Any]] = {}
        for line in chunk.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line being written as we read
            if event.get("userAgent", "").startswith(agent):
                events[event["auditID"]] = event  # one request, several stages (ResponseStarted, ResponseComplete)
        counted = Requests(metric_list_watch=metric_after - metric_before)
        for event in events.values():
            ref = event.get("objectRef") or {}
            resource = ref.get("resource") or event["requestURI"].split("?")[0]
            namespace = ref.get("namespace")
            counted.total += 1
            received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
            counted.timeline.append(Request(received, event["verb"], resource, namespace))
            counted.by_verb_resource[f"{event['verb']} {resource}"] += 1
            if namespace:
                counted.per_namespace[namespace] += 1
            if event["verb"] == "list":
                counted.lists_per_kind_ns[f"{resource} {namespace or '*'}"] += 1
            if event["verb"] == "get" and ref.get("name"):
                counted.object_gets += 1
        counted.timeline.sort(key=lambda r: r.at)
        return counted

    def _list_watch_metric(self) -> float:
        text = self.cluster.kubectl("get", "--raw", "/metrics", timeout=60).stdout
        total = 0.0
        for line in text.splitlines():
            if line.startswith("apiserver_request_total{") and re.search(r'verb="(LIST|WATCH)"', line):
                total += float(line.rsplit(" ", 1)[1])
        return total


# --- the tools being compared ------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One tool run: wall seconds, session seconds (suite only), requests, and what it said."""

    wall: float
    session: float | None
    requests: Requests
    verdict: str
    tests: int = 0
    message: str = ""
    ended: float = 0.0  # time.perf_counter() when the command exited
    peak_mb: float = 0.0  # the largest peak RSS of one process of the run (controller or a worker)
    processes: int = 0


def suite_run(
    cluster: Cluster,
    audit: Audit,
    env_dir: Path,
    env_name: str,
    reports: Path,
    markexpr: str,
    workers: int,
    release: Path | None = None,
    expect: str = "green",
    mark: tuple[int, float] | None = None,
) -> Measured:
    """One suite command; `mark`: an audit window opened earlier (the crash loop opens it before its update)."""
    command = [sys.executable, "-m", "pytest", "features", "--env", env_name, f"--env-dir={env_dir}"]
    command += [f"--reports-dir={reports}", "-m", markexpr, "-n", str(workers), "-q"]
    if release is not None:
        command.append(f"--release={release}")
    (reports / "verdict.json").unlink(missing_ok=True)
    mark = mark or audit.mark()
    done = run(command, 1800, check=False, memory=True)
    requests = audit.since(mark, SUITE_AGENT)
    verdict_path = reports / "verdict.json"
    if not verdict_path.exists():
        raise BenchError(f"no verdict.json (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    verdict = json.loads(verdict_path.read_text())
    if verdict["verdict"] != expect:
        raise BenchError(f"suite was {verdict['verdict']}, expected {expect}:\n{done.stdout[-3000:]}")
    failing = [t["message"] for t in verdict["tests"] if t["outcome"] != "pass"]
    message = failing[0] if failing else verdict["reason"]
    tests = len(verdict["tests"])
    peak = max(done.peak_mb.values(), default=0.0)
    return Measured(
        done.seconds, verdict["duration_s"], requests, verdict["verdict"], tests, message, done.ended, peak,
        len(done.peak_mb),
    )  # fmt: skip


def kubectl_rollout_each(cluster: Cluster, audit: Audit, count: int) -> Measured:
    """`kubectl rollout status` per Deployment, one after the other: how it is usually scripted."""
    mark = audit.mark()
    started = time.perf_counter()
    for i in range(count):
        namespace, name = app(i)
        cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=300s", timeout=330)
    wall = time.perf_counter() - started
    return Measured(wall, None, audit.since(mark, KUBECTL_AGENT), "complete", count, ended=started + wall)


def floor_run(cluster: Cluster, audit: Audit, work: Path, components: list[tuple[str, str]]) -> Measured:
    """bench/floor.py: the LISTs `-m rollout` needs (one per kind and namespace) over one connection, judged by the
    suite's own predicate; a whole process, start-up included, as the suite's figure is."""
    import yaml

    kubeconfig, plan = work / "floor-kubeconfig.json", work / f"floor-plan-{len(components)}.json"
    kubeconfig.write_text(json.dumps(yaml.safe_load(cluster.kubeconfig.read_text())))  # the floor reads JSON only
    plan.write_text(json.dumps([[CONTEXT, namespace, name] for namespace, name in components]))
    mark = audit.mark()
    done = run([sys.executable, str(ROOT / "bench" / "floor.py"), f"--kubeconfig={kubeconfig}", f"--plan={plan}"], 600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["not_pass"]:
        raise BenchError(f"the floor judged {len(result['not_pass'])} Deployments not rolled out: {result['not_pass']}")
    requests = audit.since(mark, FLOOR_AGENT)
    return Measured(done.seconds, None, requests, "pass", result["verdicts"], ended=done.ended)


EMPTY_TESTS = """import pytest


@pytest.mark.parametrize("i", range({count}))
def test_nothing(i):
    pass
"""


def harness_run(work: Path, count: int) -> Measured:
    """pytest alone: N empty tests, with the plugins a suite run loads (the suite's own, allure, pytest-bdd, xdist)
    installed but nothing to verify: what any pytest-based tool pays before it reads anything."""
    directory = work / f"empty-{count}"
    directory.mkdir(exist_ok=True)
    (directory / "test_empty.py").write_text(EMPTY_TESTS.format(count=count))
    command = [sys.executable, "-m", "pytest", str(directory / "test_empty.py"), "-q", "-p", "no:cacheprovider"]
    done = run([*command, f"--rootdir={directory}"], 600)
    return Measured(done.seconds, None, Requests(), "passed", count, ended=done.ended)


def kubectl_wait_each_namespace(cluster: Cluster, audit: Audit) -> Measured:
    """`kubectl wait --for=condition=Available deployment --all` per namespace."""
    mark = audit.mark()
    started = time.perf_counter()
    for n in range(NAMESPACES):
        cluster.kubectl(
            "wait", "--for=condition=Available", "deployment", "--all", "-n", f"ns-{n:02d}", "--timeout=300s",
            timeout=330,
        )  # fmt: skip
    wall = time.perf_counter() - started
    return Measured(wall, None, audit.since(mark, KUBECTL_AGENT), "available", NAMESPACES, ended=started + wall)


# --- the crash loop ----------------------------------------------------------------------------------------------


@dataclass
class CrashResult:
    suite: Measured
    suite_to_red: float  # from the update to the suite's exit (red)
    kubectl_to_fail: float  # from the update to `kubectl rollout status` failing
    kubectl_message: str
    deadline: float  # the progressDeadlineSeconds kubectl waited for


def crash_loop(cluster: Cluster, audit: Audit, work: Path, full: bool) -> CrashResult:
    """v1 healthy and Available, then v2 whose new pod crash-loops while the v1 pods serve; the suite and
    `kubectl rollout status` start together right after the update."""
    deadline = None if full else SHORT_PROGRESS_DEADLINE
    seconds = DEFAULT_PROGRESS_DEADLINE if deadline is None else float(deadline)
    ns_doc = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {CRASH_NS}}}\n"
    v1 = deployment_yaml(CRASH_NS, CRASH_NAME, "registry.example.test/bench/crash:1.0.0", 2, "", deadline)
    v2 = deployment_yaml(
        CRASH_NS, CRASH_NAME, "registry.example.test/bench/crash:2.0.0", 2, ", dv.test/fault: crashloop", deadline
    )
    (work / "crash-v1.yaml").write_text(ns_doc + "---\n" + v1)
    (work / "crash-v2.yaml").write_text(v2)
    cluster.kubectl("apply", "--server-side", "-f", str(work / "crash-v1.yaml"))
    cluster.kubectl("rollout", "status", f"deployment/{CRASH_NAME}", "-n", CRASH_NS, "--timeout=120s", timeout=150)
    env_dir = work / "env-crash"
    write_environment(env_dir, "crash", cluster, [(CRASH_NS, CRASH_NAME)])
    reports = work / "reports-crash"
    reports.mkdir(exist_ok=True)
    # Warm: the same suite command once on the healthy v1 (bytecode caches, as on a machine that ran it before).
    suite_run(cluster, audit, env_dir, "crash", reports, "rollout", 0)

    mark = audit.mark()  # before the update: reading /metrics must not delay the suite's start
    update = time.perf_counter()
    cluster.kubectl("apply", "--server-side", "-f", str(work / "crash-v2.yaml"))
    watcher = Background(
        cluster.kubectl_cmd(
            "rollout", "status", f"deployment/{CRASH_NAME}", "-n", CRASH_NS, f"--timeout={seconds + 300:.0f}s"
        ),
        seconds + 360,
    )
    try:
        suite = suite_run(cluster, audit, env_dir, "crash", reports, "rollout", 0, expect="red", mark=mark)
        done = watcher.wait()
    finally:
        watcher.stop()
    suite_to_red = suite.ended - update  # the suite's exit, not the audit bookkeeping after it
    kubectl_to_fail = done.ended - update
    said = (done.stderr or done.stdout).strip().splitlines()
    if done.returncode == 0 or "progress deadline" not in (done.stderr + done.stdout):
        raise BenchError(f"kubectl rollout status did not fail on the progress deadline: {said[-3:]}")
    return CrashResult(suite, suite_to_red, kubectl_to_fail, said[-1] if said else "", seconds)


# --- the benchmark -----------------------------------------------------------------------------------------------


@dataclass
class Row:
    count: int
    label: str
    measured: Measured
    calls: int = 0
    form: str = ""  # the suite's environment form (FORMS); empty for kubectl

    @property
    def workers(self) -> int:
        return int(self.label.rsplit("-n ", 1)[1])


def median_of(runs: list[Measured]) -> Measured:
    """The run with the median wall time (its requests and session belong to it)."""
    ordered = sorted(runs, key=lambda m: m.wall)
    return ordered[(len(ordered) - 1) // 2]


def bench_count(
    cluster: Cluster,
    audit: Audit,
    work: Path,
    count: int,
    workers: list[int],
    selections: list[str],
    repeat: int,
    forms: list[str],
) -> list[Row]:
    components = [app(i) for i in range(count)]
    env_dirs = {form: work / f"env-{count}-{form}" for form in forms}
    for form, env_dir in env_dirs.items():
        write_environment(env_dir, "bench", cluster, components, form)
    release = work / f"release-{count}.yaml"  # by Deployment name: a member's default release key is its object name
    write_release(release, components)
    reports = work / f"reports-{count}"
    reports.mkdir(exist_ok=True)
    suite_runs: dict[tuple[str, str, int], list[Measured]] = {}
    rollout_runs: list[Measured] = []
    wait_runs: list[Measured] = []
    floor_runs: list[Measured] = []
    harness_runs: list[Measured] = []
    for _ in range(repeat):  # interleaved, so drift in the machine's load spreads over every tool alike
        for selection in selections:
            for w in workers:
                for form in forms:
                    measured = suite_run(
                        cluster, audit, env_dirs[form], "bench", reports, SELECTIONS[selection], w,
                        release if selection != "rollout" else None,
                    )  # fmt: skip
                    per_component = 1 if selection == "rollout" else 4
                    if measured.tests != count * per_component:
                        raise BenchError(f"{measured.tests} tests for {count} Deployments ({selection}, {form})")
                    suite_runs.setdefault((form, selection, w), []).append(measured)
        floor_runs.append(floor_run(cluster, audit, work, components))
        harness_runs.append(harness_run(work, count))
        rollout_runs.append(kubectl_rollout_each(cluster, audit, count))
        wait_runs.append(kubectl_wait_each_namespace(cluster, audit))
    rows = [
        Row(count, f"suite -m {sel:<8} -n {w}", median_of(runs), form=form)
        for (form, sel, w), runs in sorted(
            suite_runs.items(), key=lambda kv: (selections.index(kv[0][1]), workers.index(kv[0][2]), kv[0][0])
        )
    ]
    rows.append(Row(count, FLOOR_LABEL, median_of(floor_runs), count))
    rows.append(Row(count, HARNESS_LABEL, median_of(harness_runs), count))
    rows.append(Row(count, "kubectl rollout status, each", median_of(rollout_runs), count))
    rows.append(Row(count, "kubectl wait --all, per ns", median_of(wait_runs), NAMESPACES))
    return rows


FLOOR_LABEL = "floor (bench/floor.py)"
HARNESS_LABEL = "pytest alone, N empty tests"


def print_floor(rows: list[Row], workers: list[int]) -> bool:
    """Each suite -m rollout run against the floor of the same N (target: at most 3x), and kubectl rollout status
    against the suite (target: at least 10x); pytest alone says how much of the suite's time no pytest-based tool
    avoids."""
    print("\nagainst the floor (the same LISTs, nothing else; whole processes, start-up included)")
    ok = True
    for count in sorted({r.count for r in rows}):
        by = {r.label: r.measured.wall for r in rows if r.count == count and r.form in ("", "listed")}
        floor, harness = by.get(FLOOR_LABEL), by.get(HARNESS_LABEL)
        kubectl = by.get("kubectl rollout status, each")
        if not floor:
            continue
        for w in workers:
            suite = by.get(_lbl(w))
            if suite is None:
                continue
            holds = suite <= 3 * floor and (kubectl is None or kubectl >= 10 * suite)
            ok &= holds if w == 0 else True  # the targets are for one process; -n W is reported beside it
            line = f"  N={count} -m rollout -n {w}: {suite:.2f} s = {suite / floor:.1f}x the floor's {floor:.2f} s"
            if harness:
                line += f"; pytest alone {harness:.2f} s = {harness / floor:.1f}x"
            if kubectl:
                line += f"; kubectl rollout status each {kubectl:.2f} s = {kubectl / suite:.1f}x the suite"
            print(line + ("" if w else ("  (targets <= 3x, >= 10x: " + ("met)" if holds else "NOT met)"))))
    return ok


def auto_nodes(counts: list[int], replicas: int) -> int:
    pods = max(counts) * replicas + 2 + 1  # + the crash Deployment's 2 pods and its surge pod
    return max(3, math.ceil(pods / 100))  # 110 pods per KWOK node; keep some room


def print_rows(rows: list[Row], workers: list[int], repeat: int) -> None:
    print(f"\nverification of Deployments that are already rolled out (median of {repeat}; wall = command,")
    print("session = verdict.json duration_s; requests from the audit log by user agent; LIST+WATCH Δ = all clients;")
    print("form = the environment file: `listed` one component per Deployment, `selection` one `select:` component)")
    base = next((r.form for r in rows if r.form), "")  # kubectl's ratios are against this form's suite runs
    head = (
        f"{'N':>4}  {'tool':<30} {'form':<9} {'tests':>5} {'wall s':>7} {'session s':>9} {'requests':>8} "
        f"{'max/ns':>6} {'LIST/kind+ns':>12} {'obj GETs':>8} {'LIST+WATCH Δ':>12} {'peak MB/proc':>12}  "
        "ratio to suite rollout"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        m = row.measured
        session = f"{m.session:9.2f}" if m.session is not None else f"{'-':>9}"
        ratio = ""
        if not row.label.startswith("suite"):
            suite = {
                w: r.measured.wall
                for w in workers
                for r in rows
                if r.count == row.count and r.label == _lbl(w) and r.form == base
            }
            ratio = "  ".join(f"{m.wall / s:5.1f}x vs -n {w}" for w, s in suite.items())
        tests = m.tests if row.label.startswith("suite") else row.calls
        print(
            f"{row.count:>4}  {row.label:<30} {row.form or '-':<9} {tests:>5} {m.wall:7.2f} {session} "
            f"{m.requests.total:>8} "
            f"{m.requests.max_per_namespace:>6} {m.requests.max_lists_per_kind_ns:>12} {m.requests.object_gets:>8} "
            f"{m.requests.metric_list_watch:>12.0f} {_memory(m):>12}  {ratio}"
        )


def _memory(m: Measured) -> str:
    """'212 (x5)': the largest peak RSS of one process, and how many processes the run had (controller + workers)."""
    return f"{m.peak_mb:.0f} (x{m.processes})" if m.processes else "-"


def _lbl(workers: int) -> str:
    return f"suite -m {'rollout':<8} -n {workers}"


def print_breakdown(rows: list[Row]) -> None:
    biggest = max(r.count for r in rows)
    print(f"\nwhere the requests go at N={biggest} (verb resource: count)")
    for row in rows:
        if row.count == biggest:
            spread = ", ".join(f"{k}: {v}" for k, v in sorted(row.measured.requests.by_verb_resource.items()))
            print(f"  {row.label:<30} {row.form or '-':<9} {spread}")


def request_target(rows: list[Row]) -> bool:
    """Per pytest process: at most one LIST per kind and namespace, no GET of single objects, no watch (everything is
    already rolled out); so a namespace costs at most one LIST per kind, whatever N, and whatever -n: workers are
    dealt whole namespaces, so no two of them list the same one.
    The selection form adds the controller's two reads of the selected kind, each exactly one LIST per namespace
    whatever N: its resolution and the final re-read. Both go through clients of their own (the resolution is not
    the checks' cached list even with -n 0: deploy_verify/options.py `_resolution` opens and closes its own
    KubeClients), so they are counted beside the checks' lists, not within them."""
    counts = sorted({r.count for r in rows})
    ok = True
    print("\nrequests per namespace against N (target: they do not grow with the Deployments in a namespace)")
    for form, label in [(r.form, r.label) for r in rows if r.count == counts[0] and r.form]:
        by_count = {r.count: r.measured.requests for r in rows if r.label == label and r.form == form}
        # Under -n the suite deals whole (cluster, namespace)s to workers (deploy_verify.collection's SharedReads),
        # so W workers make the LISTs one process makes: one per kind and namespace per run, not per worker.
        processes = 1
        kinds = max(len({k.split()[0] for k in q.lists_per_kind_ns}) for q in by_count.values())
        extra = 2 if form == "selection" else 0  # the resolution and the final re-read
        bound = processes * kinds + extra
        holds = all(
            _checks_lists_max(q, form) <= processes
            and _selection_reads_hold(q, form)
            and q.object_gets == 0
            and q.max_per_namespace <= bound
            and not any(k.startswith("watch ") for k in q.by_verb_resource)
            for q in by_count.values()
        )
        ok &= holds
        steps = "  ".join(f"N={c}: {q.total} req, {q.max_per_namespace}/ns" for c, q in sorted(by_count.items()))
        verdict = "OK" if holds else "OVER THE BOUND"
        reads = f" + {extra} controller read(s)" if extra else ""
        print(f"  {label:<30} {form:<9} {steps}  (bound {processes} process(es) x {kinds} kinds{reads} = {bound}/ns)"
              f" -> {verdict}")  # fmt: skip
    return ok


def _checks_lists_max(q: Requests, form: str) -> int:
    """The largest number of LISTs of one kind in one namespace, the selection's resolution and re-read left out."""
    lists = Counter(q.lists_per_kind_ns)
    if form == "selection":
        resolution, reread = q.phases(SELECTED_PLURAL)
        for r in resolution + reread:
            lists[f"{r.resource} {r.namespace or '*'}"] -= 1
    return max(lists.values(), default=0)


def _selection_reads_hold(q: Requests, form: str) -> bool:
    """The resolution and the final re-read are each exactly one LIST of the selected kind per namespace."""
    if form != "selection":
        return True
    resolution, reread = q.phases(SELECTED_PLURAL)
    return len(resolution) == len(reread) == NAMESPACES


def print_selection_reads(rows: list[Row]) -> None:
    """When the selection form's LISTs of the selected kind happened, in seconds from the run's first request."""
    chosen = [r for r in rows if r.form == "selection"]
    if not chosen:
        return
    print(f"\nselection form: LISTs of {SELECTED_PLURAL} split by time (s from the run's first request to the API)")
    for row in chosen:
        q = row.measured.requests
        if not q.timeline:
            continue
        t0 = q.timeline[0].at
        resolution, reread = q.phases(SELECTED_PLURAL)
        middle = q.timeline[len(resolution) : len(q.timeline) - len(reread)]
        checks = Counter(f"{r.verb} {r.resource}" for r in middle)
        spread = ", ".join(f"{k}: {v}" for k, v in sorted(checks.items())) or "none"
        last = f"{middle[-1].at - t0:.2f}" if middle else "-"
        listed = {r.namespace for r in resolution}
        again = sum(1 for r in middle if r.verb == "list" and r.resource == SELECTED_PLURAL and r.namespace in listed)
        reuse = ""
        if row.workers == 0:  # one process: the checks could have used the resolution's lists
            reuse = f"; the checks listed {SELECTED_PLURAL} again in {again} of {len(listed)} namespaces"
        print(f"  N={row.count:<5} {row.label:<26} resolution {_span(resolution, t0)}; checks' requests {spread} "
              f"(last at {last}); final re-read {_span(reread, t0)}{reuse}")  # fmt: skip


def _span(part: list[Request], t0: float) -> str:
    if not part:
        return "0 LISTs"
    per_ns = max(Counter(r.namespace for r in part).values())
    return f"{len(part)} LISTs ({per_ns}/ns) at {part[0].at - t0:.2f}-{part[-1].at - t0:.2f}"


def print_forms(rows: list[Row]) -> None:
    """Selection against listed, same N, selection and workers: wall time and requests, and each form's requests
    against the floor: one LIST per kind and namespace (what `kubectl get KIND -n NS` would cost, once)."""
    pairs = [
        (r, s)
        for r in rows
        if r.form == "listed"
        for s in rows
        if s.form == "selection" and s.count == r.count and s.label == r.label
    ]
    if not pairs:
        return
    print("\nselection / listed (same N, marks, workers); floor = 1 LIST per kind and namespace = kinds x namespaces")
    for listed, chosen in pairs:
        a, b = listed.measured, chosen.measured
        kinds = len({k.split()[0] for k in a.requests.lists_per_kind_ns})
        floor = kinds * NAMESPACES
        print(f"  N={listed.count:<5} {listed.label:<26} wall {a.wall:6.2f} -> {b.wall:6.2f} s "
              f"({b.wall / a.wall:4.2f}x)  requests {a.requests.total:>4} -> {b.requests.total:>4} "
              f"({b.requests.total / a.requests.total:4.2f}x)"
              f"  floor {floor}: listed {a.requests.total / floor:4.2f}x, selection {b.requests.total / floor:4.2f}x"
              f"  peak MB {a.peak_mb:.0f} -> {b.peak_mb:.0f}")  # fmt: skip


def print_crash(crash: CrashResult, full: bool) -> bool:
    overhead = crash.kubectl_to_fail - crash.deadline
    default_figure = crash.kubectl_to_fail if full else DEFAULT_PROGRESS_DEADLINE + overhead
    measured_ratio = crash.kubectl_to_fail / crash.suite_to_red
    default_ratio = default_figure / crash.suite_to_red
    print("\ncrash loop: Deployment crash/crash-app, 2 replicas, v2's new pod in CrashLoopBackOff, v1 pods serving")
    print(f"  suite -m rollout -n 0, update -> red verdict:     {crash.suite_to_red:7.2f} s  (session "
          f"{crash.suite.session or 0:.2f} s, {crash.suite.requests.total} requests; grace 2s)")  # fmt: skip
    print(f"    says: {crash.suite.message}")
    print(f"  kubectl rollout status, progressDeadlineSeconds={crash.deadline:.0f}: {crash.kubectl_to_fail:7.2f} s "
          f"(overhead beyond the deadline {overhead:.2f} s)")  # fmt: skip
    print(f"    says: {crash.kubectl_message}")
    print(f"  ratio, measured kubectl run (deadline {crash.deadline:.0f} s):   {measured_ratio:7.1f}x")
    label = "measured" if full else f"= {DEFAULT_PROGRESS_DEADLINE:.0f} s {overhead:+.2f} s measured overhead"
    print(f"  ratio, default deadline 600 s ({label}): {default_ratio:7.1f}x  "
          f"(target >= {CRASH_TARGET:.0f}x: {'OK' if default_ratio >= CRASH_TARGET else 'MISSED'})")  # fmt: skip
    return default_ratio >= CRASH_TARGET


@dataclass
class Collection:
    components: int
    tests: int
    seconds: float  # median wall time of `pytest --collect-only`
    peak_mb: float


def collection_time(cluster: Cluster, work: Path, components: int, repeat: int) -> Collection:
    """Start-up and collection alone for an environment of `components` Deployments (nothing is asked of the
    cluster: collection never lists live objects), `-m postdeploy`, one process."""
    env_dir = work / f"env-collect-{components}"
    write_environment(env_dir, "bench", cluster, [app(i) for i in range(components)])
    command = [sys.executable, "-m", "pytest", "features", "--env", "bench", f"--env-dir={env_dir}"]
    command += [f"--reports-dir={work / 'collect-reports'}", "-m", "postdeploy", "--collect-only", "-q", "-n", "0"]
    runs = [run(command, 600, memory=True) for _ in range(repeat)]
    found = re.search(r"(\d+)(?:/\d+)? tests? collected", runs[0].stdout)
    if found is None:
        raise BenchError(f"no collection count in:\n{runs[0].stdout[-2000:]}")
    tests = int(found.group(1))
    ordered = sorted(runs, key=lambda d: d.seconds)
    middle = ordered[(len(ordered) - 1) // 2]
    return Collection(components, tests, middle.seconds, max(middle.peak_mb.values(), default=0.0))


def print_collection(collection: Collection) -> None:
    per = collection.seconds / collection.components * 1000
    print(f"\ncollection: {collection.components} components -> {collection.tests} tests (-m postdeploy), "
          f"`pytest --collect-only` {collection.seconds:.2f} s ({per:.2f} ms per component, start-up included), "
          f"peak {collection.peak_mb:.0f} MB")  # fmt: skip


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, nargs="+", default=[50, 500], help="N values (run ascending)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4], help="pytest -n values (0 = 1 process)")
    parser.add_argument("--selections", nargs="+", choices=list(SELECTIONS), default=list(SELECTIONS))
    parser.add_argument(
        "--forms", nargs="+", choices=FORMS, default=["listed"],
        help="environment file forms: one component per Deployment (listed), one `select:` component (selection)",
    )  # fmt: skip
    parser.add_argument("--selection", action="store_true", help="= --forms selection")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=0, help="KWOK nodes (default: enough for every pod)")
    parser.add_argument("--full", action="store_true", help="crash loop against the real default 600 s deadline")
    parser.add_argument("--no-crash", action="store_true", help="skip the crash-loop measurement")
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/dv-bench-state"))
    parser.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    parser.add_argument("--collect", type=int, default=1000, help="components for the collection-time measurement")
    parser.add_argument("--results", type=Path, help="also write the results as Markdown (e.g. bench/RESULTS.md)")
    args = parser.parse_args()
    forms = ["selection"] if args.selection else [f for f in FORMS if f in args.forms]
    counts = sorted(set(args.deployments))  # ascending: each N adds Deployments to the ones already there
    nodes = args.nodes or auto_nodes(counts, args.replicas)
    state_dir = args.state_dir.resolve()
    rows: list[Row] = []
    crash: CrashResult | None = None
    collection: Collection | None = None
    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="dv-bench-") as tmp:
        work = Path(tmp)
        try:
            started = time.perf_counter()
            cluster = start_cluster(state_dir, nodes, work)
            print(f"cluster {CLUSTER}: {nodes} KWOK nodes, kube-apiserver {_kube_version()}, up in "
                  f"{time.perf_counter() - started:.1f} s; audit log {cluster.audit_log}", flush=True)  # fmt: skip
            audit = Audit(cluster)
            for count in counts:
                took = deploy(cluster, count, args.replicas, work)
                print(f"N={count}: {count} Deployments x {args.replicas} replica(s) + Services in {NAMESPACES} "
                      f"namespaces applied and settled in {took:.1f} s; {load()}", flush=True)  # fmt: skip
                if count == counts[0]:  # warm bytecode and kubectl discovery caches once; not measured
                    warm = work / "env-warm"
                    write_environment(warm, "bench", cluster, [app(0)])
                    suite_run(cluster, audit, warm, "bench", work, "rollout", 0)
                    kubectl_rollout_each(cluster, audit, 1)
                rows += bench_count(cluster, audit, work, count, args.workers, args.selections, args.repeat, forms)
                print_rows([r for r in rows if r.count == count], args.workers, args.repeat)
                print_selection_reads([r for r in rows if r.count == count])
                print(f"after N={count}: {load()}", flush=True)
            if args.collect:
                collection = collection_time(cluster, work, args.collect, args.repeat)
                print_collection(collection)
            if not args.no_crash:
                crash = crash_loop(cluster, audit, work, args.full)
        finally:
            if args.keep:
                print(f"cluster {CLUSTER} left running (--keep): DV_STATE_DIR={state_dir}", flush=True)
            else:
                stop_cluster(state_dir)
    print("\n" + "=" * 40 + " results " + "=" * 40)
    text = io.StringIO()
    with redirect_stdout(text):
        print_rows(rows, args.workers, args.repeat)
        print_breakdown(rows)
        print_selection_reads(rows)
        print_forms(rows)
        ok = request_target(rows)
        print_floor(rows, args.workers)  # reported, not gating: wall-clock ratios move with the machine's load
        if collection is not None:
            print_collection(collection)
        if crash is not None:
            ok &= print_crash(crash, args.full)
        print(f"\n{load()} (timings are wall-clock: other work on the machine inflates them; request counts are exact)")
        print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(text.getvalue(), end="")
    if args.results:
        write_results(args.results, text.getvalue())
    return 0 if ok else 1


def write_results(path: Path, text: str) -> None:
    """The results section as Markdown: one run, every figure side by side, with when and where it ran."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = [
        "# Benchmark results",
        "",
        f"Produced by `{shlex.join(['bench/kube.py', *sys.argv[1:]])}` on {stamp}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, kube-apiserver {_kube_version()} with KWOK nodes. Everything below comes "
        "from that one run; `bench/README.md` explains the method and what the numbers mean.",
        "",
        "```",
    ]
    path.write_text("\n".join(header) + "\n" + text.rstrip() + "\n```\n", encoding="utf-8")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench/kube.py: {exc}", file=sys.stderr)
        sys.exit(2)
