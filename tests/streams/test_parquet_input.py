"""Parquet input: events already in the Event schema, read like any other format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from detector.cli import main
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
