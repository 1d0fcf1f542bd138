"""Helm release: the latest revision is deployed, with the expected chart and app version.

    result = check_helm_release(reader, HelmRef("shop", "storefront"), HelmExpectation("1.4.2", "2.1.0"), deadline)

Read from the cluster, not through the helm binary: Helm (v3 and v4 alike) keeps each revision in a Secret
`sh.helm.release.v1.<name>.v<N>` labelled owner=helm, name=<name>, whose `release` key is base64 of gzip of the
release JSON (and base64 once more through the API). One LIST per namespace, narrowed to owner=helm, serves every
release there. Only Helm's default storage driver (Secrets) is read.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import Undecidable, attempt
from deploy_verify.checks.transports.kube import KubeReader, Obj

CHECK = "helm_release"
HELM_SECRETS = "labels:owner=helm"
# Statuses a release is left in when an operation failed or never finished; "deployed" is the only good end state.
UNFINISHED = frozenset({"pending-install", "pending-upgrade", "pending-rollback", "uninstalling"})


@dataclass(frozen=True)
class HelmRef:
    namespace: str
    name: str

    @property
    def where(self) -> str:
        return f"HelmRelease:{self.namespace}/{self.name}"


@dataclass(frozen=True)
class HelmExpectation:
    app_version: str | None = None
    chart_version: str | None = None


@dataclass(frozen=True)
class HelmRevision:
    """One stored revision of a release, decoded."""

    revision: int
    status: str
    description: str
    chart: str
    chart_version: str
    app_version: str
    manifest: str
    values: dict[str, Any]
    last_deployed: str
    # The chart's own templates as stored with the revision: file name -> sha256 of its text (the pre-deploy
    # policy compares them with the chart about to be deployed; subcharts are not stored in the record)
    templates: tuple[tuple[str, str], ...] = ()

    @property
    def chart_ref(self) -> str:
        return f"{self.chart}-{self.chart_version}"

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest.encode()).hexdigest()

    @property
    def values_digest(self) -> str:
        """Of the user-supplied values (`helm get values`), canonical JSON so key order does not matter."""
        canonical = json.dumps(self.values, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "status": self.status,
            "chart": self.chart_ref,
            "app_version": self.app_version,
            "description": self.description,
            "last_deployed": self.last_deployed,
            "manifest": self.manifest_digest,
            "values": self.values_digest,
        }


class UnreadableRelease(Undecidable):
    """A release Secret that is not what Helm writes (another storage format, or damaged)."""


def release_history(reader: KubeReader, ref: HelmRef, deadline: Deadline) -> list[HelmRevision]:
    """Every stored revision of the release, newest first; empty when there is no such release."""
    secrets = reader.listing("secrets", ref.namespace, deadline, select=HELM_SECRETS).items
    mine = [s for s in secrets if s["metadata"].get("labels", {}).get("name") == ref.name]
    return sorted((decode_release(s) for s in mine), key=lambda r: -r.revision)


def decode_release(secret: Obj) -> HelmRevision:
    """A release Secret -> its revision. The API's base64 is undone here, then Helm's own base64 and gzip."""
    name = secret["metadata"]["name"]
    try:
        payload = base64.b64decode(base64.b64decode(secret.get("data", {})["release"]))
        if payload[:2] == b"\x1f\x8b":  # Helm gzips; it reads uncompressed records too, so we do as well
            payload = gzip.decompress(payload)
        record: dict[str, Any] = json.loads(payload)
    except (KeyError, binascii.Error, OSError, zlib.error, ValueError) as exc:
        raise UnreadableRelease(f"Secret {name} is not a Helm release record ({exc})") from exc
    info = record.get("info") or {}
    metadata = (record.get("chart") or {}).get("metadata") or {}
    return HelmRevision(
        revision=int(record.get("version", 0)),
        status=str(info.get("status", "unknown")),
        description=str(info.get("description", "")),
        chart=str(metadata.get("name", "?")),
        chart_version=str(metadata.get("version", "?")),
        app_version=str(metadata.get("appVersion", "")),
        manifest=str(record.get("manifest", "")),
        values=record.get("config") or {},
        last_deployed=str(info.get("last_deployed", "")),
        templates=_template_digests((record.get("chart") or {}).get("templates") or []),
    )


def _template_digests(templates: list[Any]) -> tuple[tuple[str, str], ...]:
    """Helm stores each template as {"name": "templates/x.yaml", "data": base64 of its bytes}."""
    digests = []
    for template in templates:
        if not isinstance(template, dict) or "name" not in template:
            continue
        try:
            data = base64.b64decode(str(template.get("data") or ""))
        except binascii.Error:
            data = str(template.get("data")).encode()
        digests.append((str(template["name"]), hashlib.sha256(data).hexdigest()))
    return tuple(sorted(digests))


def check_helm_release(
    reader: KubeReader, ref: HelmRef, expected: HelmExpectation | None, deadline: Deadline
) -> CheckResult:
    if expected is None or not (expected.app_version or expected.chart_version):
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.ERROR,
            "no expected app or chart version for this release: pass --release FILE (version, chart) or "
            "--expect COMPONENT=VERSION",
            category=Category.UNDECIDED,
        )
    return attempt(
        CHECK,
        ref.where,
        lambda: _judge(ref, release_history(reader, ref, deadline), expected),
        undecidable="{}; is the release stored by another driver?",
    )


def _judge(ref: HelmRef, history: list[HelmRevision], expected: HelmExpectation) -> CheckResult:
    if not history:
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.FAIL,
            f"no Helm release {ref.name!r} in namespace {ref.namespace!r}",
            category=Category.PROVISIONING,
        )
    latest = history[0]
    evidence = (Evidence.as_json("Helm release history", [r.summary() for r in history]),)
    problems, category = _problems(latest, expected)
    if problems:
        return CheckResult(CHECK, ref.where, Verdict.FAIL, "; ".join(problems), evidence, category)
    return CheckResult(
        CHECK,
        ref.where,
        Verdict.PASS,
        f"revision {latest.revision} deployed: chart {latest.chart_ref}, app version {latest.app_version}",
        evidence,
    )


def _problems(latest: HelmRevision, expected: HelmExpectation) -> tuple[list[str], Category]:
    """What is wrong with the latest revision, and its failure class: an operation that failed or never finished is a
    provisioning failure; a deployed revision of another chart or app version is the wrong version."""
    if latest.status != "deployed":
        hint = (
            "an operation was interrupted or is still running; `helm history` shows it, `helm rollback` ends it"
            if latest.status in UNFINISHED
            else "fix the cause, then upgrade or roll back"
        )
        problem = f"revision {latest.revision} is {latest.status}: {latest.description or '(no description)'}; {hint}"
        return [problem], Category.PROVISIONING
    found: list[str] = []
    if expected.chart_version and latest.chart_version != expected.chart_version:
        found.append(
            f"revision {latest.revision} runs chart {latest.chart_ref}, expected version {expected.chart_version}"
        )
    if expected.app_version and latest.app_version != expected.app_version:
        found.append(
            f"revision {latest.revision} runs app version {latest.app_version or '(none)'}, "
            f"expected {expected.app_version}"
        )
    return found, Category.WRONG_VERSION
