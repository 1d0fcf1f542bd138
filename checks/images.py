"""Image identity: the workload's spec and every pod that runs it or serves its traffic run the released image in every
container the release names, and no pod of an older revision remains.

    result = check_image(reader, ref, ImageExpectation(version="1.4.2"), deadline)
    result = check_image(reader, ref, ImageExpectation(containers={"app": ImageExpectation(version="2.0.0"),
                                                                   "migrate": ImageExpectation(digest="sha256:…")}), …)

An expectation is a tag (`version`), a full reference (`image`), or a digest (`sha256:...`, compared with each
pod's `imageID`, which is what actually runs; `initContainerStatuses` for init containers). `containers` states one
per container, init containers included. A single expectation applies to the released container: the one the
environment names (`container:`), else the one named like the workload or the component, else the only container of
the pod template. With several containers and no way to tell, the check does not guess (comparing the first
container passed a pod whose sidecar carried the tag): it is an ERROR that lists the containers and says how to name
one.

The pods judged: the workload's own ready pods of the current revision; any pod of an older revision (FAIL: it
remains); and every ready pod outside the owner chain that the workload's Services route to (EndpointSlice targets,
selector matches): what serves the workload's traffic must run the release, whoever owns it. Pods the controller no
longer counts (terminated, e.g. Evicted, or terminating) run nothing new and are only mentioned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.endpoints import routed_pods, workload_services
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.rollout import workload_evidence
from deploy_verify.checks.runner import attempt
from deploy_verify.checks.transports.kube import KubeReader, Obj
from deploy_verify.checks.workloads import WorkloadRef, WorkloadView, is_active, is_ready, owner_of, read_workload

CHECK = "image_identity"


@dataclass(frozen=True)
class ImageExpectation:
    version: str | None = None
    image: str | None = None
    digest: str | None = None
    container: str | None = None  # the released container, as the environment names it
    containers: Mapping[str, ImageExpectation] = field(default_factory=dict)  # per container, init containers too
    component: str | None = None  # a container named like the component is the released one when none is named

    @property
    def given(self) -> bool:
        return bool(self.version or self.image or self.digest)

    def describe(self) -> str:
        return self.digest or self.image or f"tag {self.version}"

    def matches(self, image: str, image_id: str | None) -> bool:
        if self.digest is not None:
            return bool(image_id) and str(image_id).endswith(self.digest)  # what runs, not what was asked for
        if self.image is not None:
            return image == self.image
        return tag_of(image) == self.version


@dataclass(frozen=True)
class Slot:
    """One container of the pod template: regular or init."""

    name: str
    init: bool = False

    @property
    def label(self) -> str:
        return f"{'init container' if self.init else 'container'} {self.name}"


@dataclass
class Plan:
    """Which container is compared with which expectation; what could not be resolved."""

    rules: list[tuple[Slot, ImageExpectation]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # named by the release or environment, not in the template
    ambiguous: str | None = None  # several containers and nothing says which one is released: ERROR


def check_image(
    reader: KubeReader,
    ref: WorkloadRef,
    expected: ImageExpectation | None,
    deadline: Deadline,
    services: list[str] | None = None,
    min_replicas: int = 1,
) -> CheckResult:
    """`services`: the Services the environment says route to the workload (default: every Service selecting it);
    `min_replicas`: below it, a workload with no ready pod has shown nothing that runs the release."""
    if expected is None or not (expected.given or expected.containers):
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.ERROR,
            "no expected version, image or digest for this "
            "component: pass --release FILE or --expect COMPONENT=VERSION",
            category=Category.UNDECIDED,
        )
    return attempt(CHECK, ref.where, lambda: _judge(reader, ref, expected, deadline, services, min_replicas))


def plan_for(template: Obj, workload: str, expected: ImageExpectation) -> Plan:
    """Resolve the expectation against a pod template's spec (`containers`, `initContainers`)."""
    slots = [Slot(c["name"]) for c in template.get("containers", [])]
    slots += [Slot(c["name"], init=True) for c in template.get("initContainers", [])]
    by_name = {s.name: s for s in slots}
    plan = Plan()
    for name, rule in sorted(expected.containers.items()):
        if name in by_name:
            plan.rules.append((by_name[name], rule))
        else:
            plan.missing.append(name)
    if not expected.given:
        return plan
    regular = [s for s in slots if not s.init]
    if expected.container is not None:
        chosen = by_name.get(expected.container)
        if chosen is None:
            plan.missing.append(expected.container)
            return plan
    else:
        alike = [s for s in regular if s.name in (workload, expected.component)]
        chosen = alike[0] if alike else (regular[0] if len(regular) == 1 else None)
        if chosen is None:
            plan.ambiguous = _ambiguous(slots, workload, expected.component)
            return plan
    rule = ImageExpectation(expected.version, expected.image, expected.digest)
    if (chosen, rule) not in plan.rules:
        plan.rules.insert(0, (chosen, rule))
    return plan


def _ambiguous(slots: list[Slot], workload: str, component: str | None) -> str:
    regular = ", ".join(s.name for s in slots if not s.init) or "none"
    init = [s.name for s in slots if s.init]
    names = f"{regular}" + (f"; init containers: {', '.join(init)}" if init else "")
    alike = workload if component in (None, workload) else f"{workload} or {component}"
    return (
        f"cannot tell which container runs the release: the pod template has containers {names}, none named "
        f"{alike}; name it with `container: NAME` on the component in the environment file, or give each "
        "container's image under `containers:` for this component in the release manifest"
    )


def _judge(
    reader: KubeReader,
    ref: WorkloadRef,
    expected: ImageExpectation,
    deadline: Deadline,
    named: list[str] | None,
    minimum: int,
) -> CheckResult:
    view = read_workload(reader, ref, deadline)
    if view.obj is None:
        return CheckResult(CHECK, ref.where, Verdict.FAIL, f"{ref.where} not found", category=Category.PROVISIONING)
    template = view.obj["spec"]["template"]["spec"]
    plan = plan_for(template, ref.name, expected)
    if plan.missing:
        names = ", ".join(repr(n) for n in plan.missing)
        has = ", ".join(c["name"] for c in template.get("containers", []))
        init = ", ".join(c["name"] for c in template.get("initContainers", []))
        found = f"it has {has or 'none'}" + (f" and init containers {init}" if init else "")
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.FAIL,
            f"the pod template has no container {names} ({found})",
            category=Category.WRONG_VERSION,
        )
    if plan.ambiguous:
        return CheckResult(CHECK, ref.where, Verdict.ERROR, plan.ambiguous, category=Category.UNDECIDED)
    services, _ = workload_services(reader, view, named, deadline)  # a missing one is the endpoints check's finding
    foreign = routed_pods(reader, view, services, deadline)
    problems = _spec_problems(template, plan) + _pod_problems(view, plan) + _foreign_problems(view, plan, foreign)
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        message = "; ".join(problems[:3]) + more
        return CheckResult(CHECK, ref.where, Verdict.FAIL, message, workload_evidence(view), Category.WRONG_VERSION)
    ready = [p for p in view.current_pods if is_active(p) and is_ready(p)]
    if not ready and minimum > 0:
        pods = [p for p in view.current_pods if is_active(p)]
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.FAIL,
            f"no ready pod runs the release: the spec runs {_spec_images(template, plan)}, but none of the "
            f"{len(pods)} pods of the current revision is ready; see the rollout and pods checks",
            workload_evidence(view),
            Category.ROLLOUT_STUCK,
        )
    return CheckResult(CHECK, ref.where, Verdict.PASS, _passed(view, template, plan, len(ready), foreign))


def _spec_problems(template: Obj, plan: Plan) -> list[str]:
    found = []
    for slot, rule in plan.rules:
        image = _spec_image(template, slot)
        if rule.digest is None and not rule.matches(image, None):
            found.append(f"spec runs {image}, expected {rule.describe()}{_label(slot)}")
    return found


def _pod_problems(view: WorkloadView, plan: Plan) -> list[str]:
    found = [
        f"Pod {p['metadata']['name']} of an older revision remains ({_images(p, plan)})"
        for p in view.old_pods
        if is_active(p)
    ]
    for pod in view.current_pods:
        if not (is_active(pod) and is_ready(pod)):
            continue
        for slot, rule in plan.rules:
            image, image_id = _image_of(pod, slot)
            if not rule.matches(image, image_id):
                found.append(
                    f"Pod {pod['metadata']['name']} runs {_found(rule, image, image_id)}, expected "
                    f"{rule.describe()}{_label(slot)}"
                )
    return found


def _foreign_problems(view: WorkloadView, plan: Plan, foreign: list[tuple[Obj, str]]) -> list[str]:
    """Pods outside the owner chain that the workload's Services route to: what they run is what users get."""
    found = []
    for pod, service in foreign:
        where = f"Pod {pod['metadata']['name']} ({owner_of(pod)}, not of {view.ref.where}, behind Service {service})"
        for slot, rule in plan.rules:
            own = _foreign_slot(pod, slot)
            if own is None:
                found.append(f"{where} has no {slot.label} (it runs {_all_images(pod)}), expected {rule.describe()}")
                continue
            image, image_id = _image_of(pod, own)
            if not rule.matches(image, image_id):
                found.append(f"{where} runs {_found(rule, image, image_id)}, expected {rule.describe()}{_label(own)}")
    return found


def _foreign_slot(pod: Obj, slot: Slot) -> Slot | None:
    """The same container in a pod of another owner; a pod with one container is compared on it, whatever its name
    (a hand-made pod rarely names its container as the chart did)."""
    spec = pod.get("spec", {})
    names = [c["name"] for c in spec.get("initContainers" if slot.init else "containers", [])]
    if slot.name in names:
        return slot
    regular = spec.get("containers", [])
    return Slot(regular[0]["name"]) if not slot.init and len(regular) == 1 else None


def _passed(view: WorkloadView, template: Obj, plan: Plan, ready: int, foreign: list[tuple[Obj, str]]) -> str:
    if len(plan.rules) == 1:
        slot, rule = plan.rules[0]
        message = f"spec and {ready} ready pods run {_spec_image(template, slot)}"
        message += f" ({rule.digest[:19]}…)" if rule.digest else ""
    else:
        message = f"spec and {ready} ready pods run {_spec_images(template, plan)}"
    if foreign:
        names = ", ".join(f"{p['metadata']['name']} ({owner_of(p)})" for p, _ in foreign[:3])
        outside = "1 pod outside" if len(foreign) == 1 else f"{len(foreign)} pods outside"
        message += f"; {outside} {view.ref.where} that its Services route to run it too: {names}"
    settled = [p for p in view.pods if not is_active(p)]
    if settled:
        some = (
            "1 terminated or terminating pod is"
            if len(settled) == 1
            else f"{len(settled)} terminated or terminating pods are"
        )
        message += f"; {some} not counted"
    return message


def _spec_images(template: Obj, plan: Plan) -> str:
    if len(plan.rules) == 1:
        return _spec_image(template, plan.rules[0][0])
    return ", ".join(f"{slot.label} {_spec_image(template, slot)}" for slot, _ in plan.rules)


def _label(slot: Slot) -> str:
    return f" ({slot.label})"


def _found(rule: ImageExpectation, image: str, image_id: str | None) -> str:
    return (image_id or "no imageID") if rule.digest else image


def _images(pod: Obj, plan: Plan) -> str:
    if len(plan.rules) == 1:
        return _image_of(pod, plan.rules[0][0])[0]
    return ", ".join(f"{slot.name} {_image_of(pod, slot)[0]}" for slot, _ in plan.rules)


def _all_images(pod: Obj) -> str:
    return ", ".join(f"{c['name']}={c.get('image', '')}" for c in pod.get("spec", {}).get("containers", [])) or "none"


def tag_of(image: str) -> str | None:
    """'acr.io/team/api:1.4.2' -> '1.4.2'; None for an untagged or digest-only reference."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _spec_image(template: Obj, slot: Slot) -> str:
    containers = template.get("initContainers" if slot.init else "containers", [])
    return str(next((c.get("image", "") for c in containers if c["name"] == slot.name), ""))


def _image_of(pod: Obj, slot: Slot) -> tuple[str, str | None]:
    """(the image the pod asked for, the imageID its runtime reports) for one container."""
    statuses = pod.get("status", {}).get("initContainerStatuses" if slot.init else "containerStatuses", [])
    specs = pod.get("spec", {}).get("initContainers" if slot.init else "containers", [])
    status: Obj = next((c for c in statuses if c["name"] == slot.name), {})
    spec: Obj = next((c for c in specs if c["name"] == slot.name), {})
    return spec.get("image") or status.get("image", ""), status.get("imageID")
