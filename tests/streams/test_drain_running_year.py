"""The template miner given a running year (``line_parser("syslog", year=Y)``): it dates BSD
headers itself, as the authlog parser does, with the events, template ids and drain state the
miner gave before, when each BSD stamp was rewritten as the ISO date of its year in the file.
Also the dead letters of a date missing from its year (``Feb 29``) and of a year run past 9999.
"""

from __future__ import annotations

import pickle
import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import Event, ParseError
from streams.linebatch import _running_year, line_parser, template_miner
from streams.parsers import AuthLogParser, DrainTemplateParser, SyslogParser
from streams.parsers.syslog import RunningYear, parse_syslog_header

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
BSD = re.compile(r"(<\d{1,3}>)?([A-Z][a-z]{2}) ([ 0-3]?\d) (\d{2}):(\d{2}):(\d{2})(?= |$)")


def logon(stamp: str, user: str = "ann") -> str:
    return f"{stamp} bastion sshd[7]: Accepted password for {user} from 10.0.0.5 port 2"


def outcome(parse: Callable[[str], Event | None], line: str) -> Event | str | None:
    """The event of a line, or its dead-letter reason."""
    try:
        return parse(line)
    except ParseError as exc:
        return exc.reason


class IsoRewrite:
    """The miner as the scan ran it before it took a year: each BSD stamp rewritten as the
    ISO date of its year in the file, when the rewritten header names a program."""

    def __init__(self, year: int, tz: str) -> None:
        self.miner = DrainTemplateParser(tz=tz)
        self.years = RunningYear(year)

    def parse(self, line: str) -> Event | None:
        match = BSD.match(line)
        if match is not None and match.group(2) in MONTHS:
            pri, name, day, hour, minute, second = match.groups()
            stamp = (MONTHS.index(name) + 1, int(day), int(hour), int(minute), int(second))
            year = self.years.year_of(*stamp)
            try:
                datetime(year, *stamp)
            except ValueError:
                raise ParseError("bad_timestamp", "no such date") from None
            month, day_number = stamp[:2]
            iso = f"{pri or ''}{year:04d}-{month:02d}-{day_number:02d}T{hour}:{minute}:{second}"
            dated = iso + line[match.end() :]
            try:
                tagged = parse_syslog_header(dated, tz=self.miner.tz).app is not None
            except ParseError:
                tagged = False
            if tagged:
                line = dated
        return self.miner.parse(line)


# Syslog lines of one file: a New Year, a late line, lines out of order, <PRI>, a program-less
# header, rsyslog repeats, lines with a year of their own, HDFS and plain text.
LINES = [
    "Dec 30 10:00:00 web1 cron[4]: job 17 done in 3 s",
    "<38>Dec 31 23:59:58 web2 sshd[9]: Failed password for bob from 10.0.0.9 port 22 ssh2",
    "Jan  1 00:00:01 web1 cron[4]: job 18 done in 5 s",
    "Dec 31 23:59:59 web1 kernel: eth0 link up at 1000 Mbps",
    "Jan  1 00:00:00 web3 rsyslogd: message repeated 3 times: [ action 7 suspended ]",
    "Jan  1 00:00:02 web3 no program on this header",
    "2030-06-15T08:00:00Z web1 cron[4]: job 19 done in 1 s",
    "<34>1 2019-12-01T00:00:00Z web2 sshd 7 - - Failed password for ann from 10.0.0.1 port 2",
    "081109 203615 148 INFO dfs.DataNode: block blk_-42 served",
    "Feb 28 09:00:00 web2 cron[4]: job 20 done in 9 s",
    "Jul 10 12:00:00 db1 postgres[88]: checkpoint complete: wrote 41 buffers",
    "Jun 30 12:00:00 db1 postgres[88]: checkpoint complete: wrote 40 buffers",
    "Dec 31 23:00:00 web1 kernel: eth0 link up at 100 Mbps",
    "Jan  2 03:00:00 web1 cron[4]: job 21 done in 2 s",
    "Feb 29 10:00:00 web1 cron[4]: job 22 done in 2 s",
    "Mar 29 02:30:00 web2 cron[4]: job 23 done in 2 s",
    "Oct 25 02:30:00 web2 cron[4]: job 24 done in 2 s",
    "not a syslog line",
    "",
]


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_the_dated_miner_mines_as_the_iso_rewrite_did(tz: str) -> None:
    dated = line_parser("syslog", year=2024, tz=tz)
    before = IsoRewrite(2024, tz)
    results = [outcome(dated.parse, line) for line in LINES]
    assert results == [outcome(before.parse, line) for line in LINES]
    assert isinstance(dated, DrainTemplateParser)
    assert dated.state() == before.miner.state()
    # Not vacuous: a New Year, lines in the years the file gives them, repeats, dead letters.
    events = [result for result in results if isinstance(result, Event)]
    # Years on the calendar of the zone.
    assert [event.ts.astimezone(ZoneInfo(tz)).year for event in events] == [
        2024, 2024, 2025, 2024, 2025, 2030, 2019, 2008, 2025, 2025, 2025, 2025, 2026, 2026, 2026
    ]  # fmt: skip
    assert [result for result in results if isinstance(result, str)] == [
        "bad_timestamp",  # the header without a program, as before
        "bad_timestamp",  # Feb 29 of 2026
        "bad_timestamp",  # no header
    ]
    assert events[4].attrs["repeated"] == "3"
    assert len({event.action for event in events}) == 7


@settings(max_examples=60, deadline=None)
# Not years 1 and 9999, where a time can fall outside the range in UTC: the rewrite then gave
# the line to the miner as it was, which dated it from today (now a bad timestamp, below).
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=40), st.integers(2, 9997))
def test_any_file_is_mined_as_the_iso_rewrite_did(lines: list[str], year: int) -> None:
    dated = line_parser("syslog", year=year, tz="Europe/Berlin")
    assert isinstance(dated, DrainTemplateParser)
    before = IsoRewrite(year, "Europe/Berlin")
    assert [outcome(dated.parse, line) for line in lines] == [
        outcome(before.parse, line) for line in lines
    ]
    assert dated.state() == before.miner.state()


def test_the_syslog_line_parser_is_the_miner_itself() -> None:
    parser = line_parser("syslog", year=2024)
    assert isinstance(parser, DrainTemplateParser)
    assert template_miner(parser) is parser
    assert _running_year(parser) is parser.running_year is not None
    assert parser.running_year.first == 2024
    undated = line_parser("syslog")
    assert isinstance(undated, DrainTemplateParser)
    assert undated.running_year is None and template_miner(undated) is undated


def test_the_running_year_goes_with_a_pickle_but_not_with_the_templates() -> None:
    parser = line_parser("syslog", year=2024)
    assert isinstance(parser, DrainTemplateParser)
    parser.parse(logon("Dec 31 23:00:00"))
    parser.parse(logon("Jan  1 01:00:00"))  # now in 2025
    copy = pickle.loads(pickle.dumps(parser))
    assert copy.running_year is not None and copy.running_year.year == 2025
    assert copy.parse(logon("Jan  2 01:00:00")).ts == datetime(2025, 1, 2, 1, tzinfo=UTC)
    # The templates (what a saved scan model keeps) name no year: a scan with another
    # --year restores them, and dates its lines in its own year.
    state = orjson.loads(zlib.decompress(parser.state()))
    assert "2024" not in orjson.dumps(state).decode() and "year" not in state["config"]
    later = line_parser("syslog", year=2030)
    assert isinstance(later, DrainTemplateParser)
    later.restore(parser.state())
    event = later.parse(logon("Mar  1 10:00:00", user="bob"))
    assert event is not None
    assert (event.ts, event.action) == (datetime(2030, 3, 1, 10, tzinfo=UTC), "template:1")
    # A miner without one (the daemon's) pickles as before: options and templates only.
    assert set(DrainTemplateParser().__getstate__()) == {"options", "state"}


@pytest.mark.parametrize("fmt", ["authlog", "syslog"])
def test_feb_29_outside_a_leap_year_is_a_bad_timestamp(fmt: str) -> None:
    parser = line_parser(fmt, year=2023)
    with pytest.raises(ParseError) as caught:
        parser.parse(logon("Feb 29 10:00:00"))
    assert caught.value.reason == "bad_timestamp"
    assert caught.value.detail.startswith("out-of-range date: no Feb 29 in 2023: 'Feb 29 10:00")
    # In a leap year it is a date like any other.
    event = line_parser(fmt, year=2024).parse(logon("Feb 29 10:00:00"))
    assert event is not None and event.ts == datetime(2024, 2, 29, 10, tzinfo=UTC)


def test_a_fixed_year_refuses_feb_29_as_a_bad_timestamp_too() -> None:
    for parser in (SyslogParser(year=2026), AuthLogParser(year=2026)):
        with pytest.raises(ParseError, match="bad_timestamp: out-of-range date: no Feb 29 in 2026"):
            parser.parse(logon("Feb 29 10:00:00"))


@pytest.mark.parametrize("fmt", ["authlog", "syslog"])
def test_a_new_year_after_9999_is_a_year_overflow(fmt: str) -> None:
    parser = line_parser(fmt, year=9999)
    event = parser.parse(logon("Dec 31 10:00:00"))
    assert event is not None and event.ts == datetime(9999, 12, 31, 10, tzinfo=UTC)
    for stamp in ("Jan  2 00:00:01", "Jan  1 00:00:01"):
        with pytest.raises(ParseError) as caught:
            parser.parse(logon(stamp))
        assert caught.value.reason == "year_overflow"
        assert caught.value.detail.startswith(
            "year 10000 is out of range (the file runs past New Year of 9999): 'Jan "
        )
    # A late line of 9999 is still dated.
    event = parser.parse(logon("Dec 31 23:59:59"))
    assert event is not None and event.ts == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("fmt", ["authlog", "syslog"])
def test_a_time_past_the_range_in_utc_is_a_bad_timestamp(fmt: str) -> None:
    # 23:30 on 31 December 9999 in New York is in year 10000 in UTC.
    parser = line_parser(fmt, year=9999, tz="America/New_York")
    with pytest.raises(ParseError, match="bad_timestamp: out-of-range timestamp in UTC: 'Dec 31"):
        parser.parse(logon("Dec 31 23:30:00"))
    event = parser.parse(logon("Dec 31 18:30:00"))
    assert event is not None and event.ts == datetime(9999, 12, 31, 23, 30, tzinfo=UTC)
    # 00:30 on 1 January of year 1 in Berlin is in year 0 in UTC (the miner once dated it
    # from today instead).
    parser = line_parser(fmt, year=1, tz="Europe/Berlin")
    with pytest.raises(ParseError, match="bad_timestamp: out-of-range timestamp in UTC: 'Jan"):
        parser.parse(logon("Jan  1 00:30:00"))


def test_both_formats_move_the_year_on_the_same_lines() -> None:
    # A <PRI> above 191 is no header: its Jan stamp is no New Year for either format (the
    # ISO rewrite counted it, and dated 2 July in 2025).
    lines = [
        logon("Jul  1 10:00:00"),
        "<200>" + logon("Jan  1 00:00:01"),
        logon("Jul  2 10:00:00"),
        logon("Jan  1 00:00:02"),
    ]
    years = {}
    for fmt in ("authlog", "syslog"):
        parser = line_parser(fmt, year=2024)
        results = [outcome(parser.parse, line) for line in lines]
        years[fmt] = [r.ts.year if isinstance(r, Event) else r for r in results]
    assert years["authlog"] == [2024, "bad_header", 2024, 2025]
    assert years["syslog"] == [2024, "bad_timestamp", 2024, 2025]
