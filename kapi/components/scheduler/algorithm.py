"""One scheduling decision: filter every node, score the feasible ones, pick the best.

``find_node`` is pure over the cache (no I/O), so it is table-tested directly. When no node
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


def find_node(pod: PodInfo, cache: SchedulerCache, rng: random.Random | None = None) -> Decision:
    """Pick a node for ``pod`` from ``cache`` (no side effects)."""
    nodes = cache.ready_nodes()
    if not nodes:
        return Decision("", NO_NODES)
    cycle = Cycle.of(pod, podaffinity.prepare(pod, nodes, cache.anti_affine_pods()))
    feasible = []
    histogram: Counter[str] = Counter()
    for node in nodes:
        reasons = run_filters(cycle, node)
        if reasons:
            histogram.update(reasons)
        else:
            feasible.append(node)
    if not feasible:
        return Decision("", fit_error_message(len(nodes), histogram))
    if len(feasible) == 1:
        return Decision(feasible[0].name, feasible=1)
    best = select_host(feasible, score_nodes(cycle, feasible), rng or random.Random())
    return Decision(best.name, feasible=len(feasible))
