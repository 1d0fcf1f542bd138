"""A wall-clock bound on every network call, whatever the peer does.

    with bounded("GET https://api.example.com/health", Bound.of(deadline, 5.0, "timeout")) as cut:
        response = session.get(url, timeout=(5, 5), stream=True)   # a session from bounded_session()
        body = response.raw.read()
    if cut.fired:
        ...  # cut.describe(): "GET https://... was cut off after 5.0s (timeout 5s): the body was still arriving ..."

Socket timeouts bound each read, not the call: a server that trickles one byte every half second never trips
`requests`' read timeout (the body of issue 12 ran 150 s on a 15 s budget). A `Cutoff` is armed for the call's
whole time; every connection used inside the `with` enrols its socket with it (on connect, and again on each request,
because pooled connections are reused without connecting), and when the time is up one watchdog thread shuts those
sockets down, so the blocked read or handshake returns at once and the call raises. The caller asks `cut.fired` and
says which call was cut, after how long, and in which phase (handshake, headers, body).

The sockets reach a cutoff through urllib3 connection classes (`bounded_pools`), used by a requests adapter
(`bounded_session`: the HTTP checks and the Azure SDK's transport) and by the kubernetes client's pool manager. A raw
socket (the TLS check's handshake) enrols itself with `cut.enrol(sock)`.

What cannot be cut: name resolution (getaddrinfo blocks in C) and the TCP connect (bounded by the socket's connect
timeout, which never exceeds the call's bound).
"""

from __future__ import annotations

import contextlib
import heapq
import io
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.adapters
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from deploy_verify.checks.deadline import Deadline

# Phases of one call, in order; a cut names the one it interrupted.
CONNECTING, HANDSHAKE, SENDING, HEADERS, BODY = "connecting", "handshake", "sending", "headers", "body"
TRICKLE_GAP = 1.0  # a last byte less than this long before the cut: the peer was trickling, not stalled


@dataclass(frozen=True)
class Bound:
    """How long one call may take, and why that long: its own timeout, or what was left of the budget."""

    seconds: float
    name: str  # "timeout", "defaults.timeouts.kubernetes_request"
    budget: str | None = None  # the deadline's label when the budget, not the timeout, set the bound

    @classmethod
    def of(cls, deadline: Deadline, wanted: float, name: str) -> Bound:
        """`wanted`, capped by what is left of `deadline`. Raises BudgetExhausted once nothing is left."""
        seconds = deadline.timeout(wanted)
        return cls(seconds, name, deadline.label if seconds < wanted else None)

    def explain(self) -> str:
        if self.budget is not None:
            return f"when the {self.budget} ran out"
        return f"{self.name} {self.seconds:g}s"


@dataclass(eq=False)
class Cutoff:
    """One call's wall-clock guard: armed with `start()`, it shuts down every enrolled socket when its bound passes.

    `received` counts the bytes of the answer read so far (headers and body; the handshake's bytes too where the
    caller counts them), `last_byte` when the last one came: together they tell a silent peer from a trickling one.
    """

    what: str  # the call, as the message names it: "GET https://h/health", "TLS handshake with h:443"
    bound: Bound
    phase: str = CONNECTING
    received: int = 0
    header_bytes: int = 0  # `received` when the headers were complete
    started: float = field(default_factory=time.monotonic)
    last_byte: float | None = None
    fired_at: float | None = None
    _sockets: list[socket.socket] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = False
    _generation: int = 0

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> Cutoff:
        self.started = time.monotonic()
        _WATCHDOG.schedule(self, self.started + self.bound.seconds, self._generation)
        return self

    def rearm(self, bound: Bound, what: str | None = None) -> None:
        """A new bound from now (a watch: the request's bound while it opens, then the stream's window)."""
        with self._lock:
            self._generation += 1
            self.bound, self.what = bound, what or self.what
            self.started = time.monotonic()
            generation = self._generation
        _WATCHDOG.schedule(self, self.started + bound.seconds, generation)

    def close(self) -> None:
        """Disarm and let go of the sockets' duplicates (the connections themselves are their owners')."""
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    @contextlib.contextmanager
    def current(self) -> Iterator[Cutoff]:
        """Connections opened or reused by this thread inside the `with` enrol with this cutoff. Never hold it
        across a `yield`: the thread goes on to other calls."""
        previous = getattr(_CURRENT, "cut", None)
        _CURRENT.cut = self
        try:
            yield self
        finally:
            _CURRENT.cut = previous

    # --- what connections tell it ------------------------------------------------------------------------------

    def enrol(self, sock: socket.socket) -> None:
        """Watch `sock`. A duplicate is kept: the connection may wrap (TLS detaches the original) or close its own
        descriptor while the cutoff still holds one, and shutting down any descriptor shuts down the connection."""
        try:  # fromfd duplicates the descriptor; SSLSocket refuses dup()
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
        except OSError:
            return  # already closed: nothing left to cut
        with self._lock:
            if self._closed:
                duplicate.close()
                return
            self._sockets.append(duplicate)
            fired = self.fired_at is not None
        if fired:  # the bound passed before this socket existed (a slow token, a slow DNS): cut it at once
            _shut(duplicate)

    def enter(self, phase: str) -> None:
        """The call moved on to `phase`; once cut, the phase stays the one that was cut (a cut that ends the headers
        early lets http.client return a response, which must not read as "the headers had arrived")."""
        if self.fired_at is None:
            self.phase = phase

    def count(self, size: int) -> None:
        if size > 0:
            self.received += size
            self.last_byte = time.monotonic()

    def fire(self, generation: int | None = None) -> None:
        with self._lock:
            if self._closed or self.fired_at is not None:
                return
            if generation is not None and generation != self._generation:
                return  # re-armed since: that bound is not this one
            self.fired_at = time.monotonic()
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    # --- what the caller says ------------------------------------------------------------------------------------

    @property
    def fired(self) -> bool:
        return self.fired_at is not None

    @property
    def silent(self) -> bool:
        """Not one byte of an answer arrived."""
        return self.received == 0

    def elapsed(self) -> float:
        return (self.fired_at or time.monotonic()) - self.started

    def describe(self) -> str:
        """'GET https://h/health was cut off after 3.0s (timeout 3s): the status line and headers were still
        arriving: 17 bytes so far, the last 0.4s before the cut (the server trickles them)'."""
        return f"{self.what} was cut off after {self.elapsed():.1f}s ({self.bound.explain()}): {self.interrupted()}"

    def evidence(self) -> dict[str, Any]:
        """What the report shows of a cut call."""
        return {
            "call": self.what,
            "bound": self.bound.explain(),
            "cut_after_s": round(self.elapsed(), 2),
            "phase": self.phase,
            "bytes_received": self.received,
            "last_byte_before_cut_s": round(self._quiet(), 2) if self.last_byte else None,
        }

    def interrupted(self) -> str:
        """What the cut interrupted, in the words of the phase it was in."""
        if self.phase == CONNECTING:
            return "the connection was not yet established"
        if self.phase == HANDSHAKE:
            if self.received:
                return f"the server's handshake messages were still arriving: {self._so_far(self.received, 'them')}"
            return "the TLS handshake had not completed"
        if self.phase == SENDING:
            return "the request was still being sent (the server does not read it)"
        if self.phase == HEADERS:
            if self.silent:
                return "no byte of an answer had arrived"
            return f"the status line and headers were still arriving: {self._so_far(self.received, 'them')}"
        body = self.received - self.header_bytes
        if body <= 0:
            return f"the headers had arrived, then no byte of the body in {self._quiet():.1f}s (the server stalls)"
        return f"the body was still arriving: {self._so_far(body, 'it')}"

    def _so_far(self, size: int, pronoun: str) -> str:
        """'17 bytes so far, the last 0.4s before the cut (the server trickles them)', or '... (then it stalled)'."""
        quiet = self._quiet()
        how = f"the server trickles {pronoun}" if quiet < TRICKLE_GAP else "then the server stalled"
        return f"{size} bytes so far, the last {quiet:.1f}s before the cut ({how})"

    def _quiet(self) -> float:
        """Seconds from the last byte (or the start) to the cut."""
        return (self.fired_at or time.monotonic()) - (self.last_byte or self.started)


@contextlib.contextmanager
def bounded(what: str, bound: Bound) -> Iterator[Cutoff]:
    """A cutoff armed for `bound`, current for this thread inside the `with`, disarmed on the way out."""
    cut = Cutoff(what, bound).start()
    try:
        with cut.current():
            yield cut
    finally:
        cut.close()


def current() -> Cutoff | None:
    cut: Cutoff | None = getattr(_CURRENT, "cut", None)
    return cut


_CURRENT = threading.local()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already shut down or closed by its owner: it is cut either way
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread for every cutoff of the process: a heap of (when, cutoff); a disarmed cutoff ignores its turn."""

    def __init__(self) -> None:
        self._pid = -1
        self._order = itertools.count()
        self._starting = threading.Lock()

    def schedule(self, cut: Cutoff, at: float, generation: int) -> None:
        self._ensure_running()
        with self._wake:
            heapq.heappush(self._heap, (at, next(self._order), cut, generation))
            self._wake.notify()

    def _ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._starting:
            if self._pid == os.getpid():
                return
            # First use in this process (or in a forked child, where the parent's thread does not exist).
            self._heap: list[tuple[float, int, Cutoff, int]] = []
            self._wake = threading.Condition()
            threading.Thread(target=self._run, name="cutoff-watchdog", daemon=True).start()
            self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(timeout=self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, cut, generation = heapq.heappop(self._heap)
            cut.fire(generation)


_WATCHDOG = _Watchdog()


# --- urllib3 connections that enrol with the current cutoff ------------------------------------------------------


class _Enrolling:
    """Mixed into urllib3's connection classes: enrol the socket with the thread's cutoff, and tell it the phase."""

    sock: Any
    _handshakes = False
    _cut: Cutoff | None = None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        cut = current()
        if cut is not None:
            cut.enrol(sock)
            cut.enter(HANDSHAKE if self._handshakes else SENDING)
            self._cut = cut
        return sock

    def connect(self) -> None:
        cut = current()
        if cut is not None:
            cut.enter(CONNECTING)
        super().connect()  # type: ignore[misc]
        if cut is not None:
            cut.enter(SENDING)

    def request(self, *args: Any, **kwargs: Any) -> None:
        cut = current()
        if cut is not None and self.sock is not None and self._cut is not cut:
            cut.enrol(self.sock)  # a pooled connection, reused without connect()
            self._cut = cut
        if cut is not None:
            cut.enter(SENDING)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        cut = current()
        if cut is None or self.sock is None:
            return super().getresponse()  # type: ignore[misc]
        cut.enter(HEADERS)
        real = self.sock
        self.sock = _Counted(real, cut)  # http.client reads the answer through sock.makefile(): count it
        try:
            response = super().getresponse()  # type: ignore[misc]
        finally:
            if isinstance(self.sock, _Counted):
                self.sock = real  # unless the answer closed the connection (Connection: close)
        if not cut.fired:
            cut.enter(BODY)
            cut.header_bytes = cut.received
        return response

    def close(self) -> None:
        self._cut = None
        super().close()  # type: ignore[misc]


class BoundedHTTPConnection(_Enrolling, HTTPConnection):
    pass


class BoundedHTTPSConnection(_Enrolling, HTTPSConnection):
    _handshakes = True


class BoundedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = BoundedHTTPConnection


class BoundedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = BoundedHTTPSConnection


BOUNDED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": BoundedHTTPConnectionPool,
    "https": BoundedHTTPSConnectionPool,
}


def bounded_pools(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """Make `manager` open bounded connections (before its first request: pools are made on first use).
    A SOCKS proxy manager keeps its own connection classes, and so its calls only their socket timeouts."""
    from_socks = type(manager).__module__.endswith("socks")
    if not from_socks:
        manager.pool_classes_by_scheme = dict(BOUNDED_POOLS)
    return manager


class _Counted:
    """The connection's socket as http.client sees it while it reads an answer: every byte read is counted."""

    def __init__(self, sock: socket.socket, cut: Cutoff) -> None:
        self._sock, self._cut = sock, cut

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_CountingReader(self._sock.makefile("rb", buffering=0), self._cut))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _CountingReader(io.RawIOBase):
    def __init__(self, raw: Any, cut: Cutoff) -> None:
        self._raw, self._cut = raw, cut

    def readinto(self, buffer: Any) -> int | None:
        size: int | None = self._raw.readinto(buffer)
        self._cut.count(size or 0)
        return size

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self._raw.fileno())

    def close(self) -> None:
        self._raw.close()
        super().close()


class BoundedAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter whose connections enrol with the current cutoff."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        bounded_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        return bounded_pools(manager)


def bounded_session(session: requests.Session | None = None, **adapter: Any) -> requests.Session:
    """`session` (or a new one) with bounded adapters for http:// and https://; idempotent. Adapter keywords
    (`max_retries=`) apply when the adapters are replaced."""
    session = session or requests.Session()
    for prefix in ("https://", "http://"):
        mounted = session.adapters.get(prefix)
        if not isinstance(mounted, BoundedAdapter):
            if mounted is not None:
                mounted.close()
            session.mount(prefix, BoundedAdapter(**adapter))
    return session
