"""Rendered objects against the target cluster's own schema: what the API server would refuse, found before the
deploy, read-only.

    schema = ClusterSchema(reader)
    problems = schema.problems(obj, deadline)   # ["spec.replicas: expected integer, got string \\"three\\""]

The schema is the cluster's OpenAPI v3 document, not a copy shipped with the suite: `/openapi/v3` lists one document
per group/version the API server serves (CRDs included, with their structural schema), and each document's
`components.schemas` names the kinds it holds by `x-kubernetes-group-version-kind`. Both are GETs, read once per
run. Validating against the cluster itself answers the complaint kubeconform's users raise most: a schema bundle
that is older or newer than the cluster, and CRDs that need converting before they can be checked at all.

What is judged, as the API server's strict field validation does (kubectl's default since 1.27):

| rule | refused |
|---|---|
| the apiVersion is served, and serves the kind | `extensions/v1beta1` Deployment on a cluster that removed it |
| types: object, array, string, integer (int32/int64 range), number, boolean | `replicas: "3"`, `containerPort: "80"` |
| `oneOf`/`anyOf` (IntOrString, Quantity) and `x-kubernetes-int-or-string` | `port: [80]` |
| a Quantity is well formed (apimachinery's grammar) | `cpu: 1 core`, `memory: 1 GB` |
| unknown fields (unless `x-kubernetes-preserve-unknown-fields` or `additionalProperties`) | `readinesProbe:` |
| `required`, `enum`, `pattern`, min/max length, items and value (CRDs use them) | a Container without `name` |
| `x-kubernetes-list-type: map` keys and `set` items are unique | two containers named `app` |
| metadata.name is a DNS-1123 subdomain, label keys and values are valid | `name: Web_1` |

An unknown field is refused even though a lenient client would only warn: `readinesProbe:` is a typo that leaves
the pod without a probe. `null` is accepted anywhere: the API server decodes it as "not set".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.transports.kube import KubeReader, KubeUnavailable, Obj

Schema = dict[str, Any]
# apimachinery's resource.Quantity grammar: a signed decimal number, then a binary or decimal SI suffix or an exponent.
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[mkMGTPE]|[eE][+-]?\d+)?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
QUANTITY_REF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Kinds every group version lists in its schema (the options and events of the API machinery), not its own.
META_KINDS = frozenset({"DeleteOptions", "WatchEvent", "Status", "APIResourceList"})
# Fields whose values can be credentials in any kind: env values, data maps, anything named like a secret. A wrong
# value there is reported by its type only, so the report never repeats it.
SENSITIVE_PATH = re.compile(
    r"(^|\.)env\[\d+\]\.value$|(^|\.)(data|stringData|binaryData)(\.|$)|password|passwd|token|secret|credential",
    re.IGNORECASE,
)
MAX_PROBLEMS = 20  # per object: past that the object is plainly the wrong kind, and a longer list helps nobody


@dataclass
class ClusterSchema:
    """The OpenAPI v3 schemas one cluster serves, read on first use through the cluster's shared reader."""

    reader: KubeReader
    _index: dict[str, str] | None = None  # group/version path ("apis/apps/v1") -> its document's URL
    _kinds: dict[str, dict[tuple[str, str, str], str]] = field(default_factory=dict)  # per path: GVK -> schema name

    def problems(self, obj: Obj, deadline: Deadline) -> list[str]:
        """What the API server would refuse in `obj`, one line each (the field path first); [] when it would take
        it. KubeUnavailable when the schema cannot be read."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
            return ["the object has no apiVersion and kind, so no API server would know what it is"]
        path = "api/v1" if api_version == "v1" else f"apis/{api_version}"
        index = self._served(deadline)
        if path not in index:
            return [self._not_served(api_version, kind, index)]
        schemas, by_kind = self._document(path, index[path], deadline)
        group, _, version = api_version.rpartition("/")
        name = by_kind.get((group, version, kind))
        if name is None:
            kinds = sorted(
                {
                    k
                    for (g, v, k) in by_kind
                    if (g, v) == (group, version) and k not in META_KINDS and not k.endswith("List")
                }
            )
            return [f"the cluster serves no kind {kind} in {api_version} (it serves {', '.join(kinds) or 'nothing'})"]
        found: list[str] = []
        # A Secret's values are never repeated in a message, even when they have the wrong type.
        _Validator(schemas, found, hide=kind == "Secret").check(obj, schemas[name], "")
        found += _metadata_problems(obj.get("metadata"))
        if len(found) > MAX_PROBLEMS:
            found = [*found[:MAX_PROBLEMS], f"and {len(found) - MAX_PROBLEMS} more"]
        return found

    def _served(self, deadline: Deadline) -> dict[str, str]:
        if self._index is None:
            document = self.reader.document("/openapi/v3", deadline)
            paths = document.get("paths")
            if not isinstance(paths, dict):
                raise KubeUnavailable(
                    f"cluster {self.reader.cluster}: /openapi/v3 is not an OpenAPI v3 discovery document (no paths)"
                )
            self._index = {str(p): str(v.get("serverRelativeURL", "")) for p, v in paths.items() if isinstance(v, dict)}
        return self._index

    def _document(
        self, path: str, url: str, deadline: Deadline
    ) -> tuple[dict[str, Schema], dict[tuple[str, str, str], str]]:
        document = self.reader.document(url or f"/openapi/v3/{path}", deadline)
        schemas = (document.get("components") or {}).get("schemas")
        if not isinstance(schemas, dict):
            raise KubeUnavailable(f"cluster {self.reader.cluster}: /openapi/v3/{path} holds no components.schemas")
        if path not in self._kinds:
            self._kinds[path] = {
                (str(gvk.get("group", "")), str(gvk.get("version", "")), str(gvk.get("kind", ""))): name
                for name, schema in schemas.items()
                for gvk in schema.get("x-kubernetes-group-version-kind") or []
                if isinstance(gvk, dict)
            }
        return schemas, self._kinds[path]

    def _not_served(self, api_version: str, kind: str, index: dict[str, str]) -> str:
        group = api_version.rpartition("/")[0]
        others = sorted(p.removeprefix("apis/") for p in index if group and p.startswith(f"apis/{group}/"))
        served = f"; it serves {', '.join(others)}" if others else ""
        hint = " (is the CRD installed?)" if "." in group and not others else ""
        return f"the cluster does not serve {api_version}{served}, so it would refuse this {kind}{hint}"


@dataclass
class _Validator:
    schemas: dict[str, Schema]
    found: list[str]
    hide: bool = False  # say the type of a wrong value, never the value

    def check(self, value: Any, schema: Schema, path: str) -> None:
        if value is None or len(self.found) > MAX_PROBLEMS:
            return
        schema, named = self._resolve(schema)
        for part in schema.get("allOf") or []:
            self.check(value, part, path)
        alternatives = schema.get("oneOf") or schema.get("anyOf")
        # An IntOrString or Quantity is either of its forms; which one is the API server's business.
        if alternatives and not any(self._fits(value, alternative, path) for alternative in alternatives):
            forms = " or ".join(str(self._resolve(a)[0].get("type", "?")) for a in alternatives)
            self.found.append(f"{_at(path)}expected {forms}, got {self._said(value, path)}")
            return
        if schema.get("x-kubernetes-int-or-string") and (isinstance(value, bool) or not isinstance(value, int | str)):
            self.found.append(f"{_at(path)}expected an integer or a string, got {self._said(value, path)}")
            return
        if named == QUANTITY_REF and isinstance(value, str) and not QUANTITY.match(value):
            self.found.append(f"{_at(path)}{self._said(value, path)} is not a quantity (e.g. 500m, 2, 128Mi, 1Gi)")
            return
        kind = schema.get("type")
        if kind == "object" or (kind is None and ("properties" in schema or "additionalProperties" in schema)):
            self._object(value, schema, path)
        elif kind == "array":
            self._array(value, schema, path)
        elif kind is not None:
            self._scalar(value, schema, str(kind), path)
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(json.dumps(v) for v in schema["enum"])
            self.found.append(f"{_at(path)}{self._said(value, path)} is not one of {allowed}")

    def _said(self, value: Any, path: str) -> str:
        """The wrong value itself where it cannot be a secret, else only its type."""
        return _type_of(value) if self.hide or SENSITIVE_PATH.search(path) else _shown(value)

    def _fits(self, value: Any, schema: Schema, path: str) -> bool:
        trial = _Validator(self.schemas, [], self.hide)
        trial.check(value, schema, path)
        return not trial.found

    def _resolve(self, schema: Schema) -> tuple[Schema, str | None]:
        named = None
        while "$ref" in schema:
            named = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = self.schemas.get(named) or {}
        return schema, named

    def _object(self, value: Any, schema: Schema, path: str) -> None:
        if not isinstance(value, dict):
            self.found.append(f"{_at(path)}expected an object, got {self._said(value, path)}")
            return
        properties: dict[str, Schema] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        free = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or extra is True
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in properties:
                self.check(item, properties[key], where)
            elif isinstance(extra, dict):
                self.check(item, extra, where)
            elif not free and (properties or extra is False):
                self.found.append(f"{where}: unknown field (the API server refuses it under strict field validation)")
        self.found += [
            f"{path + '.' if path else ''}{key}: required field is missing"
            for key in schema.get("required") or []
            if key not in value
        ]

    def _array(self, value: Any, schema: Schema, path: str) -> None:
        if not isinstance(value, list):
            self.found.append(f"{_at(path)}expected an array, got {self._said(value, path)}")
            return
        if len(value) < schema.get("minItems", 0):
            self.found.append(f"{_at(path)}needs at least {schema['minItems']} items, has {len(value)}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.found.append(f"{_at(path)}allows at most {schema['maxItems']} items, has {len(value)}")
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                self.check(item, items, f"{path}[{i}]")
        self.found += list(_duplicates(value, schema, path))

    def _scalar(self, value: Any, schema: Schema, kind: str, path: str) -> None:
        fits = {
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
        }.get(kind, True)
        if not fits:
            self.found.append(f"{_at(path)}expected {kind}, got {self._said(value, path)}")
            return
        if isinstance(value, str):
            self._string(value, schema, path)
        elif not isinstance(value, bool) and isinstance(value, int | float):
            low, high = INT_RANGE.get(str(schema.get("format")), (None, None))
            low = schema.get("minimum", low)
            high = schema.get("maximum", high)
            if low is not None and value < low:
                self.found.append(f"{_at(path)}{value} is below the minimum {low}")
            if high is not None and value > high:
                self.found.append(f"{_at(path)}{value} is above the maximum {high}")

    def _string(self, value: str, schema: Schema, path: str) -> None:
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.found.append(f"{_at(path)}is {len(value)} characters long, at most {schema['maxLength']} allowed")
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.found.append(f"{_at(path)}is {len(value)} characters long, at least {schema['minLength']} needed")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                matched = re.search(pattern, value) is not None
            except re.error:
                matched = True  # an ECMA-only construct Python cannot compile: the API server judges it, not us
            if not matched:
                self.found.append(f"{_at(path)}{self._said(value, path)} does not match {pattern}")


def _duplicates(value: list[Any], schema: Schema, path: str) -> Iterator[str]:
    """`x-kubernetes-list-type: map` lists are keyed (containers by name, ports by containerPort and protocol);
    `set` lists hold each value once. The API server refuses duplicates in both."""
    kind = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: set[str] = set()
    for item in value:
        if kind == "map" and keys and isinstance(item, dict):
            identity = json.dumps([item.get(k) for k in keys])
            shown = ", ".join(f"{k}={item.get(k)}" for k in keys if item.get(k) is not None)
        elif kind == "set":
            identity = shown = json.dumps(item, sort_keys=True)
        else:
            return
        if identity in seen:
            yield f"{_at(path)}{shown} is listed twice"
        seen.add(identity)


def _metadata_problems(metadata: Any) -> list[str]:
    """What the API server's object-meta validation refuses that the schema does not say."""
    if not isinstance(metadata, dict):
        return [] if metadata is None else ["metadata: expected an object"]
    problems = []
    name = metadata.get("name")
    if isinstance(name, str) and (len(name) > 253 or not DNS_SUBDOMAIN.match(name)):
        problems.append(
            f"metadata.name: {name!r} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')"
        )
    for key, label in (metadata.get("labels") or {}).items() if isinstance(metadata.get("labels"), dict) else []:
        prefix, _, local = str(key).rpartition("/")
        if not local or len(local) > 63 or not LABEL_NAME.match(local) or (prefix and not DNS_SUBDOMAIN.match(prefix)):
            problems.append(f"metadata.labels: {key!r} is not a valid label key")
        if label is not None and (not isinstance(label, str) or len(label) > 63 or not LABEL_NAME.match(label)):
            problems.append(
                f"metadata.labels.{key}: {_shown(label)} is not a valid label value (a string of at most 63 "
                "letters, digits, '-', '_' and '.')"
            )
    return problems


def _at(path: str) -> str:
    return f"{path}: " if path else ""


def _type_of(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return f"{_type_of(value)} {text if len(text) <= 40 else text[:37] + '...'}"


def crd_schemas(manifests: list[Obj]) -> dict[tuple[str, str, str], Schema]:
    """The schemas of the CRDs a chart or folder itself installs (apiextensions.k8s.io/v1), by (group, version,
    kind): their objects cannot be looked up on a cluster that does not have the CRD yet, so they are validated
    against the definition about to be applied."""
    found: dict[tuple[str, str, str], Schema] = {}
    for crd in manifests:
        if crd.get("kind") != "CustomResourceDefinition" or not isinstance(crd.get("spec"), dict):
            continue
        spec = crd["spec"]
        kind = str((spec.get("names") or {}).get("kind") or "")
        for version in spec.get("versions") or []:
            schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
            if kind and isinstance(schema, dict):
                found[(str(spec.get("group") or ""), str(version.get("name") or ""), kind)] = schema
    return found


def problems_against(obj: Obj, schema: Schema) -> list[str]:
    """`obj` against one structural schema (a CRD's openAPIV3Schema). apiVersion, kind and metadata are the API
    machinery's, whether the CRD lists them or not."""
    properties = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        **(schema.get("properties") or {}),
    }
    found: list[str] = []
    _Validator({}, found).check(obj, {**schema, "type": "object", "properties": properties}, "")
    found += _metadata_problems(obj.get("metadata"))
    return found[:MAX_PROBLEMS] + ([f"and {len(found) - MAX_PROBLEMS} more"] if len(found) > MAX_PROBLEMS else [])
