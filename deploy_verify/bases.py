"""Shared bases for environment files: `extends:` names base files whose keys an environment overrides.

    # environments/staging.yaml
    extends: base/platform.yaml        # relative to this file; a list merges each in turn, later ones winning
    name: staging
    components:
      - {name: payments-api, namespace: payments-staging}   # deep-merged over the base's payments-api
      - {name: legacy-batch, remove: true}                   # the base's legacy-batch is not in staging

Merging happens before validation, so a base need not be an environment (no `name`, no `components`) but every key it
writes is checked once merged. Mappings merge key by key (the extending file wins), scalars and lists are replaced,
except the top-level `components`, merged by `name`: an entry with a base's name deep-merges over it in the base's
place, new names append in order, `{name: X, remove: true}` drops the base's X. Every value keeps its origin
(file shown, line), so a bad value in a base is reported as `environments/base/platform.yaml:12: ...`.
A base path is relative (to the file that names it) and stays inside the repository (the folder holding the
environments folder): a gate must not read whatever an environment file points at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy_verify.yamlsource import Loc, dotted, load_yaml_with_lines

Origin = tuple[str, int]  # (file as shown in messages, line)


class ExtendsError(Exception):
    """A base that cannot be used: missing, not a mapping, a cycle, a bad `extends:` or `remove:`; one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Node:
    """A value and where it was written; containers hold Nodes."""

    value: Any  # dict[Any, Node] | list[Node] | a scalar
    origin: Origin


def load_merged(path: Path, shown: str, root: Path) -> tuple[Any, dict[Loc, Origin]]:
    """Parse `path` (shown as `shown`) and the bases it extends (recursively) into merged plain data and, for every
    key path in it, the origin of its value. `root` is the repository: bases must stay inside it and are shown
    relative to it. Raises YamlSourceError (a file does not parse) or ExtendsError."""
    tree = _Loader(root.resolve()).load(path, shown, ())
    origins: dict[Loc, Origin] = {}
    return _plain(tree, (), origins), origins


def where(lines: Mapping[Loc, int | Origin], loc: Loc, shown: str) -> Origin:
    """Where the value at `loc` was written, or its nearest written ancestor (a missing key is reported where its
    parent is). `lines` is a line map of the file `shown` or an origin map from load_merged."""
    for end in range(len(loc), -1, -1):
        found = lines.get(loc[:end])
        if found is not None:
            return found if isinstance(found, tuple) else (shown, found)
    return (shown, 1)


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.trees: dict[Path, Node] = {}  # a base two environments (or two bases) share is parsed once

    def load(self, path: Path, shown: str, chain: tuple[tuple[Path, str], ...]) -> Node:
        """The file with its bases merged under it; `chain` is the files that led here (for cycles)."""
        resolved = path.resolve()
        chain = (*chain, (resolved, shown))
        tree = self._tree(resolved, shown)
        if not isinstance(tree.value, dict):
            kind = type(_plain(tree, (), {})).__name__  # line 1, as config.validate says it of any file
            raise ExtendsError([f"{shown}:1: expected a mapping at the top level, got {kind}"])
        own = dict(tree.value)
        extends = own.pop("extends", None)
        merged = Node(own, tree.origin)
        if extends is None or extends.value is None:
            return _checked(merged)
        problems: list[str] = []
        under: Node | None = None
        for entry, where in _entries(extends):
            found = self._base(entry, where, shown, chain)
            if isinstance(found, str):
                problems.append(found)
                continue
            try:
                base = self.load(*found, chain)
            except ExtendsError as exc:  # the base's own problems, named by its file; this file's are still listed
                problems += exc.problems
                continue
            under = base if under is None else _merge(under, base, (), problems)
        if problems:
            raise ExtendsError(problems)
        if under is None:
            return _checked(merged)
        result = _merge(under, merged, (), problems)
        if problems:
            raise ExtendsError(problems)
        return result

    def _base(self, entry: Node, where: str, shown: str, chain: tuple[tuple[Path, str], ...]) -> tuple[Path, str] | str:
        """The base file an `extends:` entry names, with how it is shown; or why it cannot be used."""
        target = entry.value
        if not isinstance(target, str) or not target.strip():
            got = _plain(entry, (), {})
            return f"{_at(entry)}: {where}: expected the path of a base file (or a list of them), got {got!r}"
        if Path(target).is_absolute() or target.startswith("~"):
            return f"{_at(entry)}: {where}: {target!r} is not relative; give the base's path relative to {shown}"
        path = chain[-1][0].parent / target
        base_shown, resolved = self._shown(path), path.resolve()
        if not (resolved == self.root or self.root in resolved.parents):
            return (
                f"{_at(entry)}: {where}: {target!r} leads outside the repository; bases are read only from inside it "
                "(e.g. environments/base/)"
            )
        if not resolved.is_file():
            return (
                f"{_at(entry)}: {where}: {target!r}: there is no {base_shown} (a base's path is relative to the file "
                "that extends it)"
            )
        seen = [p for p, _ in chain]
        if resolved in seen:
            names = " -> ".join([*(s for _, s in chain[seen.index(resolved) :]), base_shown])
            return f"{_at(entry)}: {where}: {names} is a cycle; a file cannot extend itself, directly or through a base"
        return resolved, base_shown

    def _tree(self, resolved: Path, shown: str) -> Node:
        if resolved not in self.trees:
            data, lines = load_yaml_with_lines(resolved, shown)
            self.trees[resolved] = _node(data, (), lines, shown)
        return self.trees[resolved]

    def _shown(self, path: Path) -> str:
        """Relative to the repository, as environments/prod.yaml is shown (`..` folded, symlinks left as written)."""
        folded = Path(os.path.normpath(path))
        try:
            return folded.relative_to(self.root).as_posix()
        except ValueError:
            return folded.as_posix()


def _entries(extends: Node) -> list[tuple[Node, str]]:
    """`extends: PATH` or `extends: [PATH, ...]`, each with how a message names it."""
    if isinstance(extends.value, list):
        return [(entry, f"extends[{i}]") for i, entry in enumerate(extends.value)]
    return [(extends, "extends")]


def _checked(tree: Node) -> Node:
    """A file with no base under it: a `remove: true` there has nothing to drop."""
    problems: list[str] = []
    if "components" in tree.value:
        _without_removes(tree.value["components"], problems, {})
    if problems:
        raise ExtendsError(problems)
    return tree


def _at(node: Node) -> str:
    return f"{node.origin[0]}:{node.origin[1]}"


def _node(data: Any, loc: Loc, lines: dict[Loc, int], shown: str) -> Node:
    origin = (shown, lines.get(loc, 1))
    if isinstance(data, dict):
        return Node({k: _node(v, (*loc, str(k)), lines, shown) for k, v in data.items()}, origin)
    if isinstance(data, list):
        return Node([_node(v, (*loc, i), lines, shown) for i, v in enumerate(data)], origin)
    return Node(data, origin)


def _plain(node: Node, loc: Loc, origins: dict[Loc, Origin]) -> Any:
    origins[loc] = node.origin
    if isinstance(node.value, dict):
        return {k: _plain(v, (*loc, str(k)), origins) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v, (*loc, i), origins) for i, v in enumerate(node.value)]
    return node.value


def _merge(base: Node, over: Node, loc: Loc, problems: list[str]) -> Node:
    if not (isinstance(base.value, dict) and isinstance(over.value, dict)):
        return over
    merged: dict[Any, Node] = {}  # the extending file's keys in its order, then those only the base writes
    for key, value in over.value.items():
        if loc == () and key == "components":
            merged[key] = merge_components(base.value.get(key), value, problems)
        else:
            merged[key] = _merge(base.value[key], value, (*loc, str(key)), problems) if key in base.value else value
    merged.update((key, value) for key, value in base.value.items() if key not in merged)
    return Node(merged, over.origin)


REMOVE = "remove"


def merge_components(base: Node | None, over: Node, problems: list[str]) -> Node:
    """`components` by name: an entry named like a base's deep-merges over it in the base's place (once: a name written
    twice in one file stays twice, for validation to report), new names append in order, `{name: X, remove: true}`
    drops the base's X. Anything that is not a list of named mappings is replaced, for validation to report."""
    if base is None or not isinstance(base.value, list) or not isinstance(over.value, list):
        return _without_removes(over, problems, {})
    result: list[Node | None] = list(base.value)
    by_name: dict[str, int] = {}
    for i, entry in enumerate(base.value):
        name = _name_of(entry)
        if name is not None:
            by_name.setdefault(name, i)
    appended: list[Node] = []
    for i, entry in enumerate(over.value):
        name = _name_of(entry)
        if _is_remove(entry):
            if _remove_problem(entry, i, name, by_name, problems):
                continue
            assert name is not None
            result[by_name.pop(name)] = None
        elif name is not None and name in by_name:
            at = by_name.pop(name)
            previous = result[at]
            assert previous is not None
            result[at] = _merge(previous, entry, ("components", at), problems)
        else:
            appended.append(entry)
    return Node([n for n in result if n is not None] + appended, over.origin)


def _without_removes(over: Node, problems: list[str], by_name: dict[str, int]) -> Node:
    """Components with no base list under them: a `remove: true` has nothing to drop."""
    if isinstance(over.value, list):
        for i, entry in enumerate(over.value):
            if _is_remove(entry):
                _remove_problem(entry, i, _name_of(entry), by_name, problems)
    return over


def _name_of(entry: Node) -> str | None:
    if isinstance(entry.value, dict) and "name" in entry.value and isinstance(entry.value["name"].value, str):
        return str(entry.value["name"].value)
    return None


def _is_remove(entry: Node) -> bool:
    return isinstance(entry.value, dict) and REMOVE in entry.value


def _remove_problem(entry: Node, i: int, name: str | None, by_name: dict[str, int], problems: list[str]) -> bool:
    """Why this `remove:` entry cannot drop a base's component (appended to problems), or False when it can."""
    flag = entry.value[REMOVE]
    where = dotted(("components", i))
    others = sorted(str(k) for k in entry.value if k not in ("name", REMOVE))
    if flag.value is not True:
        problems.append(f"{_at(flag)}: {where}.remove: expected true (drop the base's component), got {flag.value!r}")
    elif name is None:
        problems.append(f"{_at(entry)}: {where}: remove: true needs the name of the base's component to drop")
    elif others:
        problems.append(
            f"{_at(entry)}: {where}: remove: true drops the base's {name!r} and takes no other keys; got "
            f"{', '.join(others)}"
        )
    elif name not in by_name:
        problems.append(
            f"{_at(entry)}: {where}: {name!r} is not a component of the bases (or is already merged above), so there "
            "is nothing to remove"
        )
    else:
        return False
    return True


def show_environment(name: str, env_dir: Path) -> str:
    """`--show-env`: the environment as merged from its bases, validated (ConfigError as for a run), each value with
    the file and line it came from as an end-of-line comment. Only the files are shown: they hold no secrets, and
    nothing is read from the process environment."""
    from deploy_verify.config import load_environment

    load_environment(name, env_dir)  # the same checks as a run: a file that would be refused is not shown as fine
    data, origins = load_merged(env_dir / f"{name}.yaml", f"{env_dir.name}/{name}.yaml", env_dir.parent)
    files = list(dict.fromkeys(file for file, _ in origins.values()))
    head = f"# {files[0]}" + (f", merged over {', '.join(files[1:])}" if files[1:] else "")
    return "\n".join([head, *_aligned(_render(data, (), 0, origins))]) + "\n"


Line = tuple[str, Origin | None]  # text, and the origin its comment names


def _render(value: Any, loc: Loc, indent: int, origins: dict[Loc, Origin]) -> list[Line]:
    """Block YAML, one value a line; a key whose value is a non-empty mapping or list carries no comment of its own
    (each value under it has one)."""
    pad = " " * indent
    out: list[Line] = []
    if isinstance(value, dict):
        for key, item in value.items():
            sub = (*loc, str(key))
            if _is_block(item):
                out.append((f"{pad}{_scalar(key)}:", None))
                out += _render(item, sub, indent + 2, origins)
            else:
                out.append((f"{pad}{_scalar(key)}: {_scalar(item)}", origins.get(sub)))
    else:
        for i, item in enumerate(value):
            sub = (*loc, i)
            if not _is_block(item):
                out.append((f"{pad}- {_scalar(item)}", origins.get(sub)))
                continue
            inner = _render(item, sub, indent + 2, origins)
            if isinstance(item, dict):  # the first key on the dash's line, as written by hand
                first, origin = inner[0]
                inner[0] = (f"{pad}- {first[indent + 2 :]}", origin)
                out += inner
            else:
                out += [(f"{pad}-", None), *inner]
    return out


def _is_block(value: Any) -> bool:
    return isinstance(value, (dict, list)) and bool(value)


def _scalar(value: Any) -> str:
    """One flow scalar on one line (a string with a line break or a control character double-quoted with escapes)."""
    if isinstance(value, str) and not value.isprintable():
        return json.dumps(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True)
    return str(text).removesuffix("\n").removesuffix("\n...").strip()


def _aligned(lines: list[Line]) -> list[str]:
    """Comments in one column (up to 60 characters in), so the origins read as a list of their own."""
    column = min(max((len(text) for text, origin in lines if origin), default=0), 60)
    return [f"{text.ljust(column)}  # {origin[0]}:{origin[1]}" if origin else text for text, origin in lines]
