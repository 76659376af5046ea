"""An allow-list entry's ``expires`` is the last window day it mutes, whatever today is."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from detector.alerts import Alert
from detector.suppression import AllowEntry, Allowlist


def _alert(day: date) -> Alert:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return Alert.build(
        entity="adm-1",
        window_start=start,
        window_end=start + timedelta(days=1),
        detector="robust",
        score=9.0,
        threshold=5.0,
        severity="high",
        schema_hash="h",
        deviations=(),
    )


def test_a_retrospective_scan_honours_an_entry_valid_at_the_time() -> None:
    allow = Allowlist(
        (AllowEntry(entity="adm-*", reason="change window", expires=date(2010, 6, 30)),)
    )
    # Long expired today, but these windows fall on or before its last day: muted.
    kept, muted = allow.apply([_alert(date(2010, 1, 4)), _alert(date(2010, 6, 30))])
    assert (kept, muted) == ([], 2)
    later = _alert(date(2010, 7, 1))
    assert allow.apply([later]) == ([later], 0)
