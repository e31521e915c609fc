"""printing: HumanDuration, ages and small formatters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kapi.kinds.printing import container_cells, format_labels, human_age, human_duration

from .helpers import ago


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1.5, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
    (599, "9m59s"), (600, "10m"), (179 * 60 + 59, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"),
    (8 * 3600, "8h"), (47 * 3600 + 3599, "47h"), (48 * 3600, "2d"), (50 * 3600, "2d2h"), (8 * 86400, "8d"),
    (729 * 86400, "729d"), (730 * 86400, "2y"), (731 * 86400, "2y1d"), (8 * 365 * 86400, "8y"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_human_age() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert human_age("2024-01-01T11:55:00Z", now) == "5m"
    assert human_age("2024-01-01T11:59:59.500000Z", now) == "0s"
    assert human_age(None, now) == "<unknown>"
    assert human_age("garbage", now) == "<unknown>"
    assert human_age((now - timedelta(hours=30)).isoformat(), now) == "30h"
    assert human_age(ago(minutes=3, seconds=20), datetime.now(UTC)) in ("3m20s", "3m21s")


def test_formatters() -> None:
    assert format_labels({}) == "<none>"
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert container_cells([{"name": "a", "image": "x"}, {"name": "b", "image": "y:1"}]) == ("a,b", "x,y:1")
    assert container_cells(None) == ("", "")
