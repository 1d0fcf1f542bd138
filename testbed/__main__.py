"""The local testbed: `python -m testbed up|down|status`.

    python -m testbed up      # demo HTTPS services on 127.0.0.1:184xx behind a local CA (.testbed/tls/ca.pem),
                              # the demo metrics exporter (:18485) and Prometheus scraping it (:18490), and
                              # two KWOK clusters with demo workloads (.testbed/kubeconfig.yaml)
    python -m testbed down    # stops all of it; no stray processes
    python -m testbed serve   # foreground HTTPS services, what `up` runs in the background

State lives in .testbed/ at the repository root (DV_TESTBED_DIR overrides it).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from testbed.kube import KubeTestbed
from testbed.metrics import Behaviour, DemoExporter, Prometheus, PrometheusFailed, prometheus_binary
from testbed.services import ARM_PORT, SERVICES, Service, Testbed

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("DV_TESTBED_DIR", ROOT / ".testbed"))
PIDFILE = STATE / "demo.pid"
LOG = STATE / "demo.log"
START_TIMEOUT = 30.0
METRICS_PORT = 18485  # the demo exporter's /metrics
PROMETHEUS_PORT = 18490  # environments/local.yaml: metrics.prometheus.url
PROMETHEUS_PID = STATE / "prometheus.pid"
# The services the exporter simulates: the demo endpoints of local.yaml, healthy, and local-broken's degraded one.
METRIC_SERVICES = {
    "payments-api": Behaviour.HEALTHY,
    "checkout-web": Behaviour.HEALTHY,
    "inventory-api": Behaviour.HEALTHY,
    "degraded-api": Behaviour.ERRORS,
}
# `up` returns once every service's request rate has this many points in the last 10 s, so that the local rules
# (10 s windows, min_samples 2) can be judged right away; Prometheus scrapes every second.
FIRST_POINTS = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "serve"])
    args = parser.parse_args(argv)
    return {"up": up, "down": down, "status": status, "serve": serve}[args.command]()


def up() -> int:
    """Idempotent, and serialised: several test sessions (or `make` targets) may call it at once, and two
    concurrent starts of one KWOK cluster would fight over its ports and etcd directory."""
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when this process dies
        code = _up_https()
        if code == 0:
            try:
                KubeTestbed(STATE).start()
            except (RuntimeError, subprocess.SubprocessError) as exc:
                print(f"testbed: the Kubernetes clusters did not come up: {exc}")
                return 1
        return code


def _up_https() -> int:
    if _running_pid() is not None:
        print(f"testbed already running (pid {_running_pid()}); `python -m testbed down` stops it")
        return 0
    try:
        prometheus_binary()  # before anything starts: the metric rules of local.yaml need it
    except PrometheusFailed as exc:
        print(f"testbed: {exc}, or `make tools`")
        return 1
    STATE.mkdir(parents=True, exist_ok=True)
    with LOG.open("ab") as log:
        process = subprocess.Popen(  # detached: it outlives this command, `down` ends it
            [sys.executable, "-m", "testbed", "serve"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"testbed failed to start (exit {process.returncode}); last lines of {LOG}:\n{_tail(LOG)}")
            return 1
        if _all_listening():
            PIDFILE.write_text(str(process.pid))
            waited = _wait_for_metrics(deadline)
            if waited:
                print(f"testbed: {waited}; last lines of {LOG}:\n{_tail(LOG)}")
                return 1
            print(
                f"testbed up: {len(SERVICES)} demo services on 127.0.0.1, CA at {STATE / 'tls' / 'ca.pem'}; "
                f"Prometheus at http://127.0.0.1:{PROMETHEUS_PORT} scraping {len(METRIC_SERVICES)} demo services"
            )
            return 0
        time.sleep(0.1)
    process.kill()
    print(f"testbed did not listen within {START_TIMEOUT:.0f}s; see {LOG}")
    return 1


def _wait_for_metrics(deadline: float) -> str:
    """Wait until Prometheus has FIRST_POINTS points of every service's request rate; '' or what went wrong."""
    query = f'count_over_time(rate(http_requests_total{{code="200"}}[3s])[10s:1s]) >= {FIRST_POINTS}'
    url = f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query"
    last = "not asked yet"
    deadline = max(deadline, time.monotonic() + 20)  # the first scrape comes up to 5 s after Prometheus is ready
    while time.monotonic() < deadline:
        try:
            answer = requests.get(url, params={"query": query}, timeout=2)
            found = len(answer.json()["data"]["result"])
        except (requests.RequestException, ValueError, KeyError) as exc:
            last = f"the query failed: {exc}"
        else:
            if found >= len(METRIC_SERVICES):
                return ""
            last = f"{found} of {len(METRIC_SERVICES)} services have {FIRST_POINTS} points"
        time.sleep(0.25)
    return (
        f"Prometheus on :{PROMETHEUS_PORT} has no samples of the demo exporter in time ({last}); see its targets page"
    )


def down() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # never while another command is bringing it up
        return _down()


def _down() -> int:
    try:
        KubeTestbed(STATE).stop()
    except RuntimeError as exc:
        print(f"testbed: stopping the clusters failed: {exc}")
    _stop_stray_prometheus()
    pid = _running_pid()
    if pid is None:
        PIDFILE.unlink(missing_ok=True)
        print("testbed not running")
        return 0
    _stop_group(pid)
    PIDFILE.unlink(missing_ok=True)
    _stop_stray_prometheus()  # `serve` stops it on SIGTERM; only a serve killed outright leaves it behind
    print(f"testbed down (pid {pid})")
    return 0


def _stop_stray_prometheus() -> None:
    """Prometheus runs in its own process group (so the serve group's signals do not reach it half-way): end the one
    a dead `serve` left, by the pid it recorded."""
    try:
        pid = int(PROMETHEUS_PID.read_text().strip())
    except (OSError, ValueError):
        return
    if _alive(pid):
        _stop_group(pid)
    PROMETHEUS_PID.unlink(missing_ok=True)


def _stop_group(pid: int) -> None:
    """SIGTERM to the process group, up to 10 s to end, then SIGKILL; a group already gone is stopped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def status() -> int:
    pid = _running_pid()
    print(f"testbed running (pid {pid})" if pid else "testbed not running")
    return 0 if pid else 3


def serve() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    testbed = Testbed(STATE)
    testbed.start()
    exporter = DemoExporter(METRIC_SERVICES, port=METRICS_PORT).start()
    for name, behaviour in METRIC_SERVICES.items():
        exporter.set(name, behaviour)
    workdir = STATE / "prometheus"
    shutil.rmtree(workdir / "data", ignore_errors=True)  # a fresh TSDB: no series left from another testbed run
    prometheus = Prometheus([exporter.target], workdir, port=PROMETHEUS_PORT)
    try:
        prometheus.start()
        assert prometheus.process is not None
        PROMETHEUS_PID.write_text(str(prometheus.process.pid))
        print(f"serving {len(SERVICES)} demo services, Prometheus on :{PROMETHEUS_PORT}", flush=True)
        stop.wait()
    finally:
        prometheus.stop()
        PROMETHEUS_PID.unlink(missing_ok=True)
        exporter.stop()
        testbed.stop()
    return 0


def _running_pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _all_listening() -> bool:
    extra = [Service("arm", ARM_PORT, "valid", "arm"), Service("metrics", METRICS_PORT, "valid", "metrics")]
    extra.append(Service("prometheus", PROMETHEUS_PORT, "valid", "prometheus"))
    for service in [*SERVICES, *extra]:
        try:
            with socket.create_connection(("127.0.0.1", service.port), timeout=0.2):
                pass
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


if __name__ == "__main__":
    sys.exit(main())
