"""environments/<name>.yaml: what exists where, loaded once and validated strictly.

    env = load_environment("prod", Path("environments"))
    env.components[0].health_probes(env.defaults)

Every problem is reported as `file:line: key.path: what is wrong` (allowed values listed), all problems at once.
Unknown keys are errors: a typo must not silently disable a check. Secrets never live here; there is no key for them.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from deploy_verify.bases import ExtendsError, Origin, load_merged, where
from deploy_verify.checks.deadline import CallTimeouts, Deadline
from deploy_verify.checks.http_probe import BodyRule, HealthProbe
from deploy_verify.checks.tls import TlsTarget
from deploy_verify.durations import parse_duration
from deploy_verify.yamlsource import Loc, YamlSourceError, dotted

if typing.TYPE_CHECKING:
    from deploy_verify.checks.metrics import MetricRule

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """An environment, release or baseline file that cannot be used; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


Duration = Annotated[float, BeforeValidator(parse_duration)]
NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _link_url(url: str) -> str:
    """A link is for a person to click in the report: http(s) only, and never with credentials in it (the report is
    passed around, so a URL with user:password@ is refused without being echoed)."""
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    if "@" in authority:
        raise ValueError("a link must not carry credentials (user:password@host): the report shows it to everyone")
    if not re.match(r"^https?://[^/\s?#]+[^\s]*$", url):
        raise ValueError(f"expected an http:// or https:// URL without spaces, got {url!r}")
    return url


# `links:` (environment and component level): name -> URL of a dashboard, a runbook, ...; each of a component's tests
# in the Allure report links to its own and to the environment's (deploy_verify.allure_meta).
Links = dict[str, Annotated[str, AfterValidator(_link_url)]]


class BodyRuleConfig(Strict):
    contains: str | None = None
    json_path: str | None = None
    equals: Any = None

    @model_validator(mode="after")
    def _one_rule(self) -> BodyRuleConfig:
        if (self.contains is None) == (self.json_path is None):
            raise ValueError("give exactly one of contains or json_path (with equals)")
        if self.json_path is not None and self.equals is None:
            raise ValueError("json_path needs equals: the value a healthy answer has there")
        return self


class HealthConfig(Strict):
    url: str
    body: BodyRuleConfig | None = None
    version_path: str | None = None
    timeout: Duration | None = None
    latency_budget: Duration | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        return url


class TlsHostConfig(Strict):
    host: str
    port: int = Field(default=443, ge=1, le=65535)
    address: str | None = None
    min_days: float | None = Field(default=None, ge=0)


class CertificateConfig(Strict):
    """A cert-manager Certificate and where it is served (default: each of its dnsNames on port 443)."""

    name: str = Field(pattern=NAME)
    namespace: str | None = None  # default: the component's namespace
    endpoints: list[TlsHostConfig] = []


class HttpDefaults(Strict):
    timeout: Duration = 5.0
    latency_budget: Duration = 1.0
    retry_interval: Duration = 2.0


class TlsDefaults(Strict):
    min_days: float = Field(default=14, ge=0)
    promotion_window_days: float = Field(default=30, ge=0)
    min_version: Literal["1.2", "1.3"] = "1.2"
    ca_bundle: str | None = None
    timeout: Duration = 5.0


class KubernetesDefaults(Strict):
    max_restarts: int = Field(default=3, ge=0)
    grace: Duration = 5.0  # how long a terminal-looking pod state must last during a wait before it fails
    rollout_timeout: Duration = 300.0  # how long "the rollout is watched" waits before it gives up


class AzureDefaults(Strict):
    poll_interval: Duration = 5.0  # between looks while provisioning is in progress (ARM has no watch)
    provisioning_timeout: Duration = 300.0  # how long "watched until provisioning settles" waits


class TimeoutDefaults(Strict):
    """How long one call of each transport may take; every value is capped by what is left of the budget."""

    kubernetes_request: Duration = 15.0
    kubernetes_watch: Duration = 300.0  # one watch stream; a wait reopens it until its window ends
    arm_request: Duration = 20.0
    arm_operation: Duration = 300.0  # an ARM long-running operation (the drill's traffic switch)
    credential: Duration = 30.0  # acquiring an Azure token
    helm: Duration = 300.0  # one helm command (the drill's rollback, a pre-deploy `helm template`)
    terraform: Duration = 600.0  # one OpenTofu/Terraform command (`init`, `plan -refresh-only`, `show -json`)
    prometheus_request: Duration = 10.0  # one PromQL query (`/api/v1/query_range`) of a metric rule


MetricOp = Literal["<", "<=", ">", ">="]


class PrometheusConfig(Strict):
    """The Prometheus (or Thanos, Mimir, VictoriaMetrics: anything serving its HTTP API) the metric rules query."""

    url: str
    token_env: str | None = None  # the environment variable holding a bearer token (None: no Authorization header)
    ca_bundle: str | None = None  # the PEM file that trusts an https server (default: the system's store)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _link_url(url)  # http(s), and never credentials in the URL: use token_env


class MetricsConfig(Strict):
    prometheus: PrometheusConfig


class SoakConfig(Strict):
    """How long a post-deploy run of this environment holds its verdict before it is green, looking again at the
    fast checks and the metric rules every `every` (`--soak` overrides the duration)."""

    duration: Duration
    every: Duration = 30.0

    @model_validator(mode="after")
    def _looks_inside(self) -> SoakConfig:
        if self.every > self.duration:
            raise ValueError(f"every ({self.every:g}s) is longer than the soak's duration ({self.duration:g}s)")
        return self


class ThresholdConfig(Strict):
    op: MetricOp  # the condition that passes: value < 0.01
    value: float


class ToleranceConfig(Strict):
    ratio: float = Field(default=0.0, ge=0)  # 0.2: up to 20 % worse than before the deploy
    absolute: float = Field(default=0.0, ge=0)  # in the query's unit; with both, the larger allowance applies


class BaselineRuleConfig(Strict):
    op: MetricOp = "<="  # value <= baseline + tolerance (an upper bound: errors, latency)
    tolerance: ToleranceConfig = ToleranceConfig()


class MetricRuleConfig(Strict):
    """One metric rule of a component (checks.metrics.MetricRule): a PromQL template and a threshold or a baseline
    comparison. Built into a MetricRule when the file is loaded, so a bad rule is a file:line message, not an ERROR."""

    name: str = Field(min_length=1)
    query: str = Field(min_length=1)  # PromQL; {component}, {namespace}, ... inside quoted strings
    threshold: ThresholdConfig | None = None
    baseline: BaselineRuleConfig | None = None
    window: Duration = 60.0
    step: Duration = 10.0
    min_samples: int = Field(default=3, ge=1)
    aggregate: Literal["mean", "max", "min", "last"] = "mean"

    def rule(self) -> MetricRule:
        """The checks' rule; ValueError says what is inconsistent (kind, window and step, the template)."""
        from deploy_verify.checks.metrics import MetricRule, Tolerance

        if (self.threshold is None) == (self.baseline is None):
            raise ValueError("give exactly one of threshold ({op, value}) or baseline ({op, tolerance})")
        if self.threshold is not None:
            return MetricRule(
                self.name, self.query, "threshold", self.threshold.op, self.threshold.value,
                window=self.window, step=self.step, min_samples=self.min_samples, aggregate=self.aggregate,
            )  # fmt: skip
        assert self.baseline is not None
        tolerance = Tolerance(self.baseline.tolerance.ratio, self.baseline.tolerance.absolute)
        return MetricRule(
            self.name, self.query, "baseline", self.baseline.op, None, tolerance,
            window=self.window, step=self.step, min_samples=self.min_samples, aggregate=self.aggregate,
        )  # fmt: skip


class Defaults(Strict):
    timeouts: TimeoutDefaults = TimeoutDefaults()
    http: HttpDefaults = HttpDefaults()
    tls: TlsDefaults = TlsDefaults()
    kubernetes: KubernetesDefaults = KubernetesDefaults()
    azure: AzureDefaults = AzureDefaults()


class ClusterConfig(Strict):
    context: str | None = None
    kubeconfig: str | None = None
    in_cluster: bool = False
    reboot_annotations: list[str] = []  # node annotations that mean "waiting for a reboot" (e.g. Kured's)

    @model_validator(mode="after")
    def _one_way_in(self) -> ClusterConfig:
        if (self.context is None) == (not self.in_cluster):
            raise ValueError("give either context (a kubeconfig context) or in_cluster: true")
        return self


class SubscriptionConfig(Strict):
    subscription_id: str
    tenant_id: str | None = None

    @field_validator("subscription_id", "tenant_id")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        if value is not None and not GUID.match(value):
            raise ValueError(f"expected a GUID like 00000000-0000-0000-0000-000000000000, got {value!r}")
        return value


class AzureConfig(Strict):
    subscriptions: dict[str, SubscriptionConfig]
    arm_endpoint: str = "https://management.azure.com"
    ca_bundle: str | None = None
    # default: DefaultAzureCredential (workload identity in CI, `az login` on a laptop, managed identity in Azure).
    # token-env: a bearer token from the environment variable `token_env` (e.g. from `az account get-access-token`).
    credential: Literal["default", "token-env"] = "default"
    token_env: str = "AZURE_ACCESS_TOKEN"  # noqa: S105 - the name of a variable, not a token


class SelectorConfig(Strict):
    """`select:` makes a component stand for a set, resolved once per run before tests are distributed
    (deploy_verify.selection): workloads by namespace, labels and kind on one cluster, several or all; Helm releases
    by namespace; Container Apps and Function Apps by resource group and tags. An empty set is an ERROR."""

    clusters: list[str] | Literal["all"] | None = None  # default: the component's cluster
    namespaces: list[Annotated[str, Field(pattern=NAME)]] = []  # Kubernetes: where to look (required there)
    # a Kubernetes label selector, as kubectl -l takes it ("app in (a,b),release=x,!canary") or {label: value}
    labels: str | dict[str, str] | None = None
    kinds: list[str] = []  # workload kinds the set may hold (default: the component's kind)
    resource_groups: list[str] = []  # Azure (required there)
    tags: dict[str, str] = {}  # Azure: every one must match


class ApiConfig(Strict):
    """One API of an API Management service (kind apim): checks.apim says what is judged."""

    name: str = Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9._]*$")  # the API id (without ;rev=N)
    # the revision that must be current; the release manifest's `revisions: {API: N}` overrides it per release
    revision: str | None = Field(default=None, pattern=r"^[1-9][0-9]*$")
    fronts: str | None = None  # a component (containerapp, endpoint) whose address the API's serviceUrl points at
    backend: str | None = None  # or the host (or URL) it must point at, written out
    version_in_notes: bool = False  # the team records the released version in the API release's notes


def _yaml_off(value: object) -> object:
    """YAML 1.1 reads an unquoted `off` (and `no`) as false: `min-replicas: off` means the rule is off."""
    return "off" if value is False else value


RuleLevel = Annotated[Literal["block", "warn", "off"], BeforeValidator(_yaml_off)]


class SilenceConfig(Strict):
    """One policy finding accepted on purpose: which rule, on which object, and why (the reason is shown in the
    report next to the finding, so a silence is reviewed with the release instead of forgotten)."""

    rule: str
    object: str  # KIND/NAMESPACE/NAME or KIND/NAME (cluster-scoped); `*` matches any run of characters
    reason: str = Field(min_length=3)


class PolicyConfig(Strict):
    """Pre-deploy manifest policy (checks.policy): each rule blocks (FAIL), warns (shown, green) or is off."""

    rules: dict[str, RuleLevel] = {}  # rule id -> level; unnamed rules keep their default level
    silence: list[SilenceConfig] = []


class Component(Strict):
    name: str = Field(pattern=NAME)
    kind: str  # one of suite.kinds.KINDS
    cluster: str | None = None
    namespace: str | None = None
    workload: str | None = None
    # the container that runs the released image (default: the one named like the workload or component, else the
    # only one; with several and none so named the image check asks for this key)
    container: str | None = None
    # the fewest pods the workload may want (rollout, pods and image checks): default 1; 0 only when declared
    min_replicas: int | None = Field(default=None, ge=0)
    services: list[str] = []  # Services that must route to the workload (default: every Service selecting it)
    release: str | None = None  # kind helm: the Helm release name (default: the component name)
    # Container App traffic split: revision name (APP--SUFFIX), "latest" or "label:NAME" -> weight 0-100, adding up
    # to 100 (default: everything on the latest revision); checked by _traffic_problems
    traffic: dict[str, Annotated[int, Field(strict=True, ge=0, le=100)]] | None = None
    # Function App: where its running version is recorded (checks.functionapps.VersionSource; default
    # deployment_message): deployment_message, package_url, app_setting:NAME, tag:NAME
    version_source: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    resource: str | None = None
    health: list[HealthConfig] = []
    tls: list[TlsHostConfig] = []
    certificates: list[CertificateConfig] = []  # cert-manager Certificates (in `cluster`) this component serves
    links: Links = {}
    select: SelectorConfig | None = None  # the component is a set (see SelectorConfig); members named NAME@WHERE
    # how a selected member finds its entry in the release manifest: `name` (the workload's, release's or app's own
    # name, the default) or `label:KEY` (a label's value, e.g. label:app.kubernetes.io/name; Azure: tag:KEY)
    release_key: str | None = None
    depends_on: list[str] = []  # components (or selections) that must be healthy before this one is judged
    api_version: str | None = None  # kind resource: the object's apiVersion (group/version, or v1)
    resource_kind: str | None = None  # kind resource: the object's kind (e.g. Rollout)
    application: str | None = None  # kind argocd: the Application's name (default: the component name)
    allow_suspended: list[str] = []  # kind helm: CronJobs of the release that may be suspended
    # kind helm, before the deploy (@policy): the chart directory and the environment's values files, rendered with
    # `helm template` as the deploy would render them
    chart: str | None = None
    values: list[str] | None = None
    path: str | None = None  # kind manifests: the folder of plain manifests (*.yaml, *.yml, *.json)
    apis: list[ApiConfig] | None = None  # kind apim: the APIs the service must serve at their released revision
    # kind terraform (@drift): the working directory planned, or the JSON of a plan the pipeline saved
    # (`tofu show -json PLANFILE`), with its variable files and workspace
    working_dir: str | None = None
    plan_json: str | None = None
    var_files: list[str] | None = None
    workspace: str | None = None
    metrics: list[MetricRuleConfig] = []  # @metrics: PromQL rules judged after the deploy (environment metrics:)
    # Set by the suite, never written: the selection a member came from, the name its release entry has, and why a
    # selection has no members (an ERROR for every check of it).
    _member_of: str | None = PrivateAttr(default=None)
    _release_as: str | None = PrivateAttr(default=None)
    _unresolved: tuple[str, str] | None = PrivateAttr(default=None)  # (why, report category)

    @field_validator("version_source")
    @classmethod
    def _version_source(cls, source: str | None) -> str | None:
        from deploy_verify.checks.functionapps import VersionSource

        VersionSource.parse(source)  # ValueError names the allowed forms
        return source

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from deploy_verify.kinds import KINDS

        if kind not in KINDS:
            raise ValueError(f"{kind!r} is not one of: {', '.join(KINDS)}")
        return kind

    def __repr__(self) -> str:
        return f"Component({self.name!r}, kind={self.kind!r})"

    @property
    def member_of(self) -> str | None:
        """The selection this component was resolved from, or None for one written out by hand."""
        return self._member_of

    @property
    def release_name(self) -> str:
        """The component's key in the release manifest."""
        return self._release_as or self.name

    @property
    def unresolved(self) -> tuple[str, str] | None:
        """(why, category) when this selection stands for no member (its checks are ERRORs), else None."""
        return self._unresolved

    def metric_labels(self) -> dict[str, str]:
        """The values a metric rule's query template may use: {component}, and each of namespace, cluster,
        workload, resource, resource_group and release the component has; a selection's member has its own, and
        {selection}, the name of the `select:` component it was found by."""
        labels = {"component": self.name, "release": self.release_name}
        for key in ("namespace", "cluster", "workload", "resource", "resource_group"):
            value = getattr(self, key)
            if value is not None:
                labels[key] = value
        if self.workload is None and self.kind in ("deployment", "statefulset", "daemonset"):
            labels["workload"] = self.name  # a workload named like its component, as the workload checks assume
        if self.member_of is not None:  # a member of a `select:`: its own object, cluster and namespace, above
            labels["selection"] = self.member_of
        return labels

    def health_probes(self, defaults: Defaults) -> list[HealthProbe]:
        """The component's health endpoints with the environment's defaults filled in."""
        return [
            HealthProbe(
                url=h.url,
                timeout=h.timeout or defaults.http.timeout,
                latency_budget=h.latency_budget or defaults.http.latency_budget,
                body=BodyRule(h.body.contains, h.body.json_path, h.body.equals) if h.body else None,
                version_path=h.version_path,
                ca_bundle=defaults.tls.ca_bundle,
            )
            for h in self.health
        ]

    def tls_targets(self, defaults: Defaults) -> list[tuple[TlsTarget, float]]:
        """Each TLS host with the minimum days it must stay valid for."""
        return [
            (
                TlsTarget(
                    t.host, t.port, t.address, defaults.tls.min_version, defaults.tls.ca_bundle, defaults.tls.timeout
                ),
                t.min_days if t.min_days is not None else defaults.tls.min_days,
            )
            for t in self.tls
        ]


class Environment(Strict):
    _by_name: dict[str, Component] = PrivateAttr(default_factory=dict)
    # The selections as written, once deploy_verify.selection has replaced them by their members.
    _selections: dict[str, Component] = PrivateAttr(default_factory=dict)
    name: str = Field(pattern=NAME)
    description: str | None = None
    extends: str | list[str] | None = None  # base file(s) this one overrides, merged before validation
    promotes_from: str | None = None
    protected: bool = False
    budget: Duration = 600.0
    checks: list[str] | None = None  # tags of declared check families (suite.family); None: all that apply
    defaults: Defaults = Defaults()
    clusters: dict[str, ClusterConfig] = {}
    azure: AzureConfig | None = None
    components: list[Component] = Field(min_length=1)
    links: Links = {}
    policy: PolicyConfig = PolicyConfig()  # pre-deploy manifest policy: levels per rule, silenced findings
    metrics: MetricsConfig | None = None  # where the components' metric rules are queried
    soak: SoakConfig | None = None  # post-deploy runs hold their verdict this long (--soak overrides)
    # A promotion into this environment needs the source's last post-deploy run to have held a soak this long
    # (Kargo's requiredSoakTime): checked by the promotion scenario against the source's verdict file.
    requires_soak: Duration | None = None

    @field_validator("checks")
    @classmethod
    def _known_families(cls, checks: list[str] | None) -> list[str] | None:
        from deploy_verify.family import family_tags

        known = family_tags()
        unknown = [c for c in checks or [] if c not in known]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))} is not one of: {', '.join(known)}")
        return checks

    def __repr__(self) -> str:
        # Short on purpose: reporting plugins repr() every step argument, and a full repr grows with the estate
        # (it made a 400-component run quadratic).
        return f"Environment({self.name!r}, {len(self.components)} components)"

    def component(self, name: str) -> Component:
        """By name, through an index: every test looks its component up, and a scan would be O(N) each time."""
        if not self._by_name:
            self._by_name.update((c.name, c) for c in self.components)
        return self._by_name[name]

    def call_timeouts(self) -> CallTimeouts:
        calls = self.defaults.timeouts
        return CallTimeouts(
            kubernetes_request=calls.kubernetes_request,
            kubernetes_watch=calls.kubernetes_watch,
            arm_request=calls.arm_request,
            arm_operation=calls.arm_operation,
            credential=calls.credential,
            subprocess=calls.helm,
            terraform=calls.terraform,
            prometheus_request=calls.prometheus_request,
        )

    def budget_deadline(self, within: Deadline | None = None) -> Deadline:
        """The environment's one time budget (inside `within`, when given), carrying its per-call timeouts."""
        label = f"time budget of environment {self.name!r}"
        if within is None:
            return Deadline.after(self.budget, label, self.call_timeouts())
        inner = within.sub(self.budget, label)
        return Deadline(inner.at, inner.label, inner.started, self.call_timeouts())

    def allows(self, family: str) -> bool:
        return self.checks is None or family in self.checks

    @property
    def selections(self) -> dict[str, Component]:
        """The `select:` components as written (before resolution: those of `components`), by name."""
        return self._selections or {c.name: c for c in self.components if c.select is not None}

    def dependencies(self, component: Component) -> list[str]:
        """The hand-named components and selection members this one waits for (`depends_on`, a selection's
        members standing for it), in the environment's order."""
        wanted = set(component.depends_on)
        return [c.name for c in self.components if c.name in wanted or (c.member_of or "") in wanted]


def load_environment(name: str, env_dir: Path) -> Environment:
    """Load environments/<name>.yaml; ConfigError names every problem with file and line."""
    if not re.match(NAME, name):
        # Checked before any file is opened: `--env ../../etc/x` must not read outside the environments folder.
        stem = name.removesuffix(".yaml").rsplit("/", 1)[-1]
        hint = f"; did you mean --env {stem}?" if stem in known_environments(env_dir) else ""
        known = ", ".join(known_environments(env_dir)) or "none"
        raise ConfigError(
            [
                f"--env {name!r} is not an environment name: give the name of a file in {env_dir.name}/ without "
                f".yaml (lowercase letters, digits and '-'); known environments: {known}{hint}"
            ]
        )
    path = env_dir / f"{name}.yaml"
    shown = f"{env_dir.name}/{path.name}"
    if not path.is_file():
        known = ", ".join(known_environments(env_dir)) or "none"
        raise ConfigError([f"unknown environment {name!r}: there is no {shown}; known environments: {known}"])
    try:
        data, origins = load_merged(path, shown, env_dir.parent)  # with the bases it `extends:` (deploy_verify.bases)
    except YamlSourceError as exc:
        raise ConfigError([str(exc)]) from exc
    except ExtendsError as exc:
        raise ConfigError(exc.problems) from exc
    env = validate(Environment, data, origins, shown)
    problems = [
        "{}:{}: {}: {}".format(*where(origins, loc, shown), dotted(loc), text) for loc, text in _cross_check(env, name)
    ]
    if problems:
        raise ConfigError(problems)
    return _resolve_paths(env, env_dir.parent)


def known_environments(env_dir: Path) -> list[str]:
    return sorted(p.stem for p in env_dir.glob("*.yaml"))


def validate(model: type[M], data: Any, lines: Mapping[Loc, int | Origin], shown: str) -> M:
    """model.model_validate(data), with pydantic's errors rewritten as `file:line: path: problem`; `lines` gives the
    line of each key path in `shown`, or (file, line) where the data was merged from several (bases.load_merged)."""
    if not isinstance(data, dict):
        raise ConfigError([f"{shown}:1: expected a mapping at the top level, got {type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = sorted(
            ((where(lines, tuple(e["loc"]), shown), _describe_error(model, e)) for e in exc.errors()),
            key=lambda p: (p[0][0] != shown, p[0]),  # the file's own problems first, then its bases'
        )
        raise ConfigError([f"{file}:{line}: {text}" for (file, line), text in problems]) from exc


def _describe_error(root: type[BaseModel], error: Any) -> str:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _annotation_at(root, loc[:-1])
        allowed = ", ".join(sorted(parent.model_fields)) if _is_model(parent) else "none"
        return f"{dotted(loc)}: unknown key; allowed keys: {allowed}"
    if kind == "missing":
        return f"{dotted(loc[:-1])}: missing required key {loc[-1]!r}"
    if kind == "literal_error":
        allowed = ", ".join(str(choice) for choice in typing.get_args(_annotation_at(root, loc)))
        return f"{dotted(loc)}: {error['input']!r} is not one of: {allowed}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in {"value_error", "assertion_error"}:
        return f"{dotted(loc)}: {message}"
    return f"{dotted(loc)}: {message[0].lower()}{message[1:]} (got {error['input']!r})"


def _annotation_at(root: type[BaseModel], loc: Loc) -> Any:
    """The type expected at `loc` (a model, a Literal, ...), found by walking the model's annotations."""
    node: Any = root
    for part in loc:
        node = _unwrap(node)
        if isinstance(part, int):
            node = typing.get_args(node)[0]
        elif _is_model(node):
            node = node.model_fields[part].annotation
        else:  # dict[str, Model]
            node = typing.get_args(node)[-1]
    return _unwrap(node)


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _unwrap(annotation: Any) -> Any:
    """`Model | None` -> Model, `Annotated[Model, ...]` -> Model; leaves list[...] and dict[...] alone."""
    if typing.get_origin(annotation) is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _cross_check(env: Environment, file_stem: str) -> list[tuple[Loc, str]]:
    """Rules that span keys: names match, references resolve, each kind has what it needs."""
    problems: list[tuple[Loc, str]] = []
    if env.name != file_stem:
        problems.append((("name",), f"{env.name!r} does not match the file name; expected {file_stem!r}"))
    seen: set[str] = set()
    for i, comp in enumerate(env.components):
        if comp.name in seen:
            problems.append((("components", i, "name"), f"{comp.name!r} is defined twice"))
        seen.add(comp.name)
        problems += [(("components", i, *loc), text) for loc, text in _component_problems(env, comp)]
        problems += [(("components", i, *loc), text) for loc, text in _selection_problems(env, comp)]
    if env.requires_soak is not None and env.promotes_from is None:
        problems.append((("requires_soak",), "a soak is required of the environment promoted from: set promotes_from"))
    return problems + _dependency_problems(env) + _policy_problems(env)


def _policy_problems(env: Environment) -> list[tuple[Loc, str]]:
    """Rule ids under policy: must be known, so a typo does not leave a rule at its default level."""
    from deploy_verify.checks.policy import RULES

    known = ", ".join(sorted(RULES))
    problems: list[tuple[Loc, str]] = [
        (("policy", "rules", rule), f"{rule!r} is not a policy rule; the rules are: {known}")
        for rule in env.policy.rules
        if rule not in RULES
    ]
    problems += [
        (("policy", "silence", i, "rule"), f"{silence.rule!r} is not a policy rule; the rules are: {known}")
        for i, silence in enumerate(env.policy.silence)
        if silence.rule not in RULES
    ]
    return problems


def _selection_problems(env: Environment, comp: Component) -> list[tuple[Loc, str]]:
    """`select:` holds only what the kind selects by, names clusters that exist, and parses; `release_key` is one
    of the forms."""
    from deploy_verify.kinds import KINDS, Workload, kind_of
    from deploy_verify.selection import SelectorSyntaxError, parse_labels

    problems: list[tuple[Loc, str]] = []
    kind = kind_of(comp)
    if comp.release_key is not None and comp.select is None:
        problems.append((("release_key",), "only a selection (a component with select:) maps members by release_key"))
    if comp.release_key is not None and not re.match(r"^(name|label:\S+|tag:\S+)$", comp.release_key):
        problems.append(
            (("release_key",), f"{comp.release_key!r} is not one of: name, label:KEY (Kubernetes), tag:KEY (Azure)")
        )
    select = comp.select
    if select is None:
        return problems
    allowed: frozenset[str] = getattr(kind, "selectable", frozenset())
    if not allowed:
        selectable = ", ".join(sorted(n for n, k in KINDS.items() if getattr(k, "selectable", None)))
        return [(("select",), f"a {comp.kind} component cannot be a selection; kinds that can: {selectable}")]
    written = select.model_fields_set
    by = ", ".join(sorted(allowed))
    problems += [
        (("select", key), f"a {comp.kind} selection does not select by {key}; it selects by {by}")
        for key in sorted(written - allowed)
    ]
    if kind.platform == "kubernetes":
        if not select.namespaces:
            problems.append((("select",), "missing required key 'namespaces': the namespaces to look in"))
        if isinstance(select.clusters, list):
            problems += [
                (("select", "clusters", j), f"{name!r} is not one of: {', '.join(sorted(env.clusters)) or 'none'}")
                for j, name in enumerate(select.clusters)
                if name not in env.clusters
            ]
    if kind.platform == "azure" and not select.resource_groups:
        problems.append((("select",), "missing required key 'resource_groups': the resource groups to look in"))
    if "kinds" in written:
        workload_kinds = sorted(n for n, k in KINDS.items() if isinstance(k, Workload))
        problems += [
            (("select", "kinds", j), f"{name!r} is not one of: {', '.join(workload_kinds)}")
            for j, name in enumerate(select.kinds)
            if name not in workload_kinds
        ]
    if "labels" in written:
        try:
            parse_labels(select.labels)
        except SelectorSyntaxError as exc:
            problems.append((("select", "labels"), str(exc)))
    return problems


def _dependency_problems(env: Environment) -> list[tuple[Loc, str]]:
    """`depends_on` names components of this environment, never the component itself, and never closes a cycle."""
    names = [c.name for c in env.components]
    problems: list[tuple[Loc, str]] = []
    for i, comp in enumerate(env.components):
        for j, name in enumerate(comp.depends_on):
            if name == comp.name:
                problems.append((("components", i, "depends_on", j), f"{comp.name!r} cannot depend on itself"))
            elif name not in names:
                problems.append((("components", i, "depends_on", j), f"{name!r} is not one of: {', '.join(names)}"))
    graph = {c.name: [d for d in c.depends_on if d in names and d != c.name] for c in env.components}
    cycle = _cycle(graph)
    if cycle:
        first = names.index(cycle[0])
        problems.append((("components", first, "depends_on"), f"dependency cycle: {' -> '.join(cycle)}"))
    return problems


def _cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of the graph (its names, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in graph:
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def _component_problems(env: Environment, comp: Component) -> list[tuple[Loc, str]]:
    from deploy_verify.kinds import KINDS

    kind = KINDS[comp.kind]
    problems: list[tuple[Loc, str]] = []
    required = {"kubernetes": ("cluster", "namespace"), "azure": ("subscription", "resource_group")}
    # A selection says where it looks under `select:` instead (namespaces and resource groups there are required;
    # its clusters default to the component's cluster).
    chosen = comp.select.model_fields_set | {"namespaces", "resource_groups"} if comp.select else set()
    instead = {"namespace": "namespaces", "cluster": "clusters", "resource_group": "resource_groups"}
    problems += [
        ((), f"missing required key {key!r} for kind {comp.kind}")
        for key in required.get(kind.platform, ())
        if getattr(comp, key) is None and instead.get(key) not in chosen
    ]
    if kind.platform == "kubernetes" and comp.cluster is not None and comp.cluster not in env.clusters:
        known = ", ".join(sorted(env.clusters)) or "none defined under clusters"
        problems.append((("cluster",), f"{comp.cluster!r} is not one of: {known}"))
    if kind.platform == "azure":
        subscriptions = env.azure.subscriptions if env.azure else {}
        if comp.subscription is not None and comp.subscription not in subscriptions:
            known = ", ".join(sorted(subscriptions)) or "none defined under azure.subscriptions"
            problems.append((("subscription",), f"{comp.subscription!r} is not one of: {known}"))
    problems += [((), text) for text in kind.problems(comp)]
    problems += _own_key_problems(comp) + _traffic_problems(comp) + _api_problems(env, comp)
    problems += _metric_problems(env, comp)
    if comp.certificates and kind.platform != "kubernetes":
        if comp.cluster is None:
            problems.append((("certificates",), "cert-manager Certificates need the component's cluster"))
        elif comp.cluster not in env.clusters:
            known = ", ".join(sorted(env.clusters)) or "none defined under clusters"
            problems.append((("cluster",), f"{comp.cluster!r} is not one of: {known}"))
        problems += [
            (("certificates", i, "namespace"), "missing: give the Certificate's namespace or the component's")
            for i, cert in enumerate(comp.certificates)
            if cert.namespace is None and comp.namespace is None
        ]
    return problems


def _metric_problems(env: Environment, comp: Component) -> list[tuple[Loc, str]]:
    """Each metric rule is a valid MetricRule whose template this component can fill, and there is a Prometheus."""
    if not comp.metrics:
        return []
    from deploy_verify.checks.metrics import TemplateError, fill  # here: a run without metric rules never loads it

    problems: list[tuple[Loc, str]] = []
    if env.metrics is None:
        problems.append(
            (
                ("metrics",),
                "metric rules need a Prometheus to query: add metrics: {prometheus: {url: ...}} to the environment",
            )
        )
    labels = comp.metric_labels()
    if comp.select is not None:  # a member gets its own names at resolution; any of them may be used
        labels.update(
            dict.fromkeys(("namespace", "cluster", "workload", "resource", "resource_group", "selection"), "x")
        )
    for i, config in enumerate(comp.metrics):
        try:  # the template first, so that its message points at the query
            fill(config.query, labels)
            config.rule()
        except TemplateError as exc:
            problems.append((("metrics", i, "query"), str(exc)))
        except ValueError as exc:
            problems.append((("metrics", i), str(exc)))
    names = [m.name for m in comp.metrics]
    problems += [
        (("metrics", i, "name"), f"{name!r} is used by two metric rules of {comp.name!r}")
        for i, name in enumerate(names)
        if name in names[:i]
    ]
    return problems


def _own_key_problems(comp: Component) -> list[tuple[Loc, str]]:
    """A key only some kinds read (`own_keys` on the kind: traffic, version_source) set on another kind would be
    ignored without a word."""
    from deploy_verify.kinds import KINDS

    owners: dict[str, list[str]] = {}
    for name, kind in KINDS.items():
        for key in getattr(kind, "own_keys", frozenset()):
            owners.setdefault(key, []).append(name)
    return [
        ((key,), f"only kind {' or '.join(kinds)} reads {key}; this component is a {comp.kind}, which ignores it")
        for key, kinds in sorted(owners.items())
        if comp.kind not in kinds and getattr(comp, key, None) is not None
    ]


def _api_problems(env: Environment, comp: Component) -> list[tuple[Loc, str]]:
    """An API fronts a component the environment defines, whose kind has an address to compare with; it is given
    one backend expectation at most; its id is listed once."""
    from deploy_verify.kinds import KINDS

    problems: list[tuple[Loc, str]] = []
    names = {c.name: c for c in env.components}
    seen: set[str] = set()
    for i, api in enumerate(comp.apis or []):
        if api.name in seen:
            problems.append((("apis", i, "name"), f"API {api.name!r} is listed twice"))
        seen.add(api.name)
        if api.fronts is not None and api.backend is not None:
            problems.append((("apis", i), "give fronts (a component) or backend (a host), not both"))
        if api.fronts is None:
            continue
        if api.fronts not in names:
            problems.append((("apis", i, "fronts"), f"{api.fronts!r} is not a component of this environment"))
        elif not KINDS[names[api.fronts].kind].has_address:
            fronting = sorted(k for k, kind in KINDS.items() if kind.has_address)
            problems.append(
                (
                    ("apis", i, "fronts"),
                    f"{api.fronts!r} is a {names[api.fronts].kind}, which has no address to compare the API's "
                    f"backend with (kinds that do: {', '.join(fronting)}); give backend: HOST instead",
                )
            )
    return problems


TRAFFIC_REVISION = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]--[a-z0-9]([a-z0-9-]*[a-z0-9])?$")  # ARM: APP--SUFFIX
TRAFFIC_LABEL = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")


def _traffic_problems(comp: Component) -> list[tuple[Loc, str]]:
    """`traffic:` keys are a revision name (APP--SUFFIX), `latest`, or `label:NAME`; the weights add up to 100, as ARM
    requires of an app's ingress traffic. A bare label (`blue: 80`) would otherwise be taken for a revision name."""
    if comp.traffic is None:
        return []
    if not comp.traffic:
        return [(("traffic",), "give at least one revision and its weight, e.g. {latest: 100}")]
    problems: list[tuple[Loc, str]] = []
    for key in comp.traffic:
        label = key.removeprefix("label:")
        if key == "latest" or (key != label and TRAFFIC_LABEL.match(label)) or TRAFFIC_REVISION.match(key):
            continue
        if key != label:
            text = f"{label!r} is not a revision label: lower-case letters, digits and '-', starting with a letter"
        else:
            hint = f"; a revision label is written label:{key}" if TRAFFIC_LABEL.match(key) else ""
            text = f"{key!r} is not a revision name (APP--SUFFIX), latest, or label:NAME{hint}"
        problems.append((("traffic", key), text))
    total = sum(comp.traffic.values())
    if total != 100:
        listed = ", ".join(f"{key}: {weight}" for key, weight in comp.traffic.items())
        problems.append((("traffic",), f"the weights add up to {total}, expected 100 ({listed})"))
    return problems


def _resolve_paths(env: Environment, root: Path) -> Environment:
    """Relative file paths in the YAML are relative to the repository root, wherever pytest runs from; `~` expands."""

    def resolve(path: str | None) -> str | None:
        if path is None:
            return None
        expanded = Path(path).expanduser()
        return str(expanded if expanded.is_absolute() else root / expanded)

    def resolve_all(paths: list[str] | None) -> list[str] | None:
        return None if paths is None else [str(resolve(p)) for p in paths]

    components = [
        c.model_copy(
            update={
                "chart": resolve(c.chart),
                "values": resolve_all(c.values),
                "path": resolve(c.path),
                "working_dir": resolve(c.working_dir),
                "plan_json": resolve(c.plan_json),
                "var_files": resolve_all(c.var_files),
            }
        )
        for c in env.components
    ]
    tls = env.defaults.tls.model_copy(update={"ca_bundle": resolve(env.defaults.tls.ca_bundle)})
    clusters = {name: c.model_copy(update={"kubeconfig": resolve(c.kubeconfig)}) for name, c in env.clusters.items()}
    azure = env.azure.model_copy(update={"ca_bundle": resolve(env.azure.ca_bundle)}) if env.azure else None
    metrics = env.metrics
    if metrics is not None:
        prometheus = metrics.prometheus.model_copy(update={"ca_bundle": resolve(metrics.prometheus.ca_bundle)})
        metrics = metrics.model_copy(update={"prometheus": prometheus})
    defaults = env.defaults.model_copy(update={"tls": tls})
    update = {"defaults": defaults, "clusters": clusters, "azure": azure, "components": components, "metrics": metrics}
    return env.model_copy(update=update)
