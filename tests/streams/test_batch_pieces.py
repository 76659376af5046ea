"""Reading a CERT or LANL file one piece at a time gives what reading it whole gives."""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from streams.batch import LinePiece, line_pieces, scan_events

_LOGON = (
    "id,date,user,pc,activity\n"
    "{A},01/02/2010 06:49:00,NGF0157,PC-6056,Logon\n"
    "{B},01/02/2010 06:50:00,NGF0157,PC-6056,Reboot\n"
    "\n"
    "{C},01/02/2010 07:00:00,ABC0001,PC-0001,Logoff\r\n"
    "id,date,user,pc,activity\n"
    "{D},13/45/2010 07:00:00,ABC0001,PC-0001,Logon\n"
    "{E},01/03/2010 08:00:00,ABC0001,PC-0002,Logon"
)


def _pieced(path: Path, fmt: str, size: int, **options: object) -> tuple[pl.DataFrame, ...]:
    scans = [
        scan_events([path], fmt, piece=piece, **options)  # type: ignore[arg-type]
        for piece in line_pieces(path, size)
    ]
    return (
        pl.concat([s.events.collect() for s in scans]),
        pl.concat([s.rejects.collect() for s in scans]),
    )


def test_line_pieces_cover_every_byte_once_and_number_lines(tmp_path: Path) -> None:
    path = tmp_path / "logon.csv"
    path.write_text(_LOGON)
    for size in (1, 7, 60, 10_000):
        pieces = list(line_pieces(path, size))
        assert b"".join(p.data for p in pieces) == path.read_bytes()
        assert all(p.data.endswith(b"\n") for p in pieces[:-1])
        assert pieces[0].first_line == 1
        for before, after in itertools.pairwise(pieces):
            assert after.first_line == before.first_line + before.data.count(b"\n")
    # One line per piece when the size is smaller than any line.
    assert [p.first_line for p in line_pieces(path, 1)] == list(range(1, 9))
    assert list(line_pieces(tmp_path / "logon.csv", 10_000)) == [LinePiece(path.read_bytes(), 1)]


def test_a_piece_ends_at_the_line_end_its_last_byte_is_in_however_far(tmp_path: Path) -> None:
    # Lines of 3, 40 000 and 2 bytes, then one without a line end: the long line outruns
    # the reads that look for a piece's end (16 KiB each), so they continue past it.
    data = b"ab\n" + b"x" * 39_999 + b"\n" + b"c\n" + b"tail"
    path = tmp_path / "logon.csv"
    path.write_bytes(data)
    pieces = line_pieces(path, 4)
    assert [(p.first_line, p.offset, len(p.data)) for p in pieces] == [
        (1, 0, 40_003),  # byte 4 is in the long line: the piece runs to its line end
        (3, 40_003, 6),  # "c\n" and the last 4 bytes, which no line end follows
    ]
    # A piece whose size-th byte is itself a line end stops there.
    assert [p.data for p in line_pieces(path, 3)][:2] == [b"ab\n", b"x" * 39_999 + b"\n"]


def test_line_ends_are_counted_across_the_counting_slices(tmp_path: Path) -> None:
    # 3 MiB + 5 bytes with a line end every 1000 bytes and one at each slice boundary.
    data = bytearray(b"x" * (3 * (1 << 20) + 5))
    data[999::1000] = b"\n" * len(data[999::1000])
    for boundary in (1 << 20, 2 << 20, 3 << 20):
        data[boundary - 1] = data[boundary] = ord("\n")
    path = tmp_path / "http.csv"
    path.write_bytes(bytes(data))
    pieces = list(line_pieces(path, 1 << 20))
    assert sum(p.data.count(b"\n") for p in pieces) == bytes(data).count(b"\n")
    for before, after in itertools.pairwise(pieces):
        assert after.first_line == before.first_line + before.data.count(b"\n")
    assert pieces[-1].first_line == 1 + bytes(data[: pieces[-1].offset]).count(b"\n")


@pytest.mark.parametrize("size", [1, 50, 120])
def test_cert_pieces_give_the_events_and_rejects_of_the_whole_file(
    tmp_path: Path, size: int
) -> None:
    path = tmp_path / "logon.csv"
    path.write_text(_LOGON)
    whole = scan_events([path], "cert")
    events, rejects = _pieced(path, "cert", size)
    assert_frame_equal(events, whole.events.collect())
    assert_frame_equal(rejects, whole.rejects.collect())
    # The header is skipped only as line 1 or as a repeated header; blank lines are no rejects.
    assert events["user"].to_list() == ["NGF0157", "ABC0001", "ABC0001"]
    assert rejects.select("line", "reason").rows() == [(3, "unknown_value"), (7, "bad_timestamp")]


def test_lanl_pieces_give_the_events_and_rejects_of_the_whole_file(
    fixtures: Path, tmp_path: Path
) -> None:
    path = tmp_path / "auth.txt"
    lines = (fixtures / "lanl" / "auth.txt").read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + "oops,1,2\n" + "".join(lines[3:]))
    whole = scan_events([path], "lanl")
    events, rejects = _pieced(path, "lanl", 40)
    assert events.height > 3
    assert_frame_equal(events, whole.events.collect())
    assert rejects.select("line", "reason").rows() == [(4, "wrong_field_count")]


def test_lossy_pieces_number_lines_like_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(_LOGON.encode().replace(b"Reboot", b"Reb\xffoot"))
    whole = scan_events([path], "cert", lossy_utf8=True)
    events, rejects = _pieced(path, "cert", 50, lossy_utf8=True)
    assert_frame_equal(events, whole.events.collect())
    assert_frame_equal(rejects, whole.rejects.collect())
    assert rejects["line"].to_list() == [3, 7]


def test_a_piece_is_refused_for_several_files_or_other_formats(tmp_path: Path) -> None:
    piece = LinePiece(b"x\n", 1)
    (tmp_path / "logon.csv").write_text(_LOGON)
    with pytest.raises(ValueError, match="one CERT, LANL or JSON-lines file"):
        scan_events([tmp_path], "parquet", piece=piece)
    with pytest.raises(ValueError, match="one CERT, LANL or JSON-lines file"):
        scan_events([tmp_path], "jsonl", piece=piece)
    (tmp_path / "device.csv").write_text("id,date,user,pc,file_tree,activity\n")
    with pytest.raises(ValueError, match="one CERT, LANL or JSON-lines file"):
        scan_events([tmp_path / "logon.csv", tmp_path / "device.csv"], "cert", piece=piece)


def test_json_lines_with_carriage_returns_reject_the_text_the_daemon_reads(
    tmp_path: Path,
) -> None:
    # Non-ASCII bytes send the piece down the line-by-line path; only one trailing CR is the
    # line end's, as the daemon's file source reads it.
    from streams.sources.file_tail import FileTailSource

    path = tmp_path / "events.jsonl"
    good = '{"@timestamp":"2024-01-01T00:00:00Z","user":{"name":"ann"},"event":{"action":"x"}}'
    path.write_bytes(
        good.encode() + b"\r\n" + b"{oops\r\r\n" + b"\r\n" + "\u00e9t\u00e9\r".encode() + b"\n"
    )
    tail = FileTailSource(path)
    daemon_texts = {record.line: record.text for record in tail.read()}
    assert daemon_texts == {1: good, 2: "{oops\r", 3: "", 4: "\u00e9t\u00e9"}
    for size in (1, 5, 1 << 20):
        events, rejects = _pieced(path, "jsonl", size)
        assert events.get_column("user").to_list() == ["ann"]
        assert [(line, raw) for line, _, raw in rejects.select("line", "reason", "raw").rows()] == [
            (2, "{oops\r"),
            (4, "\u00e9t\u00e9"),
        ]
        assert all(raw == daemon_texts[line] for line, raw in rejects.select("line", "raw").rows())
