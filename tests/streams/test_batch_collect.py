"""collect_judged: one pass over a clean piece, and exactly the line path's events and rejects."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from streams import Event, events_from_frame, read_lines
from streams.batch import REJECT_SCHEMA, LinePiece, collect_judged, line_pieces, scan_events
from streams.event import EVENT_COLUMNS
from streams.parsers import PARSERS

from .test_batch import BAD_CERT, key

_HEADER = b"id,date,user,pc,activity\n"
_CLEAN = (
    b"{A},01/02/2010 06:49:00,U1,PC-1,Logon\n"
    b"{B},01/02/2010 06:50:00,U2,PC-2,Logoff\n"
    b"{C},01/02/2010 06:51:00,U3,PC-3,Logon\n"
)
_LAST = b"{Z},01/02/2010 09:00:00,U9,PC-9,Logoff\n"
#: One malformed line of each kind; each goes between clean lines of a logon file.
_MALFORMED = {
    "too few fields": b"{X},01/02/2010 06:52:00,U1,PC-1\n",
    "too many fields": b"{X},01/02/2010 06:52:00,U1,PC-1,Logon,extra\n",
    "bad timestamp": b"{X},02/30/2010 06:52:00,U1,PC-1,Logon\n",
    "short timestamp": b"{X},1/2/2010 6:52:00,U1,PC-1,Logon\n",
    "empty user": b"{X},01/02/2010 06:52:00,,PC-1,Logon\n",
    "unknown activity": b"{X},01/02/2010 06:52:00,U1,PC-1,Reboot\n",
    "crlf": b"{X},01/02/2010 06:52:00,U1,PC-1,Logon\r\n",
    "blank": b"\n",
    "white space": b" \t\n",
    "repeated header": _HEADER,
}


def _line_path(path: Path) -> tuple[list[Event], set[tuple[str, int, str, str]]]:
    events, dead = read_lines(path, PARSERS[f"cert.{path.stem}"]())
    return sorted(events, key=key), {(d.file, d.line, d.reason, d.raw) for d in dead}


def _collected(path: Path, size: int, **options: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    """collect_judged over every piece, each checked against the piece's judged frame."""
    judged_frames: list[pl.DataFrame] = []
    reject_frames: list[pl.DataFrame] = []
    for piece in line_pieces(path, size):
        scan = scan_events([path], "cert", piece=piece, **options)  # type: ignore[arg-type]
        judged, rejects = collect_judged(scan, EVENT_COLUMNS)
        assert scan.judged is not None
        assert_frame_equal(judged, scan.judged.select(*EVENT_COLUMNS, "reason").collect())
        assert_frame_equal(rejects, scan.rejects.collect())
        judged_frames.append(judged)
        reject_frames.append(rejects)
    return pl.concat(judged_frames), pl.concat(reject_frames)


@pytest.mark.parametrize("size", [40, 1 << 20])
@pytest.mark.parametrize("name", list(_MALFORMED))
def test_each_malformed_line_gives_the_line_parser_s_events_and_dead_letters(
    tmp_path: Path, name: str, size: int
) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(_HEADER + _CLEAN + _MALFORMED[name] + _LAST)
    judged, rejects = _collected(path, size)
    events, dead = _line_path(path)
    valid = judged.filter(pl.col("reason").is_null()).select(EVENT_COLUMNS)
    assert sorted(events_from_frame(valid), key=key) == events
    assert set(rejects.iter_rows()) == dead
    assert rejects.schema == pl.Schema(REJECT_SCHEMA)
    # The four clean lines stay events, whatever happens to the malformed one.
    assert {e.attrs["id"] for e in events} >= {"{A}", "{B}", "{C}", "{Z}"}


def test_the_malformed_lines_are_rejected_with_their_line_reason_and_text(tmp_path: Path) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(_HEADER + b"".join(_MALFORMED.values()) + _LAST)
    judged, rejects = _collected(path, 1 << 20)
    assert rejects.select("line", "reason").rows() == [
        (2, "wrong_field_count"),
        (3, "wrong_field_count"),
        (4, "bad_timestamp"),
        (5, "bad_timestamp"),
        (6, "missing_field"),
        (7, "unknown_value"),
    ]
    assert rejects.row(5)[3] == "{X},01/02/2010 06:52:00,U1,PC-1,Reboot"
    # A CRLF line end is a line end (the line parser strips it too); blank lines and the
    # repeated header are neither events nor rejects.
    assert judged.filter(pl.col("reason").is_null())["user"].to_list() == ["U1", "U9"]
    assert set(rejects.iter_rows()) == _line_path(path)[1]


def test_every_cert_kind_with_malformed_lines_matches_the_judged_frame(tmp_path: Path) -> None:
    for name, text in BAD_CERT.items():
        path = tmp_path / name
        path.write_text(text)
        judged, rejects = _collected(path, 64, attrs_keys={"attachments", "url"})
        assert rejects.height > 0
        assert set(rejects.iter_rows()) == _line_path(path)[1]
        assert judged.height == judged["reason"].null_count() + rejects.height


def test_a_clean_piece_is_read_in_one_pass_without_the_judged_frame(tmp_path: Path) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(_HEADER + _CLEAN + _LAST)
    scan = scan_events([path], "cert", attrs_keys=())
    expected = scan.events.collect().with_columns(pl.lit(None, pl.String()).alias("reason"))
    scan.judged = None  # the one-pass path never reads it
    judged, rejects = collect_judged(scan, EVENT_COLUMNS)
    assert_frame_equal(judged, expected)
    assert judged["user"].to_list() == ["U1", "U2", "U3", "U9"]
    assert rejects.height == 0
    assert rejects.schema == pl.Schema(REJECT_SCHEMA)
    # A piece with a failing line needs the judged frame for its rejects' text.
    dirty = scan_events([path], "cert", piece=LinePiece(b"{A},01/02/2010,U1,PC-1,Logon\n", 2))
    dirty.judged = None
    with pytest.raises(ValueError, match="judged"):
        collect_judged(dirty, EVENT_COLUMNS)


def test_invalid_utf8_read_lossily_is_an_event_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(_HEADER + b"{A},01/02/2010 06:49:00,U\xff1,PC-1,Logon\n" + _LAST)
    judged, rejects = _collected(path, 1 << 20, lossy_utf8=True)
    assert judged["user"].to_list() == ["U\ufffd1", "U9"]
    assert rejects.height == 0
    assert [e.user for e in _line_path(path)[0]] == ["U\ufffd1", "U9"]


def test_a_pipe_is_cut_into_the_pieces_of_the_same_bytes_in_a_file(tmp_path: Path) -> None:
    data = _HEADER + _CLEAN + b"{X},no line end"
    regular = tmp_path / "logon.csv"
    regular.write_bytes(data)
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)

    def write() -> None:
        with open(pipe, "wb") as handle:
            handle.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    piped = list(line_pieces(pipe, 50))
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert piped == list(line_pieces(regular, 50))
    # A 25-byte header and 38-, 39- and 38-byte lines: pieces cut after lines 2 and 4.
    assert [(p.first_line, p.offset) for p in piped] == [(1, 0), (3, 63), (5, 140)]
    assert piped[-1].data == b"{X},no line end"


_HTTP_HEADER = b"id,date,user,pc,url,activity,content\n"
_HTTP_CLEAN = b"{A},01/02/2010 06:49:00,U1,PC-1,http://a.com/x,WWW Visit,some words\n"
#: Lines of a file whose content is last (read as CSV when clean): each beside clean lines.
_CONTENT_LAST_LINES = {
    "content with commas": b"{X},01/02/2010 06:52:00,U1,PC-1,http://b.com/,WWW Visit,a,b,,c\n",
    "empty content": b"{X},01/02/2010 06:52:00,U1,PC-1,http://b.com/,WWW Visit,\n",
    "no content": b"{X},01/02/2010 06:52:00,U1,PC-1,http://b.com/,WWW Visit\n",
    "too few fields": b"{X},01/02/2010 06:52:00,U1,PC-1\n",
    "empty url": b"{X},01/02/2010 06:52:00,U1,PC-1,,WWW Visit,words\n",
    "empty user": b"{X},01/02/2010 06:52:00,,PC-1,http://b.com/,WWW Visit,words\n",
    "crlf": b"{X},01/02/2010 06:52:00,U1,PC-1,http://b.com/,WWW Visit,words\r\n",
    "carriage return inside": b"{X},01/02/2010 06:52:00,U1,PC-1,http://b\r.com/,WWW Visit,w\n",
    "quotes": b'{X},01/02/2010 06:52:00,U1,PC-1,"http://b.com/"q,WWW Visit,"w,v\n',
    "blank": b"\n",
    "repeated header": _HTTP_HEADER,
    "unknown activity": b"{X},01/02/2010 06:52:00,U1,PC-1,http://b.com/,WWW Browse,words\n",
}


#: Those of the lines above that leave the piece clean, so it is read in one pass as CSV.
_READ_AS_CSV = {"content with commas", "crlf", "carriage return inside", "quotes"}


@pytest.mark.parametrize("first", [True, False], ids=["first line", "inside"])
@pytest.mark.parametrize("name", list(_CONTENT_LAST_LINES))
def test_a_content_last_file_read_as_csv_gives_the_line_reader_s_events(
    tmp_path: Path, name: str, first: bool
) -> None:
    path = tmp_path / "http.csv"
    odd = _CONTENT_LAST_LINES[name]
    body = odd + _HTTP_CLEAN * 2 if first else _HTTP_CLEAN + odd + _HTTP_CLEAN
    path.write_bytes(_HTTP_HEADER + body)
    pieces = [LinePiece(body, first_line=2, offset=len(_HTTP_HEADER)), *line_pieces(path, 1 << 20)]
    for piece, keys in itertools.product(pieces, [{"url"}, None]):
        scan = scan_events([path], "cert", piece=piece, attrs_keys=keys)
        assert scan.checked is not None and scan.judged is not None
        checked = scan.checked.collect()
        judged = scan.judged.collect()
        if checked["failed"].any():
            # Read again as lines: the rejects come from there.
            assert name not in _READ_AS_CSV
            continue
        # No line fails: every line is an event, with exactly the line reader's columns.
        assert judged["reason"].null_count() == judged.height
        assert_frame_equal(checked.drop("failed"), judged.select(checked.columns[:-1]))
    judged, rejects = _collected(path, 1 << 20)
    valid = judged.filter(pl.col("reason").is_null()).select(EVENT_COLUMNS)
    assert valid.height >= 2  # the clean lines
    if name == "carriage return inside":
        return  # the line parser ends a line there (the batch readers do not, as before)
    events, dead = _line_path(path)
    assert sorted(events_from_frame(valid), key=key) == events
    assert set(rejects.iter_rows()) == dead
