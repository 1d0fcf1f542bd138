"""Demo HTTPS services on loopback: healthy ones for environments/local.yaml, broken ones for local-broken.yaml.

Each service is a port, a certificate mode (testbed.pki) and a behaviour. The ports are fixed because the environment
files name them; `python -m testbed up` fails with a clear message when one is taken.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testbed.arm import ArmServer
from testbed.arm_state import local_state
from testbed.pki import ServerPem, make_pki

VERSION = "1.4.2"
SLOW_SECONDS = 1.5  # over the 1 s latency budget of local-broken, well under its 5 s timeout


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    cert: str  # a mode of testbed.pki
    behaviour: str  # healthy-json, healthy-text, unavailable, unhealthy-body, slow, silent, tls-silent


SERVICES = (
    Service("payments-api", 18441, "valid", "healthy-json"),
    Service("checkout-web", 18442, "intermediate", "healthy-text"),
    Service("inventory-api", 18443, "valid", "healthy-json"),
    Service("expired-cert", 18451, "expired", "healthy-json"),
    Service("not-yet-valid", 18452, "not-yet-valid", "healthy-json"),
    Service("wrong-host", 18453, "wrong-host", "healthy-json"),
    Service("untrusted-root", 18454, "untrusted-root", "healthy-json"),
    Service("incomplete-chain", 18455, "incomplete-chain", "healthy-json"),
    Service("self-signed", 18456, "self-signed", "healthy-json"),
    Service("expiring-soon", 18457, "expiring-soon", "healthy-json"),
    Service("short-intermediate", 18458, "short-intermediate", "healthy-json"),
    Service("unavailable", 18461, "valid", "unavailable"),
    Service("unhealthy-body", 18462, "valid", "unhealthy-body"),
    Service("slow", 18463, "valid", "slow"),
    Service("silent", 18464, "valid", "silent"),
    Service("tls-silent", 18465, "valid", "tls-silent"),
)
NOTHING_LISTENS = 18469  # named by local-broken.yaml; nothing ever binds it
ARM_PORT = 18480  # the ARM test server (Azure SDKs' base_url in local.yaml)
# The testbed ARM server's bearer token. Not a secret (it opens a fake ARM on loopback); environments read it from
# the variable DV_ARM_TOKEN, as a real pipeline would pass a token from `az account get-access-token`.
ARM_TOKEN = "dv-testbed-arm-token-3f9c"  # noqa: S105


class _Handler(BaseHTTPRequestHandler):
    server: _TlsServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, the second waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        behaviour = self.server.service.behaviour
        if behaviour == "silent":
            self.server.stopping.wait(300)  # never answers while the testbed runs
            return
        if behaviour == "slow":
            time.sleep(SLOW_SECONDS)
        status, body, kind = _answer(behaviour, self.path)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the suite's own evidence shows what was asked and answered


def _answer(behaviour: str, path: str) -> tuple[int, bytes, str]:
    if path not in ("/health", "/healthz"):
        return 404, b"not found\n", "text/plain"
    if behaviour == "healthy-text":
        return 200, b"Healthy", "text/plain"
    if behaviour == "unavailable":
        return 503, json.dumps({"status": "DOWN", "reason": "database unreachable"}).encode(), "application/json"
    status = "DOWN" if behaviour == "unhealthy-body" else "UP"
    return 200, json.dumps({"status": status, "version": VERSION}).encode(), "application/json"


class _TlsServer(ThreadingHTTPServer):
    """The handshake runs in the request's thread, so a client that never handshakes cannot block accept()."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, service: Service, context: ssl.SSLContext, stopping: threading.Event) -> None:
        self.service, self.context, self.stopping = service, context, stopping
        super().__init__(("127.0.0.1", service.port), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate: that is what the broken services are for
        _Handler(tls, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-request are expected here


class _SilentTcp(threading.Thread):
    """Accepts connections and never speaks: a TLS handshake that never completes."""

    def __init__(self, port: int, stopping: threading.Event) -> None:
        super().__init__(daemon=True, name=f"tls-silent:{port}")
        self.stopping = stopping
        self.sock = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.sock.settimeout(0.2)
        self.held: list[socket.socket] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)
            except TimeoutError:
                continue
        for conn in self.held:
            conn.close()
        self.sock.close()


class Testbed:
    """All demo services, started together and stopped together."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.stopping = threading.Event()
        self.servers: list[_TlsServer] = []
        self.threads: list[threading.Thread] = []
        self.arm: ArmServer | None = None

    def start(self) -> None:
        identities = make_pki(self.state / "tls")
        keys = self.state / "tls" / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            self._start_one(service, identities[service.cert], keys)
        self._start_arm(identities["valid"], keys)

    def _start_arm(self, pem: ServerPem, keys: Path) -> None:
        """The ARM test server: the Azure apps of local.yaml (rg-demo) and local-broken.yaml (rg-broken)."""
        (keys / "arm.key").write_bytes(pem.key)
        (keys / "arm.key").chmod(0o600)
        (keys / "arm.pem").write_bytes(pem.chain)
        self.arm = ArmServer(ARM_PORT, keys / "arm.pem", keys / "arm.key", local_state(), ARM_TOKEN)
        try:
            self.arm.start()
        except OSError as exc:
            self.stop()
            raise RuntimeError(f"cannot serve the ARM test server on 127.0.0.1:{ARM_PORT}: {exc.strerror}") from exc

    def _start_one(self, service: Service, pem: ServerPem, keys: Path) -> None:
        try:
            if service.behaviour == "tls-silent":
                silent = _SilentTcp(service.port, self.stopping)
                silent.start()
                self.threads.append(silent)
                return
            server = _TlsServer(service, _context(service.name, pem, keys), self.stopping)
        except OSError as exc:
            self.stop()
            raise RuntimeError(
                f"cannot serve {service.name} on 127.0.0.1:{service.port}: {exc.strerror}; "
                "is another testbed running? try `python -m testbed down`"
            ) from exc
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name=f"demo:{service.name}"
        )
        thread.start()
        self.servers.append(server)
        self.threads.append(thread)

    def stop(self) -> None:
        if self.arm is not None:
            self.arm.stop()
        self.stopping.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)


def _context(name: str, pem: ServerPem, keys: Path) -> ssl.SSLContext:
    """ssl only loads certificates from files; they live under the testbed's state folder."""
    key_file, chain_file = keys / f"{name}.key", keys / f"{name}.pem"
    key_file.write_bytes(pem.key)
    key_file.chmod(0o600)
    chain_file.write_bytes(pem.chain)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    return context
