"""A command-line tool run as a transport (helm template, tofu plan): bounded on the wall clock, killed as a group.

    done = run_bounded(["helm", "template", ...], timeout=120, what="helm template shop ./chart")
    done.returncode, done.stdout, done.stderr

`subprocess.run(timeout=...)` kills only the direct child: a tool that starts plugins or providers (tofu runs each
provider as its own process) would leave them running, holding the pipes open, so the call would not return on
time. Here the command gets a session of its own and the whole group is killed when the time is up.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ProcessTimeout(Exception):
    """The command was still running when its time was up; it and everything it started were killed."""


class ProcessMissing(Exception):
    """The binary is not there (or not executable)."""


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str

    def last_lines(self, count: int = 6) -> str:
        """The end of stderr (else stdout), without colour codes: where a tool says why it stopped."""
        text = ANSI.sub("", self.stderr.strip() or self.stdout.strip())
        lines = [line.strip() for line in text.splitlines() if line.strip() and set(line.strip()) - set("│╵╷─")]
        return " | ".join(line.lstrip("│ ").strip() for line in lines[-count:]) or f"exit status {self.returncode}"


def run_bounded(
    command: Sequence[str],
    timeout: float,
    what: str,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> Done:
    """Run `command` to its end or until `timeout` seconds have passed on the wall clock, whichever is first."""
    try:
        process = subprocess.Popen(  # noqa: S603 - a configured binary; arguments come from the environment file
            list(command),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ProcessMissing(f"{what}: cannot run {command[0]}: {exc.strerror or exc}") from exc
    try:
        stdout, stderr = process.communicate(stdin, timeout=max(timeout, 0.01))
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise ProcessTimeout(f"{what}: still running after {timeout:.0f}s; it was stopped") from None
    except BaseException:
        _kill_group(process)
        raise
    return Done(process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(process.pid, signal.SIGKILL)
