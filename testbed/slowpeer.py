"""Peers that misbehave in time, on loopback: the "slow peer" fault class of the suite's own tests.

    with SlowPeer(lambda path: Reply(200, b'{"status": "UP"}', mode=TRICKLE_BODY), tls=(chain, key)) as peer:
        probe(f"https://localhost:{peer.port}/health")    # the body arrives one byte every 0.5 s

Every reply is real HTTP/1.1 over a real socket (TLS with a certificate from the test's own CA): only its timing is
hostile. `mode` says how a reply leaves:

- `normal`: at once (what a stand-in answers for the calls that are not the fault: a LIST before a silent watch);
- `trickle-headers`: the status line and headers one byte per `interval`;
- `trickle-body`: the headers at once, the body one byte per `interval`;
- `silent`: the request is read and never answered;
- `stall`: the headers at once (chunked), then nothing: a watch that sends no event.

The connection itself can misbehave (`handshake=`): `silent` accepts and never speaks (not even TLS), `trickle` sends
the server's side of a real TLS handshake one byte per `interval`. Connections are kept alive between requests, so a
client's pooled connection is reused as it would be against a real server.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Protocol

NORMAL, TRICKLE_HEADERS, TRICKLE_BODY, SILENT, STALL = "normal", "trickle-headers", "trickle-body", "silent", "stall"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    mode: str = NORMAL
    headers: tuple[tuple[str, str], ...] = ()
    framed: bool = True  # False: no Content-Length, the body ends when the connection closes (HTTP/1.1 §6.3)
    at_once: int = 0  # trickle-headers: how many leading bytes leave at once (the status line, say)
    chunked: bool = False  # normal mode: the body as two chunks (Transfer-Encoding: chunked)

    def head(self) -> bytes:
        reason = HTTPStatus(self.status).phrase
        lines = [f"HTTP/1.1 {self.status} {reason}", f"Content-Type: {self.content_type}"]
        if self.mode == STALL or self.chunked:
            lines.append("Transfer-Encoding: chunked")
        elif self.framed:
            lines.append(f"Content-Length: {len(self.body)}")
        else:
            lines.append("Connection: close")
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


Handler = Callable[[str], Reply]  # the request's path (with its query) -> how to answer it


class _Channel(Protocol):
    def recv(self, size: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...
    def close(self) -> None: ...


@dataclass
class SlowPeer:
    """A loopback HTTP(S) server whose replies (or handshakes) take their time; a context manager."""

    handler: Handler
    tls: tuple[Path, Path] | None = None  # (chain, key) PEM files
    handshake: str = "normal"  # normal | silent | trickle
    interval: float = 0.5  # seconds between two trickled bytes
    port: int = 0
    requests: list[str] = field(default_factory=list)  # every path asked, in order
    connections: int = 0  # connections accepted: a reused pooled connection does not add one
    _stop: threading.Event = field(default_factory=threading.Event)
    _listener: socket.socket | None = None
    _open: list[socket.socket] = field(default_factory=list)

    def __enter__(self) -> SlowPeer:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name=f"slowpeer:{self.port}").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for conn in list(self._open):
            with contextlib.suppress(OSError):
                conn.close()
        if self._listener is not None:
            self._listener.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}"

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._open.append(conn)
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            channel = self._secure(conn)
            if channel is None:
                return
            while not self._stop.is_set():
                path = _read_request(channel)
                if path is None:
                    return
                self.requests.append(path)
                reply = self.handler(path)
                if not self._answer(channel, reply) or not reply.framed:
                    channel.close()
                    return

    def _secure(self, conn: socket.socket) -> _Channel | None:
        if self.handshake == "silent":
            self._stop.wait()
            return None
        if self.tls is None:
            return conn
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.tls)
        if self.handshake == "trickle":
            return _TrickledHandshake(conn, context, self.interval, self._stop).run()
        return context.wrap_socket(conn, server_side=True)

    def _answer(self, channel: _Channel, reply: Reply) -> bool:
        """Send `reply` as its mode says; False when the connection should end."""
        if reply.mode == SILENT:
            self._stop.wait()
            return False
        if reply.mode == TRICKLE_HEADERS:
            head = reply.head()
            sent = self._send(channel, head[: reply.at_once])
            return sent and self._trickle(channel, head[reply.at_once :]) and self._send(channel, reply.body)
        if not self._send(channel, reply.head()):
            return False
        if reply.mode == STALL:
            self._stop.wait()
            return False
        if reply.mode == TRICKLE_BODY:
            return self._trickle(channel, reply.body)
        if reply.chunked:
            half = len(reply.body) // 2
            parts = [reply.body[:half], reply.body[half:], b""]
            return self._send(channel, b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts))
        return self._send(channel, reply.body)

    def _trickle(self, channel: _Channel, data: bytes) -> bool:
        for index in range(len(data)):
            if not self._send(channel, data[index : index + 1]) or self._stop.wait(self.interval):
                return False
        return True

    @staticmethod
    def _send(channel: _Channel, data: bytes) -> bool:
        try:
            channel.sendall(data)
        except (OSError, ssl.SSLError):
            return False  # the client cut the connection: what the tests want it to do
        return True


def _read_request(channel: _Channel) -> str | None:
    """The path of the next request on the connection (headers only: the suite sends GETs); None when it closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = channel.recv(4096)
        if not chunk:
            return None
        data += chunk
    request_line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split(" ")
    return parts[1] if len(parts) > 1 else "/"


class _TrickledHandshake:
    """The server's side of a real TLS handshake through memory BIOs, its bytes sent one per `interval`."""

    def __init__(self, conn: socket.socket, context: ssl.SSLContext, interval: float, stop: threading.Event) -> None:
        self.conn, self.interval, self.stop = conn, interval, stop
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def run(self) -> _Channel | None:
        while not self.stop.is_set():
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                if not self._flush_slowly():
                    return None
                data = self.conn.recv(16384)
                if not data:
                    return None
                self.incoming.write(data)
                continue
            self._flush_slowly()
            return _BioChannel(self)
        return None

    def _flush_slowly(self) -> bool:
        pending = self.outgoing.read()
        for index in range(len(pending)):
            self.conn.sendall(pending[index : index + 1])
            if self.stop.wait(self.interval):
                return False
        return True


class _BioChannel:
    """Application data after a trickled handshake (never trickled itself)."""

    def __init__(self, shake: _TrickledHandshake) -> None:
        self.shake = shake

    def recv(self, size: int) -> bytes:
        while True:
            try:
                return self.shake.tls.read(size)
            except ssl.SSLWantReadError:
                data = self.shake.conn.recv(16384)
                if not data:
                    return b""
                self.shake.incoming.write(data)

    def sendall(self, data: bytes) -> None:
        self.shake.tls.write(data)
        self.shake.conn.sendall(self.shake.outgoing.read())

    def close(self) -> None:
        self.shake.conn.close()
