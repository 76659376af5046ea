"""Every registered parser survives arbitrary input: an Event, None or a ParseError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import Event, ParseError
from streams.parsers import PARSERS, Parser

# Lines shaped like the real formats, so the fuzzing reaches past the field-count check.
SHAPED = st.lists(
    st.sampled_from(
        [
            "",
            "?",
            "{A}",
            "01/02/2010 06:49:00",
            "Logon",
            "True",
            "12",
            "U1@D",
            "http://x.org/a",
            "Send",
            "WWW Visit",
            "File Copy",
            "Success",
            "a;b",
            "C:\\a(12)",
            '"',
            "id",
            "\ufeffid",
        ]
    )
    | st.text(max_size=12),
    min_size=1,
    max_size=13,
).map(",".join)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["@timestamp", "event", "action", "user.name", "source.bytes", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=8,
).map(json.dumps)


def check(parser: Parser, line: str) -> None:
    try:
        result = parser.parse(line)
    except ParseError as exc:
        assert exc.reason
        return
    assert result is None or isinstance(result, Event)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(line=st.text() | SHAPED | JSONISH)
def test_text_never_crashes(name: str, line: str) -> None:
    check(PARSERS[name](), line)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=100, deadline=None)
@given(data=st.binary())
def test_bytes_never_crash(name: str, data: bytes) -> None:
    check(PARSERS[name](), data.decode("utf-8", errors="replace"))


def test_registry_covers_every_format() -> None:
    assert set(PARSERS) == {
        "cert.logon",
        "cert.device",
        "cert.file",
        "cert.email",
        "cert.http",
        "lanl.auth",
        "jsonl",
    }
