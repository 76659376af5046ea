"""A JSON-lines file read in pieces: the same events and dead letters as one line at a time."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from streams import batch
from streams.batch import (
    REJECT_SCHEMA,
    LinePiece,
    attrs_dtype,
    events_to_frame,
    line_pieces,
    scan_events,
)
from streams.errors import ParseError
from streams.event import Event
from streams.parsers.jsonl import JsonLinesParser


def _good(i: int) -> bytes:
    return (
        b'{"@timestamp":"2024-05-01T10:%02d:00Z","user":{"name":"u%d"},"host.name":"ws%d",'
        b'"event":{"action":"logon","category":["authentication"]},"url.domain":"x%d.org"}'
        % (i % 60, i % 7, i % 3, i)
    )


#: Line number -> (reason, raw text) of every line the file below rejects.
_EXPECTED_REJECTS = {
    5: ("bad_json", "{not json"),
    9: ("missing_field", '{"@timestamp":"2024-05-01T10:00:00Z"}'),
    14: ("bad_json", '{"@timestamp":"2024-05-01T10:00:00Z","event.action":"\ufffd"}'),
    20: ("bad_json", "[1, 2]"),
    41: ("bad_json", "\ufffd\ufffdoops"),
    57: (
        "bad_number",
        '{"@timestamp":"2024-05-01T11:00:00Z","event.action":"x","source.bytes":-1}',
    ),
}


def _file_bytes() -> bytes:
    """90 lines: good ones, bad JSON, a missing field, CRLF ends, blank and white lines,
    invalid UTF-8 (inside a valid JSON string, and not JSON at all), no final line end."""
    lines: list[bytes] = []
    for number in range(1, 91):
        if number == 5:
            lines.append(b"{not json\n")
        elif number == 9:
            lines.append(b'{"@timestamp":"2024-05-01T10:00:00Z"}\n')
        elif number == 14:
            # Valid JSON once decoded with replacement characters; its bytes are not.
            lines.append(b'{"@timestamp":"2024-05-01T10:00:00Z","event.action":"\xff"}\n')
        elif number == 20:
            lines.append(b"[1, 2]\r\n")
        elif number in (23, 24):
            lines.append(b"\n" if number == 23 else b" \t \r\n")
        elif number == 41:
            lines.append(b"\xfe\xffoops\r\n")
        elif number == 57:
            lines.append(
                b'{"@timestamp":"2024-05-01T11:00:00Z","event.action":"x","source.bytes":-1}\n'
            )
        elif number % 4 == 0:
            lines.append(_good(number) + b"\r\n")
        else:
            lines.append(_good(number) + b"\n")
    data = b"".join(lines)
    return data.removesuffix(b"\n")  # the last line has no line end


def _line_by_line(
    path: Path, attrs_keys: Collection[str] | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The reference: each line's bytes through ``parse_bytes`` (the reader before pieces)."""
    parser = JsonLinesParser()
    events: list[Event] = []
    rejects: list[tuple[str, int, str, str]] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            try:
                event = parser.parse_bytes(line)
            except ParseError as exc:
                text = line.decode("utf-8", errors="replace")
                rejects.append((str(path), number, exc.reason, text))
                continue
            if event is not None:
                events.append(event)
    frame = events_to_frame(events)
    if attrs_keys:
        frame = frame.with_columns(pl.col("attrs").str.json_decode(attrs_dtype(attrs_keys)))
    return frame, pl.DataFrame(rejects, schema=REJECT_SCHEMA, orient="row")


def _fields(events: pl.DataFrame) -> pl.DataFrame:
    """Events with a struct ``attrs`` unnested: a null struct reads as nulls in every field."""
    if not isinstance(events.schema["attrs"], pl.Struct):
        return events
    return events.unnest("attrs")


@pytest.fixture
def jsonl_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(_file_bytes())
    return path


@pytest.mark.parametrize("attrs_keys", [None, frozenset({"url.domain", "event.category"})])
def test_whole_file_equals_the_line_by_line_reader(
    jsonl_file: Path, attrs_keys: frozenset[str] | None
) -> None:
    scan = scan_events([jsonl_file], "jsonl", attrs_keys=attrs_keys)
    expected_events, expected_rejects = _line_by_line(jsonl_file, attrs_keys)
    assert expected_events.height == 90 - len(_EXPECTED_REJECTS) - 2
    assert_frame_equal(_fields(scan.events.collect()), _fields(expected_events))
    assert_frame_equal(scan.rejects.collect(), expected_rejects)
    rejects = scan.rejects.collect()
    assert {
        line: (reason, raw) for _, line, reason, raw in rejects.iter_rows()
    } == _EXPECTED_REJECTS
    assert set(rejects["file"]) == {str(jsonl_file)}


@pytest.mark.parametrize("size", [1, 333, 2_000, 1 << 20])
def test_pieces_give_the_events_and_dead_letters_of_the_whole_file(
    jsonl_file: Path, size: int
) -> None:
    keys = frozenset({"event.category", "event.dataset"})
    pieces = list(line_pieces(jsonl_file, size))
    assert len(pieces) > 1 or size == 1 << 20
    events: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    judged_lines: list[int] = []
    for piece in pieces:
        scan = scan_events([jsonl_file], "jsonl", attrs_keys=keys, piece=piece)
        events.append(scan.events.collect())
        rejects.append(scan.rejects.collect())
        assert scan.judged is not None
        judged = scan.judged.collect()
        # Every event carries its line too, so a spooled part can be traced back.
        assert judged["line"].null_count() == 0
        judged_lines += judged["line"].to_list()
    expected_events, expected_rejects = _line_by_line(jsonl_file, keys)
    assert_frame_equal(_fields(pl.concat(events)), _fields(expected_events))
    assert_frame_equal(pl.concat(rejects), expected_rejects)
    # Each non-blank line is judged once, in the piece holding it.
    assert sorted(judged_lines) == [n for n in range(1, 91) if n not in (23, 24)]


def test_a_piece_numbers_its_lines_from_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"")
    piece = LinePiece(b'\n{"event.action":"x"}\r\n' + _good(1) + b"\n", first_line=100, offset=7)
    scan = scan_events([path], "jsonl", piece=piece)
    assert scan.rejects.collect().select("line", "reason").rows() == [(101, "missing_field")]
    assert scan.events.select("user").collect().rows() == [("u1",)]
    assert scan.judged is not None
    assert scan.judged.select("line", "reason").collect().rows() == [
        (102, None),
        (101, "missing_field"),
    ]


@pytest.mark.parametrize("size", [1, 333, 2_000, 1 << 20])
def test_ascii_pieces_without_cr_go_to_the_parser_whole_with_the_same_outcome(
    tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file above without its non-ASCII lines and CR bytes: every piece takes the block path.
    kept = [line.replace(b"\r", b"") for line in _file_bytes().split(b"\n") if line.isascii()]
    path = tmp_path / "plain.jsonl"
    path.write_bytes(b"\n".join(kept))
    blocks: list[int] = []
    whole = batch._jsonl_block

    def counted(*args: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
        blocks.append(1)
        return whole(*args)

    monkeypatch.setattr(batch, "_jsonl_block", counted)
    keys = frozenset({"event.category", "event.dataset"})
    pieces = list(line_pieces(path, size))
    events, rejects = [], []
    for piece in pieces:
        scan = scan_events([path], "jsonl", attrs_keys=keys, piece=piece)
        events.append(scan.events.collect())
        rejects.append(scan.rejects.collect())
    assert len(blocks) == len(pieces)
    expected_events, expected_rejects = _line_by_line(path, keys)
    assert_frame_equal(_fields(pl.concat(events)), _fields(expected_events))
    assert_frame_equal(pl.concat(rejects), expected_rejects)
    # Lines 14 and 41 left out: the rejects keep their line numbers in the shorter file.
    assert pl.concat(rejects).select("line", "reason").rows() == [
        (5, "bad_json"),
        (9, "missing_field"),
        (19, "bad_json"),
        (55, "bad_number"),
    ]
