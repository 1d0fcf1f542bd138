"""Pre-deploy manifest policy: the release checklist ("limits and requests defined, health checks configured,
security context applied, chart version updated") as rules, each with an id, a default level and a fix.

    findings = evaluate(PolicyInput(manifests, ...), levels={"read-only-root-filesystem": "block"}, silences=[...])
    result = judge("HelmChart:shop/web", findings, checked=len(manifests))

The rule set is what kube-score, Polaris, kubeconform and checkov agree on, with the changes their users asked for:

- `schema` is kubeconform's job done against the target cluster's own OpenAPI document (checks.schema): no bundled
  schema older or newer than the cluster, CRDs included, and the CRDs a chart itself installs.
- `resources` asks for CPU and memory requests and a memory limit, not a CPU limit: a CPU limit throttles a pod
  that has idle cores next to it, the complaint behind kube-score's `--ignore-container-cpu-limit` and Polaris
  making it optional. A limit alone counts as the request (the API server copies it). Pod-level resources count.
- `probes` wants readiness and liveness on long-running workloads only (not Jobs, not init containers).
- `run-as-non-root`, `no-privilege-escalation`, `not-privileged` block; `read-only-root-filesystem` warns by default:
  most images write to /tmp, and Polaris ships it as a warning for that reason. Windows pods skip the Linux-only
  fields (the API server refuses them with `os.name: windows`).
- `image-pinned`: no `latest`, no untagged image (kube-score and checkov), and the released version is the one
  rendered (the release manifest's version, image or digest): the gap between a values file and the release.
- `min-replicas` and `disruption-budget`: more than one replica (or an autoscaler whose minimum is) and a
  PodDisruptionBudget that selects the pods and still allows an eviction: kube-score's users found that a PDB with
  `maxUnavailable: 0` or `minAvailable: 100%` blocks every node drain, which is worse than none.
- `chart-version`: the templates differ from the release running on the cluster but Chart.yaml's version does not,
  or it is not the version the release manifest names.

Left out on purpose: network policies, image pull policy and host ports (kube-score and Polaris have them; they are
cluster conventions, not release checks), and anything a cluster's admission control already enforces.

A rule blocks (FAIL), warns (shown with a green verdict) or is off, per environment (`policy.rules`). A finding is
silenced for one object with a reason, in the environment (`policy.silence`) or on the object
(`deploy-verify.io/silence.<rule>: <reason>`); silenced findings stay in the report with their reason.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from deploy_verify.checks.helm_resources import parse_quantity as quantity  # one Quantity parser
from deploy_verify.checks.images import tag_of
from deploy_verify.checks.render import ChartFacts, Manifest
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict

CHECK = "manifest_policy"
SILENCE_ANNOTATION = "deploy-verify.io/silence."
SHOWN = 5  # findings named in a message; the rest are counted and listed in the evidence

Level = Literal["block", "warn", "off"]
Obj = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    fix: str
    default: Level = "block"


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("schema", "valid for the target cluster's API", "correct the field the cluster's schema names"),
        Rule(
            "resources",
            "CPU and memory requests and a memory limit",
            "set resources.requests.cpu, resources.requests.memory and resources.limits.memory",
        ),
        Rule("probes", "readiness and liveness probes", "add readinessProbe and livenessProbe to the container"),
        Rule(
            "run-as-non-root",
            "runs as a non-root user",
            "set securityContext.runAsNonRoot: true (and a non-zero runAsUser)",
        ),
        Rule(
            "no-privilege-escalation",
            "no privilege escalation",
            "set securityContext.allowPrivilegeEscalation: false on the container",
        ),
        Rule(
            "not-privileged",
            "no privileged mode or admin capabilities",
            "remove securityContext.privileged and the SYS_ADMIN/ALL capability",
        ),
        Rule(
            "read-only-root-filesystem",
            "read-only root filesystem",
            "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the app writes",
            default="warn",
        ),
        Rule(
            "image-pinned",
            "images pinned to the released version",
            "tag every image with the released version (never latest) in the values",
        ),
        Rule(
            "min-replicas",
            "more than one replica",
            "set replicas: 2 or more, or an autoscaler with minReplicas: 2 or more",
        ),
        Rule(
            "disruption-budget",
            "a PodDisruptionBudget that allows an eviction",
            "add a PodDisruptionBudget selecting the pods with maxUnavailable: 1 (not 0, not minAvailable: 100%)",
        ),
        Rule(
            "chart-version",
            "chart version changed with the templates",
            "bump version in Chart.yaml whenever a template changes",
        ),
    )
}


@dataclass(frozen=True)
class Silence:
    rule: str
    object: str  # KIND/NAMESPACE/NAME glob
    reason: str


@dataclass(frozen=True)
class Finding:
    rule: str
    object: str
    source: str
    detail: str
    level: Level = "block"
    silenced: str | None = None  # the reason, when accepted on purpose

    def line(self) -> str:
        return f"{self.rule}: {self.object} ({self.source}) {self.detail}"

    def summary(self) -> dict[str, str]:
        shown = {"rule": self.rule, "object": self.object, "source": self.source, "detail": self.detail}
        return {**shown, "level": self.level, **({"silenced": self.silenced} if self.silenced else {})}


@dataclass(frozen=True)
class ImageRule:
    """What the release manifest says the rendered images must be: a tag, a full reference or a digest."""

    version: str | None = None
    image: str | None = None
    digest: str | None = None
    containers: Mapping[str, ImageRule] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyInput:
    manifests: Sequence[Manifest]
    schema: Mapping[int, list[str]] = field(default_factory=dict)  # manifest index -> what the cluster would refuse
    live: Sequence[Obj] = ()  # PDBs and autoscalers already on the cluster in the target namespaces
    images: ImageRule | None = None
    chart: ChartFacts | None = None


# ---------------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Container:
    name: str
    spec: Obj
    init: bool
    restartable: bool  # a native sidecar (an init container with restartPolicy: Always)


@dataclass(frozen=True)
class PodTemplate:
    owner: Manifest
    spec: Obj
    labels: Mapping[str, str]

    @property
    def windows(self) -> bool:
        node = self.spec.get("nodeSelector") or {}
        return (self.spec.get("os") or {}).get("name") == "windows" or node.get("kubernetes.io/os") == "windows"

    @property
    def containers(self) -> list[Container]:
        found = [Container(str(c.get("name")), c, False, False) for c in _dicts(self.spec.get("containers"))]
        return found + [
            Container(str(c.get("name")), c, True, c.get("restartPolicy") == "Always")
            for c in _dicts(self.spec.get("initContainers"))
        ]


LONG_RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Rollout"})
REPLICATED = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "Rollout"})


def pod_template(manifest: Manifest) -> PodTemplate | None:
    """The pod a workload object stamps out: a Pod's own spec, a CronJob's job template's, else spec.template."""
    obj, kind = manifest.obj, manifest.kind
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    if kind == "Pod":
        return PodTemplate(manifest, spec, _labels(obj))
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return PodTemplate(manifest, template["spec"], _labels(template))
    return None


# ------------------------------------------------------------------------------------------------------------ rules

Found = Iterator[tuple[Manifest, str]]


def rule_schema(given: PolicyInput) -> Found:
    for manifest in given.manifests:
        for problem in manifest.parse_problems:
            yield manifest, problem
    for index, problems in sorted(given.schema.items()):
        for problem in problems:
            yield given.manifests[index], f"would be refused by the cluster: {problem}"


def rule_resources(given: PolicyInput) -> Found:
    for pod in _templates(given):
        pod_level = pod.spec.get("resources") or {}
        for c in pod.containers:
            resources = c.spec.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            pod_requests, pod_limits = pod_level.get("requests") or {}, pod_level.get("limits") or {}
            missing = [
                f"{what} {resource}"
                for what, resource, given_at in (
                    ("request", "cpu", (requests, limits, pod_requests, pod_limits)),
                    ("request", "memory", (requests, limits, pod_requests, pod_limits)),
                    ("limit", "memory", (limits, pod_limits)),
                )
                if not any(resource in place for place in given_at)
            ]
            if missing:
                yield pod.owner, f"{_container(c)} has no {' and no '.join(missing)}"
            for resource in ("cpu", "memory"):
                asked, capped = quantity(requests.get(resource)), quantity(limits.get(resource))
                if asked is not None and capped is not None and asked > capped:
                    yield (
                        pod.owner,
                        f"{_container(c)} requests {requests[resource]} {resource}, more than its limit "
                        f"{limits[resource]}",
                    )


def rule_probes(given: PolicyInput) -> Found:
    for pod in _templates(given):
        if pod.owner.kind not in LONG_RUNNING:
            continue
        for c in pod.containers:
            if c.init:
                continue
            missing = [probe for probe in ("readinessProbe", "livenessProbe") if not c.spec.get(probe)]
            if missing:
                yield pod.owner, f"{_container(c)} has no {' and no '.join(missing)}"


def rule_non_root(given: PolicyInput) -> Found:
    for pod in _linux_templates(given):
        pod_context = pod.spec.get("securityContext") or {}
        for c in pod.containers:
            context = c.spec.get("securityContext") or {}
            user = context.get("runAsUser", pod_context.get("runAsUser"))
            non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
            if user == 0:
                yield pod.owner, f"{_container(c)} runs as root (runAsUser: 0)"
            elif non_root is not True and not (isinstance(user, int) and user > 0):
                yield pod.owner, f"{_container(c)} may run as root: neither runAsNonRoot: true nor a non-zero runAsUser"


def rule_no_escalation(given: PolicyInput) -> Found:
    for pod in _linux_templates(given):
        for c in pod.containers:
            if (c.spec.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
                yield pod.owner, f"{_container(c)} allows privilege escalation (allowPrivilegeEscalation is not false)"


def rule_not_privileged(given: PolicyInput) -> Found:
    for pod in _linux_templates(given):
        for c in pod.containers:
            context = c.spec.get("securityContext") or {}
            if context.get("privileged") is True:
                yield pod.owner, f"{_container(c)} runs privileged"
            added = {str(a).upper().removeprefix("CAP_") for a in (context.get("capabilities") or {}).get("add") or []}
            for capability in sorted(added & {"SYS_ADMIN", "ALL"}):
                yield pod.owner, f"{_container(c)} adds capability {capability}"


def rule_read_only_root(given: PolicyInput) -> Found:
    for pod in _linux_templates(given):
        for c in pod.containers:
            if (c.spec.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
                yield pod.owner, f"{_container(c)} has a writable root filesystem"


def rule_image_pinned(given: PolicyInput) -> Found:
    used: list[tuple[PodTemplate, Container, str]] = [
        (pod, c, str(c.spec.get("image") or "")) for pod in _templates(given) for c in pod.containers
    ]
    for pod, c, image in used:
        tag = tag_of(image)
        if "@" in image:
            continue  # a digest is the strongest pin there is
        if tag is None:
            yield pod.owner, f"{_container(c)} image {image or '(none)'} has no tag, so it runs whatever latest is"
        elif tag == "latest":
            yield pod.owner, f"{_container(c)} image {image} is tagged latest"
    rule = given.images
    if rule is None or not used:
        return
    for name, wanted in rule.containers.items():
        for pod, c, image in used:
            if c.name == name and not _image_matches(wanted, image):
                yield pod.owner, f"{_container(c)} image {image}, but the release is {_describe(wanted)}"
    if not (rule.version or rule.image or rule.digest):
        return
    released = [(pod, c, image) for pod, c, image in used if _image_matches(rule, image)]
    if not released:
        first = used[0][0].owner
        images = ", ".join(sorted({image for _, _, image in used}))
        yield first, f"no image is the released {_describe(rule)} (the render uses {images})"
        return
    # The released repository in another container at another tag: a values key that was not updated.
    repositories = {_repository(image) for _, _, image in released}
    for pod, c, image in used:
        if _repository(image) in repositories and not _image_matches(rule, image):
            yield pod.owner, f"{_container(c)} image {image}, but the release is {_describe(rule)}"


def rule_min_replicas(given: PolicyInput) -> Found:
    scalers = _autoscalers(given)
    for m in given.manifests:
        if m.kind not in REPLICATED:
            continue
        floor = scalers.get((m.namespace, m.kind, m.name))
        if floor is not None:
            if floor < 2:
                yield m, f"its autoscaler's minReplicas is {floor}: one pod, no redundancy while it restarts"
            continue
        replicas = _replicas(m)
        if replicas is not None and replicas < 2:
            yield m, f"has {replicas} replica{'s' if replicas != 1 else ''}: one pod, no redundancy while it restarts"


def rule_disruption_budget(given: PolicyInput) -> Found:
    rendered = [m.obj for m in given.manifests if m.kind == "PodDisruptionBudget"]
    names = {(_namespace(p), _name(p)) for p in rendered}
    budgets = rendered + [
        p for p in given.live if p.get("kind") == "PodDisruptionBudget" and (_namespace(p), _name(p)) not in names
    ]
    scalers = _autoscalers(given)
    for pod in _templates(given):
        m = pod.owner
        if m.kind not in REPLICATED:
            continue
        mine = [b for b in budgets if _namespace(b) == m.namespace and _selects((b.get("spec") or {}), pod.labels)]
        if not mine:
            yield m, "no PodDisruptionBudget selects its pods: a node drain can evict all of them at once"
            continue
        replicas = scalers.get((m.namespace, m.kind, m.name)) or _replicas(m) or 1
        for budget in mine:
            blocked = _blocks_evictions(budget.get("spec") or {}, replicas)
            if blocked:
                yield m, f"PodDisruptionBudget {_name(budget)} {blocked}: every node drain will hang on these pods"


def rule_chart_version(given: PolicyInput) -> Found:
    chart = given.chart
    if chart is None or not given.manifests:
        return
    anchor = given.manifests[0]
    if chart.expected_version is not None and chart.expected_version != chart.version:
        yield anchor, f"Chart.yaml says version {chart.version}, the release manifest says {chart.expected_version}"
    deployed = chart.deployed
    if deployed is None or deployed.chart_version != chart.version or not deployed.templates:
        return
    before, now = dict(deployed.templates), dict(chart.templates)
    changed = sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))
    if changed:
        shown = ", ".join(changed[:SHOWN]) + (f" and {len(changed) - SHOWN} more" if len(changed) > SHOWN else "")
        yield (
            anchor,
            f"templates changed since revision {deployed.revision} ({shown}) but the chart version is still "
            f"{chart.version}",
        )


CHECKS: dict[str, Callable[[PolicyInput], Found]] = {
    "schema": rule_schema,
    "resources": rule_resources,
    "probes": rule_probes,
    "run-as-non-root": rule_non_root,
    "no-privilege-escalation": rule_no_escalation,
    "not-privileged": rule_not_privileged,
    "read-only-root-filesystem": rule_read_only_root,
    "image-pinned": rule_image_pinned,
    "min-replicas": rule_min_replicas,
    "disruption-budget": rule_disruption_budget,
    "chart-version": rule_chart_version,
}
assert CHECKS.keys() == RULES.keys()  # one rule, one function


# ----------------------------------------------------------------------------------------------------------- judging


def evaluate(given: PolicyInput, levels: Mapping[str, Level], silences: Sequence[Silence] = ()) -> list[Finding]:
    """Every finding of every rule that is not off, with its level and, where accepted, the reason."""
    findings: list[Finding] = []
    for rule_id, rule in CHECKS.items():
        level = levels.get(rule_id, RULES[rule_id].default)
        if level == "off":
            continue
        for manifest, detail in rule(given):
            reason = _silenced(rule_id, manifest, silences)
            findings.append(Finding(rule_id, manifest.ident, manifest.source, detail, level, reason))
    return findings


def judge(check: str, where: str, findings: list[Finding], checked: int) -> CheckResult:
    blocking = [f for f in findings if f.level == "block" and not f.silenced]
    warnings = [f for f in findings if f.level == "warn" and not f.silenced]
    silenced = [f for f in findings if f.silenced]
    evidence = (
        Evidence.as_json(
            "Manifest policy findings",
            {"objects": checked, "findings": [f.summary() for f in findings], "rules": _rule_table()},
        ),
    )
    tail = "".join(
        [
            f"; {len(warnings)} warning{'s' if len(warnings) != 1 else ''} ({_listed(warnings)})" if warnings else "",
            f"; {len(silenced)} silenced" if silenced else "",
        ]
    )
    if blocking:
        fixes = "; ".join(f"{rule}: {RULES[rule].fix}" for rule in dict.fromkeys(f.rule for f in blocking))
        message = f"{len(blocking)} finding{'s' if len(blocking) != 1 else ''} block the deploy: {_listed(blocking)}"
        return CheckResult(check, where, Verdict.FAIL, f"{message}{tail}. Fix: {fixes}", evidence, Category.POLICY)
    return CheckResult(
        check,
        where,
        Verdict.PASS,
        f"{checked} object{'s' if checked != 1 else ''} pass the manifest policy{tail}",
        evidence,
    )


def _listed(findings: list[Finding]) -> str:
    shown = "; ".join(f.line() for f in findings[:SHOWN])
    return shown + (f"; and {len(findings) - SHOWN} more" if len(findings) > SHOWN else "")


def _rule_table() -> list[dict[str, str]]:
    return [{"id": r.id, "checks": r.title, "default": r.default, "fix": r.fix} for r in RULES.values()]


def _silenced(rule: str, manifest: Manifest, silences: Sequence[Silence]) -> str | None:
    annotations = (manifest.obj.get("metadata") or {}).get("annotations") or {}
    reason = str(annotations.get(SILENCE_ANNOTATION + rule) or "").strip()
    if len(reason) >= 3:
        return f"{reason} (annotation)"
    for silence in silences:
        if silence.rule == rule and fnmatch.fnmatchcase(manifest.ident, silence.object):
            return silence.reason
    return None


# ----------------------------------------------------------------------------------------------------------- helpers


def _templates(given: PolicyInput) -> Iterator[PodTemplate]:
    for m in given.manifests:
        pod = pod_template(m)
        if pod is not None:
            yield pod


def _linux_templates(given: PolicyInput) -> Iterator[PodTemplate]:
    return (pod for pod in _templates(given) if not pod.windows)


def _container(c: Container) -> str:
    return f"{'sidecar' if c.restartable else 'init container' if c.init else 'container'} {c.name}"


def _replicas(m: Manifest) -> int | None:
    """spec.replicas, 1 when absent (the API server's default); None when it is not a number (the schema rule
    reports that, and nothing is judged from it)."""
    replicas = (m.obj.get("spec") or {}).get("replicas", 1)
    return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None


def _autoscalers(given: PolicyInput) -> dict[tuple[str | None, str, str], int]:
    """(namespace, kind, name) of each autoscaled workload -> its minReplicas (1 when absent); rendered ones win."""
    found: dict[tuple[str | None, str, str], int] = {}
    rendered = [m.obj for m in given.manifests if m.kind == "HorizontalPodAutoscaler"]
    for hpa in [*[o for o in given.live if o.get("kind") == "HorizontalPodAutoscaler"], *rendered]:
        spec = hpa.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        floor = spec.get("minReplicas")
        found[(_namespace(hpa), str(target.get("kind")), str(target.get("name")))] = (
            floor if isinstance(floor, int) else 1
        )
    return found


def _selects(spec: Obj, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions, ANDed) against the pod template's labels. policy/v1: an
    empty selector selects every pod of the namespace, an absent one none."""
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in _dicts(selector.get("matchExpressions")):
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[str(key)] in values):
            return False
        if operator == "NotIn" and present and labels[str(key)] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _blocks_evictions(spec: Obj, replicas: int) -> str | None:
    """Why a budget allows no voluntary eviction at the workload's size, or None."""
    if "maxUnavailable" in spec:
        value = spec["maxUnavailable"]
        if value in (0, "0", "0%"):
            return f"has maxUnavailable: {value}"
        return None
    value = spec.get("minAvailable")
    if value == "100%":
        return "has minAvailable: 100%"
    if isinstance(value, int) and value >= replicas:
        return f"has minAvailable: {value} with {replicas} replica{'s' if replicas != 1 else ''}"
    return None


def _image_matches(rule: ImageRule, image: str) -> bool:
    if rule.digest:
        return image.endswith("@" + rule.digest)
    if rule.image:
        return image == rule.image
    return rule.version is not None and tag_of(image) == rule.version


def _describe(rule: ImageRule) -> str:
    return rule.digest or rule.image or f"tag {rule.version}"


def _repository(image: str) -> str:
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _labels(obj: Obj) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _namespace(obj: Obj) -> str | None:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return str(namespace) if namespace else None


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "?")


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
