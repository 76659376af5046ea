"""Golden rows for the syslog header reader and the generic ``syslog`` parser."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from streams import Event, ParseError
from streams.parsers import PARSERS, SyslogMessage, SyslogParser, parse_syslog_header

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # RFC 5424, the RFC's own examples (nil PROCID, SD, BOM before the message).
        (
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
            "\ufeff'su root' failed for lonvick on /dev/pts/8",
            SyslogMessage(
                datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC),
                "mymachine.example.com",
                "su",
                None,
                "ID47",
                4,
                2,
                "'su root' failed for lonvick on /dev/pts/8",
                None,
            ),
        ),
        (
            "<165>1 2003-10-11T22:14:15.003000-07:00 192.0.2.1 myproc 8710 - - %% It's time",
            SyslogMessage(
                datetime(2003, 10, 12, 5, 14, 15, 3000, tzinfo=UTC),
                "192.0.2.1",
                "myproc",
                "8710",
                None,
                20,
                5,
                "%% It's time",
            ),
        ),
        (
            '<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 [exampleSDID@32473 iut="3"'
            ' eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
            SyslogMessage(
                datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC),
                "mymachine",
                "evntslog",
                None,
                "ID47",
                20,
                5,
                "",
                '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
                '[examplePriority@32473 class="high"]',
            ),
        ),
        # Escaped quote and bracket inside an SD value; nanoseconds truncated; all nil.
        (
            '<14>1 2026-11-27T10:00:00.123456789+00:00 - - - - [a@1 x="q\\"]\\] y"] hi there',
            SyslogMessage(
                datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC),
                None,
                None,
                None,
                None,
                1,
                6,
                "hi there",
                '[a@1 x="q\\"]\\] y"]',
            ),
        ),
        # RFC 3164 with PRI, the RFC's example.
        (
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            SyslogMessage(
                datetime(2026, 10, 11, 22, 14, 15, tzinfo=UTC),
                "mymachine",
                "su",
                None,
                None,
                4,
                2,
                "'su root' failed for lonvick on /dev/pts/8",
            ),
        ),
        # The auth.log file form: no PRI, space-padded day, app[pid].
        (
            "Nov  7 10:00:00 host sshd[1]: Accepted password for a from 10.0.0.1 port 2 ssh2",
            SyslogMessage(
                datetime(2026, 11, 7, 10, tzinfo=UTC),
                "host",
                "sshd",
                "1",
                None,
                None,
                None,
                "Accepted password for a from 10.0.0.1 port 2 ssh2",
            ),
        ),
        # RFC 3164 from the network without a host: the first token is the tag.
        (
            "<38>Nov 27 10:00:04 sshd[904]: Invalid user test from 198.51.100.4",
            SyslogMessage(
                datetime(2026, 11, 27, 10, 0, 4, tzinfo=UTC),
                None,
                "sshd",
                "904",
                None,
                4,
                6,
                "Invalid user test from 198.51.100.4",
            ),
        ),
        # No tag at all (kernel-style "-- MARK --"): the message is the rest.
        (
            "Nov 27 10:00:00 host -- MARK --",
            SyslogMessage(
                datetime(2026, 11, 27, 10, tzinfo=UTC),
                "host",
                None,
                None,
                None,
                None,
                None,
                "-- MARK --",
            ),
        ),
        # RSYSLOG_FileFormat: ISO 8601 with an offset, microseconds.
        (
            "2026-11-27T10:00:00.123456+01:00 host sshd[1]: msg",
            SyslogMessage(
                datetime(2026, 11, 27, 9, 0, 0, 123456, tzinfo=UTC),
                "host",
                "sshd",
                "1",
                None,
                None,
                None,
                "msg",
            ),
        ),
        # A byte-order mark at the start of a file and a CRLF line end.
        (
            "\ufeffNov 27 10:00:00 h postfix/smtpd[77]: connect\r\n",
            SyslogMessage(
                datetime(2026, 11, 27, 10, tzinfo=UTC),
                "h",
                "postfix/smtpd",
                "77",
                None,
                None,
                None,
                "connect",
            ),
        ),
    ],
)
def test_header_golden(line: str, expected: SyslogMessage) -> None:
    assert parse_syslog_header(line, now=NOW) == expected


def test_bsd_zone_and_explicit_year() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    msg = parse_syslog_header("Jul  1 12:00:00 h a: x", year=2024, tz=berlin)
    # CEST is UTC+2 in July.
    assert msg.ts == datetime(2024, 7, 1, 10, tzinfo=UTC)
    assert parse_syslog_header("Jul  1 12:00:00 h a: x", year=2024, tz="Europe/Berlin") == msg
    msg = parse_syslog_header("Jan  1 00:30:00 h a: x", year=2025, tz=timezone(timedelta(hours=5)))
    assert msg.ts == datetime(2024, 12, 31, 19, 30, tzinfo=UTC)
    # An ISO timestamp without an offset is read in tz too.
    assert parse_syslog_header("2026-01-01T01:00:00 h a: x", tz=berlin).ts == datetime(
        2026, 1, 1, 0, tzinfo=UTC
    )


def test_year_rollover() -> None:
    new_year = datetime(2027, 1, 1, 0, 5, tzinfo=UTC)
    # A December line read just after New Year belongs to the year before...
    assert parse_syslog_header("Dec 31 23:59:00 h a: x", now=new_year).ts.year == 2026
    # ...up to one day ahead of now it is this year (clock skew between machines).
    assert parse_syslog_header("Jan  1 23:00:00 h a: x", now=new_year).ts.year == 2027
    assert parse_syslog_header("Jan  2 01:00:00 h a: x", now=new_year).ts.year == 2026
    # With an explicit year nothing is inferred.
    assert parse_syslog_header("Dec 31 23:59:00 h a: x", year=2027, now=new_year).ts.year == 2027


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("", "no syslog timestamp"),
        ("hello world", "no syslog timestamp"),
        ("<192>Nov 27 10:00:00 h a: x", "PRI above 191"),
        ("<034>Nov 27 10:00:00 h a: x", "malformed <PRI>"),
        ("<34Nov 27 10:00:00 h a: x", "malformed <PRI>"),
        ("Foo 27 10:00:00 h a: x", "unknown month"),
        ("Feb 30 10:00:00 h a: x", "out-of-range"),
        ("Nov 27 25:00:00 h a: x", "out-of-range"),
        ("<34>1 2026-11-27 host app - - - msg", "not an RFC 5424 timestamp"),
        ("<34>1 2026-11-27T10:00:00Z host app -", "RFC 5424 header needs"),
        ("<34>1 2026-11-27T10:00:00Z host  app - - - msg", "RFC 5424 header needs"),
        ("<34>1 2026-11-27T10:00:00Z host app - - x msg", "no structured data"),
        ('<34>1 2026-11-27T10:00:00Z host app - - [a x="1" msg', "unterminated structured"),
        ('<34>1 2026-11-27T10:00:00Z host app - - [a x="1"]msg', "no space after structured"),
        ("2026-13-01T00:00:00Z h a: x", "out-of-range"),
        ("0001-01-01T00:00:00+01:00 h a: x", "out-of-range"),
    ],
)
def test_bad_headers(line: str, detail: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_syslog_header(line, now=NOW)
    assert caught.value.reason == "bad_header"
    assert detail in caught.value.detail


def test_feb_29_in_a_leap_year_only() -> None:
    assert parse_syslog_header("Feb 29 10:00:00 h a: x", year=2024).ts.day == 29
    with pytest.raises(ParseError, match="out-of-range"):
        parse_syslog_header("Feb 29 10:00:00 h a: x", year=2026)


def test_syslog_parser_golden() -> None:
    parser = PARSERS["syslog"](year=2026, tz="Europe/Berlin")
    assert parser.parse("<86>Nov 27 10:00:00 db1 CRON[77]: (root) CMD (run-parts)") == Event(
        datetime(2026, 11, 27, 9, tzinfo=UTC),
        "syslog",
        "syslog.CRON",
        None,
        "db1",
        attrs={
            "app": "CRON",
            "pid": "77",
            "facility": "10",
            "severity": "6",
            "message": "(root) CMD (run-parts)",
        },
    )
    assert parser.parse(
        '<165>1 2026-11-27T10:00:00Z fw01 - - ID9 [x@1 a="b"] ' + "z" * 2000
    ) == Event(
        datetime(2026, 11, 27, 10, tzinfo=UTC),
        "syslog",
        "syslog",
        None,
        "fw01",
        attrs={
            "msgid": "ID9",
            "facility": "20",
            "severity": "5",
            "structured_data": '[x@1 a="b"]',
            "message": "z" * 1024,
        },
    )
    assert parser.parse("  \r\n") is None
    with pytest.raises(ParseError, match="bad_header"):
        parser.parse("not syslog")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"year": 0}, "year must be"),
        ({"year": True}, "year must be"),
        ({"year": "2026"}, "year must be"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_syslog_parser_rejects_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyslogParser(**options)  # type: ignore[arg-type]


def test_syslog_parser_pickles() -> None:
    parser = SyslogParser(year=2025, tz="America/New_York")
    line = "Nov 27 10:00:00 h a: x"
    assert pickle.loads(pickle.dumps(parser)).parse(line) == parser.parse(line)
