"""Syslog headers (RFC 5424, RFC 3164 / BSD, rsyslog's ISO 8601 file form) and a generic
``syslog`` parser.

:func:`parse_syslog_header` splits a line into its header fields and the free-text message;
the program-specific parsers (``linux.auth``, ``drain``) read the message. It accepts:

- RFC 5424: ``<34>1 2026-11-27T10:00:00.123Z host app 123 ID47 [sd id="1"] msg``, with ``-``
  for nil values and an optional byte-order mark before the message;
- RFC 3164 / BSD: ``<34>Nov 27 10:00:00 host app[123]: msg``, with or without ``<PRI>``, as
  ``/var/log/auth.log`` stores it (``Nov  7 10:00:00 host sshd[1]: msg``);
- rsyslog's ``RSYSLOG_FileFormat``: ``2026-11-27T10:00:00.123456+01:00 host sshd[1]: msg``.

BSD timestamps carry neither year nor zone: the caller gives the zone (``tz``) and either a
``year`` or none, in which case the year is inferred from "now" in that zone: the latest of
the next, the current and the previous year that puts the line at most
:data:`ROLLOVER_SLACK` ahead of now. A line a little ahead (a sender whose clock is fast at
midnight on New Year's Eve) keeps its year; a December line read in January is last year's.
A :class:`RunningYear` given as the ``year`` dates the BSD lines of one file read in line
order instead (a scan's ``--year``): the year of its first line, rolled over at New Year.

An RFC 5424 line whose TIMESTAMP is the nil value ``-`` (RFC 5424 6.2.3: the sender has no
clock) is dated at its receipt: now, with ``SyslogMessage.received_ts`` set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.errors import ParseError
from streams.event import Event
from streams.parsers.base import is_blank, strip_eol

#: RFC 5424 timestamp (at most microseconds are kept of a longer fraction).
_ISO_TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?"
_PRI_RE = re.compile(r"<(0|[1-9]\d{0,2})>")
_RFC5424_RE = re.compile(r"([1-9]\d?) ")
_ISO_RE = re.compile(rf"({_ISO_TS})(?: |$)")
_BSD_RE = re.compile(r"([A-Z][a-z]{2}) ([ 0-3]?\d) (\d{2}):(\d{2}):(\d{2})(?: |$)")
_FRACTION_RE = re.compile(r"\.(\d+)")
#: ``app[pid]:`` or ``app:`` as a whole token.
_TAG_RE = re.compile(r"([^\s\[\]:]+)(?:\[([^\]\s]*)\])?:")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_NIL = "-"
_BOM = "\ufeff"
#: A BSD line dated at most this far ahead of now keeps the year that puts it there (clock
#: skew between machines); further ahead, it belongs to an earlier year.
ROLLOVER_SLACK = timedelta(days=1)
#: A date one calendar year later is at least this much later (a DST change shortens it by
#: an hour at most).
_SHORTEST_YEAR = timedelta(days=365, hours=-1)
#: Next year's date can be at most ROLLOVER_SLACK ahead only when this year's is this far
#: behind now (or further).
_NEXT_YEAR_BELOW = ROLLOVER_SLACK - _SHORTEST_YEAR
#: Longest message kept in ``Event.attrs["message"]`` by :class:`SyslogParser`.
MAX_MESSAGE_CHARS = 1024
#: A file's BSD month dropping by at least this much from its line before is New Year
#: (``Dec`` -> ``Jan``, ``Nov`` -> ``Feb``, ``Jul`` -> ``Jan``); a smaller drop is lines out of
#: order (:class:`RunningYear`).
ROLLOVER_MONTHS = 6
#: A line at most this much before the line it follows once put in the previous year is a
#: late line of that year (``Dec 31 23:59:59`` written after ``Jan  1 00:00:01``), not a date
#: of the new year eleven months ahead (:class:`RunningYear`).
LATE_LINE_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    """The header fields of one syslog line and its message.

    ``facility`` and ``severity`` come from ``<PRI>`` and are ``None`` without one; ``pid``
    is a string (RFC 5424 PROCID need not be a number); ``structured_data`` is the raw
    RFC 5424 ``[...]`` text. Nil (``-``) values and absent fields are ``None``.
    ``received_ts`` is true when the line had no time of its own (RFC 5424 nil TIMESTAMP)
    and ``ts`` is the time it was read.

    Examples
    --------
    >>> m = parse_syslog_header("<38>Nov 27 10:00:00 web1 sshd[42]: hello", year=2026)
    >>> m.host, m.app, m.pid, m.facility, m.severity, m.message
    ('web1', 'sshd', '42', 4, 6, 'hello')
    """

    ts: datetime
    host: str | None
    app: str | None
    pid: str | None
    msgid: str | None
    facility: int | None
    severity: int | None
    message: str
    structured_data: str | None = None
    received_ts: bool = False


#: rsyslog's line for repeats of the message before it: ``message repeated N times: [ msg ]``
#: (N more of ``msg``); groups: N, msg.
REPEATED_MESSAGE = re.compile(r"message repeated (\d+) times: \[ ?(.*?) ?\]")


def resolve_tz(tz: tzinfo | str) -> tzinfo:
    """A zone from a ``tzinfo`` or an IANA name (``"UTC"``, ``"Europe/Berlin"``).

    Examples
    --------
    >>> resolve_tz("Europe/Berlin").key, resolve_tz(UTC) is UTC
    ('Europe/Berlin', True)
    """
    if isinstance(tz, tzinfo):
        return tz
    if tz in ("UTC", "utc", "Z"):
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {tz!r} (an IANA name like 'Europe/Berlin')") from None


def parse_iso8601(value: str, tz: tzinfo = UTC) -> datetime:
    """An ISO 8601 date-time in UTC (read in ``tz`` when it has no offset).

    Digits past microseconds are dropped. Raises ``ValueError`` when ``value`` is not a
    date-time or falls outside the representable range once in UTC.

    Examples
    --------
    >>> parse_iso8601("2026-11-27T10:00:00.123456789Z").isoformat()
    '2026-11-27T10:00:00.123456+00:00'
    """
    # fromisoformat in 3.11 takes at most 6 fraction digits: drop the nanoseconds.
    value = _FRACTION_RE.sub(lambda m: "." + m.group(1)[:6], value, count=1)
    ts = datetime.fromisoformat(value)
    try:
        return (ts.replace(tzinfo=tz) if ts.tzinfo is None else ts).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range in UTC") from None


def _bad(detail: str, text: str) -> ParseError:
    return ParseError("bad_header", f"{detail}: {text[:80]!r}")


def _iso(value: str, tz: tzinfo, text: str) -> datetime:
    try:
        return parse_iso8601(value, tz)
    except ValueError:
        raise _bad("invalid or out-of-range timestamp", text) from None


#: Per zone: the UTC span of the year last seen there and that year (a line's "now" falls in
#: it nearly always, which saves a zone conversion per line).
_YEAR_SPANS: dict[tzinfo, tuple[datetime, datetime, int]] = {}


def _local_year(now: datetime, tz: tzinfo) -> int:
    """The year of ``now`` on the calendar of ``tz``."""
    span = _YEAR_SPANS.get(tz)
    if span is not None and span[0] <= now < span[1]:
        return span[2]
    year = now.astimezone(tz).year
    start = _dated(year, 1, 1, 0, 0, 0, tz)
    end = _dated(year + 1, 1, 1, 0, 0, 0, tz)
    if start is not None and end is not None:  # Not for year 1 or 9999.
        _YEAR_SPANS[tz] = (start, end, year)
    return year


def _dated(
    year: int, month: int, day: int, hour: int, minute: int, second: int, tz: tzinfo
) -> datetime | None:
    """A wall-clock time of ``tz`` in UTC; ``None`` for a date that does not exist."""
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        # Feb 29 outside a leap year, a year out of range.
        return None


class RunningYear:
    """The year of each BSD timestamp (``Mmm dd hh:mm:ss``) of one file read in line order.

    A file that runs past New Year goes from ``Dec 31`` to ``Jan  1``: read as a person reads
    it, its January lines are in the year after its December ones. The first line is in
    :attr:`first`; after it, each line is in the year of the line before (the last one read
    in order), except:

    - New Year: a line whose month is :data:`ROLLOVER_MONTHS` (6) or more below the month of
      the line before (``Dec`` -> ``Jan``, ``Jul`` -> ``Jan``) is in the next year, and so
      are the lines after it (a file over two New Years goes through three years). A smaller
      step back (lines out of order by seconds, or ``Jun 30`` after ``Jul 10``) is not;
    - a late line of the old year: a line that, put in the year before, is at most
      :data:`LATE_LINE_SLACK` (a day) before the line before it (``Dec 31 23:59:59`` after
      ``Jan  1 00:00:01``) is in that year; it leaves the running year and month as they
      were, so the ``Jan`` line after it is no second New Year.

    A line's month counts whether or not its day exists (``Feb 29`` outside a leap year is
    still refused by the parser, but a rollover that puts it in a leap year makes it valid;
    past 9999, after a New Year of 9999, the parser refuses each line as ``year_overflow``).
    The years are local-calendar years: the parser reads the wall-clock time in its zone
    (a rolled-over line is the same wall-clock time of the next year, in that year's offset).
    Lines with a year of their own (ISO 8601, RFC 5424) do not go through it and leave it as
    it is. :meth:`restart` starts the next file.

    Parameters
    ----------
    first
        The year of a file's first BSD line (1..9999).

    Examples
    --------
    >>> years = RunningYear(2024)
    >>> [years.year_of(*stamp) for stamp in [(12, 31, 23, 59, 58), (1, 1, 0, 0, 1),
    ...     (12, 31, 23, 59, 59), (1, 1, 0, 0, 2), (1, 1, 0, 0, 0)]]
    [2024, 2025, 2024, 2025, 2025]
    >>> years.restart(); years.year_of(1, 1, 0, 0, 3)
    2024
    """

    __slots__ = ("_last", "first", "year")

    def __init__(self, first: int) -> None:
        check_year(first)
        self.first = first
        #: The year of the last line read in order (not a late line).
        self.year = first
        #: That line's (month, day, hour, minute, second); ``None`` before a file's first.
        self._last: tuple[int, int, int, int, int] | None = None

    def restart(self) -> None:
        """Start a file: its first BSD line is in :attr:`first`."""
        self.year = self.first
        self._last = None

    def year_of(self, month: int, day: int, hour: int, minute: int, second: int) -> int:
        """The year of the next BSD line of the file, its wall-clock date and time given."""
        stamp = (month, day, hour, minute, second)
        last = self._last
        if last is not None:
            if last[0] - month >= ROLLOVER_MONTHS:
                self.year += 1
            elif month - last[0] >= ROLLOVER_MONTHS and self._late(stamp, last):
                return self.year - 1
        self._last = stamp
        return self.year

    def _late(
        self, stamp: tuple[int, int, int, int, int], last: tuple[int, int, int, int, int]
    ) -> bool:
        """Whether ``stamp`` put in the year before is at most a day before ``last``."""
        # Past 9999 (a file over New Year of 9999), the same dates 400 years earlier: the
        # Gregorian calendar repeats itself every 400 years.
        year = self.year if self.year <= MAXYEAR else self.year - 400
        try:
            before = datetime(year - 1, *stamp)
            after = datetime(year, *last)
        except ValueError:  # Feb 29 outside a leap year, year 0, no such day.
            return False
        return timedelta(0) <= after - before <= LATE_LINE_SLACK


def _bsd_time(
    match: re.Match[str],
    year: int | RunningYear | None,
    tz: tzinfo,
    now: datetime | None,
    text: str,
) -> datetime:
    month = _MONTHS.get(match.group(1))
    if month is None:
        raise _bad("unknown month", text)
    day, hour, minute, second = (int(match.group(i)) for i in range(2, 6))
    running = isinstance(year, RunningYear)
    if isinstance(year, RunningYear):
        year = year.year_of(month, day, hour, minute, second)
    if year is not None:
        ts = _dated(year, month, day, hour, minute, second, tz)
        if ts is None:
            raise _undated(year, month, day, running, text)
        return ts
    now = now or datetime.now(UTC)
    # The year is the one on the calendar where the line was written: now in its zone (on
    # 1 January in Auckland it is still 31 December in UTC for 13 hours).
    local_year = _local_year(now, tz)
    # The latest of next, this and last year that is at most ROLLOVER_SLACK ahead of now.
    # Next year's date is a year after this year's: it can only qualify when this year's is
    # (nearly) a year behind now, so most lines cost one date.
    current = _dated(local_year, month, day, hour, minute, second, tz)
    ahead = None if current is None else current - now
    if ahead is None or ahead <= _NEXT_YEAR_BELOW:
        following = _dated(local_year + 1, month, day, hour, minute, second, tz)
        if following is not None and following - now <= ROLLOVER_SLACK:
            return following
    if current is not None and ahead is not None and ahead <= ROLLOVER_SLACK:
        return current
    previous = _dated(local_year - 1, month, day, hour, minute, second, tz)
    if previous is not None and previous - now <= ROLLOVER_SLACK:
        return previous
    raise _bad("invalid or out-of-range timestamp", text)


def _undated(year: int, month: int, day: int, running: bool, text: str) -> ParseError:
    """Why a BSD line has no time in the year given to it: its date does not exist in that
    year (``Feb 29`` outside a leap year), or the year is past 9999, which a
    :class:`RunningYear` reaches at a New Year after 9999 (``year_overflow``: the line is
    fine, the year it was given is not)."""
    if not MINYEAR <= year <= MAXYEAR:
        why = f"the file runs past New Year of {MAXYEAR}" if running else "a year is 1..9999"
        return ParseError("year_overflow", f"year {year} is out of range ({why}): {text[:80]!r}")
    try:
        date(year, month, day)
    except ValueError:
        return ParseError(
            "bad_timestamp",
            f"out-of-range date: no {_MONTH_NAMES[month - 1]} {day} in {year}: {text[:80]!r}",
        )
    # Year 1 or 9999 put past the end of the range by the zone's offset.
    return ParseError("bad_timestamp", f"out-of-range timestamp in UTC: {text[:80]!r}")


def _structured_data(rest: str, text: str) -> tuple[str | None, str]:
    """Split RFC 5424 ``STRUCTURED-DATA [SP MSG]`` into the raw SD (or None) and the message."""
    if rest == _NIL or rest.startswith(_NIL + " "):
        return None, rest[2:]
    if not rest.startswith("["):
        raise _bad("no structured data", text)
    position, in_value = 0, False
    while position < len(rest):
        char = rest[position]
        if in_value:
            if char == "\\":
                position += 1
            elif char == '"':
                in_value = False
        elif char == '"':
            in_value = True
        elif char == "]" and (position + 1 == len(rest) or rest[position + 1] != "["):
            end = position + 1
            if end < len(rest) and rest[end] != " ":
                raise _bad("no space after structured data", text)
            return rest[:end], rest[end + 1 :]
        position += 1
    raise _bad("unterminated structured data", text)


def _nil(value: str) -> str | None:
    return None if value == _NIL else value


def _rfc5424(
    body: str,
    facility: int | None,
    severity: int | None,
    tz: tzinfo,
    now: datetime | None,
    text: str,
) -> SyslogMessage:
    parts = body.split(" ", 5)
    if len(parts) < 6 or "" in parts[:5]:
        raise _bad("RFC 5424 header needs TIMESTAMP HOST APP PROCID MSGID SD", text)
    stamp, host, app, pid, msgid, rest = parts
    received = stamp == _NIL
    if not received and _ISO_RE.fullmatch(stamp) is None:
        raise _bad("not an RFC 5424 timestamp", text)
    structured, message = _structured_data(rest, text)
    ts = (now or datetime.now(UTC)).astimezone(UTC) if received else _iso(stamp, tz, text)
    return SyslogMessage(
        ts,
        _nil(host),
        _nil(app),
        _nil(pid),
        _nil(msgid),
        facility,
        severity,
        message.removeprefix(_BOM),
        structured,
        received,
    )


def _rfc3164_tail(
    ts: datetime, rest: str, facility: int | None, severity: int | None
) -> SyslogMessage:
    """``HOST TAG: MSG`` after the timestamp; a first token that is a tag means no host."""
    host: str | None = None
    first, _, after = rest.partition(" ")
    if first and _TAG_RE.fullmatch(first) is None:
        host, rest = first, after
    tag, _, after = rest.partition(" ")
    match = _TAG_RE.fullmatch(tag)
    if match is None:
        return SyslogMessage(ts, host, None, None, None, facility, severity, rest)
    return SyslogMessage(
        ts, host, match.group(1), match.group(2) or None, None, facility, severity, after
    )


def parse_syslog_header(
    text: str,
    *,
    year: int | RunningYear | None = None,
    tz: tzinfo | str = UTC,
    now: datetime | None = None,
) -> SyslogMessage:
    """Split a syslog line into header fields and message.

    Parameters
    ----------
    text
        One line (a trailing newline and a leading byte-order mark are ignored).
    year
        The year of BSD timestamps; ``None`` infers it from ``now`` (see the module notes);
        a :class:`RunningYear` gives the year of this line of a file read in line order.
    tz
        The zone of timestamps that carry no offset (BSD, offset-less ISO): a ``tzinfo`` or
        an IANA name.
    now
        The instant the year inference compares with, and the time given to a line without
        one (RFC 5424 nil TIMESTAMP); ``None`` is the current time. Timezone-aware.

    Returns
    -------
    SyslogMessage
        With ``ts`` in UTC.

    Raises
    ------
    ParseError
        ``bad_header`` when no header form matches, naming what is wrong; for a BSD
        timestamp given a ``year``, ``bad_timestamp`` when its date does not exist in that
        year (``Feb 29``) or its time is out of range in UTC, and ``year_overflow`` when
        the year is past 9999 (a :class:`RunningYear` from 9999 after a New Year).

    Examples
    --------
    >>> m = parse_syslog_header('<34>1 2026-11-27T10:00:00.123Z mymachine su - ID47 '
    ...                         '[exampleSDID@32473 iut="3"] \\ufeffsu root failed')
    >>> m.ts.isoformat(), m.app, m.pid, m.msgid, m.structured_data, m.message
    ('2026-11-27T10:00:00.123000+00:00', 'su', None, 'ID47', '[exampleSDID@32473 iut="3"]', \
'su root failed')
    >>> parse_syslog_header("Nov  7 10:00:00 host sshd[1]: hi", year=2025).ts.isoformat()
    '2025-11-07T10:00:00+00:00'
    >>> parse_syslog_header("Dec 31 23:00:00 h a: x", now=datetime(2027, 1, 1, tzinfo=UTC)).ts.year
    2026
    >>> m = parse_syslog_header("<38>1 - h sshd - - - hi", now=datetime(2027, 1, 1, tzinfo=UTC))
    >>> m.ts.isoformat(), m.received_ts
    ('2027-01-01T00:00:00+00:00', True)
    """
    if not isinstance(tz, tzinfo):
        tz = resolve_tz(tz)
    line = strip_eol(text).removeprefix(_BOM)
    facility: int | None = None
    severity: int | None = None
    body = line
    pri = _PRI_RE.match(line)
    if pri is not None:
        value = int(pri.group(1))
        if value > 191:
            raise _bad("PRI above 191", text)
        facility, severity = divmod(value, 8)
        body = line[pri.end() :]
    elif line.startswith("<"):
        raise _bad("malformed <PRI>", text)
    version = _RFC5424_RE.match(body)
    if version is not None:
        return _rfc5424(body[version.end() :], facility, severity, tz, now, text)
    iso = _ISO_RE.match(body)
    if iso is not None:
        ts = _iso(iso.group(1), tz, text)
        return _rfc3164_tail(ts, body[iso.end() :], facility, severity)
    bsd = _BSD_RE.match(body)
    if bsd is not None:
        ts = _bsd_time(bsd, year, tz, now, text)
        return _rfc3164_tail(ts, body[bsd.end() :], facility, severity)
    raise _bad("no syslog timestamp (RFC 5424, BSD 'Mmm dd hh:mm:ss' or ISO 8601)", text)


def check_year(year: int | None) -> int | None:
    """Validate a ``year`` parser option (the year BSD timestamps lack); ``None`` infers it.

    Examples
    --------
    >>> check_year(2026), check_year(None)
    (2026, None)
    """
    if year is not None and (
        isinstance(year, bool) or not isinstance(year, int) or not 1 <= year <= 9999
    ):
        raise ValueError(f"year must be a whole number 1..9999, got {year!r}")
    return year


class SyslogParser:
    """Any syslog line as an Event: ``action`` is ``syslog.<app>`` (``syslog`` without one).

    Syslog names no user, so events carry ``user=None`` and ``host`` = the header's host:
    run the features with ``entity = "host"`` on this source. The header's other fields and
    the message (first :data:`MAX_MESSAGE_CHARS` characters) go to ``attrs``.

    Parameters
    ----------
    year
        Year of BSD timestamps; ``None`` infers it from the date in ``tz`` (the year that
        puts the line in the past or at most a day ahead: see the module notes).
    tz
        Zone of timestamps without an offset (an IANA name or ``tzinfo``).
    source
        The Event source.

    Attributes
    ----------
    clock
        Where "now" comes from (the year of BSD timestamps, the time of a line without one,
        marked ``attrs["ts_source"] = "received"``): ``None`` is the system clock; tests set
        a function returning a fixed, timezone-aware time.
    running_year
        When set, the year of BSD timestamps instead of ``year``: the lines are those of one
        file read in line order, the year rolled over at New Year (:class:`RunningYear`; a
        scan's ``--year``, which restarts it at each file's first line). ``None``: ``year``.

    Examples
    --------
    >>> p = SyslogParser(year=2026)
    >>> e = p.parse("<86>Nov 27 10:00:00 db1 CRON[77]: (root) CMD (run-parts /etc/cron.hourly)")
    >>> e.ts.isoformat(), e.action, e.user, e.host, e.attrs["pid"], e.attrs["severity"]
    ('2026-11-27T10:00:00+00:00', 'syslog.CRON', None, 'db1', '77', '6')
    >>> p.clock = lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    >>> e = p.parse("<38>1 - db1 sshd 7 - - no clock here")
    >>> e.ts.isoformat(), e.attrs["ts_source"]
    ('2026-11-27T12:00:00+00:00', 'received')
    """

    # Class attributes, not constructor options: configs cannot set them, and parsers
    # pickled in a checkpoint before they existed still have them.
    clock: Callable[[], datetime] | None = None
    running_year: RunningYear | None = None

    def __init__(
        self, year: int | None = None, tz: tzinfo | str = "UTC", source: str = "syslog"
    ) -> None:
        self.year = check_year(year)
        self.tz = resolve_tz(tz)
        self.source = source

    def _header(self, line: str) -> SyslogMessage | None:
        """The line's syslog header and message; ``None`` for a blank line."""
        if is_blank(line):
            return None
        now = None if self.clock is None else self.clock()
        year = self.year if self.running_year is None else self.running_year
        return parse_syslog_header(line, year=year, tz=self.tz, now=now)

    def parse(self, line: str) -> Event | None:
        """Parse one syslog line; blank lines are skipped."""
        msg = self._header(line)
        if msg is None:
            return None
        attrs = {
            key: str(value)
            for key, value in (
                ("app", msg.app),
                ("pid", msg.pid),
                ("msgid", msg.msgid),
                ("facility", msg.facility),
                ("severity", msg.severity),
                ("structured_data", msg.structured_data),
            )
            if value is not None
        }
        attrs["message"] = msg.message[:MAX_MESSAGE_CHARS]
        if msg.received_ts:
            attrs["ts_source"] = "received"
        action = f"syslog.{msg.app}" if msg.app else "syslog"
        return Event(msg.ts, self.source, action, None, msg.host, attrs=attrs)
