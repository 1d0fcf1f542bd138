"""How evidence is attached to the Allure step by its MIME type (deploy_verify.evidence): a metric rule's plot as an
SVG image, a PNG as one, JSON as JSON, anything else as text. (The plot end to end: tests/test_metrics.py,
tests/test_metrics_family.py and, in a browser, tests/test_report_review.py.)"""

from __future__ import annotations

from typing import Any

import allure
import pytest

from deploy_verify.checks.result import CheckResult, Evidence, Verdict
from deploy_verify.evidence import attach_results


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/svg+xml", allure.attachment_type.SVG),
        ("image/png", allure.attachment_type.PNG),
        ("application/json", allure.attachment_type.JSON),
        ("text/plain", allure.attachment_type.TEXT),
        ("application/x-unknown", allure.attachment_type.TEXT),
    ],
)
def test_evidence_is_attached_as_its_mime_type_says(monkeypatch: pytest.MonkeyPatch, mime: str, kind: Any) -> None:
    attached: list[tuple[str, str, Any]] = []
    monkeypatch.setattr(
        allure, "attach", lambda body, name, attachment_type: attached.append((body, name, attachment_type))
    )
    result = CheckResult("metric_rule", "component:web", Verdict.PASS, "", (Evidence("plot: p95", "<svg/>", mime),))
    assert attach_results([result]) == [result]
    assert attached == [("<svg/>", "plot: p95: component:web", kind)]
