"""What a run resolved once at start-up (the environment, the release, where reports go, the budget), shared by the
options, the fixtures and the report hooks through the pytest config's stash."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from deploy_verify import gate
from deploy_verify.baseline import BaselineSource
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import CheckResult
from deploy_verify.config import Environment
from deploy_verify.release import ReleaseManifest
from deploy_verify.selection import Resolution

if TYPE_CHECKING:
    from deploy_verify.soak import Look, Outcome, Plan


@dataclass
class Run:
    """Everything the run resolved once at start-up; stored on the config, shared by every fixture."""

    env: Environment
    release: ReleaseManifest
    release_file: str | None
    reports: Path
    started: float = field(default_factory=time.time)
    deadline: Deadline | None = None
    rows: dict[str, gate.Row] = field(default_factory=dict)
    baseline: BaselineSource | None = None  # where rollback scenarios read the recorded state from
    allow_mutations: bool = False
    recorded: dict[str, str] = field(default_factory=dict)  # component -> state JSON, from @baseline tests
    unrecorded: list[str] = field(default_factory=list)  # components whose state could not be recorded
    baseline_note: str = ""
    shard: tuple[int, int] | None = None
    env_dir: Path = Path("environments")
    source_verdict: str | None = None  # --source-verdict
    resolution: Resolution = field(default_factory=dict)  # what each selection stood for at collection
    soak: Plan | None = None  # --soak, else the environment's: hold the verdict this long (deploy_verify.soak)
    looks: list[Look] = field(default_factory=list)  # what the passed post-deploy tests looked at, to look again
    soaked: Outcome | None = None  # what the soak found, once it ran (or why it did not)

    def source_verdict_path(self) -> Path | None:
        """Where the verdict of the environment this one promotes from is read: --source-verdict, else
        <reports>/verdict-<promotes_from>.json; None when it promotes from nothing."""
        if self.env.promotes_from is None:
            return None
        return (
            Path(self.source_verdict)
            if self.source_verdict
            else self.reports / f"verdict-{self.env.promotes_from}.json"
        )


RUN = pytest.StashKey[Run]()
RESULTS = pytest.StashKey[list[CheckResult]]()  # the results a test's steps produced, for its summary line
RECORDED = pytest.StashKey[str]()  # a @baseline test's recorded state (JSON), carried to the controller
LOOKS = pytest.StashKey[list["Look"]]()  # a test's verify calls that a soak makes again
