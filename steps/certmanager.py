"""Steps for cert-manager Certificates (checks.certmanager)."""

from __future__ import annotations

from collections.abc import Callable

from pytest_bdd import then, when

from checks.certmanager import CertificateRef, check_certificate
from checks.deadline import Deadline
from checks.transports.kube import KubeReader
from checks.result import CheckResult
from checks.tls import TlsTarget
from steps.common import assert_results
from steps.kubernetes import on_cluster
from suite.clients import KubeClients
from suite.config import CertificateConfig, Component, Environment


def certificate_ref(component: Component, cert: CertificateConfig, environment: Environment) -> CertificateRef:
    tls = environment.defaults.tls
    endpoints = tuple(
        TlsTarget(e.host, e.port, e.address, tls.min_version, tls.ca_bundle, tls.timeout) for e in cert.endpoints
    )
    namespace = cert.namespace or component.namespace
    assert namespace is not None  # the config loader requires one of the two
    return CertificateRef(namespace, cert.name, endpoints)


@when("the component's cert-manager Certificates and what their hosts serve are read", target_fixture="cert_results")
def certificates(
    component: Component, environment: Environment, kube: KubeClients, deadline: Deadline
) -> list[CheckResult]:
    assert component.cluster is not None
    min_days = environment.defaults.tls.min_days
    results: list[CheckResult] = []
    for ref in (certificate_ref(component, cert, environment) for cert in component.certificates):
        results += on_cluster(
            kube, component.cluster, ref.where, "certmanager_certificate", _checker(ref, min_days, deadline)
        )
    return results


def _checker(ref: CertificateRef, min_days: float, deadline: Deadline) -> Callable[[KubeReader], CheckResult]:
    return lambda reader: check_certificate(reader, ref, min_days, deadline)


@then("every Certificate is Ready, far enough from expiry, and served as its Secret holds it")
def certificates_ok(cert_results: list[CheckResult], component: Component) -> None:
    assert_results(cert_results, component)
