"""Writing the suite's output files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """`text` written beside `path` and renamed over it: a reader (CI, a promotion, the report) never sees half a
    file. The directory must exist."""
    partial = path.with_suffix(f"{path.suffix}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def write_json_atomic(path: Path, document: Any) -> None:
    """Pretty JSON, written atomically (write_text_atomic), its directory made if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")
