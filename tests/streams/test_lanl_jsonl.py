"""Golden rows for the LANL auth and JSON-lines parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams import Event, ParseError, read_lines
from streams.parsers import JsonLinesParser, LanlAuthParser, RedTeamRecord, read_redteam

from .conftest import FIXTURES

EPOCH = datetime(2015, 1, 1, tzinfo=UTC)


def test_lanl_golden_rows() -> None:
    events, dead = read_lines(FIXTURES / "lanl" / "auth.txt", LanlAuthParser(EPOCH))
    assert dead == []
    at = [EPOCH + timedelta(seconds=s) for s in range(5)]
    assert events == [
        Event(
            at[1],
            "lanl.auth",
            "auth",
            "ANONYMOUS LOGON",
            "C1250",
            "C586",
            None,
            "success",
            {
                "src_domain": "C586",
                "dst_user": "ANONYMOUS LOGON@C586",
                "auth_type": "NTLM",
                "logon_type": "Network",
                "orientation": "LogOn",
            },
        ),
        Event(
            at[2],
            "lanl.auth",
            "auth",
            "C625$",
            "C625",
            "C625",
            None,
            "success",
            {
                "src_domain": "DOM1",
                "dst_user": "U147@DOM1",
                "auth_type": "Negotiate",
                "logon_type": "Batch",
                "orientation": "LogOn",
            },
        ),
        Event(
            at[3],
            "lanl.auth",
            "auth",
            "U22",
            "C1065",
            "C1065",
            None,
            "failure",
            {"src_domain": "DOM1", "dst_user": "U22@DOM1", "orientation": "TGS"},
        ),
        Event(
            at[4],
            "lanl.auth",
            "auth",
            None,
            None,
            "C457",
            None,
            None,
            {"logon_type": "Network", "orientation": "LogOff"},
        ),
    ]


def test_lanl_default_epoch_is_unix() -> None:
    event = LanlAuthParser().parse("86400,U1@D,U1@D,C1,C2,?,?,TGS,Success")
    assert event is not None and event.ts == datetime(1970, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1,U1@D,U1@D,C1,C2,?,?,TGS", "wrong_field_count"),
        ("-1,U1@D,U1@D,C1,C2,?,?,TGS,Success", "bad_timestamp"),
        ("1.5,U1@D,U1@D,C1,C2,?,?,TGS,Success", "bad_timestamp"),
        ("1,U1@D,U1@D,C1,C2,?,?,TGS,OK", "unknown_value"),
    ],
)
def test_lanl_malformed(line: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        LanlAuthParser().parse(line)
    assert info.value.reason == reason


def test_redteam() -> None:
    records = read_redteam(FIXTURES / "lanl" / "redteam.txt", EPOCH)
    assert records == [
        RedTeamRecord(EPOCH + timedelta(seconds=150885), "U620", "DOM1", "C17693", "C1003"),
        RedTeamRecord(EPOCH + timedelta(seconds=151036), "U748", "DOM1", "C17693", "C305"),
    ]


def test_jsonl_golden_rows() -> None:
    events, dead = read_lines(FIXTURES / "jsonl" / "ecs.jsonl", JsonLinesParser())
    assert dead == []
    assert events == [
        Event(
            datetime(2024, 5, 1, 10, tzinfo=UTC),
            "jsonl",
            "logon",
            "alice",
            "ws-01",
            "dc-01",
            None,
            "success",
            {"event.category": "authentication", "event.dataset": "windows.security"},
        ),
        Event(
            datetime(2024, 5, 1, 10, tzinfo=UTC),
            "jsonl",
            "connect",
            "bob",
            "ws-02",
            "10.0.0.5",
            5120,
        ),
        Event(
            datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC),
            "jsonl",
            "http_download",
            "carol",
            None,
            "example.org",
            77,
        ),
    ]


def test_jsonl_custom_mapping_with_candidates() -> None:
    parser = JsonLinesParser({"user": ["actor", "user.name"], "action": "verb", "ts": "time"})
    event = parser.parse(
        '{"time": "2024-05-01T12:00:00+02:00", "verb": "sudo", "user": {"name": "fallback"}}'
    )
    assert event == Event(datetime(2024, 5, 1, 10, tzinfo=UTC), "jsonl", "sudo", "fallback")
    with pytest.raises(ValueError, match="colour"):
        JsonLinesParser({"colour": "x"})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{oops", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"event": {"action": "x"}}', "missing_field"),
        ('{"@timestamp": "2024-05-01T10:00:00Z"}', "missing_field"),
        ('{"@timestamp": "yesterday", "event.action": "x"}', "bad_timestamp"),
        ('{"@timestamp": true, "event.action": "x"}', "bad_timestamp"),
        ('{"@timestamp": 1, "event.action": "x", "source.bytes": "lots"}', "bad_number"),
        ('{"@timestamp": 1, "event.action": {"a": 1}}', "bad_value"),
    ],
)
def test_jsonl_malformed(line: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        JsonLinesParser().parse(line)
    assert info.value.reason == reason
