"""What runs where, read from an environment entry: the references the checks need, the state a baseline records,
and the running version a promotion or the version inventory compares. Shared by steps and tools; read-only."""

from __future__ import annotations

from checks.baseline import ComponentState, container_app_state, helm_state, workload_state
from checks.containerapps import AppRef
from checks.deadline import Deadline
from checks.helm import HelmRef
from checks.images import tag_of
from checks.workloads import WorkloadRef
from suite.clients import AzureClients, KubeClients
from suite.config import Component

VERSIONED_KINDS = frozenset({"deployment", "daemonset", "statefulset", "helm", "containerapp"})


def workload_ref(component: Component) -> WorkloadRef:
    assert component.namespace is not None  # the config loader requires it for Kubernetes kinds
    return WorkloadRef(component.kind, component.namespace, component.workload or component.name)


def helm_ref(component: Component) -> HelmRef:
    assert component.namespace is not None
    return HelmRef(component.namespace, component.release or component.name)


def app_ref(component: Component) -> AppRef:
    assert component.resource_group is not None  # the config loader requires it for Azure kinds
    return AppRef(component.resource_group, component.resource or component.name)


def where(component: Component) -> str:
    if component.kind == "helm":
        return helm_ref(component).where
    if component.kind == "containerapp":
        return app_ref(component).where
    return workload_ref(component).where


def read_state(component: Component, kube: KubeClients, azure: AzureClients, deadline: Deadline) -> ComponentState:
    """What runs now, in the shape a baseline records; raises what the checks raise."""
    if component.kind == "containerapp":
        return container_app_state(azure.container_apps(str(component.subscription)), app_ref(component), deadline)
    reader = kube.reader(str(component.cluster))
    if component.kind == "helm":
        return helm_state(reader, helm_ref(component), deadline)
    return workload_state(reader, workload_ref(component), deadline)


def running_version(
    component: Component, kube: KubeClients, azure: AzureClients, deadline: Deadline
) -> dict[str, str] | None:
    """{"version": ..., "image": ...} as far as readable; None for kinds whose version is not read here."""
    if component.kind not in VERSIONED_KINDS:
        return None
    state = read_state(component, kube, azure, deadline)
    if state.kind == "helm":
        return {"version": state.app_version, "chart": state.chart}
    if state.kind == "containerapp":
        image = state.images.get(state.latest_revision or "", "")
    else:
        image = state.images.get(component.container or "", "") or next(iter(state.images.values()), "")
    tag = tag_of(image)
    return {"image": image, **({"version": tag} if tag else {})}
