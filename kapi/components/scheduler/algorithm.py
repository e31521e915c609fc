"""One scheduling decision: filter every node, score the feasible ones, pick the best.

``find_node`` reads the cache and does no I/O, so it is table-tested directly. When no node
fits, the message is kube-scheduler's FitError text: ``0/N nodes are available: `` followed by
``COUNT REASON`` pairs sorted as strings and a final period; with no nodes at all it is
``no nodes available to schedule pods``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from kapi.components.scheduler import podaffinity
from kapi.components.scheduler.cache import SchedulerCache
from kapi.components.scheduler.filters import Cycle, run_filters
from kapi.components.scheduler.resources import PodInfo
from kapi.components.scheduler.scoring import score_nodes, select_host

NO_NODES = "no nodes available to schedule pods"


@dataclass(frozen=True)
class Decision:
    """The outcome for one pod: ``node`` (empty when unschedulable) or the reason ``message``."""

    node: str
    message: str = ""
    feasible: int = 0


def fit_error_message(total: int, histogram: Mapping[str, int]) -> str:
    """kube-scheduler's ``FitError.Error()`` text."""
    if total == 0:
        return NO_NODES
    reasons = sorted(f"{count} {reason}" for reason, count in histogram.items())
    return f"0/{total} nodes are available: {', '.join(reasons)}."


MIN_FEASIBLE_NODES = 100


def nodes_to_find(total: int) -> int:
    """How many feasible nodes are enough (kube-scheduler's adaptive percentageOfNodesToScore:
    every node up to 100, then 50% falling to 5% as the cluster grows)."""
    if total < MIN_FEASIBLE_NODES:
        return total
    percentage = max(5, 50 - total // 125)
    return max(MIN_FEASIBLE_NODES, total * percentage // 100)


def find_node(pod: PodInfo, cache: SchedulerCache, rng: random.Random | None = None) -> Decision:
    """Pick a node for ``pod`` from ``cache``. Filtering starts where the previous attempt stopped
    (``cache.next_start``, so large clusters are covered evenly) and stops once
    ``nodes_to_find`` nodes fit; that index is the only state it changes."""
    nodes = cache.ready_nodes()
    if not nodes:
        return Decision("", NO_NODES)
    cycle = Cycle.of(pod, podaffinity.prepare(pod, nodes, cache.anti_affine_pods()))
    wanted = nodes_to_find(len(nodes))
    start = cache.next_start % len(nodes)
    feasible = []
    histogram: Counter[str] = Counter()
    processed = 0
    for offset in range(len(nodes)):
        node = nodes[(start + offset) % len(nodes)]
        processed += 1
        reasons = run_filters(cycle, node)
        if reasons:
            histogram.update(reasons)
        else:
            feasible.append(node)
            if len(feasible) >= wanted:
                break
    cache.next_start = start + processed
    if not feasible:
        return Decision("", fit_error_message(len(nodes), histogram))
    if len(feasible) == 1:
        return Decision(feasible[0].name, feasible=1)
    best = select_host(feasible, score_nodes(cycle, feasible), rng or random.Random())
    return Decision(best.name, feasible=len(feasible))
