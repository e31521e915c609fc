"""Inter-pod affinity and anti-affinity (the InterPodAffinity plugin), on topology domains.

A topology domain is a ``(topologyKey, node label value)`` pair. ``prepare`` runs once per
scheduling attempt (PreFilter) and counts, per domain, the existing pods that match each kind of
term; ``fits`` and ``preference`` then look a node's domains up in those counts:

* required affinity: every term has a matching pod in the node's domain for that term's key -
  unless no pod in the cluster matches and the incoming pod matches its own terms (the first
  replica of a self-affine group may go anywhere);
* required anti-affinity: no term has a matching pod in the node's domain;
* existing pods' required anti-affinity (symmetry): the node is in no domain of an existing
  pod whose anti-affinity term matches the incoming pod;
* preferred terms: the summed weights of matching pods in the node's domains (anti-affinity
  subtracts), as the score.

Term namespaces: ``namespaces``, else the pod's own namespace; an empty ``namespaceSelector``
(``{}``) means every namespace. A non-empty ``namespaceSelector`` is not evaluated (the
scheduler does not watch namespaces): only the listed ``namespaces`` count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kapi.components.scheduler.resources import NodeInfo, PodInfo
from kapi.selectors import LabelSelector, from_label_selector_dict

Domain = tuple[str, str]

AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"


@dataclass(frozen=True)
class Term:
    """A parsed ``PodAffinityTerm`` (with its weight when it is a preferred term)."""

    selector: LabelSelector
    namespaces: frozenset[str] | None  # None: every namespace
    topology_key: str
    weight: int = 0

    def matches(self, pod: PodInfo) -> bool:
        if self.namespaces is not None and pod.namespace not in self.namespaces:
            return False
        return self.selector.matches(pod.labels)


def _term(raw: Mapping[str, Any], own_namespace: str, weight: int = 0) -> Term | None:
    try:
        selector = from_label_selector_dict(raw.get("labelSelector"))
    except ValueError:
        return None
    namespaces: frozenset[str] | None = frozenset(raw.get("namespaces") or ())
    if not namespaces:
        namespaces = None if raw.get("namespaceSelector") == {} else frozenset({own_namespace})
    return Term(selector, namespaces, str(raw.get("topologyKey") or ""), weight)


def terms(pod: Mapping[str, Any], kind: str, *, required: bool) -> list[Term]:
    """The pod's ``kind`` (``podAffinity`` / ``podAntiAffinity``) terms, required or preferred."""
    section = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    out: list[Term] = []
    if required:
        for raw in section.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
            term = _term(raw, namespace)
            if term is not None:
                out.append(term)
        return out
    for weighted in section.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        term = _term(weighted.get("podAffinityTerm") or {}, namespace, int(weighted.get("weight") or 0))
        if term is not None:
            out.append(term)
    return out


def has_required_anti_affinity(pod: Mapping[str, Any]) -> bool:
    """Whether the pod constrains later pods (so the scheduler must remember it)."""
    anti = ((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}
    return bool(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))


@dataclass
class AffinityState:
    """PreFilter results for one pod (see the module docstring)."""

    affinity: list[Term] = field(default_factory=list)
    anti_affinity: list[Term] = field(default_factory=list)
    affinity_counts: dict[Domain, int] = field(default_factory=dict)
    anti_counts: dict[Domain, int] = field(default_factory=dict)
    existing_anti_counts: dict[Domain, int] = field(default_factory=dict)
    preferred: dict[Domain, int] = field(default_factory=dict)
    self_affine: bool = False

    @property
    def empty(self) -> bool:
        return not (self.affinity or self.anti_affinity or self.existing_anti_counts or self.preferred)


def _domain(node: NodeInfo, key: str) -> Domain | None:
    value = node.labels.get(key)
    return None if value is None else (key, value)


def _bump(counts: dict[Domain, int], domain: Domain | None, by: int = 1) -> None:
    if domain is not None:
        counts[domain] = counts.get(domain, 0) + by


def prepare(pod: PodInfo, nodes: Iterable[NodeInfo], anti_affine_pods: Iterable[tuple[PodInfo, NodeInfo]]) \
        -> AffinityState | None:
    """Count matching pods per domain for ``pod``; None when no affinity rule is involved."""
    state = AffinityState(affinity=terms(pod.pod, "podAffinity", required=True),
                          anti_affinity=terms(pod.pod, "podAntiAffinity", required=True))
    preferred = [(t, 1) for t in terms(pod.pod, "podAffinity", required=False)]
    preferred += [(t, -1) for t in terms(pod.pod, "podAntiAffinity", required=False)]
    for existing, node in anti_affine_pods:
        for term in terms(existing.pod, "podAntiAffinity", required=True):
            if term.matches(pod):
                _bump(state.existing_anti_counts, _domain(node, term.topology_key))
    if state.affinity or state.anti_affinity or preferred:
        for node in nodes:
            for other in node.pods.values():
                for term in state.affinity:
                    if term.matches(other):
                        _bump(state.affinity_counts, _domain(node, term.topology_key))
                for term in state.anti_affinity:
                    if term.matches(other):
                        _bump(state.anti_counts, _domain(node, term.topology_key))
                for term, sign in preferred:
                    if term.matches(other):
                        _bump(state.preferred, _domain(node, term.topology_key), sign * term.weight)
    state.self_affine = all(t.matches(pod) for t in state.affinity)
    return None if state.empty else state


def fits(state: AffinityState, node: NodeInfo) -> str:
    """The failure reason for ``node``, or ``""`` when the node satisfies every required rule."""
    for key, value in state.existing_anti_counts:
        if node.labels.get(key) == value:
            return EXISTING_ANTI_AFFINITY_REASON
    for term in state.anti_affinity:
        domain = _domain(node, term.topology_key)
        if domain is not None and state.anti_counts.get(domain, 0) > 0:
            return ANTI_AFFINITY_REASON
    if state.affinity:
        if not state.affinity_counts and state.self_affine:
            return ""
        for term in state.affinity:
            wanted = _domain(node, term.topology_key)
            if wanted is None or state.affinity_counts.get(wanted, 0) <= 0:
                return AFFINITY_REASON
    return ""


def preference(state: AffinityState, node: NodeInfo) -> int:
    """The raw preferred-affinity score of ``node`` (may be negative)."""
    return sum(weight for (key, value), weight in state.preferred.items() if node.labels.get(key) == value)
