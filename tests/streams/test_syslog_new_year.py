"""Year-less (BSD) syslog timestamps around New Year, and RFC 5424 lines without a time.

The year is inferred in the parser's zone: the latest year that puts the line at most a day
ahead of now. Golden rows in zones east and west of UTC, in both directions of the change
of year (a line a little ahead of now, and a line of last December read in January).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streams import ParseError
from streams.parsers import AuthLogParser, SyslogParser, parse_syslog_header

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "stamp", "now", "expected"),
    [
        # East of UTC: local New Year comes while UTC is still in the old year.
        # 00:30 on 1 Jan 2027 in Auckland (NZDT, +13) is 2026-12-31T11:30Z.
        (
            "Pacific/Auckland",
            "Jan  1 00:30:00",
            utc(2026, 12, 31, 11, 30),
            utc(2026, 12, 31, 11, 30),
        ),
        # A line written just before local midnight, read just after.
        (
            "Pacific/Auckland",
            "Dec 31 23:59:00",
            utc(2026, 12, 31, 11, 30),
            utc(2026, 12, 31, 10, 59),
        ),
        # Last December read on 2 January (local): the previous year.
        ("Pacific/Auckland", "Dec 31 23:00:00", utc(2027, 1, 1, 12), utc(2026, 12, 31, 10)),
        # A sender 30 s fast at local midnight: still the new year.
        (
            "Pacific/Auckland",
            "Jan  1 00:00:20",
            utc(2026, 12, 31, 10, 59, 50),
            utc(2026, 12, 31, 11, 0, 20),
        ),
        # +14: 09:00 on 1 Jan 2027 is 2026-12-31T19:00Z, read an hour later.
        ("Pacific/Kiritimati", "Jan  1 09:00:00", utc(2026, 12, 31, 20), utc(2026, 12, 31, 19)),
        # +05:30: 05:00 IST on 1 Jan 2027 is 2026-12-31T23:30Z.
        ("Asia/Kolkata", "Jan  1 05:00:00", utc(2026, 12, 31, 23, 40), utc(2026, 12, 31, 23, 30)),
        # UTC: a sender 60 s fast at midnight.
        ("UTC", "Jan  1 00:00:30", utc(2026, 12, 31, 23, 59, 30), utc(2027, 1, 1, 0, 0, 30)),
        ("UTC", "Dec 31 23:59:00", utc(2027, 1, 1, 0, 5), utc(2026, 12, 31, 23, 59)),
        # West of UTC: UTC's New Year comes first; the local date still says 31 December.
        # 23:30 PST (-8) on 31 Dec 2026 is 2027-01-01T07:30Z.
        ("America/Los_Angeles", "Dec 31 23:30:00", utc(2027, 1, 1, 7, 45), utc(2027, 1, 1, 7, 30)),
        (
            "America/Los_Angeles",
            "Jan  1 00:00:30",
            utc(2027, 1, 1, 7, 59, 30),
            utc(2027, 1, 1, 8, 0, 30),
        ),
        # -11: read at 23:30 local on 31 Dec, a line of 23:00.
        ("Pacific/Pago_Pago", "Dec 31 23:00:00", utc(2027, 1, 1, 10, 30), utc(2027, 1, 1, 10)),
        (
            "Pacific/Pago_Pago",
            "Jan  1 00:00:20",
            utc(2027, 1, 1, 10, 59, 50),
            utc(2027, 1, 1, 11, 0, 20),
        ),
        # -03:30 (Newfoundland standard time).
        (
            "America/St_Johns",
            "Jan  1 00:00:10",
            utc(2027, 1, 1, 3, 29, 50),
            utc(2027, 1, 1, 3, 30, 10),
        ),
        # Months old, read on local New Year's Day in Auckland: this (local) year's March is
        # ahead, so last March (NZDT, +13).
        ("Pacific/Auckland", "Mar 15 12:00:00", utc(2026, 12, 31, 11, 30), utc(2026, 3, 14, 23)),
        # Up to a day ahead of now is this year; 25 h ahead is a year ago.
        ("UTC", "Jan  1 23:00:00", utc(2027, 1, 1, 0, 5), utc(2027, 1, 1, 23)),
        ("UTC", "Jan  2 01:00:00", utc(2027, 1, 1, 0, 5), utc(2026, 1, 2, 1)),
        # 29 February: the last leap year that puts it in the past.
        ("UTC", "Feb 29 12:00:00", utc(2028, 3, 1), utc(2028, 2, 29, 12)),
        ("UTC", "Feb 29 12:00:00", utc(2029, 1, 5), utc(2028, 2, 29, 12)),
    ],
)
def test_year_inferred_in_the_zone(
    zone: str, stamp: str, now: datetime, expected: datetime
) -> None:
    msg = parse_syslog_header(f"{stamp} h sshd[1]: x", tz=zone, now=now)
    assert msg.ts == expected
    assert not msg.received_ts


def test_feb_29_without_a_leap_year_in_reach() -> None:
    # 2027 and 2026 have no 29 February, and 2028's is eleven months ahead.
    with pytest.raises(ParseError, match="out-of-range"):
        parse_syslog_header("Feb 29 12:00:00 h a: x", now=utc(2027, 3, 1))


def test_explicit_year_is_not_inferred() -> None:
    msg = parse_syslog_header(
        "Jan  1 00:30:00 h a: x", year=2030, tz="Pacific/Auckland", now=utc(2026, 12, 31, 11, 30)
    )
    assert msg.ts == utc(2029, 12, 31, 11, 30)


ZONES = st.sampled_from(
    [
        "UTC",
        "Pacific/Auckland",
        "Pacific/Kiritimati",
        "Asia/Kolkata",
        "Europe/Berlin",
        "America/Los_Angeles",
        "America/St_Johns",
        "Pacific/Pago_Pago",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    zone=ZONES,
    line_ts=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31)),
    behind=st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(days=363)),
)
def test_any_line_within_a_year_behind_to_a_day_ahead(
    zone: str, line_ts: datetime, behind: timedelta
) -> None:
    """A line written between 363 days before and 23 hours after now gets its own year."""
    tz = ZoneInfo(zone)
    written = line_ts.replace(microsecond=0, tzinfo=UTC)
    local = written.astimezone(tz)
    # Local times that DST makes ambiguous or skips cannot be read back in one way.
    assume(local.replace(tzinfo=None).replace(tzinfo=tz).astimezone(UTC) == written)
    stamp = f"{MONTHS[local.month - 1]} {local.day:2d} {local:%H:%M:%S}"
    msg = parse_syslog_header(f"{stamp} h a: x", tz=zone, now=written + behind)
    assert msg.ts == written


# -- RFC 5424 nil TIMESTAMP: the time of receipt ------------------------------------------------

RECEIVED = utc(2026, 11, 27, 12, 0, 5, 250000)


def test_nil_timestamp_is_the_receive_time() -> None:
    msg = parse_syslog_header(
        "<38>1 - bastion sshd 811 - - Accepted password for ann from 10.0.0.1 port 1 ssh2",
        now=RECEIVED,
    )
    assert (msg.ts, msg.received_ts, msg.host, msg.app, msg.pid, msg.message) == (
        RECEIVED,
        True,
        "bastion",
        "sshd",
        "811",
        "Accepted password for ann from 10.0.0.1 port 1 ssh2",
    )
    # Without a clock given, the line is dated now.
    before = datetime.now(UTC)
    msg = parse_syslog_header("<38>1 - h app - - - hello")
    assert before <= msg.ts <= datetime.now(UTC) and msg.received_ts


def test_nil_timestamp_events_are_marked() -> None:
    auth = AuthLogParser()
    auth.clock = lambda: RECEIVED
    event = auth.parse(
        "<38>1 - bastion sshd 811 - - Accepted password for ann from 10.0.0.1 port 1 ssh2"
    )
    assert event is not None
    assert (event.ts, event.action, event.user, event.host) == (RECEIVED, "logon", "ann", "bastion")
    assert event.attrs == {
        "event": "accepted",
        "method": "password",
        "src_ip": "10.0.0.1",
        "port": "1",
        "program": "sshd",
        "pid": "811",
        "ts_source": "received",
    }
    generic = SyslogParser()
    generic.clock = lambda: RECEIVED
    event = generic.parse('<14>1 - db1 cron - - - [origin ip="10.0.0.9"] job done')
    assert event is not None
    assert (event.ts, event.action, event.host) == (RECEIVED, "syslog.cron", "db1")
    assert event.attrs["ts_source"] == "received"
    # A line with its own time is not marked.
    event = generic.parse("<14>1 2026-11-27T10:00:00Z db1 cron - - - job done")
    assert event is not None
    assert event.ts == utc(2026, 11, 27, 10) and "ts_source" not in event.attrs


def test_parser_clock_gives_the_year() -> None:
    """The parsers' clock is the "now" of the year inference (the review's Auckland line)."""
    parser = AuthLogParser(tz="Pacific/Auckland")
    parser.clock = lambda: utc(2026, 12, 31, 11, 30)
    event = parser.parse("Jan  1 00:30:00 bastion su: (to root) ann on pts/0")
    assert event is not None and event.ts == utc(2026, 12, 31, 11, 30)
    assert "ts_source" not in event.attrs
