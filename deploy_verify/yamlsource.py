"""YAML with line numbers: plain data plus a map from each key path to the line it was written on.

    data, lines = load_yaml_with_lines(Path("environments/prod.yaml"))
    lines[("components", 2, "kind")]  # -> 14

Duplicate keys are rejected here (PyYAML keeps the last one silently, which hides copy-paste mistakes). YAML merge
keys work as https://yaml.org/type/merge.html says: `<<: *base` inserts the keys of the anchored mapping the mapping
does not write itself, `<<: [*a, *b]` merges each in turn (a key of an earlier one wins); a key written twice is
still a duplicate. A merged value's line is where it was written (under the anchor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]
# libyaml's parser when PyYAML was built with it (5-10x faster on large estates); same nodes, same marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlSourceError(Exception):
    """Unparseable YAML or a duplicate key; the message starts with `file:line:`."""


def load_yaml_with_lines(path: Path, display: str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse `path` (shown as `display` in messages) into plain data and a line map."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlSourceError(f"{shown}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlSourceError(
            f"{shown}:{line}: not UTF-8: byte {raw[exc.start]:#04x} at column {column}; save the file as UTF-8"
        ) from None
    try:
        return _parse(text, shown, _Loader)
    except yaml.YAMLError:
        if _Loader is yaml.SafeLoader:
            raise
    # libyaml words its errors differently; the pure-Python parser's message is the one users and tests see.
    return _parse(text, shown, yaml.SafeLoader)


def _parse(text: str, shown: str, loader_class: Any) -> tuple[Any, dict[Loc, int]]:
    loader = None
    try:
        loader = loader_class(text)  # the reader already refuses control characters here
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        data = _plain(node, (), lines, loader, shown) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        if loader_class is not yaml.SafeLoader:
            raise
        raise YamlSourceError(f"{shown}:{line}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.reader.ReaderError as exc:
        if loader_class is not yaml.SafeLoader:
            raise
        line = text[: exc.position].count("\n") + 1
        raise YamlSourceError(
            f"{shown}:{line}: invalid YAML: character {exc.character:#06x} is not allowed ({exc.reason})"
        ) from exc
    except yaml.YAMLError as exc:
        if loader_class is not yaml.SafeLoader:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise YamlSourceError(f"{shown}: invalid YAML: {first}") from exc
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


MERGE_TAG = "tag:yaml.org,2002:merge"


def _plain(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], loader: Any, shown: str, path: frozenset[int] = frozenset()
) -> Any:
    lines[loc] = node.start_mark.line + 1
    if id(node) in path:  # `&a {b: *a}`: PyYAML composes it as a loop; plain data cannot hold one
        raise YamlSourceError(f"{shown}:{lines[loc]}: {_dotted(loc)}: an alias refers to the node that holds it")
    inner = path | {id(node)}
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key, value_node in _pairs(node, loc, loader, shown):
            result[key] = _plain(value_node, (*loc, str(key)), lines, loader, shown, inner)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*loc, i), lines, loader, shown, inner) for i, item in enumerate(node.value)]
    return loader.construct_object(node)


def _pairs(
    node: yaml.MappingNode, loc: Loc, loader: Any, shown: str, seen: frozenset[int] = frozenset()
) -> list[tuple[Any, yaml.Node]]:
    """The mapping's keys and value nodes after its merge keys: merged ones first (as PyYAML orders them), each only
    where the mapping does not write the key itself; a key written twice explicitly is a duplicate. Not
    `loader.flatten_mapping`: it splices merged pairs into the node, where they look like duplicates of the
    overriding keys."""
    written: dict[Any, yaml.Node] = {}
    sources: list[yaml.Node] = []
    merge_written = False
    for key_node, value_node in node.value:
        if key_node.tag == MERGE_TAG:
            if merge_written:
                raise YamlSourceError(f"{shown}:{key_node.start_mark.line + 1}: {_dotted((*loc, '<<'))}: duplicate key")
            merge_written = True
            sources = list(value_node.value) if isinstance(value_node, yaml.SequenceNode) else [value_node]
            continue
        key = loader.construct_object(key_node)
        if key in written:
            line = key_node.start_mark.line + 1
            raise YamlSourceError(f"{shown}:{line}: {_dotted((*loc, str(key)))}: duplicate key")
        written[key] = value_node
    merged: dict[Any, yaml.Node] = {}
    for source in sources:
        if not isinstance(source, yaml.MappingNode):
            what = "a list" if isinstance(source, yaml.SequenceNode) else f"{source.value!r}"
            raise YamlSourceError(
                f"{shown}:{source.start_mark.line + 1}: {_dotted((*loc, '<<'))}: expected an alias of a mapping "
                f"(<<: *base) or a list of them (<<: [*a, *b]), got {what}"
            )
        if id(source) in seen or source is node:
            raise YamlSourceError(
                f"{shown}:{source.start_mark.line + 1}: {_dotted((*loc, '<<'))}: merges the mapping that holds it"
            )
        for key, value_node in _pairs(source, loc, loader, shown, seen | {id(node)}):
            merged.setdefault(key, value_node)  # an earlier source wins
    return [*((k, v) for k, v in merged.items() if k not in written), *written.items()]


def _dotted(loc: Loc) -> str:
    """('components', 2, 'kind') -> 'components[2].kind'."""
    text = ""
    for part in loc:
        if not isinstance(part, int):
            part = _shown_key(part)
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def _shown_key(key: str) -> str:
    """A key as typed, unless it is empty or holds spaces or control characters: then quoted, so a stray `\r` or a
    trailing space is visible and the message stays on one line."""
    return key if key and key.isprintable() and not any(c.isspace() for c in key) else repr(key)


dotted = _dotted


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of `loc`, or of its nearest written ancestor (a missing key is reported where its parent is)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1
