"""Clients built once per worker and shared by every check: one read-only Kubernetes reader per cluster.

A cluster that cannot be reached is remembered, so its components fail fast with the same ERROR instead of each
paying the connection timeout again.
"""

from __future__ import annotations

from checks.kube import KubeReader, KubeUnavailable
from suite.config import Environment


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

    def close(self) -> None:
        for reader in self.readers.values():
            reader.api.close()
