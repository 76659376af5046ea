"""The scan's slices may leave their vectors on disk until the last slice: the same vectors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import detector.scan as scan
from features.sliced import SlicedFeatures
from features.spec import FeatureSpec, WindowConfig

_SPECS = (
    FeatureSpec(name="logons", kind="count", where={"action": "logon"}),
    FeatureSpec(name="new_hosts", kind="first_seen", field="host", where={"action": "logon"}),
)
_COLUMNS = ["action", "host", "ts", "user"]
_DAY = datetime(2024, 1, 1, 9, tzinfo=UTC)


def _part(path: Path, rows: list[tuple[int, str, str]]) -> tuple[datetime, datetime]:
    """A spooled part of logons (day, user, host) at 09:00; its first and last event time."""
    times = [_DAY + timedelta(days=day) for day, _, _ in rows]
    pl.DataFrame(
        {
            "action": ["logon"] * len(rows),
            "host": [host for _, _, host in rows],
            "ts": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
            "user": [user for _, user, _ in rows],
            "reason": pl.Series([None] * len(rows), dtype=pl.String),
        }
    ).write_parquet(path)
    return min(times), max(times)


def test_spilled_slices_give_the_kept_vectors_and_leave_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Days 0-5 in one part, 6-8 in another; slices of 2 days: [0,1] [2,3] [4,5] [6,7] [8].
    first = tmp_path / "part-0000-00000.parquet"
    second = tmp_path / "part-0000-00001.parquet"
    ranges = {
        first: _part(first, [(0, "ann", "pc1"), (1, "ann", "pc2"), (5, "bob", "pc1")]),
        second: _part(second, [(6, "ann", "pc1"), (8, "ann", "pc3"), (8, "ann", "pc3")]),
    }
    config = WindowConfig(entity="user", window="1d")
    spill = tmp_path / "spill"
    spill.mkdir()
    waiting: list[list[str]] = []

    class Watched(SlicedFeatures):
        def evaluate(self, events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
            waiting.append(sorted(p.name for p in spill.iterdir()))
            return super().evaluate(events)

    monkeypatch.setattr(scan, "SlicedFeatures", Watched)
    kept = scan._evaluate_in_slices(_SPECS, config, [first, second], _COLUMNS, 2, ranges)
    waiting.clear()
    spilled = scan._evaluate_in_slices(
        _SPECS, config, [first, second], _COLUMNS, 2, ranges, spill=spill
    )

    assert_frame_equal(spilled, kept)
    # Each slice sees the vectors of the slices before it waiting on disk; the empty one
    # (days 2-3) is not evaluated and spills nothing.
    assert waiting == [
        [],
        ["vectors-00000.arrow"],
        ["vectors-00000.arrow", "vectors-00002.arrow"],
        ["vectors-00000.arrow", "vectors-00002.arrow", "vectors-00003.arrow"],
    ]
    assert list(spill.iterdir()) == []
    assert spilled.select("entity", "logons", "new_hosts").rows() == [
        ("ann", 1.0, 0.0),  # day 0: the first window counts nothing new
        ("ann", 1.0, 1.0),  # day 1: pc2
        ("ann", 1.0, 0.0),  # day 6: pc1 again
        ("ann", 2.0, 1.0),  # day 8: pc3, twice
        ("bob", 1.0, 0.0),  # day 5: bob's first window
    ]
    assert spilled["window_start"].dt.day().to_list() == [1, 2, 7, 9, 6]
