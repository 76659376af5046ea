"""JsonLinesParser.parse_batch: the same events and dead letters as parse(), line by line."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.batch import events_from_frame
from streams.errors import ParseError
from streams.event import Event
from streams.parsers.jsonl import JsonLinesParser
from streams.sources import FilePosition, FileTailSource
from streams.sources.base import RawRecord

GOLDEN = [
    # The usual nested ECS shape, with attributes.
    '{"@timestamp": "2024-05-01T10:00:00.123Z", "user": {"name": "ann"}, "host": {"name": "ws1"},'
    ' "event": {"action": "logon", "outcome": "success", "category": ["authentication"]},'
    ' "destination": {"address": "dc1"}, "source": {"bytes": 42}}',
    # Flat dotted names, a naive timestamp (UTC), a space separator, no fraction.
    '{"@timestamp": "2024-05-01 10:00:01", "user.name": "bob", "event.action": "http_visit",'
    ' "url.domain": "example.com", "network.bytes": "17"}',
    # Epoch seconds and milliseconds, an offset: the per-line path reads them.
    '{"@timestamp": 1714557602, "user.name": "cy", "event.action": "auth"}',
    '{"@timestamp": 1714557603000, "user.name": "cy", "event.action": "auth"}',
    '{"@timestamp": "2024-05-01T12:00:04+02:00", "user.name": "di", "event.action": "auth"}',
    # Numbers and booleans as text, a list as text.
    '{"@timestamp": "2024-05-01T10:00:05Z", "user.name": 7, "event.action": "auth",'
    ' "event.outcome": true, "destination.address": ["a", 1]}',
    # A flat null hides the nested value (resolve's rule); empty strings are no value.
    '{"@timestamp": "2024-05-01T10:00:06Z", "user.name": null, "user": {"name": "eve"},'
    ' "event.action": "logon", "host.name": ""}',
    # Rejected: each with parse()'s reason.
    "{bad json",
    "[1, 2]",
    '{"user.name": "ann", "event.action": "logon"}',
    '{"@timestamp": "2024-02-30T00:00:00Z", "event.action": "logon"}',
    '{"@timestamp": "2024-05-01T10:00:00Z"}',
    '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": {"x": 1}}',
    '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "source.bytes": -1}',
    '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a",'
    ' "source.bytes": 9223372036854775808}',
    '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "event.dataset": {"x": 1}}',
    '{"@timestamp": "2024-05-01T24:00:00Z", "event.action": "a"}',
    '{"@timestamp": "2024-05-01T10:00:00.1234567Z", "event.action": "a"}',
    # Skipped.
    "",
    "   ",
]


def records_of(lines: list[str]) -> list[RawRecord]:
    return [RawRecord(line, "in.json", number, 0) for number, line in enumerate(lines, start=1)]


def line_by_line(
    parser: JsonLinesParser, lines: list[str]
) -> tuple[list[Event], list[tuple[int, str, str]]]:
    events: list[Event] = []
    errors: list[tuple[int, str, str]] = []
    for number, line in enumerate(lines, start=1):
        try:
            event = parser.parse(line)
        except ParseError as error:
            errors.append((number, error.reason, error.detail))
            continue
        if event is not None:
            events.append(event)
    return events, errors


def assert_same_as_parse(parser: JsonLinesParser, lines: list[str]) -> None:
    """Both batch paths (columnar from one line on, and row-wise) give parse()'s outcome."""
    for min_lines in (1, 10**9):
        parser.columnar_min_lines = min_lines
        _assert_batch_is_parse(parser, lines)


def _assert_batch_is_parse(parser: JsonLinesParser, lines: list[str]) -> None:
    frame, dead = parser.parse_batch(records_of(lines))
    events, errors = line_by_line(parser, lines)
    assert events_from_frame(frame) == events
    assert [(d.line, d.reason, d.detail) for d in dead] == errors
    assert all(d.raw == lines[d.line - 1] and d.file == "in.json" for d in dead)
    kept = [
        line for number, line in enumerate(lines, start=1) if number not in {e[0] for e in errors}
    ]
    assert [lines[i] for i in frame.get_column("record").to_list()] == [
        line for line in kept if line.strip()
    ]


def test_golden_lines_equal_parse() -> None:
    assert_same_as_parse(JsonLinesParser(), GOLDEN)


@pytest.mark.parametrize("min_lines", [1, 10**9], ids=["columnar", "row-wise"])
def test_golden_values_and_reasons(min_lines: int) -> None:
    parser = JsonLinesParser()
    parser.columnar_min_lines = min_lines
    frame, dead = parser.parse_batch(records_of(GOLDEN))
    first = frame.row(0, named=True)
    assert first["ts"] == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert (first["user"], first["host"], first["target"], first["bytes"]) == (
        "ann",
        "ws1",
        "dc1",
        42,
    )
    assert first["attrs"] == '{"event.category":"authentication"}'
    assert frame.get_column("user").to_list()[5:7] == ["7", None]
    assert [d.reason for d in dead] == [
        "bad_json",
        "bad_json",
        "missing_field",
        "bad_timestamp",
        "missing_field",
        "bad_value",
        "bad_number",
        "bad_number",
        "bad_value",
        "bad_timestamp",
    ]
    # Seven fractional digits are truncated by fromisoformat, so that line is an event.
    assert frame.height == 8


def test_attrs_keys_keeps_only_the_asked_keys() -> None:
    frame, _ = JsonLinesParser().parse_batch(records_of(GOLDEN[:2]), attrs_keys=["x"])
    assert frame.get_column("attrs").to_list() == [None, None]


def test_a_custom_mapping_and_source() -> None:
    parser = JsonLinesParser({"user": "who", "ts": "when", "action": "what"}, source="app")
    lines = ['{"when": "2024-05-01T10:00:00Z", "who": "ann", "what": "x"}', '{"who": "bob"}']
    assert_same_as_parse(parser, lines)
    frame, _ = parser.parse_batch(records_of(lines))
    assert frame.select("source", "user").row(0) == ("app", "ann")


_OK = '"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a"'
#: Lines that Arrow's reader and orjson might read differently, or that span or share lines.
JUNK = [
    "",
    " ",
    "{",
    "[]",
    "3",
    '"x"',
    "null",
    "{}",
    "{" + _OK + ', "x": NaN}',
    "{" + _OK + ', "x": -Infinity}',
    "{" + _OK + ', "x": Inf}',
    "{" + _OK + "} {" + _OK + "}",
    "{" + _OK + ",",
    '"user.name": "ann"}',
    "\ufeff{" + _OK + "}",
    " {" + _OK + "} ",
    "{" + _OK + "}\t",
    "{" + _OK + ', "x": ' + "[" * 1100 + "]" * 1100 + "}",
    "{" + _OK + ', "x": ' + "[" * 600 + "]" * 600 + "}",
    "{" + _OK + ', "event.action": "b"}',
    '{"@timestamp": "2024-05-01T10:00:00Z", "event": {"action": "a"}, "event": {"action": "b"}}',
    "{" + _OK + ', "user\\u002ename": null, "user": {"name": "eve"}}',
    "{" + _OK + ', "user.name": null, "user": {"name": "eve"}}',
    "{" + _OK + ', "source.bytes": 4.0}',
    "{" + _OK + ', "source": {"bytes": "12"}}',
    "{" + _OK + ', "host": "ws1"}',
    "{" + _OK + ', "event": {"dataset": ["a", 1]}}',
    "{" + _OK + ', "x": "\\u00e9"}',
    "{" + _OK + "\x00}",
]

_TEXT = st.one_of(
    st.none(),
    st.sampled_from(["", "ann", "a b", "é", "x.com"]),
    st.integers(-3, 3),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.fixed_dictionaries({"name": st.just("n")}),
)
_TIMES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00.5",
            "2024-05-01 23:59:59.999999+00:00",
            "2024-13-01T10:00:00Z",
            "2024-05-01T10:00:60Z",
            "0000-05-01T10:00:00Z",
            "2024-05-01T10:00:00-05:00",
            "20240501T100000",
            "not a time",
        ]
    ),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
_PATHS = {
    "@timestamp": _TIMES,
    "user.name": _TEXT,
    "host.name": _TEXT,
    "event.action": _TEXT,
    "event.outcome": _TEXT,
    "destination.address": _TEXT,
    "url.domain": _TEXT,
    "source.bytes": st.one_of(st.none(), st.integers(-2, 2**64 - 1), st.sampled_from(["7", "-7"])),
    "event.dataset": _TEXT,
}


@st.composite
def _json_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["object", "object", "object", "junk"]))
    if kind == "junk":
        return draw(st.sampled_from(JUNK))
    flat: dict[str, object] = {}
    nested: dict[str, dict[str, object]] = {}
    for path, values in _PATHS.items():
        if draw(st.booleans()):
            continue
        value = draw(values)
        head, dot, tail = path.partition(".")
        if dot and draw(st.booleans()):
            nested.setdefault(head, {})[tail] = value
        else:
            flat[path] = value
    return orjson.dumps({**nested, **flat}).decode()


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_json_lines(), min_size=1, max_size=12))
def test_any_batch_equals_parse_line_by_line(lines: list[str]) -> None:
    assert_same_as_parse(JsonLinesParser(), lines)


def test_a_mixed_batch_keeps_record_order_and_only_bad_lines_go_row_wise() -> None:
    # Good lines of both spellings around every kind of bad line, many times over: the Arrow
    # reads fail, are split at the named row or in halves, and the rest is read columnar.
    good = [
        f'{{"@timestamp": "2024-05-01T10:00:{i % 60:02d}.5Z", "user": {{"name": "u{i}"}},'
        f' "event": {{"action": "logon", "dataset": "d"}}, "source": {{"bytes": {i}}}}}'
        if i % 2
        else f'{{"@timestamp": "2024-05-01 10:01:{i % 60:02d}", "user.name": "u{i}",'
        f' "event.action": "x", "url.domain": "d{i}.example"}}'
        for i in range(400)
    ]
    lines = list(good)
    for slot, junk in zip(range(7, 400, 29), itertools.cycle(JUNK + GOLDEN), strict=False):
        lines[slot] = junk
    assert_same_as_parse(JsonLinesParser(), lines)
    frame, _ = JsonLinesParser().parse_batch(records_of(lines), attrs_keys=["event.dataset"])
    assert frame.get_column("attrs").to_list()[:2] == [None, '{"event.dataset":"d"}']
    assert frame.get_column("record").is_sorted()


def test_columnar_values_of_both_spellings() -> None:
    lines = [
        '{"@timestamp": "2024-05-01T10:00:00Z", "user": {"name": "ann"}, "host.name": "ws1",'
        ' "event": {"action": "logon", "outcome": ""}, "destination": {"address": "dc1"},'
        ' "source": {"bytes": 42}, "event.dataset": "x\\"y"}',
        '{"@timestamp": "2024-05-01 10:00:01.25", "user.name": "bob", "event.action": "auth",'
        ' "destination.address": "", "url.domain": "u.example", "network.bytes": 7}',
    ]
    parser = JsonLinesParser(source="app")
    parser.columnar_min_lines = 1
    frame, dead = parser.parse_batch(records_of(lines))
    assert dead == []
    assert frame.rows() == [
        (
            datetime(2024, 5, 1, 10, tzinfo=UTC),
            "app",
            "logon",
            "ann",
            "ws1",
            "dc1",
            42,
            None,
            '{"event.dataset":"x\\"y"}',
            0,
        ),
        # An empty first candidate is the value (no target), as parse() has it.
        (
            datetime(2024, 5, 1, 10, 0, 1, 250000, tzinfo=UTC),
            "app",
            "auth",
            "bob",
            None,
            None,
            7,
            None,
            None,
            1,
        ),
    ]


def test_a_batch_of_wrong_types_goes_row_wise_within_a_bounded_number_of_reads() -> None:
    # Every line has a number where the schema has text: each Arrow read fails at once; after
    # a few the rest of the batch goes row-wise, with parse()'s outcome.
    lines = [
        f'{{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "user.name": {i}}}'
        for i in range(300)
    ]
    assert_same_as_parse(JsonLinesParser(), lines)


def test_json_keys_named_like_the_batch_columns_are_read_as_any_key() -> None:
    parser = JsonLinesParser({"user": "line", "host": "record", "target": "__json0"})
    lines = [
        '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "line": "ann",'
        f' "record": "h{i}", "__json0": "t"}}'
        for i in range(40)
    ]
    assert_same_as_parse(parser, lines)
    frame, _ = parser.parse_batch(records_of(lines))
    assert frame.select("user", "host", "target").row(3) == ("ann", "h3", "t")


def test_a_mapping_that_is_not_one_schema_reads_row_wise() -> None:
    # "host" is both a value (the host) and an object (host.name for the user): no schema.
    parser = JsonLinesParser({"host": "host", "user": "host.name"})
    lines = ['{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "a", "host": "h"}'] * 40
    assert_same_as_parse(parser, lines)
    assert parser.parse_batch(records_of(lines))[0].get_column("host").to_list() == ["h"] * 40


# -- the file tail's batch reader (the daemon's fast path reads with it) ---------------------


def test_read_batch_hands_on_what_read_does_in_bounded_lists(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = [f"line {i} " + "x" * (i % 50) for i in range(3000)]
    lines[7] = "caf\u00e9"
    log.write_bytes(("\n".join(lines) + "\r\n" + "partial").encode() + b"\xff")
    expected = list(FileTailSource(log).read())
    tail = FileTailSource(log)
    got: list[RawRecord] = []
    while batch := tail.read_batch(701):
        assert len(batch) <= 701
        got.extend(batch)
    assert got == expected and [r.text for r in got] == lines
    assert tail.snapshot() == FilePosition(str(log), log.stat().st_ino, got[-1].offset, 3000)


def test_a_reader_that_stops_early_loses_and_repeats_nothing(tmp_path: Path) -> None:
    # A bounded consumer abandons read()'s generator mid-chunk; the next read continues at
    # the line after the last one handed on (it used to skip or re-read bytes).
    log = tmp_path / "app.log"
    log.write_text("".join(f"line number {i:06d} with padding\n" for i in range(20_000)))
    tail = FileTailSource(log)
    texts: list[str] = []
    for _ in range(10):
        texts.extend(r.text for r in itertools.islice(tail.read(), 3000))
        texts.extend(r.text for r in tail.read_batch(1000))
    assert texts == [f"line number {i:06d} with padding" for i in range(20_000)]
    assert tail.truncations == 0


# -- timestamps of one shape, read without a regular expression ------------------------------


@st.composite
def _one_shape_times(draw: st.DrawFn) -> list[str]:
    """Texts of one ISO 8601 shape, their fields sometimes out of range."""
    digits = draw(st.integers(0, 7))
    zone = draw(st.sampled_from(["", "Z", "+00:00", "+01:00"]))
    fields = st.tuples(
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 24),
        st.integers(0, 60),
        st.integers(0, 60),
        st.integers(0, 10**digits - 1) if digits else st.just(0),
        st.sampled_from("T T"),
    )
    texts = []
    for year, month, day, hour, minute, second, fraction, separator in draw(
        st.lists(fields, min_size=1, max_size=6)
    ):
        text = f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}"
        texts.append(text + (f".{fraction:0{digits}d}" if digits else "") + zone)
    return texts


@settings(max_examples=200, deadline=None)
@given(texts=_one_shape_times())
def test_timestamps_of_one_shape_read_as_the_regular_expression_path(texts: list[str]) -> None:
    from streams.parsers.jsonl import _ISO_UTC, _arrow_timestamps, _one_iso_shape, _timestamps

    expected = _timestamps(pl.Series(texts)).to_list()
    assert _arrow_timestamps(pa.array(texts)).to_list() == expected
    assert _arrow_timestamps(pa.array(texts, pa.large_string())).to_list() == expected
    # The fast path is taken exactly when every text has the accepted shape.
    fits = all(re.fullmatch(_ISO_UTC.strip("^$"), text) for text in texts)
    assert (_one_iso_shape(pa.array(texts)) is not None) == fits


def test_only_the_year_0000_keeps_texts_of_one_shape_off_the_fast_path() -> None:
    from streams.parsers.jsonl import _one_iso_shape

    for year in ("0001", "0010", "0100", "1000", "2000"):
        texts = [f"{year}-05-01T10:00:00Z", "2024-05-01T10:00:01Z"]
        assert _one_iso_shape(pa.array(texts)) == pa.timestamp("us", "UTC"), year
    assert _one_iso_shape(pa.array(["2024-05-01T10:00:00", "0000-05-01T10:00:01"])) is None


def test_timestamps_of_mixed_shapes_or_with_nulls_take_the_regular_expression_path() -> None:
    from streams.parsers.jsonl import _arrow_timestamps, _one_iso_shape

    mixed = ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.5Z", None, "2024-05-01 10:00:00"]
    assert _one_iso_shape(pa.array(mixed[:2])) is None
    assert _one_iso_shape(pa.array(mixed[:1] + mixed[2:3])) is None
    stamps = _arrow_timestamps(pa.array(mixed)).to_list()
    assert [s.isoformat() if s else None for s in stamps] == [
        "2024-05-01T10:00:00+00:00",
        "2024-05-01T10:00:00.500000+00:00",
        None,
        "2024-05-01T10:00:00+00:00",
    ]
    sliced = pa.array(["x", "2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z"]).slice(1)
    assert _one_iso_shape(sliced) == pa.timestamp("us", "UTC")


def test_a_timestamp_beside_text_in_one_object_reads_columnar_as_row_wise() -> None:
    # The time's text (plain strings) and the action's (string views) in one Arrow struct.
    mapping = {"ts": "event.created", "action": "event.action", "user": "event.actor"}
    lines = [
        f'{{"event": {{"created": "2024-05-01T10:00:0{i}Z", "action": "a{i}",'
        f' "actor": "u{i % 2}"}}}}'
        for i in range(5)
    ]
    columnar, row_wise = JsonLinesParser(mapping), JsonLinesParser(mapping)
    columnar.columnar_min_lines, row_wise.columnar_min_lines = 1, 10**9
    frame, dead = columnar.parse_batch(records_of(lines))
    assert dead == [] and frame.equals(row_wise.parse_batch(records_of(lines))[0])
    assert frame.get_column("action").to_list() == ["a0", "a1", "a2", "a3", "a4"]
    assert frame.get_column("user").to_list() == ["u0", "u1", "u0", "u1", "u0"]
    assert frame.get_column("ts")[4] == datetime(2024, 5, 1, 10, 0, 4, tzinfo=UTC)
