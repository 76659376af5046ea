"""Spooled parts carry no column statistics: a slice reads the rows of the blocks (of
``SPOOL_ROW_GROUP`` rows) whose event times, kept in each part's verdict, reach into it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import detector.scan as scan
from features.spec import FeatureSpec, WindowConfig
from streams.batch import collect_judged, scan_events

_SPECS = (
    FeatureSpec(name="logons", kind="count", where={"action": "logon"}),
    FeatureSpec(name="new_hosts", kind="first_seen", field="host", where={"action": "logon"}),
)
_COLUMNS = ["action", "host", "ts", "user"]
_START = datetime(2024, 1, 1, 9, tzinfo=UTC)
_CONFIG = WindowConfig(entity="user", window="1d")


def _day(day: int) -> datetime:
    return _START + timedelta(days=day)


def test_block_times_are_each_blocks_first_and_last_event_rejected_lines_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scan, "SPOOL_ROW_GROUP", 2)
    judged = pl.DataFrame(
        {
            "ts": pl.Series(
                [_day(3), _day(1), _day(9), _day(2), _day(4)], dtype=pl.Datetime("us", "UTC")
            ),
            # Block 1 holds only a rejected line (whose time is not an event's).
            "reason": [None, None, "bad_timestamp", "missing_field", None],
        }
    )
    assert scan._block_times(judged, events=3) == ((_day(1), _day(3)), None, (_day(4), _day(4)))
    # All events: every time counts, no filter.
    assert scan._block_times(judged, events=judged.height) == (
        (_day(1), _day(3)),
        (_day(2), _day(9)),
        (_day(4), _day(4)),
    )


def _spool(tmp_path: Path, name: str, days: list[tuple[int, str, str]]) -> scan._PartVerdict:
    """A part of logons (day, user, host) at 09:00 written by the scan's own spooler."""
    lines = ["id,date,user,pc,activity"] + [
        f"{{X{i}}},{_day(day):%m/%d/%Y %H:%M:%S},{user},{host},Logon"
        for i, (day, user, host) in enumerate(days)
    ]
    source = tmp_path / name / "logon.csv"
    source.parent.mkdir()
    source.write_text("\n".join(lines) + "\n")
    return scan._spool_piece(scan_events([source], "cert"), _COLUMNS, tmp_path / f"{name}.parquet")


def test_slices_read_by_block_give_the_vectors_of_a_read_of_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "SPOOL_ROW_GROUP", 2)
    rows = [(0, "ann", "pc1"), (0, "bob", "pc1"), (1, "ann", "pc2"), (3, "ann", "pc1")]
    rows += [(4, "bob", "pc3"), (4, "ann", "pc2"), (6, "ann", "pc4")]
    verdicts = {
        tmp_path / "a.parquet": _spool(tmp_path, "a", rows),
        tmp_path / "b.parquet": _spool(tmp_path, "b", [(5, "cyd", "pc9"), (6, "bob", "pc1")]),
    }
    parts = list(verdicts)
    assert [pq.ParquetFile(p).metadata.num_row_groups for p in parts] == [4, 1]
    assert pq.ParquetFile(parts[0]).metadata.row_group(0).column(0).statistics is None
    assert verdicts[parts[0]].blocks == (
        (_day(0), _day(0)),
        (_day(1), _day(3)),
        (_day(4), _day(4)),
        (_day(6), _day(6)),
    )
    ranges = {part: (v.first, v.last) for part, v in verdicts.items()}
    blocks = {part: v.blocks for part, v in verdicts.items()}
    # No line was rejected: the reason, null in every row, is left out of the parts.
    assert "reason" not in pq.ParquetFile(parts[0]).schema_arrow.names
    schema = verdicts[parts[0]].schema
    assert schema["reason"] == pl.String

    every_row = scan._evaluate_in_slices(_SPECS, _CONFIG, parts, _COLUMNS, 2, ranges, schema=schema)
    by_block = scan._evaluate_in_slices(
        _SPECS, _CONFIG, parts, _COLUMNS, 2, ranges, blocks=blocks, schema=schema
    )

    assert_frame_equal(by_block, every_row)
    assert by_block.select("entity", "logons", "new_hosts").rows() == [
        ("ann", 1.0, 0.0),  # day 0
        ("ann", 1.0, 1.0),  # day 1: pc2
        ("ann", 1.0, 0.0),  # day 3: pc1 again
        ("ann", 1.0, 0.0),  # day 4: pc2 again
        ("ann", 1.0, 1.0),  # day 6: pc4
        ("bob", 1.0, 0.0),  # day 0
        ("bob", 1.0, 1.0),  # day 4: pc3
        ("bob", 1.0, 0.0),  # day 6: pc1 again
        ("cyd", 1.0, 0.0),  # day 5
    ]


def test_a_slice_reads_only_the_blocks_whose_times_reach_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "SPOOL_ROW_GROUP", 2)
    rows = [(0, "ann", "pc1"), (0, "ann", "pc2"), (1, "ann", "pc3"), (1, "ann", "pc4")]
    verdict = _spool(tmp_path, "a", rows)
    part = tmp_path / "a.parquet"
    ranges = {part: (verdict.first, verdict.last)}
    # The second block's times moved out of the slices: its two events are never read.
    blocks = {part: (verdict.blocks[0], (_day(30), _day(30)))}

    vectors = scan._evaluate_in_slices(
        _SPECS, _CONFIG, [part], _COLUMNS, 7, ranges, blocks=blocks, schema=verdict.schema
    )

    assert vectors.select("entity", "n_events", "logons").rows() == [("ann", 2, 2.0)]


def test_attrs_are_spooled_a_column_per_field_and_read_back_as_the_struct(
    tmp_path: Path,
) -> None:
    header = "id,date,user,pc,to,cc,bcc,from,activity,size,attachments,content"
    lines = [
        header,
        "{E1},01/04/2010 05:05:26,ANN0001,PC-1,b@x.com,,,a@x.com,Send,100,a.doc(10);b.pdf(20),hi",
        "{E2},01/04/2010 06:05:26,BOB0002,PC-2,a@x.com,,,b@x.com,Send,200,,news",
    ]
    source = tmp_path / "mail" / "email.csv"
    source.parent.mkdir()
    source.write_text("\n".join(lines) + "\n")
    columns = ["action", "attrs", "ts", "user"]
    keys = ["attachments", "url"]
    judged, _ = collect_judged(scan_events([source], "cert", attrs_keys=keys), columns)
    part = tmp_path / "mail.parquet"

    verdict = scan._spool_piece(scan_events([source], "cert", attrs_keys=keys), columns, part)

    # Flat columns, the url (null in every row) left out of the part like any null column.
    names = pq.ParquetFile(part).schema_arrow.names
    assert "attrs" not in names and "attrs.url" not in names
    assert "attrs.attachments" in names
    back = scan._scan_parts(part, verdict.schema).collect()
    assert_frame_equal(back.select(*columns, "reason"), judged)
    assert back.get_column("attrs").struct.field("attachments").to_list() == ["2", "0"]
    # Without the schema, the struct holds the fields the part has.
    alone = scan._scan_parts(part, None).collect().get_column("attrs")
    assert alone.struct.fields == ["attachments"]
