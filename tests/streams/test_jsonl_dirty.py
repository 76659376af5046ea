"""parse_batch of dirty batches: malformed lines among good ones.

Each bad line is a dead letter with parse()'s reason and detail, the good lines around it
are events in record order, and a batch of many bad lines costs a check of its lines, not an
Arrow read per bad line (the reads and the lines sent row-wise are counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow.json as pa_json
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.batch import events_from_frame
from streams.parsers.jsonl import JsonLinesParser
from streams.sources.base import RawRecord
from streams.sources.blocks import RecordBlock
from tests.streams.test_jsonl_batch import assert_same_as_parse, line_by_line, records_of
from tests.streams.test_record_blocks import assert_block_is_parse

_CUT = '{"@timestamp": "2024-05-01T10:00:00Z", "user": {"na'
#: Lines Arrow is given (each ``{...}``) that are not JSON, and their orjson details. The
#: first two are suspects (braces that do not pair up, a quote that is not JSON's); the
#: others are found only by the check of every line.
RUN_TOGETHER = _CUT + '{"@timestamp": "2024-05-01T10:00:00Z", "event": {"action": "x"}}'
SINGLE_QUOTED = "{'a': 1}"
TRAILING_COMMA = '{"a": 1,}'
TWO_OBJECTS = '{"a": 1}{"b": 2}'
DETAILS = {
    RUN_TOGETHER: "unexpected character, expected ':' after key: line 1 column 54 (char 53)",
    SINGLE_QUOTED: "unexpected character, expected a string key: line 1 column 2 (char 1)",
    TRAILING_COMMA: "trailing comma is not allowed: line 1 column 8 (char 7)",
    TWO_OBJECTS: "unexpected content after document: line 1 column 9 (char 8)",
    _CUT: "unexpected end of data: line 1 column 52 (char 51)",
    "17": "a JSON int, not an object",
}


def good(i: int) -> str:
    return (
        f'{{"@timestamp": "2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "user": '
        f'{{"name": "u{i}"}}, "event": {{"action": "logon"}}, "source": {{"bytes": {i}}}}}'
    )


def block_of(lines: Sequence[str]) -> RecordBlock:
    return RecordBlock(
        "".join(f"{line}\n" for line in lines).encode(), "in.json", first_line=1, start_offset=0
    )


def counted(parser: JsonLinesParser, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Count the Arrow reads of the batch path and collect the records it sends row-wise."""
    seen: dict[str, Any] = {"reads": 0, "row_wise": []}
    read_json, parse_rows = pa_json.read_json, parser._parse_rows

    def read(*args: Any, **kwargs: Any) -> Any:
        seen["reads"] += 1
        return read_json(*args, **kwargs)

    def rows(records: Any, indices: Sequence[int], wanted: Any) -> Any:
        seen["row_wise"].extend(indices)
        return parse_rows(records, indices, wanted)

    monkeypatch.setattr(pa_json, "read_json", read)
    monkeypatch.setattr(parser, "_parse_rows", rows)
    return seen


@pytest.mark.parametrize("as_block", [True, False], ids=["block", "records"])
def test_bad_lines_first_last_and_adjacent_give_exact_dead_letters_and_events(
    as_block: bool,
) -> None:
    lines = [good(i) for i in range(60)]
    bad = {
        0: RUN_TOGETHER,
        1: TRAILING_COMMA,
        30: SINGLE_QUOTED,
        31: _CUT,
        32: "17",
        58: TWO_OBJECTS,
        59: RUN_TOGETHER,
    }
    for slot, line in bad.items():
        lines[slot] = line
    parser = JsonLinesParser()
    parser.columnar_min_lines = 1
    records = block_of(lines) if as_block else records_of(lines)
    frame, dead = parser.parse_batch(records)
    kept = [i for i in range(60) if i not in bad]
    assert frame.get_column("user").to_list() == [f"u{i}" for i in kept]
    assert frame.get_column("bytes").to_list() == kept
    assert frame.get_column("record").to_list() == kept
    assert [(d.line, d.reason, d.detail, d.raw, d.file) for d in dead] == [
        (slot + 1, "bad_json", DETAILS[line], line, "in.json") for slot, line in bad.items()
    ]


def test_a_batch_of_only_bad_lines_is_only_dead_letters() -> None:
    for bad in (RUN_TOGETHER, TRAILING_COMMA, TWO_OBJECTS):
        parser = JsonLinesParser()
        parser.columnar_min_lines = 1
        frame, dead = parser.parse_batch(block_of([bad] * 40))
        assert frame.height == 0
        assert [(d.line, d.detail) for d in dead] == [(n, DETAILS[bad]) for n in range(1, 41)]


def test_many_suspect_bad_lines_cost_one_failed_read_and_go_row_wise_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One line in ten is bad: the first failed read names the first bad row, the suspect
    # lines after it are checked, and the rest is read again at once (the lines before the
    # bad one, then the kept lines): three reads, and only the bad lines go row-wise. The
    # strict read before them is refused at the first run-together line's key ``"na{"``.
    lines = [good(i) for i in range(2000)]
    bad = list(range(5, 2000, 10))
    for slot in bad:
        lines[slot] = RUN_TOGETHER if slot % 20 == 5 else SINGLE_QUOTED
    parser = JsonLinesParser()
    parser.parse_batch(block_of([good(i) for i in range(40)]))  # the schema's paths typed
    seen = counted(parser, monkeypatch)
    frame, dead = parser.parse_batch(block_of(lines))
    assert seen["reads"] == 1 + 3
    assert sorted(seen["row_wise"]) == bad
    assert [d.line - 1 for d in dead] == bad
    assert frame.height == 1800
    assert frame.get_column("user").to_list()[:6] == ["u0", "u1", "u2", "u3", "u4", "u6"]


def test_bad_lines_the_suspect_check_misses_are_found_by_checking_every_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = [good(i) for i in range(1000)]
    bad = list(range(3, 1000, 7))
    for n, slot in enumerate(bad):
        lines[slot] = (RUN_TOGETHER, TRAILING_COMMA, TWO_OBJECTS)[n % 3]
    parser = JsonLinesParser()
    parser.parse_batch(block_of([good(i) for i in range(40)]))
    seen = counted(parser, monkeypatch)
    frame, dead = parser.parse_batch(block_of(lines))
    # The first read fails; the suspects' check leaves the others to a second failed read,
    # the check of every line after it; the lines before each failure are read again. The
    # strict read before them is refused at the first run-together line's key.
    assert seen["reads"] == 1 + 5
    assert sorted(seen["row_wise"]) == bad
    assert [(d.line - 1, d.detail) for d in dead] == [(slot, DETAILS[lines[slot]]) for slot in bad]
    assert frame.get_column("record").to_list() == [i for i in range(1000) if i not in set(bad)]


def test_dirty_batches_equal_parse_as_blocks_and_as_records() -> None:
    # A path first given a value after bad lines (the batch is read again with it typed),
    # flat and nested spellings, wrong types and junk Arrow never sees, among bad lines.
    lines = [good(i) for i in range(300)]
    lines[40:44] = [RUN_TOGETHER, TRAILING_COMMA, "", "[1, 2]"]
    lines[100] = '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "user.name": 5}'
    lines[150] = (
        '{"@timestamp": "2024-05-01T10:00:00Z", "event": {"action": "a"},'
        ' "url": {"domain": "late.example"}}'
    )
    lines[151] = '{"@timestamp": "2024-05-01 10:00:00", "user.name": "flat", "event.action": "b"}'
    lines[200:203] = [TWO_OBJECTS, SINGLE_QUOTED, "{not json}"]
    lines[-1] = _CUT + "}"
    assert_same_as_parse(JsonLinesParser(), lines)
    assert_block_is_parse("".join(f"{line}\n" for line in lines).encode())


_POOL = [good(i) for i in range(8)] + [
    RUN_TOGETHER,
    SINGLE_QUOTED,
    TRAILING_COMMA,
    TWO_OBJECTS,
    _CUT,
    _CUT + "}",
    "17",
    "",
    '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "user.name": 5}',
    '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "destination.ip": "10.0.0.1"}',
    '{"@timestamp": "2024-05-01T10:00:00Z", "event": {"action": "a", "x": "}"}}',
    '{ "@timestamp": "2024-05-01T10:00:00Z", "event.action": "a"}',
]


@settings(max_examples=60, deadline=None)
@given(picks=st.lists(st.sampled_from(range(len(_POOL))), min_size=1, max_size=80))
def test_any_dirty_batch_equals_parse_line_by_line(picks: list[int]) -> None:
    lines = [_POOL[i] for i in picks]
    assert_block_is_parse("".join(f"{line}\n" for line in lines).encode())


def test_records_given_as_a_list_equal_parse_too() -> None:
    lines = [_POOL[(7 * i) % len(_POOL)] for i in range(120)]
    records: list[RawRecord] = records_of(lines)
    parser = JsonLinesParser()
    frame, dead = parser.parse_batch(records)
    expected = JsonLinesParser()
    expected.columnar_min_lines = 10**9
    frame_rows, dead_rows = expected.parse_batch(records)
    assert frame.equals(frame_rows)
    assert dead == dead_rows


@pytest.mark.parametrize("min_lines", [1, 10**9], ids=["columnar", "row-wise"])
def test_lines_that_are_not_objects_are_parse_s_dead_letters_ascii_or_not(min_lines: int) -> None:
    # An ASCII line orjson refused is not read again; other text is, from its UTF-8 bytes
    # (a lone surrogate replaced, where the text itself is not UTF-8).
    lines = ["{bad", "  ", "[1]", "null", '"x"', '{"usér": }', '{"a": "\udcff" x', "\t", good(0)]
    parser = JsonLinesParser()
    parser.columnar_min_lines = min_lines
    frame, dead = parser.parse_batch(records_of(lines))
    assert frame.get_column("record").to_list() == [8]
    assert [(d.line, d.reason, d.detail) for d in dead] == [
        (1, "bad_json", "unexpected character, expected a string key: line 1 column 2 (char 1)"),
        (3, "bad_json", "a JSON list, not an object"),
        (4, "bad_json", "a JSON NoneType, not an object"),
        (5, "bad_json", "a JSON str, not an object"),
        (6, "bad_json", "unexpected character, expected a JSON value: line 1 column 10 (char 9)"),
        (7, "bad_json", "unexpected character, expected ',' or '}': line 1 column 11 (char 10)"),
    ]
    assert_same_as_parse(JsonLinesParser(), lines)


def test_many_values_of_another_kind_cost_one_failed_read_and_go_row_wise_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One line in ten gives user.name a number, an object or an array (each a dead letter
    # or an event as parse() decides): Arrow's refusal names the column and the first row,
    # the lines giving that key another kind are found by one search, and the rest is read
    # again at once. Before: a failed read per bad line, then the rest row-wise.
    lines = [good(i) for i in range(2000)]
    bad = list(range(5, 2000, 10))
    others = ("17", '{"first": "ann"}', '["ann"]', "true")
    for n, slot in enumerate(bad):
        lines[slot] = lines[slot].replace(f'"u{slot}"', others[n % 4])
    parser = JsonLinesParser()
    parser.parse_batch(block_of([good(i) for i in range(40)]))  # the schema's paths typed
    seen = counted(parser, monkeypatch)
    frame, dead = parser.parse_batch(block_of(lines))
    # The (strict) read refused at row 5, the lines before it, the kept lines after it.
    assert seen["reads"] == 3
    assert sorted(seen["row_wise"]) == bad
    events, errors = line_by_line(JsonLinesParser(), lines)
    assert events_from_frame(frame) == events
    assert [(d.line, d.reason, d.detail) for d in dead] == errors
    assert {line - 1 for line, _, _ in errors} < set(bad)  # a lone array's text is a value
    assert frame.height == 2000 - len(errors)


def test_a_value_of_another_kind_the_search_misses_is_found_by_reading_again() -> None:
    # An escaped key (user.n\u0061me) is not found by its text: Arrow refuses it again,
    # and the named row goes row-wise as before.
    lines = [good(i) for i in range(300)]
    lines[10] = lines[10].replace('"name": "u10"', '"n\\u0061me": 5')
    lines[200] = lines[200].replace('"name": "u200"', '"name": 5')
    assert_same_as_parse(JsonLinesParser(), lines)
