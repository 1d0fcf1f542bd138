"""What a deploy is about to apply, as objects: a Helm chart rendered with the environment's values, or a folder of
plain manifests. Nothing here talks to the cluster except through the shared reader (its version and API groups,
so the chart renders as it would there: `.Capabilities.KubeVersion`, `.Capabilities.APIVersions.Has`).

    manifests = render_chart(helm, ChartSource(release, namespace, chart, values), reader, deadline)
    manifests = read_folder(path, namespace)

Each object keeps where it came from (`templates/deployment.yaml` from helm's `# Source:` comment, or the file and
document index) so a finding names the line of code to change, not only the object.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.helm import HelmRef, HelmRevision, release_history
from deploy_verify.checks.runner import Undecidable
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.checks.transports.process import ProcessMissing, ProcessTimeout, run_bounded

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class RenderFailed(Exception):
    """The chart or folder does not turn into objects (a template error, bad YAML): the deploy would fail too, so
    this is a FAIL of the policy check, with the tool's own words."""


class CannotRender(Undecidable):
    """No helm to render with, or it did not finish in time: the suite could not find out (ERROR)."""


@dataclass(frozen=True)
class Manifest:
    obj: Obj
    source: str  # "templates/deployment.yaml" or "manifests/web.yaml#2"
    # What the YAML itself gets wrong that every parser on the way hides: a key given twice (PyYAML, kubectl and
    # helm all keep the last value without a word)
    parse_problems: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "?")

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "?")

    @property
    def namespace(self) -> str | None:
        namespace = (self.obj.get("metadata") or {}).get("namespace")
        return str(namespace) if namespace else None

    @property
    def ident(self) -> str:
        """KIND/NAMESPACE/NAME (KIND/NAME without a namespace): what silences match and messages say."""
        parts = [self.kind, *([self.namespace] if self.namespace else []), self.name]
        return "/".join(parts)


@dataclass(frozen=True)
class ChartFacts:
    """The chart about to be deployed (Chart.yaml's version, its templates' digests) and the release running."""

    version: str
    templates: tuple[tuple[str, str], ...]
    deployed: HelmRevision | None = None
    expected_version: str | None = None  # the release manifest's chart version


@dataclass(frozen=True)
class Pending:
    """What a deploy of one component is about to apply, and for a chart, what is known about its version."""

    manifests: list[Manifest]
    chart: ChartFacts | None = None


@dataclass(frozen=True)
class ChartSource:
    release: str
    namespace: str
    chart: str
    values: tuple[str, ...] = ()


def render_chart(helm: list[str] | None, source: ChartSource, reader: KubeReader, deadline: Deadline) -> list[Manifest]:
    """`helm template` as the deploy would run it on the target cluster: its namespace, values files, Kubernetes
    version and API groups. The kube-context arguments are dropped: templating does not need the cluster."""
    if not helm:
        raise CannotRender("no helm binary to render the chart with (set DV_HELM or put helm on PATH)")
    if not Path(source.chart, "Chart.yaml").is_file():
        raise RenderFailed(f"{source.chart} is not a chart directory (no Chart.yaml)")
    for values in source.values:
        if not Path(values).is_file():
            raise RenderFailed(f"values file {values} does not exist")
    version = reader.document("/version", deadline).get("gitVersion")
    command = [
        helm[0],
        "template",
        source.release,
        source.chart,
        "--namespace",
        source.namespace,
        "--include-crds",
        "--skip-tests",  # test hooks run on `helm test`, never on the deploy being judged
        *[arg for values in source.values for arg in ("--values", values)],
        *(["--kube-version", str(version)] if version else []),
        *[arg for api in api_versions(reader, deadline) for arg in ("--api-versions", api)],
    ]
    what = f"helm template {source.release} {source.chart}"
    try:
        done = run_bounded(command, deadline.timeout(deadline.calls.subprocess), what)
    except ProcessMissing as exc:
        raise CannotRender(str(exc)) from exc
    except ProcessTimeout as exc:
        raise CannotRender(str(exc)) from exc
    if done.returncode != 0:
        raise RenderFailed(f"{what} failed: {done.last_lines()}")
    return [
        Manifest(_with_namespace(obj, source.namespace), origin, problems)
        for origin, obj, problems in _documents(done.stdout, source.chart)
    ]


def chart_facts(chart: str, reader: KubeReader, ref: HelmRef, deadline: Deadline) -> ChartFacts:
    """Chart.yaml's version and the templates' digests, with the release now deployed (None on a first install)."""
    try:
        meta = yaml.safe_load(Path(chart, "Chart.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RenderFailed(f"{chart}/Chart.yaml cannot be read: {_first_line(exc)}") from exc
    deployed = next((r for r in release_history(reader, ref, deadline) if r.status == "deployed"), None)
    version = str(meta.get("version", "")) if isinstance(meta, dict) else ""
    return ChartFacts(version, chart_templates(chart), deployed)


def chart_templates(chart: str) -> tuple[tuple[str, str], ...]:
    """templates/** of a chart directory as Helm stores them with a release: name -> sha256 of the bytes."""
    root = Path(chart)
    return tuple(
        sorted(
            (str(p.relative_to(root)), hashlib.sha256(p.read_bytes()).hexdigest())
            for p in (root / "templates").rglob("*")
            if p.is_file()
        )
    )


def api_versions(reader: KubeReader, deadline: Deadline) -> list[str]:
    """The group/versions the cluster serves (CRDs included), from its discovery document `/apis`."""
    groups = reader.document("/apis", deadline).get("groups") or []
    return sorted(
        str(version["groupVersion"])
        for group in groups
        if isinstance(group, dict)
        for version in group.get("versions") or []
        if isinstance(version, dict) and version.get("groupVersion")
    )


def read_folder(path: str, namespace: str | None) -> list[Manifest]:
    """Every *.yaml, *.yml and *.json under `path` (recursively, sorted), every document in each, a List's items."""
    root = Path(path)
    if not root.is_dir():
        raise RenderFailed(f"{path} is not a folder of manifests")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    if not files:
        raise RenderFailed(f"{path} holds no manifests (*.yaml, *.yml, *.json)")
    manifests: list[Manifest] = []
    for file in files:
        shown = str(file.relative_to(root))
        try:
            text = file.read_text()
            docs = [(json.loads(text), [])] if file.suffix == ".json" else load_documents(text)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise RenderFailed(f"{shown} cannot be read as manifests: {_first_line(exc)}") from exc
        for index, (doc, problems) in enumerate(d for d in docs if d[0] is not None):
            where = f"{shown}#{index + 1}"
            for obj in _items(doc, where):
                obj = _with_namespace(obj, namespace) if namespace else obj
                manifests.append(Manifest(obj, where, tuple(problems)))
    return manifests


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, noting each mapping key given twice instead of silently keeping only the last value."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<:` merges are allowed to be overridden by the keys beside them
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                self.duplicates.append(
                    f"key {key!r} is given twice (line {key_node.start_mark.line + 1} of the document): the last one "
                    "is applied and the first silently lost (kubeconform -strict refuses such a document)"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_documents(text: str) -> list[tuple[Any, list[str]]]:
    """Every YAML document of `text` with the duplicate keys found in it."""
    loader = _StrictLoader(text)
    found: list[tuple[Any, list[str]]] = []
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            loader.duplicates = []
            document = loader.get_data()
            found.append((document, loader.duplicates))
    finally:
        loader.dispose()
    return found


def _documents(stream: str, chart: str) -> list[tuple[str, Obj, tuple[str, ...]]]:
    """helm's output: `---`-separated documents, each after a `# Source: CHART/templates/x.yaml` comment."""
    found: list[tuple[str, Obj, tuple[str, ...]]] = []
    for chunk in re.split(r"(?m)^---[ \t]*$", stream):
        origin = "?"
        for line in chunk.splitlines():
            if line.startswith("# Source: "):
                origin = line.removeprefix("# Source: ").strip().split("/", 1)[-1]
                break
        try:
            docs = load_documents(chunk)
        except yaml.YAMLError as exc:
            raise RenderFailed(f"{chart}: {origin} renders to YAML that does not parse: {_first_line(exc)}") from exc
        for doc, problems in docs:
            if doc is not None:
                found += [(origin, obj, tuple(problems)) for obj in _items(doc, origin)]
    return found


def _items(doc: Any, where: str) -> list[Obj]:
    if not isinstance(doc, dict):
        raise RenderFailed(f"{where} is not a Kubernetes object (a {type(doc).__name__}, not a mapping)")
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        return [item for item in doc["items"] if isinstance(item, dict)]
    return [doc]


def _with_namespace(obj: Obj, namespace: str) -> Obj:
    """The namespace the object lands in: its own, else the release's (kubectl and helm fill it in on apply).
    Cluster-scoped kinds get none; the schema check knows which those are only by asking, so it is set for every
    kind that is not known to be cluster-scoped."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("namespace") or obj.get("kind") in CLUSTER_SCOPED:
        return obj
    return {**obj, "metadata": {**metadata, "namespace": namespace}}


# The built-in cluster-scoped kinds charts render (namespace left empty on them).
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "ClusterIssuer",
    }
)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
