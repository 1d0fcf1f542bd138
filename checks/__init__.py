"""The check library: plain Python, no pytest import.

Every check has one shape: it takes the clients it needs (built elsewhere, passed in), a target, an expectation and a
`Deadline`, and returns a `CheckResult` with a verdict, a one-line message, the evidence that backs it and, when red,
its report category. Reads go through `checks.transports`; what could not be read becomes a result in
`checks.runner.attempt`. The families that bind these checks to Gherkin are declared in `steps/` (`suite.family`).
"""
