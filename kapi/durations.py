"""Go-style durations, as kube-apiserver's and kube-controller-manager's flags take them.

``parse_duration("1m30s") == 90.0``; units ns, us (or µs), ms, s, m, h, combined in any order
(``2h0m10s``); a bare number (or an int/float value) is seconds. Anything else is a ``ValueError``.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float) -> float:
    """Seconds of a Go duration or of a plain number. :raises ValueError: for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if not text or _PART.sub("", text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h30m, 500ms)")
    return sum(float(n) * _SECONDS[unit] for n, unit in _PART.findall(text))
