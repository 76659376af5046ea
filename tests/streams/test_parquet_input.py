"""Parquet input: events already in the Event schema, read like any other format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from detector.cli import main
from detector.scan import ScanOptions, read_vectors
from streams.batch import events_to_frame, scan_events
from streams.event import Event


def test_parquet_events_round_trip_and_bad_rows_are_rejected(tmp_path: Path) -> None:
    good = [
        Event(
            datetime(2010, 1, 4, 9, tzinfo=UTC), "edr", "logon", user="u1", host="h1", target="h1"
        ),
        Event(
            datetime(2010, 1, 4, 23, tzinfo=UTC),
            "edr",
            "usb_connect",
            user="u1",
            attrs={"device": "D1"},
        ),
    ]
    frame = events_to_frame(good)
    bad = frame.head(1).with_columns(pl.lit(None, pl.String()).alias("action"))
    naive = frame.with_columns(pl.col("ts").dt.replace_time_zone(None))
    pl.concat([naive, bad.with_columns(pl.col("ts").dt.replace_time_zone(None))]).write_parquet(
        tmp_path / "events.parquet"
    )
    scan = scan_events([tmp_path], "parquet")
    events = scan.events.collect()
    assert events.select("ts", "action", "user", "attrs").rows() == [
        (datetime(2010, 1, 4, 9, tzinfo=UTC), "logon", "u1", None),
        (datetime(2010, 1, 4, 23, tzinfo=UTC), "usb_connect", "u1", '{"device":"D1"}'),
    ]
    rejects = scan.rejects.collect()
    assert rejects.select("line", "reason").rows() == [(3, "missing_field")]
    assert json.loads(rejects["raw"][0])["user"] == "u1"


@pytest.mark.slow
def test_scan_reads_parquet_exports(small_org: Path, tmp_path: Path) -> None:
    cert = scan_events([small_org], "cert").events.collect()
    export = tmp_path / "export"
    export.mkdir()
    cert.write_parquet(export / "events.parquet")
    out = tmp_path / "out"
    assert (
        main(["scan", str(export), "--format", "parquet", "--out", str(out), "--no-progress"]) == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events"] == cert.height
    assert summary["alerts"] > 0


def test_a_range_of_rows_reads_those_rows_numbered_as_in_the_file(tmp_path: Path) -> None:
    events = [
        Event(datetime(2010, 1, 4, h, tzinfo=UTC), "edr", "logon", user=f"u{h}") for h in range(10)
    ]
    frame = events_to_frame(events).with_columns(
        # Rows 3 and 8 (1-based) lack their action.
        pl.when(pl.int_range(pl.len()).is_in([2, 7])).then(None).otherwise("action").alias("action")
    )
    path = tmp_path / "events.parquet"
    frame.write_parquet(path, row_group_size=3)
    whole = scan_events([path], "parquet")
    parts = [scan_events([path], "parquet", rows=rows) for rows in ((0, 4), (4, 4), (8, 2))]
    got = pl.concat([p.events.collect() for p in parts])
    assert got["user"].to_list() == [f"u{h}" for h in range(10) if h not in (2, 7)]
    assert got.equals(whole.events.collect())
    rejects = pl.concat([p.rejects.collect() for p in parts])
    assert rejects.select("line", "reason").rows() == [(3, "missing_field"), (8, "missing_field")]
    assert rejects.equals(whole.rejects.collect())
    with pytest.raises(ValueError, match="one Parquet file"):
        scan_events([tmp_path], "parquet", rows=(0, 4))


def test_scan_reads_parquet_in_ranges_of_rows(
    small_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = scan_events([small_org / "logon.csv"], "cert").events.collect()
    export = tmp_path / "events.parquet"
    cert.write_parquet(export, row_group_size=5_000)
    opts = ScanOptions(inputs=(("parquet", export),), out=tmp_path, progress=False)
    whole, n_whole, _, _ = read_vectors(opts, tmp_path / "a")
    monkeypatch.setattr("detector.scan.PARQUET_PIECE_ROWS", 2_000)
    ranged, n_ranged, _, _ = read_vectors(opts, tmp_path / "b")
    assert len(list((tmp_path / "b").glob("part-*.parquet"))) == -(-cert.height // 2_000) > 2
    assert n_ranged == n_whole == cert.height
    assert ranged.equals(whole)
