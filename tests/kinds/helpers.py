"""Shared helpers of the kind tests: timestamps relative to now, cause lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kapi.errors import Cause


def ago(**delta: float) -> str:
    """An RFC 3339 timestamp ``delta`` before now (e.g. ``ago(minutes=5)``)."""
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def messages(causes: list[Cause]) -> list[str]:
    """Causes as kube prints them: ``field: message``."""
    return [c.to_dict()["message"] for c in causes]
