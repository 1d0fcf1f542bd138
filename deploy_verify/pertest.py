"""What each test costs beyond its own check, cut where the answer is the same for every test (issue 17, part 3).

An estate run is hundreds of tests of the same few scenarios, each of which takes a millisecond of network-free
judging; the rest of a test's cost is bookkeeping, and two parts of it did the same work for every test:

- pytest-bdd finds a step's definition by asking pytest, for every registered fixture name, which definitions the
  test can see, and matching each against the step's text: about a hundred fixture lookups per step, per test, with
  the same answer for every test of one feature file (step definitions live in plugins and conftests, registered
  before the first test runs). The answer is kept per (feature file, step type, step text) and reused.
- pytest-bdd reads each step function's signature (`inspect.signature`, which rebuilds it from the code object)
  twice per step, per test. A function's signature does not change: it is read once per function.
- allure-commons writes each result with `json.dump` to a file, which runs Python's pure-Python encoder (the C one
  is only used by `json.dumps`), and the test waits for the file's creation: together a third of the time the Allure
  listener spent per test. The same document is now rendered by `json.dumps` (the same bytes, through the C
  encoder) and written by a thread of its own, flushed before the session ends.

Each only replaces how an answer is found, never what it is: tested against the uncached lookup and allure's own
writer (tests/test_pertest.py). Each keeps to the versions requirements.lock pins; a pytest-bdd or allure-commons
without the function replaced here is left as it is (the run is slower, never different)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from deploy_verify.files import write_text_atomic

_Finder = Callable[[Any, Any, Any], Iterable[Any]]


def cached_step_lookup(find: _Finder, registry: Any) -> _Finder:
    """`find(step, fixturemanager, node)` answered once per (feature file node, step type, step text).

    What a test can see of the step definitions depends on its parents (fixtures are visible from the node that
    registered them down); every test of a feature file has the same parents, and step definitions are registered
    at collection. A step definition registered later (a plugin's late import) changes the registry's size, and with
    it the key, so it is seen."""
    answers: dict[tuple[int, str, str, str, int], tuple[Any, ...]] = {}

    def lookup(step: Any, fixturemanager: Any, node: Any) -> Iterable[Any]:
        parent = node.parent if node.parent is not None else node
        key = (id(fixturemanager), parent.nodeid, str(step.type), step.name, len(registry))
        found = answers.get(key)
        if found is None:
            found = answers[key] = tuple(find(step, fixturemanager, node))
        return iter(found)

    lookup.answers = answers  # type: ignore[attr-defined]  # for the tests: how many distinct lookups were made
    return lookup


def install_step_lookup_cache() -> bool:
    """Route pytest-bdd's step lookup through the cache; False where this pytest-bdd has no such function."""
    import importlib

    try:
        # By module path: the package's `scenario` attribute is the decorator of that name, not the module.
        scenario = importlib.import_module("pytest_bdd.scenario")
        from pytest_bdd.steps import step_function_context_registry
    except ImportError:  # pragma: no cover - pytest-bdd is a dependency
        return False
    original = getattr(scenario, "find_fixturedefs_for_step", None)
    if original is None or getattr(original, "answers", None) is not None:
        return original is not None
    setattr(scenario, "find_fixturedefs_for_step", cached_step_lookup(original, step_function_context_registry))  # noqa: B010
    return True


def install_signature_cache() -> bool:
    """pytest-bdd's `signature` (in its scenario and utils modules) answered once per step function."""
    import importlib
    import inspect

    cached = functools.lru_cache(maxsize=4096)(inspect.signature)
    installed = False
    for name in ("pytest_bdd.scenario", "pytest_bdd.utils"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - pytest-bdd is a dependency
            continue
        if getattr(module, "signature", None) is inspect.signature:  # not already replaced, not another function
            setattr(module, "signature", cached)  # noqa: B010
            installed = True
    return installed


class FileWriter:
    """Writes files on a thread of its own, in the order given, so a test does not wait for the disk (on a CI
    runner's network disk a file's creation can cost more than the test). Each file is written whole under a
    temporary name and renamed, so nothing reading the directory sees half a file. `flush()` waits until every file
    given is on disk, and raises the first write that failed: a report missing results is not a report."""

    def __init__(self) -> None:
        import queue
        import threading

        self._queue: queue.SimpleQueue[tuple[Path, str] | None] = queue.SimpleQueue()
        self._failed: BaseException | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="allure-writer", daemon=True)
        self._thread.start()

    def write(self, path: Path, text: str) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put((path, text))

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            path, text = job
            try:
                write_text_atomic(path, text)
            except BaseException as exc:  # noqa: BLE001  # kept for flush(), which raises it where pytest sees it
                self._failed = self._failed or exc
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()

    def flush(self, timeout: float = 60.0) -> None:
        if not self._idle.wait(timeout):
            raise RuntimeError(f"Allure results: {self._pending} files not written after {timeout:.0f}s")
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise RuntimeError(f"Allure results could not be written: {failed}") from failed


WRITER = pytest.StashKey[FileWriter]()


def render_item(item: Any) -> tuple[str, str]:
    """(file name, text) of what allure-commons' AllureFileLogger._report_item writes: the same bytes, through the
    C JSON encoder (`json.dump` to a file runs the pure-Python one)."""
    import uuid

    from attr import asdict

    indent = 4 if os.environ.get("ALLURE_INDENT_OUTPUT") else None
    data = asdict(item, filter=lambda _, v: v or v is False)
    return item.file_pattern.format(prefix=uuid.uuid4()), json.dumps(data, indent=indent, ensure_ascii=False)


def write_item(report_dir: Path, item: Any, writer: FileWriter | None = None) -> None:
    """Render on the caller's thread (the result is final once allure hands it over), write on the writer's."""
    filename, text = render_item(item)
    if writer is None:
        write_text_atomic(report_dir / filename, text)
    else:
        writer.write(report_dir / filename, text)


def speed_up_allure_writer(writer: FileWriter | None = None) -> int:
    """Give every registered Allure file logger the faster writer; how many there were."""
    try:
        import allure_commons
        from allure_commons.logger import AllureFileLogger
    except ImportError:  # pragma: no cover - allure-pytest-bdd is a dependency
        return 0
    loggers = [p for p in allure_commons.plugin_manager.get_plugins() if isinstance(p, AllureFileLogger)]
    for logger in loggers:
        if not hasattr(logger, "_report_dir"):
            continue  # not the writer this module knows: leave it alone
        faster = functools.partial(write_item, logger._report_dir, writer=writer)
        setattr(logger, "_report_item", faster)  # noqa: B010
    return len(loggers)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """After allure-pytest-bdd registered its logger (its own pytest_configure), before the first test."""
    install_step_lookup_cache()
    install_signature_cache()
    if getattr(config.option, "allure_report_dir", None):
        writer = config.stash[WRITER] = FileWriter()
        speed_up_allure_writer(writer)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every test's result on disk before anything reads the directory (the run's own Allure files, the report)."""
    writer = session.config.stash.get(WRITER, None)
    if writer is not None:
        writer.flush()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Also on the way out of a run that ended early (a usage error after configure, an interrupt)."""
    writer = config.stash.get(WRITER, None)
    if writer is not None:
        writer.flush()
