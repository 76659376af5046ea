"""JsonLinesParser.parse_batch's cheaper reads (timestamps read by Arrow, escapes only looked
for in keys): parse()'s outcome still."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pa_json
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.batch import events_from_frame
from streams.event import Event
from streams.parsers.jsonl import JsonLinesParser, _LineBuffer
from tests.streams.test_jsonl_batch import line_by_line, records_of
from tests.streams.test_record_blocks import assert_block_is_parse, block_of


def _line(ts: object, index: int) -> str:
    return orjson.dumps(
        {"@timestamp": ts, "user": {"name": f"u{index}"}, "event": {"action": "a"}}
    ).decode()


def _outcome(
    parser: JsonLinesParser, lines: list[str]
) -> tuple[list[Event], list[tuple[int, str]]]:
    """The batch's events and dead letters, checked against parse() line by line."""
    frame, dead = parser.parse_batch(records_of(lines))
    events, errors = line_by_line(JsonLinesParser(parser.mapping), lines)
    assert events_from_frame(frame) == events
    assert [(d.line, d.reason, d.detail) for d in dead] == errors
    return events, [(d.line, d.reason) for d in dead]


def _columnar() -> JsonLinesParser:
    parser = JsonLinesParser()
    parser.columnar_min_lines = 1
    return parser


def test_the_timestamps_leaves_are_arrow_timestamps_unless_another_field_reads_them() -> None:
    parser = _columnar()
    # A null column until a line gives it a value, then a timestamp.
    plan = parser._columnar_plan(stamps=True)
    assert plan is not None and plan.stamps
    assert str(plan.parse_options.explicit_schema.field("@timestamp").type) == "null"
    _outcome(parser, [_line("2024-05-01T10:00:00Z", 0)])
    plan = parser._columnar_plan(stamps=True)
    assert plan is not None
    schema = plan.parse_options.explicit_schema
    assert str(schema.field("@timestamp").type) == "timestamp[us, tz=UTC]"
    shared = JsonLinesParser({"ts": "t", "user": "t"})
    plan = shared._columnar_plan(stamps=True)
    assert plan is not None and not plan.stamps
    lines = [orjson.dumps({"t": "2024-05-01T10:00:00Z", "event.action": "a"}).decode()] * 3
    shared.columnar_min_lines = 1
    events, dead = _outcome(shared, lines)
    assert [e.user for e in events] == ["2024-05-01T10:00:00Z"] * 3 and dead == []


def test_offsets_fractions_and_short_forms_read_as_python_reads_them() -> None:
    parser = _columnar()
    texts = [
        "2024-05-01T10:00:00.5Z",
        "2024-05-01 12:00:00+02:00",
        "2024-05-01T09:30:00-0030",
        "2024-05-01T10",
        "2024-05-01",
        "2024-05-01T10:00:00.123456",
    ]
    events, dead = _outcome(parser, [_line(t, i) for i, t in enumerate(texts)])
    assert dead == [] and "_text_times" not in parser.__dict__  # Arrow read them all
    assert [e.ts for e in events] == [
        datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 0, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
    ]


def test_times_python_cannot_hold_go_row_wise_to_a_dead_letter() -> None:
    # Arrow reads these (the year 0000, offsets past the years 1 and 9999); Python refuses.
    parser = _columnar()
    texts = [
        "2024-05-01T10:00:00Z",
        "0000-06-01T00:00:00Z",
        "0000-12-31T23:00:00-02:00",  # 01:00 on the first day of the year 1, in UTC
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:30:00-01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ]
    events, dead = _outcome(parser, [_line(t, i) for i, t in enumerate(texts)])
    assert "_text_times" not in parser.__dict__
    assert dead == [(line, "bad_timestamp") for line in (2, 3, 4, 5)]
    assert [e.ts.year for e in events] == [2024, 1, 9999]


def test_a_time_arrow_refuses_reads_the_batch_again_as_text_then_waits_longer() -> None:
    parser = _columnar()
    good = [_line("2024-05-01T10:00:00Z", i) for i in range(3)]
    bad = [*good, _line("2024-02-30T00:00:00Z", 3), *good]
    events, dead = _outcome(parser, bad)
    assert len(events) == 6 and dead == [(4, "bad_timestamp")]
    assert parser.__dict__["_text_times"] == (16, 16)
    for left in range(15, -1, -1):  # 16 batches with the times as text
        _outcome(parser, good)
        assert parser.__dict__["_text_times"] == (left, 16)
    _outcome(parser, good)  # Arrow's again, and it reads them
    assert parser.__dict__["_text_times"] == (0, 16)
    _outcome(parser, bad)
    assert parser.__dict__["_text_times"] == (32, 32)
    # A checkpoint forgets the wait: a restart tries Arrow's timestamps at once.
    assert "_text_times" not in pickle.loads(pickle.dumps(parser)).__dict__


def test_another_column_arrow_cannot_convert_keeps_the_timestamps_arrows() -> None:
    # Arrow's refusal of a byte count past Int64 names no row either: no wait for it.
    parser = _columnar()
    lines = [_line("2024-05-01T10:00:00Z", i) for i in range(6)]
    lines[2] = lines[2][:-1] + ', "source": {"bytes": 9223372036854775808}}'
    events, dead = _outcome(parser, lines)
    assert len(events) == 5 and dead == [(3, "bad_number")]
    assert "_text_times" not in parser.__dict__


def test_a_later_candidate_path_and_an_uncertain_spelling() -> None:
    # The time at event.created (flat or nested; a flat null hides the nested one) or else
    # at @timestamp.
    parser = JsonLinesParser({"ts": ["event.created", "@timestamp"]})
    parser.columnar_min_lines = 1
    lines = [
        '{"event": {"created": "2024-05-01T10:00:00Z", "action": "a"}}',
        '{"event.created": "2024-05-01T10:00:01Z", "event.action": "a"}',
        '{"@timestamp": "2024-05-01T10:00:02Z", "event": {"action": "a"}}',
        '{"event.created": null, "event": {"created": "2024-05-01T10:00:03Z", "action": "a"},'
        ' "@timestamp": "2024-05-01T10:00:04Z"}',
        '{"event": {"created": null, "action": "a"}, "@timestamp": "2024-05-01T10:00:05Z"}',
    ]
    events, dead = _outcome(parser, lines)
    assert dead == [] and [e.ts.second for e in events] == [0, 1, 2, 4, 5]


_ZONES = st.sampled_from(["", "Z", "+00:00", "-00:00", "+05:30", "-0800", "+01", "+23:59"])


@st.composite
def _times(draw: st.DrawFn) -> str:
    year = draw(st.sampled_from([0, 1, 2, 1970, 2024, 9998, 9999]) | st.integers(0, 9999))
    text = f"{year:04d}-{draw(st.integers(0, 13)):02d}-{draw(st.integers(0, 32)):02d}"
    parts = draw(st.integers(0, 4))
    if parts:
        text += draw(st.sampled_from("T T"))
        text += ":".join(f"{draw(st.integers(0, 61)):02d}" for _ in range(min(parts, 3)))
        if parts == 4:
            text += "." + "".join(draw(st.lists(st.sampled_from("0123456789"), max_size=9)))
    return text + draw(_ZONES)


_SHARED = _columnar()


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(_times(), min_size=1, max_size=8))
def test_any_batch_of_iso_times_equals_parse_line_by_line(texts: list[str]) -> None:
    # One parser (its plans built once), Arrow's timestamps tried on every batch.
    _SHARED.__dict__.pop("_text_times", None)
    _outcome(_SHARED, [_line(t, i) for i, t in enumerate(texts)])


def test_escapes_in_values_keep_the_nested_schema_and_escaped_keys_do_not() -> None:
    nested = (
        '{"@timestamp": "2024-05-01T10:00:00Z", "user": {"name": "ann"},'
        ' "event": {"action": "file_open"}, "destination": {"address": "C:\\\\u0041\\\\d"}}'
    )
    assert "\\\\u0041" in nested  # an escaped backslash, then a u: no escape
    lines = [nested] * 40
    lines[3] = nested.replace('"ann"', '"\\u00e9ve"')  # a real escape, in a value
    parser = JsonLinesParser()
    data = ("\n".join(lines) + "\n").encode()
    frame, dead = parser.parse_batch(block_of(data))
    assert dead == [] and frame.get_column("user").to_list()[2:5] == ["ann", "\u00e9ve", "ann"]
    assert frame.get_column("target")[0] == "C:\\u0041\\d"
    assert_block_is_parse(data)
    plan = parser._columnar_plan()
    assert plan is not None and plan.hidden

    def lines_of(data: bytes) -> _LineBuffer:
        buffer = _LineBuffer.of_block(block_of(data))
        assert buffer is not None
        return buffer

    assert not lines_of(data).may_hide(plan.hidden)  # Arrow reads nested keys alone
    # The flat spelling, escaped and spaced before its colon: its null hides the nested name.
    lines[7] = nested[:-1] + ', "user\\u002ename" : null}'
    data = ("\n".join(lines) + "\n").encode()
    assert lines_of(data).may_hide(plan.hidden)
    assert_block_is_parse(data)
    frame, _ = JsonLinesParser().parse_batch(block_of(data))
    assert frame.get_column("user").to_list()[6:9] == ["ann", None, "ann"]


def _reads(parser: JsonLinesParser, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each Arrow read's handling of keys beyond its schema (``error``: a strict read)."""
    seen: list[str] = []
    read_json = pa_json.read_json

    def read(*args: Any, **kwargs: Any) -> Any:
        seen.append(str(kwargs["parse_options"].unexpected_field_behavior))
        return read_json(*args, **kwargs)

    monkeypatch.setattr(pa_json, "read_json", read)
    return seen


def test_a_batch_of_the_keys_seen_is_read_strictly_without_the_other_null_columns() -> None:
    parser = _columnar()
    lines = [
        _line("2024-05-01T10:00:00Z", i)[:-1] + ', "source": {"bytes": null}}' for i in range(3)
    ]
    _outcome(parser, lines)  # the paths the lines give values typed, source.bytes named
    present = parser.__dict__["_present"]
    assert ("source", "bytes") in present and ("network", "bytes") not in present
    plan = parser._columnar_plan(nested_only=True, stamps=True)
    assert plan is not None
    # The whole schema has null columns for the other paths; the strict one only for the
    # null leaves the lines name (a key the schema lacks is refused even with a null).
    assert plan.parse_options.explicit_schema.field("url").type == pa.struct(
        [("domain", pa.null()), ("original", pa.null())]
    )
    strict = plan.strict(parser.__dict__["_present"])
    assert strict is not None and strict.positions is not None
    options = strict.parse_options
    assert options.unexpected_field_behavior == "error"
    assert options.explicit_schema.names == ["@timestamp", "user", "event", "source"]
    assert options.explicit_schema.field("event").type == pa.struct([("action", pa.string_view())])
    assert options.explicit_schema.field("source").type == pa.struct([("bytes", pa.null())])
    assert plan.strict(plan.untyped_leaves()) is None  # every null leaf kept: the plan itself
    events, dead = _outcome(parser, lines)
    assert [e.user for e in events] == ["u0", "u1", "u2"] and dead == []


def test_a_key_beyond_the_typed_ones_reads_the_batch_again_whole_then_waits_longer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = _columnar()
    good = [_line("2024-05-01T10:00:00Z", i) for i in range(3)]
    _outcome(parser, good)
    seen = _reads(parser, monkeypatch)
    # A key no field reads, then a path's first value (typed from then on): both are events.
    other = good[1][:-1] + ', "message": "hello"}'
    late = good[2][:-1] + ', "url": {"domain": "late.example"}}'
    events, dead = _outcome(parser, [good[0], other, late])
    assert [e.target for e in events] == [None, None, "late.example"] and dead == []
    # Refused by the strict read, read whole (refused again: url.domain gets its type), and
    # read whole once more: the next 4 batches are read whole. The null leaves the refused
    # batch named are kept in strict reads from then on.
    assert seen == ["error", "ignore", "ignore"]
    assert parser.__dict__["_loose_reads"] == (4, 4)
    assert ("url", "original") not in parser.__dict__["_present"]
    for left in range(3, -1, -1):
        seen.clear()
        _outcome(parser, good)
        assert seen == ["ignore"] and parser.__dict__["_loose_reads"] == (left, 4)
    seen.clear()
    _outcome(parser, [*good, other])  # strict again, refused again: a longer wait
    assert seen == ["error", "ignore"] and parser.__dict__["_loose_reads"] == (8, 8)
    # A checkpoint forgets the wait.
    assert "_loose_reads" not in pickle.loads(pickle.dumps(parser)).__dict__


def test_a_block_the_caller_found_utf8_is_not_checked_again_and_reads_the_same() -> None:
    line = '{"@timestamp": "2024-05-01T10:00:00Z", "user.name": "%s", "event.action": "logon"}'
    data = "\n".join(line % name for name in ["ann", "\u00e9ve", "caf\u00e9"] * 20).encode() + b"\n"
    checked, dead_checked = JsonLinesParser().parse_batch(block_of(data), utf8_checked=True)
    frame, dead = JsonLinesParser().parse_batch(block_of(data))
    assert checked.equals(frame) and dead_checked == dead == []
    assert frame.get_column("user").to_list()[:3] == ["ann", "\u00e9ve", "caf\u00e9"]
    # The caller's word is taken: bytes that are not UTF-8 are not looked for again.
    garbled = block_of(data.replace(b"ann", b"a\xffn"))
    assert _LineBuffer.of_block(garbled) is None
    assert _LineBuffer.of_block(garbled, utf8_checked=True) is not None


def _with_bytes(index: int, value: str, name: str | None = None) -> str:
    line = _line("2024-05-01T10:00:00Z", index)
    if name is not None:
        line = line.replace(f'"u{index}"', orjson.dumps(name).decode())
    return line[:-1] + f', "source": {{"bytes": {value}}}}}'


@pytest.mark.parametrize(
    ("value", "dead"),
    [
        ("1.5", [(601, "bad_number")]),
        ("9223372036854775808", [(601, "bad_number")]),
        ("-99999999999999999999", [(601, "bad_number")]),
        ("1e5", []),  # a whole number: parse() takes it, as the batch must
        ("2E+3", []),
    ],
)
def test_a_byte_count_no_integer_column_holds_costs_two_reads_not_a_halving(
    monkeypatch: pytest.MonkeyPatch, value: str, dead: list[tuple[int, str]]
) -> None:
    """Arrow names the number's text, not its row: the lines holding that text go row-wise
    and the rest is read again at once (halving the batch took ~20 reads for 1,000 lines).
    A line whose string holds the same text goes row-wise too, and is read right."""
    reads: list[int] = []
    read_json = pa_json.read_json

    def counted(*args: Any, **kwargs: Any) -> pa.Table:
        reads.append(1)
        return read_json(*args, **kwargs)

    monkeypatch.setattr("streams.parsers.jsonl.pa_json.read_json", counted)
    parser = _columnar()
    lines = [_with_bytes(i, str(i)) for i in range(1000)]
    lines[600] = _with_bytes(600, value)
    lines[700] = _with_bytes(700, "7", name=f"size:{value}}}")
    _outcome(parser, lines[:10])  # the plan learns its columns first
    reads.clear()
    events, letters = _outcome(parser, lines)
    assert letters == dead and len(events) == 1000 - len(dead)
    assert len(reads) == 2


def test_several_numbers_no_integer_column_holds_are_each_isolated() -> None:
    parser = _columnar()
    lines = [_with_bytes(i, str(i)) for i in range(200)]
    for at, value in ((5, "1.5"), (50, "1.5"), (120, "7e400"), (199, "0.25")):
        lines[at] = _with_bytes(at, value)
    events, dead = _outcome(parser, lines)  # what parse() gives, line by line
    assert [line for line, _ in dead] == [6, 51, 121, 200] and len(events) == 196
