"""Selections: a component that stands for a set, resolved once per run into one component per member.

    - name: altinn
      kind: daemonset
      select: {clusters: all, namespaces: [default], labels: "app in (altinn-authentication, altinn-resource-registry)"}
      release_key: label:app

becomes `altinn-authentication@platform-prod-01`, `altinn-resource-registry@platform-prod-01`, ... with one test per
(scenario, member). The set is read once, on the xdist controller (or the only process), before tests are collected,
and handed to every worker as it is (`pytest_configure_node`): workers that resolved on their own could see different
sets and xdist would abort on the difference. The reads are the checks' own shared lists (one LIST per kind and
namespace; labels are matched here, so the same list serves the checks afterwards).

A selection that matches nothing, or that could not be read, stays one component whose every check is an ERROR with
the reason: an empty set never passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category
from deploy_verify.checks.runner import Absent, Undecidable
from deploy_verify.checks.transports import TransportError
from deploy_verify.config import Component, Environment

WORKERINPUT_KEY = "deploy_verify_selection"  # where the controller hands the resolved sets to xdist workers


class SelectorSyntaxError(ValueError):
    """A label selector kubectl would refuse; the message says which part."""


# --- label selectors (the syntax of kubectl -l and of the API's labelSelector parameter) --------------------------

_KEY = r"(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?"
_VALUE = r"(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?"
_SET = re.compile(rf"^\s*(!?)\s*({_KEY})\s*(?:(notin|in)\s*\((.*)\))?\s*$")
_EQUALITY = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # in, notin, exists, !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        # As the API server decides: `!=` and `notin` also match objects without the label at all.
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!exists":
            return self.key not in labels
        if self.operator == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]
    text: str

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)


def parse_labels(selector: str | Mapping[str, str] | None) -> LabelSelector:
    """A selector string (`app in (a,b),release=x,!canary`) or a {label: value} mapping; None selects everything."""
    if selector is None:
        return LabelSelector((), "")
    if isinstance(selector, Mapping):
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        return parse_labels(text) if text else LabelSelector((), "")
    requirements = [_requirement(part) for part in _split(selector)]
    return LabelSelector(tuple(requirements), selector.strip())


def _split(text: str) -> list[str]:
    """Commas separate requirements, except inside a set's parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    if any(not p.strip() for p in parts):
        raise SelectorSyntaxError(f"empty requirement in label selector {text!r}")
    return parts


def _requirement(part: str) -> Requirement:
    equality = _EQUALITY.match(part)
    if equality:
        key, operator, value = equality.group(1), equality.group(4), equality.group(5)
        return Requirement(key, "notin" if operator == "!=" else "in", frozenset({value}))
    found = _SET.match(part)
    if found is None:
        raise SelectorSyntaxError(
            f"{part.strip()!r} is not a label selector requirement (key, !key, key=value, key!=value, "
            "key in (a,b), key notin (a,b))"
        )
    negated, key, operator, values = found.group(1), found.group(2), found.group(5), found.group(6)
    if operator is None:
        return Requirement(key, "!exists" if negated else "exists")
    if negated:
        raise SelectorSyntaxError(f"{part.strip()!r}: '!' only negates a bare key (!key)")
    items = [v.strip() for v in values.split(",")]
    if not all(items) or not all(re.fullmatch(_VALUE, v) for v in items):
        raise SelectorSyntaxError(f"{part.strip()!r}: the set needs values like (a, b)")
    return Requirement(key, operator, frozenset(items))


# --- members ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One object a selection matched, as the kind adapter read it."""

    kind: str  # the member's component kind (a selection over several workload kinds has members of each)
    name: str  # the object's own name: workload, Helm release, app
    labels: dict[str, str] = field(default_factory=dict)  # Kubernetes labels, or Azure tags
    cluster: str | None = None
    namespace: str | None = None
    resource_group: str | None = None


@dataclass(frozen=True)
class Member:
    """A resolved member, in the form handed to workers (JSON)."""

    name: str
    kind: str
    object_name: str
    release_as: str | None
    cluster: str | None = None
    namespace: str | None = None
    resource_group: str | None = None


@dataclass(frozen=True)
class Resolved:
    """What one selection stood for at collection: its members, or why it has none."""

    members: tuple[Member, ...] = ()
    problem: str | None = None
    category: str | None = None

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]


Resolution = dict[str, Resolved]  # selection (component) name -> what it resolved to


def selections(env: Environment) -> list[Component]:
    return [c for c in env.components if c.select is not None]


def resolve(env: Environment, clients: Any, deadline: Deadline) -> Resolution:
    """Every selection of the environment, read now. A selection that cannot be read is recorded with the reason,
    never dropped: its checks become ERRORs."""
    from deploy_verify.kinds import kind_of

    resolution: Resolution = {}
    for component in selections(env):
        assert component.select is not None
        try:
            found = kind_of(component).select(component, scope(env, component), clients, deadline)
        except (TransportError, Undecidable, Absent) as exc:  # Absent: a resource group that is not there
            category = getattr(exc, "category", Category.UNREACHABLE)
            resolution[component.name] = Resolved(
                problem=f"the selection could not be read: {exc}", category=str(category)
            )
            continue
        members = _members(component, found)
        if not members:
            keys = "resource groups and tags" if component.select.resource_groups else "labels and namespaces"
            resolution[component.name] = Resolved(
                problem=f"the selection matches nothing: {describe(env, component)}; check the {keys} under "
                "`select:`, and that the release was deployed where the environment says",
                category=str(Category.UNDECIDED),
            )
        else:
            resolution[component.name] = Resolved(tuple(members))
    return resolution


def scope(env: Environment, component: Component) -> list[str]:
    """The clusters a Kubernetes selection looks in (`clusters: all` is every cluster of the environment)."""
    assert component.select is not None
    wanted = component.select.clusters
    if wanted == "all":
        return sorted(env.clusters)
    if wanted:
        return list(wanted)
    return [component.cluster] if component.cluster else []


def describe(env: Environment, component: Component) -> str:
    """The selection in words, for the ERROR that says it matched nothing."""
    assert component.select is not None
    select = component.select
    parts: list[str] = []
    if select.resource_groups:
        parts.append(f"{component.kind} in resource group(s) {', '.join(select.resource_groups)}")
        if select.tags:
            parts.append("tagged " + ", ".join(f"{k}={v}" for k, v in select.tags.items()))
        return " ".join(parts)
    kinds = ", ".join(select.kinds or [component.kind])
    parts.append(f"no {kinds} in namespace(s) {', '.join(select.namespaces)}")
    labels = parse_labels(select.labels).text
    if labels:
        parts.append(f"with labels {labels}")
    parts.append(f"on cluster(s) {', '.join(scope(env, component)) or '(none)'}")
    return " ".join(parts)


def _members(component: Component, found: list[Found]) -> list[Member]:
    """Members named `<object>@<cluster or resource group>`; where that is not unique (several namespaces or kinds
    hold the same name), the namespace and then the kind are added, so every id is unique and stable."""
    assert component.select is not None

    def place(f: Found) -> str:
        return str(f.cluster or f.resource_group)

    def label(f: Found, *qualifiers: str) -> str:
        return ".".join([f.name, *qualifiers]) + f"@{place(f)}"

    names = [label(f) for f in found]
    if len(set(names)) < len(names):
        names = [label(f, str(f.namespace)) if f.namespace else label(f) for f in found]
    if len(set(names)) < len(names):
        names = [label(f, *([str(f.namespace)] if f.namespace else []), f.kind) for f in found]
    members = [
        Member(name, f.kind, f.name, _release_key(component, f), f.cluster, f.namespace, f.resource_group)
        for name, f in zip(names, found, strict=True)
    ]
    return sorted(members, key=lambda m: m.name)


def _release_key(component: Component, found: Found) -> str | None:
    """The member's key in the release manifest, by the component's `release_key` rule."""
    rule = component.release_key or "name"
    if rule == "name":
        return found.name
    _, _, key = rule.partition(":")
    return found.labels.get(key)


def expand(env: Environment, resolution: Resolution) -> Environment:
    """The environment with each selection replaced by its members (or kept, marked unresolved, when it has none)."""
    components: list[Component] = []
    for component in env.components:
        if component.select is None:
            components.append(component)
            continue
        resolved = resolution.get(component.name) or Resolved(problem="the selection was not resolved")
        if resolved.problem is not None:
            components.append(_unresolved(env, component, resolved))
            continue
        components += [_member(component, member) for member in resolved.members]
    expanded = env.model_copy(update={"components": components})
    expanded._selections = {c.name: c for c in selections(env)}
    expanded._by_name = {}
    return expanded


def _member(component: Component, member: Member) -> Component:
    update: dict[str, Any] = {"name": member.name, "kind": member.kind, "select": None}
    update |= {"cluster": member.cluster, "namespace": member.namespace, "resource_group": member.resource_group}
    update[member_key(member.kind)] = member.object_name
    made = component.model_copy(update=update)
    made._member_of, made._release_as = component.name, member.release_as
    return made


def member_key(kind: str) -> str:
    """The component key that names a member's object, for its kind."""
    from deploy_verify.kinds import KINDS

    return str(getattr(KINDS[kind], "object_key", "workload"))


def _unresolved(env: Environment, component: Component, resolved: Resolved) -> Component:
    # A place the shard split knows already (the first cluster or resource group looked in), so every shard and
    # worker deals the same localities whether the selection resolved or not.
    assert component.select is not None
    clusters = scope(env, component)
    update: dict[str, Any] = {}
    if clusters and component.cluster is None:
        update["cluster"] = clusters[0]
    if component.select.namespaces and component.namespace is None:
        update["namespace"] = component.select.namespaces[0]
    if component.select.resource_groups and component.resource_group is None:
        update["resource_group"] = component.select.resource_groups[0]
    made = component.model_copy(update=update)
    made._member_of = component.name
    made._unresolved = (str(resolved.problem), resolved.category or str(Category.UNDECIDED))
    return made


def dumps(resolution: Resolution) -> str:
    return json.dumps({name: asdict(r) for name, r in resolution.items()}, sort_keys=True)


def loads(text: str) -> Resolution:
    data = json.loads(text)
    return {
        name: Resolved(tuple(Member(**m) for m in r["members"]), r["problem"], r["category"])
        for name, r in data.items()
    }
