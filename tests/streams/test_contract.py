"""Every registered parser survives arbitrary input: an Event, None or a ParseError."""

from __future__ import annotations

import json
import pickle

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
            "<34>1 2026-11-27T10:00:00Z h sshd 1 - - Accepted password for a from 1.2.3.4 port 2",
            "Nov 27 10:00:00 h sudo: a : TTY=pts/0 ; USER=root ; COMMAND=/bin/id",
            "081109 203615 148 INFO dfs.DataNode: blk_1",
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
            st.sampled_from(
                [
                    "@timestamp",
                    "event",
                    "action",
                    "user.name",
                    "source.bytes",
                    "x",
                    "code",
                    "winlog.event_id",
                    "event_data",
                    "TargetUserName",
                ]
            ),
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
        "syslog",
        "linux.auth",
        "windows.security",
        "drain",
    }


#: One valid line per registered format: each parses to an Event.
SAMPLE_LINES = {
    "cert.logon": "{Q4D5-W4HH44UC-5188LWZK},01/02/2010 02:24:51,JBI1134,PC-0168,Logon",
    "cert.device": "{Q6L2-U1MB71HC-3658UZPP},01/02/2010 07:12:35,HPH0075,PC-2417,R:\\,Connect",
    "cert.file": "{Z8C1-A3PV62XR-3442RYEB},01/02/2010 07:23:14,HPH0075,PC-2417,R:\\a.doc,"
    "File Write,True,False,D0-CF-11-E0 sales report",
    "cert.email": "{A3H7-W8QE25NX-1306WHKH},01/02/2010 07:36:48,BJC0569,PC-5866,a@dtaa.com,,,"
    "b@dtaa.com,Send,24052,,hi",
    "cert.http": "{N4G0-D4EP29TA-4547VGLC},01/02/2010 06:50:37,ACM2278,PC-1459,"
    "http://www.dropbox.com/files/upload.php,WWW Upload,payroll data",
    "lanl.auth": "2,C625$@DOM1,U147@DOM1,C625,C625,Negotiate,Batch,LogOn,Success",
    "jsonl": '{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "logon"}',
    "syslog": "<38>Nov 27 10:00:00 web1 sshd[1]: hello",
    "linux.auth": "Nov 27 10:00:00 web1 sshd[1]: Invalid user x from 10.0.0.1 port 22",
    "windows.security": '{"@timestamp": "2026-11-27T10:00:00Z", "event": {"code": "4624"}}',
    "drain": "081109 203615 148 INFO dfs.DataNode: served block blk_1 to /10.0.0.1",
}


def test_every_format_has_a_sample_line() -> None:
    assert set(SAMPLE_LINES) == set(PARSERS)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_pickled_parser_parses_alike(name: str) -> None:
    """The daemon checkpoints parsers by pickling them: a copy must behave the same."""
    parser = PARSERS[name]()
    first = parser.parse(SAMPLE_LINES[name])
    assert isinstance(first, Event)
    copy = pickle.loads(pickle.dumps(parser))
    assert copy.parse(SAMPLE_LINES[name]) == parser.parse(SAMPLE_LINES[name])
