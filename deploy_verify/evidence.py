"""What every step shares: attaching evidence to the current Allure step and turning results into outcomes."""

from __future__ import annotations

import allure
from pydantic import BaseModel

from deploy_verify.checks.result import CheckResult
from deploy_verify.verdicts import settle

# How Allure shows an evidence's MIME type (its file extension and viewer: a plot opens as an image); anything else
# is shown as text.
ATTACHMENT_TYPES = {
    "application/json": allure.attachment_type.JSON,
    "image/svg+xml": allure.attachment_type.SVG,
    "image/png": allure.attachment_type.PNG,
}


def attach_results(results: list[CheckResult]) -> list[CheckResult]:
    """Attach each result's evidence to the running step, named after its target; returns the results."""
    for result in results:
        for evidence in result.evidence:
            kind = ATTACHMENT_TYPES.get(evidence.mime, allure.attachment_type.TEXT)
            allure.attach(evidence.content, name=f"{evidence.name}: {result.target}", attachment_type=kind)
    return results


def assert_results(results: list[CheckResult], entry: BaseModel | None = None) -> None:
    """Pass quietly, or attach the resolved environment entry (component or cluster) and raise the verdict."""
    __tracebackhide__ = True
    if entry is not None and any(not r.ok for r in results):
        name = getattr(entry, "name", None) or results[0].target
        allure.attach(
            entry.model_dump_json(indent=2, exclude_defaults=True),
            name=f"environment entry {name}",
            attachment_type=allure.attachment_type.JSON,
        )
    settle(results)
