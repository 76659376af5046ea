"""``--year``: a scanned auth.log / syslog file that runs past New Year.

The given year is that of each file's first BSD line; the file's later lines move to the
next year at each New Year in it (the month falls by six or more), as a person reads the
file. Golden rows with every line's UTC time written out, read whole and in pieces of a
few lines, in UTC and in Europe/Berlin, for both line formats that read syslog headers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import ParseError
from streams.batch import line_pieces
from streams.linebatch import _running_year, line_parser, scan_line_events
from streams.parsers import AuthLogParser
from streams.parsers.syslog import RunningYear

FORMATS = ("authlog", "syslog")
#: The reason each format gives a BSD line whose date does not exist in its year: the
#: timestamp is what is wrong, not the header.
NO_SUCH_DATE = {"authlog": "bad_timestamp", "syslog": "bad_timestamp"}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def logon(stamp: str, user: str = "ann") -> str:
    """An sshd logon: an event of both formats (a template of the syslog one)."""
    return f"{stamp} bastion sshd[7]: Accepted password for {user} from 10.0.0.5 port 2"


# Two New Years from --year 2024, out-of-order lines and lines with a year of their own.
GOLDEN: list[tuple[str, datetime]] = [
    (logon("Dec 30 10:00:00"), utc(2024, 12, 30, 10)),
    (logon("Dec 31 23:59:58"), utc(2024, 12, 31, 23, 59, 58)),
    # New Year.
    (logon("Jan  1 00:00:01"), utc(2025, 1, 1, 0, 0, 1)),
    # A late line of the old year: December, and no second New Year after it.
    (logon("Dec 31 23:59:59"), utc(2024, 12, 31, 23, 59, 59)),
    # Out of order by a second: not a rollover.
    (logon("Jan  1 00:00:00"), utc(2025, 1, 1)),
    # Lines with a year of their own keep it and leave the running year alone.
    (logon("2030-06-15T08:00:00Z"), utc(2030, 6, 15, 8)),
    (
        "<38>1 2019-12-01T00:00:00Z bastion sshd 7 - - Accepted password for ann from "
        "10.0.0.5 port 2",
        utc(2019, 12, 1),
    ),
    (logon("Feb 28 09:00:00"), utc(2025, 2, 28, 9)),
    (logon("Jul 10 12:00:00"), utc(2025, 7, 10, 12)),
    # A January of its own year after July: were it counted, July -> January is New Year.
    (logon("2030-01-02T10:00:00Z"), utc(2030, 1, 2, 10)),
    # Ten days back (the month falls by one): out of order, not a rollover.
    (logon("Jun 30 12:00:00"), utc(2025, 6, 30, 12)),
    (logon("Dec 31 23:00:00"), utc(2025, 12, 31, 23)),
    # The second New Year.
    (logon("Jan  2 03:00:00"), utc(2026, 1, 2, 3)),
    (logon("Mar  1 00:00:00"), utc(2026, 3, 1)),
]

# Europe/Berlin: CET (+1) at New Year; the rolled-over dates get their own year's offsets.
BERLIN: list[tuple[str, datetime]] = [
    (logon("Dec 31 23:30:00"), utc(2024, 12, 31, 22, 30)),
    # 00:30 CET on 1 January 2025 is still 2024 in UTC.
    (logon("Jan  1 00:30:00"), utc(2024, 12, 31, 23, 30)),
    # Summer time began on 30 March in 2025 (31 March in 2024: 11:00Z had 2024 been kept).
    (logon("Mar 30 12:00:00"), utc(2025, 3, 30, 10)),
    # Winter time began on 26 October in 2025 (27 October in 2024: 10:00Z in 2024).
    (logon("Oct 26 12:00:00"), utc(2025, 10, 26, 11)),
    (logon("Dec 31 23:59:00"), utc(2025, 12, 31, 22, 59)),
    (logon("Jan  1 00:01:00"), utc(2025, 12, 31, 23, 1)),
]


def write(path: Path, rows: list[tuple[str, datetime]]) -> Path:
    path.write_text("".join(line + "\n" for line, _ in rows))
    return path


def times(
    fmt: str, paths: list[Path], *, year: int, tz: str = "UTC", size: int = 4 << 20
) -> list[datetime]:
    """The events' times of ``paths`` read in ``size``-byte pieces, one parser for all of
    them, the way the scan reads its files."""
    parser = line_parser(fmt, year=year, tz=tz)
    frames = [
        scan_line_events(path, parser, piece=piece).events.select("ts").collect()
        for path in paths
        for piece in line_pieces(path, size)
    ]
    return pl.concat(frames).get_column("ts").to_list()


def rejects(fmt: str, path: Path, *, year: int) -> list[tuple[int, str]]:
    scan = scan_line_events(path, line_parser(fmt, year=year))
    return scan.rejects.select("line", "reason").collect().rows()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_over_two_new_years_is_dated_as_it_is_read(fmt: str, tmp_path: Path) -> None:
    path = write(tmp_path / "auth.log", GOLDEN)
    assert times(fmt, [path], year=2024) == [ts for _, ts in GOLDEN]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [1, 90, 250, 700])
def test_the_rollover_does_not_depend_on_the_piece_size(
    fmt: str, size: int, tmp_path: Path
) -> None:
    # 1 byte: a piece per line; 90: one or two lines; the file is about 1.2 kB.
    path = write(tmp_path / "auth.log", GOLDEN)
    assert len(list(line_pieces(path, size))) > 1
    assert times(fmt, [path], year=2024, size=size) == [ts for _, ts in GOLDEN]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_file_starts_in_the_given_year(fmt: str, tmp_path: Path) -> None:
    # The scan reads rotated files with one parser: the second file does not go on from
    # the first one's 2026.
    first = write(tmp_path / "auth.log.1", GOLDEN)
    second = write(tmp_path / "auth.log", GOLDEN[:3])
    expected = [ts for _, ts in GOLDEN] + [ts for _, ts in GOLDEN[:3]]
    assert times(fmt, [first, second], year=2024, size=90) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_local_zone_reads_each_year_with_its_own_offsets(fmt: str, tmp_path: Path) -> None:
    path = write(tmp_path / "auth.log", BERLIN)
    expected = [ts for _, ts in BERLIN]
    assert times(fmt, [path], year=2024, tz="Europe/Berlin") == expected
    assert times(fmt, [path], year=2024, tz="Europe/Berlin", size=1) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_seconds_and_minutes_out_of_order_stay_in_their_year(fmt: str, tmp_path: Path) -> None:
    rows = [
        (logon("Mar  3 10:00:05"), utc(2024, 3, 3, 10, 0, 5)),
        (logon("Mar  3 10:00:01"), utc(2024, 3, 3, 10, 0, 1)),
        (logon("Mar  3 09:52:00"), utc(2024, 3, 3, 9, 52)),
        # Across a month end, backwards: still no rollover.
        (logon("Apr  1 00:00:02"), utc(2024, 4, 1, 0, 0, 2)),
        (logon("Mar 31 23:59:50"), utc(2024, 3, 31, 23, 59, 50)),
        (logon("Apr  1 00:00:03"), utc(2024, 4, 1, 0, 0, 3)),
    ]
    path = write(tmp_path / "auth.log", rows)
    assert times(fmt, [path], year=2024) == [ts for _, ts in rows]


@pytest.mark.parametrize("fmt", FORMATS)
def test_feb_29_is_valid_where_the_rollover_puts_it_in_a_leap_year(
    fmt: str, tmp_path: Path
) -> None:
    # From --year 2023, New Year brings 2024, which has a 29 February.
    leap = [
        (logon("Dec 31 10:00:00"), utc(2023, 12, 31, 10)),
        (logon("Feb 29 10:00:00"), utc(2024, 2, 29, 10)),
    ]
    path = write(tmp_path / "leap.log", leap)
    assert times(fmt, [path], year=2023) == [ts for _, ts in leap]
    assert rejects(fmt, path, year=2023) == []
    # From --year 2024, it brings 2025, which has none: a dead letter, and the running year
    # goes on (1 March is 2025's).
    path.write_text(
        "\n".join((logon("Dec 31 10:00:00"), logon("Feb 29 10:00:00"), logon("Mar  1 10:00:00")))
        + "\n"
    )
    assert times(fmt, [path], year=2024) == [utc(2024, 12, 31, 10), utc(2025, 3, 1, 10)]
    assert rejects(fmt, path, year=2024) == [(2, NO_SUCH_DATE[fmt])]
    # As a first line: valid in the given year if it is a leap year, else a dead letter.
    path.write_text(logon("Feb 29 10:00:00") + "\n")
    assert times(fmt, [path], year=2024) == [utc(2024, 2, 29, 10)]
    assert rejects(fmt, path, year=2023) == [(1, NO_SUCH_DATE[fmt])]


def test_a_syslog_feb_29_without_a_leap_year_is_refused_whatever_the_date_today() -> None:
    # Not handed to the template miner as it is, which would give it the year it infers
    # from today (a leap year's in 2028).
    parser = line_parser("syslog", year=2023)
    with pytest.raises(
        ParseError, match="bad_timestamp: out-of-range date: no Feb 29 in 2023: 'Feb 29 10:00"
    ):
        parser.parse(logon("Feb 29 10:00:00"))


def test_without_a_year_each_line_is_dated_from_now_as_before(tmp_path: Path) -> None:
    for fmt in FORMATS:
        assert _running_year(line_parser(fmt)) is None
    parser = line_parser("authlog")
    assert isinstance(parser, AuthLogParser)
    # Read on 2 January 2027: each line the latest year that puts it in the past.
    parser.clock = lambda: utc(2027, 1, 2, 12)
    stamps = ("Dec 31 23:59:58", "Jan  1 00:00:01", "Jan  3 13:00:00", "Jul  1 00:00:00")
    dated = [parser.parse(logon(stamp)) for stamp in stamps]
    assert [event.ts for event in dated if event is not None] == [
        utc(2026, 12, 31, 23, 59, 58),
        utc(2027, 1, 1, 0, 0, 1),
        # 25 hours ahead of now: a year ago.
        utc(2026, 1, 3, 13),
        utc(2026, 7, 1),
    ]


@pytest.mark.parametrize(
    ("stamps", "years"),
    [
        # Dec -> Jan, and twice.
        ([(12, 31, 23, 0, 0), (1, 1, 1, 0, 0)], [2024, 2025]),
        (
            [(12, 1, 0, 0, 0), (1, 1, 0, 0, 0), (12, 1, 0, 0, 0), (1, 1, 0, 0, 0)],
            [2024, 2025, 2025, 2026],
        ),
        # The month falls by six: New Year; by five: lines out of order.
        ([(7, 1, 0, 0, 0), (1, 1, 0, 0, 0)], [2024, 2025]),
        ([(6, 30, 0, 0, 0), (1, 1, 0, 0, 0)], [2024, 2024]),
        # Six months of silence forward is no step back: the same year.
        ([(1, 5, 0, 0, 0), (7, 10, 0, 0, 0), (12, 1, 0, 0, 0)], [2024, 2024, 2024]),
        # A late December line, up to a day before the January line it follows.
        (
            [(12, 31, 12, 0, 0), (1, 1, 10, 0, 0), (12, 31, 10, 0, 0), (1, 1, 11, 0, 0)],
            [2024, 2025, 2024, 2025],
        ),
        # More than a day before it: a December of this year (and the next January rolls).
        (
            [(12, 31, 12, 0, 0), (1, 1, 10, 0, 0), (12, 31, 9, 0, 0), (1, 1, 11, 0, 0)],
            [2024, 2025, 2025, 2026],
        ),
        # A file starting with a late line: its first line is in the given year.
        ([(1, 1, 0, 0, 5), (12, 31, 23, 59, 59), (1, 1, 0, 0, 6)], [2024, 2023, 2024]),
    ],
)  # fmt: skip
def test_running_year_rules(stamps: list[tuple[int, int, int, int, int]], years: list[int]) -> None:
    running = RunningYear(2024)
    assert [running.year_of(*stamp) for stamp in stamps] == years
    running.restart()
    assert running.year_of(*stamps[-1]) == 2024


def test_running_year_takes_a_year_of_1_to_9999() -> None:
    with pytest.raises(ValueError, match=r"1\.\.9999"):
        RunningYear(0)
    # A late line of year 0 does not exist: the line stays in year 1.
    running = RunningYear(1)
    assert [running.year_of(1, 1, 0, 0, 0), running.year_of(12, 31, 23, 0, 0)] == [1, 1]


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(st.sampled_from([line for line, _ in GOLDEN + BERLIN]), min_size=1, max_size=30),
    size=st.integers(min_value=1, max_value=600),
)
def test_any_piece_size_dates_a_file_as_reading_it_whole(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], size: int
) -> None:
    path = tmp_path_factory.mktemp("pieces") / "auth.log"
    path.write_text("".join(line + "\n" for line in lines))
    for fmt in FORMATS:
        whole = times(fmt, [path], year=2024, tz="Europe/Berlin")
        assert times(fmt, [path], year=2024, tz="Europe/Berlin", size=size) == whole
