"""Online scoring for the daemon: per-entity baselines, population tails, budget, entity risk.

:class:`OnlineScorer` takes the vectors of closed windows and returns alerts. For each window:

1. **Baseline.** An entity with at least ``cold_start_windows`` learnt windows is compared with
   its own recent history: per feature, the robust z ``(x - median) / scale`` over its last
   ``history`` windows (a :class:`~models.online.robust_window.RobustWindowDetector`), on the
   comparison scale of :mod:`detector.scaling` (``log1p`` for counts). Below that (cold start)
   it is compared with its peer group when ``peers`` names one with at least ``min_peers``
   members that have their own baseline: the median of those members' kept windows, and
   their robust scale but never narrower than the population's (a department's spread is
   narrow, and a new account's first days would otherwise look rarer than they are) (alert
   ``baseline = "peer group <name> (cold start)"``); else with the population:
   the median and robust scale of every entity's recent windows (``baseline = "population
   (cold start)"``). A peer z is, like an own z, a deviation from accounts that behave alike,
   so its rarity is measured against the own-history windows' deviations (step 2).
2. **Population tail.** Like the batch scan's ``tail`` detector, a deviation counts by how rare
   it is across the population: ``-log10`` of the share of recent windows (own-history ones for
   an own or a peer baseline, population ones otherwise) that deviated at least as much on that
   feature, extrapolated beyond the largest. The window scores the sum of its ``top_k`` largest
   surprises (:func:`models.combine.top_k_group_sum`, shared with the scan); with
   ``behaviour_groups``, the features of one behaviour group count once, by their largest.
   With any other registered online ``detector``, that detector (one instance per entity)
   scores own-history windows, and a cold-start window's population score is mapped onto the
   detector's recent score distribution by its rank (quantile mapping).
3. **Decision.** A :class:`~models.calibration.StreamingCalibrator` tracks the threshold that
   lets ``budget_per_day`` of ``windows_per_day`` windows alert; nothing alerts before
   ``warmup_windows`` informed windows were scored, nor while the quantile sits on the lowest
   score held (no threshold of 0 is ever in force). A window scored with nothing to compare
   against is *uninformed*: no population statistics yet, or an empty reference of
   deviations for its basis (the first windows of a deployment, and the first own-history
   windows before any was learnt) - it scores 0 whatever it holds. Its score neither alerts
   nor enters the calibrator, the ordinary scores of the risk evidence or a registry
   detector's cold-start mapping, and its deviation from a population that did not exist
   yet is not kept as a reference (so a first day of zeros cannot set the bar, nor make
   every later deviation look unseen). All windows handed over in one call are judged
   against the threshold in force at the start of the call (their order does not matter),
   and a hard cap keeps every calendar day (UTC) within ``floor(budget_per_day)`` alerts
   (at least 1): the highest scores of the day win, equal scores by their summed surprise
   over all features, then by a hash of entity and day (never by name order); the rest are
   counted in :attr:`OnlineScorer.capped`.
4. **Learning.** Score first, then learn: a window that alerted is not learnt (neither by its
   entity nor by the population references) unless ``learn_flagged``, so an intruder's first
   days do not teach the baseline that the intrusion is normal.
5. **Entity risk.** Each window's evidence is how many "nines" of the ordinary score
   distribution (the last ``evidence_days`` of windows that did not alert) it lies beyond,
   above ``risk.surprise_floor`` (default :data:`detector.risk.STREAM_SURPRISE_FLOOR`, 5
   nines), as in :mod:`detector.risk`; a cold-start window counts ``cold_start_evidence``
   of it (default :data:`COLD_START_EVIDENCE_WEIGHT`, half). A window judged on its own history
   adds the evidence of its strongest single feature beyond what the population showed
   (:class:`detector.risk.FeatureEvidence`). A window that alerts counts at least the nines
   its alert budget makes it rare (:func:`detector.risk.alert_evidence`; a cold-start one at
   its weight), so no alert reads "risk 0". Evidence accumulates per entity with a
   half-life of ``risk.half_life_days``. Every alert carries the entity's risk after it
   (``context["risk"]``, a number); :meth:`OnlineScorer.top_entities` ranks entities by
   peak risk, equal risks by alerts, then peak score, then name (as the scan ranks them).

Population statistics and references are refreshed from ring buffers of the last
``reference_size`` learnt windows at the start of a call, every ``refresh_every`` learnt
windows (sooner while the buffers fill), so all windows of one call see the same references.

Cost: the windows of one call are scored, decided, learnt and weighed for risk together, as
array work over the call; Python runs per alert (its explanation), per entity seen for the first
time (a row in the tables) and, for a registry detector, per window. Every entity's history is
a row of one array (entity x feature x window slot, :class:`_EntityRings`), its risk a row of
:class:`_RiskTable`; learning writes a call's windows into their slots in one assignment, and
the median and MAD of the series that changed are refreshed together at the end of the call
(one float32 sort per history length plus a binary search for each MAD), with the same
numbers as window by window. A series whose MAD is 0 holds its median in more than half of its
slots; while a new value leaves that true (counted by its ties: a feature an entity rarely uses
given another 0, or even a rare non-zero), its median and MAD cannot have moved and it is not
touched. An entity with several windows in one call has them handled in order: its n-th
windows of the call after its (n-1)-th. The score windows behind the threshold and the
evidence are sorted arrays that take a whole call's scores in one merge, and the population
statistics come from one sort per column. :meth:`OnlineScorer.score_frame` takes the columnar
evaluator's frame directly.

Memory: per entity ``history x n_features`` float32 (60 x 40: under 10 kB) and a few numbers per
feature (median, scale, flags); the tables grow fourfold when full (twofold past
:data:`_QUADRUPLE_BELOW` rows; rows not yet used are not resident) and a checkpoint holds only the
live entities' filled slots. An entity the features evict or expire is forgotten with its risk
record (:meth:`OnlineScorer.forget`); its rows go to the entities arriving next, and a table left
under half full by a burst of them is compacted, so the scorer's rows follow the features' entity
cap. Plus a registry detector per entity if one is configured; for the population three buffers of
up to ``reference_size x n_features`` float32 that grow with the windows learnt (an empty scorer
holds, and checkpoints, none of it), and the sorted score windows of the calibrator and the
evidence.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import operator
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import polars as pl
from numpy.typing import NDArray

from detector.alerts import Alert, Deviation
from detector.explain import combination_deviations, deviation_of
from detector.risk import FeatureEvidence, RiskConfig, alert_evidence
from detector.scaling import scale_matrix
from detector.suppression import Allowlist
from features.online import WindowVector
from features.spec import FeatureSpec, group_ids
from models.base import OnlineDetector
from models.calibration import StreamingCalibrator
from models.combine import top_k_group_sum
from models.online._common import WindowedECDF
from models.online.robust_window import (
    MAD_TO_SIGMA,
    RobustWindowDetector,
    median_and_mad_of_sorted,
    median_and_scale_of_series,
)
from models.registry import create

logger = logging.getLogger(__name__)

FloatMatrix = NDArray[np.float64]

BUILTIN_DETECTOR = "robust_window"
"""The default: per-entity robust window baselines weighed by population tails."""

OWN_BASIS = "own history"
COLD_BASIS = "population (cold start)"
PEER_BASIS = "peer group {group} (cold start)"
"""The basis of a cold-start window scored against its peer group (``{group}``: its name)."""
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


def float32_at_least(values: FloatMatrix) -> NDArray[np.float32]:
    """The smallest float32 at least each value: for a float32 ``c``, ``c < value`` exactly
    when ``c < float32_at_least(value)`` (no float32 lies between them).

    So a float32 array is searched with ``side="left"`` without widening it to float64 (what
    ``np.searchsorted`` does when given float64 keys), with the same positions.

    Examples
    --------
    >>> bounds = float32_at_least(np.array([0.7, 0.5, 1e39, np.inf]))
    >>> float(np.float32(0.7)) < 0.7 < float(bounds[0]), bounds.tolist()[1:]
    (True, [0.5, inf, inf])
    """
    with np.errstate(over="ignore"):
        rounded = values.astype(np.float32)
    below = rounded < values
    if below.any():
        rounded[below] = np.nextafter(rounded[below], np.float32(np.inf))
    return rounded


def tail_surprise(magnitude: FloatMatrix, reference: NDArray[np.floating[Any]]) -> FloatMatrix:
    """Per feature, ``-log10`` of the share of reference rows deviating at least as much.

    ``reference`` holds non-negative deviations sorted per column (float64, or float32 as the
    scorer keeps them: the same numbers). Beyond the largest reference deviation the surprise
    is extrapolated along the slope between the column's 99th percentile and its maximum,
    capped at twice what the reference can resolve (``log10(n + 1)``); a column that never
    rose above 0 gives that cap at once. Magnitudes at or below 0 earn 0. The same rule as
    the batch ``tail`` detector.

    Examples
    --------
    >>> reference = np.sort(np.array([[0.0], [0.0], [1.0], [2.0]]), axis=0)
    >>> tail_surprise(np.array([[0.0], [1.0], [2.0]]), reference).round(3).tolist()
    [[0.0], [0.222], [0.398]]
    >>> tail_surprise(np.array([[0.0], [1.0], [2.0]]), reference.astype(np.float32)).round(3)
    array([[0.   ],
           [0.222],
           [0.398]])
    """
    narrow = reference.dtype == np.float32
    n = reference.shape[0]
    surprise = np.zeros_like(magnitude)
    if n == 0:
        return surprise
    cap = math.log10(n + 1.0)
    q99_row = min(n - 1, max(0, math.ceil(0.99 * n) - 1))
    # Most magnitudes are 0 (a window rarely deviates upwards): only the others are looked up.
    by_column = np.ascontiguousarray(magnitude.T)
    for j in range(magnitude.shape[1]):
        rows = np.flatnonzero(~(by_column[j] <= 0.0))
        if not rows.size:
            continue
        column = reference[:, j]
        values = by_column[j, rows]
        keys = float32_at_least(values) if narrow else values
        at_least = n - np.searchsorted(column, keys, side="left")
        found = -np.log10((at_least + 1.0) / (n + 1.0))
        top, q99 = float(column[-1]), float(column[q99_row])
        beyond = values > top
        if beyond.any():
            if top <= 0.0:
                found[beyond] = 2.0 * cap
            elif cap > 2.0 and top > q99:
                slope = (cap - 2.0) / (top - q99)
                found[beyond] = np.minimum(cap + (values[beyond] - top) * slope, 2.0 * cap)
        surprise[rows, j] = found
    return surprise


class _Ring:
    """The last ``size`` rows pushed (float32), for population statistics and references.

    Storage grows (doubling) with the rows pushed, up to ``size``: an idle or small
    deployment does not hold, nor checkpoint, ``size`` rows of zeros. It is held column by
    column (:attr:`columns`, feature x slot): a refresh sorts each column, and a column
    contiguous in memory is sorted without first transposing the whole ring (which cost as
    much as the sorts); a call's pushes are the strided writes, far fewer.
    """

    def __init__(self, size: int, width: int) -> None:
        self.size = size
        self.columns = np.zeros((width, 0), dtype=np.float32)
        self.n = 0

    @property
    def rows(self) -> NDArray[np.float32]:
        """The slots as rows (slot x feature): a transposed view of :attr:`columns`."""
        return self.columns.T

    def __getstate__(self) -> dict[str, Any]:
        # Only the rows in use go into a checkpoint (row by row, the layout checkpoints have
        # always held); the spare capacity is zeros.
        state = {key: value for key, value in self.__dict__.items() if key != "columns"}
        return {**state, "rows": np.ascontiguousarray(self.rows[: min(self.n, self.size)])}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Rings pickled before lazy growth were allocated at their full size.
        state = dict(state)
        rows = state.pop("rows")
        self.__dict__.update(state)
        self.columns = np.ascontiguousarray(rows.T, dtype=np.float32)
        if "size" not in state:
            self.size = rows.shape[0]

    def _reserve(self, rows: int) -> None:
        capacity = self.columns.shape[1]
        if rows <= capacity or capacity >= self.size:
            return
        grown = min(self.size, max(rows, 2 * capacity, 64))
        self.columns = np.concatenate(
            [self.columns, np.zeros((self.columns.shape[0], grown - capacity), dtype=np.float32)],
            axis=1,
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
        self.columns[:, slots] = rows.T
        self.n += count

    def kept(self) -> FloatMatrix:
        # Row-major, as it always was: a reduction over it adds in the same order.
        return np.ascontiguousarray(self.rows[: min(self.n, self.size)], dtype=np.float64)

    def column_std(self, columns: NDArray[np.intp]) -> FloatMatrix:
        """``kept().std(axis=0)[columns]`` (columns ascending): the same numbers, read from those.

        A reduction over axis 0 of two or more columns (row-major) adds row by row, in the
        order it does over all of them; one column alone would be summed pairwise (other
        roundings), so it is reduced beside a neighbour.
        """
        width = self.columns.shape[0]
        chosen = columns
        if columns.size == 1 and width > 1:
            chosen = np.array(sorted({int(columns[0]), (int(columns[0]) + 1) % width}))
        kept = min(self.n, self.size)
        values = np.ascontiguousarray(self.columns[chosen, :kept].T, dtype=np.float64)
        std = values.std(axis=0)
        return np.asarray(std[np.searchsorted(chosen, columns)], dtype=np.float64)

    def sorted_columns(self) -> FloatMatrix:
        """:meth:`kept` with each column sorted (sorted along memory, then seen transposed,
        so a column is contiguous: what the tail look-ups read)."""
        # Sorted as float32 (half the bytes), then widened: the same order and values.
        return self.sorted_columns32().astype(np.float64).T

    def sorted_reference(self) -> NDArray[np.float32]:
        """:meth:`sorted_columns` left in float32 (a column contiguous), as the scorer keeps
        its references: :func:`tail_surprise` reads them exactly, and a refresh does not
        widen every column when a call looks up only some of them."""
        return self.sorted_columns32().T

    def sorted_columns32(self) -> NDArray[np.float32]:
        """The kept rows' columns as rows (feature x row, float32), each sorted."""
        columns = self.columns[:, : min(self.n, self.size)].copy()
        columns.sort(axis=1)
        return columns


_COMPACT_FROM_ROWS = 256
"""Tables with fewer rows ever bound than this are never compacted (too small to matter)."""

_QUADRUPLE_BELOW = 1 << 16
"""A table of fewer rows than this quadruples when full, a larger one doubles. Rows not yet
bound are never written, so they cost address space, not memory; each growth copies every
row and writes its memory anew (for the entity rings, ~10 kB a row). A daemon's first
calls bring its entities in a few large steps: the stream bench's rings (10,000 users) grew
3,380 -> 6,760 -> 13,520 rows when doubling, 3,380 -> 13,520 now (~0.15 s of CPU less).
Past this size, address space is the better thing to keep."""


class _EntityIndex:
    """Rows of per-entity arrays: which entity holds which row, and the rows free for reuse.

    Subclasses keep one array (or more) with a row per entity; rows of forgotten entities are
    reused (the last freed first) and capacity quadruples when full (doubles past
    :data:`_QUADRUPLE_BELOW` rows; fresh zeros are not resident until written), so a call's
    arriving entities cost one copy at most. A table whose live rows fell below half of the
    rows ever bound (a burst of entities the features then evicted) is compacted by
    :meth:`compact`: the live rows move to the front, in row order, into arrays sized for
    them, and the old arrays (resident up to the peak) are freed.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.entities: list[str | None] = []
        self.free: list[int] = []

    def rows_of(self, entities: Sequence[str]) -> NDArray[np.intp]:
        """Each entity's row, binding a row to each one not seen (in order of appearance)."""
        try:
            # Every entity known (the common case): one C-level pass over the names.
            return np.fromiter(
                map(self.index.__getitem__, entities), dtype=np.intp, count=len(entities)
            )
        except KeyError:
            pass
        get = self.index.get
        rows = np.array([get(entity, -1) for entity in entities], dtype=np.intp)
        missing = np.flatnonzero(rows < 0)
        if missing.size:
            arriving = list(dict.fromkeys(entities[i] for i in missing.tolist()))
            self._reserve(len(self.index) + len(arriving))
            bound = self._bind(arriving)
            rows[missing] = [bound[entities[i]] for i in missing.tolist()]
        return rows

    def row(self, entity: str) -> int | None:
        return self.index.get(entity)

    def release(self, entity: str) -> bool:
        """Free the entity's row (its numbers are cleared when the row is bound again)."""
        row = self.index.pop(entity, None)
        if row is None:
            return False
        self.entities[row] = None
        self.free.append(row)
        return True

    def live(self) -> list[int]:
        """The rows in use, in row order."""
        return [row for row, entity in enumerate(self.entities) if entity is not None]

    def compact(self) -> bool:
        """Compact the table when under half of the rows ever bound are live; True if done.

        Entities keep their order (the index's, and the rows'): only row numbers change, so
        nothing computed from the table does. Row numbers held from before are stale after.
        """
        bound = len(self.entities)
        if bound < _COMPACT_FROM_ROWS or 2 * len(self.index) >= bound:
            return False
        live = self.live()
        self._take(np.array(live, dtype=np.intp), max(64, len(live) + len(live) // 2))
        position = {row: new for new, row in enumerate(live)}
        self.index = {entity: position[row] for entity, row in self.index.items()}
        self.entities = [self.entities[row] for row in live]
        self.free = []
        return True

    def _bind(self, arriving: list[str]) -> dict[str, int]:
        """Rows for these new entities: freed ones first (the last freed first), then fresh."""
        reused = min(len(arriving), len(self.free))
        rows = self.free[len(self.free) - reused :][::-1]
        del self.free[len(self.free) - reused :]
        first = len(self.entities)
        rows.extend(range(first, first + len(arriving) - reused))
        self.entities.extend(arriving[reused:])
        for row, entity in zip(rows[:reused], arriving[:reused], strict=True):
            self.entities[row] = entity
        bound = dict(zip(arriving, rows, strict=True))
        self.index.update(bound)
        if reused:
            # Fresh rows are zeros already; reused ones still hold a forgotten entity's.
            self._clear(np.array(rows[:reused], dtype=np.intp))
        return bound

    def _reserve(self, rows: int) -> None:
        capacity = self._capacity()
        if rows > capacity:
            factor = 4 if capacity < _QUADRUPLE_BELOW else 2
            self._grow(max(rows, factor * capacity, 64))

    def _capacity(self) -> int:
        raise NotImplementedError

    def _grow(self, capacity: int) -> None:
        raise NotImplementedError

    def _clear(self, rows: NDArray[np.intp]) -> None:
        raise NotImplementedError

    def _take(self, rows: NDArray[np.intp], capacity: int) -> None:
        """Keep only these rows (ascending), as rows 0, 1, ... of arrays of ``capacity``."""
        raise NotImplementedError


def _grown(array: NDArray[Any], capacity: int) -> NDArray[Any]:
    """``array`` with ``capacity`` rows, the new ones zeros."""
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def _taken(array: NDArray[Any], rows: NDArray[np.intp], capacity: int) -> NDArray[Any]:
    """These rows of ``array`` first, in a new array of ``capacity`` rows (the rest zeros)."""
    taken = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    np.take(array, rows, axis=0, out=taken[: rows.size])
    return taken


class _EntityRings(_EntityIndex):
    """Every entity's window history in one array, with its median and scale beside it.

    Row ``r`` of :attr:`values` (feature x window slot, float32, each series contiguous) is
    an entity's ring: :attr:`learnt` ``[r]`` windows learnt, the next one goes to slot
    ``learnt % window``, so a young entity's history is its first slots. :attr:`median` and
    :attr:`scale` (``1.4826 * MAD``) are refreshed for many rows at once
    (:func:`~models.online.robust_window.median_and_scale_of_series`); :attr:`stale` marks
    rows that learnt since, :attr:`dirty` the series among them whose median and scale may
    have moved, and :attr:`ties` (for a series with a MAD of 0: at least how many of its
    slots hold its median) lets a value that keeps that majority leave the series clean. A
    registry detector per row, when one is configured, sits in :attr:`detectors`. Checkpoints
    hold the live rows' filled slots only; the median, scale and ties are recomputed on load
    (the same numbers).

    Examples
    --------
    >>> rings = _EntityRings(window=3, width=1)
    >>> rows = rings.rows_of(["ann", "bob", "ann"])
    >>> rows.tolist()
    [0, 1, 0]
    >>> rings.learn(rows, np.array([[5.0], [7.0], [1.0]]))
    >>> rings.learn(rows[:1], np.array([[2.0]]))
    >>> rings.refresh(np.array([0, 1]))
    >>> rings.values[0].tolist(), float(rings.median[0, 0]), int(rings.learnt[0])
    ([[5.0, 1.0, 2.0]], 2.0, 3)
    >>> rings.history(1).tolist(), bool(rings.stale.any())
    ([[7.0]], False)
    """

    def __init__(self, window: int, width: int) -> None:
        super().__init__()
        self.window = window
        self.width = width
        self.values = np.zeros((0, width, window), dtype=np.float32)
        self.median = np.zeros((0, width))
        self.scale = np.zeros((0, width))
        self.learnt = np.zeros(0, dtype=np.int64)
        self.stale = np.zeros(0, dtype=bool)
        self.dirty = np.zeros((0, width), dtype=bool)
        self.ties = np.zeros((0, width), dtype=np.int32)
        self.detectors: list[OnlineDetector | None] = []

    def __getstate__(self) -> dict[str, Any]:
        # Live rows only, and of each only the slots filled: a young deployment is small.
        live = np.array(self.live(), dtype=np.intp)
        learnt = self.learnt[live]
        kept = np.minimum(learnt, self.window)
        filled = np.arange(self.window) < kept[:, None, None]
        values = self.values[live]
        detectors = [self.detectors[row] for row in live.tolist()]
        return {
            "window": self.window,
            "width": self.width,
            "entities": [self.entities[row] for row in live.tolist()],
            "learnt": learnt,
            "filled": values[np.broadcast_to(filled, values.shape)],
            "detectors": detectors if any(d is not None for d in detectors) else None,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["window"], state["width"])  # type: ignore[misc]
        entities: list[str] = state["entities"]
        rows = self.rows_of(entities)
        self.learnt[rows] = state["learnt"]
        kept = np.minimum(self.learnt[rows], self.window)
        filled = np.arange(self.window) < kept[:, None, None]
        block = self.values[rows]
        block[np.broadcast_to(filled, block.shape)] = state["filled"]
        self.values[rows] = block
        if state["detectors"] is not None:
            for row, detector in zip(rows.tolist(), state["detectors"], strict=True):
                self.detectors[row] = detector
        self.dirty[rows] = True
        self.refresh(rows)

    def _capacity(self) -> int:
        return int(self.values.shape[0])

    def _grow(self, capacity: int) -> None:
        # Slots past the longest history are zeros in every row: only the others are copied.
        used = min(self.window, int(self.learnt.max(initial=0)))
        values = np.zeros((capacity, self.width, self.window), dtype=np.float32)
        values[: self.values.shape[0], :, :used] = self.values[:, :, :used]
        self.values = values
        self.median = _grown(self.median, capacity)
        self.scale = _grown(self.scale, capacity)
        self.learnt = _grown(self.learnt, capacity)
        self.stale = _grown(self.stale, capacity)
        self.dirty = _grown(self.dirty, capacity)
        self.ties = _grown(self.ties, capacity)
        self.detectors.extend([None] * (capacity - len(self.detectors)))

    def _take(self, rows: NDArray[np.intp], capacity: int) -> None:
        for name in ("values", "median", "scale", "learnt", "stale", "dirty", "ties"):
            setattr(self, name, _taken(getattr(self, name), rows, capacity))
        detectors = [self.detectors[row] for row in rows.tolist()]
        self.detectors = detectors + [None] * (capacity - len(detectors))

    def _clear(self, rows: NDArray[np.intp]) -> None:
        self.values[rows] = 0.0
        self.median[rows] = 0.0
        self.scale[rows] = 0.0
        self.learnt[rows] = 0
        self.stale[rows] = False
        self.dirty[rows] = False
        self.ties[rows] = 0
        for row in rows.tolist():
            self.detectors[row] = None

    def history(self, row: int) -> NDArray[np.float32]:
        """The row's kept windows (window x feature), in slot order."""
        return self.values[row, :, : min(int(self.learnt[row]), self.window)].T

    def learn(self, rows: NDArray[np.intp], scaled: FloatMatrix) -> None:
        """Write these windows (rows in order; an entity may repeat) into their rings."""
        if not rows.size:
            return
        rank = _occurrence(rows)
        before = self.learnt[rows]
        slots = (before + rank) % self.window
        repeats = bool(rank.max())
        if repeats:
            np.add.at(self.learnt, rows, 1)
        else:
            self.learnt[rows] += 1
        self.stale[rows] = True
        # A series whose MAD is 0 holds its median in more than half of its slots (its ties,
        # a lower bound while it is not dirty). While that stays true after a value is put
        # in, its median and MAD stay as they are: only the other series need refreshing.
        # Given the median again, it always does (the common case: an unused feature's 0).
        values = scaled.astype(np.float32)
        same = values == self.median[rows]
        flat = self.scale[rows] == 0.0
        if repeats:
            # Ties of the median kept as they are: still a lower bound of its count.
            np.logical_or.at(self.dirty, rows, ~(flat & same))
        else:
            ties = self.ties[rows] + same
            full = before >= self.window
            if full.any():
                ties -= full[:, None]  # the slot overwritten may have held the median
            kept = np.minimum(before + 1, self.window)[:, None]
            stays = flat & ~self.dirty[rows] & (ties > kept // 2)
            self.dirty[rows] = ~stays
            # A series made dirty gets its ties anew when refreshed.
            self.ties[rows] = ties
        if rank.max() >= self.window:
            # More windows of an entity than its ring holds: only the last ones stay.
            counts = np.bincount(rows)[rows]
            staying = rank >= counts - self.window
            rows, values, slots = rows[staying], values[staying], slots[staying]
        self.values[rows, :, slots] = values

    def refresh(self, rows: NDArray[np.intp]) -> None:
        """Recompute the median and scale of these rows (unique), then not stale."""
        self.stale[rows] = False
        rows = rows[self.learnt[rows] > 0]
        if not rows.size:
            return
        # Series by number: row r's feature j is series r * width + j (the same memory).
        which, feature = np.nonzero(self.dirty[rows])
        if not which.size:
            return
        ids = rows[which] * self.width + feature
        kept = np.minimum(self.learnt[rows[which]], self.window)
        series = self.values.reshape(-1, self.window)
        median, scale, ties = median_and_scale_of_series(series, ids, kept)
        self.median.reshape(-1)[ids] = median
        self.scale.reshape(-1)[ids] = scale
        self.ties.reshape(-1)[ids] = ties
        self.dirty.reshape(-1)[ids] = False


def _occurrence(rows: NDArray[np.intp]) -> NDArray[np.intp]:
    """How many earlier positions hold the same value, at each position.

    Examples
    --------
    >>> _occurrence(np.array([4, 2, 4, 4, 2])).tolist()
    [0, 0, 1, 2, 1]
    """
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    position = np.arange(rows.size)
    first = np.r_[True, ordered[1:] != ordered[:-1]] if rows.size else np.zeros(0, dtype=bool)
    group_start = np.maximum.accumulate(np.where(first, position, 0))
    rank = np.empty(rows.size, dtype=np.intp)
    rank[order] = position - group_start
    return rank


_NO_PEAK = np.iinfo(np.int64).min


class _RiskTable(_EntityIndex):
    """Every entity's :class:`EntityRisk`, one array per field (rows as in :class:`_EntityIndex`).

    Examples
    --------
    >>> table = _RiskTable()
    >>> rows = table.rows_of(["ann"])
    >>> table.add(rows, np.array([2.0]), np.array([0.0]), np.array([0]), 7.0).tolist()
    [2.0]
    >>> table.add(rows, np.array([2.0]), np.array([7.0]), np.array([7 * 86_400_000_000]), 7.0)
    array([3.])
    >>> record = table.record(0)
    >>> record.risk, record.peak, record.peak_window.day, record.windows
    (3.0, 3.0, 8, 2)
    """

    _FIELDS = (
        "risk",
        "day",
        "peak",
        "peak_us",
        "alerts",
        "windows",
        "evidence_windows",
        "peak_score",
    )

    def __init__(self) -> None:
        super().__init__()
        self.risk = np.zeros(0)
        self.day = np.zeros(0)
        self.peak = np.zeros(0)
        self.peak_us = np.zeros(0, dtype=np.int64)
        # The entity's highest window score: the ranking's tie-break after alerts.
        self.peak_score = np.zeros(0)
        self.alerts = np.zeros(0, dtype=np.int64)
        self.windows = np.zeros(0, dtype=np.int64)
        self.evidence_windows = np.zeros(0, dtype=np.int64)

    @classmethod
    def of(cls, records: Iterable[EntityRisk]) -> _RiskTable:
        """The table of these records (from a checkpoint written before the table)."""
        table = cls()
        for record in records:
            [row] = table.rows_of([record.entity]).tolist()
            table.risk[row], table.day[row], table.peak[row] = record.risk, record.day, record.peak
            if record.peak_window is not None:
                table.peak_us[row] = (record.peak_window - _EPOCH) // timedelta(microseconds=1)
            table.alerts[row] = record.alerts
            table.windows[row] = record.windows
            table.evidence_windows[row] = record.evidence_windows
            # Records pickled before the peak score fall back to the class default.
            table.peak_score[row] = record.peak_score
        return table

    def __getstate__(self) -> dict[str, Any]:
        live = np.array(self.live(), dtype=np.intp)
        state: dict[str, Any] = {name: getattr(self, name)[live] for name in self._FIELDS}
        state["entities"] = [self.entities[row] for row in live.tolist()]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        rows = self.rows_of(state["entities"])
        for name in self._FIELDS:
            # Checkpoints written before the peak score keep the fresh rows' -inf.
            if name in state:
                getattr(self, name)[rows] = state[name]

    def _capacity(self) -> int:
        return int(self.risk.shape[0])

    def _clear(self, rows: NDArray[np.intp]) -> None:
        for name in self._FIELDS:
            getattr(self, name)[rows] = 0
        self.peak_us[rows] = _NO_PEAK
        self.peak_score[rows] = -np.inf

    def _grow(self, capacity: int) -> None:
        fresh = self._capacity()
        for name in self._FIELDS:
            setattr(self, name, _grown(getattr(self, name), capacity))
        self.peak_us[fresh:] = _NO_PEAK
        self.peak_score[fresh:] = -np.inf

    def _take(self, rows: NDArray[np.intp], capacity: int) -> None:
        for name in self._FIELDS:
            setattr(self, name, _taken(getattr(self, name), rows, capacity))
        self.peak_us[rows.size :] = _NO_PEAK
        self.peak_score[rows.size :] = -np.inf

    def add(
        self,
        rows: NDArray[np.intp],
        evidence: FloatMatrix,
        day: FloatMatrix,
        start_us: NDArray[np.int64],
        half_life_days: float,
        scores: FloatMatrix | None = None,
    ) -> FloatMatrix:
        """:meth:`EntityRisk.add` on each row (unique); the risks after.

        ``scores`` (the windows' detector scores) raise each row's peak score.
        """
        if scores is not None:
            self.peak_score[rows] = np.maximum(self.peak_score[rows], scores)
        seen = self.windows[rows] > 0
        last_day = self.day[rows]
        decays = seen & (day > last_day)
        exponent = np.where(decays, (day - last_day) / half_life_days, 0.0)
        risk = self.risk[rows] * 0.5**exponent
        self.day[rows] = np.where(seen, np.maximum(last_day, day), day)
        self.windows[rows] += 1
        positive = evidence > 0.0
        risk = np.where(positive, risk + evidence, risk)
        self.risk[rows] = risk
        self.evidence_windows[rows] += positive
        peak = self.peak[rows]
        rising = positive & (risk > peak)
        self.peak[rows] = np.where(rising, risk, peak)
        self.peak_us[rows] = np.where(rising, start_us, self.peak_us[rows])
        return risk

    def record(self, row: int) -> EntityRisk:
        """The row as an :class:`EntityRisk`."""
        peak_us = int(self.peak_us[row])
        entity = self.entities[row]
        assert entity is not None
        return EntityRisk(
            entity,
            risk=float(self.risk[row]),
            day=float(self.day[row]),
            peak=float(self.peak[row]),
            peak_window=None if peak_us == _NO_PEAK else _EPOCH + timedelta(microseconds=peak_us),
            alerts=int(self.alerts[row]),
            windows=int(self.windows[row]),
            evidence_windows=int(self.evidence_windows[row]),
            peak_score=float(self.peak_score[row]),
        )


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
    calibrator.refresh_threshold()


@dataclass
class EntityBaseline:
    """One entity's state as checkpoints before :class:`_EntityRings` held it (read on load).

    Its robust window baseline and, optionally, its own detector.

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
    peak_score: float = -math.inf
    """The highest score of the entity's windows (ranks equal risks after alerts)."""

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
    own_reference: NDArray[np.floating[Any]]
    """Own-history deviations, each column sorted (float32; float64 in older checkpoints)."""
    population_reference: NDArray[np.floating[Any]]


@dataclass
class _PeerGroups:
    """Peer groups' statistics (comparison scale), refreshed with the population's.

    Row ``g`` is group :attr:`names` ``[g]``; only groups with enough members that have their
    own baseline are here.
    """

    names: list[str]
    index: dict[str, int]
    median: FloatMatrix
    scale: FloatMatrix
    low: FloatMatrix
    high: FloatMatrix


def peer_basis(group: str) -> str:
    """The alert basis of a cold-start window scored against peer group ``group``.

    Examples
    --------
    >>> peer_basis("Finance")
    'peer group Finance (cold start)'
    """
    return PEER_BASIS.format(group=group)


_ONE_US = timedelta(microseconds=1)


@dataclass
class _Windows:
    """A call's windows, column-wise (what :meth:`OnlineScorer._score_matrix` reads)."""

    entities: list[str]
    start_us: NDArray[np.int64]
    """Window starts, microseconds since the epoch."""
    n_events: Sequence[Any]
    raw: FloatMatrix
    """The values as given (spec order; a null is NaN)."""
    starts: Sequence[datetime] | None = None
    """The starts as given (else made from :attr:`start_us` when an alert needs one)."""
    values: Sequence[Mapping[str, float]] | None = None
    """Each window's values as given (else rows of :attr:`raw`), for registry detectors."""

    def start(self, i: int) -> datetime:
        if self.starts is not None:
            return self.starts[i]
        return _EPOCH + timedelta(microseconds=int(self.start_us[i]))

    def detector_input(self, i: int, features: Sequence[str]) -> dict[str, float]:
        """A registry detector's input: the values and the window start (``__ts``, s)."""
        if self.values is not None:
            values = dict(self.values[i])
        else:
            values = dict(zip(features, self.raw[i].tolist(), strict=True))
        values["__ts"] = int(self.start_us[i]) / 1e6
        return values


HISTORY_WINDOWS = 60
"""Windows of each entity's own history kept by default (its baseline and cold-start count)."""


@functools.lru_cache(maxsize=64)
def _decile_positions(n: int) -> tuple[int, int]:
    """Positions of the 10 % ("lower") and 90 % ("higher") values among ``n`` sorted ones,
    as :func:`numpy.quantile` gives them (a peer group's size repeats from refresh to
    refresh: the quantile's fixed cost is paid once per size).

    Examples
    --------
    >>> _decile_positions(10), _decile_positions(1)
    ((0, 9), (0, 0))
    """
    positions = np.arange(n)
    return (
        int(np.quantile(positions, 0.1, method="lower")),
        int(np.quantile(positions, 0.9, method="higher")),
    )


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
        Informed windows scored before anything may alert (the whole scorer's warm-up; an
        uninformed window, see the module documentation, does not count).
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
    feature_evidence
        Extra risk evidence of a window's strongest feature surprise, for windows judged on
        their own history (:class:`detector.risk.FeatureEvidence`; ``weight=0`` turns it off).
    z_min, max_share, max_deviations
        Which deviations an explanation lists: robust z of at least ``z_min`` that at most a
        ``max_share`` of recent windows reached, at most ``max_deviations`` of them.
    seed
        Passed to the per-entity detectors.
    peers, min_peers
        Peer group of each entity (e.g. its department): a cold-start window is scored
        against its group when the group has at least ``min_peers`` members with their own
        baseline, else against the population. The mapping is configuration: a checkpoint
        does not hold it; give it again after restoring (:meth:`set_peers`).
    behaviour_groups
        Sum the ``top_k`` largest behaviour surprises instead, each the largest of its
        features' (``FeatureSpec.group``; a spec without one is its own), as the scan does
        with :attr:`detector.pipeline.PipelineConfig.behaviour_groups`. Off by default (see
        there).
    allowlist
        The operator's allow-list: a window it mutes entirely still alerts as far as the
        scorer goes (it is returned, not learnt, for the caller's
        :meth:`~detector.suppression.Allowlist.apply` to mute and count), but takes no slot
        of the daily cap and adds no risk. Configuration like ``peers``
        (:meth:`set_allowlist` after restoring).

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
        history: int = HISTORY_WINDOWS,
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
        feature_evidence: FeatureEvidence = FeatureEvidence(),  # noqa: B008 - frozen
        z_min: float = 2.0,
        max_share: float = 0.02,
        max_deviations: int = 5,
        seed: int = 0,
        peers: Mapping[str, str] | None = None,
        min_peers: int = 5,
        allowlist: Allowlist | None = None,
        behaviour_groups: bool = False,
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
        self.feature_evidence = feature_evidence
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
        # The behaviour each feature measures: one act seen in several correlated features
        # counts once in the score (models.combine, as in the scan), when asked for.
        self.feature_groups: tuple[int, ...] | None = (
            group_ids(self.specs) if behaviour_groups else None
        )
        width = len(self.features)
        self._values = _Ring(reference_size, width)
        self._own_z = _Ring(reference_size, width)
        self._population_z = _Ring(reference_size, width)
        self._learnt_since_refresh = 0
        self._population: _Population | None = None
        # Population scores of cold-start windows (quantile mapping for registry detectors).
        self._cold_scores: list[float] = []
        self._rings = _EntityRings(history, width)
        self._risks = _RiskTable()
        self.alerts_per_day: dict[date, int] = {}
        self.windows_scored = 0
        self.alerts_raised = 0
        self.capped = 0
        self.last_day = 0.0
        self._peer_groups: _PeerGroups | None = None
        self.set_peers(peers, min_peers)
        self.set_allowlist(allowlist)

    def retarget_budget(self, budget_per_day: float, windows_per_day: float) -> None:
        """Adopt another alert budget (a restored state given a changed config): the daily
        cap and the calibrator's quantile level change at once, and the threshold is re-read
        from the scores already held."""
        self.budget_per_day = budget_per_day
        self.windows_per_day = windows_per_day
        self.daily_cap = max(1, math.floor(budget_per_day))
        self.calibrator.retarget(budget_per_day, max(windows_per_day, budget_per_day + 1.0))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # Configuration, not state: the daemon gives it again (set_peers, set_allowlist)
        # after a restore.
        del state["_peers"]
        del state["_allowlist"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Checkpoints written before the score windows were arrays hold the list version.
        # Checkpoints written before cold-start evidence was weighed counted it in full (and
        # keep the risk floor they were written with).
        state.setdefault("cold_start_evidence", 1.0)
        # ... and before the strongest feature earned evidence, none.
        state.setdefault("feature_evidence", FeatureEvidence(weight=0.0))
        # ... and before peer groups, none (the mapping itself is never in a checkpoint).
        # ... and before behaviour groups, none: scores stay comparable with the ones its
        # calibrator and evidence hold.
        state.setdefault("feature_groups", None)
        state.setdefault("min_peers", 5)
        state.setdefault("_peer_groups", None)
        state["_peers"] = {}
        state["_allowlist"] = Allowlist()
        # Checkpoints written before the entity tables hold an object per entity.
        baselines: dict[str, EntityBaseline] | None = state.pop("baselines", None)
        risks: dict[str, EntityRisk] | None = state.pop("risks", None)
        self.__dict__.update(state)
        self._ordinary = _ScoreWindow.of(self._ordinary)
        self.calibrator.recent_ = _ScoreWindow.of(self.calibrator.recent_)
        if baselines is not None:
            self._rings = self._rings_of(baselines)
        if risks is not None:
            self._risks = _RiskTable.of(risks.values())

    def _rings_of(self, baselines: Mapping[str, EntityBaseline]) -> _EntityRings:
        """The rings holding what these (checkpointed) per-entity baselines held."""
        rings = _EntityRings(self.history, len(self.features))
        rows = rings.rows_of(list(baselines))
        for row, baseline in zip(rows.tolist(), baselines.values(), strict=True):
            robust = baseline.robust
            rings.detectors[row] = baseline.detector
            learnt = robust.n_learnt_
            columns = [robust.columns_.get(name, -1) for name in self.features]
            buffer = np.column_stack(
                [
                    robust.buffer_[:, j] if j >= 0 else np.zeros(robust.window, np.float32)
                    for j in columns
                ]
            )
            if robust.window == self.history:
                rings.values[row] = buffer.T
                rings.learnt[row] = learnt
                continue
            # Written with another history length: its last windows, oldest first.
            kept = min(learnt, robust.window, self.history)
            slots = [(learnt - kept + k) % robust.window for k in range(kept)]
            rings.values[row, :, :kept] = buffer[slots].T
            rings.learnt[row] = kept
            logger.warning(
                "entity %r: a baseline of %d windows restored into rings of %d",
                rings.entities[row],
                robust.window,
                self.history,
            )
        rings.dirty[rows] = True
        rings.refresh(rows)
        return rings

    # -- public -----------------------------------------------------------------------------

    def set_peers(self, peers: Mapping[str, str] | None, min_peers: int = 5) -> None:
        """Use this peer group of each entity from now on (``None``: none, population only).

        The groups' statistics are recomputed with the population's, at its next refresh; a
        restored scorer given the mapping it had scores as the one that was saved.
        """
        if min_peers < 1:
            raise ValueError(f"min_peers must be >= 1, got {min_peers}")
        self._peers: dict[str, str] = dict(peers or {})
        self.min_peers = min_peers

    def set_allowlist(self, allowlist: Allowlist | None) -> None:
        """Use this allow-list from now on when filling the daily cap (``None``: none)."""
        self._allowlist = allowlist if allowlist is not None else Allowlist()

    @property
    def peers(self) -> dict[str, str]:
        """The peer group of each entity (a copy; empty without peers)."""
        return dict(self._peers)

    def score(self, vectors: Sequence[WindowVector]) -> list[Alert]:
        """Score the windows, decide at the budget, learn; the alerts, highest score first."""
        return self.score_windows(vectors)[1]

    #: Risk records of the entities forgotten since the caller last took them, when it asked
    #: for them (:meth:`track_departures`); ``None``: not kept.
    departures: list[EntityRisk] | None = None

    def track_departures(self) -> None:
        """Keep the risk record of each entity :meth:`forget` drops that had risk or alerts,
        in :attr:`departures`, for the caller to take (and clear): the daemon keeps them in
        its table of departed entities."""
        if self.departures is None:
            self.departures = []

    def forget(self, entity: str) -> bool:
        """Drop an entity's baseline and risk record (evicted or expired by the features);
        True if it had a baseline.

        Its past alerts stay in the sinks, but it leaves :meth:`top_entities` (the daemon's
        ``entities.csv`` lists it as departed): the scorer holds nothing for it, so that
        memory follows the features' cap (with :meth:`track_departures`, its record goes to
        :attr:`departures`). A returning entity starts afresh: cold (judged against its peers
        or the population) and with risk 0. Its rows are reused by entities arriving later,
        and a table left mostly empty by such forgetting is compacted at the next call.
        """
        if self.departures is not None:
            row = self._risks.row(entity)
            if row is not None and (self._risks.risk[row] > 0.0 or self._risks.alerts[row] > 0):
                self.departures.append(self._risks.record(row))
        self._risks.release(entity)
        return self._rings.release(entity)

    def learnt_windows(self, entity: str) -> int:
        """Windows the entity's baseline learnt (0 for an entity without one)."""
        row = self._rings.row(entity)
        return 0 if row is None else int(self._rings.learnt[row])

    def history_of(self, entity: str) -> NDArray[np.float32]:
        """The entity's kept windows (window x feature, comparison scale; empty if none)."""
        row = self._rings.row(entity)
        if row is None:
            return np.zeros((0, len(self.features)), dtype=np.float32)
        return self._rings.history(row)

    @property
    def risks(self) -> dict[str, EntityRisk]:
        """Every entity's risk record, by entity (a snapshot)."""
        table = self._risks
        return {entity: table.record(row) for entity, row in table.index.items()}

    def top_entities(self, n: int | None = None) -> list[EntityRisk]:
        """Entities by peak risk, the ``n`` riskiest (all when ``None``).

        Equal risks rank by alerts, then by the entity's highest window score, both
        descending, then by name: the order of the scan's
        :func:`~detector.risk.entity_risk`.
        """
        table = self._risks
        ranked = sorted(
            table.index.items(),
            key=lambda item: (
                -table.peak[item[1]],
                -table.alerts[item[1]],
                -table.peak_score[item[1]],
                item[0],
            ),
        )
        chosen = ranked if n is None else ranked[:n]
        return [table.record(row) for _, row in chosen]

    # -- scoring ----------------------------------------------------------------------------

    def score_windows(
        self, vectors: Sequence[WindowVector], *, forget: Iterable[str] = ()
    ) -> tuple[list[ScoredWindow], list[Alert]]:
        """Like :meth:`score`, also returning every window's score, basis and evidence.

        ``forget``: entities to :meth:`forget` with this call (as for :meth:`score_frame`).
        """
        if not vectors:
            self._forget_all(forget)
            return [], []
        raw = self._values_matrix(vectors)
        windows = _Windows(
            entities=[v.entity for v in vectors],
            start_us=np.array([(v.window_start - _EPOCH) // _ONE_US for v in vectors]),
            n_events=[v.n_events for v in vectors],
            raw=raw,
            starts=[v.window_start for v in vectors],
            values=[v.values for v in vectors],
        )
        scored, alerts = self._score_matrix(windows, forget=forget)
        return [
            ScoredWindow(entity, start, score, alert, basis, evidence)
            for entity, start, score, alert, basis, evidence in zip(
                windows.entities, windows.starts or [], *scored, strict=True
            )
        ], alerts

    def _values_matrix(self, vectors: Sequence[WindowVector]) -> FloatMatrix:
        """The vectors' values in spec order (a missing key counts as 0), one row each.

        A plain dict holding every spec (the common case) gives its values in one C-level
        look-up (``operator.itemgetter``); numpy makes them the floats ``float()`` would.
        """
        features = self.features
        if len(features) < 2:
            return np.array(
                [[float(v.values.get(name, 0.0)) for name in features] for v in vectors],
                dtype=np.float64,
            ).reshape(len(vectors), len(features))
        every = operator.itemgetter(*features)
        rows: list[Sequence[Any]] = []
        append = rows.append
        for vector in vectors:
            values = vector.values
            # Not a dict subclass: one with __missing__ would answer (and grow) for a key it
            # lacks, where .get gives 0.
            if type(values) is dict:
                try:
                    append(every(values))
                    continue
                except KeyError:
                    pass
            append([float(values.get(name, 0.0)) for name in features])
        return np.array(rows, dtype=np.float64)

    def score_frame(self, vectors: pl.DataFrame, *, forget: Iterable[str] = ()) -> list[Alert]:
        """:meth:`score` of the columnar evaluator's output, without per-window objects.

        ``vectors`` has the columns ``entity``, ``window_start`` (UTC), ``n_events`` and one
        number per spec, named as the spec (a missing or null one counts as 0, as a missing
        key of a vector does). The alerts are those :meth:`score` gives for the same windows.

        ``forget``: the entities the features evicted or expired in the step that closed
        these windows. Each is forgotten (:meth:`forget`) as if right after the call: its
        windows here are scored and learnt first. The rows of those without a window here
        are freed before the call's new entities take rows, so under a cap of ``N`` entities
        the tables hold about ``N`` rows, not ``N`` plus a step's newcomers. The results are
        those of the call followed by :meth:`forget` of each.
        """
        if vectors.height == 0:
            self._forget_all(forget)
            return []
        present = set(vectors.columns)
        raw = vectors.select(
            (pl.col(name) if name in present else pl.lit(None)).cast(pl.Float64()).alias(name)
            for name in self.features
        ).to_numpy()
        windows = _Windows(
            entities=vectors.get_column("entity").to_list(),
            start_us=vectors.get_column("window_start").dt.epoch("us").to_numpy(),
            n_events=vectors.get_column("n_events").to_list(),
            raw=raw,
        )
        return self._score_matrix(windows, detail=False, forget=forget)[1]

    def _forget_all(self, entities: Iterable[str]) -> None:
        """:meth:`forget` each, then compact the tables if that left them mostly empty."""
        for entity in entities:
            self.forget(entity)
        self._compact()

    def _compact(self) -> None:
        self._rings.compact()
        self._risks.compact()

    def _score_matrix(
        self, windows: _Windows, *, detail: bool = True, forget: Iterable[str] = ()
    ) -> tuple[tuple[list[float], list[bool], list[str], list[float]], list[Alert]]:
        """Score, decide, explain and learn a call's windows, all as array work.

        Returns each window's score, alert, basis and evidence (as lists; empty lists unless
        ``detail``), and the alerts. ``forget``: as for :meth:`score_frame`.
        """
        # The population (and peer groups) refresh first, with the entities as the previous
        # call left them: forgetting some now must not change what the refresh sees.
        self._refresh()
        # Rows freed by forgets since the last call, if they left the tables mostly empty.
        self._compact()
        leaving: list[str] = []
        if forget:
            present = set(windows.entities)
            for entity in forget:
                if entity in present:
                    leaving.append(entity)  # scored first
                else:
                    self.forget(entity)  # its rows go to this call's newcomers
        population = self._population
        raw = windows.raw
        if not np.isfinite(raw).all():  # else no copy: nothing below writes into it
            raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
        scaled = scale_matrix(self.specs, raw, finite=True)
        count, width = scaled.shape
        floor = np.full(width, self.min_scale) if population is None else population.floor
        if population is None:
            population_z = np.zeros_like(scaled)
        else:
            population_z = (scaled - population.median) / population.scale
        rings = self._rings
        rows = rings.rows_of(windows.entities)
        if self.detector != BUILTIN_DETECTOR:
            for row in rows.tolist():
                if rings.detectors[row] is None:
                    params = {"seed": self.seed, **self.detector_params}
                    rings.detectors[row] = create(self.detector, **params)  # type: ignore[assignment]
        # Every window of the call is judged by its entity's baseline as the call found it.
        own = rings.learnt[rows] >= self.cold_start_windows
        everyone_own = bool(own.all())  # the common case past the first days: no masks
        if everyone_own:
            own_z = (scaled - rings.median[rows]) / np.maximum(rings.scale[rows], floor)
        else:
            own_z = np.zeros_like(scaled)
            if own.any():
                own_rows = rows[own]
                own_z[own] = (scaled[own] - rings.median[own_rows]) / np.maximum(
                    rings.scale[own_rows], floor
                )
        own_positive = np.maximum(own_z, 0.0)
        # Cold-start windows with a peer group to compare with: its row (else -1), their z.
        # A group's spread is never taken narrower than the population's: a new account is
        # judged against its department's typical values, but its first days' novelty is no
        # rarer than across everyone (dev seed 11: 79 cold-start alerts with the group's own
        # spread, 7 with this floor, 15 without peers).
        peer_floor = floor if population is None else np.maximum(floor, population.scale)
        peer, peer_z = self._peer_z(windows.entities, own, scaled, peer_floor)
        peered = peer >= 0
        by_population = ~own & ~peered
        if population is not None and everyone_own:
            surprise = tail_surprise(own_positive, population.own_reference)
        else:
            surprise = np.zeros_like(scaled)
        if population is not None and not everyone_own:
            if own.any():
                surprise[own] = tail_surprise(own_positive[own], population.own_reference)
            if peered.any():
                surprise[peered] = tail_surprise(
                    np.maximum(peer_z[peered], 0.0), population.own_reference
                )
            if by_population.any():
                surprise[by_population] = tail_surprise(
                    np.maximum(population_z[by_population], 0.0), population.population_reference
                )
        strongest = surprise.max(axis=1) if width else np.zeros(count)
        groups = self.feature_groups
        tail_scores = top_k_group_sum(surprise, self.top_k, groups, strongest=strongest)
        referenced = self._referenced(population, own, peered)
        if self.detector == BUILTIN_DETECTOR:
            informed = referenced
        else:
            # An own-history window is its detector's score; a cold-start one is mapped onto
            # recent scores from informed cold-start scores, once there are both.
            mapped = bool(len(self.calibrator.recent_)) and bool(self._cold_scores)
            informed = own | (referenced & mapped)
        scores = self._detector_scores(windows, rows, own, tail_scores, referenced)

        # Decide against the threshold in force at the start of the call.
        threshold = float(self.calibrator.threshold_)
        evidence = self._evidence(scores)
        evidence[~own] *= self.cold_start_evidence
        if population is not None and width:
            # A behaviour beyond what the population ever showed on one feature (see
            # detector.risk.FeatureEvidence); the surprises are the ones the score summed.
            evidence += self.feature_evidence.evidence(
                strongest, own, population.own_reference.shape[0]
            )
        scores = np.asarray(scores, dtype=np.float64)
        evidence[~informed] = 0.0
        candidates = np.flatnonzero((scores > threshold) & informed)
        z: FloatMatrix | None = None  # each window's z on its basis, made if one alerts
        # Explanations made to test the allow-list, reused by the alerts (the same test).
        explained: dict[int, tuple[Deviation, ...]] = {}
        mutes: Callable[[int], bool] | None = None
        if self._allowlist.entries and candidates.size:
            z = self._basis_z(own, own_z, population_z, peered, peer_z)
            mutes = self._mute_test(windows, rows, (own, peer), raw, z, explained)
        # Summed over all features, for the candidates only (the cap's tie-break).
        total_surprise = np.zeros(count)
        total_surprise[candidates] = surprise[candidates].sum(axis=1)
        flagged, muted = self._apply_cap(windows, scores, candidates, total_surprise, mutes)
        # A muted window was accepted by the operator: no risk (as the scan withdraws it).
        evidence[muted] = 0.0
        alerting = flagged & ~muted
        if alerting.any():
            # An alert counts at least the rarity its budget gives it (detector.risk).
            least = alert_evidence(1.0 - self.calibrator.level_)
            weight = np.where(own[alerting], 1.0, self.cold_start_evidence)
            evidence[alerting] = np.maximum(evidence[alerting], least * weight)
        _calibrate(self.calibrator, scores[informed])
        self.windows_scored += count

        # Risk, explanations and learning follow the windows' order for an entity with
        # several windows in the call: its n-th windows are handled together, after its
        # (n-1)-th ones (an explanation sees the windows learnt before it).
        day = (windows.start_us / 1e6) / 86_400.0
        self.last_day = max(self.last_day, float(day.max()))
        risk_rows = self._risks.rows_of(windows.entities)
        learns = np.ones(count, dtype=bool) if self.learn_flagged else ~flagged
        occurrence = _occurrence(rows)
        half_life = self.risk_config.half_life_days
        alerts: list[tuple[int, Alert]] = []
        single = not occurrence.any()
        for rank in range(int(occurrence.max()) + 1):
            members = np.arange(count) if single else np.flatnonzero(occurrence == rank)
            risk = self._risks.add(
                risk_rows[members],
                evidence[members],
                day[members],
                windows.start_us[members],
                half_life,
                scores[members],
            )
            raised = flagged[members]
            if raised.any():
                self._risks.alerts[risk_rows[members[raised & ~muted[members]]]] += 1
                if z is None:
                    z = self._basis_z(own, own_z, population_z, peered, peer_z)
                alerts.extend(
                    self._alerts(
                        windows,
                        members[raised],
                        risk[raised],
                        rows,
                        (own, peer),
                        scores,
                        raw,
                        z,
                        threshold,
                        explained,
                    )
                )
            learning = members[learns[members]]
            rings.learn(rows[learning], scaled[learning])
            if self.detector != BUILTIN_DETECTOR:
                for i in learning.tolist():
                    detector = rings.detectors[int(rows[i])]
                    assert detector is not None
                    detector.learn_one(windows.detector_input(i, self.features))
        learnt = np.flatnonzero(learns)
        ordinary = learnt[informed[learnt]]
        if ordinary.size:
            self._ordinary_window().push_many(scores[ordinary])
        self._learn_population(
            learnt, rows, scaled, own, own_positive, None if population is None else population_z
        )
        self.alerts_raised += len(alerts)
        alerts.sort(key=lambda item: (-item[1].score, item[1].entity, item[0]))
        self._forget_all(leaving)
        if not detail:
            return ([], [], [], []), [alert for _, alert in alerts]
        basis = np.where(own, OWN_BASIS, COLD_BASIS).tolist()
        if peered.any():
            for i in np.flatnonzero(peered).tolist():
                basis[i] = self._basis(bool(own[i]), int(peer[i]))
        outcome = (scores.tolist(), flagged.tolist(), basis, evidence.tolist())
        return outcome, [alert for _, alert in alerts]

    # -- internals ---------------------------------------------------------------------------

    def _peer_z(
        self,
        entities: Sequence[str],
        own: NDArray[np.bool_],
        scaled: FloatMatrix,
        floor: FloatMatrix,
    ) -> tuple[NDArray[np.intp], FloatMatrix]:
        """Each cold-start window's peer group row (-1: none) and its z against the group."""
        groups = self._peer_groups
        peer = np.full(len(entities), -1, dtype=np.intp)
        if groups is None or not self._peers or own.all():
            return peer, np.zeros((0, scaled.shape[1]))
        cold = np.flatnonzero(~own)
        group_of, index = self._peers.get, groups.index
        peer[cold] = [index.get(group_of(entities[i], ""), -1) for i in cold.tolist()]
        peer_z = np.zeros_like(scaled)
        peered = np.flatnonzero(peer >= 0)
        if peered.size:
            group = peer[peered]
            peer_z[peered] = (scaled[peered] - groups.median[group]) / np.maximum(
                groups.scale[group], floor
            )
        return peer, peer_z

    def _basis(self, own: bool, peer: int) -> str:
        if own:
            return OWN_BASIS
        if peer >= 0 and self._peer_groups is not None:
            return peer_basis(self._peer_groups.names[peer])
        return COLD_BASIS

    def _alerts(
        self,
        windows: _Windows,
        raised: NDArray[np.intp],
        risk: FloatMatrix,
        rows: NDArray[np.intp],
        judged: tuple[NDArray[np.bool_], NDArray[np.intp]],
        scores: FloatMatrix,
        raw: FloatMatrix,
        z: FloatMatrix,
        threshold: float,
        explained: Mapping[int, tuple[Deviation, ...]],
    ) -> list[tuple[int, Alert]]:
        """The alerts of these windows (of distinct entities), with their explanations.

        ``judged``: whether each window of the call had its own baseline, and its peer group
        row (-1: none). ``explained``: explanations already made (to test the allow-list).
        """
        own, peer = judged
        rings = self._rings
        owned = rows[raised[own[raised]]]
        stale = owned[rings.stale[owned]]
        if stale.size:
            # Windows of the same entity earlier in this call were learnt already.
            rings.refresh(stale)
        found: list[tuple[int, Alert]] = []
        for i, entity_risk in zip(raised.tolist(), risk.tolist(), strict=True):
            basis = self._basis(bool(own[i]), int(peer[i]))
            start = windows.start(i)
            alert = Alert.build(
                entity=windows.entities[i],
                window_start=start,
                window_end=start + self.window,
                detector=self.detector,
                score=float(scores[i]),
                threshold=threshold,
                severity=severity_of(float(scores[i]), threshold),
                schema_hash=self.schema_hash,
                deviations=explained[i]
                if i in explained
                else self._explain(basis, raw[i], z[i], int(rows[i]), int(peer[i])),
                entity_type=self.entity_type,
                baseline=basis,
                context={"events": int(windows.n_events[i]), "risk": round(entity_risk, 3)},
            )
            found.append((i, alert))
        return found

    @staticmethod
    def _basis_z(
        own: NDArray[np.bool_],
        own_z: FloatMatrix,
        population_z: FloatMatrix,
        peered: NDArray[np.bool_],
        peer_z: FloatMatrix,
    ) -> FloatMatrix:
        """Each window's z on the basis it was judged on (own, peer group or population)."""
        z = np.where(own[:, None], own_z, population_z)
        if peered.any():
            z[peered] = peer_z[peered]
        return z

    def _mute_test(
        self,
        windows: _Windows,
        rows: NDArray[np.intp],
        judged: tuple[NDArray[np.bool_], NDArray[np.intp]],
        raw: FloatMatrix,
        z: FloatMatrix,
        explained: dict[int, tuple[Deviation, ...]],
    ) -> Callable[[int], bool]:
        """Whether the allow-list mutes window ``i`` entirely, as its alert would be explained.

        The explanation is made only when an entry with a ``feature`` applies, against the
        baselines as the call found them (an entity with several windows in one call: before
        its earlier ones were learnt), and kept in ``explained`` for the alert.
        """
        own, peer = judged

        def mutes(i: int) -> bool:
            def explaining() -> list[str]:
                basis = self._basis(bool(own[i]), int(peer[i]))
                deviations = self._explain(basis, raw[i], z[i], int(rows[i]), int(peer[i]))
                explained[i] = deviations
                return [deviation.feature for deviation in deviations]

            day = windows.start(i).date()
            return self._allowlist.mutes(windows.entities[i], day, self.detector, explaining)

        return mutes

    @staticmethod
    def _referenced(
        population: _Population | None, own: NDArray[np.bool_], peered: NDArray[np.bool_]
    ) -> NDArray[np.bool_]:
        """Which windows' tail surprises were measured against a reference that has rows.

        Own and peer baselines are measured against the own-history reference, the
        population baseline against the population reference; an empty one, or no
        population statistics at all, gives every window 0.
        """
        if population is None:
            return np.zeros(own.size, dtype=bool)
        return np.asarray(
            np.where(
                own | peered,
                population.own_reference.shape[0] > 0,
                population.population_reference.shape[0] > 0,
            ),
            dtype=bool,
        )

    def _detector_scores(
        self,
        windows: _Windows,
        rows: NDArray[np.intp],
        own: NDArray[np.bool_],
        tail_scores: FloatMatrix,
        referenced: NDArray[np.bool_],
    ) -> FloatMatrix:
        if self.detector == BUILTIN_DETECTOR:
            return np.nan_to_num(tail_scores, nan=0.0, posinf=0.0, neginf=0.0)
        scores = np.zeros(len(rows))
        recent = self.calibrator.recent_
        cold_sorted = self._cold_scores
        for i, row in enumerate(rows.tolist()):
            detector = self._rings.detectors[row]
            if own[i] and detector is not None:
                value = float(detector.score_one(windows.detector_input(i, self.features)))
            elif referenced[i] and len(recent) and cold_sorted:
                # Quantile mapping: the cold window's population score, by its rank among
                # recent cold-start scores, onto the detector's recent score distribution.
                rank = bisect.bisect_left(cold_sorted, float(tail_scores[i])) / len(cold_sorted)
                value = recent.quantile(rank)
            else:
                value = 0.0
            scores[i] = value if math.isfinite(value) else 0.0
        # Only cold-start scores measured against a reference define the mapping (another
        # is 0 whatever the window holds).
        for cold in np.flatnonzero(~own & referenced).tolist():
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
        self,
        windows: _Windows,
        scores: FloatMatrix,
        candidates: NDArray[np.intp],
        total_surprise: FloatMatrix,
        mutes: Callable[[int], bool] | None = None,
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Which windows alert, and which of them the allow-list mutes.

        The candidates that fit in their day's budget alert, highest first. Equal scores (the
        surprise cap reached on the ``top_k`` features) are ordered by the surprise summed
        over all features, then by a hash of entity and day: never by name, which would give
        a tie's slots to the same alphabetically first entities every day. A candidate that
        ``mutes`` (the allow-list) mutes entirely alerts too (it is not learnt, and the
        caller's allow-list counts it) but takes no slot: the cap counts alerts emitted.
        """
        flagged = np.zeros(len(scores), dtype=bool)
        muted = np.zeros(len(scores), dtype=bool)
        if not candidates.size:
            return flagged, muted
        by_day: dict[date, list[int]] = {}
        for i in candidates.tolist():
            by_day.setdefault(windows.start(i).date(), []).append(i)
        for day, members in by_day.items():
            members.sort(
                key=lambda i: (
                    -scores[i],
                    -total_surprise[i],
                    zlib.crc32(f"{day.isoformat()} {windows.entities[i]}".encode()),
                )
            )
            room = max(self.daily_cap - self.alerts_per_day.get(day, 0), 0)
            if mutes is not None:
                # Muted windows step aside; the allow-list is asked in score order, and only
                # while slots remain (a window past the cap is capped whether muted or not).
                taken: list[int] = []
                for i in members:
                    if len(taken) == room:
                        break
                    if mutes(i):
                        muted[i] = True
                    else:
                        taken.append(i)
                flagged[muted] = True
                self.capped += len(members) - len(taken) - int(muted[members].sum())
                members = taken
            else:
                self.capped += max(len(members) - room, 0)
            flagged[members[:room]] = True
            self.alerts_per_day[day] = self.alerts_per_day.get(day, 0) + min(room, len(members))
        if len(self.alerts_per_day) > 8:
            # Only the days still open matter; windows arrive in time order.
            for day in sorted(self.alerts_per_day)[:-8]:
                del self.alerts_per_day[day]
        return flagged, muted

    def _learn_population(
        self,
        learnt: NDArray[np.intp],
        rows: NDArray[np.intp],
        scaled: FloatMatrix,
        own: NDArray[np.bool_],
        own_positive: FloatMatrix,
        population_z: FloatMatrix | None,
    ) -> None:
        """Refresh the baselines that learnt and push the learnt windows to the population.

        ``population_z`` is ``None`` when there were no population statistics to measure the
        windows against: their deviations are then not kept as a reference (they would be
        zeros, and make every later deviation look like none seen before).
        """
        if not learnt.size:
            return
        rings = self._rings
        # Each learning row once, in row order (a mask: cheaper than np.unique's sort).
        learning = np.zeros(rings.stale.size, dtype=bool)
        learning[rows[learnt]] = True
        rings.refresh(np.flatnonzero(learning & rings.stale))
        self._values.push_many(scaled[learnt])
        if population_z is not None:
            self._population_z.push_many(np.maximum(population_z[learnt], 0.0))
        self._own_z.push_many(own_positive[learnt[own[learnt]]])
        self._learnt_since_refresh += int(learnt.size)

    def _refresh(self) -> None:
        """Recompute the population statistics and references when enough was learnt."""
        if self._values.n == 0:
            return
        # Every refresh_every windows, and sooner while the buffers are still filling (each
        # time they have doubled), so a small deployment is not stuck with its first windows.
        learnt = self._learnt_since_refresh
        due = min(self.refresh_every, max(self._values.n - learnt, 1))
        population = self._population
        if population is not None and learnt < due and not self._reference_fills(population):
            return
        # One sort of each column gives the median, the MAD and both quantiles (the values
        # of np.median and np.quantile's "lower"/"higher" methods, at a fraction of the cost).
        columns = self._values.sorted_columns32()
        n = columns.shape[1]
        median, mad = median_and_mad_of_sorted(columns)
        robust = MAD_TO_SIGMA * mad
        spread = robust
        unspread = np.flatnonzero(~(robust > 0.0))
        if unspread.size:
            # Their standard deviation instead (read for those columns only). A column of
            # zeros alone (its sorted ends are 0: a feature nobody used) has a standard
            # deviation of exactly 0, which needs no pass over it.
            spread = robust.copy()
            zeros = (columns[unspread, 0] == 0.0) & (columns[unspread, -1] == 0.0)
            spread[unspread[zeros]] = 0.0
            varied = unspread[~zeros]
            if varied.size:
                spread[varied] = self._values.column_std(varied)
        floor = np.maximum(self.alpha * spread, self.min_scale)
        lowest, highest = _decile_positions(n)
        low = columns[:, lowest].astype(np.float64)
        high = columns[:, highest].astype(np.float64)
        self._population = _Population(
            median=median,
            scale=np.maximum(spread, floor),
            floor=floor,
            low=low,
            high=high,
            own_reference=self._own_z.sorted_reference(),
            population_reference=self._population_z.sorted_reference(),
        )
        self._peer_groups = self._peer_statistics() if self._peers else None
        self._learnt_since_refresh = 0

    def _reference_fills(self, population: _Population) -> bool:
        """Whether a reference empty at the last refresh has rows now.

        Windows measured against an empty reference are uninformed (they score 0): the first
        deviations learnt are taken in at the next call, not after the buffers doubled.
        """
        return (population.own_reference.shape[0] == 0 and self._own_z.n > 0) or (
            population.population_reference.shape[0] == 0 and self._population_z.n > 0
        )

    def _peer_statistics(self) -> _PeerGroups | None:
        """Median, scale and 10/90 % values of each peer group's members' kept windows.

        Members: entities of the group with their own baseline (at least
        ``cold_start_windows`` learnt); a group with fewer than ``min_peers`` is left out.
        One sort per group over its members' windows (groups are few, members many); a
        group with more windows than the population's ``reference_size`` is represented by
        an even sample of its members, so a refresh costs at most that much per group.
        """
        rings = self._rings
        group_of = self._peers.get
        members: dict[str, list[int]] = {}
        for entity, row in rings.index.items():
            group = group_of(entity)
            if group is not None:
                members.setdefault(group, []).append(row)
        names: list[str] = []
        stats: list[tuple[FloatMatrix, FloatMatrix, FloatMatrix, FloatMatrix]] = []
        slots = np.arange(rings.window)
        for name in sorted(members):
            rows = np.array(members[name], dtype=np.intp)
            rows = rows[rings.learnt[rows] >= self.cold_start_windows]
            if rows.size < self.min_peers:
                continue
            most = max(self.min_peers, self._values.size // rings.window)
            if rows.size > most:
                rows = rows[np.linspace(0, rows.size - 1, most).astype(np.intp)]
            kept = np.minimum(rings.learnt[rows], rings.window)
            # feature x (member, slot): every kept window of every member, one row each, in C
            # order (a row's order does not matter, it is sorted; a strided one sorts slower).
            taken = rings.values[rows].transpose(1, 0, 2)
            if int(kept.min()) == rings.window:
                columns = taken.reshape(taken.shape[0], -1)  # every slot filled: one copy
            else:
                columns = np.ascontiguousarray(taken[:, slots < kept[:, None]])
            columns.sort(axis=1)
            median, mad = median_and_mad_of_sorted(columns)
            lowest, highest = _decile_positions(columns.shape[1])
            low, high = columns[:, lowest], columns[:, highest]
            names.append(name)
            stats.append(
                (median, MAD_TO_SIGMA * mad, low.astype(np.float64), high.astype(np.float64))
            )
        if not names:
            return None
        medians, scales, lows, highs = (np.stack(column) for column in zip(*stats, strict=True))
        return _PeerGroups(
            names=names,
            index={name: g for g, name in enumerate(names)},
            median=medians,
            scale=scales,
            low=lows,
            high=highs,
        )

    def _raw(self, scaled: FloatMatrix) -> FloatMatrix:
        """Comparison-scale values back on the features' own scale (rounded for reading)."""
        counts = np.expm1(scaled)
        regular = 1.0 - np.exp(-scaled)
        readable = np.round(np.where(self.regularity, regular, counts), 2)
        return np.asarray(readable, dtype=np.float64)

    def _explain(
        self, basis: str, raw: FloatMatrix, z: FloatMatrix, row: int, peer: int = -1
    ) -> tuple[Deviation, ...]:
        """Deviating features, rarest across the population first (as the batch explains).

        When none passes, the features that deviated most, as a combination.
        """
        population = self._population
        if population is None:
            return ()
        groups = self._peer_groups
        if basis == OWN_BASIS:
            kept = self._rings.history(row).astype(np.float64)
            median = self._raw(self._rings.median[row])
            low = self._raw(np.quantile(kept, 0.1, axis=0, method="lower"))
            high = self._raw(np.quantile(kept, 0.9, axis=0, method="higher"))
            reference = population.own_reference
        elif peer >= 0 and groups is not None:
            # "Typical" is what the entity's peers do; rarity as for an own baseline.
            median = self._raw(groups.median[peer])
            low, high = self._raw(groups.low[peer]), self._raw(groups.high[peer])
            reference = population.own_reference
        else:
            median = self._raw(population.median)
            low, high = self._raw(population.low), self._raw(population.high)
            reference = population.population_reference
        n = reference.shape[0]
        magnitude = np.maximum(z, 0.0)
        keys = float32_at_least(magnitude) if reference.dtype == np.float32 else magnitude
        share = np.ones(len(z))
        for j in range(len(z)):
            if n:
                at_least = n - np.searchsorted(reference[:, j], keys[j], side="left")
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
            found.append(deviation_of(spec, raw[j], median[j], low[j], high[j], z[j], share[j]))
            if len(found) >= self.max_deviations:
                break
        if not found:
            return combination_deviations(self.specs, raw, z, median, low, high, share)
        return tuple(found)
