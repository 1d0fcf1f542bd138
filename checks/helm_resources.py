"""Helm release resources: every object the latest revision rendered exists, is healthy, and is as rendered.

    result = check_helm_resources(reader, HelmRef("shop", "storefront"), deadline, allow_suspended={"report"})

Helm's own record (checks.helm) says only what Helm did: a release whose pods all crash-loop is `deployed`, and so
is one patched by hand after an upgrade or a rollback. This check reads the objects themselves:

- the manifest of the latest revision (the release Secret, decoded by checks.helm) is split into its objects; empty
  documents and hooks (annotation helm.sh/hook: Helm runs and deletes them, the release does not keep them) are
  left out, a `kind: List` counts as its items, and a namespaced object without a namespace is in the release's;
- each object is looked up in ONE cached LIST per (kind, namespace), shared with every other check; never a GET
  per object. Secrets are listed narrowed to the label Helm puts on what it manages (KubeReader never lists every
  Secret), and their data is never compared nor shown;
- health is the kind's published status (checks.status.judge); a Deployment, DaemonSet or StatefulSet is also
  judged by its pods, as checks.pods does (CrashLoopBackOff, ImagePullBackOff, restarts ...), naming pod and reason;
- drift: the fields the manifest sets are compared with the live object (the API server defaults the rest, and
  controllers add labels and annotations, so only what was rendered is compared): the labels and annotations it
  sets, spec.replicas (unless an HPA targets the workload: it owns the count), the pod template (containers, env,
  ports, volumes ... matched by their merge keys; resource quantities by value, "500m" == "0.5"), a CronJob's
  schedule and job template, a Service's spec, a ConfigMap's data.

One result per release: PASS says how many objects of which kinds are healthy and as rendered; FAIL gives a line per
problem after a one-line summary, and the per-object table as evidence. An object whose health cannot be judged
(a custom resource without a status the suite knows) makes the result an ERROR when nothing else is wrong.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import yaml

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.helm import HelmRef, HelmRevision, UnreadableRelease, release_history
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.rollout import workload_evidence
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.status import State, judge, where_of_object
from deploy_verify.checks.transports.kube import KubeReader, Listing, Obj, UnknownResource
from deploy_verify.checks.workloads import WorkloadRef, read_workload

CHECK = "helm_resources"
HOOK = "helm.sh/hook"
# Helm labels every object it creates or adopts with this (and annotates it with meta.helm.sh/release-*): the
# only Secrets this check lists, so a release's Secret is found without reading every key of the namespace.
HELM_MANAGED = "labels:app.kubernetes.io/managed-by=Helm"
WORKLOADS = {"Deployment": "deployment", "DaemonSet": "daemonset", "StatefulSet": "statefulset"}
SCALED = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})  # kinds whose spec.replicas an HPA may own
PODS_SHOWN = 3  # pod problems named per workload; the rest are counted
SHOWN = 80  # characters of a value in a message

Problem = Literal["missing", "unhealthy", "drift", "undecided"]
# How a problem files the result (the first of these found, in this order): an object that is not there is a failed
# install; a hand-made change is a wrong version of what was released; an unhealthy object is a stuck rollout.
CATEGORIES: dict[Problem, Category] = {
    "missing": Category.PROVISIONING,
    "drift": Category.WRONG_VERSION,
    "unhealthy": Category.ROLLOUT_STUCK,
    "undecided": Category.UNDECIDED,
}


# --- the manifest --------------------------------------------------------------------------------------------------


class _ManifestLoader(yaml.SafeLoader):
    """YAML as Helm's sigs.k8s.io/yaml reads it into JSON: an unquoted date stays a string, never a datetime."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Manifest:
    objects: list[Obj]  # what the release keeps, in manifest order
    hooks: list[str] = field(default_factory=list)  # "Job/db-migrate": left out


def parse_manifest(manifest: str) -> Manifest:
    """A revision's rendered manifest (documents separated by `---`) -> the objects the release keeps."""
    try:
        documents = list(yaml.load_all(manifest, Loader=_ManifestLoader))  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise UnreadableRelease(f"the release manifest is not YAML ({exc})") from exc
    found = Manifest([])
    for document in _flattened(documents):
        if not isinstance(document, dict) or not document.get("kind") or not _name(document):
            raise UnreadableRelease(f"the release manifest holds a document that is no object: {_show(document)}")
        annotations = (document.get("metadata") or {}).get("annotations") or {}
        if HOOK in annotations:
            found.hooks.append(f"{document['kind']}/{_name(document)}")
        else:
            found.objects.append(document)
    return found


def _flattened(documents: Iterable[Any]) -> Iterable[Any]:
    """Empty documents dropped; a `kind: List` (v1 List, or any *List with items) counts as its items, as kubectl and
    Helm's resource builder apply them."""
    for document in documents:
        if document is None or document == {}:
            continue
        if isinstance(document, dict) and str(document.get("kind", "")).endswith("List") and "items" in document:
            yield from _flattened(document.get("items") or [])
            continue
        yield document


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


# --- drift: the rendered object is a subset of the live one -------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "(not set)"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Difference:
    path: str  # spec.template.spec.containers[web].image
    live: Any  # MISSING when the live object lacks it
    rendered: Any  # MISSING when the release did not render it (an extra key of a map compared exactly)

    def line(self, cause: str | None = None) -> str:
        """`cause`: why live differs when it is known (a revision Helm never applied), else the commands that make
        such a change by hand."""
        if self.live is MISSING:
            said = f"{self.path} is not set live, the release rendered {_show(self.rendered)}"
        elif self.rendered is MISSING:
            said = f"{self.path} is {_show(self.live)} live, the release did not render it"
        else:
            said = f"{self.path} is {_show(self.live)} live, the release rendered {_show(self.rendered)}"
        return f"{said} ({cause or 'changed outside Helm: ' + _how_changed(self.path)})"

    def row(self) -> dict[str, Any]:
        return {"field": self.path, "live": _shown(self.live), "rendered": _shown(self.rendered)}


def _how_changed(path: str) -> str:
    """The commands that make such a change: what to look for in the audit log or the shell history."""
    if path.endswith(".image"):
        return "kubectl edit/patch/set image?"
    if path == "spec.replicas":
        return "kubectl scale/edit/patch?"
    if ".env[" in path:
        return "kubectl set env/edit/patch?"
    if ".resources." in path:
        return "kubectl set resources/edit/patch?"
    if path.startswith("metadata.labels") or path.startswith("metadata.annotations"):
        return "kubectl label/annotate/edit?"
    return "kubectl edit/patch/apply?"


# The merge key of each list in the objects compared (Kubernetes' strategic-merge keys): an element is matched with
# the live element of the same key, wherever the API server or a webhook put it, and an element a webhook added (a
# sidecar) is never "drift". Ports are keyed with their protocol, as the API server validates them.
LIST_KEYS: dict[str, Callable[[Obj], str | None]] = {
    "containers": lambda o: o.get("name"),
    "initContainers": lambda o: o.get("name"),
    "ephemeralContainers": lambda o: o.get("name"),
    "env": lambda o: o.get("name"),
    "volumes": lambda o: o.get("name"),
    "imagePullSecrets": lambda o: o.get("name"),
    "resourceClaims": lambda o: o.get("name"),
    "volumeMounts": lambda o: o.get("mountPath"),
    "volumeDevices": lambda o: o.get("devicePath"),
    "hostAliases": lambda o: o.get("ip"),
    "ports": lambda o: _port_key(o),
}
QUANTITY_MAPS = frozenset({"limits", "requests", "capacity"})  # maps whose values are resource.Quantity
QUANTITY_FIELDS = frozenset({"sizeLimit"})


def _port_key(port: Obj) -> str | None:
    number = port.get("containerPort", port.get("port"))
    if number is None:
        return None
    protocol = str(port.get("protocol") or "TCP")
    return str(number) if protocol == "TCP" else f"{number}/{protocol}"


def subset_drift(rendered: Any, live: Any, path: str) -> list[Difference]:
    """Where `live` differs from what was `rendered`, looking only at what was rendered: a map's keys the manifest
    does not set, a keyed list's elements it does not name, are the API server's defaults or another controller's
    and never count. A rendered empty value (null, "", {}, []) sets nothing (the API server drops or fills it); a
    rendered false or 0 matches a live field the API server omitted (omitempty)."""
    if _unset(rendered):
        return []
    if live is MISSING or live is None:
        return (
            [] if rendered is False or (_number(rendered) and rendered == 0) else [Difference(path, MISSING, rendered)]
        )
    if isinstance(rendered, dict):
        if not isinstance(live, dict):
            return [Difference(path, live, rendered)]
        found: list[Difference] = []
        for key, value in rendered.items():
            child = f"{path}.{key}" if path else str(key)
            if _is_quantity(path, str(key)) and key in live and same_quantity(value, live[key]):
                continue
            found += subset_drift(value, live.get(key, MISSING), child)
        return found
    if isinstance(rendered, list):
        return _list_drift(rendered, live, path)
    return [] if _same_scalar(rendered, live) else [Difference(path, live, rendered)]


def _list_drift(rendered: list[Any], live: Any, path: str) -> list[Difference]:
    if not isinstance(live, list):
        return [Difference(path, live, rendered)]
    field_name = path.rsplit(".", 1)[-1]
    key_of = LIST_KEYS.get(field_name)
    if key_of is not None and all(isinstance(item, dict) and key_of(item) is not None for item in rendered):
        live_by_key = {key_of(item): item for item in live if isinstance(item, dict)}
        found: list[Difference] = []
        for item in rendered:
            key = key_of(item)
            counterpart = live_by_key.get(key)
            if counterpart is None:
                found.append(Difference(f"{path}[{key}]", MISSING, item))
            else:
                found += subset_drift(item, counterpart, f"{path}[{key}]")
        return found
    if not all(isinstance(item, dict) for item in rendered):
        # A list of values (command, args, accessModes): its order is part of it.
        same = len(rendered) == len(live) and all(_same_scalar(a, b) for a, b in zip(rendered, live, strict=True))
        return [] if same else [Difference(path, live, rendered)]
    # A list of objects without a merge key (tolerations, affinity terms): each rendered one must be in the live list.
    unmatched = [item for item in rendered if not any(not subset_drift(item, other, "") for other in live)]
    return [Difference(path, live, rendered)] if unmatched else []


def exact_map_drift(rendered: Any, live: Any, path: str) -> list[Difference]:
    """A map the release owns as a whole (a ConfigMap's data, a Service's selector): a key added live is drift too."""
    rendered_map = rendered if isinstance(rendered, dict) else {}
    live_map = live if isinstance(live, dict) else {}
    found: list[Difference] = []
    for key in sorted(set(rendered_map) | set(live_map), key=str):
        mine, theirs = rendered_map.get(key, MISSING), live_map.get(key, MISSING)
        if mine is MISSING or theirs is MISSING or not _same_scalar(mine, theirs):
            found.append(Difference(f"{path}.{key}", theirs, mine))
    return found


def drift(rendered: Obj, live: Obj) -> list[Difference]:
    """The differences of one object that count, by its kind. spec.replicas is among them: the caller drops it when
    an HPA owns the count."""
    kind = str(rendered.get("kind"))
    metadata, live_metadata = rendered.get("metadata") or {}, live.get("metadata") or {}
    found: list[Difference] = []
    for part in ("labels", "annotations"):
        found += subset_drift(metadata.get(part), live_metadata.get(part, MISSING), f"metadata.{part}")
    spec, live_spec = rendered.get("spec") or {}, live.get("spec") or {}
    if kind in WORKLOADS or kind == "ReplicaSet":
        if kind in SCALED and "replicas" in spec:
            found += subset_drift(spec["replicas"], live_spec.get("replicas", MISSING), "spec.replicas")
        found += subset_drift(spec.get("template"), live_spec.get("template", MISSING), "spec.template")
    elif kind == "CronJob":
        found += subset_drift(spec.get("schedule"), live_spec.get("schedule", MISSING), "spec.schedule")
        found += subset_drift(spec.get("jobTemplate"), live_spec.get("jobTemplate", MISSING), "spec.jobTemplate")
    elif kind == "Service":
        others = {k: v for k, v in spec.items() if k != "selector"}
        found += subset_drift(others, {k: v for k, v in live_spec.items() if k != "selector"}, "spec")
        if "selector" in spec:
            found += exact_map_drift(spec["selector"], live_spec.get("selector"), "spec.selector")
    elif kind == "ConfigMap":
        for part in ("data", "binaryData"):
            if part in rendered or part in live:
                found += exact_map_drift(rendered.get(part), live.get(part), part)
    return found


# Kubernetes resource.Quantity: a decimal number, then a binary (Ki ... Ei), decimal (n u m k M G T P E) or exponent
# suffix. Compared by value: the API server stores "0.5" as "500m" and "1024Mi" as "1Gi".
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{suffix: Decimal(1024) ** (i + 1) for i, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}


def parse_quantity(value: Any) -> Decimal | None:
    """'500m' -> 0.5, '1Gi' -> 1073741824, 2 -> 2, '1e3' -> 1000; None when it is no quantity."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number) * Decimal(10) ** int(suffix[1:])
        return Decimal(number) * _SUFFIXES[suffix]
    except (InvalidOperation, ValueError):
        return None


def same_quantity(a: Any, b: Any) -> bool:
    first, second = parse_quantity(a), parse_quantity(b)
    return first is not None and first == second


def _is_quantity(path: str, key: str) -> bool:
    return path.rsplit(".", 1)[-1] in QUANTITY_MAPS or key in QUANTITY_FIELDS


def _unset(value: Any) -> bool:
    return value is None or value is MISSING or (isinstance(value, str | dict | list) and len(value) == 0)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_scalar(a: Any, b: Any) -> bool:
    """Equal as JSON values: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return not subset_drift(a, b, "") and not subset_drift(b, a, "")
    return bool(a == b)


def _shown(value: Any) -> Any:
    return None if value is MISSING else value


def _show(value: Any) -> str:
    """A value in a message: a string as is when short and on one line, anything else as compact JSON, cut."""
    if value is MISSING:
        return "(not set)"
    text = value if isinstance(value, str) and "\n" not in value else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


# --- the check -----------------------------------------------------------------------------------------------------


@dataclass
class _Row:
    """One rendered object as judged: a line of the evidence table."""

    where: str
    state: str = "Current"
    problems: list[tuple[Problem, str]] = field(default_factory=list)
    drift: list[Difference] = field(default_factory=list)
    note: str = ""

    def add(self, problem: Problem, text: str) -> None:
        self.problems.append((problem, f"{self.where}: {text}"))

    def table(self) -> dict[str, Any]:
        row: dict[str, Any] = {"object": self.where, "state": self.state, "problems": [t for _, t in self.problems]}
        if self.drift:
            row["drift"] = [d.row() for d in self.drift]
        if self.note:
            row["note"] = self.note
        return row


def check_helm_resources(
    reader: KubeReader,
    ref: HelmRef,
    deadline: Deadline,
    allow_suspended: Iterable[str] = (),
    max_restarts: int = 3,
) -> CheckResult:
    allowed = frozenset(allow_suspended)
    return attempt(
        CHECK,
        ref.where,
        lambda: _judge(reader, ref, deadline, allowed, max_restarts),
        undecidable="{}; is the release stored by another driver?",
    )


def _judge(
    reader: KubeReader, ref: HelmRef, deadline: Deadline, allowed: frozenset[str], max_restarts: int
) -> CheckResult:
    history = release_history(reader, ref, deadline)
    if not history:
        message = f"no Helm release {ref.name!r} in namespace {ref.namespace!r}"
        return CheckResult(CHECK, ref.where, Verdict.FAIL, message, category=Category.PROVISIONING)
    latest = history[0]
    manifest = parse_manifest(latest.manifest)
    rows: list[_Row] = []
    extra: list[Evidence] = []
    for rendered in manifest.objects:
        rows.append(_judge_object(reader, ref, latest, rendered, deadline, allowed, max_restarts, extra))
    return _result(ref, latest, manifest, rows, extra)


def _judge_object(
    reader: KubeReader,
    ref: HelmRef,
    latest: HelmRevision,
    rendered: Obj,
    deadline: Deadline,
    allowed: frozenset[str],
    max_restarts: int,
    extra: list[Evidence],
) -> _Row:
    kind, name = str(rendered["kind"]), _name(rendered)
    try:
        key = reader.resource(str(rendered.get("apiVersion", "")), kind, deadline)
    except UnknownResource as exc:
        namespace = (rendered.get("metadata") or {}).get("namespace") or ref.namespace
        row = _Row(where_of_object({"kind": kind, "metadata": {"name": name, "namespace": namespace}}), "Unknown")
        row.add("undecided", f"{exc}; the release rendered it, so the cluster should serve it")
        return row
    namespace = _namespace_of(rendered, ref, reader.namespaced(key))
    row = _Row(where_of_object({"kind": kind, "metadata": {"name": name, "namespace": namespace}}))
    live = _live(reader, key, namespace, deadline).named(name)
    if live is None and kind == "Job" and (rendered.get("spec") or {}).get("ttlSecondsAfterFinished") is not None:
        # The TTL controller deletes a finished Job (Complete or Failed alike): gone is what the chart asked for.
        row.state = "removed after it finished"
        row.note = "ttlSecondsAfterFinished: the TTL controller deleted it once it finished; its outcome is gone too"
        return row
    if live is None:
        row.state = "missing"
        row.add("missing", f"rendered by release {ref.name} revision {latest.revision} but not in the cluster")
        return row
    # Items of a LIST of a built-in kind carry no kind or apiVersion; the rule of each kind needs them.
    live = {
        **live,
        "kind": live.get("kind") or kind,
        "apiVersion": live.get("apiVersion") or rendered.get("apiVersion"),
    }
    judgment = judge(live, reader, deadline, may_suspend=name in allowed)
    row.state = str(judgment.state)
    if judgment.state is State.FAILED:
        row.add("unhealthy", judgment.reason)
    elif judgment.state is State.IN_PROGRESS:
        row.add("unhealthy", f"not ready yet: {judgment.reason}")
    elif judgment.state is State.UNKNOWN:
        row.add("undecided", f"its health cannot be judged: {judgment.reason}")
    if kind in WORKLOADS and namespace is not None:
        _judge_pods(reader, WorkloadRef(WORKLOADS[kind], namespace, name), deadline, max_restarts, row, extra)
    differences = drift(rendered, live)
    if any(d.path == "spec.replicas" for d in differences) and namespace is not None:
        scaler = _autoscaler(reader, namespace, kind, name, deadline)
        if scaler is not None:
            # The HPA owns spec.replicas: it changes it by design, and Helm leaves it be (a chart with an HPA
            # should not render replicas at all), so a count other than the rendered one is not drift.
            differences = [d for d in differences if d.path != "spec.replicas"]
            row.note = f"spec.replicas is owned by HorizontalPodAutoscaler {scaler}"
    row.drift = differences
    # A revision Helm did not finish (failed, pending-*) explains every difference: no one needs to have touched it.
    cause = None if latest.status == "deployed" else f"revision {latest.revision} is {latest.status}: not applied"
    for difference in differences:
        row.add("drift", difference.line(cause))
    return row


def _judge_pods(
    reader: KubeReader, ref: WorkloadRef, deadline: Deadline, max_restarts: int, row: _Row, extra: list[Evidence]
) -> None:
    """The pods' own states, as the pods check judges them: a crash loop is named with its pod and reason even while
    the workload's status only says "not available"."""
    view = read_workload(reader, ref, deadline)
    problems = view.problems(max_restarts, view.active_pods)
    for problem in problems[:PODS_SHOWN]:
        row.add("unhealthy", problem.line())
    if len(problems) > PODS_SHOWN:
        row.add("unhealthy", f"{len(problems) - PODS_SHOWN} more pod problems (see the evidence)")
    if problems:
        extra.extend(workload_evidence(view))


def _namespace_of(rendered: Obj, ref: HelmRef, namespaced: bool) -> str | None:
    """Where Helm put it: its own namespace, else the release's; a cluster-scoped object has none."""
    if not namespaced:
        return None
    return str((rendered.get("metadata") or {}).get("namespace") or ref.namespace)


def _live(reader: KubeReader, key: str, namespace: str | None, deadline: Deadline) -> Listing:
    # A Secret is read from the list of what Helm manages: KubeReader refuses a bare Secret LIST (every key).
    select = HELM_MANAGED if key == "secrets" else ""
    return reader.listing(key, namespace, deadline, select=select)


def _autoscaler(reader: KubeReader, namespace: str, kind: str, name: str, deadline: Deadline) -> str | None:
    """The HPA (of the release or not: KEDA makes its own) whose scaleTargetRef is this workload. Listed only when the
    replica count differs, so a release without drift costs no extra request."""
    for hpa in reader.listing("horizontalpodautoscalers", namespace, deadline).items:
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if target.get("kind") == kind and target.get("name") == name:
            return str(hpa["metadata"]["name"])
    return None


def _result(
    ref: HelmRef, latest: HelmRevision, manifest: Manifest, rows: list[_Row], extra: list[Evidence]
) -> CheckResult:
    table = {
        "revision": latest.revision,
        "status": latest.status,
        "hooks (not judged)": manifest.hooks,
        "objects": [row.table() for row in rows],
    }
    evidence = (Evidence.as_json(f"{ref.where} revision {latest.revision} objects", table), *extra)
    problems = [p for row in rows for p in row.problems]
    revision = f"revision {latest.revision}" + ("" if latest.status == "deployed" else f" ({latest.status})")
    if not problems:
        kinds = Counter(row.where.split(":", 1)[0] for row in rows)
        counted = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "nothing"
        hooks = f"; hooks not judged: {', '.join(manifest.hooks)}" if manifest.hooks else ""
        message = f"{revision}: {len(rows)} objects healthy and as rendered ({counted}){hooks}"
        return CheckResult(CHECK, ref.where, Verdict.PASS, message, evidence)
    kinds_found = {kind for kind, _ in problems}
    category = next(CATEGORIES[k] for k in CATEGORIES if k in kinds_found)
    if category is Category.WRONG_VERSION and latest.status != "deployed":
        category = Category.PROVISIONING  # not changed by hand: an upgrade that failed, as checks.helm files it
    failing = [r for r in rows if any(k != "undecided" for k, _ in r.problems)]
    undecided = [r for r in rows if any(k == "undecided" for k, _ in r.problems)]
    if failing:
        summary = f"{revision}: {len(failing)} of {len(rows)} rendered objects are not healthy or not as rendered"
        verdict = Verdict.FAIL
    else:
        summary = f"{revision}: the health of {len(undecided)} of {len(rows)} rendered objects cannot be judged"
        verdict = Verdict.ERROR
    if latest.status != "deployed":
        summary += f" (the revision is {latest.status}: what it rendered may never have been applied)"
    message = "\n".join([summary, *(text for _, text in problems)])
    return CheckResult(CHECK, ref.where, verdict, message, evidence, category)
