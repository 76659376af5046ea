"""CERT and LANL pieces with bytes that are not UTF-8: dead letters, never a failed read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from streams.batch import INVALID_UTF8, LinePiece, line_pieces, scan_events, undecodable_lines

_LOGON = (
    b"id,date,user,pc,activity\n"
    b"{A},01/04/2010 07:00:00,MSM3205,PC-1,Logon\n"
    b"{Q},01/05/2010 07:00:00,MSM3205,PC-\xe9\xff,Logon\n"
    b"{B},01/05/2010 08:00:00,MSM3205,PC-\xc3\xa9,Logoff\n"
    b"{C},13/45/2010 08:00:00,MSM3205,PC-1,Logon\n"
)


def test_undecodable_lines_finds_every_bad_line_and_keeps_numbering() -> None:
    data = b"\xff first\nok\nmid \xc3( bad\n\xc3\xa9 fine\nlast \xe2\x82"
    fixed, bad = undecodable_lines(LinePiece(data, first_line=41, offset=7))
    assert bad == [41, 43, 45]
    assert fixed.first_line == 41 and fixed.offset == 7
    assert fixed.data.decode("utf-8").split("\n") == [
        "\ufffd first",
        "ok",
        "mid \ufffd( bad",
        "é fine",
        "last \ufffd",
    ]


def test_valid_pieces_come_back_as_they_are() -> None:
    ascii_piece = LinePiece(b"a,b\nc,d\n", 1)
    utf8_piece = LinePiece("é,ü\n".encode(), 3)
    assert undecodable_lines(ascii_piece) == (ascii_piece, [])
    assert undecodable_lines(utf8_piece)[0] is utf8_piece
    assert undecodable_lines(utf8_piece)[1] == []


Rows = list[tuple[object, ...]]


def _read_pieces(path: Path, fmt: str, size: int, **options: object) -> tuple[Rows, Rows]:
    events: Rows = []
    rejects: Rows = []
    for piece in line_pieces(path, size):
        scan = scan_events([path], fmt, piece=piece, **options)  # type: ignore[arg-type]
        events += scan.events.select("ts", "host", "action").collect().rows()
        rejects += scan.rejects.select("line", "reason", "raw").collect().rows()
    return events, rejects


@pytest.mark.parametrize("size", [1 << 20, 40])
def test_cert_line_with_invalid_bytes_is_a_dead_letter(tmp_path: Path, size: int) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(_LOGON)
    events, rejects = _read_pieces(path, "cert", size)
    assert events == [
        (datetime(2010, 1, 4, 7, tzinfo=UTC), "PC-1", "logon"),
        (datetime(2010, 1, 5, 8, tzinfo=UTC), "PC-é", "logoff"),
    ]
    assert rejects == [
        (3, INVALID_UTF8, "{Q},01/05/2010 07:00:00,MSM3205,PC-\ufffd\ufffd,Logon"),
        (5, "bad_timestamp", "{C},13/45/2010 08:00:00,MSM3205,PC-1,Logon"),
    ]


def test_lanl_line_with_invalid_bytes_is_a_dead_letter(tmp_path: Path) -> None:
    path = tmp_path / "auth.txt"
    path.write_bytes(
        b"1,U1@DOM1,U1@DOM1,C1,C2,Kerberos,Network,LogOn,Success\n"
        b"abc\xff\xfe,U\xe9@DOM1,U1@DOM1,C1,C2,Kerberos,Network,LogOn,Success\n"
        b"2,U1@DOM1,U1@DOM1,C1,C3,Kerberos,Network,LogOn,Fail\n"
    )
    epoch = datetime(2010, 1, 1, tzinfo=UTC)
    events, rejects = _read_pieces(path, "lanl", 1 << 20, lanl_epoch=epoch)
    assert events == [
        (datetime(2010, 1, 1, 0, 0, 1, tzinfo=UTC), "C1", "auth"),
        (datetime(2010, 1, 1, 0, 0, 2, tzinfo=UTC), "C1", "auth"),
    ]
    assert rejects == [
        (
            2,
            INVALID_UTF8,
            "abc\ufffd\ufffd,U\ufffd@DOM1,U1@DOM1,C1,C2,Kerberos,Network,LogOn,Success",
        )
    ]


def test_lossy_read_still_replaces_instead_of_rejecting(tmp_path: Path) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(_LOGON)
    piece = next(line_pieces(path, 1 << 20))
    scan = scan_events([path], "cert", piece=piece, lossy_utf8=True)
    hosts = scan.events.select("host").collect().to_series().to_list()
    assert hosts == ["PC-1", "PC-\ufffd\ufffd", "PC-é"]
    assert scan.rejects.select("reason").collect().to_series().to_list() == ["bad_timestamp"]


def test_jsonl_line_with_invalid_bytes_stays_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b'{"@timestamp":"2010-01-04T07:00:00Z","event":{"action":"logon"},"user":{"name":"u"}}\n'
        b'{"@timestamp":"2010-01-04T08:00:00Z","event":{"action":"lo\xffgon"}}\n'
    )
    rejects = scan_events([path], "jsonl").rejects.collect()
    assert rejects.select("line", "reason").rows() == [(2, "bad_json")]
    assert pl.Series(rejects["raw"]).str.contains("\ufffd").to_list() == [True]
