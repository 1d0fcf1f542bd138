"""How the checks read Prometheus: its HTTP API, read-only (`/api/v1/query`, `/api/v1/query_range`), every call
bounded on the wall clock by the run's deadline.

    client = PrometheusClient("https://prometheus.example.com", token_env="DV_PROMETHEUS_TOKEN")
    result = client.query_range('sum(rate(http_requests_total{service="reviews"}[1m]))', start, end, 15, deadline)
    result.series[0].samples          # (Sample(t=1796285415.9, v=0.0042), ...)

Whatever keeps the question from being answered raises `PrometheusUnavailable` (a TransportError: ERROR, filed as
"Infrastructure unreachable"), worded with the query, the server and what to look at:

| Prometheus answered | failure |
|---|---|
| refused, reset, DNS, a socket timeout, cut off by the bound (`checks.transports.bounded`) | UNREACHABLE |
| 401 / 403 | CREDENTIALS / FORBIDDEN (which token variable to refresh) |
| 429 | THROTTLED |
| 5xx, 422 `execution`, 503 `timeout` (the server gave up evaluating) | OTHER |
| HTML, a body that is not JSON, JSON of another shape | MALFORMED |
| 400 `bad_data` (the PromQL does not parse) | `PrometheusQueryRejected`: "Could not decide" (the rule is wrong) |

A bearer token, when one is needed, is read from an environment variable named by the caller, at each call; it is
sent in the Authorization header and appears nowhere else: not in messages, evidence, logs or repr().
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
import urllib3

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category
from deploy_verify.checks.transports import Failure, TransportError
from deploy_verify.checks.transports.bounded import Bound, Cutoff, bounded, bounded_session

TIMEOUT = 10.0  # one query, unless the caller says otherwise; capped by what is left of the budget
TIMEOUT_NAME = "the Prometheus query timeout"
BODY_LIMIT = 16 * 1024 * 1024  # a range query over many series can be large; a runaway one must not eat memory
EXCERPT = 200
ResultKind = Literal["vector", "matrix", "scalar"]
_TITLE = re.compile(r"<title[^>]*>(?P<title>[^<]{0,200})", re.IGNORECASE)


class PrometheusUnavailable(TransportError):
    """Prometheus could not answer the query (unreachable, refused credentials, an error, an unreadable answer)."""


class PrometheusQueryRejected(PrometheusUnavailable):
    """Prometheus answered, but refused the query itself (it does not parse, or returns a string): the rule is wrong,
    so it is filed with the results that could not be decided, not with unreachable infrastructure."""

    category = Category.UNDECIDED


@dataclass(frozen=True)
class Sample:
    t: float  # unix seconds
    v: float  # NaN and ±Inf are values Prometheus can return (0/0, x/0, a quantile above the highest bucket)


@dataclass(frozen=True)
class Series:
    labels: tuple[tuple[str, str], ...]  # sorted (name, value) pairs; () for an aggregate without labels
    samples: tuple[Sample, ...]

    @classmethod
    def of(cls, labels: Mapping[str, str], samples: tuple[Sample, ...]) -> Series:
        return cls(tuple(sorted(labels.items())), samples)

    def describe(self) -> str:
        """'{code="500",service="reviews"}', as PromQL writes a label set; '{}' for none."""
        inner = ",".join(f"{name}={json.dumps(value)}" for name, value in self.labels)
        return "{" + inner + "}"


@dataclass(frozen=True)
class QueryResult:
    """One answer: what was asked, over which time, and the series that came back (a scalar is one series without
    labels). `start == end` and `step == 0` for an instant query."""

    query: str
    kind: ResultKind
    series: tuple[Series, ...]
    start: float
    end: float
    step: float
    server: str
    warnings: tuple[str, ...] = ()

    @property
    def instant(self) -> bool:
        return self.step == 0

    def window(self) -> str:
        """'at 2026-12-03T08:10:00Z', or '60s from 2026-12-03T08:09:00Z to 2026-12-03T08:10:00Z, every 5s'."""
        if self.instant:
            return f"at {iso(self.end)}"
        return f"{self.end - self.start:g}s from {iso(self.start)} to {iso(self.end)}, every {self.step:g}s"

    def evidence(self) -> dict[str, Any]:
        window: dict[str, Any] = {"time": iso(self.end)}
        if not self.instant:
            window = {"start": iso(self.start), "end": iso(self.end), "step_s": self.step}
        return {"query": self.query, "server": self.server, "result_type": self.kind, **window}


def iso(t: float) -> str:
    """Unix seconds as ISO 8601 UTC to the second: '2026-12-03T08:10:00Z'."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PrometheusClient:
    """Read-only queries against one Prometheus (or anything serving its HTTP API: Thanos, Mimir, VictoriaMetrics).

    `token_env` names the environment variable that holds a bearer token (None: no Authorization header).
    `ca_bundle` is the PEM file that trusts an https server (None: the system's store).
    """

    url: str
    token_env: str | None = None
    ca_bundle: str | None = None
    timeout: float = TIMEOUT
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.session = bounded_session(self.session)

    def query(self, promql: str, at: float, deadline: Deadline) -> QueryResult:
        """`promql` evaluated at unix time `at`: a vector or a scalar."""
        data = self._get("/api/v1/query", {"query": promql, "time": _number(at)}, promql, deadline)
        return _parse(data, promql, at, at, 0.0, self.url)

    def query_range(self, promql: str, start: float, end: float, step: float, deadline: Deadline) -> QueryResult:
        """`promql` evaluated every `step` seconds from `start` to `end`: a matrix."""
        if step <= 0 or end < start:
            raise ValueError(f"a range query needs start <= end and step > 0 (got {start}..{end} every {step})")
        params = {"query": promql, "start": _number(start), "end": _number(end), "step": _number(step)}
        data = self._get("/api/v1/query_range", params, promql, deadline)
        return _parse(data, promql, start, end, step, self.url)

    # --- one call ----------------------------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str], promql: str, deadline: Deadline) -> dict[str, Any]:
        """GET path?params and return the API's `data`, or raise saying what failed."""
        where = f"Prometheus at {self.url}"
        headers = {"Accept": "application/json", **self._authorization(where)}
        bound = Bound.of(deadline, self.timeout, TIMEOUT_NAME)  # BudgetExhausted: the runner's "not checked"
        # Prometheus' own evaluation timeout: a query too heavy to finish in time is ended by the server as well.
        params = {**params, "timeout": _number(bound.seconds)}  # seconds as a float: "5.000s" does not parse
        with bounded(f"GET {self.url}{path}", bound) as cut:
            try:
                response = self.session.get(
                    f"{self.url}{path}",
                    params=params,
                    headers=headers,
                    timeout=(bound.seconds, bound.seconds),
                    stream=True,
                    allow_redirects=False,  # a login page behind a redirect is not Prometheus' answer
                    verify=self.ca_bundle or True,
                )
                body = _read(response)
            except _TooLarge:
                raise PrometheusUnavailable(
                    f"{where}: the answer to query {promql!r} is larger than {BODY_LIMIT // (1024 * 1024)} MB; narrow "
                    "the query (fewer series, a larger step)",
                    Failure.MALFORMED,
                ) from None
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise self._unanswered(exc, cut, promql, where) from exc
            if cut.fired:  # a body without a length can end quietly when cut: never parse a truncated answer
                raise self._cut(cut, promql, where)
        return _data(response, body, promql, where, self.token_env)

    def _authorization(self, where: str) -> dict[str, str]:
        if self.token_env is None:
            return {}
        token = os.environ.get(self.token_env, "").strip()
        if not token:
            raise PrometheusUnavailable(
                f"{where}: no bearer token: environment variable {self.token_env} is empty or not set; export the "
                "token Prometheus (or the proxy in front of it) accepts into it, or drop the token setting if it "
                "needs none",
                Failure.CREDENTIALS,
            )
        return {"Authorization": f"Bearer {token}"}

    def _unanswered(self, exc: BaseException, cut: Cutoff, promql: str, where: str) -> PrometheusUnavailable:
        if cut.fired:
            return self._cut(cut, promql, where)
        asked = f"query {promql!r}"
        if isinstance(exc, requests.exceptions.SSLError):
            return PrometheusUnavailable(
                f"{where}: TLS handshake failed for {asked}: {_reason(exc)}; check its certificate and the CA "
                "bundle the suite is given",
                Failure.UNREACHABLE,
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            reason = f"no connection within {cut.bound.seconds:.1f}s"
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            reason = f"no answer within {cut.bound.seconds:.1f}s"
        elif isinstance(exc, requests.exceptions.ConnectionError):
            reason = f"cannot connect ({_reason(exc)})"
        else:
            reason = f"the request failed ({_reason(exc)})"
        return PrometheusUnavailable(
            f"{where}: {reason} for {asked}; is Prometheus running at that address and reachable from here?",
            Failure.UNREACHABLE,
        )

    @staticmethod
    def _cut(cut: Cutoff, promql: str, where: str) -> PrometheusUnavailable:
        return PrometheusUnavailable(
            f"{where}: {cut.describe()}, for query {promql!r}; check Prometheus' load and any proxy in front of it",
            Failure.UNREACHABLE,
        )


def _number(t: float) -> str:
    """Seconds as the API takes them: '1796285415.956'."""
    return f"{t:.3f}"


def _read(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > BODY_LIMIT:
                raise _TooLarge
    finally:
        response.close()
    return b"".join(chunks)


def _data(response: requests.Response, body: bytes, promql: str, where: str, token_env: str | None) -> dict[str, Any]:
    """The `data` of a success, or the error the status and body stand for."""
    status = response.status_code
    asked = f"query {promql!r}"
    document = _json(body)
    if status in (401, 403):
        credential = f"the bearer token in ${token_env}" if token_env else "no credential (none is configured)"
        failure = Failure.CREDENTIALS if status == 401 else Failure.FORBIDDEN
        refused = "refused the credential" if status == 401 else "does not allow this credential to query"
        return _raise(
            f"{where} {refused} (HTTP {status}) for {asked}; the suite sent {credential}: check it is current and "
            "allowed to read",
            failure,
        )
    if status == 429:
        return _raise(f"{where} throttled {asked} (HTTP 429); run fewer queries at once, or later", Failure.THROTTLED)
    if isinstance(document, dict) and document.get("status") == "error":
        kind, error = str(document.get("errorType", "")), str(document.get("error", ""))
        said = f"{where} refused {asked} (HTTP {status}, {kind}: {error})"
        if kind == "bad_data":
            raise PrometheusQueryRejected(f"{said}; correct the rule's PromQL (try it in Prometheus' Graph page)")
        return _raise(f"{said}; {_advice(kind)}", Failure.OTHER)
    if status >= 300:
        return _raise(
            f"{where} answered HTTP {status} {response.reason} for {asked}: {_excerpt(body)!r}; check Prometheus' log "
            "and any proxy in front of it",
            Failure.OTHER,
        )
    if not isinstance(document, dict):
        return _raise(
            f"{where} answered {asked} with something other than the API's JSON ({_what(response, body)}); is the URL "
            "Prometheus' own (not a UI or a login page)?",
            Failure.MALFORMED,
        )
    data = document.get("data")
    if document.get("status") != "success" or not isinstance(data, dict):
        return _raise(
            f"{where} answered {asked} with JSON that is not the API's: {_excerpt(body)!r}", Failure.MALFORMED
        )
    return data


def _raise(message: str, failure: Failure) -> dict[str, Any]:
    raise PrometheusUnavailable(message, failure)


def _advice(kind: str) -> str:
    if kind == "timeout":
        return "the query is too heavy for the time given: a shorter range, a larger step, or a recording rule"
    if kind == "execution":
        return "the query could not be evaluated (too many samples?); narrow it or use a recording rule"
    return "check Prometheus' log"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _what(response: requests.Response, body: bytes) -> str:
    kind = response.headers.get("Content-Type", "no Content-Type")
    title = _TITLE.search(body[:4096].decode("utf-8", errors="replace"))
    if title:
        return f"{kind}, titled {title.group('title').strip()!r}"
    return f"{kind}: {_excerpt(body)!r}" if body else f"{kind}, an empty body"


def _excerpt(body: bytes) -> str:
    text = body[:EXCERPT].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > EXCERPT else "")


def _reason(exc: BaseException) -> str:
    """The innermost useful words: 'Connection refused', not urllib3's nesting."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution"):
        if marker in text:
            return marker
    return text[:200]


# --- the API's result types --------------------------------------------------------------------------------------


def _parse(data: dict[str, Any], promql: str, start: float, end: float, step: float, server: str) -> QueryResult:
    kind, result = data.get("resultType"), data.get("result")
    warnings = tuple(str(w) for w in data.get("warnings", ()) or ())
    try:
        if kind == "scalar":
            series: tuple[Series, ...] = (Series((), (_sample(result),)),)
        elif kind == "vector":
            series = tuple(Series.of(_labels(item), (_sample(_field(item, "value")),)) for item in _items(result))
        elif kind == "matrix":
            series = tuple(
                Series.of(_labels(item), tuple(_sample(pair) for pair in _field(item, "values")))
                for item in _items(result)
            )
        elif kind == "string":
            raise PrometheusQueryRejected(
                f"Prometheus at {server}: query {promql!r} returns a string, not numbers; a metric rule needs a "
                "vector, a matrix or a scalar"
            )
        else:
            raise _Malformed(f"resultType {kind!r}")
    except _Malformed as exc:
        raise PrometheusUnavailable(
            f"Prometheus at {server} answered query {promql!r} with a result the API does not document ({exc}); is "
            "it Prometheus' HTTP API?",
            Failure.MALFORMED,
        ) from None
    return QueryResult(promql, kind, series, start, end, step, server, warnings)


class _Malformed(Exception):
    pass


class _TooLarge(Exception):
    pass


def _items(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
        raise _Malformed("the result is not a list of series")
    return result


def _field(item: dict[str, Any], name: str) -> Any:
    if name not in item:
        if "histogram" in item or "histograms" in item:
            raise _Malformed("native histogram samples, which metric rules do not read: use the classic _bucket series")
        raise _Malformed(f"a series without {name!r}")
    return item[name]


def _labels(item: dict[str, Any]) -> dict[str, str]:
    labels = item.get("metric", {})
    if not isinstance(labels, dict):
        raise _Malformed("a series whose metric is not an object")
    return {str(k): str(v) for k, v in labels.items()}


def _sample(pair: Any) -> Sample:
    """[1796285415.956, "0.25"]: the value is a string so that NaN and ±Inf survive JSON."""
    if not isinstance(pair, list) or len(pair) != 2:
        raise _Malformed(f"a sample {pair!r} that is not [time, value]")
    try:
        t, v = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        raise _Malformed(f"a sample {pair!r} whose time or value is not a number") from None
    if not math.isfinite(t):
        raise _Malformed(f"a sample {pair!r} without a finite time")
    return Sample(t, v)
