"""Log formats read line by line for a scan: Windows Security, Linux ``auth.log``, syslog.

The scan reads CERT, LANL and JSON lines column by column with polars; these formats have
no columnar reader: each line goes through the daemon's own line parser, so a scan and the
daemon see the same events in the same log.

=========  ===================================================  ==============================
format     parser                                               what a line is
=========  ===================================================  ==============================
windows    :class:`~streams.parsers.WindowsSecurityParser`      Winlogbeat / ECS JSON of one
                                                                Security event (4624, 4625...)
authlog    :class:`~streams.parsers.AuthLogParser`              an ``auth.log`` / ``secure``
                                                                line (sshd, sudo, su)
syslog     :class:`~streams.parsers.DrainTemplateParser`        any syslog line, its message
                                                                mined into a template
=========  ===================================================  ==============================

Lines are decoded as the daemon's file source decodes them (UTF-8 with invalid bytes
replaced, one trailing ``\\r`` dropped). A line the parser refuses is a rejected line with its
file, 1-based line number, reason and text, as the other scan readers write them; a line the
parser does not model (another event id, another program) and a blank line are skipped.
The events are gathered straight into columns, never kept as a list of
:class:`~streams.event.Event`.

The syslog format's parser learns its templates as it reads, so one parser must read every
piece of every file in order: :func:`line_parser` makes it once per scan and the caller
hands it to each :func:`scan_line_events`. So must a parser given a ``year``: it dates a
file's BSD timestamps from the year of its first line on, one year later after each New
Year in the file (:class:`~streams.parsers.syslog.RunningYear`, restarted at each file's
first piece).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import tzinfo
from pathlib import Path
from typing import Final

import polars as pl

from streams.batch import (
    REJECT_SCHEMA,
    BatchScan,
    LinePiece,
    events_to_frame,
    line_pieces,
    piece_frames,
    without_out_of_range,
)
from streams.errors import ParseError
from streams.event import Event, occurrences
from streams.parsers import AuthLogParser, DrainTemplateParser, Parser, WindowsSecurityParser
from streams.parsers.syslog import RunningYear, SyslogParser, check_year, resolve_tz

#: The formats read line by line, and the daemon parser (``streams.parsers.PARSERS`` name)
#: each one runs.
LINE_FORMATS: Final[dict[str, str]] = {
    "windows": "windows.security",
    "authlog": "linux.auth",
    "syslog": "drain",
}
#: Bytes of a file parsed at once: each line costs some microseconds of Python, so a piece
#: is a fraction of a second of work and its columns a few MB.
LINE_PIECE_BYTES: Final = 4 << 20
#: File names a directory given in each format is searched for (``.gz`` allowed after them;
#: a rotation suffix ``.1`` or ``-20240101`` after the ``auth.log`` / ``syslog`` names).
_DIRECTORY_NAMES: Final[dict[str, re.Pattern[str]]] = {
    "windows": re.compile(r".+\.(?:jsonl|ndjson|json)"),
    "authlog": re.compile(r"(?:auth\.log|secure)(?:\.\d+|-\d{8})?"),
    "syslog": re.compile(r"(?:syslog|messages)(?:\.\d+|-\d{8})?"),
}
_ROTATION = re.compile(r"(?P<base>.+?)(?:\.(?P<number>\d+)|-(?P<date>\d{8}))?")
_LINE = "line"


def line_parser(fmt: str, *, year: int | None = None, tz: tzinfo | str = "UTC") -> Parser:
    """A new parser for a line format (see the module table).

    ``year`` and ``tz`` are the syslog options: the year of each file's first BSD timestamp,
    one more after each New Year in the file (:class:`~streams.parsers.syslog.RunningYear`;
    ``None`` infers each line's year from today, as the daemon does), and the zone of
    timestamps without an offset. A ``ValueError`` names a bad format, year or zone.

    Examples
    --------
    >>> type(line_parser("authlog", year=2026, tz="Europe/Berlin")).__name__
    'AuthLogParser'
    >>> line_parser("csv")
    Traceback (most recent call last):
    ...
    ValueError: unknown line format 'csv': expected 'windows', 'authlog' or 'syslog'
    """
    zone = resolve_tz(tz)
    check_year(year)
    if fmt == "windows":
        return WindowsSecurityParser()
    if fmt == "authlog":
        parser = AuthLogParser(year=year, tz=zone)
        if year is not None:
            parser.running_year = RunningYear(year)
        return parser
    if fmt == "syslog":
        miner = DrainTemplateParser(tz=zone)
        if year is not None:
            miner.running_year = RunningYear(year)
        return miner
    raise ValueError(f"unknown line format {fmt!r}: expected 'windows', 'authlog' or 'syslog'")


def template_miner(parser: Parser) -> DrainTemplateParser | None:
    """The drain template miner of a :func:`line_parser` (``syslog``), else ``None``: what a
    saved scan model keeps, so that a later scan gives the same lines the same template ids.

    Examples
    --------
    >>> template_miner(line_parser("syslog", year=2026)) is not None
    True
    >>> template_miner(line_parser("authlog")) is None
    True
    """
    return parser if isinstance(parser, DrainTemplateParser) else None


def _running_year(parser: Parser) -> RunningYear | None:
    """The year a :func:`line_parser` given a ``year`` dates a file's BSD lines in, else None."""
    if isinstance(parser, DrainTemplateParser | SyslogParser):
        return parser.running_year
    return None


def line_files(directory: Path, fmt: str) -> list[Path]:
    """The files of ``directory`` that a line format reads, oldest rotation first.

    ``windows`` reads ``*.jsonl``, ``*.ndjson`` and ``*.json``; ``authlog`` ``auth.log`` and
    ``secure``; ``syslog`` ``syslog`` and ``messages``; each also with ``.gz``, and the
    syslog names with a rotation suffix (``auth.log.2.gz``, ``auth.log.1``, ``auth.log``;
    ``secure-20240101``, ``secure``), which are read in that order: oldest first, as the
    logs were written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("auth.log", "auth.log.1", "auth.log.2.gz", "auth.log.10.gz", "kern.log"):
    ...     _ = (d / name).write_text("")
    >>> [p.name for p in line_files(d, "authlog")]
    ['auth.log.10.gz', 'auth.log.2.gz', 'auth.log.1', 'auth.log']
    """
    pattern = _DIRECTORY_NAMES[fmt]
    found = [
        path
        for path in directory.iterdir()
        if path.is_file() and pattern.fullmatch(path.name.removesuffix(".gz"))
    ]
    return sorted(found, key=_rotation_order)


def _rotation_order(path: Path) -> tuple[str, int, int, str]:
    """Oldest first: ``NAME.N`` by falling N, then ``NAME-DATE`` by date, then ``NAME``."""
    match = _ROTATION.fullmatch(path.name.removesuffix(".gz"))
    assert match is not None  # the pattern matches any name
    number, dated = match.group("number"), match.group("date")
    if number is not None:
        return match.group("base"), 0, -int(number), ""
    if dated is not None:
        return match.group("base"), 1, 0, dated
    return match.group("base"), 2, 0, ""


def scan_line_events(
    path: Path | str,
    parser: Parser,
    *,
    attrs_keys: Collection[str] | None = None,
    piece: LinePiece | None = None,
) -> BatchScan:
    """The events and rejected lines of one file (or one ``piece`` of it) through ``parser``.

    Parameters
    ----------
    path
        The log file (read decompressed when it is gzip, known by its first bytes).
    parser
        The line parser (:func:`line_parser`); a stateful one (``syslog``'s) keeps learning.
    attrs_keys
        As :func:`streams.batch.scan_events`: ``None`` gives ``attrs`` as JSON object text of
        every attribute, a collection a struct of just those keys (an empty one null text).
    piece
        Only these lines of the file (from :func:`streams.batch.line_pieces`); ``None``
        reads the whole file.

    Returns
    -------
    BatchScan
        Collected frames made lazy (the parse is done by the time it returns): ``events``,
        ``rejects`` and ``judged`` as :func:`streams.batch.scan_events` gives them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "auth.log"
    >>> _ = path.write_text(
    ...     "Nov 27 10:00:00 bastion sshd[8]: Accepted password for ann from 10.0.0.5 port 2\\n"
    ...     "not a syslog line\\n"
    ...     "Nov 27 10:00:02 bastion CRON[9]: (root) CMD (true)\\n")
    >>> scan = scan_line_events(path, line_parser("authlog", year=2026))
    >>> scan.events.select("action", "user", "host").collect().rows()
    [('logon', 'ann', 'bastion')]
    >>> scan.rejects.select("line", "reason", "raw").collect().rows()
    [(2, 'bad_header', 'not a syslog line')]
    """
    path = Path(path)
    pieces = [piece] if piece is not None else line_pieces(path, LINE_PIECE_BYTES)
    events, rejects, judged = piece_frames(
        [parse_piece(str(path), parser, one, attrs_keys) for one in pieces], attrs_keys
    )
    return BatchScan(
        events=events.lazy(),
        rejects=rejects.lazy(),
        files=[path],
        judged=judged.lazy(),
    )


def parse_piece(
    origin: str, parser: Parser, piece: LinePiece, attrs_keys: Collection[str] | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The events (Event columns and ``line``) and the rejected lines of one piece.

    Examples
    --------
    >>> piece = LinePiece(b'{"@timestamp": "2026-11-27T09:00:00Z", "event.code": "4625",'
    ...     b' "host.name": "ws1", "winlog.event_data.TargetUserName": "ann"}\\r\\n[1]\\n',
    ...     first_line=5)
    >>> events, rejects = parse_piece("sec.json", line_parser("windows"), piece, ["logon_type"])
    >>> events.select("action", "user", "line").rows()
    [('logon_failure', 'ann', 5)]
    >>> rejects.rows()
    [('sec.json', 6, 'bad_json', '[1]')]
    """
    data = piece.data
    texts = data.decode("utf-8", errors="replace").split("\n")
    if data.endswith(b"\n") or not data:
        texts.pop()  # the empty text after the last line end
    keys = None if attrs_keys is None else sorted(attrs_keys)
    parsed: list[Event] = []
    numbers: list[int] = []
    rejected: list[tuple[str, int, str, str]] = []
    running_year = _running_year(parser)
    if running_year is not None and piece.first_line == 1:
        # A file's first piece: its first BSD line is in the given year again.
        running_year.restart()
    parse = parser.parse
    for number, raw in enumerate(texts, start=piece.first_line):
        # One trailing CR is the line end's (CRLF), as the daemon's file source reads it.
        text = raw[:-1] if raw.endswith("\r") else raw
        try:
            event = parse(text)
        except ParseError as exc:
            rejected.append((origin, number, exc.reason, text))
            continue
        if event is not None:
            # A line that folds N repeats of a message is N events (rsyslog).
            repeats = occurrences(event)
            numbers.extend([number] * repeats)
            parsed.extend([event] * repeats)
    events = events_to_frame(parsed)
    if keys is not None:
        # The scan's attrs: a struct of the keys the features read (none: a null column).
        attrs = (
            pl.DataFrame(
                {
                    key: pl.Series(key, [e.attrs.get(key) for e in parsed], dtype=pl.String())
                    for key in keys
                }
            )
            .select(pl.struct(keys).alias("attrs"))
            .to_series()
            if keys
            else pl.Series("attrs", [None] * len(parsed), dtype=pl.String())
        )
        events = events.with_columns(attrs)
    events = events.with_columns(pl.Series(_LINE, numbers, dtype=pl.Int64()))
    rejects = pl.DataFrame(rejected, schema=REJECT_SCHEMA, orient="row")
    # A sentinel date (9999-12-31) the scan cannot place in a window: a dead letter.
    return without_out_of_range(origin, piece, events, rejects)
