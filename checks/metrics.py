"""Metric rules: judge a deploy by what its users feel, from PromQL a team writes.

    rule = MetricRule(
        name="error ratio",
        query='sum(rate(http_requests_total{service="{component}",code=~"5.."}[1m]))'
        ' / sum(rate(http_requests_total{service="{component}"}[1m]))',
        kind="threshold", op="<", value=0.01,
    )
    result = evaluate(client, rule, {"component": "reviews"}, where="metrics:reviews", deadline=deadline)

A rule is a query template and a condition. `threshold`: the query's value must satisfy `op value` (error ratio
< 0.01). `baseline`: the same query over the same length of window ending at the baseline time (when `-m predeploy`
recorded the baseline) gives the reference, and the value must satisfy `op` against the reference moved by the
tolerance in the lenient direction (p95 <= baseline + 20 %), as Argo Rollouts' analysis and Kayenta compare a canary
with its baseline.

Both windows are range queries (`window` seconds, a point every `step`); each series' value is the `aggregate` (mean
by default) of its points that are numbers. What Prometheus returns is read with its own semantics:

- NaN is "no value": 0/0 (a ratio of rates with no traffic in the window) or a quantile of an empty histogram. It does
  not count as a sample, so a window of NaN is "too few samples", an ERROR, never a pass.
- +Inf and -Inf are values: x/0 with x > 0, or a quantile above the highest finite bucket (latency beyond the largest
  `le`). They are compared as they are (+Inf breaks `< 0.3`); a baseline of ±Inf cannot be moved by a tolerance, so
  it makes its series undecidable.
- A point missing from a range (the series was absent at that step: not yet scraped, a target down, stale) is not a
  sample either; an empty result is an ERROR that says so.

Several series (a query `by (route)`) are each judged; the worst verdict stands (ERROR over FAIL over PASS, as
everywhere in the suite), and the message names every series that is not a pass, by its labels. For a baseline rule a
series is compared with the baseline series of the same labels, so labels that change with a deploy (pod, instance)
must be aggregated away in the query; when each window has exactly one series, those two are compared whatever their
labels (one aggregate before, one after).

Placeholders (`{component}`, or any label the caller gives) are only allowed inside quoted strings, where their value
is escaped as PromQL quotes it (and as RE2 does, after `=~` or `!~`): a component name cannot change the query.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict, worst
from deploy_verify.checks.runner import attempt

if TYPE_CHECKING:  # only annotations: loading an environment with metric rules validates them without the transport
    from deploy_verify.checks.transports.prometheus import PrometheusClient, QueryResult, Series

CHECK = "metric_rule"
Op = Literal["<", "<=", ">", ">="]
Kind = Literal["threshold", "baseline"]
Aggregate = Literal["mean", "max", "min", "last"]
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda values: _mean(values),
    "max": max,
    "min": min,
    "last": lambda values: values[-1],
}
# "At the limit" is decided to this relative precision, so that a limit computed as 0.2 * 1.1 (0.22000000000000003)
# still reads as the 0.22 an operator wrote: `<=` passes there, `<` does not.
AT_LIMIT = 1e-9
SHOWN = 5  # series named in one message; the evidence lists them all
ADVICE = "look at what the release changed, its logs and its dashboards; roll back if it holds"
UNDECIDED = (
    "check that the service gets traffic and exports these series, and Prometheus' Status > Targets page (is the "
    "target up and scraped?)"
)
NO_SERIES = (
    "check the labels the query selects against what the service exports, and Prometheus' Status > Targets page (is "
    "the target up and scraped?)"
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")


class TemplateError(ValueError):
    """A query template that cannot be filled safely: a placeholder outside a quoted string, or without a value."""


# --- rules -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the baseline a value may be: `ratio` of the baseline, `absolute` in the query's unit. With
    both, the larger allowance applies (a ratio alone allows nothing on a baseline of 0)."""

    ratio: float = 0.0  # 0.2: up to 20 % worse
    absolute: float = 0.0  # 0.005: up to 0.005 worse

    def allowance(self, baseline: float) -> float:
        return max(self.ratio * abs(baseline), self.absolute)

    def describe(self, sign: str) -> str:
        """'+20 %', '+0.005', '+max(20 %, 0.005)', or '' for none; `sign` is the lenient direction."""
        parts = []
        if self.ratio:
            parts.append(f"{self.ratio * 100:g} %")
        if self.absolute:
            parts.append(f"{self.absolute:g}")
        if not parts:
            return ""
        return f"{sign}{parts[0]}" if len(parts) == 1 else f"{sign}max({', '.join(parts)})"


@dataclass(frozen=True)
class MetricRule:
    """One query and the condition its value must meet. Invalid combinations raise ValueError when it is made."""

    name: str  # how messages call it: "error ratio", "p95 latency"
    query: str  # PromQL with {component}-style placeholders inside quoted strings
    kind: Kind
    op: Op  # the condition that passes: value < threshold, value <= baseline (+ tolerance)
    value: float | None = None  # the threshold (threshold rules only)
    tolerance: Tolerance = field(default_factory=Tolerance)  # baseline rules only
    window: float = 60.0  # seconds judged, now and before the deploy
    step: float = 10.0  # seconds between two points of the window
    min_samples: int = 3  # points that are numbers, per series and window, below which nothing is decided
    aggregate: Aggregate = "mean"  # how a series' points make its value

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(f"metric rule {self.name!r}: {'; '.join(problems)}")

    def problems(self) -> list[str]:
        problems = []
        if self.kind not in ("threshold", "baseline"):
            problems.append(f"kind must be threshold or baseline, not {self.kind!r}")
        if self.op not in OPS:
            problems.append(f"op must be one of {', '.join(OPS)}, not {self.op!r}")
        if self.aggregate not in AGGREGATES:
            problems.append(f"aggregate must be one of {', '.join(AGGREGATES)}, not {self.aggregate!r}")
        if self.kind == "threshold" and (self.value is None or math.isnan(self.value)):
            problems.append("a threshold rule needs a value to compare with")
        if self.kind == "baseline" and self.value is not None:
            problems.append("a baseline rule compares with the baseline window, not a value: use tolerance")
        if self.tolerance.ratio < 0 or self.tolerance.absolute < 0:
            problems.append("tolerance cannot be negative")
        if self.kind == "threshold" and self.tolerance != Tolerance():
            problems.append("tolerance applies to baseline rules only")
        if not (self.step > 0 and self.window >= self.step):
            problems.append(f"need step > 0 and window >= step (window {self.window:g}s, step {self.step:g}s)")
        elif not 1 <= self.min_samples <= self.points():
            problems.append(
                f"min_samples must be between 1 and the {self.points()} points a {self.window:g}s window has at a "
                f"{self.step:g}s step, not {self.min_samples}"
            )
        try:
            fill(self.query, dict.fromkeys(placeholders(self.query), "x"))
        except TemplateError as exc:
            problems.append(str(exc))
        return problems

    def points(self) -> int:
        """Points a range query over the window returns when the series exists at every step."""
        return _points(self.window, self.step)

    def filled(self, labels: Mapping[str, str]) -> str:
        return fill(self.query, labels)

    def condition(self) -> str:
        """'< 0.01', '<= baseline +20 %'."""
        if self.kind == "threshold":
            assert self.value is not None
            return f"{self.op} {_num(self.value)}"
        tolerance = self.tolerance.describe(_lenient_sign(self.op))
        return f"{self.op} baseline{' ' + tolerance if tolerance else ''}"


def placeholders(template: str) -> list[str]:
    return sorted({match.group(1) for match in _PLACEHOLDER.finditer(template)})


def fill(template: str, labels: Mapping[str, str]) -> str:
    """The template with each `{name}` replaced by `labels[name]`, escaped for the string literal it stands in.

    fill('up{service="{component}"}', {"component": 'a"b'})  ->  'up{service="a\\"b"}'
    fill('up{service=~"{component}"}', {"component": "a.b"}) ->  'up{service=~"a\\\\.b"}'
    """
    out: list[str] = []
    quote: str | None = None  # the quote of the string literal we are in
    regex = False  # that literal is a regex matcher's value
    i = 0
    while i < len(template):
        char = template[i]
        match = _PLACEHOLDER.match(template, i)
        if match:
            out.append(_placeholder(template, match, labels, quote, regex))
            i = match.end()
            continue
        out.append(char)
        if quote is None:
            if char in "\"'`":
                quote, regex = char, "".join(out[:-1]).rstrip().endswith(("=~", "!~"))
        elif char == "\\" and quote != "`" and i + 1 < len(template):
            out.append(template[i + 1])  # an escaped character never ends the literal
            i += 1
        elif char == quote:
            quote = None
        i += 1
    if quote is not None:
        raise TemplateError(f"query {template!r} has an unterminated {quote} string")
    return "".join(out)


def _placeholder(template: str, match: re.Match[str], labels: Mapping[str, str], quote: str | None, regex: bool) -> str:
    name = match.group(1)
    where = f"placeholder {{{name}}} at column {match.start() + 1} of query {template!r}"
    if quote is None:
        raise TemplateError(f'{where} is outside a quoted string: write it as a label value, e.g. service="{{{name}}}"')
    if quote == "`":
        raise TemplateError(f"{where} is inside a `raw` string, which cannot escape a value: use double quotes")
    if name not in labels:
        known = ", ".join(sorted(labels)) or "none"
        raise TemplateError(f"{where} has no value (the values given: {known})")
    value = labels[name]
    if regex:
        value = "".join(f"\\{c}" if c in _RE2_SPECIAL else c for c in value)
    return _escape(value, quote)


def _escape(value: str, quote: str) -> str:
    """`value` inside a PromQL string literal quoted with `quote` (Go's escapes, as the PromQL lexer reads them)."""
    out = []
    for char in value:
        if char in ("\\", quote):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


# --- judging -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One series over one window: its value and how many of its points it was made of."""

    series: Series
    value: float  # the aggregate of the points that are numbers; NaN when there are none
    used: int  # points that are numbers (±Inf included)
    nan: int  # points that are NaN
    expected: int  # points the window has when the series exists at every step

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.used - self.nan)

    def evidence(self) -> dict[str, Any]:
        numbers = [s.v for s in self.series.samples if not math.isnan(s.v)]
        return {
            "labels": self.series.describe(),
            "value": _json_number(self.value),
            "samples": self.used,
            "nan_points": self.nan,
            "missing_points": self.missing,
            "min": _json_number(min(numbers)) if numbers else None,
            "max": _json_number(max(numbers)) if numbers else None,
        }


@dataclass(frozen=True)
class _Judged:
    verdict: Verdict
    subject: str  # '{route="/cart"}', or '' for the only series
    text: str  # what was found for it, in words
    excess: float  # how far past the limit (FAIL): the worst first


def summarize(series: Series, aggregate: Aggregate, expected: int) -> Summary:
    numbers = [s.v for s in series.samples if not math.isnan(s.v)]
    nan = len(series.samples) - len(numbers)
    value = AGGREGATES[aggregate](numbers) if numbers else math.nan
    return Summary(series, value, len(numbers), nan, expected)


def judge(rule: MetricRule, now: QueryResult, baseline: QueryResult | None = None, *, where: str) -> CheckResult:
    """The verdict of `rule` on what the queries returned: PASS, FAIL (a series breaks the condition) or ERROR (empty,
    too few samples, no comparable baseline)."""
    asked = f"query {now.query!r}"
    if rule.kind == "baseline" and baseline is None:
        raise ValueError(f"metric rule {rule.name!r} is a baseline rule: judge it with the baseline window's result")
    now_summaries = [summarize(s, rule.aggregate, _expected(now)) for s in now.series]
    base_summaries = [summarize(s, rule.aggregate, _expected(baseline)) for s in baseline.series] if baseline else []
    evidence = (_evidence(rule, now, now_summaries, baseline, base_summaries),)
    if not now.series:
        message = f"{rule.name}: no series for {asked} over {now.window()}; {NO_SERIES}"
        return CheckResult(CHECK, where, Verdict.ERROR, message, evidence, Category.UNDECIDED)
    if baseline is not None and not baseline.series:
        message = (
            f"{rule.name}: no series before the deploy for {asked} over {baseline.window()}, nothing to compare with; "
            f"was the service exporting these metrics then? ({NO_SERIES})"
        )
        return CheckResult(CHECK, where, Verdict.ERROR, message, evidence, Category.UNDECIDED)
    single = len(now_summaries) == 1
    by_labels = {s.series.labels: s for s in base_summaries}
    if single and len(base_summaries) == 1:
        by_labels = {now_summaries[0].series.labels: base_summaries[0]}  # one aggregate each: compare them
    judged = [_judge_series(rule, s, by_labels, single) for s in now_summaries]
    return _result(rule, now, baseline, judged, where, evidence)


def _judge_series(
    rule: MetricRule,
    summary: Summary,
    baselines: Mapping[tuple[tuple[str, str], ...], Summary],
    single: bool,
) -> _Judged:
    subject = "" if single and not summary.series.labels else summary.series.describe()
    few = _too_few(rule, summary)
    if few:
        return _Judged(Verdict.ERROR, subject, few, 0.0)
    found = f"{_num(summary.value)} ({rule.aggregate} of {_samples(summary.used)}{_infinite(summary.value)})"
    if rule.kind == "threshold":
        assert rule.value is not None
        return _compare(rule, subject, summary.value, rule.value, found, "")
    reference = baselines.get(summary.series.labels)
    if reference is None:
        why = (
            "no series with these labels before the deploy (aggregate away labels that change with a deploy, such as "
            "pod or instance)"
        )
        return _Judged(Verdict.ERROR, subject, why, 0.0)
    few = _too_few(rule, reference)
    if few:
        return _Judged(Verdict.ERROR, subject, f"before the deploy, {few}", 0.0)
    if not math.isfinite(reference.value):
        why = f"the baseline is {_num(reference.value)}, which no tolerance can move"
        return _Judged(Verdict.ERROR, subject, why, 0.0)
    sign = _lenient_sign(rule.op)
    limit = _limit(rule, reference.value)
    found += f" vs {_num(reference.value)} before the deploy{_change(summary.value, reference.value)}"
    tolerance = rule.tolerance.describe(sign)
    note = f" (baseline {tolerance})" if tolerance else " (the baseline)"
    if reference.value == 0 and rule.tolerance.absolute == 0 and rule.tolerance.ratio:
        note += "; a ratio tolerance allows nothing on a baseline of 0: add an absolute one"
    return _compare(rule, subject, summary.value, limit, found, note)


def _limit(rule: MetricRule, reference: float) -> float:
    """What a baseline rule allows: the baseline moved by the tolerance in the lenient direction."""
    allowance = rule.tolerance.allowance(reference)
    return reference + allowance if _lenient_sign(rule.op) == "+" else reference - allowance


def _too_few(rule: MetricRule, summary: Summary) -> str | None:
    """Why a series' window decides nothing, or None when it has enough samples."""
    if summary.used >= rule.min_samples and not math.isnan(summary.value):
        return None
    if summary.used >= rule.min_samples:  # +Inf and -Inf in one window: their mean is NaN
        return f"its points mix +Inf and -Inf, their {rule.aggregate} is NaN"
    reasons = []
    if summary.nan:
        reasons.append(f"{summary.nan} NaN (0/0: no traffic in the window, or an empty histogram)")
    if summary.missing:
        reasons.append(f"{summary.missing} missing (the series was absent: not yet scraped, stale, or its target down)")
    why = f": {', '.join(reasons)}" if reasons else ""
    return f"too few samples: {summary.used} of {summary.expected} points are numbers, {rule.min_samples} needed{why}"


def _compare(rule: MetricRule, subject: str, value: float, limit: float, found: str, note: str) -> _Judged:
    at_limit = math.isclose(value, limit, rel_tol=AT_LIMIT, abs_tol=AT_LIMIT * 1e-3)
    holds = at_limit if rule.op in ("<=", ">=") else False
    holds = holds or (not at_limit and OPS[rule.op](value, limit))
    if holds:
        return _Judged(Verdict.PASS, subject, found, 0.0)
    excess = abs(value - limit) if math.isfinite(value - limit) else math.inf
    return _Judged(Verdict.FAIL, subject, f"{found}, not {rule.op} {_num(limit)}{note}", excess)


def _result(
    rule: MetricRule,
    now: QueryResult,
    baseline: QueryResult | None,
    judged: list[_Judged],
    where: str,
    evidence: tuple[Evidence, ...],
) -> CheckResult:
    verdict = worst([CheckResult(CHECK, where, j.verdict, "") for j in judged])
    windows = f"over {now.window()}"
    if baseline is not None:
        windows += f"; before the deploy: {baseline.window()}"
    if verdict is Verdict.PASS:
        message = f"{rule.name} {rule.condition()} holds: {_list(judged)}; {windows}"
        return CheckResult(CHECK, where, verdict, message, evidence)
    failed = sorted((j for j in judged if j.verdict is Verdict.FAIL), key=lambda j: -j.excess)
    undecided = [j for j in judged if j.verdict is Verdict.ERROR]
    parts, advice = [], []
    if failed:
        parts.append(f"{_count(failed, judged, 'fails', 'fail')}{_list(failed)}")
        advice.append(ADVICE)
    if undecided:
        parts.append(f"{_count(undecided, judged, 'cannot be judged', 'cannot be judged')}{_list(undecided)}")
        advice.append(UNDECIDED if not failed else f"for what cannot be judged, {UNDECIDED}")
    head = f"{rule.name}: " if len(judged) == 1 else f"{rule.name} {rule.condition()}: "
    message = f"{head}{'; '.join(parts)}; {windows}; query {now.query!r}; {'; '.join(advice)}"
    category = Category.METRICS if verdict is Verdict.FAIL else Category.UNDECIDED
    return CheckResult(CHECK, where, verdict, message, evidence, category)


def _count(some: list[_Judged], judged: list[_Judged], one: str, several: str) -> str:
    """'2 of 4 series fail: ', or '' when the rule has one series."""
    if len(judged) == 1:
        return ""
    return f"{len(some)} of {len(judged)} series {one if len(some) == 1 else several}: "


def _list(judged: list[_Judged]) -> str:
    shown = [f"{j.subject} {j.text}".strip() for j in judged[:SHOWN]]
    more = f"; and {len(judged) - SHOWN} more (see the evidence)" if len(judged) > SHOWN else ""
    return "; ".join(shown) + more


def _samples(n: int) -> str:
    return f"{n} sample{'' if n == 1 else 's'}"


def _evidence(
    rule: MetricRule,
    now: QueryResult,
    now_summaries: list[Summary],
    baseline: QueryResult | None,
    base_summaries: list[Summary],
) -> Evidence:
    data: dict[str, Any] = {
        "rule": {
            "name": rule.name,
            "kind": rule.kind,
            "condition": rule.condition(),
            "window_s": rule.window,
            "step_s": rule.step,
            "min_samples": rule.min_samples,
            "aggregate": rule.aggregate,
        },
        "now": {**now.evidence(), "series": [s.evidence() for s in now_summaries], "warnings": list(now.warnings)},
    }
    if baseline is not None:
        data["baseline"] = {
            **baseline.evidence(),
            "series": [s.evidence() for s in base_summaries],
            "warnings": list(baseline.warnings),
        }
    return Evidence.as_json(f"metric rule: {rule.name}", data)


# --- asking Prometheus -------------------------------------------------------------------------------------------


def evaluate(
    client: PrometheusClient,
    rule: MetricRule,
    labels: Mapping[str, str],
    *,
    where: str,
    deadline: Deadline,
    now: float | None = None,
    baseline_at: float | None = None,
) -> CheckResult:
    """Query the window ending `now` (default: the current time) and, for a baseline rule, the window ending
    `baseline_at` (unix seconds: `baseline_time(recorded_at)` of the `-m predeploy` baseline), then `judge`.
    What could not be asked is an ERROR (`checks.runner.attempt`)."""
    try:
        query = rule.filled(labels)
    except TemplateError as exc:
        return CheckResult(CHECK, where, Verdict.ERROR, f"{rule.name}: {exc}", (), Category.UNDECIDED)
    if rule.kind == "baseline" and baseline_at is None:
        message = (
            f"{rule.name}: a baseline rule, but no baseline time to compare with; record a baseline before the deploy "
            "with `-m predeploy`"
        )
        return CheckResult(CHECK, where, Verdict.ERROR, message, (), Category.UNDECIDED)
    end = time.time() if now is None else now

    def ask() -> CheckResult:
        current = client.query_range(query, end - rule.window, end, rule.step, deadline)
        before = None
        if baseline_at is not None and rule.kind == "baseline":
            before = client.query_range(query, baseline_at - rule.window, baseline_at, rule.step, deadline)
        return _with_plot(judge(rule, current, before, where=where), rule, current, before)

    return attempt(CHECK, where, ask)  # a Prometheus that did not answer: no series, so no plot


def _with_plot(result: CheckResult, rule: MetricRule, now: QueryResult, baseline: QueryResult | None) -> CheckResult:
    """The result with its series drawn after the JSON evidence, for the Allure step: the shape (a spike, a step at
    the deploy) that one aggregate hides. An empty result is drawn too, as a plot that says it is empty."""
    from deploy_verify.checks import plot  # stdlib only, yet a run that makes no plot should not import it

    threshold = rule.value if rule.kind == "threshold" else _plotted_limit(rule, baseline)
    svg = plot.series_svg(now, baseline, threshold, f"{rule.name} {rule.condition()}", verdict=result.verdict)
    return replace(result, evidence=(*result.evidence, plot.evidence(svg, f"plot: {rule.name}")))


def _plotted_limit(rule: MetricRule, baseline: QueryResult | None) -> float | None:
    """The limit a baseline rule's line is drawn at, when the baseline window has one series judge could use; else
    None: several baseline series each set their own limit, and one too short or infinite sets none."""
    if baseline is None or len(baseline.series) != 1:
        return None
    reference = summarize(baseline.series[0], rule.aggregate, _expected(baseline))
    if _too_few(rule, reference) is not None or not math.isfinite(reference.value):
        return None
    return _limit(rule, reference.value)


def baseline_time(recorded_at: str) -> float:
    """A baseline's `recorded_at` (ISO 8601; UTC when it names no zone) as unix seconds."""
    moment = dt.datetime.fromisoformat(recorded_at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


# --- numbers -----------------------------------------------------------------------------------------------------


def _points(window: float, step: float) -> int:
    return math.floor(window / step + 1e-9) + 1


def _expected(result: QueryResult | None) -> int:
    if result is None or result.instant:
        return 1
    return _points(result.end - result.start, result.step)


def _lenient_sign(op: str) -> str:
    """Which way a tolerance moves the limit: up for an upper bound (< <=), down for a lower one (> >=)."""
    return "+" if op in ("<", "<=") else "-"


def _change(value: float, reference: float) -> str:
    """' (+380 %)' relative to the reference, when both are finite and the reference is not 0."""
    if reference == 0 or not (math.isfinite(value) and math.isfinite(reference)):
        return ""
    return f" ({(value - reference) / abs(reference) * 100:+.0f} %)"


def _mean(values: list[float]) -> float:
    """fsum for precision; a plain sum where an infinity is involved (fsum refuses +Inf + -Inf, which is NaN)."""
    total = math.fsum(values) if all(math.isfinite(v) for v in values) else sum(values)
    return total / len(values)


def _infinite(x: float) -> str:
    """What an infinite value means in Prometheus, for the reader who did not expect one."""
    if math.isinf(x):
        return f"; {_num(x)}: a quantile beyond the highest finite bucket, or a division by 0"
    return ""


def _num(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:.4g}"


def _json_number(x: float) -> float | str:
    """JSON has no NaN or Inf: those are written as Prometheus writes them."""
    return x if math.isfinite(x) else _num(x)
