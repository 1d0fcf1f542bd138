"""cert-manager Certificates (checks.certmanager): the family and its steps."""

from __future__ import annotations

from collections.abc import Callable

from pytest_bdd import then, when

from deploy_verify.checks.certmanager import CertificateRef, check_certificate
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult
from deploy_verify.checks.tls import TlsTarget
from deploy_verify.checks.transports.kube import KubeReader
from deploy_verify.config import CertificateConfig, Component, Environment
from deploy_verify.context import Context, Target
from deploy_verify.evidence import assert_results
from deploy_verify.family import Family, declare
from deploy_verify.fixtures import Verify


def certificate_ref(component: Component, cert: CertificateConfig, environment: Environment) -> CertificateRef:
    tls = environment.defaults.tls
    endpoints = tuple(
        TlsTarget(e.host, e.port, e.address, tls.min_version, tls.ca_bundle, tls.timeout) for e in cert.endpoints
    )
    namespace = cert.namespace or component.namespace
    assert namespace is not None  # the config loader requires one of the two
    return CertificateRef(namespace, cert.name, endpoints)


def certificates(ctx: Context, component: Target) -> list[CheckResult]:
    assert isinstance(component, Component)
    assert component.cluster is not None  # the config loader requires it with certificates
    min_days = ctx.env.defaults.tls.min_days
    results: list[CheckResult] = []
    for ref in (certificate_ref(component, cert, ctx.env) for cert in component.certificates):
        results += ctx.on_cluster(CERTIFICATE, component.cluster, ref.where, _checker(ref, min_days, ctx.deadline))
    return results


def _checker(ref: CertificateRef, min_days: float, deadline: Deadline) -> Callable[[KubeReader], CheckResult]:
    return lambda reader: check_certificate(reader, ref, min_days, deadline)


CERTIFICATE = declare(
    Family(
        tag="certificate",
        check="certmanager_certificate",
        marker="applies to components with cert-manager Certificates: Ready, not expiring, served = Secret",
        category=Category.CERTIFICATE,
        run=certificates,
        transport="kubernetes",
        applies=lambda _family, component: bool(component.certificates),
        soak=True,
    )
)


@when("the component's cert-manager Certificates and what their hosts serve are read", target_fixture="cert_results")
def certificates_read(verify: Verify) -> list[CheckResult]:
    return verify(CERTIFICATE)


@then("every Certificate is Ready, far enough from expiry, and served as its Secret holds it")
def certificates_ok(cert_results: list[CheckResult], component: Component) -> None:
    assert_results(cert_results, component)
