"""The check library: plain Python, no pytest import.

Every check has one shape: it takes the clients it needs (built elsewhere, passed in), a target, an expectation and a
`Deadline`, and returns a `CheckResult` with a verdict, a one-line message and the evidence that backs it. See
`checks.registry` for the list of checks.
"""
