"""Minimal Prometheus metric types and the text exposition format (version 0.0.4).

Why not prometheus-client: it takes a lock on every increment and observation (~1-2.5 us each,
measured) and its process-wide defaults (``_created`` series, the global registry) do not fit
several apps in one process. An App serves requests on one event loop, so these lock-free types
(a dict per metric, label values as tuple keys) suffice, and each app owns its own ``Registry``.

Label values are given positionally in the order of the metric's ``labels``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

Labels = tuple[str, ...]
M = TypeVar("M", bound="Metric")


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_value(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Metric:
    """Base: a name, help text, label names and a type."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)

    def header(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}"
        yield f"# TYPE {self.name} {self.kind}"

    def samples(self) -> Iterator[str]:
        raise NotImplementedError

    def render(self) -> Iterator[str]:
        yield from self.header()
        yield from self.samples()


class Counter(Metric):
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def samples(self) -> Iterator[str]:
        for key, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Gauge(Counter):
    """A value that goes up and down per label set."""

    kind = "gauge"

    def dec(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) - amount

    def set(self, labels: Labels, value: float) -> None:
        self.values[labels] = value


class Histogram(Metric):
    """Observations counted in cumulative buckets, with their sum and count, per label set."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (), *,
                 buckets: Sequence[float]) -> None:
        super().__init__(name, help_text, labels)
        self.bounds = tuple(sorted(buckets))
        #: label values -> [count per bucket (+Inf last)..., sum]
        self.values: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        row = self.values.get(labels)
        if row is None:
            row = self.values[labels] = [0.0] * (len(self.bounds) + 2)
        row[bisect.bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def samples(self) -> Iterator[str]:
        for key, row in sorted(self.values.items()):
            cumulative = 0.0
            for bound, count in zip((*self.bounds, math.inf), row[:-1], strict=True):
                cumulative += count
                le = 'le="' + _number(bound) + '"'
                yield f"{self.name}_bucket{_labels(self.label_names, key, le)} {_number(cumulative)}"
            yield f"{self.name}_sum{_labels(self.label_names, key)} {_number(row[-1])}"
            yield f"{self.name}_count{_labels(self.label_names, key)} {_number(cumulative)}"


class Collected(Gauge):
    """A gauge whose values are computed when scraped (``collect`` returns label values -> value)."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str],
                 collect: Callable[[], Iterable[tuple[Labels, float]]]) -> None:
        super().__init__(name, help_text, labels)
        self.collect = collect

    def samples(self) -> Iterator[str]:
        self.values = dict(self.collect())
        yield from super().samples()


class Registry:
    """The metrics of one app, rendered in registration order."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def add(self, metric: M) -> M:
        if any(m.name == metric.name for m in self.metrics):
            raise ValueError(f"metric {metric.name} is already registered")
        self.metrics.append(metric)
        return metric

    def render(self) -> bytes:
        """The text exposition format, ``text/plain; version=0.0.4``."""
        lines = [line for metric in self.metrics for line in metric.render()]
        return ("\n".join(lines) + "\n").encode()


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
