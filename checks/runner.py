"""The one place where "could not ask" and "is not there" become results: every check runs its reads through
`attempt`, so a transport failure is turned into an ERROR (and a missing resource into a FAIL) the same way
everywhere, in the failure class the exception carries.

    return attempt(CHECK, ref.where, lambda: _judge(reader.listing("pods", ref.namespace, deadline)))

What a check decides itself (expected vs found) it returns as a result; what it could not find out it raises.
"""

from __future__ import annotations

from collections.abc import Callable

from deploy_verify.checks.deadline import BudgetExhausted
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.transports import TransportError


class Absent(Exception):
    """The thing the check is about does not exist (an app, a release, a revision): the deployment is wrong, FAIL.

    `hint` is what a reader should look at; it follows the message after a semicolon."""

    category = Category.PROVISIONING


class Undecidable(Exception):
    """Something was read but cannot be judged (an unreadable release record): ERROR, "Could not decide"."""

    category = Category.UNDECIDED


SPENT = "not checked: {}; raise the environment's budget"


def attempt_all(check: str, where: str, call: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """`attempt` for a call that makes several results (one per endpoint, per Certificate): one ERROR or FAIL result
    stands for all of them when the call itself could not be made."""
    made: list[CheckResult] = []

    def collect() -> CheckResult:
        made.extend(call())
        return CheckResult(check, where, Verdict.PASS, "")

    failed = attempt(check, where, collect)
    return made if failed.ok else [failed]


def attempt(
    check: str,
    where: str,
    call: Callable[[], CheckResult],
    *,
    unreachable: str = "{}",
    absent: str = "{}",
    undecidable: str = "{}",
    spent: str = SPENT,
    evidence: Callable[[], tuple[Evidence, ...]] = tuple,
) -> CheckResult:
    """`call()`, or the result its exception stands for. The templates word the message for this check
    (`absent="{}; was it deployed?"`); `evidence` is what was gathered before the failure, attached to it."""
    try:
        return call()
    except TransportError as exc:
        return CheckResult(
            check, where, Verdict.ERROR, unreachable.format(unplaced(exc, where)), evidence(), exc.category
        )
    except BudgetExhausted as exc:
        return CheckResult(
            check, where, Verdict.ERROR, spent.format(unplaced(exc, where)), evidence(), Category.UNREACHABLE
        )
    except Absent as exc:
        return CheckResult(check, where, Verdict.FAIL, absent.format(unplaced(exc, where)), evidence(), exc.category)
    except Undecidable as exc:
        return CheckResult(
            check, where, Verdict.ERROR, undecidable.format(unplaced(exc, where)), evidence(), exc.category
        )


def unplaced(exc: BaseException, where: str) -> str:
    """The exception's words without the location the result already carries: a transport names what it asked
    (`ContainerApp:rg/x: ARM answered 500`), and the result's line puts `where` in front again. Only a leading
    `where` followed by ": " or " " is dropped (`ContainerApp:rg/x revision v7: ...` keeps `revision v7`)."""
    said = str(exc)
    if where and said.startswith(where):
        rest = said[len(where) :]
        if rest.startswith(": "):
            return rest[2:]
        if rest.startswith(" "):
            return rest[1:]
    return said
