"""One way to read a duration, in YAML (`90s`, `5m`, `1h30m`, `250ms`, a number of seconds) and in Gherkin
(`30 seconds`, `5 minutes`, `1 hour`).

    parse_duration("1m30s") == parse_duration("90 seconds") == 90.0
"""

from __future__ import annotations

import re
from typing import Any

_COMPACT = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?"
    r"\s*(?:(\d+(?:\.\d+)?)ms)?\s*$"
)
_SPOKEN = re.compile(r"^\s*(\d+(?:\.\d+)?) (seconds?|minutes?|hours?)\s*$")
_UNITS = {"second": 1, "minute": 60, "hour": 3600}
PROBLEM = "expected a duration like 30s, 5m or 250ms, got {!r}"


def parse_duration(value: Any) -> float:
    """Seconds, positive; ValueError with one line that shows the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(PROBLEM.format(value))
    seconds = float(value) if isinstance(value, int | float) else _parse_text(str(value))
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def _parse_text(text: str) -> float:
    spoken = _SPOKEN.match(text)
    if spoken:
        return float(spoken.group(1)) * _UNITS[spoken.group(2).rstrip("s")]
    match = _COMPACT.match(text)
    if not match or not any(match.groups()):
        raise ValueError(PROBLEM.format(text))
    hours, minutes, secs, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs + millis / 1000
