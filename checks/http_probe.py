"""HTTP health: the endpoint answers 2xx within the latency budget, and its body says it is healthy.

    result = probe_health(session, HealthProbe(url="https://api.example.com/health"), None, Deadline.after(30))

One attempt per call; a step that says `within <duration>` calls `probe_health_within`, which retries until its
deadline.
A target that refuses, times out or fails its TLS handshake is a FAIL (the service does not answer); only a spent time
budget is an ERROR (the suite could not look).

The probe's timeout bounds the whole call, not each read: the session's connections enrol with a cutoff
(checks.transports.bounded) that shuts them down when the time is up, so a server that trickles its headers or body
ends the probe on time, and the message says which phase was cut after how long.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from deploy_verify.checks.converge import State, converge, poll
from deploy_verify.checks.deadline import BudgetExhausted, Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.tls import HandshakeFailed, TlsTarget, hostname_note, served_leaf
from deploy_verify.checks.transports.bounded import HANDSHAKE, HEADERS, Bound, Cutoff, bounded, bounded_session

CHECK = "http_health"
BODY_LIMIT = 64 * 1024  # enough for any health document; a runaway body must not eat the budget
EXCERPT = 512
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key"})


@dataclass(frozen=True)
class BodyRule:
    """`contains="Healthy"` or `json_path="status", equals="UP"` (dotted path, `[n]` for list items)."""

    contains: str | None = None
    json_path: str | None = None
    equals: Any = None

    def describe(self) -> str:
        if self.contains is not None:
            return f"body contains {self.contains!r}"
        return f"{self.json_path} == {self.equals!r}"


@dataclass(frozen=True)
class HealthProbe:
    """One health endpoint: where it is and what a healthy answer looks like."""

    url: str
    timeout: float = 5.0
    latency_budget: float = 1.0
    body: BodyRule | None = None
    version_path: str | None = None  # JSON path whose value must equal the released version
    ca_bundle: str | None = None  # None: the system trust store


def probe_health(
    session: requests.Session, probe: HealthProbe, expected_version: str | None, deadline: Deadline
) -> CheckResult:
    """One GET, judged on status, latency, body rule and reported version."""
    return attempt(
        CHECK,
        probe.url,
        lambda: _probe(session, probe, expected_version, Bound.of(deadline, probe.timeout, "timeout")),
        spent="not probed: {}; raise the environment's budget or split the run",
    )


def _probe(session: requests.Session, probe: HealthProbe, expected_version: str | None, bound: Bound) -> CheckResult:
    started = time.perf_counter()
    with bounded("the request", bound) as cut:  # the result names the URL
        try:
            response, body, truncated = _ask(bounded_session(session), probe, bound.seconds, started)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            return _cut(probe, cut) if cut.fired else _unanswered(probe, exc, bound.seconds, started)
        if cut.fired:  # the cut can also end a body without a length early and quietly: never judge that one
            return _cut(probe, cut)
    elapsed = time.perf_counter() - started
    evidence = (_response_evidence(response, body, truncated, elapsed),)
    verdict, message, category = _judge(probe, response.status_code, response.reason, body, elapsed, expected_version)
    return _result(probe, verdict, message, evidence, category)


def _ask(
    session: requests.Session, probe: HealthProbe, timeout: float, started: float
) -> tuple[requests.Response, bytes, bool]:
    response = session.get(
        probe.url,
        timeout=(timeout, timeout),
        stream=True,
        allow_redirects=False,  # a redirect is not a healthy answer; the configured URL should be the final one
        verify=probe.ca_bundle or True,
    )
    body, truncated = _read_body(response, started + timeout)
    return response, body, truncated


def _unanswered(probe: HealthProbe, exc: Exception, timeout: float, started: float) -> CheckResult:
    """The result for a call that failed before the time was up: refused, unresolvable, TLS, a socket timeout."""
    if isinstance(exc, requests.exceptions.SSLError):
        # Filed with the certificates: the TLS check says what is wrong with what the endpoint serves.
        note = _hostname_note(probe, exc, timeout - (time.perf_counter() - started))
        message = f"TLS handshake failed: {_reason(exc)}{note}; run the TLS check for details"
        return _result(probe, Verdict.FAIL, message, category=Category.CERTIFICATE)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _fail(probe, f"no connection within {timeout:.1f}s; is the service listening?")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return _fail(probe, f"no answer within {timeout:.1f}s; check the service's logs and load")
    if isinstance(exc, BodyTimeout):
        return _fail(probe, f"{exc}; check the service's logs and load")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if _unresolved(exc):
            host = urlsplit(probe.url).hostname
            return _fail(probe, f"cannot resolve {host} (DNS: {_reason(exc)}); check the name and the resolver")
        return _fail(probe, f"cannot connect: {_reason(exc)}; is the service running and routed?")
    return _fail(probe, f"request failed: {_reason(exc)}")


def _cut(probe: HealthProbe, cut: Cutoff) -> CheckResult:
    """The call outlived its bound and was cut: a service that does not answer in time is unhealthy (FAIL)."""
    evidence = (Evidence.as_json("cut-off call", cut.evidence()),)
    if cut.phase == HANDSHAKE:
        message = f"{cut.describe()}; check the TLS termination in front of the service (and run the TLS check)"
        return _result(probe, Verdict.FAIL, message, evidence, Category.UNHEALTHY_ENDPOINT)
    if cut.phase == HEADERS and cut.silent:
        # Nothing at all came back: the wording of a plain read timeout, which is what this is.
        why = f" ({cut.bound.explain()})" if cut.bound.budget is not None else ""
        message = f"no answer within {cut.bound.seconds:.1f}s{why}; check the service's logs and load"
        return _result(probe, Verdict.FAIL, message, evidence, Category.UNHEALTHY_ENDPOINT)
    message = f"{cut.describe()}; check the service's logs and load, and any proxy in front of it"
    return _result(probe, Verdict.FAIL, message, evidence, Category.UNHEALTHY_ENDPOINT)


def _hostname_note(probe: HealthProbe, exc: Exception, left: float) -> str:
    """'; the certificate names no subjectAltName: ...' when a hostname mismatch comes from a CN-only
    certificate (the leaf is read again, without verification, in what is left of the probe's time)."""
    text = str(exc)
    if ("Hostname mismatch" not in text and "IP address mismatch" not in text) or left <= 0.2:
        return ""
    parts = urlsplit(probe.url)
    if parts.hostname is None:
        return ""
    target = TlsTarget(host=parts.hostname, port=parts.port or 443, timeout=left)
    try:
        leaf = served_leaf(target, Deadline.after(left))
    except (HandshakeFailed, BudgetExhausted):  # only a better message was at stake; the FAIL stands without it
        return ""
    note = hostname_note(leaf, parts.hostname)
    return f"; {note}" if note else ""


def probe_health_within(
    session: requests.Session, probe: HealthProbe, expected_version: str | None, deadline: Deadline, interval: float
) -> tuple[CheckResult, int]:
    """Retry `probe_health` until it passes or `deadline` ends; returns the last result and the attempts made.

    A missing expectation (ERROR) cannot improve by waiting, so it returns at once. No attempt starts with less than
    `interval` left.
    """
    started = time.monotonic()
    results: list[CheckResult] = []
    tries: list[str] = []  # the retry timeline: every attempt, not only the distinct states a wait timeline keeps

    def evaluate() -> State:
        result = probe_health(session, probe, expected_version, deadline)
        results.append(result)
        tries.append(
            f"+{time.monotonic() - started:.1f}s attempt {len(results)}: {result.verdict.value}: {result.message}"
        )
        # An unhealthy answer may heal: it is the transient state of this wait, not a terminal one.
        return State(None if result.verdict is Verdict.FAIL else result.verdict, result.message, result.category)

    _, attempts = converge(evaluate, poll(deadline, interval, min_left=interval), deadline, grace=0)
    result = results[-1]
    if attempts == 1:
        return result, attempts
    retries = Evidence("retry timeline", "\n".join(tries))  # every retry shows in the report, passed or not
    message = result.message
    if not result.ok:
        message = f"still unhealthy after {attempts} attempts in {deadline.total():.0f}s; last: {result.message}"
    return _result(probe, result.verdict, message, (*result.evidence, retries), result.category), attempts


def _judge(
    probe: HealthProbe, status: int, reason: str, body: bytes, elapsed: float, expected_version: str | None
) -> tuple[Verdict, str, Category | None]:
    answered = f"HTTP {status} {reason}".strip() + f" in {elapsed * 1000:.0f} ms"
    if not 200 <= status < 300:
        return Verdict.FAIL, f"{answered}, expected 2xx; body: {_excerpt(body, 160)!r}", Category.UNHEALTHY_ENDPOINT
    if elapsed > probe.latency_budget:
        over = f"{answered}, over the {probe.latency_budget * 1000:.0f} ms latency budget"
        return Verdict.FAIL, over, Category.UNHEALTHY_ENDPOINT
    if probe.body is not None:
        broken = _body_rule_failure(probe.body, body)
        if broken:
            return Verdict.FAIL, f"{answered} but {broken}", Category.UNHEALTHY_ENDPOINT
    if probe.version_path is not None:
        return _judge_version(probe.version_path, body, expected_version, answered)
    return Verdict.PASS, answered, None


def _judge_version(path: str, body: bytes, expected: str | None, answered: str) -> tuple[Verdict, str, Category | None]:
    if expected is None:
        return (
            Verdict.ERROR,
            f"{answered}; no expected version to compare {path} with: pass --release FILE or "
            "--expect COMPONENT=VERSION",
            Category.UNDECIDED,
        )
    found, problem = _json_lookup(body, path)
    if problem:
        return Verdict.FAIL, f"{answered} but the version at {path} is unreadable: {problem}", Category.WRONG_VERSION
    if str(found) != expected:
        wrong = f"{answered} but reports version {found!r} at {path}, expected {expected!r}"
        return Verdict.FAIL, wrong, Category.WRONG_VERSION
    return Verdict.PASS, f"{answered}, version {expected}", None


def _body_rule_failure(rule: BodyRule, body: bytes) -> str | None:
    """None when the rule holds, else what was found instead."""
    if rule.contains is not None:
        if rule.contains.encode() in body:
            return None
        return f"the body does not contain {rule.contains!r}: {_excerpt(body, 160)!r}"
    assert rule.json_path is not None
    found, problem = _json_lookup(body, rule.json_path)
    if problem:
        return f"body rule {rule.describe()} cannot be read: {problem}"
    if found != rule.equals:
        return f"body rule failed: {rule.json_path} is {found!r}, expected {rule.equals!r}"
    return None


def _json_lookup(body: bytes, path: str) -> tuple[Any, str | None]:
    """Follow `a.b[0].c` (an optional leading `$.` is accepted) into a JSON body: (value, None) or (None, problem)."""
    try:
        node: Any = json.loads(body)
    except ValueError:
        return None, f"the body is not JSON: {_excerpt(body, 80)!r}"
    for part in _path_parts(path):
        if not _has(node, part):
            return None, f"{path} is missing (no {part!r})"
        node = node[part]
    return node, None


def _has(node: Any, part: str | int) -> bool:
    if isinstance(part, int):
        return isinstance(node, list) and -len(node) <= part < len(node)
    return isinstance(node, dict) and part in node


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for raw in path.removeprefix("$.").split("."):
        name, _, rest = raw.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.removeprefix("[")
    return parts


class BodyTimeout(TimeoutError):
    """The body was not complete by the probe's timeout, seen between two chunks: the fallback for a session whose
    adapter does not enrol its connections with the cutoff (one mounted for a single host)."""


def _read_body(response: requests.Response, until: float) -> tuple[bytes, bool]:
    """Read at most BODY_LIMIT bytes before `until` (perf_counter); the cutoff ends a trickling body on time, the
    check between chunks is the fallback."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=8192):
            chunks.append(chunk)
            size += len(chunk)
            if size >= BODY_LIMIT:
                return b"".join(chunks)[:BODY_LIMIT], True
            if time.perf_counter() > until:
                raise BodyTimeout(f"the body was not complete within the timeout ({size} bytes read)")
    except requests.exceptions.ConnectionError as exc:  # urllib3 read timeouts surface here while streaming
        raise requests.exceptions.ReadTimeout(str(exc)) from exc
    finally:
        response.close()
    return b"".join(chunks), False


def _response_evidence(response: requests.Response, body: bytes, truncated: bool, elapsed: float) -> Evidence:
    headers = {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in response.headers.items()}
    return Evidence.as_json(
        "HTTP response",
        {
            "request": f"GET {response.url}",
            "status": f"{response.status_code} {response.reason}",
            "elapsed_ms": round(elapsed * 1000, 1),
            "headers": headers,
            "body_excerpt": _excerpt(body, EXCERPT) + (" …(truncated)" if truncated else ""),
        },
    )


def _excerpt(body: bytes, limit: int) -> str:
    text = body[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > limit else "")


def _unresolved(exc: BaseException) -> bool:
    """Whether the name did not resolve: urllib3 says so in a NameResolutionError nested in requests' error."""
    return "NameResolutionError" in str(exc) or "Failed to resolve" in str(exc)


def _reason(exc: BaseException) -> str:
    """The innermost useful cause: 'Connection refused', 'certificate has expired', not urllib3's nesting."""
    text = str(exc)
    markers = ("Connection refused", "Name or service not known", "Temporary failure in name resolution")
    for marker in (*markers, "certificate verify failed", "timed out"):
        if marker in text:
            start = text.find(marker)
            end = text.find(")", start)
            return (
                re.sub(r"\s*\(_ssl\.c:\d+\)?", "", text[start : end if end > 0 else None])
                .rstrip("')\"")
                .removesuffix(".")
            )
    return text[:200]


def _fail(probe: HealthProbe, message: str) -> CheckResult:
    """The endpoint could not be asked (refused, timed out, not resolvable, the request failed): unhealthy."""
    return _result(probe, Verdict.FAIL, message, category=Category.UNHEALTHY_ENDPOINT)


def _result(
    probe: HealthProbe,
    verdict: Verdict,
    message: str,
    evidence: tuple[Evidence, ...] = (),
    category: Category | None = None,
) -> CheckResult:
    return CheckResult(CHECK, probe.url, verdict, message, evidence, category)
