"""Metrics on loopback: demo services that export request counters and latency histograms, and a real Prometheus
(Debian's package, scripts/install-prometheus) that scrapes them once a second.

    with DemoExporter(["reviews", "ratings"]) as exporter, Prometheus([exporter.target], tmp) as prometheus:
        prometheus.wait_for_samples('http_requests_total{service="reviews"}')
        exporter.set("reviews", Behaviour.ERRORS)      # the "deploy" that doubles the error rate
        ...                                            # query prometheus.url with checks.transports.prometheus

The exporter simulates traffic (it serves none): a background thread advances every service's counters at `rate`
requests per second, so `rate(...)` and `histogram_quantile(...)` have something to say. What each service does is
deterministic, so the numbers a test sees are known (see `Behaviour`); it can be switched at runtime, from the
process (`set`) or over HTTP (`POST /behaviour/<service>` with the behaviour's name as the body), for a testbed that
runs in another process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

PROMETHEUS = "/usr/bin/prometheus"  # Debian's package; DV_PROMETHEUS overrides it
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # prometheus-client's defaults
CODES = ("200", "500")
# One cycle of simulated latencies (seconds): p95 falls in the (0.1, 0.25] bucket, about 0.2 s once interpolated.
HEALTHY_LATENCIES = (0.02,) * 5 + (0.04,) * 5 + (0.06,) * 4 + (0.08,) * 3 + (0.12, 0.15, 0.2)
SLOW_FACTOR = 4.0  # degraded latency: every request takes this much longer (p95 about 0.9 s)
HEALTHY_ERROR_EVERY = 1000  # one request in this many answers 500 while healthy (0.1 %)
DEGRADED_ERROR_EVERY = 4  # ... and while degraded (25 %)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


class Behaviour(StrEnum):
    """What a demo service does, as its metrics show it."""

    HEALTHY = "healthy"  # 0.1 % errors, p95 about 0.2 s
    ERRORS = "errors"  # 25 % errors, latency as healthy
    SLOW = "slow"  # errors as healthy, every request SLOW_FACTOR times slower
    IDLE = "idle"  # series exported, no requests: every rate is 0 and a ratio of rates is 0/0 = NaN
    SILENT = "silent"  # no series at all: Prometheus marks them stale at the next scrape, queries come back empty


@dataclass
class _Service:
    """One service's counters: they only ever grow, whatever the behaviour (a counter reset would be a restart)."""

    name: str
    behaviour: Behaviour = Behaviour.HEALTHY
    served: int = 0  # requests simulated so far, the position in the latency cycle and the error pattern
    pending: float = 0.0  # the fraction of a request owed from the last tick
    codes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CODES, 0))
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))  # cumulative counts, as exported
    total_seconds: float = 0.0

    def serve(self, count: int) -> None:
        every = DEGRADED_ERROR_EVERY if self.behaviour is Behaviour.ERRORS else HEALTHY_ERROR_EVERY
        factor = SLOW_FACTOR if self.behaviour is Behaviour.SLOW else 1.0
        for _ in range(count):
            self.served += 1
            self.codes["500" if self.served % every == 0 else "200"] += 1
            latency = HEALTHY_LATENCIES[self.served % len(HEALTHY_LATENCIES)] * factor
            self.total_seconds += latency
            for index, bound in enumerate(BUCKETS):
                if latency <= bound:
                    self.buckets[index] += 1

    def exposition(self) -> list[str]:
        """This service's samples in the text format, or none when it is silent."""
        if self.behaviour is Behaviour.SILENT:
            return []
        service = _label(self.name)
        lines = [f'http_requests_total{{service="{service}",code="{code}"}} {n}' for code, n in self.codes.items()]
        count = sum(self.codes.values())
        for bound, n in zip(BUCKETS, self.buckets, strict=True):
            lines.append(f'http_request_duration_seconds_bucket{{service="{service}",le="{bound:g}"}} {n}')
        lines.append(f'http_request_duration_seconds_bucket{{service="{service}",le="+Inf"}} {count}')
        lines.append(f'http_request_duration_seconds_sum{{service="{service}"}} {self.total_seconds!r}')
        lines.append(f'http_request_duration_seconds_count{{service="{service}"}} {count}')
        return lines


def _label(value: str) -> str:
    """A label value as the text format quotes it (backslash, double quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class DemoExporter:
    """A /metrics endpoint on 127.0.0.1 (an ephemeral port, or `port`) for a few simulated services; a context
    manager."""

    def __init__(self, services: Iterable[str], rate: float = 50.0, tick: float = 0.1, port: int = 0) -> None:
        self.listen_port = port  # 0: the kernel's pick
        self.rate = rate  # simulated requests per second, per service that is not idle or silent
        self.tick = tick
        self._services = {name: _Service(name) for name in services}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the demo exporter is not started: use it as a context manager or call start()")
        return int(self._server.server_address[1])

    @property
    def target(self) -> str:
        """host:port, as a Prometheus scrape config names it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"

    def set(self, service: str, behaviour: Behaviour) -> None:
        """Switch `service` to `behaviour` from now on; its counters carry on from where they are."""
        with self._lock:
            self._get(service).behaviour = Behaviour(behaviour)

    def behaviour(self, service: str) -> Behaviour:
        with self._lock:
            return self._get(service).behaviour

    def exposition(self) -> str:
        """The whole /metrics page."""
        with self._lock:
            samples = [line for service in self._services.values() for line in service.exposition()]
        head = [
            "# HELP http_requests_total Requests served, by service and status code (simulated).",
            "# TYPE http_requests_total counter",
        ]
        requests = [line for line in samples if line.startswith("http_requests_total")]
        histogram = [
            "# HELP http_request_duration_seconds Request latency, by service (simulated).",
            "# TYPE http_request_duration_seconds histogram",
        ]
        durations = [line for line in samples if line.startswith("http_request_duration_seconds")]
        return "\n".join([*head, *requests, *histogram, *durations]) + "\n"

    def start(self) -> DemoExporter:
        self._server = _ExporterServer(self)
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="demo-exporter-http", daemon=True),
            threading.Thread(target=self._advance, name="demo-exporter-traffic", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> DemoExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _get(self, service: str) -> _Service:
        try:
            return self._services[service]
        except KeyError:
            known = ", ".join(sorted(self._services))
            raise KeyError(f"the demo exporter has no service {service!r} (it has: {known})") from None

    def _advance(self) -> None:
        """Owe `rate` requests per second of wall clock, whatever the ticks' jitter, and serve the whole ones."""
        last = time.monotonic()
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            with self._lock:
                for service in self._services.values():
                    if service.behaviour in (Behaviour.IDLE, Behaviour.SILENT):
                        continue  # no traffic: the counters stand still (silent ones are not even exported)
                    service.pending += (now - last) * self.rate
                    whole = math.floor(service.pending)
                    service.pending -= whole
                    service.serve(whole)
            last = now


class _ExporterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, exporter: DemoExporter) -> None:
        super().__init__(("127.0.0.1", exporter.listen_port), _ExporterHandler)
        self.exporter = exporter


class _ExporterHandler(BaseHTTPRequestHandler):
    server: _ExporterServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self._reply(404, "only /metrics is served here\n")
            return
        self._reply(200, self.server.exporter.exposition(), TEXT_FORMAT)

    def do_POST(self) -> None:
        """POST /behaviour/<service>, body: a Behaviour's name."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace").strip()
        prefix = "/behaviour/"
        if not self.path.startswith(prefix):
            self._reply(404, "POST /behaviour/<service> with the behaviour as the body\n")
            return
        service = urllib.parse.unquote(self.path[len(prefix) :])
        try:
            self.server.exporter.set(service, Behaviour(body))
        except ValueError:
            self._reply(400, f"unknown behaviour {body!r}; one of: {', '.join(b.value for b in Behaviour)}\n")
            return
        except KeyError as exc:
            self._reply(404, f"{exc.args[0]}\n")
            return
        self._reply(200, f"{service}: {body}\n")

    def _reply(self, status: int, text: str, kind: str = "text/plain; charset=utf-8") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape a second would drown the test's output


# --- the Prometheus server -------------------------------------------------------------------------------------


class PrometheusFailed(RuntimeError):
    """Prometheus did not start, or did not stop, in time; the message carries the last lines of its log."""


def prometheus_binary() -> Path:
    """DV_PROMETHEUS, /usr/bin/prometheus, or `prometheus` on PATH; fails saying how to install it."""
    wanted = os.environ.get("DV_PROMETHEUS")
    for candidate in (wanted, PROMETHEUS, shutil.which("prometheus")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    where = f"DV_PROMETHEUS={wanted} does not exist" if wanted else f"no {PROMETHEUS} and none on PATH"
    raise PrometheusFailed(f"no Prometheus binary: {where}; run scripts/install-prometheus (Debian's package)")


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick); whoever binds it next may lose a race, see start()."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Prometheus:
    """One Prometheus process on 127.0.0.1 scraping `targets` every second, its config, data and log in `workdir`.

    A context manager: started on enter (ready to answer queries), stopped on exit. Its own process group, so a stop
    ends it and nothing it started, whatever the caller's group.
    """

    targets: list[str]  # host:port of each /metrics endpoint
    workdir: Path
    binary: Path = field(default_factory=prometheus_binary)
    scrape_interval: float = 1.0
    port: int = 0  # 0: a free one, chosen at start
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "prometheus.log"

    def config(self) -> str:
        """prometheus.yml: one job, the targets; scrape and rule evaluation every `scrape_interval`."""
        every = f"{self.scrape_interval:g}s"
        targets = json.dumps(self.targets)  # a JSON list is a YAML flow sequence
        return (
            f"global:\n  scrape_interval: {every}\n  scrape_timeout: {every}\n  evaluation_interval: {every}\n"
            f"scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: {targets}\n"
        )

    def start(self, timeout: float = 30.0) -> Prometheus:
        """Start and wait for /-/ready. A port lost to a race between free_port() and the bind is tried again."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "prometheus.yml").write_text(self.config())
        fixed = self.port != 0
        for _ in range(3):
            if not fixed:
                self.port = free_port()
            self._spawn()
            try:
                self._wait_ready(timeout)
                return self
            except PrometheusFailed as exc:
                if fixed or "address already in use" not in str(exc):
                    raise
        raise PrometheusFailed(f"Prometheus lost the race for a free port three times; see {self.log}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to its group, SIGKILL when it has not exited after `timeout`."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self) -> None:
        command = [
            str(self.binary),
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        until = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < until:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise PrometheusFailed(
                    f"Prometheus exited with {code} before it was ready on {self.url}; last lines of {self.log}:\n"
                    f"{tail(self.log)}"
                )
            try:
                answer = requests.get(f"{self.url}/-/ready", timeout=1.0)
            except requests.RequestException as exc:
                last = str(exc)
            else:
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code} (still starting)"  # 503 while the TSDB opens
            time.sleep(0.1)
        self.stop()
        raise PrometheusFailed(
            f"Prometheus was not ready on {self.url}/-/ready within {timeout:.0f}s (last: {last}); last lines of "
            f"{self.log}:\n{tail(self.log)}"
        )

    def query(self, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The raw `data.result` of an instant query at the current time (the testbed's own plumbing; the suite
        asks through checks.transports.prometheus)."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=timeout)
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def wait_for_samples(self, promql: str, minimum: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll `promql` until it returns at least `minimum` series (the first scrapes take a second or two)."""
        until = time.monotonic() + timeout
        last: str = "not asked yet"
        while time.monotonic() < until:
            try:
                result = self.query(promql)
            except (requests.RequestException, ValueError, KeyError) as exc:
                last = f"the query failed: {exc}"
            else:
                if len(result) >= minimum:
                    return result
                last = f"{len(result)} series"
            time.sleep(0.25)
        raise TimeoutError(
            f"{promql!r} on {self.url} did not return {minimum} series within {timeout:.0f}s (last: {last}); are "
            f"the targets up? {self.url}/targets, and the log {self.log}"
        )


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(unreadable: {exc})"
