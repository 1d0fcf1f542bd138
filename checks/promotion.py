"""Promotion: the candidate is what was verified, green, in the environment this one promotes from, and is still
what runs there.

    result = check_promotion(PromotionFacts(...))

Three sources must agree for one component: the candidate (this run's release manifest), the last post-deploy
verdict of the source environment (its `verdict-<env>.json`: green, and expecting the same version), and what runs in
the source environment right now. The last one is what catches a manual deployment: someone `kubectl set image`'d a
hotfix into staging after the pipeline verified it; that build was never verified and is never promoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict

CHECK = "promotion_verified"


@dataclass(frozen=True)
class Candidate:
    version: str | None = None
    image: str | None = None
    digest: str | None = None

    def describe(self) -> str:
        return self.digest or self.image or f"version {self.version}"

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("version", self.version), ("image", self.image), ("digest", self.digest)) if v}


@dataclass(frozen=True)
class PromotionFacts:
    component: str
    source: str  # the environment promoted from
    candidate: Candidate | None
    verdict: dict[str, Any]  # the source's verdict document
    verdict_file: str
    running: dict[str, str] | None  # what runs in the source now: version / image / digest that could be read
    required_soak: float | None = None  # seconds the source's post-deploy run must have held (requires_soak)


def check_promotion(facts: PromotionFacts) -> CheckResult:
    where = f"promotion:{facts.source}/{facts.component}"
    evidence = (
        Evidence.as_json(
            "promotion evidence",
            {
                "candidate": facts.candidate.as_dict() if facts.candidate else None,
                "verified_in": facts.source,
                "verdict_file": facts.verdict_file,
                "verdict": {
                    k: facts.verdict.get(k) for k in ("verdict", "reason", "markers", "finished", "release", "soak")
                },
                "running_in_source": facts.running,
            },
        ),
    )
    candidate = facts.candidate
    if candidate is None or not candidate.as_dict():
        return CheckResult(
            CHECK,
            where,
            Verdict.ERROR,
            "no candidate version for this component: pass the release manifest being promoted with --release FILE",
            category=Category.UNDECIDED,
        )
    problem = _verdict_problem(facts, candidate)
    if problem is None:
        problem = _running_problem(facts, candidate)
    if problem is not None:
        # Unverified, red, or replaced since: what would be promoted is not the version that was verified.
        return CheckResult(CHECK, where, Verdict.FAIL, problem, evidence, Category.WRONG_VERSION)
    return CheckResult(
        CHECK,
        where,
        Verdict.PASS,
        f"{candidate.describe()} was verified green in {facts.source} ({facts.verdict.get('finished')}) "
        f"and still runs there",
        evidence,
    )


def _verdict_problem(facts: PromotionFacts, candidate: Candidate) -> str | None:
    verdict, source = facts.verdict, facts.source
    if "postdeploy" not in str(verdict.get("markers", "")):
        return (
            f"the last recorded run of {source} ({facts.verdict_file}) was not a post-deploy run "
            f"(-m {verdict.get('markers')!r}); verify {source} with -m postdeploy first"
        )
    if verdict.get("verdict") != "green":
        return (
            f"the last post-deploy run of {source} was red ({verdict.get('reason')}); a red release is never promoted"
        )
    expected = (verdict.get("release") or {}).get("expected", {}).get(facts.component)
    if not expected:
        return (
            f"the last green post-deploy run of {source} did not check {facts.component}'s version (no expectation "
            "for it in its release manifest); what would be promoted was never verified"
        )
    verified = Candidate(expected.get("version"), expected.get("image"), expected.get("digest"))
    mismatched = [k for k, v in candidate.as_dict().items() if verified.as_dict().get(k) not in (None, v)]
    unverified = [k for k in candidate.as_dict() if k not in verified.as_dict()]
    if mismatched or len(unverified) == len(candidate.as_dict()):
        return (
            f"the candidate {candidate.describe()} is not what {source} verified: its last green post-deploy run "
            f"checked {verified.describe()}"
        )
    components = [t for t in verdict.get("tests", []) if t.get("component") == facts.component]
    if not components:
        return f"the last green post-deploy run of {source} ran no check of {facts.component}"
    return _soak_problem(facts)


def _soak_problem(facts: PromotionFacts) -> str | None:
    """Kargo's required soak time: the release must have held in the source for a while, not just passed once."""
    if facts.required_soak is None:
        return None
    wanted = _human(facts.required_soak)
    soak = facts.verdict.get("soak") or {}
    asked = f"this environment requires a soak of at least {wanted} in {facts.source} before promotion (requires_soak)"
    again = f"verify {facts.source} again with -m postdeploy --soak {wanted}"
    if soak.get("outcome") != "held":
        return f"{asked}, but the last post-deploy run of {facts.source} did not soak; {again}"
    held = float(soak.get("duration_s") or 0)
    if held < facts.required_soak:
        return f"{asked}, but the last post-deploy run of {facts.source} held for only {_human(held)}; {again}"
    return None


def _human(seconds: float) -> str:
    from deploy_verify.soak import human

    return human(seconds)


def _running_problem(facts: PromotionFacts, candidate: Candidate) -> str | None:
    running = facts.running
    if running is None:
        return None  # this kind's running version is not readable; the verdict above is the evidence
    for key in ("digest", "image", "version"):
        wanted = getattr(candidate, key)
        if wanted and running.get(key) and running[key] != wanted:
            return (
                f"{facts.source} runs {key} {running[key]}, not the verified {wanted}: a manual deployment replaced "
                "what the pipeline verified, and an unverified build is never promoted; redeploy the release to "
                f"{facts.source} and verify it again"
            )
    return None
