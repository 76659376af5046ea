"""Batch readers: whole log files to polars LazyFrames of Events, for retrospective scans.

The CERT and LANL readers never run Python per row: each file is scanned as lines
(``pl.scan_lines``), split with ``str.splitn`` and mapped with polars expressions that
mirror the line parsers rule for rule (same field counts, same date rule, same reason
order), so a file gives the same events whichever path reads it. Reading lines rather than
CSV columns keeps the exact raw text and 1-based line number of every rejected line. (A CERT
file whose free-text ``content`` is last is read as CSV first, for its clean pieces: a piece
with a failing line is read again as lines, :func:`collect_judged`.)

``attrs`` is a JSON object string; an attribute the line parser would leave out (an empty
value) is written as ``null`` here, and :func:`events_from_frame` drops it again. A scan that
reads only a few attributes asks for them with ``attrs_keys``: ``attrs`` is then a struct of
just those keys (String fields), which costs a fraction of building and re-parsing JSON.

Each file is read once: :attr:`BatchScan.judged` holds every line that is an event or a reject
(with its ``reason``), so a caller that spools it gets both from a single pass. A big CERT,
LANL or JSON-lines file can be read one :class:`LinePiece` at a time (:func:`line_pieces`),
a Parquet file one range of rows at a time: the pass over a whole file holds memory
proportional to the file, a piece only to the piece.

JSON lines are parsed columnar by :meth:`streams.parsers.JsonLinesParser.parse_batch` (Arrow's
JSON reader, the per-line path only for the lines it cannot vouch for), with exactly the
events and dead letters of parsing each line's bytes on its own.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final, Literal

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from streams import actions
from streams.errors import ParseError
from streams.event import EVENT_COLUMNS, POLARS_EVENT_SCHEMA, Event
from streams.parsers.base import BLANK_CHARS
from streams.parsers.cert import (
    ATTACHMENT_SIZE_PATTERN,
    CERT_BOOLEANS,
    CERT_DATE_FORMAT,
    CERT_DATE_LENGTH,
    CERT_KINDS,
    DEVICE_ACTIVITY,
    EMAIL_ACTIVITY,
    FILE_ACTIVITY,
    HTTP_ACTIVITY,
    LOGON_ACTIVITY,
    NUMBER_PATTERN,
    URL_HOST_PATTERN,
    CertLayout,
    looks_like_header,
)
from streams.parsers.jsonl import JsonLinesParser
from streams.parsers.lanl import (
    LANL_AUTH_COLUMNS,
    LANL_EPOCH,
    LANL_OUTCOMES,
    LANL_TIME_PATTERN,
    LANL_UNKNOWN,
)
from streams.sources.base import RawRecord
from streams.sources.blocks import RecordBlock

logger = logging.getLogger(__name__)

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "line": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
}
CERT_FILE_KINDS: tuple[str, ...] = ("logon", "device", "file", "email", "http")
JSONL_SUFFIXES: tuple[str, ...] = (".jsonl", ".ndjson", ".json")

_RAW = "raw"
_LINE = "line"
_REASON = "reason"
_FILE = "file"
_FAILED = "failed"
#: An ``id`` field that reads "id" once byte-order marks are dropped, surrounding white space
#: stripped and case folded: a header line repeated inside a file. A regular expression
#: tests that without building three copies of every id.
_HEADER_ID_PATTERN = r"^[\s\x{feff}]*[iI]\x{feff}*[dD][\s\x{feff}]*$"


#: The event times a batch read (the scan) keeps: a month inside what a datetime holds at each
#: end, since the scan's windows, slices and plots reach past the events' own times. An event
#: dated outside it (a sentinel such as ``9999-12-31`` or ``0001-01-01`` read as its time) is a
#: rejected line, reason :data:`OUT_OF_RANGE`. The daemon rejects the same way what is dated
#: before the range (a sentinel as a stream's first line, when nothing is late yet); at the
#: other end its own bound, ``max_future`` past the wall clock, comes first.
BATCH_TIME_RANGE: Final = (datetime(1, 2, 1, tzinfo=UTC), datetime(9999, 12, 1, tzinfo=UTC))
#: The reason of a line whose event time is outside :data:`BATCH_TIME_RANGE`.
OUT_OF_RANGE: Final = "timestamp_out_of_range"


def _inside_time_range(ts: pl.Expr) -> pl.Expr:
    """Whether event times are inside :data:`BATCH_TIME_RANGE` (null for a null time)."""
    lo, hi = BATCH_TIME_RANGE
    return ts.is_between(pl.lit(lo), pl.lit(hi), closed="left")


def _with_time_range(
    checks: Sequence[tuple[pl.Expr, str]], columns: Mapping[str, pl.Expr]
) -> list[tuple[pl.Expr, str]]:
    """``checks`` and, last (a line failing another check keeps that reason), the time range's."""
    return [*checks, (~_inside_time_range(columns["ts"]), OUT_OF_RANGE)]


def without_out_of_range(
    origin: str, piece: LinePiece, events: pl.DataFrame, rejects: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``events`` (with their ``line``) of one piece parsed line by line, less those dated
    outside :data:`BATCH_TIME_RANGE`, which join ``rejects`` (in line order) with their
    line's text from ``piece``: the time-range check of the readers that do not go through
    :func:`_finish` (JSON lines, the line formats of :mod:`streams.linebatch`).

    Examples
    --------
    >>> piece = LinePiece(b"a\\nb\\n", first_line=3)
    >>> events = pl.DataFrame({"ts": [datetime(2024, 1, 1, tzinfo=UTC),
    ...                               datetime(9999, 12, 31, tzinfo=UTC)], "line": [3, 4]})
    >>> none = pl.DataFrame(schema=REJECT_SCHEMA)
    >>> kept, rejected = without_out_of_range("f", piece, events, none)
    >>> kept.get_column("line").to_list(), rejected.rows()
    ([3], [('f', 4, 'timestamp_out_of_range', 'b')])
    """
    outside = events.select((~_inside_time_range(pl.col("ts"))).fill_null(False)).to_series()
    if not outside.any():
        return events, rejects
    lines = piece.data.split(b"\n")
    numbers = events.filter(outside).get_column(_LINE).unique(maintain_order=True).to_list()
    texts = [
        lines[number - piece.first_line].decode("utf-8", errors="replace").removesuffix("\r")
        for number in numbers
    ]
    dated = pl.DataFrame(
        {_FILE: [origin] * len(numbers), _LINE: numbers, _REASON: OUT_OF_RANGE, _RAW: texts},
        schema=REJECT_SCHEMA,
    )
    return events.filter(~outside), pl.concat([rejects, dated]).sort(_LINE, maintain_order=True)


@dataclass
class BatchScan:
    """The events and the rejected lines of a set of log files, both lazy.

    Attributes
    ----------
    events
        Exactly the :data:`streams.event.POLARS_EVENT_SCHEMA` columns, valid rows only.
    rejects
        ``file`` (str), ``line`` (int64, 1-based in its file), ``reason``, ``raw``.
    files
        The files actually read, in reading order.
    judged
        Events and rejects of the same lines in one frame, to read each file once: the
        event columns (meaningful only where ``reason`` is null), then ``reason`` (null for an
        event), ``file``, ``line`` and ``raw`` (``file`` and ``raw`` set on rejects only).
        ``events`` and ``rejects`` are this frame filtered on ``reason``.
    checked
        Every line's event columns and ``failed`` (bool: whether any check fails, as for a
        blank line), unfiltered; ``None`` where a reader has no cheaper form than ``judged``.
        Where no line fails, its event columns are exactly those of ``judged``, without the
        filter and the reason that cost a pass over every column. :func:`collect_judged`
        reads it first.

    Examples
    --------
    >>> scan = BatchScan(pl.LazyFrame(schema=POLARS_EVENT_SCHEMA),
    ...                  pl.LazyFrame(schema=REJECT_SCHEMA), [])
    >>> scan.events.collect().columns == list(POLARS_EVENT_SCHEMA)
    True
    """

    events: pl.LazyFrame
    rejects: pl.LazyFrame
    files: list[Path] = field(default_factory=list)
    judged: pl.LazyFrame | None = None
    checked: pl.LazyFrame | None = None


@dataclass(frozen=True)
class LinePiece:
    """Whole lines of a file, read into memory, the 1-based number of the first one and the
    byte offset of its start in the file.

    Examples
    --------
    >>> piece = LinePiece(b"a,b\\n", first_line=7)
    >>> piece.first_line, piece.data.count(b"\\n"), piece.offset
    (7, 1, 0)
    """

    data: bytes
    first_line: int
    offset: int = 0


#: The first two bytes of a gzip stream.
GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """Whether the file is gzip-compressed, known by its first bytes (whatever its name).

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "logs.jsonl"
    >>> _ = path.write_bytes(gzip.compress(b"{}\\n"))
    >>> is_gzip(path), is_gzip(path.with_name("none"))
    (True, False)
    """
    # Only regular files: opening a pipe here would block for a writer, and reading its
    # first bytes would take them from the reader that follows.
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            return handle.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    except OSError:
        return False


def open_log(path: Path) -> BinaryIO:
    """A log file's bytes, decompressed when :func:`is_gzip` (a pipe is read as it comes)."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def line_pieces(path: Path, size: int) -> Iterator[LinePiece]:
    """The lines of ``path`` in pieces of about ``size`` bytes, each ending at a line end.

    A piece is the next ``size`` bytes and the rest of the line its last byte is in (all of
    the rest of the file when no line end follows). A gzip file (:func:`is_gzip`) is read
    decompressed, its offsets counted in the decompressed bytes; a corrupt or truncated one
    raises :class:`ValueError` naming it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = path.write_bytes(b"aaaa\\nbb\\ncc\\nd")
    >>> [(p.data, p.first_line, p.offset) for p in line_pieces(path, 4)]
    [(b'aaaa\\n', 1, 0), (b'bb\\ncc\\n', 2, 5), (b'd', 4, 11)]
    """
    if size < 1:
        raise ValueError(f"piece size {size}: must be positive")
    try:
        yield from _line_pieces(path, size)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        # Only a decompression raises these.
        raise ValueError(f"{path}: the gzip data is corrupt or truncated ({exc})") from None


def _line_pieces(path: Path, size: int) -> Iterator[LinePiece]:
    first_line = 1
    offset = 0
    # Read, not mapped: a file truncated while it is read (copytruncate rotation) would make a
    # mapped read fault (SIGBUS) instead of ending early.
    with open_log(path) as handle:
        # A gzip stream seeks back by decompressing again from its start: read it forward.
        seekable = handle.seekable() and not isinstance(handle, gzip.GzipFile)
        while True:
            if seekable:
                # The piece's end is found first by a short read past its size-th byte, so
                # the piece is read into one buffer: appending the rest of its last line to
                # a read of ``size`` bytes would copy the whole piece once more.
                end = _line_end_after(handle, offset + size - 1)
                handle.seek(offset)
                data = handle.read() if end is None else handle.read(end - offset)
            else:
                data = handle.read(size)
                if data and not data.endswith(b"\n"):
                    data += handle.readline()
            if not data:
                return
            yield LinePiece(data, first_line, offset)
            first_line += _count_line_ends(data)
            offset += len(data)


#: Bytes read at a time while looking for the line end that closes a piece.
_PROBE_BYTES = 1 << 14
#: Bytes compared at once when counting line ends: small enough for a reused buffer.
_COUNT_BYTES = 1 << 20


def _line_end_after(handle: BinaryIO, position: int) -> int | None:
    """The offset just after the first line end at or after ``position``; ``None`` at EOF."""
    handle.seek(position)
    while block := handle.read(_PROBE_BYTES):
        found = block.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(block)
    return None


def _count_line_ends(data: bytes) -> int:
    """``data.count(b"\\n")``, compared a slice at a time with numpy (about 2.5 times faster).

    Examples
    --------
    >>> _count_line_ends(b"a\\nb\\n\\nc"), _count_line_ends(b"")
    (3, 0)
    """
    codes = np.frombuffer(data, dtype=np.uint8)
    return sum(
        int(np.count_nonzero(codes[start : start + _COUNT_BYTES] == 0x0A))
        for start in range(0, len(codes), _COUNT_BYTES)
    )


def _concat(frames: list[pl.LazyFrame], schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    if not frames:
        return pl.LazyFrame(schema=dict(schema))
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


#: The reason of a CERT or LANL line whose bytes are not valid UTF-8 (read from a piece).
INVALID_UTF8 = "invalid_utf8"


def undecodable_lines(piece: LinePiece) -> tuple[LinePiece, list[int]]:
    """The piece with invalid UTF-8 replaced by U+FFFD, and the numbers of the lines that held any.

    Nearly every piece is valid UTF-8: one validation of the whole piece by Arrow (no copy,
    about six times faster than a decode) settles it and the piece comes back as it is.
    Only a piece that fails is searched, from one decoding error to the next (a line end
    always ends an invalid sequence, so each error lies in one line), and decoded again
    with replacement.

    Examples
    --------
    >>> piece = LinePiece(b"a,b\\nc\\xff,d\\ne\\n", first_line=10)
    >>> fixed, bad = undecodable_lines(piece)
    >>> bad, fixed.data
    ([11], b'a,b\\nc\\xef\\xbf\\xbd,d\\ne\\n')
    >>> undecodable_lines(LinePiece("é\\n".encode(), 1))[1]
    []
    """
    data = piece.data
    if _is_utf8(data):
        return piece, []
    view = memoryview(data)
    bad: list[int] = []
    start = 0  # where the part not yet known to be valid begins
    number = piece.first_line  # the number of the line that starts at ``start``
    while start < len(data):
        try:
            str(view[start:], "utf-8")
        except UnicodeDecodeError as exc:
            error = start + exc.start
        else:
            break
        line_start = data.rfind(b"\n", start, error) + 1
        number += data.count(b"\n", start, line_start)
        bad.append(number)
        line_end = data.find(b"\n", error)
        if line_end < 0:
            break
        start = line_end + 1
        number += 1
    if not bad:
        return piece, []
    fixed = data.decode("utf-8", errors="replace").encode("utf-8")
    return LinePiece(fixed, piece.first_line, piece.offset), bad


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8, checked by Arrow over the bytes in place."""
    offsets = pa.array([0, len(data)], pa.int64()).buffers()[1]
    text = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _invalid_utf8_checks(bad_lines: Sequence[int]) -> list[tuple[pl.Expr, str]]:
    """The first check of a piece with undecodable lines (none for a valid piece)."""
    if not bad_lines:
        return []
    return [(pl.col(_LINE).is_in(pl.Series(bad_lines, dtype=pl.Int64()).implode()), INVALID_UTF8)]


def _scan_lines(path: Path, lossy_utf8: bool, piece: LinePiece | None = None) -> pl.LazyFrame:
    """Lines of a file or a piece of it: 1-based numbers (``line``) and text (``raw``)."""
    source: Path | bytes = path if piece is None else piece.data
    first_line = 1 if piece is None else piece.first_line
    if lossy_utf8:
        # A CSV reader with a separator that never occurs and no quoting reads whole
        # lines, and can replace invalid UTF-8; it is about twice as slow as scan_lines.
        frame = pl.scan_csv(
            source,
            has_header=False,
            separator="\x00",
            quote_char=None,
            encoding="utf8-lossy",
            schema={_RAW: pl.String()},
            truncate_ragged_lines=True,
            empty_string_is_null=False,
            row_index_name=_LINE,
            row_index_offset=first_line,
        ).with_columns(pl.col(_RAW).fill_null(""))
    else:
        frame = pl.scan_lines(source, name=_RAW, row_index_name=_LINE, row_index_offset=first_line)
    return frame.with_columns(pl.col(_LINE).cast(pl.Int64()))


def _first_line(path: Path) -> str:
    with open_log(path) as handle:
        return handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")


def _split(names: Sequence[str], exact: bool) -> tuple[list[pl.Expr], pl.Expr]:
    """Split ``raw`` on commas into one column per name, and say if the field count is right.

    With ``exact`` a field beyond the last name lands in a ``__extra`` column (a wrong field
    count); otherwise the last name is the CERT ``content`` column, which may hold any number
    of commas and which no mapping reads: it is not split out at all (copying it would cost
    about a quarter of the split), and the count holds when the line is longer than the other
    fields and their commas, that is when a comma follows them.
    """
    if exact:
        cols = [f"c_{n}" for n in names]
        fields = [*cols, "__extra"]
    else:
        cols = [f"c_{n}" for n in names[:-1]]
        fields = cols
    # split_exact keeps only the text up to the next comma in its last field.
    split = pl.col(_RAW).str.split_exact(",", len(fields) - 1).struct.rename_fields(fields)
    count_ok = pl.col(cols[-1]).is_not_null()
    if exact:
        count_ok = count_ok & pl.col("__extra").is_null()
    else:
        split_bytes = pl.sum_horizontal(
            [pl.col(name).str.len_bytes().cast(pl.Int64()) for name in cols]
        ) + (len(cols) - 1)
        count_ok = count_ok & (pl.col(_RAW).str.len_bytes().cast(pl.Int64()) > split_bytes)
    return [split.alias("__fields")], count_ok


def _reason(checks: Sequence[tuple[pl.Expr, str]]) -> pl.Expr:
    """The first failing check's reason, null when every check passes."""
    reason: pl.Expr = pl.lit(None, pl.String())
    # Built from the last check backwards so the first failing check wins.
    for condition, code in reversed(checks):
        reason = pl.when(condition).then(pl.lit(code)).otherwise(reason)
    return reason.alias(_REASON)


def _vocabulary_checks(
    column: pl.Expr, vocabulary: Mapping[str, object]
) -> list[tuple[pl.Expr, str]]:
    return [
        (column == "", "missing_field"),
        (~column.is_in(list(vocabulary)), "unknown_value"),
    ]


def _mapped(column: pl.Expr, vocabulary: Mapping[str, str]) -> pl.Expr:
    """``vocabulary[column]``, null for any other value (a null one included).

    A chain of equality tests: for the two to four values of a CERT or LANL vocabulary it
    costs about a third of ``replace_strict``'s hash lookup per row.
    """
    mapped: pl.Expr = pl.lit(None, pl.String())
    for value, name in reversed(list(vocabulary.items())):
        mapped = pl.when(column == value).then(pl.lit(name, pl.String())).otherwise(mapped)
    return mapped


def _non_empty(column: pl.Expr) -> pl.Expr:
    return pl.when(column != "").then(column)


def attrs_dtype(keys: Collection[str]) -> pl.DataType:
    """The dtype of ``attrs`` in a scan that asked for ``keys`` (JSON text when none).

    Examples
    --------
    >>> attrs_dtype(["attachments"])
    Struct({'attachments': String})
    >>> attrs_dtype([])
    String
    """
    if not keys:
        return pl.String()
    return pl.Struct({key: pl.String() for key in sorted(keys)})


def _attrs(values: Mapping[str, pl.Expr], keys: Collection[str] | None) -> pl.Expr:
    if keys is None:
        return pl.struct([v.alias(k) for k, v in values.items()]).struct.json_encode()
    if not keys:
        return pl.lit(None, pl.String())
    # A struct of only the keys asked for, in a fixed order so every file's frame has the
    # same dtype; a key this file kind does not have is null, as in the JSON form.
    null = pl.lit(None, pl.String())
    return pl.struct([values.get(key, null).cast(pl.String()).alias(key) for key in sorted(keys)])


@dataclass(frozen=True)
class _Frames:
    events: pl.LazyFrame
    rejects: pl.LazyFrame
    judged: pl.LazyFrame
    checked: pl.LazyFrame | None = None


def _finish(
    frame: pl.LazyFrame,
    checks: Sequence[tuple[pl.Expr, str]],
    columns: Mapping[str, pl.Expr],
    path: Path,
    skip: pl.Expr | None = None,
) -> _Frames:
    """Split a mapped frame into events (all checks pass) and rejects (not blank/skipped)."""
    checks = _with_time_range(checks, columns)
    unjudged = frame
    frame = frame.with_columns(_reason(checks))
    event_columns = _event_columns(columns)
    is_event = pl.col(_REASON).is_null()
    events = frame.filter(is_event).select(event_columns)
    # The blank and repeated-header tests read only failed lines (null elsewhere), so the
    # valid ones, nearly all of them, cost neither a strip nor a regex match.
    failed_raw = pl.when(~is_event).then(pl.col(_RAW))
    not_blank = failed_raw.str.strip_chars(BLANK_CHARS) != ""
    keep = (~is_event & not_blank).fill_null(False)
    if skip is not None:
        keep = keep & ~skip.fill_null(False)
    rejects = frame.filter(keep).select(
        pl.lit(str(path)).alias(_FILE),
        pl.col(_LINE),
        pl.col(_REASON),
        pl.col(_RAW),
    )
    # The raw text and the file name only where a line is rejected: an event row then
    # carries two nulls, not a copy of its line.
    judged = frame.filter(is_event | keep).select(
        *event_columns,
        pl.col(_REASON),
        pl.when(~is_event).then(pl.lit(str(path))).alias(_FILE),
        pl.col(_LINE),
        pl.when(~is_event).then(pl.col(_RAW)).alias(_RAW),
    )
    return _Frames(events, rejects, judged, _checked(unjudged, checks, columns))


def _event_columns(columns: Mapping[str, pl.Expr]) -> list[pl.Expr]:
    """The event columns in schema order, cast to the event schema (``attrs`` as built)."""
    return [
        (columns[name] if name == "attrs" else columns[name].cast(POLARS_EVENT_SCHEMA[name])).alias(
            name
        )
        for name in EVENT_COLUMNS
    ]


def _checked(
    frame: pl.LazyFrame, checks: Sequence[tuple[pl.Expr, str]], columns: Mapping[str, pl.Expr]
) -> pl.LazyFrame:
    """:attr:`BatchScan.checked`: every line's event columns and whether any check fails."""
    # Whether any check fails, without the reason: a few boolean operations instead of a
    # chain of string columns, for checked, which is read only where no line fails.
    failed = pl.any_horizontal([condition for condition, _ in checks]).fill_null(False)
    return frame.select(*_event_columns(columns), failed.alias(_FAILED))


#: Where the host of a plain URL starts: after ``http://`` or ``https://`` and one leading
#: ``www.``. A URL is plain when the text from there to the first ``/`` (or the end) is all
#: ``_PLAIN_HOST_PATTERN``; then ``URL_HOST_PATTERN`` captures the same text (no user info,
#: port, query or fragment can precede the first ``/``), already lower case and, less the
#: ``www.``, what the line parser keeps. A host of ``www`` without a dot is not stripped, as
#: ``strip_prefix("www.")`` would not strip it either.
_PLAIN_URL_STARTS: tuple[tuple[str, int], ...] = (
    ("http://www.", 11),
    ("http://", 7),
    ("https://www.", 12),
    ("https://", 8),
)
_PLAIN_HOST_PATTERN = r"^[a-z0-9.\-]*$"
_PLAIN_HOST = "__plain_host"


def _with_url_host(frame: pl.LazyFrame, url: pl.Expr, name: str) -> pl.LazyFrame:
    """Add column ``name``: the host of ``url`` as the line parser gives it (lower case, no www.).

    The host is what ``URL_HOST_PATTERN`` captures. Nearly every proxy log URL is plain,
    ``http://host/...`` with a lower-case host: its host is cut out by a prefix test, a
    ``/`` search and a slice, and checked by a pattern without captures over the host alone,
    about half the cost of one capturing pattern over the URL. The general pattern then reads
    only the other URLs (a null input is skipped). The candidate host is a materialised
    column because a polars expression used twice is computed twice.
    """
    start: pl.Expr = pl.lit(None, pl.Int64())
    for prefix, length in reversed(_PLAIN_URL_STARTS):
        start = (
            pl.when(url.str.starts_with(prefix)).then(pl.lit(length, pl.Int64())).otherwise(start)
        )
    host = pl.col(_PLAIN_HOST)
    # A null length (no "/") slices to the end.
    candidate = host.str.slice(0, host.str.find("/", literal=True))
    # Once the candidate is replaced by the plain host (null when the URL is not plain).
    other = (
        pl.when(host.is_null())
        .then(url)
        .str.extract(URL_HOST_PATTERN, 1)
        .str.to_lowercase()
        .str.strip_prefix("www.")
    )
    return (
        frame.with_columns(url.str.slice(start).alias(_PLAIN_HOST))
        .with_columns(candidate.alias(_PLAIN_HOST))
        .with_columns(pl.when(host.str.contains(_PLAIN_HOST_PATTERN)).then(host).alias(_PLAIN_HOST))
        .with_columns(pl.coalesce(host, other).alias(name))
        .drop(_PLAIN_HOST)
    )


def _cert_frames(
    path: Path,
    kind: str,
    lossy_utf8: bool,
    attrs_keys: Collection[str] | None,
    piece: LinePiece | None = None,
    bad_lines: Sequence[int] = (),
) -> _Frames:
    first = _first_line(path)
    has_header = looks_like_header(first.split(",", 1)[0])
    try:
        layout = (
            CertLayout.from_header(kind, first.split(","))
            if has_header
            else CertLayout.default(kind)
        )
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    logger.info("reading %s as CERT %s (%s layout)", path, kind, layout.release)
    frame = _scan_lines(path, lossy_utf8, piece)
    header_here = has_header and (piece is None or piece.first_line == 1)
    if header_here:
        # Only the piece that holds the first line: a filter copies every line's text.
        frame = frame.filter(pl.col(_LINE) > 1)
    split, count_ok = _split(layout.header, exact=not layout.content_last)
    frame = frame.with_columns(split).unnest("__fields")
    frame, checks, columns = _cert_events(frame, kind, layout, count_ok, attrs_keys, bad_lines)
    # A header repeated inside a file (files concatenated) is skipped, as the line parser does;
    # only failed lines are matched (a header line fails the date check).
    skip = (
        pl.when(pl.col(_REASON).is_not_null()).then(pl.col("c_id")).str.contains(_HEADER_ID_PATTERN)
    )
    frames = _finish(frame, checks, columns, path, skip=skip)
    if layout.content_last and not bad_lines and not lossy_utf8:
        source: Path | bytes = path if piece is None else piece.data
        frames = replace(
            frames, checked=_cert_checked(source, kind, layout, attrs_keys, header_here)
        )
    return frames


def _cert_checked(
    source: Path | bytes,
    kind: str,
    layout: CertLayout,
    attrs_keys: Collection[str] | None,
    skip_header: bool,
) -> pl.LazyFrame:
    """:attr:`BatchScan.checked` of a CERT file whose ``content`` is last, read as CSV.

    Polars' CSV reader splits the fields about twice as fast as splitting each line's text,
    and without quoting (``quote_char=None``) it splits a line into the same fields, ``\\r``
    before a line end dropped as well. What the reader cannot tell apart is an empty
    ``content`` (a valid line) from a missing one (a wrong field count): both read null,
    and such a line counts as failed, so its piece is read again as lines (``judged``), as
    is any piece with a failing line. Where no line fails, the event columns are those of
    the line reader's.
    """
    names = [f"c_{name}" for name in layout.header]
    frame = pl.scan_csv(
        source,
        has_header=False,
        separator=",",
        quote_char=None,
        schema=dict.fromkeys(names, pl.String()),
        skip_lines=1 if skip_header else 0,
        truncate_ragged_lines=True,
        # The field count of the first line is no header's: any line may have more or fewer.
        extra_columns="ignore",
        missing_columns="insert",
        raise_if_empty=False,
    )
    # A field read empty is null; the line reader's is "" (before a present content, every
    # field is present).
    frame = frame.with_columns(pl.col(name).fill_null("") for name in names[:-1])
    count_ok = pl.col(names[-1]).is_not_null()
    frame, checks, columns = _cert_events(frame, kind, layout, count_ok, attrs_keys, ())
    return _checked(frame, _with_time_range(checks, columns), columns)


def _cert_events(
    frame: pl.LazyFrame,
    kind: str,
    layout: CertLayout,
    count_ok: pl.Expr,
    attrs_keys: Collection[str] | None,
    bad_lines: Sequence[int],
) -> tuple[pl.LazyFrame, list[tuple[pl.Expr, str]], dict[str, pl.Expr]]:
    """The event columns and checks of a CERT file's split fields (``c_<name>`` columns).

    Returns the frame with the helper columns the expressions read, the checks in reason
    order, and an expression per event column (as :func:`_finish` takes them).
    """

    def c(name: str) -> pl.Expr:
        return pl.col(f"c_{name}")

    date = c("date")
    # No cache: nearly every timestamp is distinct, and hashing each one into a cache costs
    # more than parsing it.
    ts = date.str.strptime(pl.Datetime("us", "UTC"), CERT_DATE_FORMAT, strict=False, cache=False)
    frame = frame.with_columns(ts.alias("__ts"))
    checks: list[tuple[pl.Expr, str]] = [
        *_invalid_utf8_checks(bad_lines),
        (~count_ok, "wrong_field_count"),
        (date == "", "missing_field"),
        (pl.col("__ts").is_null() | (date.str.len_bytes() != CERT_DATE_LENGTH), "bad_timestamp"),
        (c("user") == "", "missing_field"),
        (c("pc") == "", "missing_field"),
    ]
    r62 = layout.has("activity")
    activity = c("activity")
    null_str = pl.lit(None, pl.String())
    target: pl.Expr = c("pc")
    size: pl.Expr = pl.lit(None, pl.Int64())
    attrs: dict[str, pl.Expr] = {"id": _non_empty(c("id"))}
    if kind in ("logon", "device"):
        vocabulary = LOGON_ACTIVITY if kind == "logon" else DEVICE_ACTIVITY
        checks += _vocabulary_checks(activity, vocabulary)
        action = _mapped(activity, vocabulary)
        if layout.has("file_tree"):
            attrs["file_tree"] = _non_empty(c("file_tree"))
    elif kind == "file":
        target = c("filename")
        if r62:
            checks += _vocabulary_checks(activity, FILE_ACTIVITY)
            checks.append((target == "", "missing_field"))
            for flag in ("to_removable_media", "from_removable_media"):
                checks += _vocabulary_checks(c(flag), CERT_BOOLEANS)
                attrs[flag] = _non_empty(c(flag))
            attrs["activity"] = _non_empty(activity)
            action = (
                pl.when(c("to_removable_media") == "True")
                .then(pl.lit(actions.FILE_COPY_REMOVABLE))
                .otherwise(_mapped(activity, FILE_ACTIVITY))
            )
        else:
            checks.append((target == "", "missing_field"))
            action = pl.lit(actions.FILE_COPY_REMOVABLE)
    elif kind == "email":
        if r62:
            checks += _vocabulary_checks(activity, EMAIL_ACTIVITY)
            action = _mapped(activity, EMAIL_ACTIVITY)
        else:
            action = pl.lit(actions.EMAIL_SEND)
        size_text = c("size")
        checks.append(((size_text != "") & ~size_text.str.contains(NUMBER_PATTERN), "bad_number"))
        size = _non_empty(size_text).cast(pl.Int64(), strict=False)
        attached = c("attachments")
        if r62:
            items = attached.str.split(";").list.filter(pl.element() != "")
            attrs["attachments"] = attached.str.count_matches("[^;]+").cast(pl.String())
            attrs["attachment_bytes"] = (
                items.list.eval(
                    pl.element()
                    .str.extract(ATTACHMENT_SIZE_PATTERN, 1)
                    .cast(pl.Int64(), strict=False)
                )
                .list.sum()
                .cast(pl.String())
            )
        else:
            checks.append(((attached != "") & ~attached.str.contains(NUMBER_PATTERN), "bad_number"))
            attrs["attachments"] = (
                _non_empty(attached).cast(pl.Int64(), strict=False).cast(pl.String())
            )
        attrs["from"] = _non_empty(c("from"))
        # String ops, not lists: the non-empty fields joined, then ";" runs collapsed and
        # stripped, which drops exactly the empty addresses join_recipients drops. Only a
        # field holding an empty address itself (";;", or a ";" at an end) needs the regex.
        parts = [c("to"), c("cc"), c("bcc")]
        joined = pl.concat_str([_non_empty(p) for p in parts], separator=";", ignore_nulls=True)
        frame = frame.with_columns(
            pl.when(pl.all_horizontal([p.is_not_null() for p in parts]))
            .then(joined)
            .alias("__recipients")
        )
        joined = pl.col("__recipients")
        untidy = (
            joined.str.contains(";;", literal=True)
            | joined.str.starts_with(";")
            | joined.str.ends_with(";")
        )
        recipients = pl.coalesce(
            pl.when(untidy).then(joined).str.replace_all(";{2,}", ";").str.strip_chars(";"), joined
        )
        # Materialised: _non_empty reads it twice, and an expression is computed per use.
        frame = frame.with_columns(recipients.alias("__recipients"))
        target = _non_empty(pl.col("__recipients"))
    elif kind == "http":
        if r62:
            checks += _vocabulary_checks(activity, HTTP_ACTIVITY)
            action = _mapped(activity, HTTP_ACTIVITY)
        else:
            action = pl.lit(actions.HTTP_VISIT)
        url = c("url")
        checks.append((url == "", "missing_field"))
        frame = _with_url_host(frame, url, "__host")
        target = _non_empty(pl.col("__host"))
        attrs["url"] = _non_empty(url)
    else:  # pragma: no cover - kinds come from CERT_FILE_KINDS
        raise ValueError(kind)
    columns = {
        "ts": pl.col("__ts"),
        "source": pl.lit(CERT_KINDS[kind].source),
        "action": action,
        "user": c("user"),
        "host": c("pc"),
        "target": target,
        "bytes": size,
        "outcome": null_str,
        "attrs": _attrs(attrs, attrs_keys),
    }
    return frame, checks, columns


def _lanl_frames(
    path: Path,
    epoch: datetime,
    lossy_utf8: bool,
    attrs_keys: Collection[str] | None,
    piece: LinePiece | None = None,
    bad_lines: Sequence[int] = (),
) -> _Frames:
    split, count_ok = _split(LANL_AUTH_COLUMNS, exact=True)
    frame = _scan_lines(path, lossy_utf8, piece).with_columns(split).unnest("__fields")

    def c(name: str) -> pl.Expr:
        return pl.col(f"c_{name}")

    def known(expr: pl.Expr) -> pl.Expr:
        return pl.when(~expr.is_in(list(LANL_UNKNOWN))).then(expr)

    time = c("time")
    epoch_us = int(epoch.astimezone(UTC).timestamp() * 1_000_000)
    seconds = time.cast(pl.Int64(), strict=False)
    ts = (seconds * 1_000_000 + epoch_us).cast(pl.Datetime("us", "UTC"))
    success = c("success")
    checks: list[tuple[pl.Expr, str]] = [
        *_invalid_utf8_checks(bad_lines),
        (~count_ok, "wrong_field_count"),
        (time == "", "missing_field"),
        (~time.str.contains(LANL_TIME_PATTERN), "bad_timestamp"),
        (~success.is_in([*LANL_OUTCOMES, *LANL_UNKNOWN]), "unknown_value"),
    ]
    principal = c("src_user").str.splitn("@", 2)
    columns = {
        "ts": ts,
        "source": pl.lit("lanl.auth"),
        "action": pl.lit(actions.AUTH),
        "user": known(principal.struct.field("field_0")),
        "host": known(c("src_computer")),
        "target": known(c("dst_computer")),
        "bytes": pl.lit(None, pl.Int64()),
        "outcome": _mapped(success, LANL_OUTCOMES),
        "attrs": _attrs(
            {
                "src_domain": known(principal.struct.field("field_1")),
                "dst_user": known(c("dst_user")),
                "auth_type": known(c("auth_type")),
                "logon_type": known(c("logon_type")),
                "orientation": known(c("orientation")),
            },
            attrs_keys,
        ),
    }
    return _finish(frame, checks, columns, path)


#: The columns without which a Parquet file holds no events.
PARQUET_REQUIRED: tuple[str, ...] = ("ts", "source", "action")


def check_parquet_events(path: Path, required: Collection[str] = PARQUET_REQUIRED) -> None:
    """Refuse, naming ``path``, a file that cannot hold events: not Parquet (or unreadable),
    lacking one of the ``required`` columns, or with a ``ts`` that is not a date or datetime.

    Only the file's footer is read.

    Raises
    ------
    ValueError
        One line that names the file and the problem.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "e.parquet"
    >>> pl.DataFrame({"ts": ["2010-01-02"], "source": ["x"], "action": ["a"]}).write_parquet(path)
    >>> check_parquet_events(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: .../e.parquet: column ts is String, expected a datetime
    >>> check_parquet_events(path, ["ts", "user"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: .../e.parquet: no column user (Parquet events need ts, user)
    """
    _check_event_schema(path, _parquet_schema(path), required)


def _parquet_schema(path: Path) -> Mapping[str, pl.DataType]:
    """The column types in ``path``'s footer; a ValueError naming the file if unreadable."""
    try:
        return pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable Parquet file ({detail})") from None


def _check_event_schema(
    path: Path, schema: Mapping[str, pl.DataType], required: Collection[str]
) -> None:
    missing = [name for name in required if name not in schema]
    if missing:
        raise ValueError(
            f"{path}: no column {', '.join(missing)} (Parquet events need {', '.join(required)})"
        )
    ts_type = schema.get("ts")
    if ts_type is not None and not isinstance(ts_type, pl.Datetime | pl.Date):
        raise ValueError(f"{path}: column ts is {ts_type}, expected a datetime")


def _parquet_frames(
    path: Path, attrs_keys: Collection[str] | None, rows: tuple[int, int] | None = None
) -> _Frames:
    """Events already in the Event schema (what another pipeline or an export wrote).

    ``ts``, ``source`` and ``action`` are required columns; the others may be absent (null).
    A naive ``ts`` is taken as UTC. A row missing a required value is rejected with its
    1-based row number and the row as JSON. ``rows``: only the rows ``[start, start + n)``
    (0-based), which polars reads from just the row groups holding them.
    """
    schema = _parquet_schema(path)
    _check_event_schema(path, schema, PARQUET_REQUIRED)
    frame = pl.scan_parquet(path)
    first_row = 1
    if rows is not None:
        frame = frame.slice(rows[0], rows[1])
        first_row += rows[0]
    names = list(schema)
    ts_type = schema["ts"]
    if isinstance(ts_type, pl.Datetime) and ts_type.time_zone:
        ts = pl.col("ts").dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC"))
    else:
        ts = pl.col("ts").cast(pl.Datetime("us"), strict=False).dt.replace_time_zone("UTC")
    frame = frame.with_row_index(_LINE, offset=first_row).with_columns(
        pl.col(_LINE).cast(pl.Int64()),
        ts.alias("__ts"),
        pl.struct(pl.all()).struct.json_encode().alias(_RAW),
    )
    columns: dict[str, pl.Expr] = {
        name: (pl.col(name) if name in names else pl.lit(None)).cast(POLARS_EVENT_SCHEMA[name])
        for name in EVENT_COLUMNS
        if name not in ("ts", "attrs")
    }
    columns["ts"] = pl.col("__ts")
    attrs = pl.col("attrs").cast(pl.String()) if "attrs" in names else pl.lit(None, pl.String())
    if attrs_keys is None:
        columns["attrs"] = attrs
    elif attrs_keys:
        columns["attrs"] = attrs.str.json_decode(attrs_dtype(attrs_keys))
    else:
        columns["attrs"] = pl.lit(None, pl.String())
    checks = [
        (pl.col("__ts").is_null(), "bad_timestamp"),
        (pl.col("source").is_null() | (pl.col("source").cast(pl.String()) == ""), "missing_field"),
        (pl.col("action").is_null() | (pl.col("action").cast(pl.String()) == ""), "missing_field"),
    ]
    return _finish(frame, checks, columns, path)


#: Bytes of a JSON-lines file parsed at once when no piece is given: the parser holds a few
#: copies of its lines (text, the joined buffer, Arrow's columns), so memory is a small
#: multiple of this, whatever the size of the file.
JSONL_PIECE_BYTES = 8 << 20


def _jsonl_block(
    origin: str, parser: JsonLinesParser, attrs_keys: Collection[str] | None, piece: LinePiece
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`_jsonl_piece` of an ASCII piece without ``\\r``: its bytes go to the parser whole.

    A :class:`~streams.sources.blocks.RecordBlock` lets Arrow read the piece without a Python
    object per line. Without ``\\r`` or non-ASCII bytes every line's text is its bytes, so
    the outcome is the record-list path's (blank lines are records here, which the parser
    skips as it skips them there).
    """
    data = piece.data if piece.data.endswith(b"\n") else piece.data + b"\n"
    block = RecordBlock(data, origin, first_line=piece.first_line, start_offset=piece.offset)
    frame, dead = parser.parse_batch(block, attrs_keys=attrs_keys)
    events = frame.with_columns(
        (pl.col("record") + piece.first_line).cast(pl.Int64()).alias(_LINE)
    ).drop("record")
    return events, _reject_frame(origin, [(d.line, d.reason, d.raw) for d in dead])


def _jsonl_piece(
    path: Path, parser: JsonLinesParser, attrs_keys: Collection[str] | None, piece: LinePiece
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The events (with their ``line``) and the rejected lines of one piece of a JSON-lines file.

    The lines go to :meth:`JsonLinesParser.parse_batch` as UTF-8 text; a line that is not valid
    UTF-8 is judged by :meth:`JsonLinesParser.parse_bytes` on its bytes, as a line-by-line
    read would (text with replacement characters might parse, its bytes never do).
    """
    origin = str(path)
    if b"\r" not in piece.data and piece.data.isascii():
        events, rejects = _jsonl_block(origin, parser, attrs_keys, piece)
    else:
        events, rejects = _jsonl_lines(origin, parser, attrs_keys, piece)
    if attrs_keys:
        # The parser hands the attributes on as JSON text; the keys asked for become a struct.
        events = events.with_columns(pl.col("attrs").str.json_decode(attrs_dtype(attrs_keys)))
    return without_out_of_range(origin, piece, events, rejects)


def _jsonl_lines(
    origin: str, parser: JsonLinesParser, attrs_keys: Collection[str] | None, piece: LinePiece
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`_jsonl_piece` line by line: any bytes (``\\r``, non-ASCII, invalid UTF-8)."""
    lines = piece.data.split(b"\n")
    if piece.data.endswith(b"\n"):
        lines.pop()  # the empty text after the last line end
    numbers = range(piece.first_line, piece.first_line + len(lines))
    # Byte offset just after each line (its line end included).
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    offsets: list[int] = (np.cumsum(lengths + 1) + piece.offset).tolist()
    undecodable: list[tuple[int, bytes]] = []
    try:
        # Nearly always the whole piece is UTF-8: one decode, no per-line work.
        texts = piece.data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        texts = []
        for number, raw in zip(numbers, lines, strict=True):
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                undecodable.append((number, raw.removesuffix(b"\r")))
                texts.append("")  # judged on its bytes below
    # One trailing CR is the line end's (CRLF), as the daemon's file source reads it; any
    # other CR is the line's own text and reaches the parser (and a dead letter) as such.
    records = [
        RawRecord(stripped, origin, number, offset)
        for text, number, offset in zip(texts, numbers, offsets, strict=False)
        if (stripped := text.removesuffix("\r"))
    ]
    frame, dead = parser.parse_batch(records, attrs_keys=attrs_keys)
    lines_of = pl.Series([record.line for record in records], dtype=pl.Int64())
    events = frame.with_columns(lines_of.gather(frame.get_column("record")).alias(_LINE)).drop(
        "record"
    )
    rejected = [(d.line, d.reason, d.raw) for d in dead]
    extra: list[Event] = []
    extra_lines: list[int] = []
    for line_number, line in undecodable:
        try:
            event = parser.parse_bytes(line)
        except ParseError as exc:
            rejected.append((line_number, exc.reason, line.decode("utf-8", errors="replace")))
            continue
        if event is not None:  # pragma: no cover - orjson refuses any invalid UTF-8
            extra.append(event)
            extra_lines.append(line_number)
    if extra:  # pragma: no cover - as above
        extra_events = events_to_frame(extra).with_columns(
            pl.Series(_LINE, extra_lines, dtype=pl.Int64())
        )
        if attrs_keys is not None and not attrs_keys:
            extra_events = extra_events.with_columns(pl.lit(None, pl.String()).alias("attrs"))
        events = pl.concat([events, extra_events]).sort(_LINE)
    if undecodable:
        rejected.sort(key=lambda item: item[0])
    return events, _reject_frame(origin, rejected)


def _reject_frame(origin: str, rejected: Sequence[tuple[int, str, str]]) -> pl.DataFrame:
    """Rejected lines of one file, ``(line, reason, raw text)`` each, as REJECT_SCHEMA rows."""
    return pl.DataFrame([(origin, *row) for row in rejected], schema=REJECT_SCHEMA, orient="row")


def _jsonl_frames(
    path: Path,
    parser: JsonLinesParser,
    attrs_keys: Collection[str] | None,
    piece: LinePiece | None = None,
) -> _Frames:
    """One JSON-lines file, or one piece of it, parsed columnar (:func:`_jsonl_piece`)."""
    pieces = [piece] if piece is not None else line_pieces(path, JSONL_PIECE_BYTES)
    events, rejects, judged = piece_frames(
        [_jsonl_piece(path, parser, attrs_keys, one) for one in pieces], attrs_keys
    )
    return _Frames(events.lazy(), rejects.lazy(), judged.lazy())


def piece_frames(
    parsed: Sequence[tuple[pl.DataFrame, pl.DataFrame]], attrs_keys: Collection[str] | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Join a file's parsed pieces, ``(events with their line, rejects)`` each, into its
    events, rejects and judged lines (events then rejects, each in line order: the order the
    line-by-line reader kept), as a line-by-line reader of the scan returns them.

    Examples
    --------
    >>> events, rejects, judged = piece_frames([], None)
    >>> events.columns == list(EVENT_COLUMNS), rejects.height, judged.height
    (True, 0, 0)
    """
    schema = dict(POLARS_EVENT_SCHEMA)
    if attrs_keys is not None:
        schema["attrs"] = attrs_dtype(attrs_keys)
    events = (
        pl.concat([frame for frame, _ in parsed])
        if parsed
        else pl.DataFrame(schema={**schema, _LINE: pl.Int64()})
    )
    rejects = (
        pl.concat([frame for _, frame in parsed]) if parsed else pl.DataFrame(schema=REJECT_SCHEMA)
    )
    judged = pl.concat(
        [events.with_columns(pl.lit(None, pl.String()).alias(_REASON)), rejects],
        how="diagonal",
    ).select(*EVENT_COLUMNS, _REASON, _FILE, _LINE, _RAW)
    return events.select(EVENT_COLUMNS), rejects, judged


def _cert_files(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found += [
                (path / f"{kind}.csv", kind)
                for kind in CERT_FILE_KINDS
                if (path / f"{kind}.csv").is_file()
            ]
        elif path.stem.lower() in CERT_FILE_KINDS:
            found.append((path, path.stem.lower()))
        else:
            raise ValueError(
                f"{path}: not a CERT activity file (expected one of "
                f"{', '.join(k + '.csv' for k in CERT_FILE_KINDS)} or a directory)"
            )
    return found


def _plain_files(paths: Sequence[Path], in_directory: Callable[[Path], list[Path]]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += in_directory(path) if path.is_dir() else [path]
    return files


def batch_files(paths: Sequence[Path | str], fmt: str) -> list[Path]:
    """The files :func:`scan_events` reads for ``paths`` in format ``fmt``, without reading them.

    Directories are expanded as :func:`scan_events` describes.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        An unknown format, or a file that is not a CERT activity file for ``cert``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.jsonl", "a.ndjson", "c.txt", "d.json.gz"):
    ...     _ = (d / name).write_text("")
    >>> [p.name for p in batch_files([d], "jsonl")]
    ['a.ndjson', 'b.jsonl', 'd.json.gz']
    """
    resolved = [Path(p) for p in paths]
    for path in resolved:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
    if fmt == "cert":
        return [path for path, _ in _cert_files(resolved)]
    if fmt == "lanl":
        return _plain_files(
            resolved, lambda d: [d / "auth.txt"] if (d / "auth.txt").is_file() else []
        )
    if fmt == "jsonl":
        return _plain_files(
            resolved,
            lambda d: sorted(
                p for p in d.iterdir() if p.name.removesuffix(".gz").endswith(JSONL_SUFFIXES)
            ),
        )
    if fmt == "parquet":
        return _plain_files(resolved, lambda d: sorted(d.glob("*.parquet")))
    # Imported here: the line reader builds on this module.
    from streams.linebatch import LINE_FORMATS, line_files

    if fmt in LINE_FORMATS:
        return _plain_files(resolved, lambda d: line_files(d, fmt))
    raise ValueError(
        f"unknown batch format {fmt!r}: expected 'cert', 'lanl', 'jsonl', 'parquet', "
        f"{', '.join(repr(name) for name in LINE_FORMATS)}"
    )


def scan_events(
    paths: Sequence[Path | str],
    fmt: Literal["cert", "lanl", "jsonl", "parquet"],
    *,
    lanl_epoch: datetime = LANL_EPOCH,
    jsonl_mapping: Mapping[str, str | Sequence[str]] | None = None,
    lossy_utf8: bool = False,
    attrs_keys: Collection[str] | None = None,
    piece: LinePiece | None = None,
    rows: tuple[int, int] | None = None,
) -> BatchScan:
    """Read log files into a lazy frame of events plus a lazy frame of rejected lines.

    Parameters
    ----------
    paths
        Files, or directories: for ``cert`` the five activity files found in it
        (``logon``, ``device``, ``file``, ``email``, ``http`` ``.csv``); for ``lanl`` its
        ``auth.txt``; for ``jsonl`` its ``*.jsonl``, ``*.ndjson``, ``*.json`` files (and
        those names with ``.gz``); for ``parquet`` its ``*.parquet`` files holding
        Event-schema columns. A gzip file (known by its first bytes) read in pieces is
        read decompressed.
    fmt
        The log format.
    lanl_epoch
        The instant of LANL ``time`` 0.
    jsonl_mapping
        Field mapping for :class:`streams.parsers.JsonLinesParser`.
    lossy_utf8
        Replace invalid UTF-8 instead of failing at collect time (CERT/LANL only; about
        twice as slow to read). Without it a ``piece`` of CERT or LANL lines still reads:
        a line that is not valid UTF-8 is rejected as ``invalid_utf8`` (its text shown with
        U+FFFD replacements); a whole file read at once fails at collect time.
    attrs_keys
        ``None`` (the default) for ``attrs`` as a JSON object string of every attribute;
        otherwise ``attrs`` is a struct of exactly these keys (dtype :func:`attrs_dtype`),
        null where an event lacks one, and the other attributes are never built. An empty
        collection gives a null String ``attrs``.
    piece
        Read only these lines of the one CERT, LANL or JSON-lines file in ``paths`` (from
        :func:`line_pieces`), numbered from ``piece.first_line``; a CERT file's layout still
        comes from its first line, and its header line is still skipped.
    rows
        Read only the rows ``[start, start + n)`` (0-based) of the one Parquet file in
        ``paths``; rejects keep their row numbers in the whole file.

    Returns
    -------
    BatchScan
        Lazy frames; collect them with ``collect(engine="streaming")`` for bounded memory.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "logon.csv").write_text("id,date,user,pc,activity\\n"
    ...     "{A},01/02/2010 06:49:00,NGF0157,PC-6056,Logon\\n"
    ...     "{B},01/02/2010 06:50:00,NGF0157,PC-6056,Reboot\\n")
    >>> scan = scan_events([d], "cert")
    >>> scan.events.select("action", "user").collect().rows()
    [('logon', 'NGF0157')]
    >>> scan.rejects.select("line", "reason").collect().rows()
    [(3, 'unknown_value')]
    """
    resolved = [Path(p) for p in paths]
    files = batch_files(resolved, fmt)
    if fmt not in ("cert", "lanl", "jsonl", "parquet"):
        # batch_files knows the line formats too; they are read by another function.
        raise ValueError(f"{fmt} logs are read by streams.linebatch.scan_line_events")
    pairs: list[_Frames] = []
    one_file = len(resolved) == 1 and not resolved[0].is_dir()
    if piece is not None and (fmt not in ("cert", "lanl", "jsonl") or not one_file):
        raise ValueError(
            f"a piece of a file is read from one CERT, LANL or JSON-lines file, not {fmt} {paths}"
        )
    if rows is not None and (fmt != "parquet" or not one_file):
        raise ValueError(f"a range of rows is read from one Parquet file, not {fmt} {paths}")
    parser = JsonLinesParser(jsonl_mapping) if fmt == "jsonl" else None
    bad_lines: list[int] = []
    if piece is not None and fmt in ("cert", "lanl") and not lossy_utf8:
        # polars fails a whole read on one invalid byte: such lines become dead letters.
        piece, bad_lines = undecodable_lines(piece)
    for path in files:
        if fmt == "cert" and path.stat().st_size:
            kind = path.stem.lower()
            pairs.append(_cert_frames(path, kind, lossy_utf8, attrs_keys, piece, bad_lines))
        elif fmt == "lanl" and path.stat().st_size:
            pairs.append(_lanl_frames(path, lanl_epoch, lossy_utf8, attrs_keys, piece, bad_lines))
        elif parser is not None:
            pairs.append(_jsonl_frames(path, parser, attrs_keys, piece))
        elif fmt == "parquet":
            pairs.append(_parquet_frames(path, attrs_keys, rows))
    schema = dict(POLARS_EVENT_SCHEMA)
    if attrs_keys is not None:
        schema["attrs"] = attrs_dtype(attrs_keys)
    judged_schema = {**schema, _REASON: pl.String(), **REJECT_SCHEMA}
    checked = [p.checked for p in pairs if p.checked is not None]
    return BatchScan(
        events=_concat([p.events for p in pairs], schema),
        rejects=_concat([p.rejects for p in pairs], REJECT_SCHEMA),
        files=files,
        judged=_concat([p.judged for p in pairs], judged_schema),
        checked=(
            _concat(checked, {**schema, _FAILED: pl.Boolean()})
            if len(checked) == len(pairs)
            else None
        ),
    )


def collect_judged(
    scan: BatchScan, columns: Sequence[str | pl.Expr]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``columns`` and ``reason`` of every judged line of ``scan``, and its rejected lines.

    The first frame is ``scan.judged.select(*columns, "reason")``, the second ``scan.rejects``,
    both collected. A column may be an expression over the event columns (a narrowed
    ``attrs``, say): it is evaluated once, in the same pass. Nearly every piece of a log has
    no failing line: then the unfiltered :attr:`BatchScan.checked` frame is that first
    frame, read in one pass without the filter; a piece with a failing line (a blank one
    included) is read again as ``judged``, text and line numbers of its rejects included, so
    both frames come from that one pass.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> lines = ["id,date,user,pc,activity", "{C},01/03/2010 17:02:00,ABC0001,PC-1,Logoff",
    ...     "{D},01/03/2010 17:05:00,ABC0001,PC-1,Sleep"]
    >>> _ = (d / "logon.csv").write_text("\\n".join(lines) + "\\n")
    >>> judged, rejects = collect_judged(scan_events([d], "cert"), ["action"])
    >>> judged.rows()
    [('logoff', None), (None, 'unknown_value')]
    >>> rejects.select("line", "reason").rows()
    [(3, 'unknown_value')]
    """
    # Once collected, the columns are picked by name: an expression is not evaluated again.
    names = [c if isinstance(c, str) else c.meta.output_name() for c in columns]
    if scan.checked is not None:
        checked = scan.checked.select(*columns, _FAILED).collect(engine="streaming")
        if not checked.get_column(_FAILED).any():
            reason = pl.Series(_REASON, dtype=pl.String()).extend_constant(None, checked.height)
            return checked.select(names).with_columns(reason), pl.DataFrame(schema=REJECT_SCHEMA)
    if scan.judged is None:
        raise ValueError("a scan without judged lines (a hand-built BatchScan) cannot be collected")
    judged = scan.judged.select(*columns, _REASON, _FILE, _LINE, _RAW).collect(engine="streaming")
    rejects = judged.filter(pl.col(_REASON).is_not_null()).select(list(REJECT_SCHEMA))
    return judged.select(*names, _REASON), rejects


def events_to_frame(events: Sequence[Event]) -> pl.DataFrame:
    """Events as a frame with exactly the :data:`POLARS_EVENT_SCHEMA` columns.

    Examples
    --------
    >>> e = Event(datetime(2010, 1, 2, tzinfo=UTC), "cert.logon", "logon", attrs={"id": "x"})
    >>> events_to_frame([e]).row(0)[-1]
    '{"id":"x"}'
    """
    columns: dict[str, list[object]] = {
        "ts": [e.ts for e in events],
        "source": [e.source for e in events],
        "action": [e.action for e in events],
        "user": [e.user for e in events],
        "host": [e.host for e in events],
        "target": [e.target for e in events],
        "bytes": [e.bytes for e in events],
        "outcome": [e.outcome for e in events],
        "attrs": [orjson.dumps(dict(e.attrs)).decode() if e.attrs else None for e in events],
    }
    return pl.DataFrame(columns, schema=POLARS_EVENT_SCHEMA)


def events_from_frame(frame: pl.DataFrame) -> list[Event]:
    """Events back from a frame of :data:`POLARS_EVENT_SCHEMA` rows (null attrs dropped).

    Examples
    --------
    >>> e = Event(datetime(2010, 1, 2, tzinfo=UTC), "cert.logon", "logon", attrs={"id": "x"})
    >>> events_from_frame(events_to_frame([e])) == [e]
    True
    """
    events: list[Event] = []
    for row in frame.select(EVENT_COLUMNS).iter_rows(named=True):
        decoded = orjson.loads(row["attrs"]) if row["attrs"] else {}
        attrs = {k: str(v) for k, v in decoded.items() if v is not None}
        events.append(
            Event(
                row["ts"],
                row["source"],
                row["action"],
                row["user"],
                row["host"],
                row["target"],
                row["bytes"],
                row["outcome"],
                attrs=attrs,
            )
        )
    return events
