"""How the checks reach Kubernetes: read-only, shared, raw JSON.

    reader = KubeReader.from_kubeconfig("aks-weu", context="aks-prod-weu")
    deployments = reader.listing("deployments", "payments", deadline)   # one LIST per kind and namespace, cached

Every check asks this reader; none builds a client or GETs objects one by one. Lists are parsed as plain JSON
(`json.loads`), 5-10x faster than the client's model objects on large namespaces. The reader only speaks GET
(list, watch, logs): a guard on the underlying client refuses any other verb unless the reader was built for a
scenario that is explicitly allowed to mutate. The kubernetes package (a quarter of a second to import) is imported
only when a reader is built: a run without clusters never pays for it.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

import urllib3

from deploy_verify.checks.deadline import BudgetExhausted, Deadline
from deploy_verify.checks.result import Category
from deploy_verify.checks.transports import Failure, TransportError
from deploy_verify.checks.transports.bounded import Bound, Cutoff, bounded, bounded_pools

Obj = dict[str, Any]
T = TypeVar("T")


class RawResponse(Protocol):
    """urllib3's response, streamed by watches and closed from another thread when a wait ends."""

    def stream(self, amt: int, decode_content: bool) -> Iterator[bytes]: ...
    def release_conn(self) -> None: ...
    def close(self) -> None: ...


class ApiResponse(Protocol):
    """kubernetes.client.rest.RESTResponse: what `call_api` returns."""

    status: int
    response: RawResponse

    def read(self) -> bytes: ...


class ApiConfiguration(Protocol):
    host: str


class KubeApi(Protocol):
    """The part of kubernetes.client.ApiClient the reader uses: serialise a request, send it, close the pool.
    The read-only guard wraps `call_api`, so every request of the suite goes through this one method."""

    configuration: ApiConfiguration
    call_api: Callable[..., ApiResponse]

    def param_serialize(
        self,
        method: str,
        resource_path: str,
        query_params: list[tuple[str, str]] | None = None,
        header_params: dict[str, str] | None = None,
        body: object = None,
        auth_settings: list[str] | None = None,
    ) -> tuple[str, str, dict[str, str], object, object]: ...

    def close(self) -> None: ...


# kind (plural) -> (API prefix, namespaced)
RESOURCES: dict[str, tuple[str, bool]] = {
    "pods": ("/api/v1", True),
    "services": ("/api/v1", True),
    "events": ("/api/v1", True),
    "secrets": ("/api/v1", True),
    "namespaces": ("/api/v1", False),
    "nodes": ("/api/v1", False),
    "deployments": ("/apis/apps/v1", True),
    "replicasets": ("/apis/apps/v1", True),
    "daemonsets": ("/apis/apps/v1", True),
    "statefulsets": ("/apis/apps/v1", True),
    "controllerrevisions": ("/apis/apps/v1", True),
    "endpointslices": ("/apis/discovery.k8s.io/v1", True),
    "certificates": ("/apis/cert-manager.io/v1", True),
    "issuers": ("/apis/cert-manager.io/v1", True),
    "clusterissuers": ("/apis/cert-manager.io/v1", False),
    # What Helm charts render most, so a release's resources are read without a discovery round trip.
    "configmaps": ("/api/v1", True),
    "serviceaccounts": ("/api/v1", True),
    "persistentvolumeclaims": ("/api/v1", True),
    "persistentvolumes": ("/api/v1", False),
    "jobs": ("/apis/batch/v1", True),
    "cronjobs": ("/apis/batch/v1", True),
    "ingresses": ("/apis/networking.k8s.io/v1", True),
    "networkpolicies": ("/apis/networking.k8s.io/v1", True),
    "horizontalpodautoscalers": ("/apis/autoscaling/v2", True),
    "poddisruptionbudgets": ("/apis/policy/v1", True),
    "roles": ("/apis/rbac.authorization.k8s.io/v1", True),
    "rolebindings": ("/apis/rbac.authorization.k8s.io/v1", True),
    "clusterroles": ("/apis/rbac.authorization.k8s.io/v1", False),
    "clusterrolebindings": ("/apis/rbac.authorization.k8s.io/v1", False),
}
# (apiVersion, kind) -> the RESOURCES key it is listed under; other kinds are found by discovery (KubeReader.resource).
# A kind served under several versions (autoscaling/v1 and v2) is read under one: the API server converts.
KNOWN_KINDS: dict[tuple[str, str], str] = {
    ("v1", "Pod"): "pods",
    ("v1", "Service"): "services",
    ("v1", "Secret"): "secrets",
    ("v1", "Namespace"): "namespaces",
    ("v1", "Node"): "nodes",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "PersistentVolume"): "persistentvolumes",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "ReplicaSet"): "replicasets",
    ("apps/v1", "DaemonSet"): "daemonsets",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("batch/v1", "Job"): "jobs",
    ("batch/v1", "CronJob"): "cronjobs",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "clusterroles",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "clusterrolebindings",
    ("cert-manager.io/v1", "Certificate"): "certificates",
    ("cert-manager.io/v1", "Issuer"): "issuers",
    ("cert-manager.io/v1", "ClusterIssuer"): "clusterissuers",
}
_DISCOVERY_LOCK = threading.Lock()
READ_VERBS = frozenset({"GET", "HEAD"})


class KubeUnavailable(TransportError):
    """The cluster could not be asked (unreachable, slow, refused credentials, RBAC, unknown context): ERROR."""


class UnknownResource(KubeUnavailable):
    """The cluster does not serve this apiVersion and kind (its CRD is not installed, or the version is wrong):
    nothing of that kind can be judged there. ERROR, "Could not decide"."""

    category = Category.UNDECIDED


class WatchExpired(Exception):
    """The API server no longer has the watched resourceVersion (410 Gone): list again."""


class ReadOnlyViolation(Exception):
    """A mutating verb was attempted through a read-only reader."""


@dataclass
class Listing:
    """One LIST's objects, with indexes built on first use: checks look objects up by name and by owner, and a
    scan per check would make a namespace of N workloads cost N^2."""

    items: list[Obj]
    resource_version: str
    _names: dict[str, Obj] | None = field(default=None, repr=False)
    _owners: dict[str, list[Obj]] | None = field(default=None, repr=False)

    def named(self, name: str) -> Obj | None:
        if self._names is None:
            self._names = {o["metadata"]["name"]: o for o in self.items}
        return self._names.get(name)

    def owned_by(self, uid: str) -> list[Obj]:
        if self._owners is None:
            self._owners = {}
            for obj in self.items:
                for owner in obj["metadata"].get("ownerReferences", []):
                    self._owners.setdefault(owner.get("uid", ""), []).append(obj)
        return self._owners.get(uid, [])


@dataclass
class KubeReader:
    """One cluster, read-only, with one cached LIST per (kind, namespace) for the life of the worker."""

    cluster: str
    api: KubeApi
    where: str  # "context aks-prod-weu" or "in-cluster config": said in every error
    cache: dict[tuple[str, str | None, str], Listing] = field(default_factory=dict)
    documents: dict[str, Obj] = field(default_factory=dict)  # other GETs (/version, /openapi/v3/...), by path
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_kubeconfig(
        cls, cluster: str, context: str, kubeconfig: str | None = None, allow_mutations: bool = False
    ) -> KubeReader:
        """A client for `context`, from the run's kubeconfig as parsed once (checks.transports.kubeconfig): building
        the 200th cluster's client costs what the first did."""
        from kubernetes import client as k8s
        from kubernetes.config.config_exception import ConfigException

        from deploy_verify.checks.transports.kubeconfig import KubeconfigProblem, configure

        where = f"context {context!r}" + (f" of {kubeconfig}" if kubeconfig else "")
        configuration = _configuration()
        try:
            configure(configuration, context, kubeconfig)
        except KubeconfigProblem as exc:
            raise KubeUnavailable(f"cluster {cluster}: {exc}") from exc
        except ConfigException as exc:
            raise KubeUnavailable(
                f"cluster {cluster}: cannot load kubeconfig {kubeconfig or '(default)'}: {exc}"
            ) from exc
        except OSError as exc:  # a certificate file the kubeconfig names
            raise KubeUnavailable(f"cluster {cluster}: cannot read kubeconfig: {exc}") from exc
        api = k8s.ApiClient(configuration=configuration)
        return cls(cluster, guard_read_only(_bounded(api), allow_mutations), where)

    @classmethod
    def in_cluster(cls, cluster: str, allow_mutations: bool = False) -> KubeReader:
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config
        from kubernetes.config.config_exception import ConfigException

        configuration = _configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise KubeUnavailable(f"cluster {cluster}: in-cluster config unavailable: {exc}") from exc
        api = k8s.ApiClient(configuration=configuration)
        return cls(cluster, guard_read_only(_bounded(api), allow_mutations), "in-cluster service account")

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    # --- reads ---------------------------------------------------------------------------------------------------

    def listing(self, kind: str, namespace: str | None, deadline: Deadline, select: str = "") -> Listing:
        """All objects of `kind` in `namespace` (None: cluster-scoped or all namespaces), fetched once and cached.

        `select` narrows the LIST on the server: "labels:owner=helm" or "fields:type=kubernetes.io/tls". Secrets
        are always read narrowed, so a check that needs Helm's release records never downloads every TLS key.
        """
        if kind == "secrets" and not select:
            raise ValueError("secrets are only listed with a selector: a bare LIST would fetch every key")
        key = (kind, namespace, select)
        with self.lock:
            if key not in self.cache:
                document = self._get_json(_path(kind, namespace), _selector_query(select), deadline)
                self.cache[key] = Listing(document.get("items") or [], document["metadata"].get("resourceVersion", ""))
            return self.cache[key]

    def resource(self, api_version: str, kind: str, deadline: Deadline) -> str:
        """The RESOURCES key objects of (apiVersion, kind) are listed under: a known one, else found once through
        the API server's discovery document of that group/version (`/apis/GROUP/VERSION`, `/api/v1`) and
        registered as `plural.group`. UnknownResource when the cluster does not serve it."""
        known = KNOWN_KINDS.get((api_version, kind))
        if known is not None:
            return known
        with _DISCOVERY_LOCK:
            found = KNOWN_KINDS.get((api_version, kind))
            if found is not None:
                return found
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            document = self._get_json(prefix, {}, deadline)
        except KubeUnavailable as exc:
            if "answered 404" not in str(exc):
                raise
            raise UnknownResource(
                f"cluster {self.cluster} does not serve {api_version} (is the CRD installed, and is that its "
                "served version?)"
            ) from exc
        for entry in document.get("resources") or []:
            if entry.get("kind") == kind and "/" not in str(entry.get("name", "")):
                group = api_version.rpartition("/")[0]
                key = f"{entry['name']}.{group}" if group else str(entry["name"])
                with _DISCOVERY_LOCK:
                    RESOURCES.setdefault(key, (prefix, bool(entry.get("namespaced"))))
                    KNOWN_KINDS[(api_version, kind)] = key
                return key
        resources = [e for e in document.get("resources") or [] if "/" not in str(e.get("name", ""))]
        served = ", ".join(sorted(str(e.get("kind")) for e in resources)) or "nothing"
        raise UnknownResource(f"cluster {self.cluster} serves no kind {kind} in {api_version} (it serves {served})")

    def document(self, path: str, deadline: Deadline) -> Obj:
        """One GET of a document that is not a list (`/version`, `/openapi/v3/apis/apps/v1?hash=...`), read once
        per run: the schema of a group is the same for every object validated against it."""
        with self.lock:
            cached = self.documents.get(path)
        if cached is not None:
            return cached
        base, _, query = path.partition("?")
        params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        document = self._get_json(base, params, deadline)
        with self.lock:
            self.documents[path] = document
        return document

    def namespaced(self, key: str) -> bool:
        """Whether objects listed under `key` (a RESOURCES key) live in namespaces."""
        return RESOURCES[key][1]

    def fresh(self, kind: str, namespace: str | None, deadline: Deadline, select: str = "") -> Listing:
        """Drop the cached list and read it again (used by waits, never by one-shot checks)."""
        with self.lock:
            self.cache.pop((kind, namespace, select), None)
        return self.listing(kind, namespace, deadline, select)

    def namespace_exists(self, namespace: str, deadline: Deadline) -> bool:
        """A LIST in a missing namespace answers 200 with nothing; only the namespace list tells the difference."""
        try:
            names = {n["metadata"]["name"] for n in self.listing("namespaces", None, deadline).items}
        except KubeUnavailable as exc:
            if "forbidden" not in str(exc):
                raise
            return True  # may not list namespaces (namespaced RBAC): do not claim it is missing
        return namespace in names

    def logs(self, pod: str, namespace: str, container: str, previous: bool, deadline: Deadline, tail: int = 50) -> str:
        """The tail of a container's log; an explanation instead of the log when there is none."""
        query = {"container": container, "tailLines": str(tail), "previous": str(previous).lower()}
        path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/log"
        try:
            return self._get(path, query, deadline).decode("utf-8", errors="replace")
        except KubeUnavailable as exc:
            return f"(no {'previous ' if previous else ''}log: {exc})"

    def watch(
        self,
        kind: str,
        namespace: str | None,
        resource_version: str,
        deadline: Deadline,
        opened: list[RawResponse] | None = None,
    ) -> Iterator[tuple[str, Obj]]:
        """(type, object) events after `resource_version` until the deadline; bookmarks are skipped. The raw
        response is appended to `opened` so another thread can close it when nobody listens any more.

        Two bounds: opening the watch (status and headers) is one request (`kubernetes_request`); the stream is then
        cut when its window ends (`kubernetes_watch`, a second past the server's own `timeoutSeconds`, never past
        the deadline), whether the server ends it or not."""
        seconds = max(1, int(deadline.timeout(deadline.calls.kubernetes_watch)))
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
        }
        path = _path(kind, namespace)
        cut = Cutoff(f"watch of {path}", self._bound(deadline, deadline.calls.kubernetes_request, "request")).start()
        try:
            with cut.current():
                response = self._guarded(cut, lambda: self._open(path, query, deadline, read_timeout=seconds + 5))
            window = min(float(seconds + 1), deadline.remaining())
            cut.rearm(Bound(window, "defaults.timeouts.kubernetes_watch"))
            if opened is not None:
                opened.append(response.response)
            try:
                for line in _lines(response.response):
                    event = json.loads(line)
                    if event.get("type") == "BOOKMARK":
                        continue
                    if event.get("type") == "ERROR":
                        if event["object"].get("code") == 410:  # resourceVersion too old: list again, then watch
                            raise WatchExpired(kind)
                        raise KubeUnavailable(f"watch of {kind} ended: {event['object'].get('message', '')}")
                    yield event["type"], event["object"]
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, TimeoutError, OSError):
                return  # the watch window closed (the server ended it, or the cutoff did); the caller decides
            finally:
                response.response.release_conn()
        finally:
            cut.close()

    def wakeups(
        self, streams: list[tuple[str, str | None]], deadline: Deadline, tick: float = 1.0
    ) -> Iterator[tuple[str, str, Obj] | None]:
        """Several watches at once, merged: (kind, type, object) per event, None every `tick` seconds without one
        (so grace periods can end). Each stream starts at its cached list's version and folds its events into that
        cached list, so a check re-evaluated after a wakeup sees the new state."""
        events: queue.Queue[tuple[str, str, Obj] | BaseException | None] = queue.Queue()
        stop = threading.Event()

        opened: list[RawResponse] = []

        def pump(kind: str, namespace: str | None) -> None:
            try:
                while not stop.is_set() and not deadline.expired():
                    listing = self.listing(kind, namespace, deadline)
                    try:
                        for kind_type, obj in self.watch(kind, namespace, listing.resource_version, deadline, opened):
                            self._apply(kind, namespace, kind_type, obj)
                            events.put((kind, kind_type, obj))
                            if stop.is_set():
                                return
                    except WatchExpired:
                        self.fresh(kind, namespace, deadline)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises
                if not stop.is_set():
                    events.put(exc)

        threads = [threading.Thread(target=pump, args=s, daemon=True) for s in streams]
        for thread in threads:
            thread.start()
        try:
            while not deadline.expired():
                try:
                    item = events.get(timeout=max(0.01, min(tick, deadline.remaining())))
                except queue.Empty:
                    yield None
                    continue
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            for response in opened:  # end the open watches now, not when the server's timeoutSeconds runs out
                _close_quietly(response)

    # --- the one write, for the rollback drill ---------------------------------------------------------------------

    def patch(self, kind: str, namespace: str, name: str, body: Any, content_type: str, deadline: Deadline) -> Obj:
        """PATCH one object. Refused by the client's guard unless the reader was built for a mutating scenario."""
        path = f"{_path(kind, namespace)}/{quote(name)}"
        method, url, headers, serialized, _ = self.api.param_serialize(
            "PATCH",
            path,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        bound = self._bound(deadline, deadline.calls.kubernetes_request, "request")
        self.requests += 1
        with bounded(f"PATCH {path}", bound) as cut:
            response = self._guarded(
                cut,
                lambda: self.api.call_api(
                    method, url, header_params=headers, body=serialized, _request_timeout=bound.seconds
                ),
            )
            payload = self._guarded(cut, response.read)
        if response.status != 200:
            raise self._refused("PATCH", path, response.status, payload)
        document: Obj = json.loads(payload)
        return document

    # --- plumbing ------------------------------------------------------------------------------------------------

    def _apply(self, kind: str, namespace: str | None, kind_type: str, obj: Obj) -> None:
        """Fold a watch event into the cached list."""
        with self.lock:
            listing = self.cache.get((kind, namespace, ""))
            if listing is None:
                return
            name = obj["metadata"]["name"], obj["metadata"].get("namespace")
            items = [o for o in listing.items if (o["metadata"]["name"], o["metadata"].get("namespace")) != name]
            if kind_type != "DELETED":
                items.append(obj)
            self.cache[(kind, namespace, "")] = Listing(items, obj["metadata"].get("resourceVersion", ""))

    def _get_json(self, path: str, query: dict[str, str], deadline: Deadline) -> Obj:
        body = self._get(path, query, deadline)
        try:
            document: Obj = json.loads(body)
        except ValueError as exc:
            raise KubeUnavailable(f"cluster {self.cluster}: {path} did not answer JSON", Failure.MALFORMED) from exc
        return document

    def _get(self, path: str, query: dict[str, str], deadline: Deadline) -> bytes:
        """One GET, its body included, within one bound: a server that trickles its answer is cut off on time."""
        with bounded(f"GET {path}", self._bound(deadline, deadline.calls.kubernetes_request, "request")) as cut:
            response = self._guarded(cut, lambda: self._open(path, query, deadline))
            try:
                return self._guarded(cut, lambda: bytes(response.read()))
            except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError) as exc:
                raise KubeUnavailable(
                    f"cluster {self.cluster}: the API server stopped answering during {path}", Failure.UNREACHABLE
                ) from exc

    def _bound(self, deadline: Deadline, wanted: float, what: str) -> Bound:
        try:
            return Bound.of(deadline, wanted, f"defaults.timeouts.kubernetes_{what}")
        except BudgetExhausted as exc:
            raise KubeUnavailable(f"cluster {self.cluster}: not asked: {exc}", Failure.SPENT) from exc

    def _guarded(self, cut: Cutoff, call: Callable[[], T]) -> T:
        """`call()`; once `cut` has fired, whatever it raised or returned (a body ended early) is the cut."""
        try:
            result = call()
        except Exception as exc:
            if cut.fired:
                raise self._cut_off(cut) from exc
            raise
        if cut.fired:
            raise self._cut_off(cut)
        return result

    def _cut_off(self, cut: Cutoff) -> KubeUnavailable:
        return KubeUnavailable(
            f"cluster {self.cluster}: API server {self.server} did not answer in time: {cut.describe()}; check "
            f"the API server's load and that {self.where} points at it",
            Failure.UNREACHABLE,
        )

    def _open(
        self, path: str, query: dict[str, str], deadline: Deadline, read_timeout: float | None = None
    ) -> ApiResponse:
        from kubernetes.client.exceptions import ApiException

        timeout = self._bound(deadline, deadline.calls.kubernetes_request, "request").seconds
        method, url, headers, _, _ = self.api.param_serialize(
            "GET",
            path,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        self.requests += 1
        try:
            response = self.api.call_api(
                method, url, header_params=headers, _request_timeout=(timeout, read_timeout or timeout)
            )
        except urllib3.exceptions.MaxRetryError as exc:
            raise KubeUnavailable(self._unreachable(exc.reason), Failure.UNREACHABLE) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnavailable(self._unreachable(exc), Failure.UNREACHABLE) from exc
        except ApiException as exc:  # TLS errors surface here with status 0
            raise KubeUnavailable(f"cluster {self.cluster} ({self.where}): {exc.reason}") from exc
        if response.status != 200:
            raise self._refused("GET", path, response.status, response.read())
        return response

    def _unreachable(self, reason: object) -> str:
        text = str(reason)
        # Name resolution and "refused" first: urllib3's NewConnectionError (and its NameResolutionError) are
        # subclasses of its connect-timeout error, and would otherwise read as "did not answer in time".
        if isinstance(reason, urllib3.exceptions.NameResolutionError) or "Failed to resolve" in text:
            what = "cannot be resolved (DNS)"
        elif "refused" in text.lower():
            what = "refused the connection"
        elif "reset by peer" in text.lower() or "aborted" in text.lower():
            what = "dropped the connection (it stopped or restarted)"
        elif "timed out" in text.lower() or isinstance(reason, urllib3.exceptions.TimeoutError):
            what = "did not answer in time"
        else:
            what = f"is unreachable ({text[:160]})"
        return (
            f"cluster {self.cluster}: API server {self.server} {what}; check that the cluster is up and that "
            f"{self.where} points at it"
        )

    def _refused(self, verb: str, path: str, status: int, body: bytes) -> KubeUnavailable:
        try:
            message = json.loads(body).get("message", "")
        except ValueError:
            message = body[:200].decode("utf-8", errors="replace")
        if status == 401:
            return KubeUnavailable(
                f"cluster {self.cluster}: credentials of {self.where} were refused (401): {message}",
                Failure.CREDENTIALS,
            )
        if status == 403:
            forbidden = f"cluster {self.cluster}: forbidden (403): {message}; the suite needs get/list/watch"
            return KubeUnavailable(f"{forbidden} (see deploy/rbac/)", Failure.FORBIDDEN)
        return KubeUnavailable(f"cluster {self.cluster}: {verb} {path} answered {status}: {message}")


def _bounded(api: Any) -> Any:
    """The client's connections enrol with the current cutoff (checks.transports.bounded), so every call ends by
    its bound even when the server trickles; set before the first request, when the pools are made."""
    bounded_pools(api.rest_client.pool_manager)
    return api


def _configuration() -> Any:
    """Client settings the time budget depends on: no urllib3 retries (its default retries a read timeout three
    times, quadrupling every deadline); the budget, not the transport, decides when to give up."""
    from kubernetes import client as k8s

    configuration = k8s.Configuration()
    configuration.retries = urllib3.Retry(total=0, redirect=0, raise_on_status=False)
    return configuration


def guard_read_only(api: Any, allow_mutations: bool) -> KubeApi:
    """Make the client itself refuse non-GET verbs: a check that tried to change the cluster fails loudly."""
    if allow_mutations:
        return cast(KubeApi, api)
    call: Callable[..., ApiResponse] = api.call_api

    def read_only_call(method: str, url: str, *args: Any, **kwargs: Any) -> ApiResponse:
        if method.upper() not in READ_VERBS:
            raise ReadOnlyViolation(
                f"refused {method} {url}: this run is read-only (mutations need a @mutating "
                "scenario and --allow-mutations)"
            )
        return call(method, url, *args, **kwargs)

    api.call_api = read_only_call
    return cast(KubeApi, api)


def _close_quietly(response: RawResponse) -> None:
    """Close a streaming response from another thread; one that already ended has nothing left to close."""
    with contextlib.suppress(RuntimeError, OSError, ValueError):
        try:
            getattr(response, "shutdown", response.close)()
        except ValueError:
            # urllib3 refuses shutdown() on a response whose connection already died (an API server that was killed
            # mid-watch): found by tests/test_faults.py. Closing is all that is left to do.
            response.close()


def _selector_query(select: str) -> dict[str, str]:
    """ "labels:app=x" -> {"labelSelector": "app=x"}; "fields:type=t" -> {"fieldSelector": "type=t"}."""
    if not select:
        return {}
    which, _, expression = select.partition(":")
    return {{"labels": "labelSelector", "fields": "fieldSelector"}[which]: expression}


def _path(kind: str, namespace: str | None) -> str:
    prefix, namespaced = RESOURCES[kind]
    plural = kind.partition(".")[0]  # a discovered kind is keyed `plural.group`; the URL has the plural
    if namespaced and namespace is not None:
        return f"{prefix}/namespaces/{quote(namespace)}/{plural}"
    return f"{prefix}/{plural}"


def _lines(response: RawResponse) -> Iterator[bytes]:
    """Newline-delimited JSON from a streaming urllib3 response."""
    pending = b""
    for chunk in response.stream(64 * 1024, decode_content=True):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending
