"""Any Kubernetes object, CRDs included, judged by its published status (checks.status): the object exists and is
Current.

    ref = ResourceRef("argoproj.io/v1alpha1", "Rollout", "shop", "web")
    result = check_object(reader, ref, deadline)                                  # one look
    result = check_object(reader, ref, deadline, within=deadline.sub(120, "2m"))  # waits, on watches

The kind is resolved through the reader (a static table for core kinds, discovery for the rest): a kind the cluster
does not serve is an ERROR (its CRD is not installed, or that is not its served version). The objects come from the
shared LIST of the kind in the namespace; a label selector is matched by the API server. Verdicts, per object:
Current is a PASS; Failed a FAIL; InProgress a FAIL after one look, and what a wait waits for (a wait that runs out
is an ERROR carrying the last state, as every `within` of the suite); Unknown (no status to judge) an ERROR. A name
that matches nothing is a FAIL; a selector that matches nothing an ERROR: an empty selection never passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy_verify.checks.converge import State as Look
from deploy_verify.checks.converge import Timeline, look_or_wait
from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.status import Judgment, State, group_of, judge, typed, where_of_object
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.checks.workloads import NamespaceNotFound

CHECK = "resource_status"
# Where a FAIL is filed, by the object's (group, kind); anything else is Provisioning.
CATEGORIES: dict[tuple[str, str], Category] = {
    **{("apps", k): Category.ROLLOUT_STUCK for k in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")},
    ("argoproj.io", "Rollout"): Category.ROLLOUT_STUCK,
    ("", "Pod"): Category.ROLLOUT_STUCK,
    ("", "Service"): Category.UNHEALTHY_ENDPOINT,
    ("networking.k8s.io", "Ingress"): Category.UNHEALTHY_ENDPOINT,
    ("cert-manager.io", "Certificate"): Category.CERTIFICATE,
}


@dataclass(frozen=True)
class ResourceRef:
    """One object by name, or every object a label selector matches (kubectl -l syntax). `namespace` None: a
    cluster-scoped kind (a namespace given for a cluster-scoped kind is ignored)."""

    api_version: str
    kind: str
    namespace: str | None
    name: str = ""
    selector: str = ""
    may_suspend: bool = False  # a suspended, paused or scaled-to-0 object is allowed (checks.status)

    def __post_init__(self) -> None:
        if bool(self.name) == bool(self.selector):
            raise ValueError("a ResourceRef names one object or gives a label selector, exactly one of the two")

    @property
    def where(self) -> str:
        place = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}:{place}{self.name}" if self.name else f"{self.kind}:{place}[{self.selector}]"


def check_object(
    reader: KubeReader, ref: ResourceRef, deadline: Deadline, within: Deadline | None = None, grace: float = 5.0
) -> CheckResult:
    """One look, or (with `within`) a watch until every matching object is Current, one has failed for `grace`
    seconds, or the window ends."""
    timeline = Timeline()
    seen: list[list[tuple[Obj, Judgment]]] = []

    def run() -> CheckResult:
        key = reader.resource(ref.api_version, ref.kind, deadline)
        namespaced = reader.namespaced(key)
        if namespaced and ref.namespace is None:
            return CheckResult(
                CHECK,
                ref.where,
                Verdict.ERROR,
                f"{ref.kind} ({ref.api_version}) is a namespaced kind: give the component's namespace",
                category=Category.UNDECIDED,
            )
        namespace = ref.namespace if namespaced else None
        looks: list[int] = []

        def evaluate() -> Look:
            objects = _matching(reader, key, namespace, ref, deadline, again=bool(looks))
            looks.append(1)
            seen.append([(obj, judge(obj, reader, deadline, may_suspend=ref.may_suspend)) for obj in objects])
            return _verdict(reader, ref, namespace, seen[-1], deadline)

        streams: list[tuple[str, str | None]] = [(key, namespace)]
        if (group_of({"apiVersion": ref.api_version}), ref.kind) == ("", "Service"):
            streams.append(("endpointslices", namespace))  # a Service is judged by its EndpointSlices
        # Secrets are never listed whole (the reader refuses: every key would come along), so never watched: one look.
        window = None if key == "secrets" else within
        state = look_or_wait(evaluate, window, lambda w: reader.wakeups(streams, w), grace, timeline)
        assert state.verdict is not None
        evidence = _evidence(seen[-1]) if seen and state.verdict is not Verdict.PASS else ()
        return CheckResult(
            CHECK, ref.where, state.verdict, state.message, (*evidence, *timeline.evidence()), state.category
        )

    return attempt(CHECK, ref.where, run)


def _matching(
    reader: KubeReader, key: str, namespace: str | None, ref: ResourceRef, deadline: Deadline, again: bool
) -> list[Obj]:
    """The objects the ref stands for, with kind and apiVersion set. By name: from the shared list, which a wait's
    watch keeps current. By selector: the API server's own selection, read again on every later look (a watch
    folds its events into the unselected list only)."""
    if ref.name and key == "secrets":
        objects = reader.listing(key, namespace, deadline, f"fields:metadata.name={ref.name}").items
    elif ref.name:
        found = reader.listing(key, namespace, deadline).named(ref.name)
        objects = [] if found is None else [found]
    else:
        select = f"labels:{ref.selector}"
        read = reader.fresh if again else reader.listing
        objects = sorted(read(key, namespace, deadline, select).items, key=lambda o: str(o["metadata"]["name"]))
    return [typed(obj, ref.api_version, ref.kind) for obj in objects]


def _verdict(
    reader: KubeReader, ref: ResourceRef, namespace: str | None, judged: list[tuple[Obj, Judgment]], deadline: Deadline
) -> Look:
    category = CATEGORIES.get((group_of({"apiVersion": ref.api_version}), ref.kind), Category.PROVISIONING)
    if not judged:
        if namespace is not None and not reader.namespace_exists(namespace, deadline):
            raise NamespaceNotFound(
                f"cluster {reader.cluster}: namespace {namespace!r} not found; check the environment file's "
                "namespace and the kubeconfig context"
            )
        place = f" in namespace {namespace}" if namespace else ""
        if ref.name:
            return Look(
                Verdict.FAIL,
                f"{ref.kind} {ref.name} ({ref.api_version}) not found{place}; is the name right, was it deployed?",
                Category.PROVISIONING,
            )
        return Look(
            Verdict.ERROR,
            f"no {ref.kind} ({ref.api_version}){place} matches the label selector {ref.selector!r}: an empty "
            "selection is never a pass; check the selector and that the objects were deployed",
            Category.UNDECIDED,
        )
    single = ref.name != ""

    def said(items: list[tuple[Obj, Judgment]]) -> str:
        if single:
            return items[0][1].reason
        return "; ".join(f"{where_of_object(obj)}: {j.reason}" for obj, j in items)

    by_state = {s: [(o, j) for o, j in judged if j.state is s] for s in State}
    failed, unknown, waiting = by_state[State.FAILED], by_state[State.UNKNOWN], by_state[State.IN_PROGRESS]
    if failed:
        also = f"; also undecided: {said(unknown)}" if unknown and not single else ""
        return Look(Verdict.FAIL, said(failed) + also, category)
    if unknown:
        return Look(
            Verdict.ERROR,
            f"{said(unknown)}; the suite cannot tell whether it is healthy: check it another way, or leave it out",
            Category.UNDECIDED,
        )
    if waiting:
        prefix = "" if single else f"{len(waiting)} of {len(judged)} not current yet: "
        return Look(None, prefix + said(waiting), category)
    if single:
        return Look(Verdict.PASS, judged[0][1].reason)
    names = ", ".join(where_of_object(o) for o, _ in judged)
    return Look(Verdict.PASS, f"all {len(judged)} matching objects are current: {names}")


def _evidence(judged: list[tuple[Obj, Judgment]]) -> tuple[Evidence, ...]:
    return tuple(
        Evidence.as_json(
            f"{where_of_object(obj)} status",
            {
                "judged": judgment.state.value,
                "reason": judgment.reason,
                "generation": obj.get("metadata", {}).get("generation"),
                "status": obj.get("status"),
            },
        )
        for obj, judgment in judged[:20]  # a selection of hundreds would bury the report; the message names them
    )
