"""Blocks of lines: the file tail hands on bytes, the parser reads them; nothing else changes.

The contract is the per-line path: a :class:`RecordBlock` behaves as the list of records
``read()`` gives, and ``parse_batch`` of a block gives what ``parse()`` gives line by line.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.batch import events_from_frame
from streams.errors import ParseError
from streams.event import Event
from streams.parsers.jsonl import JsonLinesParser
from streams.sources import FilePosition, FileTailSource, GlobTailSource
from streams.sources.base import RawRecord
from streams.sources.blocks import RecordBlock
from tests.streams.test_jsonl_batch import _PATHS, GOLDEN, JUNK, _json_lines

_OK = '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "user": {"name": "u"}}'


def block_of(data: bytes, first_line: int = 1, start_offset: int = 0) -> RecordBlock:
    return RecordBlock(data, "in.json", first_line=first_line, start_offset=start_offset)


def per_line(
    parser: JsonLinesParser, records: list[RawRecord]
) -> tuple[list[Event], list[tuple[int, str, str, str]]]:
    events: list[Event] = []
    errors: list[tuple[int, str, str, str]] = []
    for record in records:
        try:
            event = parser.parse(record.text)
        except ParseError as error:
            errors.append((record.line, error.reason, error.detail, record.text))
            continue
        if event is not None:
            events.append(event)
    return events, errors


def assert_block_is_parse(data: bytes, mapping: dict[str, str] | None = None) -> None:
    """Columnar from one line on and row-wise: the block's outcome is parse()'s, line by line."""
    block = block_of(data, first_line=5, start_offset=100)
    records = list(block)
    parser = JsonLinesParser(mapping)
    expected_events, expected_errors = per_line(parser, records)
    for min_lines in (1, 10**9):
        parser.columnar_min_lines = min_lines
        frame, dead = parser.parse_batch(block_of(data, first_line=5, start_offset=100))
        assert events_from_frame(frame) == expected_events
        assert [(d.line, d.reason, d.detail, d.raw) for d in dead] == expected_errors
        assert all(d.file == "in.json" for d in dead)
        kept = [
            i
            for i, record in enumerate(records)
            if record.text.strip(" \t\r\n") and record.line not in {e[0] for e in expected_errors}
        ]
        assert frame.get_column("record").to_list() == kept


# -- the block as a sequence of records ----------------------------------------------------------


def test_a_block_is_the_records_a_line_reader_gives() -> None:
    data = b'ab\r\n\n caf\xc3\xa9 \nbad \xff\xfe byte\r\r\n{"x": 1}\n'
    block = block_of(data, first_line=10, start_offset=1000)
    expected = [
        RawRecord("ab", "in.json", 10, 1004),
        RawRecord("", "in.json", 11, 1005),
        RawRecord(" café ", "in.json", 12, 1013),
        RawRecord("bad \ufffd\ufffd byte\r", "in.json", 13, 1027),
        RawRecord('{"x": 1}', "in.json", 14, 1036),
    ]
    assert len(block) == 5 and block.end_offset == 1036
    # One by one (built on demand) and all at once agree.
    assert [block[i] for i in range(5)] == expected == list(block)
    assert block[-1] == expected[-1] and block[1:3] == expected[1:3]
    assert block.ends.tolist() == [4, 5, 13, 27, 36]


def test_block_indexing_out_of_range_raises_index_error() -> None:
    block = block_of(b"a\n")
    try:
        block[1]
    except IndexError:
        pass
    else:  # pragma: no cover - the assertion below says what went wrong
        raise AssertionError("block[1] of a one-line block did not raise IndexError")
    assert block[0].text == "a" and len(block_of(b"")) == 0


# -- the file tail's blocks ----------------------------------------------------------------------


def test_read_blocks_hands_on_the_records_read_does_and_the_same_positions(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = [f"line {i} " + "x" * (i % 50) for i in range(3000)]
    lines[7] = "caf\u00e9"
    log.write_bytes(("\r\n".join(lines) + "\r\n" + "partial").encode() + b"\xff")
    expected = list(FileTailSource(log).read())
    tail = FileTailSource(log)
    got: list[RawRecord] = []
    sizes: list[int] = []
    while pieces := tail.read_blocks(701):
        assert all(isinstance(piece, RecordBlock) for piece in pieces)
        sizes.append(sum(len(piece) for piece in pieces))
        got.extend(record for piece in pieces for record in piece)
    assert sizes == [701, 701, 701, 701, 196]
    assert got == expected and [r.text for r in got] == lines
    assert tail.snapshot() == FilePosition(str(log), log.stat().st_ino, got[-1].offset, 3000)


def test_read_blocks_over_many_chunks_gives_each_block_its_line_ends(tmp_path: Path) -> None:
    # About 2.6 MB (three reads of 1 MiB): blocks cut inside a chunk and across chunks carry
    # the ends of their own lines, as searching their bytes finds them.
    log = tmp_path / "big.log"
    lines = [f"line {i} " + "y" * (i % 97) for i in range(40_000)]
    log.write_bytes(("\n".join(lines) + "\n" + "partial").encode())
    tail = FileTailSource(log)
    texts: list[str] = []
    while pieces := tail.read_blocks(15_000):
        for piece in pieces:
            assert isinstance(piece, RecordBlock)
            newlines = np.flatnonzero(np.frombuffer(piece.data, dtype=np.uint8) == 10) + 1
            assert piece.ends.tolist() == newlines.tolist()
            assert len(piece) == len(newlines) and piece.data.endswith(b"\n")
            texts.extend(record.text for record in piece)
    assert texts == lines
    assert tail.snapshot().line == 40_000
    with log.open("a") as handle:
        handle.write(" line\n")
    assert [[r.text for r in piece] for piece in tail.read_blocks(5)] == [["partial line"]]


def test_read_blocks_across_rename_rotation_hands_on_the_partial_line_alone(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"old-1\nold-2\nold-partial\r")
    tail = FileTailSource(log)
    assert [[r.text for r in piece] for piece in tail.read_blocks(1)] == [["old-1"]]
    os.rename(log, tmp_path / "a.log.1")
    log.write_bytes(b"new-1\nnew-2\nnew-3\n")
    pieces = tail.read_blocks(4)
    # The rotated file's partial line keeps its carriage return, as read() hands it on.
    assert [[(r.text, r.line) for r in piece] for piece in pieces] == [
        [("old-2", 2)],
        [("old-partial\r", 3)],
        [("new-1", 1), ("new-2", 2)],
    ]
    assert [type(piece).__name__ for piece in pieces] == ["RecordBlock", "list", "RecordBlock"]
    assert tail.snapshot().offset == 12 and tail.snapshot().line == 2
    assert [r.text for r in tail.read_batch(10)] == ["new-3"]


def test_read_blocks_after_copytruncate_restarts_at_the_beginning(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"first line\nsecond line\n")
    tail = FileTailSource(log)
    assert sum(len(piece) for piece in tail.read_blocks(10)) == 2
    log.write_bytes(b"x\n")
    pieces = tail.read_blocks(10)
    assert [[(r.text, r.line, r.offset) for r in piece] for piece in pieces] == [[("x", 1, 2)]]
    assert tail.truncations == 1


# -- the parser reads the block's bytes ----------------------------------------------------------


def test_golden_lines_as_a_block_equal_parse() -> None:
    data = "\n".join(GOLDEN + JUNK).encode() + b"\n"
    assert_block_is_parse(data)
    assert_block_is_parse(data.replace(b"\n", b"\r\n"))


def test_a_clean_block_is_read_at_once_with_its_values() -> None:
    lines = [
        f'{{"@timestamp": "2024-05-01T10:00:{i:02d}.5Z", "user": {{"name": "u{i}"}},'
        f' "event": {{"action": "logon", "dataset": "d"}}, "source": {{"bytes": {i}}}}}'
        for i in range(40)
    ]
    parser = JsonLinesParser()
    block = block_of(("\r\n".join(lines) + "\r\n").encode())
    frame, dead = parser.parse_batch(block)
    assert dead == [] and frame.height == 40
    # Read from the bytes: no record was made.
    assert block._records is None
    assert frame.row(3) == (
        frame.row(3)[0],
        "jsonl",
        "logon",
        "u3",
        None,
        None,
        3,
        None,
        '{"event.dataset":"d"}',
        3,
    )
    assert frame.row(3)[0].isoformat() == "2024-05-01T10:00:03.500000+00:00"


def test_block_lines_with_carriage_returns_nul_and_nan_inside_go_row_wise() -> None:
    # Arrow ends a row at a lone carriage return; orjson refuses NaN; a NUL is no JSON.
    lines = [_OK] * 40
    lines[3] = _OK[:-1] + ', "x": "a\rb"}'
    lines[5] = _OK[:-1] + ', "x": NaN}'
    lines[9] = _OK[:-1] + "\x00}"
    lines[11] = _OK + "\r"  # with the terminator's own: the text keeps one carriage return
    data = ("\r\n".join(lines) + "\r\n").encode()
    assert_block_is_parse(data)
    frame, dead = JsonLinesParser().parse_batch(block_of(data))
    # The line with a carriage return before its terminator's is an event (orjson reads the
    # whitespace), the three others are not.
    assert [(d.line, d.reason) for d in dead] == [
        (4, "bad_json"),
        (6, "bad_json"),
        (10, "bad_json"),
    ]
    assert frame.height == 37 and 11 in frame.get_column("record").to_list()


def test_a_block_that_is_not_utf8_reads_as_its_replaced_texts() -> None:
    good = _OK.encode()
    lines = [good] * 40
    lines[2] = good.replace(b'"u"', b'"caf\xff"')
    lines[6] = good.replace(b'"u"', b'"caf\xc3\xa9"')
    data = b"\n".join(lines) + b"\n"
    assert_block_is_parse(data)
    frame, _ = JsonLinesParser().parse_batch(block_of(data))
    assert frame.get_column("user").to_list()[2] == "caf\ufffd"
    assert frame.get_column("user").to_list()[6] == "caf\u00e9"


def test_hidden_flat_keys_and_escapes_in_a_block_decide_as_parse() -> None:
    # A flat null hides the nested value; a \u-escaped key may be the flat spelling.
    lines = [_OK] * 40
    lines[4] = _OK[:-1] + ', "user.name": null}'
    lines[8] = _OK[:-1] + ', "user\\u002ename": null}'
    lines[12] = _OK[:-1] + ', "x": "C:\\\\users"}'
    data = ("\n".join(lines) + "\n").encode()
    assert_block_is_parse(data)
    frame, _ = JsonLinesParser().parse_batch(block_of(data))
    users = frame.get_column("user").to_list()
    assert users[4] is None and users[8] is None and users[12] == "u"


def test_nested_lines_with_one_flat_spelling_among_them_decide_as_parse() -> None:
    # The flat spelling's column is null until a line gives it a value; a flat null still
    # hides the nested value, found by the text of the key.
    lines = [_OK] * 60
    lines[17] = _OK.replace('"user": {"name": "u"}', '"user.name": "flat"')
    lines[30] = _OK[:-1] + ', "user.name": null}'
    lines[44] = _OK[:-1] + ', "user.name": "both"}'
    data = ("\n".join(lines) + "\n").encode()
    assert_block_is_parse(data)
    frame, dead = JsonLinesParser().parse_batch(block_of(data))
    users = frame.get_column("user").to_list()
    assert dead == [] and users[16:19] == ["u", "flat", "u"]
    assert users[30] is None and users[44] == "both" and users.count("u") == 57


def test_a_path_first_given_a_value_late_is_typed_and_read_columnar() -> None:
    lines = [_OK] * 50
    lines[41] = _OK[:-1] + ', "url": {"domain": "late.example"}, "source": {"bytes": 5}}'
    # A value of another type than the path's: that line alone goes the row-wise way.
    lines[43] = _OK[:-1] + ', "event": {"dataset": 3}, "source": {"bytes": "7"}}'
    lines[45] = _OK[:-1] + ', "network.bytes": 8, "event.category": ["a", "b"]}'
    data = ("\n".join(lines) + "\n").encode()
    assert_block_is_parse(data)
    parser = JsonLinesParser()
    for _ in range(2):  # learnt on the first block, and the same on the next
        frame, dead = parser.parse_batch(block_of(data))
        assert dead == []
        rows = frame.select("target", "bytes", "attrs").rows()
        assert rows[41] == ("late.example", 5, None)
        assert rows[43] == (None, 7, '{"event.dataset":"3"}')
        assert rows[45] == (None, 8, '{"event.category":"a,b"}')
        assert rows[0] == (None, None, None)
    assert pickle.loads(pickle.dumps(parser)).parse_batch(block_of(data))[0].equals(frame)


def test_a_slash_escape_in_a_hidden_flat_key_decides_as_parse() -> None:
    # "x.a\/b" is the key "x.a/b": its null hides the nested value, though its text differs.
    mapping = {"user": "x.a/b"}
    nested = '{"@timestamp": "2024-05-01T10:00:00Z", "event": {"action": "a"}, "x": {"a/b": "eve"}}'
    lines = [nested] * 40
    lines[6] = nested[:-1] + ', "x.a\\/b": null}'
    data = ("\n".join(lines) + "\n").encode()
    assert_block_is_parse(data, mapping)
    frame, _ = JsonLinesParser(mapping).parse_batch(block_of(data))
    assert frame.get_column("user").to_list()[5:8] == ["eve", None, "eve"]


@st.composite
def _block_bytes(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_json_lines(), min_size=1, max_size=12))
    encoded = [line.encode("utf-8", errors="surrogatepass") for line in lines]
    if draw(st.booleans()):
        encoded[draw(st.integers(0, len(encoded) - 1))] += b"\xff"
    terminator = draw(st.sampled_from([b"\n", b"\r\n"]))
    return b"".join(line + terminator for line in encoded)


@settings(max_examples=150, deadline=None)
@given(data=_block_bytes())
def test_any_block_equals_parse_line_by_line(data: bytes) -> None:
    assert_block_is_parse(data)


@st.composite
def _nested_block_bytes(draw: st.DrawFn) -> bytes:
    """Lines of nested objects only (Arrow reads the nested spellings alone), sometimes with
    one flat key among them: plain, \\u-escaped or \\/-escaped, null or with a value."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(1, 30))):
        nested: dict[str, object] = {}
        for path, values in _PATHS.items():
            if draw(st.booleans()):
                head, dot, tail = path.partition(".")
                value = draw(values)
                if dot:
                    child = nested.setdefault(head, {})
                    assert isinstance(child, dict)
                    child[tail] = value
                else:
                    nested[path] = value
        lines.append(orjson.dumps(nested))
    if draw(st.booleans()):
        key = draw(st.sampled_from(['"user.name"', '"user\\u002ename"', '"url.dom\\u0061in"']))
        value = draw(st.sampled_from([b"null", b'"flat"', b"3", b'{"name": "x"}']))
        slot = draw(st.integers(0, len(lines) - 1))
        line = lines[slot]
        lines[slot] = (
            line[:-1] + (b", " if len(line) > 2 else b"") + key.encode() + b": " + value + b"}"
        )
    return b"".join(line + b"\n" for line in lines)


@settings(max_examples=80, deadline=None)
@given(data=_nested_block_bytes())
def test_any_block_of_nested_lines_equals_parse_line_by_line(data: bytes) -> None:
    assert_block_is_parse(data)


def test_a_long_block_of_mixed_lines_keeps_record_order() -> None:
    good = [
        orjson.dumps(
            {
                "@timestamp": f"2024-05-01T10:00:{i % 60:02d}Z",
                "user.name": f"u{i}",
                "event.action": "x",
            }
        ).decode()
        for i in range(500)
    ]
    for slot, junk in zip(range(3, 500, 17), JUNK + GOLDEN, strict=False):
        good[slot] = junk
    assert_block_is_parse(("\n".join(good) + "\n").encode())


def test_only_an_odd_run_of_backslashes_before_u_or_slash_is_an_escape() -> None:
    from streams.parsers.jsonl import _escape_starts

    data = b'"\\u00e9" "C:\\\\users" "\\\\\\u0041" \\/ "a\\\\/b" \\u'
    # The backslash before each real escape's letter: 1, 24 (the third of three), 32, 43.
    assert [data[i : i + 2] for i in (1, 24, 32, 43)] == [b"\\u", b"\\u", b"\\/", b"\\u"]
    assert _escape_starts(data).tolist() == [1, 24, 32, 43]
    assert _escape_starts(b"no backslash").tolist() == []
    assert _escape_starts(b"ends with one \\").tolist() == []


def test_keys_with_regex_syntax_in_a_custom_mapping_decide_as_parse() -> None:
    mapping = {"user": "who (am).i#[x]", "ts": "t", "action": "a"}
    lines = ['{"t": "2024-05-01T10:00:00Z", "a": "x", "who (am)": {"i#[x]": "ann"}}'] * 40
    lines[3] = (
        '{"t": "2024-05-01T10:00:00Z", "a": "x", "who (am).i#[x]": null,'
        ' "who (am)": {"i#[x]": "b"}}'
    )
    assert_block_is_parse(("\n".join(lines) + "\n").encode(), mapping)
    frame, _ = JsonLinesParser(mapping).parse_batch(block_of(("\n".join(lines) + "\n").encode()))
    assert frame.get_column("user").to_list()[2:5] == ["ann", None, "ann"]


def test_glob_read_blocks_gives_what_read_gives_within_the_bound(tmp_path: Path) -> None:
    for name, count in (("a.log", 5), ("b.log", 3)):
        (tmp_path / name).write_text("".join(f"{name} {i}\n" for i in range(count)))
    pattern = str(tmp_path / "*.log")
    expected = [r.text for r in GlobTailSource(pattern).read()]
    tails = GlobTailSource(pattern)
    first = tails.read_blocks(6)
    assert [r.text for piece in first for r in piece] == expected[:6]
    (tmp_path / "c.log").write_text("c.log 0\n")
    rest = [r.text for piece in tails.read_blocks(100) for r in piece]
    assert rest == [*expected[6:], "c.log 0"]
    assert tails.read_blocks(100) == [] and tails.lag_bytes == 0
    assert tails.snapshot()[str(tmp_path / "a.log")].line == 5
