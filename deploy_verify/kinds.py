"""Component kinds: everything the suite knows about a kind, in one adapter per kind.

    KINDS["deployment"].where(component)           # "Deployment:shop/web"
    KINDS["helm"].read_state(component, clients, deadline)

An adapter says which platform the kind lives on (and so which keys an environment entry needs), how to name its
target, which check families apply to it (`families`: the promotion check included, so a new kind is enrolled in a
family only when someone decides it), how to read its running version and its baseline state, how to judge a
restored state and how to roll it back. Nothing outside this module branches on a component's kind.

Adding a kind: subclass `Kind`, fill in what applies, `register()` it. `docs/extending.md` walks through one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from deploy_verify.checks.argocd import ApplicationRef, application_revision
from deploy_verify.checks.baseline import (
    ComponentState,
    ContainerAppState,
    HelmState,
    NotRecordable,
    WorkloadState,
    container_app_state,
    helm_state,
    workload_state,
)
from deploy_verify.checks.containerapps import AppRef
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.drill import DrillImpossible, roll_back_helm, roll_back_traffic, roll_back_workload
from deploy_verify.checks.helm import HELM_SECRETS, HelmRef
from deploy_verify.checks.images import tag_of
from deploy_verify.checks.render import ChartSource, Pending, chart_facts, read_folder, render_chart
from deploy_verify.checks.resources import ResourceRef
from deploy_verify.checks.result import CheckResult
from deploy_verify.checks.rollback import check_app_restored, check_helm_restored, check_workload_restored
from deploy_verify.checks.runner import Undecidable
from deploy_verify.checks.transports.arm import arm_call, as_dict
from deploy_verify.checks.workloads import KIND_NAMES, PLURALS, WorkloadRef
from deploy_verify.selection import Found, parse_labels

if TYPE_CHECKING:
    from deploy_verify.clients import AzureClients, KubeClients
    from deploy_verify.config import Component

Platform = Literal["kubernetes", "azure", "none"]
# The families a kind with recorded state takes part in: a baseline, its comparison after a rollback, the drill.
STATEFUL = frozenset({"baseline", "restored", "drill"})


@dataclass(frozen=True)
class Clients:
    """The transports a kind reads through: Kubernetes readers per cluster, ARM clients per subscription."""

    kube: KubeClients
    azure: AzureClients


class Kind:
    """The behaviour of one component kind. The defaults are what a kind without state or version does."""

    name: ClassVar[str]
    marker: ClassVar[str]  # the pytest marker's text: `-m deployment`
    platform: ClassVar[Platform] = "none"
    families: ClassVar[frozenset[str]] = frozenset()  # tags of the kind-driven families that apply to it
    # Whether `address()` answers: an API Management API can be checked to front a component of such a kind.
    has_address: ClassVar[bool] = False

    def where(self, component: Component) -> str:
        return f"component:{component.name}"

    def problems(self, component: Component) -> list[str]:
        """Rules of this kind beyond the platform's required keys; one line each."""
        return []

    def select(self, component: Component, clusters: list[str], clients: Clients, deadline: Deadline) -> list[Found]:
        """The objects a `select:` component of this kind stands for (deploy_verify.selection), read from shared
        lists; `clusters` are the ones a Kubernetes selection looks in."""
        raise Undecidable(f"a {self.name} component cannot be a selection")

    def running_version(self, component: Component, clients: Clients, deadline: Deadline) -> dict[str, str] | None:
        """{"version": ..., "image": ...} as far as readable; None for a kind whose version is not read."""
        return None

    def reads(self, family: str, component: Component) -> list[tuple[str, str | None]]:
        """The lists (resource plural, namespace) `family` reads on the component's cluster, known before any test
        runs, so a run can fetch them all at once (deploy_verify.prefetch); none by default: read when asked."""
        return []

    def applies(self, family: str, component: Component) -> bool:
        """Whether a family this kind lists (`families`) applies to this component of it; all do by default."""
        return True

    def pending(self, component: Component, clients: Clients, deadline: Deadline) -> Pending:
        """What a deploy of the component is about to apply (the @policy family): rendered, not yet applied."""
        raise Undecidable(f"a {self.name} has nothing the suite renders before the deploy")

    def address(self, component: Component, clients: Clients, deadline: Deadline) -> str | None:
        """The host name the component answers on (what a gateway in front of it must point at); None when it has
        none (a container app without ingress). Only kinds with `has_address` are asked."""
        raise Undecidable(f"a {self.name} has no address the suite reads")

    def read_state(self, component: Component, clients: Clients, deadline: Deadline) -> ComponentState:
        raise NotRecordable(f"a {self.name} has no state the suite records")

    def restored(
        self, component: Component, clients: Clients, recorded: ComponentState, recorded_at: str, deadline: Deadline
    ) -> CheckResult:
        raise NotRecordable(f"a {self.name} has no state the suite records")

    def roll_back(
        self, component: Component, clients: Clients, recorded: ComponentState, deadline: Deadline
    ) -> Callable[[], str]:
        """The rollback as a deferred call, so every failure to start it is reported the same way."""
        raise DrillImpossible(f"a {self.name} cannot be rolled back by the suite")


class Workload(Kind):
    platform = "kubernetes"
    families = frozenset({"rollout", "pods", "image", "endpoints", "promotion"}) | STATEFUL
    object_key: ClassVar[str] = "workload"  # the component key a selected member's object name goes in
    selectable: ClassVar[frozenset[str]] = frozenset({"clusters", "namespaces", "labels", "kinds"})

    def select(self, component: Component, clusters: list[str], clients: Clients, deadline: Deadline) -> list[Found]:
        assert component.select is not None
        found: list[Found] = []
        for kind in component.select.kinds or [self.name]:
            found += labelled(kind, "apps/v1", KIND_NAMES[kind], component, clusters, clients, deadline)
        return found

    def reads(self, family: str, component: Component) -> list[tuple[str, str | None]]:
        namespace = component.namespace
        history = "replicasets" if self.name == "deployment" else "controllerrevisions"
        own: list[tuple[str, str | None]] = [(PLURALS[self.name], namespace), ("pods", namespace), (history, namespace)]
        if family == "endpoints":
            return [*own, ("services", namespace), ("endpointslices", namespace)]
        return own if family in ("rollout", "pods", "image") else []

    def ref(self, component: Component) -> WorkloadRef:
        assert component.namespace is not None  # the config loader requires it for Kubernetes kinds
        return WorkloadRef(self.name, component.namespace, component.workload or component.name)

    def where(self, component: Component) -> str:
        return self.ref(component).where

    def running_version(self, component: Component, clients: Clients, deadline: Deadline) -> dict[str, str] | None:
        state = self.read_state(component, clients, deadline)
        assert isinstance(state, WorkloadState)
        return _image_version(state.images[released_container(component, self.ref(component).name, state.images)])

    def read_state(self, component: Component, clients: Clients, deadline: Deadline) -> ComponentState:
        return workload_state(clients.kube.reader(str(component.cluster)), self.ref(component), deadline)

    def restored(
        self, component: Component, clients: Clients, recorded: ComponentState, recorded_at: str, deadline: Deadline
    ) -> CheckResult:
        reader = clients.kube.reader(str(component.cluster))
        return check_workload_restored(reader, self.ref(component), recorded, recorded_at, deadline)

    def roll_back(
        self, component: Component, clients: Clients, recorded: ComponentState, deadline: Deadline
    ) -> Callable[[], str]:
        if not (isinstance(recorded, WorkloadState) and recorded.kind == self.name):
            raise DrillImpossible(f"the baseline recorded a {recorded.kind}, but the component is a {self.name}")
        writer = clients.kube.writer(str(component.cluster))
        return lambda: roll_back_workload(writer, self.ref(component), recorded, deadline)


class AmbiguousContainer(Undecidable):
    """The pod template has several containers and nothing says which one runs the release: the version is not
    guessed from the first. Undecidable: every reader of running versions reports it as such, never crashes."""


def released_container(component: Component, workload: str, images: dict[str, str]) -> str:
    """The container whose image is the component's version: the one the environment names, else the one named like
    the workload or the component, else the only one (the image check's rule, checks.images.plan_for)."""
    if component.container is not None:
        if component.container not in images:
            known = ", ".join(images) or "none"
            raise AmbiguousContainer(f"the pod template has no container {component.container!r} (it has {known})")
        return component.container
    alike = [name for name in images if name in (workload, component.name)]
    if alike or len(images) == 1:
        return (alike or list(images))[0]
    raise AmbiguousContainer(
        f"cannot tell which container runs the release: the pod template has containers {', '.join(images)}, none "
        f"named {workload}; name it with `container: NAME` on the component in the environment file"
    )


class Deployment(Workload):
    name = "deployment"
    marker = "Kubernetes Deployment components"


class DaemonSet(Workload):
    name = "daemonset"
    marker = "Kubernetes DaemonSet components"


class StatefulSet(Workload):
    name = "statefulset"
    marker = "Kubernetes StatefulSet components"


class HelmRelease(Kind):
    name = "helm"
    marker = "Helm release components"
    platform = "kubernetes"
    object_key: ClassVar[str] = "release"
    selectable: ClassVar[frozenset[str]] = frozenset({"clusters", "namespaces"})

    def select(self, component: Component, clusters: list[str], clients: Clients, deadline: Deadline) -> list[Found]:
        """Every release stored in the namespaces (Helm's release Secrets, owner=helm: the list the release check
        reads too), whatever its status: a failed release is a member, and its check says it failed."""
        assert component.select is not None
        found: list[Found] = []
        for cluster in clusters:
            reader = clients.kube.reader(cluster)
            for namespace in component.select.namespaces:
                secrets = reader.listing("secrets", namespace, deadline, select=HELM_SECRETS).items
                names = sorted({str(s["metadata"].get("labels", {}).get("name", "")) for s in secrets} - {""})
                found += [Found(self.name, name, {}, cluster, namespace) for name in names]
        return found

    # "policy": only a release whose chart the environment names (`chart:`) is rendered before the deploy
    families = frozenset({"helmrelease", "helmresources", "promotion", "policy"}) | STATEFUL
    own_keys: ClassVar[frozenset[str]] = frozenset({"chart", "values"})

    def applies(self, family: str, component: Component) -> bool:
        return family != "policy" or component.chart is not None

    def pending(self, component: Component, clients: Clients, deadline: Deadline) -> Pending:
        """`helm template` of the chart with the environment's values, as the deploy will render it, and the
        release the cluster runs now (for the chart-version rule)."""
        assert component.chart is not None  # applies() enrols only components with a chart
        ref, cluster = self.ref(component), str(component.cluster)
        reader = clients.kube.reader(cluster)
        source = ChartSource(ref.name, ref.namespace, component.chart, tuple(component.values or ()))
        manifests = render_chart(clients.kube.helm_command(cluster), source, reader, deadline)
        return Pending(manifests, chart_facts(component.chart, reader, ref, deadline))

    def ref(self, component: Component) -> HelmRef:
        assert component.namespace is not None
        return HelmRef(component.namespace, component.release or component.name)

    def where(self, component: Component) -> str:
        return self.ref(component).where

    def running_version(self, component: Component, clients: Clients, deadline: Deadline) -> dict[str, str] | None:
        state = self.read_state(component, clients, deadline)
        assert isinstance(state, HelmState)
        return {"version": state.app_version, "chart": state.chart}

    def read_state(self, component: Component, clients: Clients, deadline: Deadline) -> ComponentState:
        return helm_state(clients.kube.reader(str(component.cluster)), self.ref(component), deadline)

    def restored(
        self, component: Component, clients: Clients, recorded: ComponentState, recorded_at: str, deadline: Deadline
    ) -> CheckResult:
        reader = clients.kube.reader(str(component.cluster))
        return check_helm_restored(reader, self.ref(component), recorded, recorded_at, deadline)

    def roll_back(
        self, component: Component, clients: Clients, recorded: ComponentState, deadline: Deadline
    ) -> Callable[[], str]:
        if not isinstance(recorded, HelmState):
            raise DrillImpossible(f"the baseline recorded a {recorded.kind}, but the component is a {self.name}")
        helm = clients.kube.helm_command(str(component.cluster))
        return lambda: roll_back_helm(helm, self.ref(component), recorded, deadline)


class AzureApp(Kind):
    platform = "azure"
    object_key: ClassVar[str] = "resource"
    selectable: ClassVar[frozenset[str]] = frozenset({"resource_groups", "tags"})

    def listed(self, component: Component, clients: Clients, group: str, deadline: Deadline) -> list[dict[str, Any]]:
        """Every app of this kind in the resource group, as ARM lists it."""
        raise NotImplementedError

    def select(self, component: Component, clusters: list[str], clients: Clients, deadline: Deadline) -> list[Found]:
        assert component.select is not None
        found: list[Found] = []
        for group in component.select.resource_groups:
            for app in self.listed(component, clients, group, deadline):
                tags = {str(k): str(v) for k, v in (app.get("tags") or {}).items()}
                if all(tags.get(k) == v for k, v in component.select.tags.items()):
                    found.append(Found(self.name, str(app["name"]), tags, None, None, group))
        return found

    def ref(self, component: Component) -> AppRef:
        assert component.resource_group is not None  # the config loader requires it for Azure kinds
        return AppRef(component.resource_group, component.resource or component.name)


class ContainerApp(AzureApp):
    name = "containerapp"
    marker = "Azure Container App components: provisioning, revision health, traffic, image"
    families = frozenset({"containerapp", "promotion"}) | STATEFUL
    own_keys: ClassVar[frozenset[str]] = frozenset({"traffic"})  # component keys only this kind reads
    has_address = True

    def where(self, component: Component) -> str:
        return self.ref(component).where

    def address(self, component: Component, clients: Clients, deadline: Deadline) -> str | None:
        """The ingress FQDN ARM publishes (properties.configuration.ingress.fqdn); None without ingress."""
        client = clients.azure.container_apps(str(component.subscription))
        ref = self.ref(component)
        app = as_dict(
            arm_call(lambda **kw: client.container_apps.get(ref.resource_group, ref.name, **kw), deadline, ref.where),
            ref.where,
        )
        ingress = ((app.get("properties") or {}).get("configuration") or {}).get("ingress") or {}
        fqdn = ingress.get("fqdn") if isinstance(ingress, dict) else None
        return str(fqdn) if fqdn else None

    def listed(self, component: Component, clients: Clients, group: str, deadline: Deadline) -> list[dict[str, Any]]:
        client = clients.azure.container_apps(str(component.subscription))
        what = f"Microsoft.App/containerApps in resource group {group}"
        return arm_call(
            lambda **kw: [as_dict(a, what) for a in client.container_apps.list_by_resource_group(group, **kw)],
            deadline,
            what,
        )

    def running_version(self, component: Component, clients: Clients, deadline: Deadline) -> dict[str, str] | None:
        state = self.read_state(component, clients, deadline)
        assert isinstance(state, ContainerAppState)
        return _image_version(state.images.get(state.latest_revision or "", ""))

    def read_state(self, component: Component, clients: Clients, deadline: Deadline) -> ComponentState:
        client = clients.azure.container_apps(str(component.subscription))
        return container_app_state(client, self.ref(component), deadline)

    def restored(
        self, component: Component, clients: Clients, recorded: ComponentState, recorded_at: str, deadline: Deadline
    ) -> CheckResult:
        client = clients.azure.container_apps(str(component.subscription))
        return check_app_restored(client, self.ref(component), recorded, recorded_at, deadline)

    def roll_back(
        self, component: Component, clients: Clients, recorded: ComponentState, deadline: Deadline
    ) -> Callable[[], str]:
        if not isinstance(recorded, ContainerAppState):
            raise DrillImpossible(f"the baseline recorded a {recorded.kind}, but the component is a {self.name}")
        client = clients.azure.container_apps(str(component.subscription))
        return lambda: roll_back_traffic(client, self.ref(component), recorded, deadline)


class FunctionApp(AzureApp):
    name = "functionapp"
    marker = "Azure Function App components: site state, latest deployment, version, functions loaded"
    # Its version is not read live (the promotion evidence is the source's verdict alone), but it is promoted.
    families = frozenset({"functionapp", "promotion"})
    own_keys: ClassVar[frozenset[str]] = frozenset({"version_source"})  # where its version is recorded

    def where(self, component: Component) -> str:
        ref = self.ref(component)
        return f"FunctionApp:{ref.resource_group}/{ref.name}"

    def listed(self, component: Component, clients: Clients, group: str, deadline: Deadline) -> list[dict[str, Any]]:
        """The group's sites whose kind says function app (`functionapp`, `functionapp,linux`, ...): a web app in
        the same group is not one."""
        client = clients.azure.web(str(component.subscription))
        what = f"Microsoft.Web/sites in resource group {group}"
        sites = arm_call(
            lambda **kw: [as_dict(s, what) for s in client.web_apps.list_by_resource_group(group, **kw)],
            deadline,
            what,
        )
        return [s for s in sites if "functionapp" in str(s.get("kind", "")).lower().split(",")]


class Endpoint(Kind):
    name = "endpoint"
    marker = "plain HTTP/TLS endpoint components"
    has_address = True

    def address(self, component: Component, clients: Clients, deadline: Deadline) -> str | None:
        """The host of its first health URL, else of its first TLS target: what the team calls it by."""
        for health in component.health:
            return urlsplit(health.url).hostname
        for tls in component.tls:
            return tls.host
        return None

    def problems(self, component: Component) -> list[str]:
        if component.health or component.tls or component.certificates or component.metrics:
            return []
        return ["an endpoint component needs health, tls, certificates or metrics entries, or it checks nothing"]


class Resource(Kind):
    """Any Kubernetes object, CRDs included (checks.resources): `api_version` and `resource_kind` say what it is,
    `resource` its name (default: the component's), judged by its kind's published status (checks.status)."""

    name = "resource"
    marker = "Kubernetes object components of any kind (CRDs included): its published status is healthy"
    platform = "kubernetes"
    families = frozenset({"resource"})
    own_keys: ClassVar[frozenset[str]] = frozenset({"api_version", "resource_kind"})
    object_key: ClassVar[str] = "resource"
    selectable: ClassVar[frozenset[str]] = frozenset({"clusters", "namespaces", "labels"})

    def select(self, component: Component, clusters: list[str], clients: Clients, deadline: Deadline) -> list[Found]:
        """Every object of the component's apiVersion and kind in the namespaces whose labels match."""
        assert component.api_version is not None  # problems() requires both
        assert component.resource_kind is not None
        api_version, kind = component.api_version, component.resource_kind
        return labelled(self.name, api_version, kind, component, clusters, clients, deadline)

    def ref(self, component: Component) -> ResourceRef:
        assert component.api_version is not None  # problems() requires both
        assert component.resource_kind is not None
        name = component.resource or component.name
        return ResourceRef(component.api_version, component.resource_kind, component.namespace, name)

    def where(self, component: Component) -> str:
        if component.api_version is None or component.resource_kind is None:
            return f"resource:{component.name}"
        return self.ref(component).where

    def problems(self, component: Component) -> list[str]:
        return [
            f"missing required key {key!r} for kind resource (e.g. {example})"
            for key, example in (("api_version", "argoproj.io/v1alpha1"), ("resource_kind", "Rollout"))
            if getattr(component, key) is None
        ]


class ArgoApplication(Kind):
    """An Argo CD Application (checks.argocd): `namespace` is where the Application object lives (usually argocd),
    `application` its name (default: the component's)."""

    name = "argocd"
    marker = "Argo CD Application components: synced to the released revision, healthy, last sync succeeded"
    platform = "kubernetes"
    # Promoted like the others: the revision staging was verified at is what runs there (running_version).
    families = frozenset({"argocd", "promotion"})
    own_keys: ClassVar[frozenset[str]] = frozenset({"application"})
    object_key: ClassVar[str] = "application"
    selectable: ClassVar[frozenset[str]] = frozenset({"clusters", "namespaces", "labels"})

    def select(self, component: Component, clusters: list[str], clients: Clients, deadline: Deadline) -> list[Found]:
        """The Applications in the namespaces whose labels match (the list the Application check reads)."""
        return labelled(self.name, "argoproj.io/v1alpha1", "Application", component, clusters, clients, deadline)

    def ref(self, component: Component) -> ApplicationRef:
        assert component.namespace is not None  # the config loader requires it for Kubernetes kinds
        return ApplicationRef(component.namespace, component.application or component.name)

    def where(self, component: Component) -> str:
        return self.ref(component).where

    def running_version(self, component: Component, clients: Clients, deadline: Deadline) -> dict[str, str] | None:
        reader = clients.kube.reader(str(component.cluster))
        return {"version": application_revision(reader, self.ref(component), deadline)}


class ApiManagement(Kind):
    """An Azure API Management service (checks.apim): `resource` is the service's name (default: the component's),
    `apis` the APIs it must serve at their released revision."""

    name = "apim"
    marker = "Azure API Management components: the service is provisioned, each API is at its released revision"
    platform = "azure"
    families = frozenset({"apim"})
    own_keys: ClassVar[frozenset[str]] = frozenset({"apis"})

    def where(self, component: Component) -> str:
        return f"APIM:{component.resource_group}/{component.resource or component.name}"

    def problems(self, component: Component) -> list[str]:
        if component.apis:
            return []
        return ["an apim component needs apis: the APIs whose revisions it checks (apis: [{name: orders}])"]


class Manifests(Kind):
    """A folder of plain Kubernetes manifests deployed as they are (`path`), judged before the deploy against the
    target cluster's schema and the manifest policy (checks.policy)."""

    name = "manifests"
    marker = "folders of plain Kubernetes manifests: validated and policy-checked before the deploy"
    platform = "kubernetes"
    families = frozenset({"policy"})
    own_keys: ClassVar[frozenset[str]] = frozenset({"path"})

    def where(self, component: Component) -> str:
        return f"Manifests:{component.namespace}/{component.name}"

    def pending(self, component: Component, clients: Clients, deadline: Deadline) -> Pending:
        assert component.path is not None  # problems() requires it
        return Pending(read_folder(component.path, component.namespace))

    def problems(self, component: Component) -> list[str]:
        if component.path:
            return []
        return ["a manifests component needs path: the folder of manifests it deploys"]


class Terraform(Kind):
    """Infrastructure code (checks.drift): `working_dir` is planned with the project's OpenTofu (or Terraform), or
    `plan_json` is the plan the pipeline saved; drift is any change the plan would make."""

    name = "terraform"
    marker = "OpenTofu/Terraform components: what runs matches the infrastructure code (no drift)"
    families = frozenset({"drift"})
    own_keys: ClassVar[frozenset[str]] = frozenset({"working_dir", "plan_json", "var_files", "workspace"})

    def where(self, component: Component) -> str:
        return f"Terraform:{component.name}"

    def problems(self, component: Component) -> list[str]:
        if (component.working_dir is None) == (component.plan_json is None):
            return ["a terraform component needs exactly one of working_dir (planned here) or plan_json (a saved plan)"]
        if component.plan_json is not None and (component.var_files or component.workspace):
            return ["var_files and workspace apply to a working_dir; a saved plan already has them"]
        return []


def labelled(
    kind: str,
    api_version: str,
    object_kind: str,
    component: Component,
    clusters: list[str],
    clients: Clients,
    deadline: Deadline,
) -> list[Found]:
    """The objects of (api_version, object_kind) in the selection's namespaces on each cluster whose labels match."""
    assert component.select is not None
    labels = parse_labels(component.select.labels)
    found: list[Found] = []
    for cluster in clusters:
        reader = clients.kube.reader(cluster)
        key = reader.resource(api_version, object_kind, deadline)
        for namespace in component.select.namespaces:
            for obj in reader.listing(key, namespace, deadline).items:
                meta = obj["metadata"]
                if labels.matches(meta.get("labels")):
                    found.append(Found(kind, meta["name"], meta.get("labels") or {}, cluster, namespace))
    return found


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Enrol a kind; the environment schema accepts it from then on. Names are unique."""
    if kind.name in KINDS and type(KINDS[kind.name]) is not type(kind):
        raise ValueError(f"kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


for _kind in (Deployment(), DaemonSet(), StatefulSet(), HelmRelease(), ContainerApp(), FunctionApp(), Endpoint()):
    register(_kind)
register(ArgoApplication())
register(Resource())
register(ApiManagement())
register(Manifests())
register(Terraform())


def kind_of(component: Component) -> Kind:
    return KINDS[component.kind]


def _image_version(image: str) -> dict[str, str]:
    tag = tag_of(image)
    return {"image": image, **({"version": tag} if tag else {})}
