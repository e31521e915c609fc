"""Score plugins: rank the feasible nodes (each plugin 0-100, then weighted and summed).

| plugin | weight | raw score | normalised |
| --- | --- | --- | --- |
| NodeResourcesFit (LeastAllocated) | 1 | mean over cpu, memory of free share after placing the pod | as is |
| NodeResourcesBalancedAllocation | 1 | 100 x (1 - std dev of the cpu and memory shares) | as is |
| NodeAffinity | 2 | summed weights of matching preferred terms | x 100 / max |
| TaintToleration | 3 | PreferNoSchedule taints not tolerated | 100 - x 100 / max |
| InterPodAffinity | 2 | preferred (anti-)affinity weights in the node's domains | min-max to 0-100 |

Requests are the non-zero ones (``resources.non_zero_requests``), as kube-scheduler scores.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from kapi.components.scheduler import podaffinity
from kapi.components.scheduler.filters import Cycle
from kapi.components.scheduler.matching import node_selector_term_matches, tolerates
from kapi.components.scheduler.resources import CPU, MEMORY, NodeInfo

MAX_SCORE = 100
Scorer = Callable[[Cycle, NodeInfo], float]
Normaliser = Callable[[list[float]], list[float]]


def _shares(cycle: Cycle, node: NodeInfo) -> tuple[float, float]:
    """Requested / allocatable for cpu and memory with the pod placed (1.0 when over or unknown);
    computed once per node and attempt (two scorers use it)."""
    cached = cycle.shares.get(node.name)
    if cached is not None:
        return cached
    out = []
    for index, name in ((0, CPU), (1, MEMORY)):
        allocatable = node.allocatable.get(name, 0)
        requested = node.non_zero[index] + cycle.pod.non_zero[index]
        out.append(1.0 if allocatable <= 0 else min(1.0, requested / allocatable))
    shares = cycle.shares[node.name] = (out[0], out[1])
    return shares


def least_allocated(cycle: Cycle, node: NodeInfo) -> float:
    """Prefer the emptier node."""
    cpu, memory = _shares(cycle, node)
    return ((1.0 - cpu) + (1.0 - memory)) * MAX_SCORE / 2


def balanced_allocation(cycle: Cycle, node: NodeInfo) -> float:
    """Prefer the node whose cpu and memory use stay closest to each other."""
    cpu, memory = _shares(cycle, node)
    return (1.0 - abs(cpu - memory) / 2) * MAX_SCORE


def preferred_node_affinity(cycle: Cycle, node: NodeInfo) -> float:
    """Summed weights of the preferred node affinity terms the node matches."""
    return float(sum(int(term.get("weight") or 0) for term in cycle.preferred_affinity
                     if node_selector_term_matches(term.get("preference") or {}, node.labels, node.name)))


def intolerable_prefer_no_schedule(cycle: Cycle, node: NodeInfo) -> float:
    """How many PreferNoSchedule taints the pod does not tolerate."""
    taints = ((node.node or {}).get("spec") or {}).get("taints") or []
    prefer = [t for t in cycle.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
    return float(sum(1 for taint in taints if taint.get("effect") == "PreferNoSchedule"
                     and not any(tolerates(t, taint) for t in prefer)))


def preferred_pod_affinity(cycle: Cycle, node: NodeInfo) -> float:
    """Preferred (anti-)affinity weights of the pods in the node's topology domains."""
    return 0.0 if cycle.affinity is None else float(podaffinity.preference(cycle.affinity, node))


def as_is(scores: list[float]) -> list[float]:
    return scores


def by_max(scores: list[float]) -> list[float]:
    top = max(scores, default=0.0)
    return [s * MAX_SCORE / top for s in scores] if top > 0 else [0.0] * len(scores)


def reverse_by_max(scores: list[float]) -> list[float]:
    top = max(scores, default=0.0)
    return [MAX_SCORE - s * MAX_SCORE / top for s in scores] if top > 0 else [float(MAX_SCORE)] * len(scores)


def min_max(scores: list[float]) -> list[float]:
    low, high = min(scores, default=0.0), max(scores, default=0.0)
    return [(s - low) * MAX_SCORE / (high - low) for s in scores] if high > low else [0.0] * len(scores)


def _always(cycle: Cycle, nodes: Sequence[NodeInfo]) -> bool:
    return True


def _has_preferred_node_affinity(cycle: Cycle, nodes: Sequence[NodeInfo]) -> bool:
    return bool(cycle.preferred_affinity)


def _has_prefer_no_schedule_taints(cycle: Cycle, nodes: Sequence[NodeInfo]) -> bool:
    return any(t.get("effect") == "PreferNoSchedule" for n in nodes for t in ((n.node or {}).get("spec") or {}).get(
        "taints") or ())


def _has_pod_affinity(cycle: Cycle, nodes: Sequence[NodeInfo]) -> bool:
    return cycle.affinity is not None and bool(cycle.affinity.preferred)


Applies = Callable[[Cycle, Sequence[NodeInfo]], bool]

#: (plugin, weight, raw scorer, normaliser, whether it can tell nodes apart for this attempt)
SCORERS: tuple[tuple[str, int, Scorer, Normaliser, Applies], ...] = (
    ("NodeResourcesFit", 1, least_allocated, as_is, _always),
    ("NodeResourcesBalancedAllocation", 1, balanced_allocation, as_is, _always),
    ("NodeAffinity", 2, preferred_node_affinity, by_max, _has_preferred_node_affinity),
    ("TaintToleration", 3, intolerable_prefer_no_schedule, reverse_by_max, _has_prefer_no_schedule_taints),
    ("InterPodAffinity", 2, preferred_pod_affinity, min_max, _has_pod_affinity),
)


def score_nodes(cycle: Cycle, nodes: Sequence[NodeInfo]) -> list[float]:
    """The weighted total score of each node, in order. A plugin that would give every node the
    same score this time is skipped (it cannot change the ranking)."""
    totals = [0.0] * len(nodes)
    for _name, weight, scorer, normalise, applies in SCORERS:
        if not applies(cycle, nodes):
            continue
        for index, value in enumerate(normalise([scorer(cycle, node) for node in nodes])):
            totals[index] += weight * value
    return totals


def select_host(nodes: Sequence[NodeInfo], scores: Sequence[float], rng: random.Random) -> NodeInfo:
    """The highest-scoring node; ties broken at random (reservoir sampling, as kube-scheduler)."""
    best = nodes[0]
    best_score = scores[0]
    ties = 1
    for node, score in zip(nodes[1:], scores[1:], strict=True):
        if score > best_score:
            best, best_score, ties = node, score, 1
        elif score == best_score:
            ties += 1
            if rng.randrange(ties) == 0:
                best = node
    return best
