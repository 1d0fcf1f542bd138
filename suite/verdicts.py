"""From check results to pytest outcomes: FAIL raises an AssertionError (pytest failed, Allure failed); ERROR raises
`Undecided` (reported as pytest error, Allure broken). Either one turns the gate red.
"""

from __future__ import annotations

from checks.result import CheckResult, Verdict, worst


class CheckFailed(AssertionError):
    """The deployment is wrong."""


class Undecided(Exception):
    """The suite could not decide: unreachable API, refused credentials, spent budget, missing expectation."""


def summarize(results: list[CheckResult]) -> str:
    """One line per result that did not pass, worst first; all of them when everything passed."""
    bad = [r for r in results if not r.ok]
    shown = sorted(bad, key=lambda r: r.verdict is not Verdict.ERROR) if bad else results
    return "\n".join(r.line() for r in shown) or "no targets were checked"


def settle(results: list[CheckResult]) -> None:
    """Raise the exception that matches the worst verdict; return quietly when all passed."""
    __tracebackhide__ = True
    verdict = worst(results)
    if verdict is Verdict.ERROR:
        raise Undecided(summarize(results))
    if verdict is Verdict.FAIL:
        raise CheckFailed(summarize(results))
