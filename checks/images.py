"""Image identity: the workload's spec and every pod run the released image, and no pod of an older revision remains.

    result = check_image(reader, ref, ImageExpectation(version="1.4.2"), deadline)

The expectation is a tag (`version`), a full reference (`image`), or a digest (`sha256:...`, compared with each
pod's `imageID`, which is what actually runs). The released container is `container` when the environment names
one, else the first container of the pod template.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.deadline import Deadline
from checks.result import Category, CheckResult, Verdict
from checks.rollout import workload_evidence
from checks.runner import attempt
from checks.transports.kube import KubeReader, Obj
from checks.workloads import WorkloadRef, WorkloadView, is_ready, read_workload

CHECK = "image_identity"


@dataclass(frozen=True)
class ImageExpectation:
    version: str | None = None
    image: str | None = None
    digest: str | None = None
    container: str | None = None

    def describe(self) -> str:
        return self.digest or self.image or f"tag {self.version}"

    def matches(self, image: str, image_id: str | None) -> bool:
        if self.digest is not None:
            return bool(image_id) and str(image_id).endswith(self.digest)  # what runs, not what was asked for
        if self.image is not None:
            return image == self.image
        return tag_of(image) == self.version


def check_image(
    reader: KubeReader, ref: WorkloadRef, expected: ImageExpectation | None, deadline: Deadline
) -> CheckResult:
    if expected is None or not (expected.version or expected.image or expected.digest):
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.ERROR,
            "no expected version, image or digest for this "
            "component: pass --release FILE or --expect COMPONENT=VERSION",
            category=Category.UNDECIDED,
        )
    return attempt(CHECK, ref.where, lambda: _judge(read_workload(reader, ref, deadline), expected))


def _judge(view: WorkloadView, expected: ImageExpectation) -> CheckResult:
    ref = view.ref
    if view.obj is None:
        return CheckResult(CHECK, ref.where, Verdict.FAIL, f"{ref.where} not found", category=Category.PROVISIONING)
    containers = view.obj["spec"]["template"]["spec"].get("containers", [])
    name = expected.container or (containers[0]["name"] if containers else "")
    spec_image = next((c.get("image", "") for c in containers if c["name"] == name), None)
    if spec_image is None:
        return CheckResult(
            CHECK,
            ref.where,
            Verdict.FAIL,
            f"the pod template has no container {name!r}",
            category=Category.WRONG_VERSION,
        )
    problems = []
    if not expected.digest and not expected.matches(spec_image, None):
        problems.append(f"spec runs {spec_image}, expected {expected.describe()}")
    problems += [
        f"Pod {p['metadata']['name']} of an older revision remains ({_image_of(p, name)[0]})" for p in view.old_pods
    ]
    for pod in view.current_pods:
        image, image_id = _image_of(pod, name)
        if is_ready(pod) and not expected.matches(image, image_id):
            found = (image_id or "no imageID") if expected.digest else image
            problems.append(f"Pod {pod['metadata']['name']} runs {found}, expected {expected.describe()}")
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        message = "; ".join(problems[:3]) + more
        return CheckResult(CHECK, ref.where, Verdict.FAIL, message, workload_evidence(view), Category.WRONG_VERSION)
    ready = sum(1 for p in view.current_pods if is_ready(p))
    return CheckResult(
        CHECK,
        ref.where,
        Verdict.PASS,
        f"spec and {ready} ready pods run {spec_image}" + (f" ({expected.digest[:19]}…)" if expected.digest else ""),
    )


def tag_of(image: str) -> str | None:
    """'acr.io/team/api:1.4.2' -> '1.4.2'; None for an untagged or digest-only reference."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _image_of(pod: Obj, container: str) -> tuple[str, str | None]:
    status: Obj = next((c for c in pod.get("status", {}).get("containerStatuses", []) if c["name"] == container), {})
    spec: Obj = next((c for c in pod.get("spec", {}).get("containers", []) if c["name"] == container), {})
    return spec.get("image") or status.get("image", ""), status.get("imageID")
