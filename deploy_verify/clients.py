"""Clients built once per worker and shared by every check: one read-only Kubernetes reader per cluster, one pair
of ARM clients per Azure subscription.

A cluster that cannot be reached is remembered, so its components fail fast with the same ERROR instead of each
paying the connection timeout again. The Azure SDK's loggers stay at WARNING: at INFO they print every request.
The SDKs themselves are imported when a client is first built (together about half a second): a run that checks no
Azure resource does not pay for them.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy_verify.checks.deadline import BudgetExhausted, Deadline
from deploy_verify.checks.transports import Failure
from deploy_verify.checks.transports.arm import ArmUnavailable
from deploy_verify.checks.transports.kube import KubeReader, KubeUnavailable
from deploy_verify.config import Environment

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential
    from azure.mgmt.apimanagement import ApiManagementClient
    from azure.mgmt.appcontainers import ContainerAppsAPIClient
    from azure.mgmt.web import WebSiteManagementClient

logging.getLogger("azure").setLevel(logging.WARNING)


class KubeClients:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.readers: dict[str, KubeReader] = {}
        self.failures: dict[str, KubeUnavailable] = {}
        # One reader per cluster even when the read-ahead's threads and a test ask for it at the same moment (two
        # readers would be two caches, and two LISTs of the same list). Per cluster, so 64 clusters' clients are
        # still built at once.
        self._guard = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def reader(self, cluster: str) -> KubeReader:
        """The reader for `cluster`; KubeUnavailable (an ERROR verdict) when it cannot be built."""
        found = self.readers.get(cluster)
        if found is not None:
            return found
        with self._guard:
            building = self._building.setdefault(cluster, threading.Lock())
        with building:
            return self._build(cluster)

    def _build(self, cluster: str) -> KubeReader:
        if cluster in self.failures:
            raise self.failures[cluster]
        if cluster not in self.readers:
            config = self.env.clusters[cluster]
            try:
                if config.in_cluster:
                    self.readers[cluster] = KubeReader.in_cluster(cluster)
                else:
                    assert config.context is not None
                    missing = missing_kubeconfig(self.env.name, cluster, config.kubeconfig)
                    if missing:
                        raise KubeUnavailable(missing, Failure.CREDENTIALS)
                    self.readers[cluster] = KubeReader.from_kubeconfig(cluster, config.context, config.kubeconfig)
            except KubeUnavailable as exc:
                self.failures[cluster] = exc
                raise
        return self.readers[cluster]

    def writer(self, cluster: str) -> KubeReader:
        """A new, uncached client that may PATCH: only for the rollback drill, after the suite checked that this run
        allows mutations. Never shared, so no read-only check can ever hold it."""
        config = self.env.clusters[cluster]
        if config.in_cluster:
            return KubeReader.in_cluster(cluster, allow_mutations=True)
        assert config.context is not None
        missing = missing_kubeconfig(self.env.name, cluster, config.kubeconfig)
        if missing:
            raise KubeUnavailable(missing, Failure.CREDENTIALS)
        return KubeReader.from_kubeconfig(cluster, config.context, config.kubeconfig, allow_mutations=True)

    def helm_command(self, cluster: str) -> list[str] | None:
        """The helm binary (DV_HELM or `helm` on PATH) pointed at the cluster; None when there is none."""
        binary = os.environ.get("DV_HELM") or shutil.which("helm")
        if not binary:
            return None
        config = self.env.clusters[cluster]
        if config.in_cluster:
            return [binary]
        located = ["--kubeconfig", config.kubeconfig] if config.kubeconfig else []
        return [binary, *located, "--kube-context", str(config.context)]

    def close(self) -> None:
        for reader in self.readers.values():
            reader.api.close()


def missing_kubeconfig(env: str, cluster: str, kubeconfig: str | None) -> str | None:
    """What to do when no kubeconfig file is there, said before the Kubernetes client says "Invalid kube-config
    file" (the same words for a missing file, an empty one and a broken one); None when a file is there to read."""
    if kubeconfig is not None:
        if Path(kubeconfig).is_file():
            return None
        return (
            f"cluster {cluster}: kubeconfig {kubeconfig} does not exist; point clusters.{cluster}.kubeconfig in the "
            f"{env} environment file at the cluster's kubeconfig (relative paths are from the repository root), or "
            "remove the key to use $KUBECONFIG or ~/.kube/config"
        )
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if any(Path(p).expanduser().is_file() for p in listed) or (not listed and DEFAULT_KUBECONFIG.is_file()):
        return None
    where = (
        f"$KUBECONFIG ({os.environ['KUBECONFIG']}) names no existing file"
        if listed
        else (f"$KUBECONFIG is not set and {DEFAULT_KUBECONFIG} does not exist")
    )
    return (
        f"cluster {cluster}: no kubeconfig: {where}; set clusters.{cluster}.kubeconfig in the {env} environment file, "
        "export KUBECONFIG, or run where ~/.kube/config is (e.g. after `az aks get-credentials`)"
    )


DEFAULT_KUBECONFIG = Path("~/.kube/config").expanduser()


class StaticToken:
    """A bearer token handed in from outside (CI that already ran `az account get-access-token`)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"  # never the token, whoever prints this


class BoundedCredential:
    """A credential whose every token request ends by the budget: DefaultAzureCredential may probe a metadata
    endpoint or run `az`, and neither has a deadline of its own. The request runs in a daemon thread; when the
    timeout passes first, the SDK gets a ClientAuthenticationError (an ERROR that says so) and the thread is
    abandoned, never waited for."""

    def __init__(self, inner: TokenCredential, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            timeout = self._deadline.timeout(self._deadline.calls.credential)
        except BudgetExhausted as exc:
            raise ClientAuthenticationError(f"no token requested: {exc}") from exc
        outcome: queue.Queue[AccessToken | BaseException] = queue.Queue(maxsize=1)

        def fetch() -> None:
            try:
                outcome.put(self._inner.get_token(*scopes, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, which re-raises it
                outcome.put(exc)

        threading.Thread(target=fetch, name="credential", daemon=True).start()
        try:
            got = outcome.get(timeout=timeout)
        except queue.Empty:
            raise ClientAuthenticationError(
                f"no token within {timeout:.0f}s: the credential did not answer (defaults.timeouts.credential)"
            ) from None
        if isinstance(got, BaseException):
            raise got
        return got

    def __repr__(self) -> str:
        return f"BoundedCredential({self._inner!r})"


class AzureClients:
    """One ContainerAppsAPIClient, WebSiteManagementClient and ApiManagementClient per subscription alias, each built
    on first use."""

    def __init__(self, env: Environment, deadline: Deadline | None = None) -> None:
        self.env = env
        self.deadline = deadline or Deadline.after(env.budget, f"time budget of environment {env.name!r}")
        self._apps: dict[str, ContainerAppsAPIClient] = {}
        self._web: dict[str, WebSiteManagementClient] = {}
        self._apim: dict[str, ApiManagementClient] = {}
        self._credential: TokenCredential | None = None
        self._no_credential: ArmUnavailable | None = None  # said once, then raised again for every app

    def container_apps(self, subscription: str) -> ContainerAppsAPIClient:
        if subscription not in self._apps:
            from azure.mgmt.appcontainers import ContainerAppsAPIClient

            self._apps[subscription] = ContainerAppsAPIClient(
                self._credentials(), self._subscription_id(subscription), **self._options()
            )
        return self._apps[subscription]

    def web(self, subscription: str) -> WebSiteManagementClient:
        if subscription not in self._web:
            from azure.mgmt.web import WebSiteManagementClient

            self._web[subscription] = WebSiteManagementClient(
                self._credentials(), self._subscription_id(subscription), **self._options()
            )
        return self._web[subscription]

    def api_management(self, subscription: str) -> ApiManagementClient:
        if subscription not in self._apim:
            from azure.mgmt.apimanagement import ApiManagementClient

            self._apim[subscription] = ApiManagementClient(
                self._credentials(), self._subscription_id(subscription), **self._options()
            )
        return self._apim[subscription]

    def _subscription_id(self, subscription: str) -> str:
        assert self.env.azure is not None  # the config loader requires azure: for Azure kinds
        return self.env.azure.subscriptions[subscription].subscription_id

    def _options(self) -> dict[str, Any]:
        """The SDK client's settings; its transport is bounded (checks.transports.azure_http): one ARM call, body
        included, ends by its read timeout and the budget, however slowly ARM (or a proxy) answers."""
        from deploy_verify.checks.transports.azure_http import BoundedRequestsTransport

        azure = self.env.azure
        assert azure is not None
        verify: str | bool = azure.ca_bundle or True
        transport = BoundedRequestsTransport(self.deadline, connection_verify=verify)
        return {"base_url": azure.arm_endpoint, "logging_enable": False, "transport": transport}

    def _credentials(self) -> TokenCredential:
        if self._no_credential is not None:
            raise self._no_credential
        if self._credential is None:
            azure = self.env.azure
            assert azure is not None
            if azure.credential == "token-env":
                token = os.environ.get(azure.token_env)
                if not token:
                    self._no_credential = ArmUnavailable(
                        f"no Azure credential: environment variable {azure.token_env} is empty or not set (the "
                        f"environment's azure.credential is token-env); export {azure.token_env}=$(az account "
                        "get-access-token --query accessToken -o tsv), or set azure.credential: default",
                        Failure.CREDENTIALS,
                    )
                    raise self._no_credential
                self._credential = StaticToken(token)
            else:
                from azure.identity import DefaultAzureCredential

                self._credential = BoundedCredential(DefaultAzureCredential(), self.deadline)
        return self._credential

    def close(self) -> None:
        for apps in self._apps.values():
            apps.close()
        for web in self._web.values():
            web.close()
        for apim in self._apim.values():
            apim.close()
