"""The streaming daemon behind ``baseliner run``: tail, parse, window, score, alert, checkpoint.

One loop, single-threaded (the metrics server runs on its own thread and only reads):

1. Poll every source for the complete lines written since the last poll.
2. Parse each line; a :class:`~streams.errors.ParseError` becomes a dead letter (JSON line in
   ``state_dir/dead_letters.jsonl`` with source, file, line, reason, raw) and a metric.
3. :meth:`OnlineFeatures.update`; events whose window had already closed are dead-lettered
   with reason ``late``.
4. For each closed window: the entity's own detector scores the vector, *then* learns it
   (one detector instance per entity: the registry's online detectors are count-style
   baselines of a single series, so per entity is what "its own normal" means). A
   :class:`StreamingCalibrator` shared by all entities decides at the alert budget.
5. An alert is explained against the entity's exponentially weighted mean and standard
   deviation of each feature (before this window is learnt), filtered by the allow-list,
   and written to the sinks; the JSONL sink skips ids it has already written.

Checkpoints (every ``checkpoint_seconds`` and on SIGTERM/SIGINT) hold the source positions,
the feature state, the detectors, the calibrator, the written alert ids and the running
totals, in the verified envelope of :mod:`models.store`, written atomically. A restart
continues from the positions: no line is counted twice, none is lost. Alerts written after
the last checkpoint are replayed with the same ids and skipped by the JSONL sink, which also
reads the ids already in its file on start.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO

import orjson
from prometheus_client import CollectorRegistry

from detector.alerts import Alert, Deviation
from detector.config import DaemonConfig, SinkConfig, SourceConfig
from detector.explain import deviation_sentence
from detector.metrics import DaemonCollector, DaemonGauges, DaemonTotals, serve_metrics
from detector.suppression import Allowlist
from features.batch import spec_schema_hash
from features.catalog import default_specs
from features.online import OnlineFeatures, WindowVector
from features.spec import FeatureSpec, WindowConfig
from models.base import OnlineDetector
from models.calibration import StreamingCalibrator
from models.registry import create
from models.store import load_model, save_model
from streams.errors import DeadLetter, ParseError
from streams.parsers import PARSERS, Parser
from streams.sources import FileTailSource, GlobTailSource, RawRecord

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.bin"
DEAD_LETTER_NAME = "dead_letters.jsonl"
#: Records taken from one source per poll, so signals, checkpoints and scrapes stay timely.
_BATCH = 5000
#: Weight of a new window in an entity's typical values (about the last 20 windows).
_EW_ALPHA = 0.1
_Z_MIN = 2.0
_MAX_DEVIATIONS = 3


class _Source(Protocol):
    def read(self) -> Iterator[RawRecord]: ...
    def snapshot(self) -> Any: ...


class StdinSource:
    """Lines from standard input, read by a background thread (not resumable: a pipe).

    Examples
    --------
    >>> import io
    >>> source = StdinSource(io.StringIO("a\\nb\\n"))
    >>> source._thread.join(5)
    >>> [r.text for r in source.read()], source.snapshot()
    (['a', 'b'], 2)
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._line = 0
        self.lag_bytes = 0
        self._thread = threading.Thread(
            target=self._pump, args=(stream or sys.stdin,), name="stdin", daemon=True
        )
        self._thread.start()

    def _pump(self, stream: TextIO) -> None:
        for text in stream:
            self._queue.put(text.rstrip("\r\n"))

    def read(self) -> Iterator[RawRecord]:
        while True:
            try:
                text = self._queue.get_nowait()
            except queue.Empty:
                return
            self._line += 1
            yield RawRecord(text, "stdin", self._line, 0)

    def snapshot(self) -> int:
        return self._line


def _build_source(config: SourceConfig, resume: Any) -> _Source:
    if config.type == "stdin":
        return StdinSource()
    assert config.path is not None
    if config.type == "glob":
        return GlobTailSource(str(config.path), resume_state=resume or None)
    return FileTailSource(config.path, resume_state=resume)


@dataclass
class EntityBaseline:
    """An entity's detector and its exponentially weighted mean / variance of each feature.

    Examples
    --------
    >>> from models.online.count_tail import CountTailDetector
    >>> baseline = EntityBaseline(CountTailDetector())
    >>> for n in (2.0, 4.0, 2.0, 4.0):
    ...     baseline.learn({"logons": n})
    >>> baseline.windows, round(baseline.mean["logons"], 2)
    (4, 3.0)
    """

    detector: OnlineDetector
    mean: dict[str, float] = field(default_factory=dict)
    var: dict[str, float] = field(default_factory=dict)
    windows: int = 0

    def learn(self, values: dict[str, float]) -> None:
        self.detector.learn_one(values)
        # A plain average over the first windows, exponential afterwards, so the first
        # window does not weigh 1/alpha times too much.
        weight = max(_EW_ALPHA, 1.0 / (self.windows + 1))
        for name, value in values.items():
            mean = self.mean.get(name, value)
            delta = value - mean
            self.mean[name] = mean + weight * delta
            self.var[name] = (1.0 - weight) * (self.var.get(name, 0.0) + weight * delta * delta)
        self.windows += 1

    def explain(
        self, values: dict[str, float], specs: Sequence[FeatureSpec]
    ) -> tuple[Deviation, ...]:
        """The features furthest above their typical value (z >= 2), most deviating first."""
        found: list[Deviation] = []
        for spec in specs:
            observed = values.get(spec.name, 0.0)
            mean = self.mean.get(spec.name, 0.0)
            std = math.sqrt(self.var.get(spec.name, 0.0))
            # A floor on the scale: a feature that never moved must still need a real jump.
            z = (observed - mean) / max(std, 0.5, 0.1 * abs(mean))
            if z < _Z_MIN:
                continue
            low, high = max(0.0, round(mean - std, 2)), round(mean + std, 2)
            text = deviation_sentence(spec, observed, round(mean, 2), low, high)
            found.append(Deviation(spec.name, observed, mean, low, high, z, text, spec.technique))
        found.sort(key=lambda d: -d.z)
        return tuple(found[:_MAX_DEVIATIONS])


def severity_of(score: float, threshold: float) -> str:
    """Severity from how far a score clears its threshold (ratio 1.25 / 1.5 / 2).

    Examples
    --------
    >>> [severity_of(s, 10.0) for s in (11.0, 13.0, 16.0, 25.0)]
    ['low', 'medium', 'high', 'critical']
    """
    ratio = score / threshold if threshold > 0 else math.inf
    if ratio >= 2.0:
        return "critical"
    if ratio >= 1.5:
        return "high"
    if ratio >= 1.25:
        return "medium"
    return "low"


class JsonlAlertSink:
    """Append alerts as JSON lines, skipping ids already written (kept across restarts).

    Examples
    --------
    >>> import tempfile
    >>> from datetime import datetime, UTC
    >>> path = Path(tempfile.mkdtemp()) / "alerts.jsonl"
    >>> alert = Alert.build(entity="ann", window_start=datetime(2024, 1, 1, tzinfo=UTC),
    ...     window_end=datetime(2024, 1, 2, tzinfo=UTC), detector="count_tail", score=9.0,
    ...     threshold=3.0, severity="critical", schema_hash="h", deviations=())
    >>> sink = JsonlAlertSink(path, set())
    >>> sink.write(alert), JsonlAlertSink(path, set()).write(alert)
    (True, False)
    """

    def __init__(self, path: Path, written: set[str]) -> None:
        self.path = path
        self.written = written
        if path.exists():
            with path.open("rb") as handle:
                for raw in handle:
                    try:
                        self.written.add(str(orjson.loads(raw)["id"]))
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        logger.warning("%s: skipping an unreadable alert line", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("ab")

    def write(self, alert: Alert) -> bool:
        """Write ``alert`` unless its id was written before; True if written."""
        if alert.id in self.written:
            return False
        self._handle.write(orjson.dumps(alert.to_dict()) + b"\n")
        self._handle.flush()
        self.written.add(alert.id)
        return True

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


class Daemon:
    """The ``baseliner run`` loop (see the module documentation).

    Parameters
    ----------
    config
        A validated :class:`~detector.config.DaemonConfig`.
    specs
        Feature specs (default: the catalogue for ``config.entity``).

    Examples
    --------
    >>> import tempfile
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
    >>> daemon.checkpoint(); daemon.close()
    >>> restored = Daemon(config)
    >>> restored.totals.events["source1"], restored.poll_once()
    (1, 0)
    >>> restored.close()
    """

    def __init__(self, config: DaemonConfig, specs: Sequence[FeatureSpec] | None = None) -> None:
        self.config = config
        self.specs = tuple(specs if specs is not None else default_specs(config.entity))
        self.window_config = WindowConfig(entity=config.entity, window=config.window)
        self.schema_hash = spec_schema_hash(self.specs, self.window_config)
        self.window_length = timedelta(hours=1) if config.window == "1h" else timedelta(days=1)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = config.state_dir / CHECKPOINT_NAME
        self.allowlist = Allowlist.load(config.allowlist) if config.allowlist else Allowlist()
        self.parsers: dict[str, Parser] = {
            s.name: PARSERS[s.parser](**s.parser_options) for s in config.sources
        }
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.gauges = DaemonGauges()
        state = self._load_state()
        resume: dict[str, Any] = state.get("sources", {})
        self.features: OnlineFeatures = state.get("features") or OnlineFeatures(
            self.specs,
            self.window_config,
            allowed_lateness=config.allowed_lateness,
            max_entities=config.max_entities,
        )
        self.baselines: dict[str, EntityBaseline] = state.get("baselines", {})
        self.calibrator: StreamingCalibrator = state.get("calibrator") or StreamingCalibrator(
            budget_per_period=config.budget_per_day,
            windows_per_period=max(config.windows_per_day, config.budget_per_day + 1.0),
            min_scores=config.warmup_windows,
        )
        self.written_ids: set[str] = state.get("written_ids", set())
        self.totals: DaemonTotals = state.get("totals") or DaemonTotals()
        self.sources: dict[str, _Source] = {
            s.name: _build_source(s, resume.get(s.name)) for s in config.sources
        }
        self.sinks = [self._build_sink(s) for s in config.sinks]
        self._dead_handle = (config.state_dir / DEAD_LETTER_NAME).open("ab")
        self.registry = CollectorRegistry()
        self.registry.register(DaemonCollector(self.totals, self.gauges, self.lock))

    # -- state -------------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        if not self.checkpoint_path.exists():
            return {}
        state = load_model(self.checkpoint_path, expected_schema_hash=self.schema_hash)
        if not isinstance(state, dict):
            raise ValueError(f"{self.checkpoint_path}: not a daemon checkpoint")
        logger.info("restored checkpoint %s", self.checkpoint_path)
        return state

    def checkpoint(self) -> None:
        """Write the whole state atomically (sinks and dead letters synced first)."""
        with self.lock:
            for sink in self.sinks:
                if isinstance(sink, JsonlAlertSink):
                    sink.sync()
            self._dead_handle.flush()
            os.fsync(self._dead_handle.fileno())
            state = {
                "sources": {name: source.snapshot() for name, source in self.sources.items()},
                "features": self.features,
                "baselines": self.baselines,
                "calibrator": self.calibrator,
                "written_ids": self.written_ids,
                "totals": self.totals,
            }
            save_model(
                self.checkpoint_path,
                state,
                schema_hash=self.schema_hash,
                metadata={"kind": "daemon-checkpoint"},
            )
            self.gauges.last_checkpoint = time.time()

    def _build_sink(self, config: SinkConfig) -> JsonlAlertSink | TextIO:
        if config.type == "jsonl":
            assert config.path is not None
            return JsonlAlertSink(config.path, self.written_ids)
        return sys.stdout

    # -- the loop ----------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Read and process what every source has now (bounded per source); records handled."""
        handled = 0
        for name, source in self.sources.items():
            parser = self.parsers[name]
            with self.lock:
                for count, record in enumerate(source.read(), start=1):
                    self._handle(name, parser, record)
                    handled += 1
                    if count >= _BATCH:
                        break
                self.gauges.lag_bytes[name] = int(getattr(source, "lag_bytes", 0))
                self.gauges.entities = self.features.entities
                self.gauges.evictions = self.features.evictions
        return handled

    def _handle(self, name: str, parser: Parser, record: RawRecord) -> None:
        try:
            event = parser.parse(record.text)
        except ParseError as error:
            self._dead_letter(
                name,
                DeadLetter(record.origin, record.line, error.reason, record.text, error.detail),
            )
            return
        if event is None:
            return
        self.totals.events[name] += 1
        vectors = self.features.update(event)
        if self.features.late:
            for late in self.features.late:
                self.totals.late_events += 1
                self._dead_letter(
                    name,
                    DeadLetter(record.origin, record.line, "late", record.text, str(late.ts)),
                )
            self.features.late.clear()
        if vectors:
            self._score(vectors)

    def _dead_letter(self, name: str, letter: DeadLetter) -> None:
        self.totals.dead_letters[name, letter.reason] += 1
        self._dead_handle.write(orjson.dumps({"source": name, **letter.to_dict()}) + b"\n")

    def _score(self, vectors: Sequence[WindowVector]) -> None:
        alerts: list[Alert] = []
        for vector in vectors:
            self.totals.windows_closed += 1
            baseline = self.baselines.get(vector.entity)
            if baseline is None:
                detector = create(self.config.detector, **self.config.detector_params)
                baseline = self.baselines[vector.entity] = EntityBaseline(detector)  # type: ignore[arg-type]
            score = float(baseline.detector.score_one(vector.values))
            if not math.isfinite(score):
                score = 0.0
            threshold = self.calibrator.threshold_
            if self.calibrator.update(score):
                alerts.append(
                    Alert.build(
                        entity=vector.entity,
                        window_start=vector.window_start,
                        window_end=vector.window_start + self.window_length,
                        detector=self.config.detector,
                        score=score,
                        threshold=threshold,
                        severity=severity_of(score, threshold),
                        schema_hash=self.schema_hash,
                        deviations=baseline.explain(vector.values, self.specs),
                        entity_type=self.config.entity,
                    )
                )
            baseline.learn(vector.values)
        kept, muted = self.allowlist.apply(alerts)
        self.totals.suppressed += muted
        for alert in kept:
            self._emit(alert)

    def _emit(self, alert: Alert) -> None:
        fresh = alert.id not in self.written_ids
        for sink in self.sinks:
            if isinstance(sink, JsonlAlertSink):
                sink.write(alert)
            elif fresh:
                sink.write(orjson.dumps(alert.to_dict()).decode() + "\n")
                sink.flush()
        if fresh:
            self.written_ids.add(alert.id)
            self.totals.alerts[alert.severity] += 1

    def run(self) -> None:
        """Serve metrics and loop until SIGTERM / SIGINT (or :attr:`stopping` is set)."""
        host, port = self.config.metrics_host_port
        server = serve_metrics(self.registry, host, port, lambda: not self.stopping.is_set())
        logger.info("metrics on http://%s:%d/metrics", host, server.server_address[1])

        def stop(signum: int, frame: FrameType | None) -> None:
            logger.info("signal %d: checkpointing and stopping", signum)
            self.stopping.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        last = time.monotonic()
        try:
            while not self.stopping.is_set():
                handled = self.poll_once()
                if time.monotonic() - last >= self.config.checkpoint_seconds:
                    self.checkpoint()
                    last = time.monotonic()
                if not handled:
                    self.stopping.wait(self.config.poll_seconds)
            self.checkpoint()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.shutdown()
            server.server_close()
            self.close()

    def close(self) -> None:
        for sink in self.sinks:
            if isinstance(sink, JsonlAlertSink):
                sink.close()
        self._dead_handle.close()
