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
import shutil
import time
from typing import Any

from checks.transports.arm import ArmUnavailable
from checks.transports.kube import KubeReader, KubeUnavailable
from suite.config import Environment

logging.getLogger("azure").setLevel(logging.WARNING)


class KubeClients:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.readers: dict[str, KubeReader] = {}
        self.failures: dict[str, KubeUnavailable] = {}

    def reader(self, cluster: str) -> KubeReader:
        """The reader for `cluster`; KubeUnavailable (an ERROR verdict) when it cannot be built."""
        if cluster in self.failures:
            raise self.failures[cluster]
        if cluster not in self.readers:
            config = self.env.clusters[cluster]
            try:
                if config.in_cluster:
                    self.readers[cluster] = KubeReader.in_cluster(cluster)
                else:
                    assert config.context is not None
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


class StaticToken:
    """A bearer token handed in from outside (CI that already ran `az account get-access-token`)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"  # never the token, whoever prints this


class AzureClients:
    """One ContainerAppsAPIClient and one WebSiteManagementClient per subscription alias, built on first use."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.clients: dict[tuple[str, str], Any] = {}
        self._credential: Any = None

    def container_apps(self, subscription: str) -> Any:
        return self._client("apps", subscription)

    def web(self, subscription: str) -> Any:
        return self._client("web", subscription)

    def _client(self, kind: str, subscription: str) -> Any:
        if (kind, subscription) not in self.clients:
            from azure.mgmt.appcontainers import ContainerAppsAPIClient
            from azure.mgmt.web import WebSiteManagementClient

            azure = self.env.azure
            assert azure is not None
            factory = ContainerAppsAPIClient if kind == "apps" else WebSiteManagementClient
            options: dict[str, Any] = {"base_url": azure.arm_endpoint, "logging_enable": False}
            if azure.ca_bundle:
                options["connection_verify"] = azure.ca_bundle
            self.clients[(kind, subscription)] = factory(
                self._credentials(), azure.subscriptions[subscription].subscription_id, **options
            )
        return self.clients[(kind, subscription)]

    def _credentials(self) -> Any:
        if self._credential is None:
            azure = self.env.azure
            assert azure is not None
            if azure.credential == "token-env":
                token = os.environ.get(azure.token_env)
                if not token:
                    raise ArmUnavailable(
                        f"environment variable {azure.token_env} is empty or not set; the "
                        "environment's azure.credential is token-env"
                    )
                self._credential = StaticToken(token)
            else:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
        return self._credential

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
