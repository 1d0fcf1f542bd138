"""From check results to pytest outcomes: FAIL raises an AssertionError (pytest failed, Allure failed); ERROR raises
`Undecided` (reported as pytest error, Allure broken). Either one turns the gate red.
"""

from __future__ import annotations

from deploy_verify.checks.result import CheckResult, Verdict, worst


class CheckFailed(AssertionError):
    """The deployment is wrong."""


class Undecided(Exception):
    """The suite could not decide: unreachable API, refused credentials, spent budget, missing expectation."""


def red_worst_first(results: list[CheckResult]) -> list[CheckResult]:
    """The results that did not pass, ERRORs before FAILs: the first is the one a test's message leads with."""
    return sorted((r for r in results if not r.ok), key=lambda r: r.verdict is not Verdict.ERROR)


def summarize(results: list[CheckResult]) -> str:
    """One line per result that did not pass, worst first; all of them when everything passed."""
    shown = red_worst_first(results) or results
    return "\n".join(r.line() for r in shown) or "no targets were checked"


def settle(results: list[CheckResult]) -> None:
    """Raise the exception that matches the worst verdict; return quietly when all passed."""
    __tracebackhide__ = True
    verdict = worst(results)
    if verdict is Verdict.ERROR:
        raise Undecided(summarize(results))
    if verdict is Verdict.FAIL:
        raise CheckFailed(summarize(results))
