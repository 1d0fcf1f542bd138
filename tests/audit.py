"""The testbed API servers' audit logs, read while the servers are still writing them.

An API server appends one JSON event per line; a read can land in the middle of an append, so the last line may be
incomplete. Only lines that end in a newline are events: the partial one is read again on the next poll."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLUSTERS = ROOT / ".testbed" / "state" / "kwok" / "clusters"


def audit_log(cluster: str, state: Path | None = None) -> Path:
    clusters = state / "kwok" / "clusters" if state is not None else CLUSTERS
    return clusters / cluster / "logs" / "audit.log"


def audit_events(log: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The complete events in `log` (the newest `last` of them when given); none when the log does not exist yet."""
    try:
        text = log.read_text()
    except FileNotFoundError:
        return []
    complete = text[: text.rfind("\n") + 1].splitlines()
    lines = complete[-last:] if last else complete
    return [json.loads(line) for line in lines if line.strip()]
