"""The retrospective scan: logs in, ranked explained alerts and a report out.

Reads with polars (file by file, spooled to Parquet so memory does not grow with the number of
days), evaluates the feature specs per entity-window one time slice at a time (a week of
windows, with the history of earlier slices carried), fits the Pipeline on the training
period, scores the rest, calibrates to the alert budget and writes the outputs. Windows
Security, auth.log and syslog files are read line by line through the daemon's parsers
(:mod:`streams.linebatch`) and add the feature families their formats imply
(:func:`scan_families`).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
import polars as pl
from tqdm import tqdm

from detector.config import PARSER_FAMILIES
from detector.errors import UsageError
from detector.peers import peer_groups_beside
from detector.pipeline import Budget, Pipeline, PipelineConfig, ScoredWindows, _span_days
from detector.risk import entity_risk, without_muted
from detector.suppression import Allowlist
from features.batch import (
    ENTITY,
    WINDOW,
    attrs_keys,
    evaluate_batch,
    narrowed_columns,
    required_columns,
    spec_schema_hash,
)
from features.catalog import check_families, default_specs
from features.sliced import SlicedFeatures
from features.spec import FeatureSpec, WindowConfig
from models.registry import BATCH_DETECTORS, ONLINE_DETECTORS
from models.store import ModelStoreError, load_model, read_header, save_model, write_atomically
from streams.actions import ALL_ACTIONS
from streams.batch import (
    JSONL_PIECE_BYTES,
    PARQUET_REQUIRED,
    REJECT_SCHEMA,
    BatchScan,
    LinePiece,
    batch_files,
    check_parquet_events,
    collect_judged,
    line_pieces,
    scan_events,
)
from streams.linebatch import (
    LINE_FORMATS,
    LINE_PIECE_BYTES,
    line_parser,
    scan_line_events,
    template_miner,
)
from streams.parsers.base import Parser
from streams.parsers.jsonl import ACTIONS_KEY, ATTRS_KEY, action_table, attrs_table
from streams.parsers.syslog import check_year, resolve_tz

log = logging.getLogger(__name__)

FORMATS = ("cert", "lanl", "jsonl", "parquet", *LINE_FORMATS)
MODEL_FILE = "model.bin"
#: Beside MODEL_FILE when the scan mined syslog templates: the miner's state
#: (:meth:`DrainTemplateParser.state`), restored by a scan with ``--model`` so that its lines
#: get the template ids the model's template features were fitted on.
TEMPLATES_FILE = "templates.drain"
#: Bytes of a CERT or LANL file read in one polars pass (memory holds about five times this).
#: Under 32 MiB, with room for the rest of a piece's last line: glibc's malloc serves a larger
#: block by a fresh ``mmap`` every time (32 MiB is the most its mmap threshold rises to), so
#: every piece read would fault in and zero its pages anew (180 days of 1,000 users: 280k
#: more page faults, ~0.7 s more kernel CPU); a smaller one comes from the heap, whose
#: pages the next pieces reuse.
PIECE_BYTES = 31 << 20
#: Pieces read at once, each collected on its own thread (polars releases the GIL while it
#: reads): a piece's read is nearly single-threaded, so two keep two cores busy. Memory holds
#: about this many pieces.
READ_WORKERS = 2
#: Rows of an input Parquet file read in one pass (a few hundred bytes each in memory).
PARQUET_PIECE_ROWS = 262_144
#: Rows per Parquet row group of a spooled file: a slice reads only the row groups whose time
#: range meets it, so in a time-ordered file it reads about its own rows and a few more.
SPOOL_ROW_GROUP = 65_536
#: Spooled parts are not compressed: lz4 cost a third more CPU to write and a quarter more to
#: read back, for parts about 2.4 times smaller (a spool lives only as long as its scan).
SPOOL_COMPRESSION: Final = "uncompressed"
#: No column statistics: the minimum and maximum of every column chunk cost about 7% of a
#: part's write, where only the times are of use; each part's verdict keeps the first and last
#: event time of its blocks of SPOOL_ROW_GROUP rows instead (:attr:`_PartVerdict.blocks`),
#: and a slice reads just the rows of the blocks that reach into it.
_SPOOL_STATISTICS: Final = False
#: Prefix of the spooled columns that hold the fields of an ``attrs`` struct, one column each
#: (:func:`_flat_attrs`): Parquet decodes a struct's fields through their nesting levels, at
#: several times the CPU of plain columns (the slices of 180 days of 1,000 users read their
#: events with half the CPU, 0.7 s less). :func:`_scan_parts` builds the struct again.
_ATTRS_FIELD: Final = "attrs."


class DataError(Exception):
    """Input data that ``--strict`` refuses (a malformed line)."""


class NoEventsError(UsageError):
    """Input that holds no valid event: every line rejected, or no line at all.

    Bad input, so the CLI exits 2 with the message; :func:`run_scan` writes the rejected
    lines (``dead_letters.jsonl``) and ``summary.json`` before raising it.

    Examples
    --------
    >>> err = NoEventsError("no events in logs/logon.csv", pl.DataFrame(schema=REJECT_SCHEMA))
    >>> str(err), err.rejects.height
    ('no events in logs/logon.csv', 0)
    """

    def __init__(self, message: str, rejects: pl.DataFrame) -> None:
        super().__init__(message)
        self.rejects = rejects


def reason_counts(rejects: pl.DataFrame) -> dict[str, int]:
    """How many rejected lines each reason has, the most frequent first (ties by name).

    Examples
    --------
    >>> rejects = pl.DataFrame({"file": ["a"] * 3, "line": [1, 2, 3],
    ...     "reason": ["missing_field", "bad_timestamp", "bad_timestamp"], "raw": ["", "", ""]})
    >>> reason_counts(rejects)
    {'bad_timestamp': 2, 'missing_field': 1}
    """
    if not rejects.height:
        return {}
    counts = rejects.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
    return dict(counts.iter_rows())


def _no_events_message(files: Sequence[tuple[str, Path]], rejects: pl.DataFrame) -> str:
    if not rejects.height:
        names = ", ".join(str(f) for _, f in files[:3]) + (", ..." if len(files) > 3 else "")
        return f"no events in {names}"
    counts = reason_counts(rejects)
    top = ", ".join(f"{reason} {n:,}" for reason, n in list(counts.items())[:3])
    more = ", ..." if len(counts) > 3 else ""
    lines = "line" if rejects.height == 1 else "lines"
    return f"no valid events: {rejects.height:,} {lines} rejected ({top}{more})"


@dataclass(frozen=True)
class ScanOptions:
    """What ``baseliner scan`` was asked to do.

    Examples
    --------
    >>> opts = ScanOptions(inputs=(("cert", Path("logs")),), out=Path("out"))
    >>> opts.budget.per_day
    5.0
    """

    inputs: tuple[tuple[str, Path], ...]
    """(format, path) pairs: a CERT directory, a LANL auth.txt, a JSON-lines file..."""
    out: Path
    train_until: date | None = None
    budget: Budget = field(default_factory=Budget)
    budget_given: bool = False
    """Whether ``budget`` was asked for (flag or config): with :attr:`model` it replaces the
    budget saved with the model, which is used otherwise."""
    detector: str = "tail"
    detector_params: Mapping[str, Any] = field(default_factory=dict)
    entity: str = "user"
    window: str = "1d"
    strict: bool = False
    save_model: Path | None = None
    model: Path | None = None
    lanl_epoch: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    jsonl_mapping: Mapping[str, Any] | None = None
    progress: bool = True
    seed: int = 7
    report_top: int = 10
    allowlist: Path | None = None
    slice_days: int | None = 7
    """Days of windows evaluated together, carrying history from slice to slice; ``None``
    evaluates the whole range at once, whose memory grows with the number of days."""
    families: tuple[str, ...] | None = None
    """Feature families added to the default catalogue (:data:`features.catalog.
    FEATURE_FAMILIES`); ``None``: those the input formats imply, as the daemon's
    ``feature_families = "auto"`` (:func:`scan_families`)."""
    year: int | None = None
    """Year of BSD syslog timestamps (``authlog``, ``syslog``); ``None`` infers it from today."""
    tz: str = "UTC"
    """Zone of syslog timestamps without an offset (``authlog``, ``syslog``)."""


@dataclass
class ScanResult:
    """What a scan produced, for the CLI summary, the demo and the benchmarks."""

    options: ScanOptions
    events: int
    rejects: int
    vectors: pl.DataFrame
    train_until: datetime | None
    scored: ScoredWindows
    pipeline: Pipeline
    timings: dict[str, float]
    outputs: dict[str, Path]
    suppressed: int = 0
    """Alerts muted by the allow-list (counted, never silently dropped)."""
    reject_reasons: dict[str, int] = field(default_factory=dict)
    """Rejected lines per reason, the most frequent first."""
    without_entity: int = 0
    """Valid events that name no entity of the scan's kind (no user, say): they reach no
    window, so they are counted here rather than silently left out."""
    unread_actions: dict[str, int] = field(default_factory=dict)
    """Valid events per action that is not baseliner's and that no feature selects (a log's
    own vocabulary not mapped), the most frequent first."""
    skipped_files: list[str] = field(default_factory=list)
    """Files in an input directory that another format reads and no input names."""


def _window_delta(window: str) -> timedelta:
    return {"1d": timedelta(days=1), "1h": timedelta(hours=1)}[window]


def parse_input(text: str, default_format: str | None) -> tuple[str, Path]:
    """``cert:logs/`` or ``logs/`` with a default format, into (format, path).

    Examples
    --------
    >>> parse_input("lanl:data/auth.txt", "cert")
    ('lanl', PosixPath('data/auth.txt'))
    >>> parse_input("data/r6.2", "cert")
    ('cert', PosixPath('data/r6.2'))
    """
    head, sep, rest = text.partition(":")
    if sep and head in FORMATS:
        return head, Path(rest)
    if default_format is None:
        raise UsageError(f"no format for {text!r}: give --format or prefix it like cert:{text}")
    if default_format not in FORMATS:
        raise UsageError(f"unknown format {default_format!r}; choose one of {', '.join(FORMATS)}")
    return default_format, Path(text)


def scan_families(opts: ScanOptions) -> tuple[str, ...]:
    """The feature families of a scan: as asked, else those its input formats imply.

    A format implies the family its daemon parser implies (``detector.config.
    PARSER_FAMILIES``): ``windows`` the ``windows`` family, ``syslog`` (drain templates) the
    ``templates`` family; the other formats none.

    Examples
    --------
    >>> scan_families(ScanOptions(inputs=(("windows", Path("w")), ("cert", Path("c"))),
    ...                           out=Path("o")))
    ('windows',)
    >>> scan_families(ScanOptions(inputs=(("syslog", Path("s")),), out=Path("o"), families=()))
    ()
    """
    if opts.families is not None:
        return check_families(opts.families)
    parsers = [LINE_FORMATS[fmt] for fmt, _ in opts.inputs if fmt in LINE_FORMATS]
    return check_families(PARSER_FAMILIES[p] for p in parsers if p in PARSER_FAMILIES)


def scan_specs(opts: ScanOptions) -> tuple[FeatureSpec, ...]:
    """The feature specs of a scan: the entity's catalogue with :func:`scan_families`."""
    return default_specs(opts.entity, scan_families(opts))


def _check_options(opts: ScanOptions) -> None:
    if not opts.inputs:
        raise UsageError("no input paths given")
    for fmt, path in opts.inputs:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        if not path.exists():
            raise UsageError(f"no such file or directory: {path}")
    if opts.window not in ("1d", "1h"):
        raise UsageError(f"unknown window {opts.window!r}; choose 1d or 1h")
    if opts.entity not in ("user", "host"):
        raise UsageError(f"unknown entity {opts.entity!r}; choose user or host")
    if opts.slice_days is not None and opts.slice_days < 1:
        raise UsageError(f"slice of {opts.slice_days} days: give at least 1 day")
    try:
        scan_families(opts)
        resolve_tz(opts.tz)
        check_year(opts.year)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for flag, directory in (("--out", opts.out), ("--save-model", opts.save_model)):
        if directory is not None and directory.exists() and not directory.is_dir():
            raise UsageError(f"{flag} {directory} is a file, not a directory")
    if opts.jsonl_mapping is not None:
        _check_mapping(opts.jsonl_mapping)
    if opts.model is None and opts.detector not in BATCH_DETECTORS:
        kind = "an online detector" if opts.detector in ONLINE_DETECTORS else "not a detector"
        raise UsageError(
            f"--detector {opts.detector!r} is {kind}; the scan fits batch detectors: "
            f"{', '.join(sorted(BATCH_DETECTORS))}"
        )
    if opts.model is not None:
        saved = saved_model_settings(opts.model)
        for name, asked in (("window", opts.window), ("entity", opts.entity)):
            fitted = saved.get(name)
            if fitted is not None and fitted != asked:
                flag = f"--{name}"
                raise UsageError(
                    f"the model in {opts.model} was fitted with {flag} {fitted}; "
                    f"this scan asks for {flag} {asked}"
                )
        # Models saved before the families were recorded had none.
        fitted_families = saved.get("families", "")
        asked_families = ",".join(scan_families(opts))
        if fitted_families != asked_families:
            raise UsageError(
                f"the model in {opts.model} was fitted with --families "
                f"{fitted_families or 'none'}; this scan asks for --families "
                f"{asked_families or 'none'}"
            )


#: Event fields a JSON-lines mapping may name (``attrs`` takes every other key).
MAPPABLE_FIELDS: Final = ("ts", "source", "action", "user", "host", "target", "bytes", "outcome")


def _warn_disjoint_formats(
    files: Sequence[tuple[str, Path]],
    time_ranges: Mapping[Path, tuple[datetime | None, datetime | None]],
) -> None:
    """Warn when inputs of different formats do not overlap in time.

    Their entities would then be trained and scored in different periods (LANL's relative
    times read from the default 1970 epoch beside CERT logs of 2010, say). ``time_ranges``:
    each spooled part's first and last event, the part named ``part-FILE-PIECE`` after its
    index in ``files``.
    """
    spans: dict[str, tuple[datetime, datetime]] = {}
    for part, (first, last) in time_ranges.items():
        if first is None or last is None:
            continue
        fmt = files[int(part.name.split("-")[1])][0]
        lo, hi = spans.get(fmt, (first, last))
        spans[fmt] = (min(lo, first), max(hi, last))
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    for (fmt_a, (lo_a, hi_a)), (fmt_b, (lo_b, hi_b)) in itertools.combinations(ordered, 2):
        if hi_a < lo_b:
            hint = (
                "; LANL times count from --lanl-epoch (default 1970-01-01T00:00:00Z): give the "
                "instant of LANL time 0"
                if "lanl" in (fmt_a, fmt_b)
                else ""
            )
            log.warning(
                "%s events (%s to %s) and %s events (%s to %s) do not overlap in time: the "
                "default training split falls in one of them%s",
                fmt_a,
                lo_a.date(),
                hi_a.date(),
                fmt_b,
                lo_b.date(),
                hi_b.date(),
                hint,
            )


def _check_mapping(mapping: Mapping[str, Any]) -> None:
    """A JSON-lines mapping names Event fields, each with a path or a list of paths, and
    may hold an ``actions`` table (the log's action -> baseliner's action)."""
    for name, paths in mapping.items():
        if name in (ACTIONS_KEY, ATTRS_KEY):
            try:
                (action_table if name == ACTIONS_KEY else attrs_table)(paths)
            except ValueError as exc:
                raise UsageError(f"mapping: {exc}") from None
            continue
        if name not in MAPPABLE_FIELDS:
            raise UsageError(
                f"mapping: {name!r} is not an Event field; map any of "
                f"{', '.join(MAPPABLE_FIELDS)} (and {ACTIONS_KEY!r}, a table of actions, and "
                f"{ATTRS_KEY!r}, a table of attribute paths)"
            )
        if not (
            isinstance(paths, str)
            or (isinstance(paths, list) and paths and all(isinstance(p, str) for p in paths))
        ):
            raise UsageError(
                f"mapping: {name!r} must map to a JSON path or a list of paths, got {paths!r}"
            )


def saved_model_settings(model: Path) -> dict[str, str]:
    """The settings a model saved by ``--save-model`` into ``model`` was fitted with.

    Reads only the model file's header: ``detector``, ``entity`` and ``window`` (those it
    records). A missing or unreadable model is a :class:`UsageError`.
    """
    path = model / MODEL_FILE
    if not path.is_file():
        raise UsageError(f"no saved model in {model} (expected {path})")
    try:
        header = read_header(path.read_bytes(), str(path))
    except (ModelStoreError, OSError) as exc:
        raise UsageError(f"cannot use model {path}: {exc}") from None
    metadata = header.get("metadata")
    if not isinstance(metadata, dict):
        return {}
    return {key: str(value) for key, value in metadata.items() if isinstance(value, str)}


def _input_files(opts: ScanOptions) -> list[tuple[str, Path]]:
    """The files the reader will take, with their format (directories expanded).

    A file named twice (the same path given twice, or a directory and a file in it) is read
    once, at its first mention, and a warning names the repeat.
    """
    files: list[tuple[str, Path]] = []
    seen: dict[Path, Path] = {}
    for fmt, path in opts.inputs:
        try:
            # Listed, not read: reading a JSON-lines file here would parse all of it.
            found = batch_files([path], fmt)
            if fmt == "parquet":
                # Only footers: a file that is not Parquet, or without the entity to score,
                # is refused before any reading.
                for file in found:
                    check_parquet_events(file, (*PARQUET_REQUIRED, opts.entity))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        repeats: list[Path] = []
        for file in found:
            key = file.resolve()
            if key in seen:
                repeats.append(file)
                continue
            seen[key] = file
            files.append((fmt, file))
        if repeats:
            shown = ", ".join(str(f) for f in repeats[:3]) + (", ..." if len(repeats) > 3 else "")
            log.warning("%s names files already given (%s): each is read once", path, shown)
    return files


def read_vectors(
    opts: ScanOptions,
    spool: Path,
    action_counts: Counter[str] | None = None,
    miner_states: dict[str, bytes] | None = None,
) -> tuple[pl.DataFrame, int, pl.DataFrame, dict[str, float]]:
    """Read every input file and evaluate the feature specs.

    Each file is parsed once, a CERT or LANL file one piece of :data:`PIECE_BYTES` at a
    time, a JSON-lines file one of :data:`streams.batch.JSONL_PIECE_BYTES`: its events,
    reduced to the columns the specs read (and the ``attrs`` keys they read), and each
    line's verdict are spooled to Parquet parts, so reading does not grow memory with the
    number of days; only a piece with a failing line (a blank one included) is read again,
    for the text of its rejects (:func:`streams.batch.collect_judged`). :data:`READ_WORKERS`
    pieces are read at once, their verdicts taken in reading order. The features are then
    evaluated one slice of ``opts.slice_days`` days of windows at a time
    (:class:`features.sliced.SlicedFeatures`, which carries the history the next slices
    need): a slice reads from every part just the row groups of its time
    range (the next slice is read while one is evaluated), so memory holds two slices of
    events, not the whole period.
    Where a part is not in time order a slice would re-read all of it, so the whole range is
    evaluated at once instead (streaming from disk), and a log line says which file. Returns
    the vectors (sorted by entity and window, as :func:`features.batch.evaluate_batch`
    returns them), the number of events, the rejected lines and stage timings; the valid
    events per action are added to ``action_counts`` when given. A ``syslog`` input's template
    miner starts from the templates saved with ``opts.model`` (:data:`TEMPLATES_FILE`), and its
    state at the end goes into ``miner_states`` (by format) when given.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    files = _input_files(opts)
    if not files:
        names = ", ".join(str(p) for _, p in opts.inputs)
        raise UsageError(f"no log files found in {names}")
    spool.mkdir(parents=True, exist_ok=True)
    specs = scan_specs(opts)
    config = WindowConfig(entity=opts.entity, window=opts.window)
    # One parser per line format for the whole scan: the syslog format's learns templates
    # as it reads, every piece of every file in order (pieces are parsed on this thread).
    line_parsers: dict[str, Parser] = {}
    columns = sorted(required_columns(specs, config))
    # Spooled narrowed: an attrs key only where a spec reads it (a URL only on the downloads
    # a pattern searches), which the features read back the same as the whole column.
    spooled = narrowed_columns(specs, config)
    keys = attrs_keys(specs)
    total_bytes = sum(f.stat().st_size for _, f in files)
    parts: list[Path] = []
    n_events = 0
    unordered: list[Path] = []
    time_ranges: dict[Path, tuple[datetime | None, datetime | None]] = {}
    blocks: dict[Path, tuple[_Block, ...]] = {}
    schema: dict[str, pl.DataType] = {}
    reject_frames: list[pl.DataFrame] = []
    # Pieces are read READ_WORKERS at a time (polars releases the GIL while it reads), and
    # their verdicts are taken in reading order, so the part numbers, the order of the
    # rejects and the progress bar are those of reading one piece after another; a new piece
    # is cut only once fewer than READ_WORKERS are in flight, which bounds memory.
    in_flight: deque[tuple[Future[_PartVerdict], Path, Path, int]] = deque()
    fmt_of = {path: fmt for fmt, path in files}

    def settle_oldest() -> None:
        nonlocal n_events
        future, path, part, n_bytes = in_flight.popleft()
        try:
            verdict = future.result()
        except pl.exceptions.PolarsError as exc:
            # A file that passed the checks but cannot be read (a Parquet file corrupt past
            # its footer): one line naming it, not a traceback.
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{path}: cannot read as {fmt_of[path]}: {detail}") from None
        bar.update(n_bytes)
        time_ranges[part] = (verdict.first, verdict.last)
        blocks[part] = verdict.blocks
        schema.update(verdict.schema)
        n_events += verdict.events
        if action_counts is not None:
            action_counts.update(verdict.actions)
        if verdict.unordered and path not in unordered:
            unordered.append(path)
        rejects = verdict.rejects
        if opts.strict and rejects.height:
            first = rejects.row(0, named=True)
            raise DataError(
                f"{first['file']}:{first['line']}: {first['reason']} (--strict stops here)"
            )
        if rejects.height:
            reject_frames.append(rejects)

    with (
        tqdm(
            total=total_bytes,
            unit="B",
            unit_scale=True,
            desc="reading",
            disable=not opts.progress,
            leave=False,
        ) as bar,
        ThreadPoolExecutor(max_workers=READ_WORKERS, thread_name_prefix="read") as pool,
    ):
        for i, j, fmt, path, piece, n_bytes in _pieces(files):
            try:
                if fmt in LINE_FORMATS:
                    if fmt not in line_parsers:
                        line_parsers[fmt] = line_parser(fmt, year=opts.year, tz=opts.tz)
                        _restore_templates(line_parsers[fmt], opts.model)
                    assert isinstance(piece, LinePiece)
                    batch = scan_line_events(path, line_parsers[fmt], attrs_keys=keys, piece=piece)
                else:
                    batch = scan_events(
                        [path],
                        fmt,  # type: ignore[arg-type]
                        lanl_epoch=opts.lanl_epoch,
                        jsonl_mapping=opts.jsonl_mapping,
                        attrs_keys=keys,
                        piece=piece if isinstance(piece, LinePiece) else None,
                        rows=piece if isinstance(piece, tuple) else None,
                    )
            except ValueError as exc:
                # The reader names the file (a CERT header it cannot place, a bad Parquet file).
                raise UsageError(str(exc)) from None
            part = spool / f"part-{i:04d}-{j:05d}.parquet"
            parts.append(part)
            spooling = pool.submit(_spool_piece, batch, spooled, part, action_counts is not None)
            in_flight.append((spooling, path, part, n_bytes))
            if len(in_flight) >= READ_WORKERS:
                settle_oldest()
        while in_flight:
            settle_oldest()
    reject_frame = pl.concat(reject_frames) if reject_frames else pl.DataFrame(schema=REJECT_SCHEMA)
    timings["read_s"] = time.perf_counter() - t0
    _warn_disjoint_formats(files, time_ranges)

    t1 = time.perf_counter()
    if miner_states is not None:
        for fmt, parser in line_parsers.items():
            miner = template_miner(parser)
            if miner is not None:
                miner_states[fmt] = miner.state()
    if n_events == 0:
        raise NoEventsError(_no_events_message(files, reject_frame), reject_frame)
    if opts.slice_days is None:
        vectors = _evaluate_whole_range(specs, config, parts, columns, schema)
    elif unordered:
        log.info(
            "%s not in time order: evaluating the features over the whole range at once "
            "(memory grows with the number of days)",
            ", ".join(str(p) for p in unordered),
        )
        vectors = _evaluate_whole_range(specs, config, parts, columns, schema)
    else:
        vectors = _evaluate_in_slices(
            specs,
            config,
            parts,
            columns,
            opts.slice_days,
            time_ranges,
            spill=spool,
            blocks=blocks,
            schema=schema,
        )
    timings["features_s"] = time.perf_counter() - t1
    return vectors, n_events, reject_frame, timings


def _restore_templates(parser: Parser, model: Path | None) -> None:
    """Start ``parser``'s template miner (if it has one) from the templates saved with
    ``model``: the ids its template features were fitted on. A model saved without them
    (before they were kept) is used with new ids, and a warning says so."""
    miner = template_miner(parser)
    if miner is None or model is None:
        return
    path = model / TEMPLATES_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        log.warning(
            "%s has no syslog templates (saved before they were kept): this scan mines them "
            "anew, so its template ids may not be those the model was fitted on",
            model,
        )
        return
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        miner.restore(data)
    except ValueError as exc:
        raise UsageError(f"cannot use the syslog templates in {path}: {exc}") from None


@dataclass(frozen=True)
class _PartVerdict:
    """What the read loop keeps of one spooled part: its event count and time range, whether
    its events are out of time order, and its rejected lines."""

    events: int
    unordered: bool
    first: datetime | None
    last: datetime | None
    rejects: pl.DataFrame
    actions: dict[str, int] = field(default_factory=dict)
    """Its valid events per action."""
    blocks: tuple[_Block, ...] = ()
    """Per block of :data:`SPOOL_ROW_GROUP` rows, in order, its first and last event time
    (``None`` for a block without events): :func:`_block_times`."""
    schema: dict[str, pl.DataType] = field(default_factory=dict)
    """Every spooled column's type, those left out of the part (null in every row) included:
    what :func:`_scan_parts` reads them back as."""


#: The first and last event time of a block of a spooled part (``None``: no event in it).
_Block = tuple[datetime, datetime] | None


def _block_times(judged: pl.DataFrame, events: int) -> tuple[_Block, ...]:
    """The first and last event time of each block of :data:`SPOOL_ROW_GROUP` rows of a
    spooled frame (``events`` of its rows are events, the others rejected lines).

    Examples
    --------
    >>> ts = [datetime(2010, 1, d, tzinfo=UTC) for d in (3, 1, 2)]
    >>> judged = pl.DataFrame({"ts": ts, "reason": [None, "bad_timestamp", None]})
    >>> [(b[0].day, b[1].day) for b in _block_times(judged, 2) if b is not None]
    [(2, 3)]
    """
    times = judged.get_column("ts")
    # Nearly every part is events only: then no filter copies its times.
    valid = None if events == judged.height else judged.get_column("reason").is_null()
    found: list[_Block] = []
    for start in range(0, judged.height, SPOOL_ROW_GROUP):
        block = times.slice(start, SPOOL_ROW_GROUP)
        if valid is not None:
            block = block.filter(valid.slice(start, SPOOL_ROW_GROUP))
        first, last = block.min(), block.max()
        found.append(
            (first, last) if isinstance(first, datetime) and isinstance(last, datetime) else None
        )
    return tuple(found)


def _spool_piece(
    batch: BatchScan, columns: Sequence[str | pl.Expr], part: Path, count_actions: bool = True
) -> _PartVerdict:
    """Spool one piece's judged lines (``columns`` and ``reason``) to ``part``, and its verdict.

    The verdict comes from the collected frame rather than a second read of the part; its
    events per action only with ``count_actions`` (a group-by over every event's action).
    """
    judged, rejects = collect_judged(batch, columns)
    judged = _flat_attrs(judged)
    # A column null in every row (``reason`` where no line was rejected, the ``outcome`` of
    # CERT events, say) is left out and read back as nulls (:func:`_scan_parts`): writing and
    # reading all those nulls cost about as much as a column of values.
    null = [
        name for name in judged.columns if judged.get_column(name).null_count() == judged.height
    ]
    judged.drop(null if judged.height else []).write_parquet(
        part,
        compression=SPOOL_COMPRESSION,
        statistics=_SPOOL_STATISTICS,
        row_group_size=SPOOL_ROW_GROUP,
    )
    event_ts = pl.col("ts").filter(pl.col("reason").is_null())
    events, unordered, first, last = judged.select(
        pl.col("reason").is_null().sum().alias("events"),
        (event_ts.diff().dt.total_microseconds() < 0).any().alias("unordered"),
        event_ts.min().alias("first"),
        event_ts.max().alias("last"),
    ).row(0)
    per_action: dict[str, int] = {}
    if count_actions and "action" in judged.columns and events:
        # Lazy, so that only the two columns are read: a filter of the whole frame copies all.
        counted = (
            judged.lazy().filter(pl.col("reason").is_null()).group_by("action").len().collect()
        )
        per_action = {action: n for action, n in counted.iter_rows() if action is not None}
    blocks = _block_times(judged, events)
    return _PartVerdict(
        events, bool(unordered), first, last, rejects, per_action, blocks, dict(judged.schema)
    )


def _flat_attrs(judged: pl.DataFrame) -> pl.DataFrame:
    """``judged`` with an ``attrs`` struct replaced by a column per field (``attrs.<key>``).

    :func:`_scan_parts` reads them back as the struct: the same fields, in the same order.
    (A null struct would come back as a struct of nulls, which its fields read the same; the
    spooled ``attrs`` is never null, a struct of the keys the specs read.)

    Examples
    --------
    >>> judged = pl.DataFrame({"ts": [1], "attrs": [{"url": "a.com", "size": None}]})
    >>> _flat_attrs(judged).columns
    ['ts', 'attrs.url', 'attrs.size']
    """
    attrs = judged.schema.get("attrs")
    if not isinstance(attrs, pl.Struct):
        return judged
    fields = judged.get_column("attrs").struct.unnest()
    flat = [fields.get_column(f.name).alias(_ATTRS_FIELD + f.name) for f in attrs.fields]
    return judged.drop("attrs").with_columns(flat)


def _pieces(
    files: Sequence[tuple[str, Path]],
) -> Iterator[tuple[int, int, str, Path, LinePiece | tuple[int, int] | None, int]]:
    """(file number, piece number, format, path, piece, bytes it stands for) of every piece.

    Every file is read a piece at a time (lines, or a Parquet file's rows): a polars pass
    over a whole file holds memory in proportion to the file (1.7 GB for 1.35 GB of proxy
    log), and so would the JSON parser's columns. Pieces are cut lazily, one per step.
    """
    for i, (fmt, path) in enumerate(files):
        size = path.stat().st_size
        if fmt in ("cert", "lanl", "jsonl", *LINE_FORMATS):
            piece_bytes = {"jsonl": JSONL_PIECE_BYTES}.get(
                fmt, LINE_PIECE_BYTES if fmt in LINE_FORMATS else PIECE_BYTES
            )
            try:
                # A gzip file is read decompressed; a corrupt one is named in one line.
                for j, piece in enumerate(line_pieces(path, piece_bytes)):
                    yield i, j, fmt, path, piece, len(piece.data)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        elif fmt == "parquet":
            ranges = _row_ranges(path, PARQUET_PIECE_ROWS)
            rows_total = max(sum(n for _, n in ranges), 1)
            for j, rows in enumerate(ranges):
                yield i, j, fmt, path, rows, size * rows[1] // rows_total
        else:  # pragma: no cover - formats are checked before reading
            yield i, 0, fmt, path, None, size


def _row_ranges(path: Path, size: int) -> list[tuple[int, int]]:
    """(first row, number of rows) of consecutive ranges of ``size`` rows of a Parquet file."""
    total = pl.scan_parquet(path).select(pl.len()).collect().item()
    return [(start, min(size, total - start)) for start in range(0, total, size)] or [(0, 0)]


def _scan_parts(parts: list[Path] | Path, schema: Mapping[str, pl.DataType] | None) -> pl.LazyFrame:
    """Spooled parts, with the columns :func:`_spool_piece` left out (null in every row of a
    part) read back as nulls of their ``schema`` type (:attr:`_PartVerdict.schema`); without
    a ``schema``, the parts as they are. The ``attrs`` fields spooled as columns of their
    own (:func:`_flat_attrs`) come back as the one ``attrs`` struct."""
    if schema is None:
        frame = pl.scan_parquet(parts)
        names = frame.collect_schema().names()
    else:
        frame = pl.scan_parquet(parts, schema=dict(schema), missing_columns="insert")
        names = list(schema)
    fields = [name for name in names if name.startswith(_ATTRS_FIELD)]
    if not fields:
        return frame
    attrs = pl.struct(pl.col(name).alias(name[len(_ATTRS_FIELD) :]) for name in fields)
    return frame.with_columns(attrs.alias("attrs")).drop(fields)


def _evaluate_whole_range(
    specs: Sequence[FeatureSpec],
    config: WindowConfig,
    parts: list[Path],
    columns: list[str],
    schema: Mapping[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    events = _scan_parts(parts, schema).filter(pl.col("reason").is_null()).select(columns)
    return evaluate_batch(specs, events, config).collect(engine="streaming")


def _evaluate_in_slices(
    specs: Sequence[FeatureSpec],
    config: WindowConfig,
    parts: list[Path],
    columns: list[str],
    slice_days: int,
    time_ranges: Mapping[Path, tuple[datetime | None, datetime | None]],
    spill: Path | None = None,
    blocks: Mapping[Path, Sequence[_Block]] | None = None,
    schema: Mapping[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    """The features of the spooled events, one slice of ``slice_days`` days at a time.

    Slices start at the first event's window and are whole multiples of the window (a day
    or an hour), so every window falls in exactly one slice and each slice holds every
    event of its windows. ``time_ranges``: each part's first and last event time (``None``
    for a part without events), which give the slices' bounds without another read; a slice
    then opens only the parts that reach into it, which keeps the reader's buffers and its
    per-file work from growing with the number of parts.
    Each slice is read on a worker thread while the one before it is evaluated, so memory
    holds two slices of events. ``spill``: a directory where each slice's vectors wait (Arrow
    IPC, deleted once read back) instead of in memory, so the slices' peak does not grow with
    the vectors of the days before (44 MB at 180 days of 1,000 users); they are read back
    only after the last slice, whose working memory is free by then. ``blocks``: each part's
    :attr:`_PartVerdict.blocks`, whose times pick the rows a slice reads (without them a
    slice reads every row of the parts that reach into it). ``schema``: the spooled columns'
    types (:func:`_scan_parts`), for parts that leave out their all-null columns.
    """
    valid = pl.col("reason").is_null()
    firsts = [first for first, _ in time_ranges.values() if first is not None]
    lasts = [last for _, last in time_ranges.values() if last is not None]
    sliced = SlicedFeatures(specs, config)
    if not firsts:
        return sliced.evaluate(_scan_parts(parts, schema).filter(valid).select(columns).collect())
    start = pl.select(pl.lit(min(firsts)).dt.truncate(config.window)).item()
    hi = max(lasts)
    step = timedelta(days=slice_days)
    starts = [start]
    # Differences, not sums: a slice of late 9999 would end past the last datetime.
    while hi - starts[-1] >= step:
        starts.append(starts[-1] + step)

    def read_slice(start: datetime) -> pl.DataFrame | None:
        end = _shifted(start, step)
        in_slice = (pl.col("ts") >= start) & (pl.col("ts") < end)
        # In reading order, so the slice's rows keep the order of a read of every part.
        reaching = [
            part
            for part in parts
            if (first := time_ranges[part][0]) is not None
            and (last := time_ranges[part][1]) is not None
            and first < end
            and last >= start
        ]
        if not reaching:
            return None
        if blocks is None:
            return _scan_parts(reaching, schema).filter(valid & in_slice).select(columns).collect()
        # Of each part, the one range of rows from the first to the last block reaching into
        # the slice (a time-ordered part's are consecutive); the others are never read.
        ranges: list[pl.LazyFrame] = []
        for part in reaching:
            near = [
                index
                for index, block in enumerate(blocks[part])
                if block is not None and block[0] < end and block[1] >= start
            ]
            if near:
                rows = (near[-1] - near[0] + 1) * SPOOL_ROW_GROUP
                ranges.append(_scan_parts(part, schema).slice(near[0] * SPOOL_ROW_GROUP, rows))
        if not ranges:
            return None
        return pl.concat(ranges).filter(valid & in_slice).select(columns).collect()

    pieces: list[pl.DataFrame | Path] = []
    # The next slice is read while this one is evaluated (polars releases the GIL): the
    # read takes the second core instead of a turn of the stage, for one more slice in memory.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="slice-read") as reader:
        pending = reader.submit(read_slice, starts[0])
        for index in range(len(starts)):
            frame = pending.result()
            if index + 1 < len(starts):
                pending = reader.submit(read_slice, starts[index + 1])
            if frame is not None and frame.height:
                vectors = sliced.evaluate(frame)
                if spill is None:
                    pieces.append(vectors)
                    continue
                path = spill / f"vectors-{index:05d}.arrow"
                vectors.write_ipc(path, compression="uncompressed")
                pieces.append(path)
    log.debug("features of %d slices of %d days", len(pieces), slice_days)
    del sliced, frame  # the history and the last slice: not needed for the concatenation
    frames = [_read_spilled(piece) if isinstance(piece, Path) else piece for piece in pieces]
    pieces.clear()
    # Not rechunked: the sort gathers into new columns anyway, so a contiguous copy of the
    # pieces would only be a third copy of the vectors at the stage's end.
    whole = pl.concat(frames, rechunk=False)
    frames.clear()
    return whole.sort(ENTITY, WINDOW)


def _read_spilled(path: Path) -> pl.DataFrame:
    """One slice's vectors spilled by :func:`_evaluate_in_slices`, read and deleted."""
    vectors = pl.read_ipc(path)
    path.unlink()
    return vectors


#: Quantiles of the window starts that bound the bulk of the data for the default split: 1%
#: rather than 0.1%, so that one stray window among a few hundred is still outside them.
_BULK_QUANTILES: Final = (0.01, 0.99)


def _shifted(at: datetime, by: timedelta) -> datetime:
    """``at + by``, held at the first or last datetime rather than past it (the bounds of a
    slice or of the training range near year 1 or 9999).

    Examples
    --------
    >>> _shifted(datetime(9999, 12, 30, tzinfo=UTC), timedelta(days=7)).isoformat()
    '9999-12-31T23:59:59.999999+00:00'
    """
    try:
        return at + by
    except OverflowError:
        return (datetime.max if by > timedelta(0) else datetime.min).replace(tzinfo=at.tzinfo)


#: Windows further outside the bulk than this share of its span (or a week, if more) are
#: outliers: left out of the default split and named in a warning.
_OUTLIER_MARGIN: Final = 0.25
_OUTLIER_MIN_MARGIN: Final = timedelta(days=7)


def _default_train_until(vectors: pl.DataFrame, window: timedelta) -> datetime:
    """The start of the first window after the first third of the data's time range.

    The range runs from the first to the last window start that lie near the bulk of the
    data (between the 1% and 99% quantiles of the window starts, give or take a quarter
    of their span or a week): a few events stamped years away (a mistyped clock, a LANL file
    read without its ``--lanl-epoch``) would otherwise put the whole of the real data on one
    side of the split. Such outlying windows are named in a warning. Without outliers the
    range is the whole of the data, first to last window.

    Examples
    --------
    >>> days = [datetime(2010, 1, 1, tzinfo=UTC) + timedelta(days=d) for d in range(30)]
    >>> frame = pl.DataFrame({"window_start": days * 50 + [datetime(2030, 1, 1, tzinfo=UTC)]})
    >>> _default_train_until(frame, timedelta(days=1)).date()
    datetime.date(2010, 1, 11)
    """
    starts = vectors["window_start"]
    if starts.len() == 0 or starts.null_count() == starts.len():
        raise DataError("the input holds no windows to split into training and scoring")
    bulk_lo, bulk_hi = (starts.quantile(q, interpolation="nearest") for q in _BULK_QUANTILES)
    assert isinstance(bulk_lo, datetime) and isinstance(bulk_hi, datetime)
    margin = max((bulk_hi - bulk_lo) * _OUTLIER_MARGIN, _OUTLIER_MIN_MARGIN)
    inside = starts.is_between(_shifted(bulk_lo, -margin), _shifted(bulk_hi, margin))
    lo, hi = starts.filter(inside).min(), starts.filter(inside).max()
    assert isinstance(lo, datetime) and isinstance(hi, datetime)
    outliers = starts.filter(~inside & starts.is_not_null())
    if outliers.len():
        log.warning(
            "%d of %d windows lie far outside the bulk of the data (%s to %s), from %s to %s: "
            "left out of the default training split; check their timestamps (or the "
            "--lanl-epoch), or give --train-until",
            outliers.len(),
            starts.len(),
            lo.date(),
            hi.date(),
            outliers.min(),
            outliers.max(),
        )
    cut = lo + (hi + window - lo) / 3
    return (
        cut.replace(hour=0, minute=0, second=0, microsecond=0)
        if window >= timedelta(days=1)
        else cut.replace(minute=0, second=0, microsecond=0)
    )


def run_scan(opts: ScanOptions) -> ScanResult:
    """Run a whole scan and write its outputs into ``opts.out``.

    Once the options are checked, an earlier scan's results in ``opts.out`` are removed
    (:data:`RESULT_FILES`, the plots, ``summary.json`` and ``dead_letters.jsonl``), so a scan
    that then fails never leaves them to pass for its own: it writes a ``summary.json`` whose
    ``status`` is ``"failed"`` with the ``error``, and a finished scan's says ``"ok"``.
    """
    _check_options(opts)
    allowlist = Allowlist.load(opts.allowlist) if opts.allowlist else Allowlist()
    try:
        opts.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {opts.out}: cannot create it: {exc.strerror or exc}") from None
    _remove_results(opts.out)
    for name in ("summary.json", "dead_letters.jsonl"):
        (opts.out / name).unlink(missing_ok=True)
    try:
        return _run_checked_scan(opts, allowlist)
    except NoEventsError:
        raise  # its summary.json, with the rejected lines' reasons, is written already
    except BaseException as exc:
        _write_failed_summary(opts.out, exc)
        raise


def _write_failed_summary(out: Path, exc: BaseException) -> None:
    """``summary.json`` of a scan that stopped: its status and the error, no results."""
    error = str(exc).strip() or type(exc).__name__
    summary = {"status": "failed", "error": error, "outputs": {}}
    try:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    except OSError as write_error:
        log.warning("cannot write %s: %s", out / "summary.json", write_error)


def _run_checked_scan(opts: ScanOptions, allowlist: Allowlist) -> ScanResult:
    """:func:`run_scan` once its options are checked and ``opts.out`` is ready."""
    spool = opts.out / ".spool"
    skipped = _warn_skipped_files(opts)
    action_counts: Counter[str] = Counter()
    miner_states: dict[str, bytes] = {}
    try:
        vectors, n_events, rejects, timings = read_vectors(opts, spool, action_counts, miner_states)
    except NoEventsError as exc:
        # The rejected lines are what the user needs to see: they are written all the same,
        # and an earlier run's results in the same folder must not pass for this run's.
        _remove_results(opts.out)
        dead_path = _write_dead_letters(opts.out, exc.rejects)
        message = str(exc) + (f"; see {dead_path}" if exc.rejects.height else "")
        summary = {
            "status": "failed",
            "error": message,
            "events": 0,
            "dead_letters": exc.rejects.height,
            "dead_letter_reasons": reason_counts(exc.rejects),
            "windows": 0,
            "alerts": 0,
            "outputs": {"dead_letters": str(dead_path)},
        }
        (opts.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        raise NoEventsError(message, exc.rejects) from None
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    without_entity = _check_entities(opts, vectors, n_events)
    unread = _warn_unread_actions(opts, action_counts, n_events)
    specs = scan_specs(opts)
    window = _window_delta(opts.window)
    cert_paths = [p for fmt, p in opts.inputs if fmt == "cert"]
    groups = peer_groups_beside(cert_paths) if opts.entity == "user" else {}

    t2 = time.perf_counter()
    train_until: datetime | None
    if opts.model is not None:
        try:
            pipeline = load_model(
                opts.model / MODEL_FILE, expected_schema_hash=spec_schema_hash(specs)
            )
        except ModelStoreError as exc:
            raise UsageError(f"cannot use model {opts.model / MODEL_FILE}: {exc}") from None
        if not isinstance(pipeline, Pipeline):
            raise UsageError(f"{opts.model / MODEL_FILE} does not hold a baseliner pipeline")
        _check_model_fits(opts, pipeline, window)
        if opts.budget_given:
            # A budget is the operator's choice for these logs, not part of what was learnt.
            pipeline.config = replace(pipeline.config, budget=opts.budget)
        to_score = vectors
        train_until = None
        _check_budget(pipeline.config.budget, to_score, window)
    else:
        if opts.train_until is not None:
            train_until = _train_until_instant(opts.train_until, opts.window)
        else:
            train_until = _default_train_until(vectors, window)
        train = vectors.filter(pl.col("window_start") < train_until)
        to_score = vectors.filter(pl.col("window_start") >= train_until)
        shown = _instant_text(train_until, opts.window)
        if train.height == 0:
            raise UsageError(f"--train-until {shown} leaves no training windows")
        if to_score.height == 0:
            raise UsageError(f"--train-until {shown} leaves nothing to score")
        _check_budget(opts.budget, to_score, window)
        _warn_short_training(train, window, shown)
        config = PipelineConfig(
            detector=opts.detector,
            detector_params=dict(opts.detector_params),
            seed=opts.seed,
            budget=opts.budget,
            entity_type=opts.entity,
            window=window,
        )
        pipeline = Pipeline(specs, config).fit(train, groups=groups)
    timings["fit_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    scored = pipeline.process(to_score)
    suppressed = 0
    if allowlist.entries:
        kept, suppressed = allowlist.apply(scored.alerts)
        if suppressed:
            # Muted findings rank nobody: their windows neither alert nor add entity risk.
            muted = without_muted(scored.windows, scored.alerts, kept)
            scored.entities = entity_risk(muted, pipeline.config.risk)
        scored.alerts = kept
    timings["score_s"] = time.perf_counter() - t3

    outputs = write_outputs(opts, scored, rejects, vectors, pipeline)
    if opts.save_model is not None:
        try:
            opts.save_model.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"--save-model {opts.save_model}: cannot create it: {exc.strerror or exc}"
            ) from None
        save_model(
            opts.save_model / MODEL_FILE,
            pipeline,
            schema_hash=pipeline.schema_hash,
            metadata={
                "detector": pipeline.config.detector,
                "entity": opts.entity,
                "window": opts.window,
                "families": ",".join(scan_families(opts)),
            },
        )
        outputs["model"] = opts.save_model / MODEL_FILE
        templates = opts.save_model / TEMPLATES_FILE
        if "syslog" in miner_states:
            write_atomically(templates, miner_states["syslog"])
            outputs["templates"] = templates
        else:
            templates.unlink(missing_ok=True)  # an earlier model's, not this one's
    result = ScanResult(
        options=opts,
        events=n_events,
        rejects=rejects.height,
        reject_reasons=reason_counts(rejects),
        vectors=vectors,
        train_until=train_until,
        scored=scored,
        pipeline=pipeline,
        timings=timings,
        outputs=outputs,
        suppressed=suppressed,
        without_entity=without_entity,
        unread_actions=unread,
        skipped_files=[str(path) for path in skipped],
    )
    _write_summary(result)
    return result


#: Where each format's events name their user, for the message of a scan that finds none.
_USER_SOURCES: Final = {
    "cert": "the CSV files' user column",
    "lanl": "the source user of auth.txt",
    "jsonl": "user.name or the mapping's user paths",
    "parquet": "the user column",
    "windows": "the event data's account names (machine and system accounts are no users)",
    "authlog": "the accounts of sshd, sudo and su lines",
    "syslog": "nothing: syslog lines name hosts, not users",
}


#: Share of the events without the scan's entity above which a warning (not only the count
#: on screen and in summary.json) says so.
WITHOUT_ENTITY_WARN_SHARE: Final = 0.05

#: Formats whose logs leave many events without a user by nature, and why: their share is
#: said at INFO level with the reason, not warned about (a Windows Security log is a third
#: machine-account logons; warning on every scan would teach users to ignore the warning).
_USERLESS_BY_NATURE: Final = {"windows": "machine and system accounts are no users"}


def _check_entities(opts: ScanOptions, vectors: pl.DataFrame, n_events: int) -> int:
    """How many of the ``n_events`` valid events name no entity of the scan's kind.

    Those reach no window: a log line gives their share (a warning above
    :data:`WITHOUT_ENTITY_WARN_SHARE`), and when no event names one the scan stops with a
    :class:`UsageError` that names the cause and the remedy.
    """
    in_windows = int(vectors["n_events"].sum()) if "n_events" in vectors.columns else n_events
    without = max(n_events - in_windows, 0)
    kind = opts.entity
    if vectors.height == 0:
        formats = sorted({fmt for fmt, _ in opts.inputs})
        if kind == "user":
            where = "; ".join(_USER_SOURCES[fmt] for fmt in formats)
            mapping = (
                " or --mapping to name the field that holds the user" if "jsonl" in formats else ""
            )
            remedy = f"give --entity host to baseline hosts{mapping}"
        else:
            where = "each event's host field"
            remedy = "give --entity user to baseline users"
        raise UsageError(
            f"none of the {n_events:,} events names a {kind} (read from {where}): nothing to "
            f"baseline; {remedy}"
        )
    if without:
        # A few are expected (LANL machine accounts are no users); many mean a wrong mapping.
        share = without / max(n_events, 1)
        read_as = {fmt for fmt, _ in opts.inputs}
        natural = kind == "user" and read_as <= _USERLESS_BY_NATURE.keys()
        why = "".join(f" ({_USERLESS_BY_NATURE[fmt]})" for fmt in sorted(read_as) if natural)
        log.log(
            logging.WARNING if share > WITHOUT_ENTITY_WARN_SHARE and not natural else logging.INFO,
            "%s of %s events (%.1f%%) name no %s%s: they reach no window and are left out "
            "(counted in summary.json as events_without_entity)",
            f"{without:,}",
            f"{n_events:,}",
            100.0 * share,
            kind,
            why,
        )
    return without


def _check_model_fits(opts: ScanOptions, pipeline: Pipeline, window: timedelta) -> None:
    """Refuse a saved model whose verified payload was fitted for another window or entity.

    The model file's header names them too, and a header edited after saving is refused by
    its digest; a model saved before the header had one is checked here, against the
    pipeline's own configuration.
    """
    fitted_window = {timedelta(days=1): "1d", timedelta(hours=1): "1h"}.get(
        pipeline.config.window, str(pipeline.config.window)
    )
    fitted = {"window": fitted_window, "entity": pipeline.config.entity_type}
    for name, asked in (("window", opts.window), ("entity", opts.entity)):
        if fitted[name] != asked:
            raise UsageError(
                f"the model in {opts.model} was fitted with --{name} {fitted[name]}; "
                f"this scan asks for --{name} {asked}"
            )


def _check_budget(budget: Budget, to_score: pl.DataFrame, window: timedelta) -> None:
    """Refuse a budget that allows no alert at all over the windows to score.

    A budget rounds to whole alerts: ``0.0001%`` of 10,000 windows, or ``0.001/day`` over a
    month, is 0 alerts, and a scan that can never alert is more likely a typo than a wish.
    """
    span_days = _span_days(to_score, window)
    # As Budget.alerts_for rounds, without its warning about a budget that covers everything
    # (the pipeline gives that one when it calibrates).
    wanted = budget.wanted(windows=to_score.height, days=span_days)
    if to_score.height and round(wanted) <= 0:
        raise UsageError(
            f"budget {budget} allows no alert over the {to_score.height:,} windows "
            f"({span_days:g} days) to score: give a larger one (e.g. 5/day, 0.5%)"
        )


#: Fewer training days than this make a thin baseline, worth a warning.
MIN_TRAINING_DAYS: Final = 7


def _warn_short_training(train: pl.DataFrame, window: timedelta, shown: str) -> None:
    """Warn when the training period is short: under a week, or under the windows per entity
    that an entity's own baseline needs (most entities are then judged by their peers)."""
    days = _span_days(train, window)
    per_entity = train.height / max(train["entity"].n_unique(), 1)
    if days < MIN_TRAINING_DAYS or per_entity < OWN_BASELINE_MIN_ROWS:
        log.warning(
            "training before %s covers %g day(s), %.1f windows per entity: baselines from "
            "fewer than %d days (or %d windows of an entity) are thin and their alerts "
            "unreliable; give a later --train-until",
            shown,
            days,
            per_entity,
            MIN_TRAINING_DAYS,
            OWN_BASELINE_MIN_ROWS,
        )


#: Windows an entity needs for its own baseline (the pipeline's ``min_history``).
OWN_BASELINE_MIN_ROWS: Final = PipelineConfig.min_history


def _train_until_instant(train_until: date, window: str) -> datetime:
    """``--train-until`` as the instant training ends: a date is its midnight (UTC); a
    date-time (naive ones read as UTC) must fall on a window's start."""
    if not isinstance(train_until, datetime):
        return datetime.combine(train_until, datetime.min.time(), tzinfo=UTC)
    instant = train_until.astimezone(UTC) if train_until.tzinfo else train_until.replace(tzinfo=UTC)
    start = instant.replace(minute=0, second=0, microsecond=0)
    if window == "1d":
        start = start.replace(hour=0)
    if instant != start:
        unit = "midnight (UTC)" if window == "1d" else "the start of an hour"
        raise UsageError(
            f"--train-until {instant.isoformat()} is not at {unit}, where a --window {window} "
            "window starts"
        )
    return instant


def _instant_text(instant: datetime, window: str) -> str:
    """``2010-01-05`` for a midnight with daily windows, else the ISO date-time."""
    if window == "1d" and instant.time() == datetime.min.time():
        return str(instant.date())
    return instant.isoformat()


#: Share of the events above which actions no feature reads are worth a warning.
UNREAD_ACTIONS_SHARE: Final = 0.2
#: Unread actions named in the warning and in ``summary.json``.
UNREAD_ACTIONS_SHOWN: Final = 5


def unread_actions(counts: Mapping[str, int], specs: Sequence[FeatureSpec]) -> dict[str, int]:
    """The counts of the actions that are not baseliner's (:data:`streams.actions.ALL_ACTIONS`)
    and that no spec selects (``where`` ``action`` or ``action~``), the most frequent first.

    Such events feed only the features over every event: a log's own vocabulary (Winlogbeat's
    ``logged-in``, say) that no mapping translated.

    Examples
    --------
    >>> spec = FeatureSpec(name="n", kind="count", where={"action": "logon"})
    >>> unread_actions({"logon": 5, "logoff": 2, "logged-in": 3, "x": 4}, [spec])
    {'x': 4, 'logged-in': 3}
    """
    selected: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for spec in specs:
        for key, value in spec.where.items():
            values = (value,) if isinstance(value, str) else tuple(value)
            if key == "action":
                selected.update(values)
            elif key == "action~":
                patterns += [re.compile(pattern) for pattern in values]
    unread = [
        (action, n)
        for action, n in counts.items()
        if action not in selected
        and action not in ALL_ACTIONS
        and not any(pattern.search(action) for pattern in patterns)
    ]
    return dict(sorted(unread, key=lambda item: (-item[1], item[0])))


def _warn_unread_actions(
    opts: ScanOptions, action_counts: Mapping[str, int], n_events: int
) -> dict[str, int]:
    """:func:`unread_actions` of the scan, with a warning when they are more than
    :data:`UNREAD_ACTIONS_SHARE` of the events, naming the top ones and how to map them."""
    unread = unread_actions(action_counts, scan_specs(opts))
    total = sum(unread.values())
    if n_events and total > UNREAD_ACTIONS_SHARE * n_events:
        top = list(unread.items())[:UNREAD_ACTIONS_SHOWN]
        shown = ", ".join(f"{action!r} {n:,}" for action, n in top)
        formats = {fmt for fmt, _ in opts.inputs}
        example = top[0][0]
        hint = (
            f'translate them in the --mapping file, e.g. "actions": {{"{example}": "logon"}}'
            if "jsonl" in formats
            else "the templates family reads syslog's templates: give --families templates"
            if "syslog" in formats
            else "write baseliner's action names into the action column"
        )
        log.warning(
            "%s of %s events (%.1f%%) have actions that no feature reads (%s%s): only the "
            "counts over every event see them; %s (README: the action vocabulary)",
            f"{total:,}",
            f"{n_events:,}",
            100.0 * total / n_events,
            shown,
            ", ..." if len(unread) > len(top) else "",
            hint,
        )
    return unread


#: Per format, the files of a directory it reads that another format does not: what a
#: directory given with another format leaves unread (``.json`` is left out: a directory of
#: CSV logs may hold a manifest).
_FORMAT_FILES: Final[dict[str, Callable[[Path], list[Path]]]] = {
    "cert": lambda d: batch_files([d], "cert"),
    "lanl": lambda d: batch_files([d], "lanl"),
    "jsonl": lambda d: sorted(p for p in d.iterdir() if p.suffix in (".jsonl", ".ndjson")),
    "parquet": lambda d: batch_files([d], "parquet"),
    "authlog": lambda d: batch_files([d], "authlog"),
    "syslog": lambda d: batch_files([d], "syslog"),
}


def _warn_skipped_files(opts: ScanOptions) -> list[Path]:
    """Files in an input directory that another format would read and that no input reads
    (a generated org's ``auth.txt`` beside its CERT files, with ``--format cert``), with one
    warning naming them and how to read them."""
    read: set[Path] = set()
    directories: list[tuple[str, Path]] = []
    for fmt, path in opts.inputs:
        if path.is_dir():
            directories.append((fmt, path))
        try:
            read.update(p.resolve() for p in batch_files([path], fmt))
        except (OSError, ValueError):
            continue  # refused with its own message when the input is read
    skipped: list[tuple[str, str, Path]] = []
    for fmt, directory in directories:
        for other, files_of in _FORMAT_FILES.items():
            if other == fmt:
                continue
            try:
                found = files_of(directory)
            except (OSError, ValueError):
                continue
            for file in found:
                if file.resolve() not in read and all(file != f for _, _, f in skipped):
                    skipped.append((fmt, other, file))
    if skipped:
        shown = "; ".join(
            f"{file} (not {fmt}: add {other}:{file} to the inputs"
            + (", with --lanl-epoch" if other == "lanl" else "")
            + ")"
            for fmt, other, file in skipped
        )
        log.warning("not read: %s", shown)
    return [file for _, _, file in skipped]


def write_outputs(
    opts: ScanOptions,
    scored: ScoredWindows,
    rejects: pl.DataFrame,
    vectors: pl.DataFrame,
    pipeline: Pipeline,
) -> dict[str, Path]:
    """alerts.jsonl, entities.csv, windows.parquet, dead_letters.jsonl and the reports."""
    from detector.report import write_reports

    out = opts.out
    outputs: dict[str, Path] = {}
    alerts_path = out / "alerts.jsonl"
    with alerts_path.open("wb") as fh:
        for alert in scored.alerts:
            fh.write(orjson.dumps(alert.to_dict()) + b"\n")
    outputs["alerts"] = alerts_path

    entities_path = out / "entities.csv"
    scored.entities.with_columns(pl.col("peak_window").dt.date().alias("peak_window")).write_csv(
        entities_path
    )
    outputs["entities"] = entities_path

    windows_path = out / "windows.parquet"
    scored.windows.write_parquet(windows_path)
    outputs["windows"] = windows_path

    outputs["dead_letters"] = _write_dead_letters(out, rejects)

    outputs.update(write_reports(out, scored, vectors, pipeline, top=opts.report_top))
    return outputs


#: What a scan writes besides ``dead_letters.jsonl`` and ``summary.json``.
RESULT_FILES = ("alerts.jsonl", "entities.csv", "windows.parquet", "report.md", "report.html")


def _remove_results(out: Path) -> None:
    """Remove an earlier scan's results from ``out`` (its entity plots included)."""
    for name in RESULT_FILES:
        (out / name).unlink(missing_ok=True)
    for png in (out / "plots").glob("*.png"):
        png.unlink()


def _write_dead_letters(out: Path, rejects: pl.DataFrame) -> Path:
    """``out/dead_letters.jsonl``: one JSON object per rejected line (file, line, reason, raw)."""
    dead_path = out / "dead_letters.jsonl"
    with dead_path.open("wb") as fh:
        for row in rejects.iter_rows(named=True) if rejects.height else []:
            fh.write(orjson.dumps(row) + b"\n")
    return dead_path


def _write_summary(result: ScanResult) -> None:
    summary = {
        "status": "ok",
        "events": result.events,
        "events_without_entity": result.without_entity,
        "events_with_unread_actions": sum(result.unread_actions.values()),
        "unread_actions": dict(list(result.unread_actions.items())[:UNREAD_ACTIONS_SHOWN]),
        "skipped_files": result.skipped_files,
        "dead_letters": result.rejects,
        "dead_letter_reasons": result.reject_reasons,
        "windows": result.vectors.height,
        "scored_windows": result.scored.windows.height,
        "train_until": result.train_until.isoformat() if result.train_until else None,
        "alerts": len(result.scored.alerts),
        "suppressed_alerts": result.suppressed,
        "threshold": result.scored.threshold,
        "budget": str(result.pipeline.config.budget),
        "detector": result.pipeline.config.detector,
        "seed": result.pipeline.config.seed,
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "outputs": {k: str(v) for k, v in result.outputs.items()},
    }
    path = result.options.out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    result.outputs["summary"] = path
