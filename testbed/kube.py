"""The testbed's Kubernetes part: two KWOK clusters (dv-a, dv-b) on a real control plane, with the demo workloads of
environments/local.yaml and the broken ones of local-broken.yaml.

    python -m testbed up     # also starts these (testbed/kube/cluster.sh builds the binaries on first use)

Clusters live under .testbed/state, so two checkouts never share one; their merged kubeconfig is
.testbed/kubeconfig.yaml (contexts kwok-dv-a, kwok-dv-b), which the environment files name.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent / "kube"
ROOT_STATE = Path(os.environ.get("DV_TESTBED_DIR", HERE.parent.parent / ".testbed"))
CLUSTERS = ("dv-a", "dv-b")
NODES = 3
REBOOT_MARKER = "dv.test/reboot-required"  # local-broken names it; dv-a's last node carries it
# Healthy workloads that must be rolled out before the testbed counts as up: (cluster, namespace, kind/name).
HEALTHY = (
    ("dv-a", "shop", "deployment/storefront"),
    ("dv-a", "shop", "deployment/cart"),
    ("dv-a", "platform", "statefulset/ledger"),
    ("dv-a", "platform", "daemonset/node-agent"),
    ("dv-b", "shop", "deployment/storefront"),
)


class KubeTestbed:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {**os.environ, "DV_STATE_DIR": str(state / "state")}
        self.kubeconfig = state / "kubeconfig.yaml"

    def start(self) -> None:
        started = time.monotonic()
        configs = [self._start_cluster(name) for name in CLUSTERS]
        self._merge_kubeconfigs(configs)
        self._deploy()
        print(
            f"kubernetes: clusters {', '.join(CLUSTERS)} up with demo workloads in "
            f"{time.monotonic() - started:.0f}s; kubeconfig {self.kubeconfig}",
            flush=True,
        )

    def stop(self) -> None:
        for name in CLUSTERS:
            self._cluster("stop", name)
        self.kubeconfig.unlink(missing_ok=True)

    def kubectl(self, cluster: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*self.kubectl_command(cluster), *args]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def kubectl_command(self, cluster: str) -> list[str]:
        return [str(self._bin("kubectl")), "--kubeconfig", str(self.kubeconfig), "--context", f"kwok-{cluster}"]

    # --- steps ---------------------------------------------------------------------------------------------------

    def _start_cluster(self, name: str) -> str:
        done = self._cluster("start", name, str(NODES))
        return done.stdout.strip().splitlines()[-1]

    def _merge_kubeconfigs(self, configs: list[str]) -> None:
        merged = subprocess.run(
            [str(self._bin("kubectl")), "config", "view", "--flatten"],
            env={**self.env, "KUBECONFIG": os.pathsep.join(configs)},
            capture_output=True,
            text=True,
            check=True,
        )
        self.kubeconfig.write_text(merged.stdout)
        self.kubeconfig.chmod(0o600)  # it holds client keys

    def _deploy(self) -> None:
        manifests = HERE / "manifests"
        self.kubectl("dv-a", "apply", "-f", str(manifests / "dv-a.yaml"))
        self.kubectl("dv-b", "apply", "-f", str(manifests / "dv-b.yaml"))
        if self.kubectl("dv-a", "get", "namespace", "broken", check=False).returncode != 0:
            # First phase healthy, then roll forward into the failure, so old pods keep serving as in production.
            self.kubectl("dv-a", "apply", "-f", str(manifests / "broken-v1.yaml"))
            self.kubectl("dv-a", "-n", "broken", "rollout", "status", "deployment/checkout", "--timeout=60s")
        self.kubectl("dv-a", "apply", "-f", str(manifests / "broken-v2.yaml"))
        self._helm_releases()
        self._certificates()
        node = f"node-{NODES - 1:06d}"
        self.kubectl("dv-a", "annotate", "--overwrite", "node", node, f"{REBOOT_MARKER}=true")
        for cluster, namespace, workload in HEALTHY:
            self.kubectl(cluster, "-n", namespace, "rollout", "status", workload, "--timeout=60s")
        # The broken workloads must have reached their failure before anyone checks them.
        self.kubectl(
            "dv-a",
            "-n",
            "broken",
            "wait",
            "deployment/mailer",
            "--timeout=60s",
            '--for=jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=ProgressDeadlineExceeded',
        )
        self.kubectl(
            "dv-a",
            "-n",
            "broken",
            "wait",
            "pod",
            "-l",
            "app=checkout,dv.test/fault=crashloop",
            "--timeout=60s",
            "--for=jsonpath={.status.phase}=Running",
        )

    def _helm_releases(self) -> None:
        """dv-b: catalog, deployed by helm v4. dv-a/shop: reviews (the chart the @predeploy policy renders), with
        the local environment's values. dv-a/broken: billing, whose upgrade failed (helm v3)."""
        from testbed.helm import CHART, REVIEWS, REVIEWS_VALUES, Helm

        healthy = Helm(self._bin("helm"), self.kubeconfig, "kwok-dv-b")
        if healthy("status", "catalog", "-n", "catalog", check=False).returncode != 0:
            healthy("install", "catalog", str(CHART), "-n", "catalog", "--create-namespace")
        shop = Helm(self._bin("helm"), self.kubeconfig, "kwok-dv-a")
        if shop("status", "reviews", "-n", "shop", check=False).returncode != 0:
            shop("install", "reviews", str(REVIEWS), "-n", "shop", "-f", str(REVIEWS_VALUES))
        broken = Helm(self._bin("helm3"), self.kubeconfig, "kwok-dv-a")
        if broken("status", "billing", "-n", "broken", check=False).returncode != 0:
            broken("install", "billing", str(CHART), "-n", "broken")
            broken("upgrade", "billing", str(CHART), "-n", "broken", "--set", "service.type=Bogus", check=False)

    def _certificates(self) -> None:
        """cert-manager objects on dv-a (no controller runs: status is written as cert-manager would):
        shop/payments-tls serves what its Secret holds (payments-api, 127.0.0.1:18441); broken/checkout-tls's Secret
        was renewed but checkout-web (18442) still serves its old certificate; broken/stuck-tls waits for an Issuer
        that is not Ready. Re-applied on every start, since the demo services get fresh certificates each time."""
        keys = self.state / "tls" / "keys"
        payments = (keys / "payments-api.pem").read_bytes()
        key = (keys / "payments-api.key").read_bytes()
        objects = [
            _issuer("shop", "testbed-ca"),
            _issuer("broken", "testbed-ca"),
            _issuer("broken", "letsencrypt-broken"),
            _tls_secret("shop", "payments-tls", payments, key),
            _tls_secret("broken", "checkout-tls", payments, key),  # renewed: no longer what 18442 serves
            _certificate("shop", "payments-tls", "testbed-ca"),
            _certificate("broken", "checkout-tls", "testbed-ca"),
            _certificate("broken", "stuck-tls", "letsencrypt-broken"),
        ]
        self._apply("dv-a", objects)
        not_after = _not_after(payments)
        ready = {"type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date"}
        for namespace, name in (("shop", "testbed-ca"), ("broken", "testbed-ca")):
            self._status(
                "dv-a", namespace, "issuer", name, {"conditions": [{**ready, "message": "Signing CA verified"}]}
            )
        self._status(
            "dv-a",
            "broken",
            "issuer",
            "letsencrypt-broken",
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "ErrRegisterACMEAccount",
                        "message": "Failed to register ACME account: 403 urn:ietf:params:acme:error:unauthorized",
                    }
                ]
            },
        )
        for namespace, name in (("shop", "payments-tls"), ("broken", "checkout-tls")):
            self._status("dv-a", namespace, "certificate", name, {"conditions": [ready], "notAfter": not_after})
        waiting = {
            "type": "Ready",
            "status": "False",
            "reason": "DoesNotExist",
            "message": "Issuing certificate as Secret does not exist",
        }
        self._status("dv-a", "broken", "certificate", "stuck-tls", {"conditions": [waiting]})

    def _apply(self, cluster: str, objects: list[dict[str, object]]) -> None:
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        subprocess.run(
            [*self.kubectl_command(cluster), "apply", "-f", "-"],
            input=document,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    def _status(self, cluster: str, namespace: str, kind: str, name: str, status: dict[str, object]) -> None:
        patch = json.dumps({"status": status})
        self.kubectl(cluster, "-n", namespace, "patch", kind, name, "--subresource=status", "--type=merge", "-p", patch)

    def _cluster(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", str(HERE / "cluster.sh"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done

    def _bin(self, name: str) -> Path:
        return kube_bin(name)


def _issuer(namespace: str, name: str) -> dict[str, object]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ca": {"secretName": f"{name}-ca"}},
    }


def _certificate(namespace: str, name: str, issuer: str) -> dict[str, object]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"secretName": name, "dnsNames": ["localhost"], "issuerRef": {"name": issuer, "kind": "Issuer"}},
    }


def _tls_secret(namespace: str, name: str, chain: bytes, key: bytes) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"tls.crt": base64.b64encode(chain).decode(), "tls.key": base64.b64encode(key).decode()},
    }


def _not_after(chain: bytes) -> str:
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(chain)
    return leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def kube_bin(name: str) -> Path:
    """A cached binary (kubectl, helm, helm3, ...) of the pinned versions in kube/versions.env."""
    versions = dict(
        line.split("=", 1)
        for line in (HERE / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = Path(os.environ.get("DV_CACHE_DIR", Path.home() / ".cache" / "deploy-verify"))
    return cache / "kube" / versions["KUBE_VERSION"] / "bin" / name
