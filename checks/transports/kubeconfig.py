"""The run's kubeconfig, read once: every cluster's client is built from one parse of the files, whatever the
number of clusters.

    configure(configuration, context="aks-prod-weu", kubeconfig=None)   # $KUBECONFIG or ~/.kube/config

The Kubernetes client's own loader (`new_client_from_config`) reads and parses every file of $KUBECONFIG again for
each client it builds, with PyYAML's pure-Python parser, and then finds the context by a linear scan. For an estate
of one merged kubeconfig with a context per cluster, that is quadratic: 617 ms per cluster at 200 contexts, 123 of a
131 s run (issue 17). Here the files are parsed once per process (LibYAML's C parser where PyYAML has it) and merged
into maps by name; a client's configuration holds its own context, cluster and user only, so building it costs the
same at 1 or 1000 contexts.

Merging follows kubectl's rules for $KUBECONFIG (kubernetes.io, "Organizing Cluster Access Using kubeconfig Files"):
files in list order, empty entries and files that do not exist are skipped, and a cluster, context or user is taken
from the first file that defines that name. Each entry remembers its file, so a relative certificate path resolves
against the directory of the file it was written in, as kubectl does. A file whose size or modification time changes
is read again (a long run may outlive an `az aks get-credentials`).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# LibYAML: the same YAML, parsed in C; PyYAML built without it falls back to the pure-Python parser.
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DEFAULT = Path("~/.kube/config")
SECTIONS = ("clusters", "contexts", "users")


class KubeconfigProblem(Exception):
    """A kubeconfig that cannot be used for a context: unreadable, not YAML, or without that context."""


@dataclass(frozen=True)
class Entry:
    """One named cluster, context or user, and the file it came from (relative paths resolve against it)."""

    value: dict[str, Any]
    file: str


@dataclass
class Merged:
    """Every file of one kubeconfig list, merged: name -> entry for each section."""

    files: tuple[str, ...]
    sections: dict[str, dict[str, Entry]] = field(default_factory=lambda: {s: {} for s in SECTIONS})

    def contexts(self) -> list[str]:
        return sorted(self.sections["contexts"])


def paths_for(kubeconfig: str | None) -> tuple[str, ...]:
    """The files to read: the environment's `kubeconfig:` alone, else $KUBECONFIG's list, else ~/.kube/config."""
    if kubeconfig is not None:
        return (kubeconfig,)
    return _listed(os.environ.get("KUBECONFIG", ""))


@functools.lru_cache(maxsize=64)
def _listed(value: str) -> tuple[str, ...]:
    """$KUBECONFIG's files, split and expanded once per value (an estate's list can name a file per cluster)."""
    listed = [p for p in value.split(os.pathsep) if p]
    return tuple(str(Path(p).expanduser()) for p in listed) or (str(DEFAULT.expanduser()),)


_cache: dict[tuple[tuple[str, int, int], ...], Merged] = {}
_checked: dict[tuple[str, ...], tuple[float, tuple[tuple[str, int, int], ...]]] = {}
_lock = threading.Lock()  # clients may be built from several threads (a concurrent prefetch)
# How long a look at the files' sizes and times holds: building 200 clients from 200 files would otherwise make
# 40000 stat calls, one per file per client. A kubeconfig written again (`az aks get-credentials`) is seen this
# much later at most.
RECHECK_S = 1.0


def merged(paths: tuple[str, ...]) -> Merged:
    """The files merged, parsed once per process while none of them changes."""
    now = time.monotonic()
    with _lock:
        seen = _checked.get(paths)
        if seen is not None and now - seen[0] < RECHECK_S and seen[1] in _cache:
            return _cache[seen[1]]
    stamps = tuple(_stamp(p) for p in paths)
    with _lock:
        _checked[paths] = (now, stamps)
        found = _cache.get(stamps)
        if found is None:
            found = _cache[stamps] = _merge([p for p, size, _ in stamps if size >= 0])
        return found


def _stamp(path: str) -> tuple[str, int, int]:
    try:
        status = Path(path).stat()
    except OSError:
        return (path, -1, 0)  # absent: skipped, as kubectl skips a $KUBECONFIG entry that does not exist
    return (path, status.st_size, status.st_mtime_ns)


def _merge(paths: list[str]) -> Merged:
    result = Merged(tuple(paths))
    for path in paths:
        document = _parse(path)
        for section in SECTIONS:
            entries = document.get(section) or []
            if not isinstance(entries, list):
                raise KubeconfigProblem(f"{path}: {section} is not a list")
            known = result.sections[section]
            for entry in entries:
                if not isinstance(entry, dict) or "name" not in entry:
                    raise KubeconfigProblem(f"{path}: every entry of {section} needs a name")
                known.setdefault(str(entry["name"]), Entry(entry, path))  # the first file to name it wins
    return result


def _parse(path: str) -> dict[str, Any]:
    try:
        with Path(path).open(encoding="utf-8") as handle:
            document = yaml.load(handle, Loader=SafeLoader)  # noqa: S506 - CSafeLoader: the safe loader, in C
    except OSError as exc:
        raise KubeconfigProblem(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise KubeconfigProblem(f"kubeconfig {path} is not YAML: {exc.problem}{at}") from exc
    except yaml.YAMLError as exc:
        raise KubeconfigProblem(f"kubeconfig {path} is not YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise KubeconfigProblem(f"kubeconfig {path} is empty or not a mapping")
    return document


def client_config(context: str, kubeconfig: str | None) -> Any:
    """What the Kubernetes client's KubeConfigLoader needs for `context`: that context, its cluster and its user,
    each with the file it came from. KubeconfigProblem says what is missing."""
    from kubernetes.config.kube_config import ConfigNode

    node: Any = ConfigNode  # untyped; `path` is the file relative certificate paths resolve against
    files = paths_for(kubeconfig)
    config = merged(files)
    if not config.files:
        raise KubeconfigProblem(f"no kubeconfig file exists of: {', '.join(files)}")
    where = kubeconfig or "(default)"
    wanted = config.sections["contexts"].get(context)
    if wanted is None:
        known = ", ".join(config.contexts()) or "none"
        raise KubeconfigProblem(f"kubeconfig {where} has no context {context!r}; known contexts: {known}")
    body = wanted.value.get("context") or {}
    picked = {"contexts": [wanted]}
    for section, key in (("clusters", "cluster"), ("users", "user")):
        name = body.get(key)
        entry = config.sections[section].get(str(name)) if name is not None else None
        if entry is None and section == "clusters":
            raise KubeconfigProblem(f"kubeconfig {where}: context {context!r} names cluster {name!r}, which it lacks")
        picked[section] = [entry] if entry is not None else []
    document = {
        section: [node(f"{e.file}/{section}[name={e.value['name']}]", e.value, e.file) for e in entries]
        for section, entries in picked.items()
    }
    return node("kubeconfig", {**document, "current-context": context}, wanted.file)


def configure(configuration: Any, context: str, kubeconfig: str | None) -> None:
    """Fill a kubernetes.client.Configuration for `context` (server, credentials, TLS files), as the client's own
    loader would, from the parse shared by the whole run. KubeconfigProblem, or the client's ConfigException."""
    from kubernetes.config import kube_config

    # config_base_path=None: each entry's own file is the base of its relative paths (the loader's default, "",
    # would resolve them against the working directory).
    make: Any = kube_config.KubeConfigLoader  # untyped
    loader = make(config_dict=client_config(context, kubeconfig), active_context=context, config_base_path=None)
    loader.load_and_set(configuration)
