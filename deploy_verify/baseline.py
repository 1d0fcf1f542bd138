"""reports/baseline-<env>.json: written by a `-m predeploy` run, read by `-m rollback` and the rollback drill.

    source = BaselineSource(Path("reports/baseline-prod.json"), "prod")
    recorded, recorded_at = source.entry("payments-api")     # BaselineMissing says how to record one

Each `@baseline` test hands its component's state to the controller through its report (so it works the same under
xdist); the controller writes the file once, atomically, at the end of the run, and only when every component could
be recorded: a half-recorded baseline would make a later rollback check pass or fail for the wrong reason.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import TypeAdapter

from deploy_verify.checks.baseline import Baseline, ComponentState
from deploy_verify.config import ConfigError, validate
from deploy_verify.files import write_json_atomic
from deploy_verify.yamlsource import YamlSourceError, load_yaml_with_lines

STATE_PROPERTY = "baseline_state"  # the report user property that carries one component's recorded state
STATE = TypeAdapter(ComponentState)


class BaselineMissing(Exception):
    """No usable baseline (or no entry for a component): the rollback cannot be judged, an ERROR."""


def baseline_path(reports: Path, env: str) -> Path:
    return reports / f"baseline-{env}.json"


def how_to_record(env: str) -> str:
    return f"record one before the deploy with `pytest features --env {env} -m predeploy`"


class BaselineSource:
    """The baseline file of one run, loaded on first use (only rollback scenarios need it)."""

    def __init__(self, path: Path, env: str) -> None:
        self.path = path
        self.env = env
        self._loaded: Baseline | None = None
        self._problem: str | None = None

    def load(self) -> Baseline:
        if self._loaded is None and self._problem is None:
            try:
                self._loaded = load_baseline(self.path, self.env)
            except BaselineMissing as exc:
                self._problem = str(exc)
        if self._problem is not None:
            raise BaselineMissing(self._problem)
        assert self._loaded is not None
        return self._loaded

    def entry(self, component: str) -> tuple[ComponentState, str]:
        baseline = self.load()
        if component not in baseline.components:
            raise BaselineMissing(
                f"the baseline {self.path} of {baseline.recorded_at} has no entry for {component!r} (it has: "
                f"{', '.join(sorted(baseline.components)) or 'none'}); {how_to_record(self.env)}"
            )
        return baseline.components[component], baseline.recorded_at


def load_baseline(path: Path, env: str) -> Baseline:
    if not path.is_file():
        raise BaselineMissing(f"no baseline for environment {env!r} at {path}; {how_to_record(env)}")
    try:
        data, lines = load_yaml_with_lines(path)  # JSON is YAML: the same loader gives line numbers
        baseline = validate(Baseline, data, lines, str(path))
    except YamlSourceError as exc:
        raise BaselineMissing(f"baseline {exc}; {how_to_record(env)}") from exc
    except ConfigError as exc:
        raise BaselineMissing(f"baseline {path} is malformed: {'; '.join(exc.problems)}; {how_to_record(env)}") from exc
    if baseline.environment != env:
        raise BaselineMissing(
            f"baseline {path} was recorded for environment {baseline.environment!r}, not {env!r}; {how_to_record(env)}"
        )
    return baseline


def write_baseline(path: Path, env: str, release: str | None, states: dict[str, str]) -> Baseline:
    """Validate the recorded states (JSON, one per component) and write the file atomically."""
    baseline = Baseline(
        environment=env,
        recorded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        release=release,
        components={name: STATE.validate_json(states[name]) for name in sorted(states)},
    )
    write_json_atomic(path, baseline.model_dump(mode="json"))
    return baseline
