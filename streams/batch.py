"""Batch readers: whole log files to polars LazyFrames of Events, for retrospective scans.

The CERT and LANL readers never run Python per row: each file is scanned as lines
(``pl.scan_lines``), split with ``str.splitn`` and mapped with polars expressions that
mirror the line parsers rule for rule (same field counts, same date rule, same reason
order), so a file gives the same events whichever path reads it. Reading lines rather than
CSV columns keeps the exact raw text and 1-based line number of every rejected line.

``attrs`` is a JSON object string; an attribute the line parser would leave out (an empty
value) is written as ``null`` here, and :func:`events_from_frame` drops it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import orjson
import polars as pl

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


def _concat(frames: list[pl.LazyFrame], schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    if not frames:
        return pl.LazyFrame(schema=dict(schema))
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def _scan_lines(path: Path, lossy_utf8: bool) -> pl.LazyFrame:
    """Lines of a file with their 1-based numbers (``line``) and text (``raw``)."""
    if lossy_utf8:
        # A CSV reader with a separator that never occurs and no quoting reads whole
        # lines, and can replace invalid UTF-8; it is about twice as slow as scan_lines.
        frame = pl.scan_csv(
            path,
            has_header=False,
            separator="\x00",
            quote_char=None,
            encoding="utf8-lossy",
            schema={_RAW: pl.String()},
            truncate_ragged_lines=True,
            empty_string_is_null=False,
            row_index_name=_LINE,
            row_index_offset=1,
        ).with_columns(pl.col(_RAW).fill_null(""))
    else:
        frame = pl.scan_lines(path, name=_RAW, row_index_name=_LINE, row_index_offset=1)
    return frame.with_columns(pl.col(_LINE).cast(pl.Int64()))


def _first_line(path: Path) -> str:
    with open(path, "rb") as handle:
        return handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")


def _split(names: Sequence[str], exact: bool) -> tuple[list[pl.Expr], pl.Expr]:
    """Split ``raw`` on commas into one column per name; a catch-all absorbs the rest.

    With ``exact`` an extra field lands in a ``__extra`` column (a wrong field count);
    otherwise the last column keeps any extra commas (the CERT ``content`` column).
    """
    cols = [f"c_{n}" for n in names]
    parts = len(cols) + 1 if exact else len(cols)
    fields = [*cols, "__extra"] if exact else cols
    split = pl.col(_RAW).str.splitn(",", parts).struct.rename_fields(fields)
    count_ok = pl.col(cols[-1]).is_not_null()
    if exact:
        count_ok = count_ok & pl.col("__extra").is_null()
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
    return column.replace_strict(dict(vocabulary), default=None, return_dtype=pl.String())


def _non_empty(column: pl.Expr) -> pl.Expr:
    return pl.when(column != "").then(column)


def _attrs(**values: pl.Expr) -> pl.Expr:
    return pl.struct([v.alias(k) for k, v in values.items()]).struct.json_encode()


def _finish(
    frame: pl.LazyFrame,
    checks: Sequence[tuple[pl.Expr, str]],
    columns: Mapping[str, pl.Expr],
    path: Path,
    skip: pl.Expr | None = None,
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Split a mapped frame into events (all checks pass) and rejects (not blank/skipped)."""
    judged = frame.with_columns(_reason(checks))
    events = judged.filter(pl.col(_REASON).is_null()).select(
        [columns[name].cast(POLARS_EVENT_SCHEMA[name]).alias(name) for name in EVENT_COLUMNS]
    )
    not_blank = pl.col(_RAW).str.strip_chars(BLANK_CHARS) != ""
    keep = pl.col(_REASON).is_not_null() & not_blank
    if skip is not None:
        keep = keep & ~skip
    rejects = judged.filter(keep).select(
        pl.lit(str(path)).alias("file"),
        pl.col(_LINE),
        pl.col(_REASON),
        pl.col(_RAW),
    )
    return events, rejects


def _cert_frames(path: Path, kind: str, lossy_utf8: bool) -> tuple[pl.LazyFrame, pl.LazyFrame]:
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
    frame = _scan_lines(path, lossy_utf8)
    if has_header:
        frame = frame.filter(pl.col(_LINE) > 1)
    split, count_ok = _split(layout.header, exact=not layout.content_last)
    frame = frame.with_columns(split).unnest("__fields")

    def c(name: str) -> pl.Expr:
        return pl.col(f"c_{name}")

    date = c("date")
    ts = date.str.strptime(pl.Datetime("us", "UTC"), CERT_DATE_FORMAT, strict=False)
    frame = frame.with_columns(ts.alias("__ts"))
    checks: list[tuple[pl.Expr, str]] = [
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
        # String ops, not lists: joining then collapsing ";" runs is 3x faster and drops
        # exactly the empty addresses join_recipients drops.
        recipients = (
            pl.concat_str(c("to"), c("cc"), c("bcc"), separator=";")
            .str.replace_all(";{2,}", ";")
            .str.strip_chars(";")
        )
        target = _non_empty(recipients)
    elif kind == "http":
        if r62:
            checks += _vocabulary_checks(activity, HTTP_ACTIVITY)
            action = _mapped(activity, HTTP_ACTIVITY)
        else:
            action = pl.lit(actions.HTTP_VISIT)
        url = c("url")
        checks.append((url == "", "missing_field"))
        host = url.str.extract(URL_HOST_PATTERN, 1).str.to_lowercase().str.strip_prefix("www.")
        target = _non_empty(host)
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
        "attrs": _attrs(**attrs),
    }
    # A header repeated inside a file (files concatenated) is skipped, as the line parser does.
    skip = c("id").str.replace_all("\ufeff", "").str.strip_chars().str.to_lowercase() == "id"
    return _finish(frame, checks, columns, path, skip=skip)


def _lanl_frames(
    path: Path, epoch: datetime, lossy_utf8: bool
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    split, count_ok = _split(LANL_AUTH_COLUMNS, exact=True)
    frame = _scan_lines(path, lossy_utf8).with_columns(split).unnest("__fields")

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
            src_domain=known(principal.struct.field("field_1")),
            dst_user=known(c("dst_user")),
            auth_type=known(c("auth_type")),
            logon_type=known(c("logon_type")),
            orientation=known(c("orientation")),
        ),
    }
    return _finish(frame, checks, columns, path)


def _jsonl_frames(path: Path, parser: JsonLinesParser) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    events: list[Event] = []
    rejects: dict[str, list[object]] = {name: [] for name in REJECT_SCHEMA}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            try:
                event = parser.parse_bytes(line)
            except ParseError as exc:
                for name, value in zip(
                    REJECT_SCHEMA,
                    (str(path), number, exc.reason, line.decode("utf-8", errors="replace")),
                    strict=True,
                ):
                    rejects[name].append(value)
                continue
            if event is not None:
                events.append(event)
    return (
        events_to_frame(events).lazy(),
        pl.DataFrame(rejects, schema=REJECT_SCHEMA).lazy(),
    )


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


def scan_events(
    paths: Sequence[Path | str],
    fmt: Literal["cert", "lanl", "jsonl"],
    *,
    lanl_epoch: datetime = LANL_EPOCH,
    jsonl_mapping: Mapping[str, str | Sequence[str]] | None = None,
    lossy_utf8: bool = False,
) -> BatchScan:
    """Read log files into a lazy frame of events plus a lazy frame of rejected lines.

    Parameters
    ----------
    paths
        Files, or directories: for ``cert`` the five activity files found in it
        (``logon``, ``device``, ``file``, ``email``, ``http`` ``.csv``); for ``lanl`` its
        ``auth.txt``; for ``jsonl`` its ``*.jsonl``, ``*.ndjson``, ``*.json`` files.
    fmt
        The log format.
    lanl_epoch
        The instant of LANL ``time`` 0.
    jsonl_mapping
        Field mapping for :class:`streams.parsers.JsonLinesParser`.
    lossy_utf8
        Replace invalid UTF-8 instead of failing at collect time (CERT/LANL only; about
        twice as slow to read).

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
    for path in resolved:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
    pairs: list[tuple[pl.LazyFrame, pl.LazyFrame]] = []
    files: list[Path] = []
    if fmt == "cert":
        for path, kind in _cert_files(resolved):
            files.append(path)
            if path.stat().st_size:
                pairs.append(_cert_frames(path, kind, lossy_utf8))
    elif fmt == "lanl":
        for path in _plain_files(
            resolved, lambda d: [d / "auth.txt"] if (d / "auth.txt").is_file() else []
        ):
            files.append(path)
            if path.stat().st_size:
                pairs.append(_lanl_frames(path, lanl_epoch, lossy_utf8))
    elif fmt == "jsonl":
        parser = JsonLinesParser(jsonl_mapping)
        for path in _plain_files(
            resolved, lambda d: sorted(p for p in d.iterdir() if p.suffix in JSONL_SUFFIXES)
        ):
            files.append(path)
            pairs.append(_jsonl_frames(path, parser))
    else:
        raise ValueError(f"unknown batch format {fmt!r}: expected 'cert', 'lanl' or 'jsonl'")
    return BatchScan(
        events=_concat([e for e, _ in pairs], POLARS_EVENT_SCHEMA),
        rejects=_concat([r for _, r in pairs], REJECT_SCHEMA),
        files=files,
    )


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
