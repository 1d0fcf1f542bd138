"""Read ahead: once the tests are collected, the lists they will read are known; fetch them all at once, one thread
and one connection per cluster, so an estate of many clusters costs about its slowest cluster, not their sum.

    plan = planned(session.items, env)         # cluster -> {(plural, namespace), ...}
    reading = Reading(kube, plan, deadline)    # under way while the tests run; each waits for its own cluster only
    ...
    reading.join()                             # at the end of the session
    prefetch(kube, plan, deadline)             # the same, returning once every list is read (a soak's look)

Each kind says what a family reads on a component (`Kind.reads`); the tests still read through the same readers, so
what was fetched is served from their caches and what was not (an error, a list no kind declared) is read when a test
asks, as before. A cluster's thread stops at its first failure: the tests then meet the error themselves, each with
its own message, and an unreachable cluster costs one timeout here, not one per list. Waits stay on watches: this is
the first look only.

Only in a process that runs every collected test (no xdist worker: a worker collects every test but runs its share,
and reading ahead for all of them would multiply the reads by the number of workers).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from deploy_verify.checks.deadline import BudgetExhausted, Deadline
from deploy_verify.checks.transports.kube import KubeUnavailable
from deploy_verify.clients import KubeClients
from deploy_verify.collection import family_of
from deploy_verify.config import Environment
from deploy_verify.family import CLUSTER_PREFIX, Family
from deploy_verify.kinds import kind_of

Plan = dict[str, set[tuple[str, str | None]]]
MAX_THREADS = 64  # clusters read at once (as bench/floor.py does); each thread holds one connection to its cluster


@dataclass
class Prefetched:
    clusters: int = 0
    lists: int = 0
    failed: int = 0  # clusters whose read-ahead stopped at an error (their tests read, and say, again)


def planned(items: Iterable[pytest.Item], env: Environment) -> Plan:
    """cluster -> the lists the selected tests will read there."""
    pairs = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target_name") if callspec else None
        family = family_of(item)
        if target and family is not None:
            pairs.append((str(target), family))
    return planned_for(pairs, env)


def planned_for(pairs: Iterable[tuple[str, Family]], env: Environment) -> Plan:
    """cluster -> the lists these (target, family) checks will read there (a soak's looks, a session's tests)."""
    plan: Plan = {}
    for target, family in pairs:
        if family.transport != "kubernetes" or target.startswith(CLUSTER_PREFIX):
            continue
        component = env.component(target)
        if component.cluster is None or component.unresolved is not None:
            continue
        reads = kind_of(component).reads(family.tag, component)
        if reads:
            plan.setdefault(component.cluster, set()).update(reads)
    return plan


class Reading:
    """A read-ahead under way: the tests start at once and each waits only for its own cluster's lists (a reader
    serves one list at a time and caches it, so a test that asks first reads it, and the read-ahead then finds it
    read). `join()` waits for the rest, at the end of the session."""

    def __init__(self, kube: KubeClients, plan: Plan, deadline: Deadline) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_THREADS, len(plan))), thread_name_prefix="prefetch")
        self.futures = [self.pool.submit(read_cluster, kube, c, plan[c], deadline) for c in sorted(plan)]
        self.clusters = len(plan)

    def join(self) -> Prefetched:
        try:
            return _tally(self.clusters, (f.result() for f in self.futures))
        finally:
            self.pool.shutdown(wait=True)


def read_cluster(
    kube: KubeClients, cluster: str, lists: set[tuple[str, str | None]], deadline: Deadline
) -> tuple[int, bool]:
    """One cluster's planned lists, in order, over its one reader; (lists read, whether all were)."""
    fetched = 0
    try:
        reader = kube.reader(cluster)
        for plural, namespace in sorted(lists, key=lambda r: (r[1] or "", r[0])):
            reader.listing(plural, namespace, deadline)
            fetched += 1
    except (KubeUnavailable, BudgetExhausted):
        return fetched, False
    return fetched, True


def _tally(clusters: int, outcomes: Iterable[tuple[int, bool]]) -> Prefetched:
    done = Prefetched(clusters=clusters)
    for fetched, ok in outcomes:
        done.lists += fetched
        done.failed += 0 if ok else 1
    return done


def prefetch(kube: KubeClients, plan: Plan, deadline: Deadline) -> Prefetched:
    """Every planned list read, one thread per cluster (at most MAX_THREADS at once); returns when all are."""
    if not plan:
        return Prefetched()
    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(plan)), thread_name_prefix="prefetch") as pool:
        return _tally(len(plan), pool.map(lambda c: read_cluster(kube, c, plan[c], deadline), sorted(plan)))
