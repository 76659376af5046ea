"""The streaming daemon behind ``baseliner run``: tail, parse, window, score, alert, checkpoint.

One loop in two stages (the metrics server runs on its own thread and only reads):

1. Poll every source for the complete lines written since the last poll.
2. Parse the lines of the poll into one frame of events (at once where the parser has
   ``parse_batch``, else line by line); a :class:`~streams.errors.ParseError` becomes a dead
   letter (JSON line in ``state_dir/dead_letters.jsonl`` with source, file, line, reason,
   raw) and a metric.
3. Events dated more than ``max_future`` past the wall clock are dead-lettered with reason
   ``future`` (a clock-skewed sender must not move the watermark: every real event after it
   would be late), and so are those dated before the scan's range (``0001-02-01``: a
   ``0001-01-01`` sentinel), with reason ``timestamp_out_of_range``.
   :meth:`ColumnarOnline.update_columns <features.columnar.ColumnarOnline.update_columns>`
   windows the rest by event time; events whose window had already closed are dead-lettered
   with reason ``late``. The watermark is the slowest active source's
   (:class:`~detector.watermark.SourceWatermarks`: a source idle for ``source_idle`` stops
   holding it; after ``close_idle_after`` without any event it moves with the wall clock).
   When it closes windows, their events are evaluated together, columnar.
4. The closed windows go to :class:`~detector.online_scoring.OnlineScorer`: each is scored
   against its entity's own robust baseline (on cold start its peer group's, with ``peers``
   configured, or the population's), weighed by how rare such a deviation is across the
   population, decided at the alert budget (nothing alerts during the warm-up, no day
   exceeds the budget), *then* learnt; alerts carry the entity's decayed risk. Entities the
   features evict or expire lose their baseline too; those that had risk or alerts stay
   in ``entities.csv`` as departed (:mod:`detector.departed`, at most ``departed_entities``).
5. An alert is explained against the entity's typical values (observed against median and
   usual range, with the share of windows deviating as much), filtered by the allow-list
   (reread on SIGHUP and when its file changes, :meth:`Daemon.reload_allowlist`), and
   written to the sinks (:mod:`detector.sinks`: stdout, a rotating JSON-lines file, a
   webhook).

Where the process may use two cores or more, :meth:`Daemon.run` overlaps the stages
(:class:`PollPipeline`): steps 1-2 (reading and parsing) on the main thread, steps 3-5
(handling) on a handler thread, up to :data:`POLLS_IN_FLIGHT` polls behind. Arrow's JSON
reader and polars run without the GIL, and the polls that close windows take far longer to
handle than the others, which the reading stage uses to read ahead. Each stage keeps to its
own state (reading: the sources and the parsers; handling: everything else, the dead-letter
file included: the reading stage's dead letters travel with their poll), the polls are
handled one at a time in the order read, and a checkpoint is written only with nothing in
flight (the pipeline is settled first), so the positions it saves are those of the events
its state holds. On one core each poll is handled as soon as it is parsed, on the main
thread.

Sources: files (followed across rotation), globs, stdin, and the network listeners
(syslog over UDP and TCP, HTTP ingest of JSON lines) of :mod:`streams.sources`.

Checkpoints (every ``checkpoint_seconds`` and on SIGTERM/SIGINT) hold the source positions,
the feature state, the parsers (a template miner learns), the detectors, the calibrator, the
emitted alert ids, the departed entities, the alerts the sinks have not delivered yet and the
running totals, in the verified envelope of :mod:`models.store` (feature-schema hash and
baseliner version in its header), written atomically. A checkpoint written for another
feature schema or another major version, or with another ``detector`` (or
``detector_params``), or a corrupt one, stops the start with one line naming the file. A
changed ``budget`` (or ``expected_entities``) takes effect on the restored scorer: its daily
cap and its threshold's quantile level. A failed checkpoint (disk full) is logged and
counted; the daemon goes on. A restart continues from the positions: no line is counted
twice, none is lost. Alerts written after the last checkpoint are replayed with the same ids;
the JSON-lines sink skips the ids already in its files.

On SIGTERM the network listeners stop accepting, what they queued is processed, the sinks
deliver what they can within their drain time, and a last checkpoint is written: it keeps the
alerts a sink could not deliver yet (a webhook that is down), which the next run sends. The
daemon stops the same way, by itself, when its only sources are stdin and stdin has ended.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import orjson
import polars as pl
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from detector import __version__
from detector.alerts import Alert
from detector.config import DaemonConfig, SourceConfig, implied_families, load_allowlist
from detector.departed import DepartedEntities, StrongestAlert, write_entities
from detector.errors import UsageError
from detector.metrics import DaemonCollector, DaemonGauges, DaemonTotals, serve_metrics

# EntityBaseline: checkpoints of earlier versions pickled it under this module.
from detector.online_scoring import EntityBaseline, OnlineScorer  # noqa: F401
from detector.risk import RiskConfig
from detector.sinks import AlertSink, redacted_url, sink_from_config
from detector.suppression import Allowlist
from detector.watermark import SourceWatermarks, newest_event_us
from features.batch import attrs_keys, spec_schema_hash
from features.catalog import default_specs
from features.columnar import ColumnarOnline
from features.spec import FeatureSpec, WindowConfig
from models.store import (
    CorruptModelError,
    IncompatibleModelError,
    decode_model,
    encode_model,
    read_header,
    remove_stale_temporaries,
    write_atomically,
)
from streams.batch import BATCH_TIME_RANGE, INVALID_UTF8, OUT_OF_RANGE, events_to_frame
from streams.errors import DeadLetter, ParseError
from streams.event import Event, occurrences
from streams.parsers import PARSERS, Parser
from streams.sources import (
    FileTailSource,
    GlobTailSource,
    HttpIngestSource,
    RawRecord,
    StdinSource,
    SyslogTcpSource,
    SyslogUdpSource,
)
from streams.sources.queued import format_hostport

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.bin"
#: The layout of the state a checkpoint holds (in its header): 2 since the features are a
#: :class:`~features.columnar.ColumnarOnline`. A checkpoint of another layout is refused.
CHECKPOINT_LAYOUT = 2
DEAD_LETTER_NAME = "dead_letters.jsonl"
#: Entity risk ranking, rewritten at every checkpoint.
ENTITIES_NAME = "entities.csv"
#: Alerts a previous run's sink had not delivered when that sink is no longer configured.
UNDELIVERED_NAME = "undelivered_alerts.jsonl"
#: Records taken from one source per poll, so signals, checkpoints and scrapes stay timely.
_BATCH = 5000
#: Polls read ahead of the one being handled with two cores or more (:class:`PollPipeline`):
#: on the stream bench 4 gave ~6.7 s, 8 ~5.6 s and 16 ~5.3 s of wall time (1: 8.2 s, as with
#: none); each poll in flight holds its lines and events (a few MB).
POLLS_IN_FLIGHT = 8
#: Events dated before this (microseconds since the epoch) are dead letters: the scan's range.
_EARLIEST_US = (BATCH_TIME_RANGE[0] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
#: Seconds between two estimates of the state's size (it walks the whole state).
_STATE_BYTES_EVERY = 5.0
#: Seconds a stopping daemon keeps reading what the network listeners had queued.
_DRAIN_SECONDS = 5.0
#: Counters of the network sources exported as metrics (those a source has).
_SOURCE_STATS = (
    "received",
    "dropped",
    "oversize",
    "framing_errors",
    "rejected_too_large",
    "rejected_busy",
    "rejected_overloaded",
    "rejected_timeout",
    "connections_refused",
    "idle_timeouts",
)
_NETWORK_TYPES = ("syslog_udp", "syslog_tcp", "http")


class _DepartedCollector(Collector):
    """The departed-entities table's size and the rows its cap dropped, as metrics."""

    def __init__(self, table: Callable[[], DepartedEntities]) -> None:
        self.table = table

    def collect(self) -> Iterator[Any]:
        table = self.table()
        yield GaugeMetricFamily(
            "baseliner_departed_entities",
            "Evicted or expired entities with risk or alerts kept for entities.csv",
            value=len(table),
        )
        yield CounterMetricFamily(
            "baseliner_departed_dropped",
            "Departed entities' rows dropped by daemon.departed_entities (least risky first)",
            value=table.dropped,
        )


class CheckpointError(UsageError):
    """The checkpoint in ``state_dir`` cannot be restored (one line naming the file and why)."""


class _Source(Protocol):
    def read(self) -> Iterator[RawRecord]: ...
    def snapshot(self) -> Any: ...
    @property
    def alive(self) -> bool: ...


def _build_source(config: SourceConfig, resume: Any) -> _Source:
    if config.type == "stdin":
        return StdinSource()
    if config.type in _NETWORK_TYPES:
        return _listen(config, resume)
    assert config.path is not None
    if config.type == "glob":
        return GlobTailSource(str(config.path), resume_state=resume or None)
    return FileTailSource(config.path, resume_state=resume)


def _listen(config: SourceConfig, resume: Any = None) -> _Source:
    """Bind a network source; ``resume``, its last snapshot (a count), continues its numbering.

    Not resumable by position: the senders' retries are the recovery.
    """
    assert config.listen is not None
    host, port = config.listen
    # Anything but a count (a file source's position saved under the same name) starts afresh.
    count = resume if type(resume) is int and resume >= 0 else None
    kinds = {"syslog_udp": SyslogUdpSource, "syslog_tcp": SyslogTcpSource}
    try:
        if config.type == "http":
            source: _Source = HttpIngestSource(host, port, resume_state=count, **config.options)
        else:
            source = kinds[config.type](host, port, resume_state=count, **config.options)
    except OSError as exc:
        raise UsageError(
            f"source {config.name}: cannot listen on {format_hostport(host, port)}:"
            f" {exc.strerror or exc}"
        ) from None
    address = getattr(source, "address", (host, port))
    logger.info(
        "source %s: %s listening on %s", config.name, config.type, format_hostport(*address)
    )
    return source


def _read(source: _Source, limit: int) -> list[Sequence[RawRecord]]:
    """Up to ``limit`` records of ``source``, in pieces: whole blocks where the source reads
    them (a file tail), a bounded batch or a slice of :meth:`read` elsewhere."""
    read_blocks = getattr(source, "read_blocks", None)
    if read_blocks is not None:
        pieces: list[Sequence[RawRecord]] = read_blocks(limit)
        return pieces
    read_batch = getattr(source, "read_batch", None)
    if read_batch is not None:
        return [read_batch(limit)]
    return [list(itertools.islice(source.read(), limit))]


def _close(source: _Source) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()


@dataclass
class _Piece:
    """One piece of a poll of one source, read and parsed, not yet handled."""

    #: Records read (the dead letters among them included).
    read: int
    #: The records the parser was given: the frame's ``record`` column indexes them.
    records: Sequence[RawRecord]
    #: Dead letters of the reading stage (not UTF-8, parse errors), in line order.
    letters: list[DeadLetter]
    #: The events (with ``record``).
    frame: pl.DataFrame


@dataclass
class _SourcePoll:
    """What one poll read from one source."""

    name: str
    #: Monotonic time of the read (alert latency starts there).
    arrival: float
    pieces: list[_Piece]
    lag_bytes: int


@dataclass
class _Poll:
    """One poll of every source, read and parsed: what the handler stage takes."""

    sources: list[_SourcePoll] = field(default_factory=list)
    #: Sources that had ended when the poll was read (stdin at its end).
    ended: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(piece.read for source in self.sources for piece in source.pieces)


def _file_stamp(path: Path | None) -> tuple[int, int, int] | None:
    """A file's modification time, size and inode (``None``: no path, or no such file)."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _decodable(records: Sequence[RawRecord], letters: list[DeadLetter]) -> Sequence[RawRecord]:
    """``records`` less the lines of a file block that are not UTF-8, each added to
    ``letters`` as ``invalid_utf8`` as the scan does (a garbled name would otherwise become a
    new entity). Lines of listeners and stdin come decoded, invalid bytes replaced: a syslog
    message may be in another charset."""
    data = getattr(records, "data", None)
    if not isinstance(data, bytes) or data.isascii():
        return records
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return records
    kept: list[RawRecord] = []
    for index, raw in enumerate(data.split(b"\n")[: len(records)]):
        record = records[index]
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            detail = f"bytes that are not UTF-8 from byte {exc.start + 1} of the line"
            letters.append(
                DeadLetter(record.origin, record.line, INVALID_UTF8, record.text, detail)
            )
        else:
            kept.append(record)
    return kept


def _parse_each(
    parser: Parser, records: Sequence[RawRecord], letters: list[DeadLetter]
) -> pl.DataFrame:
    """The events of a per-line parser as a frame, with ``record`` (index in ``records``);
    the lines it rejects are added to ``letters``."""
    events: list[Event] = []
    indices: list[int] = []
    for index, record in enumerate(records):
        try:
            event = parser.parse(record.text)
        except ParseError as error:
            letters.append(
                DeadLetter(record.origin, record.line, error.reason, record.text, error.detail)
            )
            continue
        if event is not None:
            # A line that folds N repeats of a message is N events (rsyslog).
            repeats = occurrences(event)
            events.extend([event] * repeats)
            indices.extend([index] * repeats)
    return events_to_frame(events).with_columns(pl.Series("record", indices, pl.Int64))


class PollPipeline:
    """The daemon's loop in two stages: the next polls are read and parsed (on the calling
    thread) while earlier ones are handled (on one handler thread), in the order read.

    :meth:`advance` reads and parses a poll and hands it on, first waiting while ``depth``
    polls are in flight (read, not yet handled). :meth:`settle` waits until none is: before a
    checkpoint, before the daemon waits for input, and before it stops. A failure in the
    handler is raised by the next :meth:`advance` or :meth:`settle`, and the polls queued
    behind it are not handled.

    Read-ahead pays where the two stages can run at once: the polls that close windows take
    ten times as long to handle as the others, and the reading stage gets on meanwhile (on
    two cores, the stream bench's 2.7M events: wall time ~8.4 -> ~5.7 s, see RESULTS). On one
    core the stages only take turns, at some CPU cost and with alerts queued behind the polls
    read ahead: there (``depth`` 0) each poll is handled at once, on the calling thread.

    Parameters
    ----------
    daemon
        The daemon whose polls are read and handled.
    depth
        Polls in flight at most; 0: none (no handler thread). Default (the config's
        ``read_ahead = "auto"``): :data:`POLLS_IN_FLIGHT` when the process may use two cores
        or more, else 0.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from detector.config import parse_config
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "logon.csv").write_text(
    ...     "{A},01/02/2010 06:49:00,NGF0157,PC-6056,Logon\\nnot,a,logon\\n")
    >>> config = parse_config({"daemon": {"state_dir": "state"},
    ...     "source": [{"type": "file", "path": "logon.csv", "parser": "cert.logon"}],
    ...     "sink": [{"type": "jsonl", "path": "alerts.jsonl"}]}, folder)
    >>> daemon = Daemon(config)
    >>> with PollPipeline(daemon, depth=2) as pipeline:
    ...     pipeline.advance(), pipeline.advance()
    ...     pipeline.settle()
    (2, 0)
    >>> daemon.totals.events["source1"]
    1
    >>> daemon.close()
    """

    def __init__(self, daemon: Daemon, depth: int | None = None) -> None:
        if depth is None:
            depth = POLLS_IN_FLIGHT if usable_cores() > 1 else 0
        if depth < 0:
            raise ValueError(f"depth must be 0 or more, not {depth}")
        self._daemon = daemon
        self.depth = depth
        self._handler = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="baseliner-handle")
            if depth
            else None
        )
        self._pending: collections.deque[Future[None]] = collections.deque()
        self._failed = False
        # Polls submitted and not yet through _handle (the handler thread counts them down).
        self._in_flight = 0
        self._count_lock = threading.Lock()

    def advance(self) -> int:
        """Read and parse the next poll and hand it on; the records it read.

        Waits first while ``depth`` polls are in flight.
        """
        poll = self._daemon.read_poll()
        if self._handler is None:
            self._daemon.handle_poll(poll)
            return poll.records
        while len(self._pending) >= self.depth:
            self._wait()
        self._count(+1)
        self._pending.append(self._handler.submit(self._handle, poll))
        return poll.records

    def _count(self, change: int) -> None:
        with self._count_lock:
            self._in_flight += change
            self._daemon.gauges.polls_in_flight = self._in_flight

    def _wait(self) -> None:
        """Wait for the oldest poll in flight; its failure is raised once, for all behind it."""
        try:
            self._pending.popleft().result()
        except BaseException:
            # Those behind it fail too, unhandled (_handle): nothing more to wait for.
            self._pending.clear()
            raise

    def _handle(self, poll: _Poll) -> None:
        # The polls queued behind one whose handling failed are not handled: the state may
        # be half-changed (the failure is raised to the loop, which stops).
        try:
            if self._failed:
                raise RuntimeError("not handled: the handling of an earlier poll failed")
            self._daemon.handle_poll(poll)
        except BaseException:
            self._failed = True
            raise
        finally:
            self._count(-1)

    def settle(self) -> None:
        """Wait until every poll read has been handled (raising the handler's failure)."""
        while self._pending:
            self._wait()

    def close(self) -> None:
        """Settle, and stop the handler thread (also when settling raises)."""
        try:
            self.settle()
        finally:
            self._pending.clear()
            if self._handler is not None:
                self._handler.shutdown(wait=True)

    def __enter__(self) -> PollPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def estimate_bytes(obj: object, sample: int = 32) -> int:
    """Rough bytes of ``obj`` from pickled sizes, sampling big dictionaries (for metrics).

    Examples
    --------
    >>> small = estimate_bytes({n: [n] * 10 for n in range(10)})
    >>> big = estimate_bytes({n: [n] * 10 for n in range(1000)})
    >>> 50 < big // small < 200
    True
    """
    try:
        if isinstance(obj, dict) and len(obj) > sample:
            keys = list(itertools.islice(obj, sample))
            return len(pickle.dumps({k: obj[k] for k in keys})) * len(obj) // sample
        if isinstance(obj, dict):
            return len(pickle.dumps(obj))
        if hasattr(obj, "__dict__") and not isinstance(obj, type):
            return sum(estimate_bytes(value, sample) for value in vars(obj).values())
        return len(pickle.dumps(obj))
    except (pickle.PicklingError, TypeError, AttributeError):
        return 0


class Daemon:
    """The ``baseliner run`` loop (see the module documentation).

    Parameters
    ----------
    config
        A validated :class:`~detector.config.DaemonConfig`.
    specs
        Feature specs (default: the catalogue for ``config.entity`` with the feature
        families in force, :attr:`~detector.config.DaemonConfig.families`).
    clock
        Wall-clock seconds since the epoch, what ``max_future`` is measured from (tests
        replaying a fixed "now" give their own).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from detector.config import parse_config
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "logon.csv").write_text(
    ...     "{A},01/02/2010 06:49:00,NGF0157,PC-6056,Logon\\nnot,a,logon\\n")
    >>> config = parse_config({"daemon": {"state_dir": "state"},
    ...     "source": [{"type": "file", "path": "logon.csv", "parser": "cert.logon"}],
    ...     "sink": [{"type": "jsonl", "path": "alerts.jsonl"}]}, folder)
    >>> daemon = Daemon(config)
    >>> daemon.poll_once()
    2
    >>> daemon.totals.events["source1"], dict(daemon.totals.dead_letters)
    (1, {('source1', 'wrong_field_count'): 1})
    >>> daemon.checkpoint()
    True
    >>> daemon.close()
    >>> restored = Daemon(config)
    >>> restored.totals.events["source1"], restored.poll_once()
    (1, 0)
    >>> restored.close()
    """

    #: Monotonic time the main loop last turned (None before it starts; see :meth:`health`).
    _heartbeat: float | None = None
    #: Whether the last checkpoint attempt failed.
    _checkpoint_failed = False
    #: Seconds of slack :meth:`health` allows beyond 3 polls or 3 checkpoint intervals (a
    #: big batch, a checkpoint of a large state) before calling the daemon stuck.
    health_margin = 60.0

    def __init__(
        self,
        config: DaemonConfig,
        specs: Sequence[FeatureSpec] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._max_future_us = config.max_future // timedelta(microseconds=1)
        #: The feature families added to the catalogue (None: the caller gave the specs).
        self.feature_families: tuple[str, ...] | None = None
        if specs is None:
            self.feature_families = config.families
            specs = default_specs(config.entity, self.feature_families)
        self.specs = tuple(specs)
        # The attrs keys the specs read: what a batch parser extracts of each line's attrs.
        self._attrs_keys = attrs_keys(self.specs)
        self.window_config = WindowConfig(entity=config.entity, window=config.window)
        self.schema_hash = spec_schema_hash(self.specs, self.window_config)
        self.window_length = timedelta(hours=1) if config.window == "1h" else timedelta(days=1)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = config.state_dir / CHECKPOINT_NAME
        self.allowlist = Allowlist.load(config.allowlist) if config.allowlist else Allowlist()
        # What the allow-list file was when read: run() rereads it when it changes.
        self._allowlist_stamp = _file_stamp(config.allowlist)
        #: Set by SIGHUP: run() rereads the allow-list at its next turn.
        self.reload_requested = threading.Event()
        self.lock = threading.Lock()
        # The sources are read outside ``lock`` (while the handler thread holds it, see
        # PollPipeline); this one keeps a scrape from reading a source's numbers mid-read.
        self._sources_lock = threading.Lock()
        self.stopping = threading.Event()
        self.gauges = DaemonGauges()
        self.gauges.allowlist_entries = len(self.allowlist.entries)
        #: Monotonic time the batch being processed was read (alert latency starts there).
        self._batch_arrival = time.monotonic()
        self._state_bytes_at = -math.inf
        state = self._load_state()
        self.parsers: dict[str, Parser] = self._restore_parsers(state.get("parsers", {}))
        resume: dict[str, Any] = state.get("sources", {})
        self.features: ColumnarOnline = state.get("features") or ColumnarOnline(
            self.specs,
            self.window_config,
            allowed_lateness=config.allowed_lateness,
            idle_expiry=config.idle_expiry,
            max_entities=config.max_entities,
        )
        restored: OnlineScorer | None = state.get("scorer")
        if restored is not None:
            self._adopt_settings(restored)
        self.scorer: OnlineScorer = restored or OnlineScorer(
            self.specs,
            detector=config.detector,
            detector_params=config.detector_params,
            budget_per_day=config.budget_per_day,
            windows_per_day=config.windows_per_day,
            warmup_windows=config.warmup_windows,
            cold_start_windows=config.cold_start_windows,
            learn_flagged=config.learn_flagged,
            risk=RiskConfig(half_life_days=config.risk_half_life_days),
            entity_type=config.entity,
            window=self.window_length,
            schema_hash=self.schema_hash,
        )
        # Configuration, not state: a restored scorer is given the groups of this config.
        self.scorer.set_peers(config.peer_groups, config.min_peers)
        # So that a muted window takes no slot of the daily cap (it is muted and counted below).
        self.scorer.set_allowlist(self.allowlist)
        # Entities the features let go stay in entities.csv (detector.departed).
        self.scorer.track_departures()
        # Why each entity the features let go left (evicted by the cap, or expired).
        self.features.track_departures()
        self.departed = DepartedEntities.from_state(state.get("departed"), config.departed_entities)
        #: The strongest alert emitted for each active entity that has one (its id goes to
        #: entities.csv; it moves to the departed row when the entity leaves).
        self.strongest_alerts: dict[str, StrongestAlert] = {
            entity: StrongestAlert(score, alert_id)
            for entity, (score, alert_id) in state.get("strongest_alerts", {}).items()
        }
        self.written_ids: set[str] = state.get("written_ids", set())
        self.totals: DaemonTotals = state.get("totals") or DaemonTotals()
        self.sources: dict[str, _Source] = {
            s.name: _build_source(s, resume.get(s.name)) for s in config.sources
        }
        self._source_types = {s.name: s.type for s in config.sources}
        # The slowest active source holds the windows open (detector.watermark). Not in the
        # checkpoint: after a restart every source holds until it reads or goes idle.
        self.watermarks = SourceWatermarks(
            self.sources,
            source_idle=config.source_idle.total_seconds(),
            close_idle_after=(
                None if config.close_idle_after is None else config.close_idle_after.total_seconds()
            ),
            now=time.monotonic(),
        )
        self._dead_handle = (config.state_dir / DEAD_LETTER_NAME).open("ab")
        self.sinks: dict[str, AlertSink] = {}
        self._sink_types: dict[str, str] = {}
        for index, sink_config in enumerate(config.sinks, start=1):
            label = f"sink{index}"
            self.sinks[label] = sink_from_config(sink_config)
            self._sink_types[label] = sink_config.type
        self._restore_pending(state.get("sink_pending", {}))
        self.registry = CollectorRegistry()
        self.registry.register(
            DaemonCollector(self.totals, self.gauges, self.lock, refresh=self._refresh_gauges)
        )
        self.registry.register(_DepartedCollector(lambda: self.departed))

    # -- state -------------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        """The state of the checkpoint in ``state_dir`` ({} if none); refuses a foreign one.

        The temporary files of checkpoint writes a killed daemon left behind are removed
        first (no write can be under way yet).
        """
        path = self.checkpoint_path
        remove_stale_temporaries(path)
        if not path.exists():
            return {}
        advice = "move it away or start with a new state_dir"
        try:
            data = path.read_bytes()
            header = read_header(data, str(path))
        except OSError as exc:
            raise CheckpointError(f"checkpoint {path} cannot be read: {exc.strerror}") from None
        except CorruptModelError:
            raise CheckpointError(
                f"checkpoint {path} is corrupt (no baseliner envelope header); {advice}"
            ) from None
        metadata = header.get("metadata") or {}
        if metadata.get("kind") != "daemon-checkpoint":
            raise CheckpointError(
                f"checkpoint {path} is a {metadata.get('kind') or 'model'} file, not a daemon"
                f" checkpoint; {advice}"
            )
        # Checkpoints of the first daemon carry no version: they are of this major version.
        written = str(metadata.get("baseliner_version", __version__))
        if written.split(".")[0] != __version__.split(".")[0]:
            raise CheckpointError(
                f"checkpoint {path} was written by baseliner {written} but this is baseliner"
                f" {__version__} (another major version); {advice}"
            )
        # Checkpoints without a layout hold the per-cell OnlineFeatures of layout 1.
        layout = metadata.get("state_layout", 1)
        if layout != CHECKPOINT_LAYOUT:
            raise CheckpointError(
                f"checkpoint {path} holds daemon state layout {layout} (baseliner {written}) but"
                f" this build reads layout {CHECKPOINT_LAYOUT}; {advice}"
            )
        stored_hash = str(header.get("schema_hash"))
        if stored_hash != self.schema_hash:
            raise CheckpointError(
                f"checkpoint {path} was written with feature schema {stored_hash[:12]}.. but the"
                f" config gives {self.schema_hash[:12]}..{self._families_hint(metadata)}; {advice}"
            )
        try:
            state = decode_model(data, expected_schema_hash=self.schema_hash, source=str(path))
        except (CorruptModelError, IncompatibleModelError) as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            raise CheckpointError(f"checkpoint {path} is unusable ({reason}); {advice}") from None
        except Exception as exc:  # unpickling: a class this build no longer has, and the like
            raise CheckpointError(
                f"checkpoint {path} cannot be restored by this build"
                f" ({type(exc).__name__}: {exc}); {advice}"
            ) from None
        if not isinstance(state, dict):
            raise CheckpointError(f"checkpoint {path} does not hold a daemon state; {advice}")
        if isinstance(state.get("totals"), DaemonTotals) and state.get("scorer") is not None:
            state["totals"].adopt_detector(state["scorer"].detector)
        logger.info("restored checkpoint %s", path)
        return state

    def _families_hint(self, metadata: dict[str, Any]) -> str:
        """What differs in the feature families, when they explain a schema mismatch.

        Checkpoints of builds before the families hold none.
        """
        written = metadata.get("feature_families", [])
        if self.feature_families is None or not isinstance(written, list):
            return ""
        if sorted(written) == sorted(self.feature_families):
            return ""
        then = ", ".join(f'"{name}"' for name in written)
        now = ", ".join(f'"{name}"' for name in self.feature_families)
        return f" (written with daemon.feature_families = [{then}], the config gives [{now}])"

    def _adopt_settings(self, scorer: OnlineScorer) -> None:
        """Give the restored state the config's settings where that is sound, else refuse.

        Applied: ``budget``, ``cold_start_windows`` and ``learn_flagged`` (read afresh at each
        window), ``risk_half_life_days`` (risk decays at the new rate from each entity's last
        window on; what accrued stays), ``allowed_lateness`` (windows already closed stay
        closed), ``max_entities`` (a lower cap evicts at the next closed window) and
        ``idle_expiry`` (a shorter one expires at the next closed window). A checkpoint written
        without a cap or an expiry starts tracking entity recency, in the order of each
        entity's last event. Refused with one line naming the key: another ``detector`` or its
        parameters (the baselines are the detector's own) and another ``warmup_windows`` (it
        sized the score windows the checkpoint holds; a ``cold_start_windows`` above the kept
        history is refused by the config already).
        """
        config = self.config
        for key, held, given, why in (
            ("detector", scorer.detector, config.detector, "the baselines are the detector's own"),
            (
                "detector_params",
                scorer.detector_params,
                dict(config.detector_params),
                "the baselines are the detector's own",
            ),
            (
                "warmup_windows",
                scorer.warmup_windows,
                config.warmup_windows,
                "it sized the score windows the checkpoint holds",
            ),
        ):
            if held != given:
                self._refuse_setting(key, held, given, why)
        features = self.features
        if (config.max_entities, config.idle_expiry) != (None, None):
            features.track_recency()
        if (scorer.budget_per_day, scorer.windows_per_day) != (
            config.budget_per_day,
            config.windows_per_day,
        ):
            logger.info(
                "budget now %g/day of %g windows (the checkpoint held %g/day of %g)",
                config.budget_per_day,
                config.windows_per_day,
                scorer.budget_per_day,
                scorer.windows_per_day,
            )
            scorer.retarget_budget(config.budget_per_day, config.windows_per_day)
        changes: tuple[tuple[str, object, object], ...] = (
            ("cold_start_windows", scorer.cold_start_windows, config.cold_start_windows),
            ("learn_flagged", scorer.learn_flagged, config.learn_flagged),
            (
                "risk_half_life_days",
                scorer.risk_config.half_life_days,
                config.risk_half_life_days,
            ),
            ("allowed_lateness", features.allowed_lateness, config.allowed_lateness),
            ("max_entities", features.max_entities, config.max_entities),
            ("idle_expiry", features.idle_expiry, config.idle_expiry),
        )
        for name, before, after in changes:
            if before != after:
                logger.info("%s now %s (the checkpoint held %s)", name, after, before)
        scorer.cold_start_windows = config.cold_start_windows
        scorer.learn_flagged = config.learn_flagged
        scorer.risk_config = replace(scorer.risk_config, half_life_days=config.risk_half_life_days)
        features.set_limits(config.allowed_lateness, config.max_entities)
        features.set_idle_expiry(config.idle_expiry)

    def _refuse_setting(self, key: str, held: object, given: object, why: str) -> None:
        """Refuse a restored state written with another ``key`` (one line, names the key)."""
        raise CheckpointError(
            f"daemon.{key}: the checkpoint {self.checkpoint_path} was written with"
            f" {key} {held!r} but the config gives {given!r}; restore the setting, or"
            f" start with a new state_dir ({why})"
        )

    def _restore_parsers(self, saved: dict[str, Any]) -> dict[str, Parser]:
        """Parsers from the checkpoint where the config still names the same one (learnt
        state such as mined templates survives a restart), new ones elsewhere."""
        parsers: dict[str, Parser] = {}
        for source in self.config.sources:
            kept = saved.get(source.name)
            if kept is not None and kept[:2] == (source.parser, dict(source.parser_options)):
                parsers[source.name] = kept[2]
            else:
                parsers[source.name] = PARSERS[source.parser](**source.parser_options)
        return parsers

    def _sink_key(self, label: str) -> str:
        # Not the URL or path: a webhook that moved still gets what the old one had pending.
        return f"{label}:{self._sink_types[label]}"

    def _restore_pending(self, saved: dict[str, list[dict[str, Any]]]) -> None:
        """Queue again the alerts the sinks had not delivered at the last checkpoint."""
        keys = {self._sink_key(label): label for label in self.sinks}
        for key, alerts in saved.items():
            if not alerts:
                continue
            if key in keys:
                self.sinks[keys[key]].restore(alerts)
                logger.info("%s: %d undelivered alert(s) queued again", key, len(alerts))
            else:
                path = self.config.state_dir / UNDELIVERED_NAME
                with path.open("ab") as handle:
                    handle.writelines(
                        orjson.dumps({"sink": key, "alert": a}) + b"\n" for a in alerts
                    )
                logger.warning(
                    "%d undelivered alert(s) of a sink no longer configured (%s) written to %s",
                    len(alerts),
                    key,
                    path,
                )

    def checkpoint(self) -> bool:
        """Write the whole state atomically (sinks and dead letters synced first).

        A failure (disk full, ...) is logged and counted, and the daemon goes on: False.
        """
        with self.lock:
            try:
                for sink in self.sinks.values():
                    sink.flush()
                self._dead_handle.flush()
                os.fsync(self._dead_handle.fileno())
                with self._sources_lock:
                    positions = {name: source.snapshot() for name, source in self.sources.items()}
                state = {
                    "sources": positions,
                    "features": self.features,
                    "parsers": {
                        s.name: (s.parser, dict(s.parser_options), self.parsers[s.name])
                        for s in self.config.sources
                    },
                    "scorer": self.scorer,
                    "written_ids": self.written_ids,
                    "sink_pending": {
                        self._sink_key(label): sink.pending() for label, sink in self.sinks.items()
                    },
                    "totals": self.totals,
                    # Plain data: a checkpoint holding them still loads in a build without.
                    "departed": self.departed.state(),
                    "strongest_alerts": {
                        entity: (best.score, best.id)
                        for entity, best in self.strongest_alerts.items()
                    },
                }
                data = encode_model(
                    state,
                    schema_hash=self.schema_hash,
                    metadata={
                        "kind": "daemon-checkpoint",
                        "baseliner_version": __version__,
                        "state_layout": CHECKPOINT_LAYOUT,
                        "feature_families": list(self.feature_families or ()),
                    },
                )
                write_atomically(self.checkpoint_path, data)
                logger.info("checkpoint saved to %s (%d bytes)", self.checkpoint_path, len(data))
                self.gauges.checkpoint_bytes = len(data)
                self.write_entities()
            except Exception:
                self._checkpoint_failed = True
                self.gauges.checkpoint_failures += 1
                logger.exception("checkpoint %s failed; still running", self.checkpoint_path)
                return False
            self._checkpoint_failed = False
            self.gauges.checkpoints += 1
            self.gauges.last_checkpoint = time.time()
            return True

    def write_entities(self) -> int:
        """Write ``entities.csv`` in ``state_dir``: the scorer's entities and the departed
        ones, ranked together, with their status (:func:`detector.departed.write_entities`);
        rows written."""
        return write_entities(
            self.config.state_dir / ENTITIES_NAME,
            self.scorer.top_entities(),
            self.departed,
            strongest=self.strongest_alerts,
            last_day=self.scorer.last_day,
            half_life_days=self.scorer.risk_config.half_life_days,
        )

    def _refresh_gauges(self) -> None:
        """Read the sources', sinks' and state's numbers (at scrape time, under the lock)."""
        with self._sources_lock:
            for name, source in self.sources.items():
                self.gauges.lag_bytes[name] = int(getattr(source, "lag_bytes", 0))
                stats = {
                    key: int(getattr(source, key)) for key in _SOURCE_STATS if hasattr(source, key)
                }
                if hasattr(source, "queued"):
                    stats["queue_depth"] = int(source.queued)
                self.gauges.sources[name] = stats
        for label, sink in self.sinks.items():
            self.gauges.sinks[label] = (self._sink_types[label], sink.stats())
        self.gauges.entities = self.features.entities
        self.gauges.evictions = self.features.evictions
        self.gauges.expirations = self.features.expirations
        now = time.monotonic()
        if now - self._state_bytes_at >= _STATE_BYTES_EVERY:
            self._state_bytes_at = now
            self.gauges.state_bytes = {
                "features": self.features.state_bytes(),
                "detectors": estimate_bytes(self.scorer),
            }

    def reload_allowlist(self) -> bool:
        """Reread the allow-list file: its entries mute what is scored from now on.

        Called by :meth:`run` on SIGHUP and when the file changes (its modification time,
        size or inode). A file that is missing, malformed, or names a feature or detector
        that does not exist is refused with the same checks as at the start: the allow-list
        in force stays, and the error is logged and counted
        (``baseliner_allowlist_reload_failures_total``). True when the new entries are in
        force.
        """
        path = self.config.allowlist
        if path is None:
            logger.info("no allow-list configured (daemon.allowlist): nothing to reload")
            return False
        self._allowlist_stamp = _file_stamp(path)
        try:
            allowlist = load_allowlist(path, features=[spec.name for spec in self.specs])
        except UsageError as exc:
            with self.lock:
                self.gauges.allowlist_reload_failures += 1
                kept = len(self.allowlist.entries)
            logger.error("%s; the allow-list in force stays (%d entries)", exc, kept)
            return False
        with self.lock:
            self.allowlist = allowlist
            self.scorer.set_allowlist(allowlist)
            self.gauges.allowlist_reloads += 1
            self.gauges.allowlist_entries = len(allowlist.entries)
        logger.info("allow-list reloaded from %s: %d entries", path, len(allowlist.entries))
        return True

    def _allowlist_due(self) -> bool:
        """Whether the allow-list should be reread: SIGHUP, or its file changed."""
        if self.reload_requested.is_set():
            self.reload_requested.clear()
            return True
        path = self.config.allowlist
        return path is not None and _file_stamp(path) != self._allowlist_stamp

    def describe(self, metrics_url: str) -> str:
        """The start-up line: what the daemon reads and serves, where alerts and state go.

        Written to stderr by :meth:`run` whatever the log level: an operator sees at once
        which ports were bound (port 0 picks one) and which files are followed.
        """
        reads = []
        for source in self.config.sources:
            if source.type in _NETWORK_TYPES:
                bound: tuple[str, int] | None = getattr(self.sources[source.name], "address", None)
                host, port = bound or source.listen or ("?", 0)
                where = f"{source.type} on {format_hostport(host, port)}"
            elif source.type == "stdin":
                where = "stdin"
            else:
                where = f"{source.type} {source.path}"
            reads.append(f"{source.name} ({where}, {source.parser})")
        sinks = []
        for sink in self.config.sinks:
            if sink.url:  # not the whole URL: its path or query may carry a token
                sinks.append(f"webhook {redacted_url(sink.url)}")
            else:
                sinks.append(f"{sink.type} {sink.path}" if sink.path else sink.type)
        # The families are named where a parser implies one or the config sets some.
        families = ""
        if self.feature_families is not None and (
            self.feature_families or implied_families(self.config.sources)
        ):
            families = f" {self.config.describe_families()};"
        return (
            f"baseliner {__version__} running: reading {'; '.join(reads)};"
            f" alerts to {'; '.join(sinks)}; state in {self.config.state_dir};{families}"
            f" metrics on {metrics_url}"
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        """What ``/healthz`` reports: healthy or not, the checks and the problems found.

        Unhealthy when the daemon is stopping, when the main loop has not turned for
        3 x ``poll_seconds`` + :attr:`health_margin`, when the last checkpoint attempt failed
        or the last checkpoint is older than 3 x ``checkpoint_seconds`` + the margin, or when a
        network listener's thread has died (it receives nothing more). Called from the
        metrics thread: it reads without the lock, which a stuck loop may hold.
        """
        config, margin = self.config, self.health_margin
        problems: list[str] = []
        checks: dict[str, Any] = {}
        if self.stopping.is_set():
            problems.append("stopping")
        if self._heartbeat is None:
            checks["loop"] = "starting"
        else:
            loop_age = time.monotonic() - self._heartbeat
            loop_limit = 3 * config.poll_seconds + margin
            checks["loop_seconds_ago"] = round(loop_age, 3)
            if loop_age > loop_limit:
                problems.append(
                    f"main loop has not turned for {loop_age:.0f}s (limit {loop_limit:.0f}s)"
                )
        checkpoint_age = max(0.0, time.time() - self.gauges.last_checkpoint)
        checkpoint_limit = 3 * config.checkpoint_seconds + margin
        checks["checkpoint_seconds_ago"] = round(checkpoint_age, 3)
        checks["last_checkpoint_failed"] = self._checkpoint_failed
        if self._checkpoint_failed:
            problems.append("the last checkpoint failed (see the log)")
        elif checkpoint_age > checkpoint_limit:
            problems.append(
                f"no checkpoint for {checkpoint_age:.0f}s (limit {checkpoint_limit:.0f}s)"
            )
        listeners: dict[str, bool] = {}
        for name, source in self.sources.items():
            if self._source_types[name] in _NETWORK_TYPES:
                listeners[name] = alive = source.alive
                if not alive and not self.stopping.is_set():
                    problems.append(f"source {name}: listener thread has died")
        if listeners:
            checks["listeners_alive"] = listeners
        return not problems, {"checks": checks, "problems": problems}

    def alert_latency(self) -> dict[str, float]:
        """p50 and p99 seconds from reading the batch that closed a window to its alert."""
        with self.lock:
            return self.gauges.latency.quantiles()

    # -- the loop ----------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Read and process what every source has now (bounded per source); records read.

        Each source's records of the poll are parsed into one frame of events (at once where
        the parser has ``parse_batch``, line by line elsewhere) and windowed by
        :meth:`ColumnarOnline.update_columns`: one features stage for every parser. The
        two stages one after the other on this thread; :meth:`run` overlaps them
        (:class:`PollPipeline`).
        """
        poll = self.read_poll()
        self.handle_poll(poll)
        return poll.records

    def read_poll(self) -> _Poll:
        """The reading stage: read every source (bounded per source) and parse what was read.

        Touches only the sources and the parsers (the handler stage may be running): the
        dead letters found are carried in the poll, for :meth:`handle_poll` to write.
        """
        poll = _Poll()
        for name, source in self.sources.items():
            parser = self.parsers[name]
            # Larger for batch parsers: the fixed cost per call (a few polars plans) is
            # spread over more events. Per-line parsers are slower per line.
            limit = 4 * _BATCH if hasattr(parser, "parse_batch") else _BATCH
            with self._sources_lock:
                pieces = _read(source, limit)
                lag_bytes = int(getattr(source, "lag_bytes", 0))
            read = _SourcePoll(name, time.monotonic(), [], lag_bytes)
            for records in pieces:
                if records:
                    read.pieces.append(self._parse_piece(parser, records))
            poll.sources.append(read)
        with self._sources_lock:
            poll.ended = [
                n for n, source in self.sources.items() if getattr(source, "ended", False)
            ]
        return poll

    def _parse_piece(self, parser: Parser, records: Sequence[RawRecord]) -> _Piece:
        letters: list[DeadLetter] = []
        read = len(records)
        records = _decodable(records, letters)
        if hasattr(parser, "parse_batch"):
            # A block still holding its bytes was found to be UTF-8 by _decodable.
            frame, dead = parser.parse_batch(  # type: ignore[attr-defined]
                records,
                attrs_keys=self._attrs_keys,
                utf8_checked=isinstance(getattr(records, "data", None), bytes),
            )
            letters.extend(dead)
        else:
            frame = _parse_each(parser, records, letters)
        return _Piece(read, records, letters, frame)

    def handle_poll(self, poll: _Poll) -> None:
        """The handler stage: window, score and alert the events of a poll read by
        :meth:`read_poll`, then close what the sources allow now."""
        for read in poll.sources:
            with self.lock:
                self._batch_arrival = read.arrival
                self.watermarks.polled(read.name, now=read.arrival)
                for piece in read.pieces:
                    self._handle(read.name, piece)
                self.gauges.lag_bytes[read.name] = read.lag_bytes
                self.gauges.entities = self.features.entities
                self.gauges.evictions = self.features.evictions
        with self.lock:
            # Close what the sources allow now: a slow source caught up or went idle, or
            # every source has been quiet for close_idle_after (the wall clock moves on).
            for name in poll.ended:
                self.watermarks.end(name)
            bound = self.watermarks.bound(self.features.newest_us, now=time.monotonic())
            if bound is not None:
                self.features.advance_to(bound, on_close=self._score)

    def _handle(self, name: str, piece: _Piece) -> None:
        for letter in piece.letters:
            self._dead_letter(name, letter)
        frame, records = piece.frame, piece.records
        self._count_records(name, piece.read, frame.height, len(piece.letters))
        if not frame.height:
            return
        self.totals.events[name] += frame.height
        frame = self._inside_time_bounds(name, frame, records)
        late_rows: list[int] = []
        # Scored at each closing step, as event by event (the scorer and the eviction hook
        # see the same state). No window closes that another active source may still add to.
        self.features.update_columns(
            frame,
            late_rows=late_rows,
            on_close=self._score,
            hold_us=self.watermarks.hold_for(name, now=time.monotonic()),
        )
        # Active from the end of its batch: scoring a long one does not make a source idle.
        newest_us = newest_event_us(frame, self.config.entity)
        self.watermarks.saw(name, newest_us, now=time.monotonic())
        if late_rows:
            late = frame[late_rows].select("record", "ts").rows()
            for index, ts in late:
                self.totals.late_events += 1
                raw = records[index]
                self._dead_letter(name, DeadLetter(raw.origin, raw.line, "late", raw.text, str(ts)))

    def _inside_time_bounds(
        self, name: str, frame: pl.DataFrame, records: Sequence[RawRecord]
    ) -> pl.DataFrame:
        """``frame`` less the events dated past now + ``max_future`` (``future``) or before
        the scan's time range (``timestamp_out_of_range``, a ``0001-01-01`` sentinel: as the
        first line of a stream nothing is late yet, and it would open a window in year 1),
        each dead-lettered."""
        limit_us = int(self._clock() * 1_000_000) + self._max_future_us
        epoch_us = frame.get_column("ts").dt.epoch("us")
        newest, oldest = epoch_us.max(), epoch_us.min()
        if newest is None or (newest <= limit_us and oldest >= _EARLIEST_US):  # type: ignore[operator]
            return frame
        ahead = (epoch_us > limit_us).fill_null(False)
        before = (epoch_us < _EARLIEST_US).fill_null(False)
        outside = ahead | before
        dated = frame.with_columns(ahead.alias("__ahead")).filter(outside)
        for index, ts, is_ahead in dated.select("record", "ts", "__ahead").rows():
            raw = records[index]
            reason = "future" if is_ahead else OUT_OF_RANGE
            self._dead_letter(name, DeadLetter(raw.origin, raw.line, reason, raw.text, str(ts)))
        return frame.filter(~outside)

    def _count_records(self, name: str, records: int, events: int, dead: int) -> None:
        """Count a parsed batch: records read, and those that became neither an event nor a
        dead letter (a line the parser does not model: why a source shows no events)."""
        self.totals.records[name] += records
        skipped = records - events - dead
        if skipped > 0:
            self.totals.skipped[name] += skipped

    def _dead_letter(self, name: str, letter: DeadLetter) -> None:
        self.totals.dead_letters[name, letter.reason] += 1
        self._dead_handle.write(orjson.dumps({"source": name, **letter.to_dict()}) + b"\n")

    def _score(self, vectors: pl.DataFrame) -> None:
        self.totals.windows_closed += vectors.height
        leaving = self.features.evicted
        reasons = dict(self.features.drain_departed())
        # An entity evicted when its window closed is still scored, then forgotten; the others
        # free their rows before new entities take them (the scorer's tables stay at the cap).
        alerts = self.scorer.score_frame(vectors, forget=leaving)
        kept, muted = self.allowlist.apply(alerts)
        self.totals.suppressed += muted
        for alert in kept:
            self._emit(alert)
        self._keep_departed(leaving, reasons)
        leaving.clear()

    def _keep_departed(self, leaving: Sequence[str], reasons: Mapping[str, str]) -> None:
        """Move the risk records the scorer dropped into the departed table (bounded)."""
        departures = self.scorer.departures
        half_life = self.scorer.risk_config.half_life_days
        if departures:
            for record in departures:
                self.departed.add(
                    record,
                    reasons.get(record.entity, "evicted"),
                    half_life_days=half_life,
                    strongest=self.strongest_alerts.get(record.entity),
                )
            departures.clear()
            self.departed.trim()
        if self.strongest_alerts:
            for entity in leaving:
                self.strongest_alerts.pop(entity, None)

    def _emit(self, alert: Alert) -> None:
        best = self.strongest_alerts.get(alert.entity)
        if best is None or alert.score > best.score:
            self.strongest_alerts[alert.entity] = StrongestAlert(alert.score, alert.id)
        # Emitted before the last checkpoint: only a source re-read from before it repeats one.
        if alert.id in self.written_ids:
            return
        for sink in self.sinks.values():
            sink.write(alert)
        self.written_ids.add(alert.id)
        self.totals.alerts[alert.detector, alert.severity] += 1
        self.gauges.latency.observe(time.monotonic() - self._batch_arrival)

    def run(self) -> None:
        """Serve metrics and loop until SIGTERM / SIGINT (or :attr:`stopping` is set, or every
        source has ended)."""
        host, port = self.config.metrics_host_port
        try:
            server = serve_metrics(self.registry, host, port, self.health)
        except OSError as exc:
            self.close()
            raise UsageError(
                f"daemon.metrics_address: cannot serve on {host}:{port}: {exc.strerror or exc}"
            ) from None
        sys.stderr.write(self.describe(f"http://{host}:{server.server_address[1]}/metrics") + "\n")
        sys.stderr.flush()

        def stop(signum: int, frame: FrameType | None) -> None:
            logger.info("signal %d: checkpointing and stopping", signum)
            self.stopping.set()

        def reload(signum: int, frame: FrameType | None) -> None:
            self.reload_requested.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        # SIGHUP rereads the allow-list, as collectors reload their configuration (not on
        # Windows, which has no SIGHUP).
        hangup = getattr(signal, "SIGHUP", None)
        if hangup is not None:
            previous[hangup] = signal.signal(hangup, reload)
        last = time.monotonic()
        pipeline = PollPipeline(self, depth=self.config.read_ahead)
        try:
            while not self.stopping.is_set():
                self._heartbeat = time.monotonic()
                if self._allowlist_due():
                    self.reload_allowlist()
                read = pipeline.advance()
                if time.monotonic() - last >= self.config.checkpoint_seconds:
                    pipeline.settle()
                    self.checkpoint()
                    last = time.monotonic()
                if not read:
                    # Nothing in flight while waiting: an idle source's windows close now.
                    pipeline.settle()
                    if self.sources_ended():
                        sys.stderr.write(self._end_line() + "\n")
                        break
                    self.stopping.wait(self.config.poll_seconds)
            pipeline.settle()
            self._drain()
            self.checkpoint()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.shutdown()
            server.server_close()
            pipeline.close()
            self.close()

    def sources_ended(self) -> bool:
        """Whether every source has ended: only stdin ends (``cat logs | baseliner run``);
        files and sockets may always receive more, so a daemon with one never stops alone."""
        return all(getattr(source, "ended", False) for source in self.sources.values())

    def input_errors(self) -> dict[str, str]:
        """Sources whose input stopped on a read error rather than at its end (stdin), by
        name: why. A daemon that stopped because of one exits non-zero."""
        errors = {name: getattr(source, "error", None) for name, source in self.sources.items()}
        return {name: error for name, error in errors.items() if isinstance(error, str)}

    def _end_line(self) -> str:
        errors = "; ".join(f"source {name}: {error}" for name, error in self.input_errors().items())
        return (
            f"baseliner run: input ended{f' on a read error ({errors})' if errors else ''} after "
            f"{sum(self.totals.events.values()):,} event(s), "
            f"{self.totals.windows_closed:,} window(s) closed, "
            f"{sum(self.totals.alerts.values()):,} alert(s); stopping. "
            f"{self.features.open_cells:,} entity window(s) still open are kept in the "
            "checkpoint (they close when later events move the watermark past them)"
        )

    def _drain(self) -> None:
        """Stop the listeners, process what they queued, let the sinks deliver what they hold.

        Network sources cannot be re-read, so what they accepted is processed now (for at
        most a few seconds); the sinks are closed before the last checkpoint so that it holds
        no alert they have delivered since, and holds the ones they could not deliver.
        """
        for name, source in self.sources.items():
            if self._source_types[name] in _NETWORK_TYPES:
                _close(source)
        deadline = time.monotonic() + _DRAIN_SECONDS
        while time.monotonic() < deadline and self.poll_once():
            pass
        for sink in self.sinks.values():
            sink.close()

    def close(self) -> None:
        """Release the sources, the sinks (delivering what they can; the rest stays pending, in
        the last checkpoint) and the files."""
        for source in self.sources.values():
            _close(source)
        for sink in self.sinks.values():
            sink.close()
        self._dead_handle.close()
