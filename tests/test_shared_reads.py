"""Under `-n`, the workers share the reads a single process would: whole (cluster, namespace)s are dealt to workers
(deploy_verify.collection.pytest_xdist_make_scheduler), so a run lists each kind in each namespace once, as `-n 0`
does, and not once per worker. Counted in the testbed API servers' audit logs."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import cast

import pytest

from deploy_verify.collection import reads_shared_by
from deploy_verify.config import load_environment
from tests.audit import audit_events, audit_log

ROOT = Path(__file__).resolve().parent.parent
SUITE_AGENT = "OpenAPI-Generator/"
COMPONENTS = (  # local.yaml's workloads: three namespaces on two clusters, several workloads in one of them
    ("storefront-a", "dv-a", "shop", "storefront"),
    ("cart", "dv-a", "shop", "cart"),
    ("ledger", "dv-a", "platform", "ledger"),
    ("node-agent", "dv-a", "platform", "node-agent"),
    ("storefront-b", "dv-b", "shop", "storefront"),
)


def environment(tmp_path: Path) -> Path:
    kubeconfig = ROOT / ".testbed" / "kubeconfig.yaml"
    kinds = {"node-agent": "daemonset", "ledger": "statefulset"}
    lines = ["name: shared", "budget: 2m", "clusters:"]
    lines += [f"  {c}: {{context: kwok-{c}, kubeconfig: {kubeconfig}}}" for c in ("dv-a", "dv-b")]
    lines += ["components:"]
    lines += [
        f"  - {{name: {name}, kind: {kinds.get(name, 'deployment')}, cluster: {cluster}, namespace: {ns}, "
        f"workload: {workload}}}"
        for name, cluster, ns, workload in COMPONENTS
    ]
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "shared.yaml").write_text("\n".join(lines) + "\n")
    return env_dir


def lists_since(started: dt.datetime) -> Counter[tuple[str, str, str]]:
    """(cluster, resource, namespace) -> LISTs the suite made since `started`."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for cluster in ("dv-a", "dv-b"):
        for event in audit_events(audit_log(cluster)):
            if event.get("stage") != "ResponseComplete" or event.get("verb") != "list":
                continue
            if not event.get("userAgent", "").startswith(SUITE_AGENT):
                continue
            stamp = dt.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
            if stamp < started:
                continue
            ref = event.get("objectRef", {})
            seen[(cluster, ref.get("resource", "?"), ref.get("namespace", ""))] += 1
    return seen


def gate(env_dir: Path, reports: Path, workers: int) -> tuple[Counter[tuple[str, str, str]], str]:
    """(the LISTs the run made, its output)."""
    started = dt.datetime.now(dt.UTC)
    command = [sys.executable, "-m", "pytest", "features", "--env", "shared", f"--env-dir={env_dir}"]
    command += ["-m", "rollout or pods", "-n", str(workers), f"--reports-dir={reports}", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return lists_since(started), done.stdout


@pytest.mark.usefixtures("testbed")
def test_two_workers_list_each_kind_in_each_namespace_once_as_one_process_does(tmp_path: Path) -> None:
    env_dir = environment(tmp_path)
    alone, said_alone = gate(env_dir, tmp_path / "alone", 0)
    shared, said_shared = gate(env_dir, tmp_path / "shared", 2)
    assert alone, "no LIST of the suite in the audit logs"
    assert max(alone.values()) == 1, alone
    assert shared == alone  # the same LISTs, each made once: not once per worker
    # Ten quick reads on loopback: the workers' start-up is far more than the work they could share, and the run
    # says so (deploy_verify.workers); one process has nothing to say.
    assert "did not pay off" not in said_alone
    [line] = [line for line in said_shared.splitlines() if "did not pay off" in line]
    assert line.startswith("-n 2 did not pay off here: the tests' own work was "), line
    assert "one process (-n 0) would have been faster by at least" in line, line


def test_reads_are_shared_by_cluster_and_namespace(tmp_path: Path) -> None:
    env = load_environment("shared", environment(tmp_path))
    assert reads_shared_by(env, "cart") == reads_shared_by(env, "storefront-a") == "cluster/dv-a/shop"
    assert reads_shared_by(env, "ledger") == "cluster/dv-a/platform"
    assert reads_shared_by(env, "storefront-b") == "cluster/dv-b/shop"
    assert reads_shared_by(env, "cluster:dv-a") == "cluster/dv-a"


class Item:
    """What deploy_verify.prefetch.planned reads of a collected test: its target and its family's marker."""

    def __init__(self, target: str, tag: str) -> None:
        self.callspec = type("Callspec", (), {"params": {"target_name": target}})()
        self.tag = tag

    def iter_markers(self):
        yield getattr(pytest.mark, self.tag).mark


def test_the_lists_the_selected_tests_will_read_are_planned_per_cluster(tmp_path: Path) -> None:
    from deploy_verify.prefetch import planned

    env = load_environment("shared", environment(tmp_path))
    items = [Item("cart", "rollout"), Item("storefront-a", "endpoints"), Item("ledger", "pods")]
    items += [Item("node-agent", "helmrelease"), Item("cluster:dv-a", "nodes"), Item("storefront-b", "image")]
    assert planned(cast(list[pytest.Item], items), env) == {
        "dv-a": {
            ("deployments", "shop"), ("pods", "shop"), ("replicasets", "shop"), ("services", "shop"),
            ("endpointslices", "shop"), ("statefulsets", "platform"), ("pods", "platform"),
            ("controllerrevisions", "platform"),
        },
        "dv-b": {("deployments", "shop"), ("pods", "shop"), ("replicasets", "shop")},
    }  # fmt: skip


class SlowReader:
    """A cluster's reader that takes `delay` per LIST and counts them (one lock, as KubeReader serves one list at a
    time over its connection)."""

    def __init__(self, delay: float) -> None:
        import threading

        self.delay, self.lock, self.lists = delay, threading.Lock(), 0
        self.cache: dict[tuple[str, str | None], object] = {}

    def listing(self, kind: str, namespace: str | None, deadline: object) -> object:
        import time

        with self.lock:
            if (kind, namespace) not in self.cache:
                time.sleep(self.delay)
                self.lists += 1
                self.cache[(kind, namespace)] = [kind, namespace]
            return self.cache[(kind, namespace)]


def test_the_tests_start_while_the_read_ahead_reads_and_nothing_is_listed_twice() -> None:
    import time

    from deploy_verify.checks.deadline import Deadline
    from deploy_verify.prefetch import Reading

    readers = {f"org-{n:02d}": SlowReader(0.05) for n in range(8)}

    class Clients:
        def reader(self, cluster: str) -> SlowReader:
            return readers[cluster]

    plan = {c: {("deployments", "app"), ("pods", "app"), ("replicasets", "app")} for c in readers}
    started = time.monotonic()
    reading = Reading(cast("object", Clients()), plan, Deadline.after(30))  # type: ignore[arg-type]
    assert time.monotonic() - started < 0.05  # returned at once: the first test does not wait for every cluster
    # A test of the first cluster reads its own list now, beside the read-ahead: one of the two reads it.
    assert readers["org-00"].listing("pods", "app", None) == ["pods", "app"]
    done = reading.join()
    assert (done.clusters, done.lists, done.failed) == (8, 24, 0)
    assert [r.lists for r in readers.values()] == [3] * 8  # each list once, whoever asked first
    assert time.monotonic() - started < 0.15 * 3  # 8 clusters at once: about one cluster's 3 x 50 ms, not 8 x that


def test_one_reader_per_cluster_when_threads_ask_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from deploy_verify import clients as clients_module
    from deploy_verify.checks.transports import kube
    from deploy_verify.clients import KubeClients

    built: list[str] = []

    def slow_build(cluster: str, context: str, kubeconfig: str | None, allow_mutations: bool = False) -> object:
        built.append(cluster)
        time.sleep(0.05)
        return object()

    monkeypatch.setattr(kube.KubeReader, "from_kubeconfig", staticmethod(slow_build))
    monkeypatch.setattr(clients_module, "missing_kubeconfig", lambda *args: None)
    (tmp_path / "x.yaml").write_text(
        "name: x\nclusters: {a: {context: a}, b: {context: b}}\ncomponents:\n"
        "  - {name: w, kind: endpoint, health: [{url: 'http://127.0.0.1:9/'}]}\n"
    )
    clients = KubeClients(load_environment("x", tmp_path))
    got: list[object] = []
    threads = [threading.Thread(target=lambda c=c: got.append(clients.reader(c))) for c in ["a", "b"] * 8]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(built) == ["a", "b"]
    assert len({id(g) for g in got}) == 2
