"""Kubernetes ``metav1.Time`` strings: seconds precision, UTC, ``Z`` (``2026-11-28T19:40:00Z``).

The one place that formats them, for the API server, its plugins and the components alike.
"""

from __future__ import annotations

import datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(moment: datetime.datetime) -> str:
    """``moment`` (timezone-aware) as a ``metav1.Time``."""
    return moment.astimezone(datetime.UTC).strftime(FORMAT)


def now_rfc3339() -> str:
    """The current time as a ``metav1.Time``."""
    return datetime.datetime.now(datetime.UTC).strftime(FORMAT)
