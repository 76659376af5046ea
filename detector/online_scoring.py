"""Online scoring for the daemon: per-entity baselines, population tails, budget, entity risk.

:class:`OnlineScorer` takes the vectors of closed windows and returns alerts. For each window:

1. **Baseline.** An entity with at least ``cold_start_windows`` learnt windows is compared with
   its own recent history: per feature, the robust z ``(x - median) / scale`` over its last
   ``history`` windows (a :class:`~models.online.robust_window.RobustWindowDetector`), on the
   comparison scale of :mod:`detector.scaling` (``log1p`` for counts). Below that (cold start)
   it is compared with the population: the median and robust scale of every entity's recent
   windows. The alert then says ``baseline = "population (cold start)"``.
2. **Population tail.** Like the batch scan's ``tail`` detector, a deviation counts by how rare
   it is across the population: ``-log10`` of the share of recent windows (own-history ones for
   an own baseline, population ones on cold start) that deviated at least as much on that
   feature, extrapolated beyond the largest. The window scores the sum of its ``top_k`` largest
   surprises. With any other registered online ``detector``, that detector (one instance per
   entity) scores own-history windows, and a cold-start window's population score is mapped
   onto the detector's recent score distribution by its rank (quantile mapping).
3. **Decision.** A :class:`~models.calibration.StreamingCalibrator` tracks the threshold that
   lets ``budget_per_day`` of ``windows_per_day`` windows alert; nothing alerts before
   ``warmup_windows`` windows were scored. All windows handed over in one call are judged
   against the threshold in force at the start of the call (their order does not matter), and
   a hard cap keeps every calendar day (UTC) within ``floor(budget_per_day)`` alerts (at least
   1): the highest scores of the day win, the rest are counted in :attr:`OnlineScorer.capped`.
4. **Learning.** Score first, then learn: a window that alerted is not learnt (neither by its
   entity nor by the population references) unless ``learn_flagged``, so an intruder's first
   days do not teach the baseline that the intrusion is normal.
5. **Entity risk.** Each window's evidence is how many "nines" of the ordinary score
   distribution (the last ``evidence_days`` of windows that did not alert) it lies beyond,
   above ``risk.surprise_floor`` (default :data:`detector.risk.STREAM_SURPRISE_FLOOR`, 5
   nines), as in :mod:`detector.risk`; a cold-start window counts ``cold_start_evidence``
   of it (default :data:`COLD_START_EVIDENCE_WEIGHT`, half). It accumulates per entity with a
   half-life of ``risk.half_life_days``. Every alert carries the entity's risk after it
   (``context["risk"]``); :meth:`OnlineScorer.top_entities` ranks entities by peak risk.

Population statistics and references are refreshed from ring buffers of the last
``reference_size`` learnt windows at the start of a call, every ``refresh_every`` learnt
windows (sooner while the buffers fill), so all windows of one call see the same references.

Cost: the windows of one call are scored together (array operations over all of them), and
the entities that learnt a window have their median and MAD refreshed together at the end of
the call, with the same numbers as window by window: every entity's history is a row of one
array (entity x feature x window slot, :class:`_EntityRings`), so that is one float32 sort
per history length plus a binary search for each MAD, written back in one assignment. The
score windows behind the threshold and the evidence are sorted arrays that take a whole
call's scores in one merge, and the population statistics come from one sort per column.
:meth:`OnlineScorer.score_frame` takes the columnar evaluator's frame directly.

Memory: per entity ``history x n_features`` float32 (60 x 40: under 10 kB; the rings grow by
a quarter at a time; a checkpoint holds only the slots filled), plus a registry detector if
one is configured; for the population three buffers of up to ``reference_size x n_features``
float32 that grow with the windows learnt (an empty scorer holds, and checkpoints, none of
it), and the sorted score windows of the calibrator and the evidence.
"""

from __future__ import annotations

import bisect
import csv
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
import polars as pl
from numpy.typing import NDArray

from detector.alerts import Alert, Deviation
from detector.explain import deviation_sentence
from detector.risk import RiskConfig
from detector.scaling import scale_matrix
from features.online import WindowVector
from features.spec import FeatureSpec
from models.base import OnlineDetector
from models.calibration import StreamingCalibrator
from models.online._common import WindowedECDF
from models.online.robust_window import (
    MAD_TO_SIGMA,
    RobustWindowDetector,
    median_and_mad_of_sorted,
    refresh_all,
)
from models.registry import create

logger = logging.getLogger(__name__)

FloatMatrix = NDArray[np.float64]

BUILTIN_DETECTOR = "robust_window"
"""The default: per-entity robust window baselines weighed by population tails."""

OWN_BASIS = "own history"
COLD_BASIS = "population (cold start)"
COLD_START_EVIDENCE_WEIGHT = 0.5
"""Share of its risk evidence that a cold-start window counts (the daemon's default).

A new entity is judged against the whole population, whose spread fits it less well than its
own history will: on the dev organisations (seeds 11 and 13, 1000 users x 180 days) full
weight let new accounts' first days rank decoys above planted users. Half, not none, so a new
account's extreme first days still raise its risk.
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def tail_surprise(magnitude: FloatMatrix, reference: FloatMatrix) -> FloatMatrix:
    """Per feature, ``-log10`` of the share of reference rows deviating at least as much.

    ``reference`` holds non-negative deviations sorted per column. Beyond the largest
    reference deviation the surprise is extrapolated along the slope between the column's 99th
    percentile and its maximum, capped at twice what the reference can resolve
    (``log10(n + 1)``); a column that never rose above 0 gives that cap at once. Magnitudes at
    or below 0 earn 0. The same rule as the batch ``tail`` detector.

    Examples
    --------
    >>> reference = np.sort(np.array([[0.0], [0.0], [1.0], [2.0]]), axis=0)
    >>> tail_surprise(np.array([[0.0], [1.0], [2.0]]), reference).round(3).tolist()
    [[0.0], [0.222], [0.398]]
    """
    n = reference.shape[0]
    surprise = np.zeros_like(magnitude)
    if n == 0:
        return surprise
    cap = math.log10(n + 1.0)
    q99_row = min(n - 1, max(0, math.ceil(0.99 * n) - 1))
    for j in range(magnitude.shape[1]):
        column = reference[:, j]
        values = magnitude[:, j]
        at_least = n - np.searchsorted(column, values, side="left")
        surprise[:, j] = -np.log10((at_least + 1.0) / (n + 1.0))
        top, q99 = float(column[-1]), float(column[q99_row])
        beyond = values > top
        if not beyond.any():
            continue
        if top <= 0.0:
            surprise[beyond, j] = 2.0 * cap
        elif cap > 2.0 and top > q99:
            slope = (cap - 2.0) / (top - q99)
            surprise[beyond, j] = np.minimum(cap + (values[beyond] - top) * slope, 2.0 * cap)
    surprise[magnitude <= 0.0] = 0.0
    return surprise


class _Ring:
    """The last ``size`` rows pushed (float32), for population statistics and references.

    Storage grows (doubling) with the rows pushed, up to ``size``: an idle or small
    deployment does not hold, nor checkpoint, ``size`` rows of zeros.
    """

    def __init__(self, size: int, width: int) -> None:
        self.size = size
        self.rows = np.zeros((0, width), dtype=np.float32)
        self.n = 0

    def __getstate__(self) -> dict[str, Any]:
        # Only the rows in use go into a checkpoint; the spare capacity is zeros.
        return {**self.__dict__, "rows": self.rows[: min(self.n, self.size)].copy()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Rings pickled before lazy growth were allocated at their full size.
        self.__dict__.update(state)
        if "size" not in state:
            self.size = self.rows.shape[0]

    def _reserve(self, rows: int) -> None:
        capacity = self.rows.shape[0]
        if rows <= capacity or capacity >= self.size:
            return
        grown = min(self.size, max(rows, 2 * capacity, 64))
        self.rows = np.concatenate(
            [self.rows, np.zeros((grown - capacity, self.rows.shape[1]), dtype=np.float32)]
        )

    def push(self, row: FloatMatrix) -> None:
        self.push_many(np.asarray(row)[None, :])

    def push_many(self, rows: FloatMatrix) -> None:
        """Push the rows in order (only the last ``size`` of them can stay)."""
        count = rows.shape[0]
        if count == 0:
            return
        if count > self.size:
            self.n += count - self.size
            rows, count = rows[-self.size :], self.size
        self._reserve(min(self.n + count, self.size))
        slots = (self.n + np.arange(count)) % self.size
        self.rows[slots] = rows
        self.n += count

    def kept(self) -> FloatMatrix:
        return self.rows[: min(self.n, self.size)].astype(np.float64)

    def sorted_columns(self) -> FloatMatrix:
        """:meth:`kept` with each column sorted (sorted along memory, then seen transposed,
        so a column is contiguous: what the tail look-ups read)."""
        # Sorted as float32 (half the bytes), then widened: the same order and values.
        return self.sorted_columns32().astype(np.float64).T

    def sorted_columns32(self) -> NDArray[np.float32]:
        """The kept rows' columns as rows (feature x row, float32), each sorted."""
        columns = np.ascontiguousarray(self.rows[: min(self.n, self.size)].T)
        columns.sort(axis=1)
        return columns


class _EntityRings:
    """Every entity's window history in one array, with its median and scale beside it.

    Row ``r`` of :attr:`values` (feature x window slot, float32) is an entity's ring; its
    :class:`~models.online.robust_window.RobustWindowDetector` reads and writes it through
    views (``buffer_`` is ``values[r].T``, ``median_`` and ``scale_`` rows of
    :attr:`median` and :attr:`scale`), so a whole call's refresh is one sort per history
    length, written back in one assignment. Each series is contiguous (the sort's axis).
    Rows of forgotten entities are reused; capacity grows by a quarter when full. Checkpoints
    hold the detectors (only their filled slots), not this: it is rebuilt on load.

    Examples
    --------
    >>> rings = _EntityRings(window=3, width=1)
    >>> detector = RobustWindowDetector(window=3, log1p=False)
    >>> detector.set_columns(["x"])
    >>> row = rings.bind(detector)
    >>> for value in (5.0, 1.0, 2.0):
    ...     detector.buffer_[detector.n_learnt_ % 3] = value
    ...     detector.n_learnt_ += 1
    >>> rings.refresh({row: detector})
    >>> rings.values[row].tolist(), float(detector.median_[0]), detector.stale_
    ([[5.0, 1.0, 2.0]], 2.0, False)
    """

    def __init__(self, window: int, width: int, capacity: int = 0) -> None:
        self.window = window
        self.width = width
        self.values = np.zeros((capacity, width, window), dtype=np.float32)
        self.median = np.zeros((capacity, width))
        self.scale = np.zeros((capacity, width))
        self.owners: list[RobustWindowDetector | None] = []
        self.free: list[int] = []

    def fits(self, detector: RobustWindowDetector) -> bool:
        """Whether the detector's history has this ring's shape (else it keeps its own)."""
        return detector.window == self.window and detector.buffer_.shape == (
            self.window,
            self.width,
        )

    def bind(self, detector: RobustWindowDetector) -> int:
        """Move the detector's state into a row (a free one first) and view it; the row."""
        if self.free:
            row = self.free.pop()
            self.owners[row] = detector
        else:
            row = len(self.owners)
            self.owners.append(detector)
            if row >= self.values.shape[0]:
                # By a quarter: the rings are most of a large deployment's memory.
                self._grow(max(64, self.values.shape[0] + self.values.shape[0] // 4))
        self.values[row] = detector.buffer_.T
        self.median[row] = detector.median_
        self.scale[row] = detector.scale_
        self._view(row, detector)
        return row

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more detectors at once (one copy, not one per growth)."""
        needed = len(self.owners) - len(self.free) + extra
        if needed > self.values.shape[0]:
            self._grow(max(needed, 64, self.values.shape[0] + self.values.shape[0] // 4))

    def release(self, row: int) -> None:
        """Free the row; its detector keeps copies of its state (nothing else writes it)."""
        detector = self.owners[row]
        if detector is not None:
            detector.buffer_ = detector.buffer_.copy()
            detector.median_, detector.scale_ = detector.median_.copy(), detector.scale_.copy()
        self.owners[row] = None
        self.free.append(row)

    def _view(self, row: int, detector: RobustWindowDetector) -> None:
        detector.buffer_ = self.values[row].T
        detector.median_ = self.median[row]
        detector.scale_ = self.scale[row]

    def _grow(self, capacity: int) -> None:
        extra = capacity - self.values.shape[0]
        self.values = np.concatenate(
            [self.values, np.zeros((extra, self.width, self.window), dtype=np.float32)]
        )
        self.median = np.concatenate([self.median, np.zeros((extra, self.width))])
        self.scale = np.concatenate([self.scale, np.zeros((extra, self.width))])
        for row, detector in enumerate(self.owners):
            if detector is not None:
                self._view(row, detector)

    def refresh(self, detectors: Mapping[int, RobustWindowDetector]) -> None:
        """Recompute the median and scale of these rows (numbers of ``refresh()`` on each)."""
        if not detectors:
            return
        rows = np.fromiter(detectors, dtype=np.intp, count=len(detectors))
        kept = np.fromiter(
            (min(d.n_learnt_, self.window) for d in detectors.values()),
            dtype=np.intp,
            count=len(detectors),
        )
        for length in np.unique(kept).tolist():
            members = rows[kept == length]
            if length == 0:
                continue
            # Slots fill in order, so a young entity's history is its first `length` slots.
            block = (
                self.values[members] if length == self.window else self.values[members, :, :length]
            )
            block = np.ascontiguousarray(block)
            block.sort(axis=2)
            median, mad = median_and_mad_of_sorted(block.reshape(-1, length))
            self.median[members] = median.reshape(-1, self.width)
            self.scale[members] = MAD_TO_SIGMA * mad.reshape(-1, self.width)
        for detector in detectors.values():
            detector.stale_ = False


class _RowValues(Mapping[str, float]):
    """One row of a value matrix seen as a window's ``values`` (read only when asked)."""

    __slots__ = ("_columns", "_row")

    def __init__(self, columns: Mapping[str, int], row: FloatMatrix) -> None:
        self._columns = columns
        self._row = row

    def __getitem__(self, name: str) -> float:
        return float(self._row[self._columns[name]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


class _ScoreWindow(WindowedECDF):
    """:class:`~models.online._common.WindowedECDF` on arrays, pushed a whole call at once.

    The same window, ranks and quantiles as the list version (a sorted copy beside the
    arrival order), but :meth:`push_many` merges a call's scores in one pass instead of one
    list insertion each (each an O(size) move: the windows hold weeks of scores), and
    :meth:`ranks` answers many at once.

    Examples
    --------
    >>> window = _ScoreWindow(size=4)
    >>> window.push_many(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    >>> window.rank(3.0), window.rank(10.0), window.quantile(0.5), len(window)
    (0.5, 1.0, 3.5, 4)
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.order = np.zeros(0)
        """The kept values, oldest first."""
        self.ordered = np.zeros(0)
        """The same values, sorted."""

    @classmethod
    def of(cls, window: WindowedECDF) -> _ScoreWindow:
        """The same window (e.g. from a checkpoint written before this class)."""
        if isinstance(window, _ScoreWindow):
            return window
        converted = cls(window.size)
        converted.order = np.array(list(window._order), dtype=np.float64)
        converted.ordered = np.array(window._sorted, dtype=np.float64)
        return converted

    def __getstate__(self) -> dict[str, Any]:
        # The sorted copy is rebuilt on load: a checkpoint holds each score once.
        return {"size": self.size, "order": self.order}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.size = state["size"]
        self.order = state["order"]
        self.ordered = np.sort(self.order)

    def __len__(self) -> int:
        return int(self.ordered.size)

    def push(self, value: float) -> None:
        self.push_many(np.array([float(value)]))

    def push_many(self, values: FloatMatrix) -> None:
        """Push the values in order; the oldest leave once the window is full."""
        values = np.asarray(values, dtype=np.float64)
        if values.size >= self.size:
            self.order = values[-self.size :].copy()
            self.ordered = np.sort(self.order)
            return
        leaving = max(self.order.size + values.size - self.size, 0)
        ordered = self.ordered
        if leaving:
            old = np.sort(self.order[:leaving])
            # Equal values leave from consecutive slots of their run.
            first = np.searchsorted(ordered, old, side="left")
            slots = first + np.arange(leaving) - np.searchsorted(old, old, side="left")
            ordered = np.delete(ordered, slots)
            self.order = self.order[leaving:]
        new = np.sort(values)
        self.ordered = np.insert(ordered, np.searchsorted(ordered, new, side="left"), new)
        self.order = np.concatenate([self.order, values])

    def rank(self, value: float) -> float:
        if not self.ordered.size:
            return 0.5
        return float(np.searchsorted(self.ordered, value, side="right")) / self.ordered.size

    def ranks(self, values: FloatMatrix) -> FloatMatrix:
        """:meth:`rank` of each value."""
        if not self.ordered.size:
            return np.full(np.shape(values), 0.5)
        found = np.searchsorted(self.ordered, values, side="right")
        return np.asarray(found / self.ordered.size, dtype=np.float64)

    def quantile(self, level: float) -> float:
        if not self.ordered.size:
            return math.nan
        n = self.ordered.size
        position = min(max(level, 0.0), 1.0) * (n - 1)
        low = math.floor(position)
        high = min(low + 1, n - 1)
        weight = position - low
        return float(self.ordered[low]) * (1.0 - weight) + float(self.ordered[high]) * weight


def _calibrate(calibrator: StreamingCalibrator, scores: FloatMatrix) -> None:
    """:meth:`StreamingCalibrator.update` of every score, in one pass over the window.

    The threshold afterwards is the same; ``n_alerts_`` counts the scores above the
    threshold in force at the start (the scorer's own rule for a call), not above the one
    each score would have met one at a time.
    """
    if not scores.size:
        return
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    window = calibrator.recent_
    assert isinstance(window, _ScoreWindow)
    calibrator.n_alerts_ += int((scores > calibrator.threshold_).sum())
    window.push_many(scores)
    calibrator.n_seen_ += int(scores.size)
    if len(window) >= calibrator.min_scores:
        threshold = window.quantile(calibrator.level_)
        if calibrator.min_threshold is not None:
            threshold = max(threshold, calibrator.min_threshold)
        calibrator.threshold_ = threshold


@dataclass
class EntityBaseline:
    """One entity's state: its robust window baseline and, optionally, its own detector.

    Examples
    --------
    >>> baseline = EntityBaseline(RobustWindowDetector(log1p=False))
    >>> for n in (2.0, 4.0, 2.0):
    ...     baseline.robust.learn_array([n], ["logons"])
    >>> baseline.robust.n_learnt_, float(baseline.robust.median_[0])
    (3, 2.0)
    """

    robust: RobustWindowDetector
    detector: OnlineDetector | None = None
    """The configured registry detector when it is not the built-in one."""
    scored: int = 0
    """Windows scored (alerted ones included; ``robust.n_learnt_`` counts the learnt ones)."""
    row: int = -1
    """The scorer's ring row holding ``robust``'s state (-1: it holds its own arrays)."""


@dataclass
class EntityRisk:
    """An entity's decayed risk and what led to it.

    Examples
    --------
    >>> risk = EntityRisk("ann")
    >>> risk.add(2.0, 0.0, datetime(2024, 1, 1, tzinfo=UTC), half_life_days=7.0)
    >>> risk.add(2.0, 7.0, datetime(2024, 1, 8, tzinfo=UTC), half_life_days=7.0)
    >>> risk.risk, risk.peak, risk.peak_window.day
    (3.0, 3.0, 8)
    """

    entity: str
    risk: float = 0.0
    """Risk as of the entity's last window."""
    day: float = 0.0
    """That window's start, in days since the epoch."""
    peak: float = 0.0
    peak_window: datetime | None = None
    alerts: int = 0
    windows: int = 0
    evidence_windows: int = 0

    def add(self, evidence: float, day: float, window: datetime, *, half_life_days: float) -> None:
        """Decay to ``day``, then add this window's evidence."""
        if self.windows and day > self.day:
            self.risk *= 0.5 ** ((day - self.day) / half_life_days)
        self.day = max(self.day, day) if self.windows else day
        self.windows += 1
        if evidence > 0.0:
            self.risk += evidence
            self.evidence_windows += 1
            if self.risk > self.peak:
                self.peak, self.peak_window = self.risk, window

    def now(self, day: float, half_life_days: float) -> float:
        """Risk decayed to ``day`` (days since the epoch)."""
        return float(self.risk * 0.5 ** (max(day - self.day, 0.0) / half_life_days))


class ScoredWindow(NamedTuple):
    """One window's outcome (for benchmarks and diagnostics)."""

    entity: str
    window_start: datetime
    score: float
    alert: bool
    basis: str
    evidence: float


@dataclass
class _Population:
    """Population statistics refreshed from the ring buffers (comparison scale)."""

    median: FloatMatrix
    scale: FloatMatrix
    floor: FloatMatrix
    low: FloatMatrix
    high: FloatMatrix
    own_reference: FloatMatrix
    population_reference: FloatMatrix


class OnlineScorer:
    """Scores closed windows online and turns them into budgeted, explained alerts.

    Parameters
    ----------
    specs
        The feature specs (vector keys), in order.
    detector, detector_params
        ``"robust_window"`` (the default, see the module documentation) or any registered
        online detector with its hyper-parameters (one instance per entity).
    budget_per_day, windows_per_day
        Alerts allowed per day, and entity-windows expected per day.
    warmup_windows
        Windows scored before anything may alert (the whole scorer's warm-up).
    cold_start_windows
        Windows an entity must have learnt before its own history is its baseline.
    history
        Windows kept per entity (the own baseline's memory).
    risk
        Half-life and surprise floor of the entity risk.
    entity_type, window, schema_hash
        Written into the alerts (``window`` is the window length).
    learn_flagged
        Learn windows that alerted too (default: they do not teach the baseline).
    top_k
        Surprises summed per window.
    alpha, min_scale
        Scale floor of a feature: ``max(alpha * population spread, min_scale)``.
    reference_size, refresh_every
        Recent windows behind the population statistics, and how often they are refreshed.
    calibration_days
        Days of scores behind the streaming threshold (at least ``warmup_windows`` scores).
    evidence_days
        Days of ordinary (not alerted) scores that a window's risk evidence is measured against.
    cold_start_evidence
        Weight of a cold-start window's risk evidence (default
        :data:`COLD_START_EVIDENCE_WEIGHT`).
    z_min, max_share, max_deviations
        Which deviations an explanation lists: robust z of at least ``z_min`` that at most a
        ``max_share`` of recent windows reached, at most ``max_deviations`` of them.
    seed
        Passed to the per-entity detectors.

    Examples
    --------
    >>> specs = [FeatureSpec(name="logons", kind="count", explain="{observed:g} logons"),
    ...          FeatureSpec(name="usb", kind="count", technique="T1052.001",
    ...                      explain="{observed:g} USB connects")]
    >>> # 200 ordinary windows resolve about 2 nines: risk counts beyond 2 here (default 5).
    >>> scorer = OnlineScorer(specs, budget_per_day=1, windows_per_day=20, warmup_windows=60,
    ...                       refresh_every=20, risk=RiskConfig(surprise_floor=2.0))
    >>> day0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> def day(d, usb_user=None):
    ...     return [WindowVector(f"u{u}", day0 + timedelta(days=d), 5,
    ...             {"logons": 3.0 + u % 3, "usb": 30.0 if f"u{u}" == usb_user else 0.0})
    ...             for u in range(20)]
    >>> alerts = [a for d in range(10) for a in scorer.score(day(d))]
    >>> alerts
    []
    >>> [alert] = scorer.score(day(10, usb_user="u7"))
    >>> alert.entity, alert.techniques, alert.deviations[0].text
    ('u7', ('T1052.001',), '30 USB connects (typical 0)')
    >>> scorer.top_entities(1)[0].entity
    'u7'
    """

    def __init__(
        self,
        specs: Sequence[FeatureSpec],
        *,
        detector: str = BUILTIN_DETECTOR,
        detector_params: Mapping[str, Any] | None = None,
        budget_per_day: float = 5.0,
        windows_per_day: float = 1000.0,
        warmup_windows: int = 100,
        cold_start_windows: int = 5,
        history: int = 60,
        risk: RiskConfig = RiskConfig(),  # noqa: B008 - frozen, so a shared default is safe
        entity_type: str = "user",
        window: timedelta = timedelta(days=1),
        schema_hash: str = "",
        learn_flagged: bool = False,
        top_k: int = 2,
        alpha: float = 0.5,
        min_scale: float = 0.1,
        reference_size: int = 50_000,
        refresh_every: int = 1000,
        calibration_days: float = 14.0,
        evidence_days: float = 30.0,
        cold_start_evidence: float = COLD_START_EVIDENCE_WEIGHT,
        z_min: float = 2.0,
        max_share: float = 0.02,
        max_deviations: int = 5,
        seed: int = 0,
    ) -> None:
        if budget_per_day <= 0:
            raise ValueError(f"budget_per_day must be > 0, got {budget_per_day}")
        if cold_start_windows < 1 or history < cold_start_windows:
            raise ValueError("need 1 <= cold_start_windows <= history")
        self.specs = tuple(specs)
        self.features = [s.name for s in self.specs]
        self.detector = detector
        self.detector_params = dict(detector_params or {})
        self.budget_per_day = budget_per_day
        self.windows_per_day = windows_per_day
        self.warmup_windows = warmup_windows
        self.cold_start_windows = cold_start_windows
        self.history = history
        self.risk_config = risk
        self.entity_type = entity_type
        self.window = window
        self.schema_hash = schema_hash
        self.learn_flagged = learn_flagged
        self.top_k = top_k
        self.alpha = alpha
        self.min_scale = min_scale
        self.refresh_every = refresh_every
        self.z_min = z_min
        self.max_share = max_share
        self.max_deviations = max_deviations
        self.seed = seed
        if not 0.0 <= cold_start_evidence <= 1.0:
            raise ValueError(f"cold_start_evidence must be in [0, 1], got {cold_start_evidence}")
        self.cold_start_evidence = cold_start_evidence
        if detector != BUILTIN_DETECTOR:
            create(detector, **self.detector_params)  # fail now on a bad name or parameter
        self.daily_cap = max(1, math.floor(budget_per_day))
        calibration_window = max(
            int(calibration_days * windows_per_day), warmup_windows, self.daily_cap * 10
        )
        self.calibrator = StreamingCalibrator(
            budget_per_period=budget_per_day,
            windows_per_period=max(windows_per_day, budget_per_day + 1.0),
            window=calibration_window,
            min_scores=max(warmup_windows, 1),
        )
        self.calibrator.recent_ = _ScoreWindow(self.calibrator.recent_.size)
        self._ordinary = _ScoreWindow(max(int(evidence_days * windows_per_day), warmup_windows, 1))
        self.regularity = np.array([s.kind == "periodicity" for s in self.specs])
        width = len(self.features)
        self._values = _Ring(reference_size, width)
        self._own_z = _Ring(reference_size, width)
        self._population_z = _Ring(reference_size, width)
        self._learnt_since_refresh = 0
        self._population: _Population | None = None
        # Population scores of cold-start windows (quantile mapping for registry detectors).
        self._cold_scores: list[float] = []
        self.baselines: dict[str, EntityBaseline] = {}
        self._rings = _EntityRings(history, width)
        self.risks: dict[str, EntityRisk] = {}
        self.alerts_per_day: dict[date, int] = {}
        self.windows_scored = 0
        self.alerts_raised = 0
        self.capped = 0
        self.last_day = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # The rings are rebuilt from the detectors on load (each pickles its filled slots).
        state = dict(self.__dict__)
        state.pop("_rings", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Checkpoints written before the score windows were arrays hold the list version.
        # Checkpoints written before cold-start evidence was weighed counted it in full (and
        # keep the risk floor they were written with).
        state.setdefault("cold_start_evidence", 1.0)
        self.__dict__.update(state)
        self._ordinary = _ScoreWindow.of(self._ordinary)
        self.calibrator.recent_ = _ScoreWindow.of(self.calibrator.recent_)
        # Checkpoints of any version: every baseline of the right shape moves into a row.
        self._rings = _EntityRings(self.history, len(self.features), len(self.baselines))
        for baseline in self.baselines.values():
            fits = self._rings.fits(baseline.robust)
            baseline.row = self._rings.bind(baseline.robust) if fits else -1

    # -- public -----------------------------------------------------------------------------

    def score(self, vectors: Sequence[WindowVector]) -> list[Alert]:
        """Score the windows, decide at the budget, learn; the alerts, highest score first."""
        return self.score_windows(vectors)[1]

    def forget(self, entity: str) -> bool:
        """Drop an entity's baseline (evicted or expired by the features); True if it had one.

        Its risk record stays while it carries risk, so a returning entity keeps its history
        of evidence; a record without any is dropped too.
        """
        risk = self.risks.get(entity)
        if risk is not None and risk.peak == 0.0:
            del self.risks[entity]
        baseline = self.baselines.pop(entity, None)
        if baseline is None:
            return False
        if baseline.row >= 0:
            self._rings.release(baseline.row)
            baseline.row = -1
        return True

    def top_entities(self, n: int | None = None) -> list[EntityRisk]:
        """Entities by peak risk (then name), the ``n`` riskiest (all when ``None``)."""
        ranked = sorted(self.risks.values(), key=lambda r: (-r.peak, r.entity))
        return ranked if n is None else ranked[:n]

    def write_entities(self, path: Path) -> int:
        """Write ``rank,entity,risk,risk_now,peak_window,alerts,windows`` atomically; rows."""
        rows = self.top_entities()
        half_life = self.risk_config.half_life_days
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["rank", "entity", "risk", "risk_now", "peak_window", "alerts", "windows"]
            )
            for rank, row in enumerate(rows, start=1):
                peak_window = "" if row.peak_window is None else row.peak_window.date().isoformat()
                writer.writerow(
                    [
                        rank,
                        row.entity,
                        round(row.peak, 6),
                        round(row.now(self.last_day, half_life), 6),
                        peak_window,
                        row.alerts,
                        row.windows,
                    ]
                )
        os.replace(tmp, path)
        return len(rows)

    # -- scoring ----------------------------------------------------------------------------

    def score_windows(
        self, vectors: Sequence[WindowVector]
    ) -> tuple[list[ScoredWindow], list[Alert]]:
        """Like :meth:`score`, also returning every window's score, basis and evidence."""
        if not vectors:
            return [], []
        raw = np.array(
            [[float(v.values.get(name, 0.0)) for name in self.features] for v in vectors],
            dtype=np.float64,
        )
        return self._score_matrix(vectors, raw)

    def score_frame(self, vectors: pl.DataFrame) -> list[Alert]:
        """:meth:`score` of the columnar evaluator's output, without per-window objects' dicts.

        ``vectors`` has the columns ``entity``, ``window_start`` (UTC), ``n_events`` and one
        number per spec, named as the spec (a missing or null one counts as 0, as a missing
        key of a vector does). The alerts are those :meth:`score` gives for the same windows.
        """
        if vectors.height == 0:
            return []
        present = set(vectors.columns)
        raw = vectors.select(
            (pl.col(name) if name in present else pl.lit(None)).cast(pl.Float64()).alias(name)
            for name in self.features
        ).to_numpy()
        columns = {name: j for j, name in enumerate(self.features)}
        # The values are read only by a registry detector: a view of the row, not a dict each
        # (WindowVector states a dict; every reader here takes any mapping).
        windows = [
            WindowVector(
                entity, start, n_events, cast(dict[str, float], _RowValues(columns, raw[i]))
            )
            for i, (entity, start, n_events) in enumerate(
                vectors.select("entity", "window_start", "n_events").iter_rows()
            )
        ]
        return self._score_matrix(windows, raw)[1]

    def _score_matrix(
        self, vectors: Sequence[WindowVector], raw: FloatMatrix
    ) -> tuple[list[ScoredWindow], list[Alert]]:
        """Score the windows whose raw values (spec order) are the rows of ``raw``."""
        self._refresh()
        population = self._population
        raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
        scaled = scale_matrix(self.specs, raw)
        width = len(self.features)
        floor = np.full(width, self.min_scale) if population is None else population.floor
        if population is None:
            population_z = np.zeros_like(scaled)
        else:
            population_z = (scaled - population.median) / population.scale
        own_z = np.zeros_like(scaled)
        arriving = {vector.entity for vector in vectors}.difference(self.baselines)
        if arriving:
            self._rings.reserve(len(arriving))
        baselines = [self._baseline(vector.entity) for vector in vectors]
        cold_start = self.cold_start_windows
        own = np.array([b.robust.n_learnt_ >= cold_start for b in baselines], dtype=bool)
        if own.any():
            owners = [baselines[i] for i in np.flatnonzero(own).tolist()]
            rows = np.array([baseline.row for baseline in owners], dtype=np.intp)
            if (rows >= 0).all():
                median, scale = self._rings.median[rows], self._rings.scale[rows]
            else:
                median = np.stack([baseline.robust.median_ for baseline in owners])
                scale = np.stack([baseline.robust.scale_ for baseline in owners])
            own_z[own] = (scaled[own] - median) / np.maximum(scale, floor)
        own_positive = np.maximum(own_z, 0.0)
        population_positive = np.maximum(population_z, 0.0)
        surprise = np.zeros_like(scaled)
        if population is not None:
            if own.any():
                surprise[own] = tail_surprise(own_positive[own], population.own_reference)
            if (~own).any():
                surprise[~own] = tail_surprise(
                    population_positive[~own], population.population_reference
                )
        k = max(1, min(self.top_k, width))
        tail_scores = np.sort(surprise, axis=1)[:, -k:].sum(axis=1)
        scores = self._detector_scores(vectors, baselines, own, tail_scores)

        # Decide against the threshold in force at the start of the call.
        threshold = float(self.calibrator.threshold_)
        evidence = self._evidence(scores)
        evidence[~own] *= self.cold_start_evidence
        scores = np.asarray(scores, dtype=np.float64)
        candidates = np.flatnonzero(scores > threshold).tolist()
        flagged = self._apply_cap(vectors, scores, candidates)
        _calibrate(self.calibrator, scores)
        self.windows_scored += len(vectors)

        results: list[ScoredWindow] = []
        alerts: list[Alert] = []
        learnt: list[int] = []
        half_life = self.risk_config.half_life_days
        score_list, evidence_list, own_list = scores.tolist(), evidence.tolist(), own.tolist()
        days: dict[datetime, float] = {}  # the windows of a call mostly share one start
        risks = self.risks
        for i, vector in enumerate(vectors):
            start = vector.window_start
            day = days.get(start)
            if day is None:
                day = days[start] = (start - _EPOCH).total_seconds() / 86_400.0
                self.last_day = max(self.last_day, day)
            risk = risks.get(vector.entity)
            if risk is None:
                risk = risks[vector.entity] = EntityRisk(vector.entity)
            risk.add(evidence_list[i], day, start, half_life_days=half_life)
            alert = i in flagged
            basis = OWN_BASIS if own_list[i] else COLD_BASIS
            if alert:
                risk.alerts += 1
                alerts.append(
                    self._alert(
                        vector,
                        float(scores[i]),
                        threshold,
                        basis,
                        raw[i],
                        own_z[i] if own[i] else population_z[i],
                        baselines[i],
                        risk.risk,
                    )
                )
            results.append(
                ScoredWindow(vector.entity, start, score_list[i], alert, basis, evidence_list[i])
            )
            baselines[i].scored += 1
            if alert and not self.learn_flagged:
                continue
            self._learn(vector, baselines[i], scaled[i])
            learnt.append(i)
        if learnt:
            self._ordinary_window().push_many(scores[learnt])
        self._learn_population(learnt, baselines, scaled, own, own_positive, population_z)
        self.alerts_raised += len(alerts)
        alerts.sort(key=lambda a: (-a.score, a.entity))
        return results, alerts

    # -- internals ---------------------------------------------------------------------------

    def _baseline(self, entity: str) -> EntityBaseline:
        baseline = self.baselines.get(entity)
        if baseline is None:
            robust = RobustWindowDetector(
                window=self.history, min_history=self.cold_start_windows, log1p=False
            )
            robust.set_columns(self.features)
            detector: OnlineDetector | None = None
            if self.detector != BUILTIN_DETECTOR:
                params = {"seed": self.seed, **self.detector_params}
                detector = create(self.detector, **params)  # type: ignore[assignment]
            baseline = self.baselines[entity] = EntityBaseline(robust, detector)
            baseline.row = self._rings.bind(robust)
        return baseline

    def _detector_input(self, vector: WindowVector) -> dict[str, float]:
        values = dict(vector.values)
        values["__ts"] = (vector.window_start - _EPOCH).total_seconds()
        return values

    def _detector_scores(
        self,
        vectors: Sequence[WindowVector],
        baselines: list[EntityBaseline],
        own: NDArray[np.bool_],
        tail_scores: FloatMatrix,
    ) -> FloatMatrix:
        if self.detector == BUILTIN_DETECTOR:
            return np.nan_to_num(tail_scores, nan=0.0, posinf=0.0, neginf=0.0)
        scores = np.zeros(len(vectors))
        recent = self.calibrator.recent_
        cold_sorted = self._cold_scores
        for i, vector in enumerate(vectors):
            baseline = baselines[i]
            if own[i] and baseline.detector is not None:
                value = float(baseline.detector.score_one(self._detector_input(vector)))
            elif len(recent) and cold_sorted:
                # Quantile mapping: the cold window's population score, by its rank among
                # recent cold-start scores, onto the detector's recent score distribution.
                rank = bisect.bisect_left(cold_sorted, float(tail_scores[i])) / len(cold_sorted)
                value = recent.quantile(rank)
            else:
                value = 0.0
            scores[i] = value if math.isfinite(value) else 0.0
        for cold in np.flatnonzero(~own).tolist():
            bisect.insort(cold_sorted, float(tail_scores[cold]))
            if len(cold_sorted) > 5000:
                # Keep it bounded: drop alternate values (keeps the distribution's shape).
                del cold_sorted[::2]
        return scores

    def _evidence(self, scores: FloatMatrix) -> FloatMatrix:
        """Nines of the ordinary score distribution beyond each score, above the risk floor.

        Ordinary: the recent windows that did not alert. Like the batch scan's clean training
        period, it leaves out what was flagged, so an intrusion lasting several days does not
        make its own later days look ordinary.
        """
        recent = self._ordinary_window()
        n = len(recent)
        if self.calibrator.n_seen_ < self.calibrator.min_scores or n == 0:
            return np.zeros(len(scores))
        top, q99 = recent.quantile(1.0), recent.quantile(0.99)
        cap = math.log10(n + 1.0)
        scores = np.asarray(scores, dtype=np.float64)
        below = recent.ranks(scores - 1e-12 * np.maximum(1.0, np.abs(scores)))
        surprise = -np.log10(np.maximum(1.0 - below, 1.0 / (n + 1.0)))
        if cap > 2.0 and top > q99:
            beyond = scores > top
            surprise[beyond] = cap + (scores[beyond] - top) * (cap - 2.0) / (top - q99)
        return np.asarray(np.maximum(0.0, surprise - self.risk_config.surprise_floor))

    def _ordinary_window(self) -> _ScoreWindow:
        window = self._ordinary
        assert isinstance(window, _ScoreWindow)
        return window

    def _apply_cap(
        self, vectors: Sequence[WindowVector], scores: FloatMatrix, candidates: list[int]
    ) -> set[int]:
        """The candidates that fit in their day's budget, highest scores first."""
        by_day: dict[date, list[int]] = {}
        for i in candidates:
            by_day.setdefault(vectors[i].window_start.date(), []).append(i)
        kept: set[int] = set()
        for day, members in by_day.items():
            members.sort(key=lambda i: (-scores[i], vectors[i].entity))
            room = max(self.daily_cap - self.alerts_per_day.get(day, 0), 0)
            kept.update(members[:room])
            self.capped += max(len(members) - room, 0)
            self.alerts_per_day[day] = self.alerts_per_day.get(day, 0) + min(room, len(members))
        if len(self.alerts_per_day) > 8:
            # Only the days still open matter; windows arrive in time order.
            for day in sorted(self.alerts_per_day)[:-8]:
                del self.alerts_per_day[day]
        return kept

    def _learn(self, vector: WindowVector, baseline: EntityBaseline, scaled: FloatMatrix) -> None:
        # The window goes into the entity's ring now; its median and scale are refreshed for
        # all entities at once at the end of the call (or sooner, if an alert reads them).
        robust = baseline.robust
        if len(robust.features_) == len(self.features) and robust.features_ == self.features:
            # The usual case, push_array's work without its checks: the columns are ours and
            # the comparison scale is already applied (log1p=False), the values finite.
            robust.buffer_[robust.n_learnt_ % robust.window] = scaled
            robust.n_learnt_ += 1
            robust.stale_ = True
        else:
            robust.push_array(scaled, self.features)
        if baseline.detector is not None:
            baseline.detector.learn_one(self._detector_input(vector))

    def _learn_population(
        self,
        learnt: list[int],
        baselines: list[EntityBaseline],
        scaled: FloatMatrix,
        own: NDArray[np.bool_],
        own_positive: FloatMatrix,
        population_z: FloatMatrix,
    ) -> None:
        """Refresh the baselines of the learnt windows and push them to the population rings."""
        if not learnt:
            return
        in_rings: dict[int, RobustWindowDetector] = {}
        own_arrays: list[RobustWindowDetector] = []
        for i in learnt:
            baseline = baselines[i]
            if baseline.row >= 0:
                in_rings[baseline.row] = baseline.robust
            else:
                own_arrays.append(baseline.robust)
        self._rings.refresh(in_rings)
        refresh_all(own_arrays)
        rows = np.asarray(learnt)
        self._values.push_many(scaled[rows])
        self._population_z.push_many(np.maximum(population_z[rows], 0.0))
        self._own_z.push_many(own_positive[rows[own[rows]]])
        self._learnt_since_refresh += len(learnt)

    def _refresh(self) -> None:
        """Recompute the population statistics and references when enough was learnt."""
        if self._values.n == 0:
            return
        # Every refresh_every windows, and sooner while the buffers are still filling (each
        # time they have doubled), so a small deployment is not stuck with its first windows.
        learnt = self._learnt_since_refresh
        due = min(self.refresh_every, max(self._values.n - learnt, 1))
        if self._population is not None and learnt < due:
            return
        # One sort of each column gives the median, the MAD and both quantiles (the values
        # of np.median and np.quantile's "lower"/"higher" methods, at a fraction of the cost).
        columns = self._values.sorted_columns32()
        n = columns.shape[1]
        median, mad = median_and_mad_of_sorted(columns)
        robust = MAD_TO_SIGMA * mad
        spread = robust
        if not (robust > 0.0).all():
            spread = np.where(robust > 0.0, robust, self._values.kept().std(axis=0))
        floor = np.maximum(self.alpha * spread, self.min_scale)
        positions = np.arange(n)
        low = columns[:, int(np.quantile(positions, 0.1, method="lower"))].astype(np.float64)
        high = columns[:, int(np.quantile(positions, 0.9, method="higher"))].astype(np.float64)
        self._population = _Population(
            median=median,
            scale=np.maximum(spread, floor),
            floor=floor,
            low=low,
            high=high,
            own_reference=self._own_z.sorted_columns(),
            population_reference=self._population_z.sorted_columns(),
        )
        self._learnt_since_refresh = 0

    def _raw(self, scaled: FloatMatrix) -> FloatMatrix:
        """Comparison-scale values back on the features' own scale (rounded for reading)."""
        counts = np.expm1(scaled)
        regular = 1.0 - np.exp(-scaled)
        readable = np.round(np.where(self.regularity, regular, counts), 2)
        return np.asarray(readable, dtype=np.float64)

    def _alert(
        self,
        vector: WindowVector,
        score: float,
        threshold: float,
        basis: str,
        raw: FloatMatrix,
        z: FloatMatrix,
        baseline: EntityBaseline,
        risk: float,
    ) -> Alert:
        return Alert.build(
            entity=vector.entity,
            window_start=vector.window_start,
            window_end=vector.window_start + self.window,
            detector=self.detector,
            score=score,
            threshold=threshold,
            severity=severity_of(score, threshold),
            schema_hash=self.schema_hash,
            deviations=self._explain(basis, raw, z, baseline),
            entity_type=self.entity_type,
            baseline=basis,
            context={"events": str(vector.n_events), "risk": f"{risk:.3f}"},
        )

    def _explain(
        self, basis: str, raw: FloatMatrix, z: FloatMatrix, baseline: EntityBaseline
    ) -> tuple[Deviation, ...]:
        """Deviating features, rarest across the population first (as the batch explains)."""
        population = self._population
        if population is None:
            return ()
        if basis == OWN_BASIS:
            if baseline.robust.stale_:
                # An earlier window of the same entity in this call was learnt already.
                baseline.robust.refresh()
            kept = baseline.robust.history().astype(np.float64)
            median = self._raw(baseline.robust.median_)
            low = self._raw(np.quantile(kept, 0.1, axis=0, method="lower"))
            high = self._raw(np.quantile(kept, 0.9, axis=0, method="higher"))
            reference = population.own_reference
        else:
            median = self._raw(population.median)
            low, high = self._raw(population.low), self._raw(population.high)
            reference = population.population_reference
        n = reference.shape[0]
        magnitude = np.maximum(z, 0.0)
        share = np.ones(len(z))
        for j in range(len(z)):
            if n:
                at_least = n - np.searchsorted(reference[:, j], magnitude[j], side="left")
                share[j] = (at_least + 1.0) / (n + 1.0)
        # With few reference windows even "never seen" has a large share: never filter that.
        max_share = max(self.max_share, 1.0 / (n + 1.0))
        found: list[Deviation] = []
        for j in np.lexsort((-magnitude, share)):
            spec = self.specs[j]
            if z[j] < self.z_min or share[j] > max_share:
                continue
            if low[j] <= raw[j] <= high[j]:
                continue
            found.append(
                Deviation(
                    feature=spec.name,
                    observed=float(raw[j]),
                    typical=float(median[j]),
                    typical_low=float(low[j]),
                    typical_high=float(high[j]),
                    z=float(z[j]),
                    text=deviation_sentence(spec, raw[j], median[j], low[j], high[j]),
                    technique=spec.technique,
                    share=float(share[j]),
                )
            )
            if len(found) >= self.max_deviations:
                break
        return tuple(found)
