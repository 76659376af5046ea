"""Time-sliced columnar evaluation of feature specs, carrying compact history between slices.

:class:`SlicedFeatures` evaluates the same specs as :func:`features.batch.evaluate_batch`,
with the same polars code, over one *slice* of events at a time: every event of a set of
windows, all later than any window evaluated before. What the earlier slices leave behind is
the carried history, kept columnar in sorted numpy arrays:

* per value source (field + filter + split) read by ``first_seen``, ``rarity`` or
  ``rare_count``: the (entity, value) pairs seen; for the population kinds also, per value,
  the number of entities that had it (``k``), and the entities that had any value (``N``);
* per hour source (filter) read by ``unusual_hour`` or ``hour_deviation``: per entity its
  matching events at each of the 24 hours (integers: the features sum them in hour order, so
  the values are bit-identical however the events were sliced);
* the entities that have had a window (``first_seen`` counts 0 in an entity's first window).

The carried rows enter the batch internals as if they came in one window before every real
window, so the one implementation in :mod:`features.batch` counts them as history and emits
nothing for them. Concatenating the results of consecutive slices gives exactly what
``evaluate_batch`` gives over all the events at once.

Keys
----
Entities and values are keyed by a 64-bit BLAKE2b hash of their UTF-8 text (the same
function as :func:`features.online.stable_hash`): polars' own ``hash`` may change between
polars versions, and the history outlives the process (:meth:`SlicedFeatures.state`). Each
string is hashed once, through a bounded memo keyed by polars' own (in-process) hash of it,
so the cost per slice is a polars hash per event and a lookup per distinct entity and value.
(Keeping the strings instead would cost several times the memory of the history and string
joins against all of it per slice.)
(entity, value) pairs are looked up by a 64-bit mix of the two hashes.

Forgetting an entity (:meth:`SlicedFeatures.forget`) drops all of its history like
``OnlineFeatures`` does on eviction or idle expiry: its next window is its first again, and
its contribution to the population counts is withdrawn.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import struct
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from features import batch
from features.spec import FeatureSpec, WindowConfig

logger = logging.getLogger(__name__)

#: Version of the bytes of :meth:`SlicedFeatures.state`.
FORMAT_VERSION: Final = 1
_MAGIC: Final = b"BLSLICED"
_KEY_COLUMN: Final = "__entity_stable"
_MAX_MEMO: Final = 1 << 20
#: Recent pairs of a value source kept apart from the large sorted run at least up to this many.
_MERGE_AT: Final = 1 << 15
_SEEN_KINDS: Final = frozenset({"first_seen", "rarity", "rare_count"})
_POPULATION_KINDS: Final = frozenset({"rarity", "rare_count"})
_DATETIME: Final = pl.Datetime("us", "UTC")
# A slice's tables fit in memory (the slice is in memory already), and the in-memory engine
# runs these plans of many small steps with ~20% less CPU than the streaming one.
_ENGINE: Final = "in-memory"
# Except the two group-bys of a slice's events, the window table (when the slice has several
# windows) and each value source's cells: the streaming engine runs those with ~25% less CPU
# (the scan of 180 days of 1,000 users: ~1 CPU s less). One window's table is small, kept
# in memory.
_GROUP_BY_ENGINE: Final = "streaming"

_U64 = npt.NDArray[np.uint64]
_I64 = npt.NDArray[np.int64]

_EMPTY_U64: Final[_U64] = np.zeros(0, dtype=np.uint64)


def _blake(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def stable_hashes(values: pl.Series, memo: dict[str, int] | None = None) -> pl.Series:
    """Each string's 64-bit BLAKE2b hash (UInt64; null stays null), stable across processes.

    Only the distinct values are hashed; ``memo`` (bounded by the caller's use) skips the
    ones hashed before.

    Examples
    --------
    >>> from features.online import stable_hash
    >>> hashes = stable_hashes(pl.Series(["a.com", None, "a.com"]))
    >>> hashes.to_list() == [stable_hash("a.com"), None, stable_hash("a.com")]
    True
    """
    uniques = values.drop_nulls().unique()
    texts: list[str] = uniques.to_list()
    if memo is None:
        codes = [_blake(text) for text in texts]
    else:
        if len(memo) + len(texts) > _MAX_MEMO:
            memo.clear()
        get = memo.get
        codes = []
        for text in texts:
            code = get(text)
            if code is None:
                code = memo[text] = _blake(text)
            codes.append(code)
    return values.replace_strict(
        uniques, pl.Series(codes, dtype=pl.UInt64), default=None, return_dtype=pl.UInt64
    )


class _StableMemo:
    """:func:`stable_hashes` through a bounded memo keyed by polars' own hash of the strings.

    polars hashes a column in well under a millisecond, where finding its distinct strings
    and mapping them back costs many: so the distinct *polars hashes* are looked up in the
    memo (sorted arrays), and only the strings of the ones missing are BLAKE2b-hashed. The
    polars hash never leaves the process (the memo is not saved). Two strings sharing one
    would share a stable hash too: detected among the strings new to the memo (the exact
    path is taken then), not against those already in it, which is as unlikely as any of
    the 64-bit collisions the evaluators already rule out.
    """

    def __init__(self) -> None:
        self.quick = _EMPTY_U64  # sorted polars hashes
        self.stable = _EMPTY_U64  # their strings' BLAKE2b hashes

    def hashes(self, values: pl.Series) -> pl.Series:
        """``stable_hashes(values)`` (UInt64, null stays null), BLAKE2b-hashing new strings only."""
        quick = values.hash()
        if values.has_nulls():
            quick = pl.select(pl.when(values.is_not_null()).then(quick)).to_series()
        distinct = quick.unique(maintain_order=True).drop_nulls()
        keys = _u64(distinct)
        where, found = _lookup(self.quick, keys)
        if not found.all():
            missing = pl.Series(keys[~found], dtype=pl.UInt64)
            texts = values.filter(quick.is_in(missing.implode())).unique()
            new_quick = _u64(texts.hash())
            if np.unique(new_quick).size != new_quick.size:
                return stable_hashes(values)
            if self.quick.size + new_quick.size > _MAX_MEMO:
                self.quick, self.stable = _EMPTY_U64, _EMPTY_U64
                return self.hashes(values)
            codes = np.fromiter((_blake(text) for text in texts.to_list()), dtype=np.uint64)
            order = np.argsort(new_quick)
            at = np.searchsorted(self.quick, new_quick[order])
            self.quick = np.insert(self.quick, at, new_quick[order])
            self.stable = np.insert(self.stable, at, codes[order])
            where, found = _lookup(self.quick, keys)
        return quick.replace_strict(
            distinct,
            pl.Series(self.stable[where], dtype=pl.UInt64),
            default=None,
            return_dtype=pl.UInt64,
        )


def _collected(
    table: pl.LazyFrame, engine: Literal["in-memory", "streaming"] = _ENGINE
) -> pl.DataFrame:
    return table.collect(engine=engine)


def _collected_after(
    gaps: Future[pl.DataFrame] | None, features: Callable[..., pl.LazyFrame]
) -> pl.DataFrame:
    """``features(gaps=...)`` collected once ``gaps`` is (submitted to the same pool before
    this: the pool takes tasks in order, so ``gaps`` is running or done by now); ``None``:
    the features compute their own gaps, if any."""
    return _collected(features(gaps=None if gaps is None else gaps.result().lazy()))


def _mix(z: _U64) -> _U64:
    """splitmix64's finaliser (wrapping uint64 arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _pair_keys(entities: _U64, values: _U64) -> _U64:
    with np.errstate(over="ignore"):
        return _mix(entities ^ _mix(values))


def _lookup(sorted_keys: _U64, keys: _U64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Positions of ``keys`` in ``sorted_keys`` and whether each is there."""
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=np.intp), np.zeros(keys.size, dtype=np.bool_)
    # Searching in key order walks the table once (cache friendly): several times faster
    # than random probes into a table of millions, the sort included.
    order = np.argsort(keys)
    index = np.empty(keys.size, dtype=np.intp)
    index[order] = np.searchsorted(sorted_keys, keys[order])
    clipped = np.minimum(index, sorted_keys.size - 1)
    return clipped, sorted_keys[clipped] == keys


def _u64(series: pl.Series) -> _U64:
    return series.cast(pl.UInt64).to_numpy().astype(np.uint64, copy=False)


@dataclass
class _SeenValues:
    """History of one value source: the pairs seen, and the population counts from them.

    The pairs are kept in two sorted runs, a large one and a recent one: a slice's new
    pairs are merged into the recent run only, and the recent run into the large one when
    it reaches an eighth of it, so adding costs O(new + recent) instead of O(history) (an
    hourly close over months of history would otherwise copy every pair each hour).
    """

    population_kinds: bool
    pair: _U64  # sorted
    entity: _U64  # aligned with ``pair``
    value: _U64
    counted: _U64  # sorted values; population kinds only
    counts: _I64  # entities that had each counted value
    members: _U64  # sorted entities with any value; population kinds only
    recent_pair: _U64 = field(default_factory=lambda: _EMPTY_U64)  # sorted, none in ``pair``
    recent_entity: _U64 = field(default_factory=lambda: _EMPTY_U64)  # aligned with it
    recent_value: _U64 = field(default_factory=lambda: _EMPTY_U64)

    @classmethod
    def empty(cls, population_kinds: bool) -> _SeenValues:
        return cls(
            population_kinds,
            _EMPTY_U64,
            _EMPTY_U64,
            _EMPTY_U64,
            _EMPTY_U64,
            np.zeros(0, dtype=np.int64),
            _EMPTY_U64,
        )

    @classmethod
    def from_pairs(cls, population_kinds: bool, entity: _U64, value: _U64) -> _SeenValues:
        pair = _pair_keys(entity, value)
        order = np.argsort(pair, kind="stable")
        seen = cls.empty(population_kinds)
        seen.pair, seen.entity, seen.value = pair[order], entity[order], value[order]
        if population_kinds:
            seen.counted, counts = np.unique(seen.value, return_counts=True)
            seen.counts = counts.astype(np.int64)
            seen.members = np.unique(seen.entity)
        return seen

    def annotate(self, cells: pl.DataFrame) -> tuple[pl.DataFrame, _U64, _U64]:
        """Cells with their history columns, and the entities and values of the new pairs."""
        entity, value = _u64(cells.get_column(batch._KEY)), _u64(cells.get_column(batch._VALUE))
        pair = _pair_keys(entity, value)
        # One sort of the pairs serves both the lookup and picking the new ones.
        order = np.argsort(pair)
        ordered = pair[order]
        known = np.zeros(pair.size, dtype=np.bool_)
        for run in (self.pair, self.recent_pair):
            if run.size:
                at = np.minimum(np.searchsorted(run, ordered), run.size - 1)
                known |= run[at] == ordered
        seen = np.empty(pair.size, dtype=np.bool_)
        seen[order] = known
        columns = [pl.Series(batch.SEEN, seen)]
        if self.population_kinds:
            # Hash lookups: the counted values and the members are few (thousands) next to
            # the cells, and probing a hash table of them costs a fraction of sorting the
            # cells' values and entities for a sorted search.
            k = pl.Series(value).replace_strict(
                pl.Series(self.counted, dtype=pl.UInt64),
                pl.Series(self.counts, dtype=pl.Int64),
                default=0,
                return_dtype=pl.Int64,
            )
            in_population = pl.Series(entity).is_in(pl.Series(self.members).implode())
            columns += [k.alias(batch.K_BEFORE_SLICE), in_population.alias(batch.IN_POPULATION)]
        # The new pairs once each, in key order: the first of each run of equal unseen keys.
        unseen = ~known
        new_keys = ordered[unseen]
        first = np.ones(new_keys.size, dtype=np.bool_)
        first[1:] = new_keys[1:] != new_keys[:-1]
        picked = order[unseen][first]
        return cells.with_columns(columns), entity[picked], value[picked]

    def add(self, entity: _U64, value: _U64) -> None:
        """Add new pairs (distinct, none seen before)."""
        if entity.size == 0:
            return
        pair = _pair_keys(entity, value)
        order = np.argsort(pair, kind="stable")
        pair, entity, value = pair[order], entity[order], value[order]
        at = np.searchsorted(self.recent_pair, pair)
        self.recent_pair = np.insert(self.recent_pair, at, pair)
        self.recent_entity = np.insert(self.recent_entity, at, entity)
        self.recent_value = np.insert(self.recent_value, at, value)
        if self.recent_pair.size >= max(_MERGE_AT, self.pair.size // 8):
            self.compact()
        if not self.population_kinds:
            return
        values, counts = np.unique(value, return_counts=True)
        where, known = _lookup(self.counted, values)
        self.counts[where[known]] += counts[known]
        at = np.searchsorted(self.counted, values[~known])
        self.counted = np.insert(self.counted, at, values[~known])
        self.counts = np.insert(self.counts, at, counts[~known].astype(np.int64))
        joiners = np.unique(entity)
        _, member = _lookup(self.members, joiners)
        joiners = joiners[~member]
        self.members = np.insert(self.members, np.searchsorted(self.members, joiners), joiners)

    def compact(self) -> None:
        """Merge the recent pairs into the large run (the pairs stay the same set)."""
        if self.recent_pair.size == 0:
            return
        at = np.searchsorted(self.pair, self.recent_pair)
        self.pair = np.insert(self.pair, at, self.recent_pair)
        self.entity = np.insert(self.entity, at, self.recent_entity)
        self.value = np.insert(self.value, at, self.recent_value)
        self.recent_pair = self.recent_entity = self.recent_value = _EMPTY_U64

    def forget(self, entities: _U64) -> None:
        self.compact()
        drop = np.isin(self.entity, entities)
        if not drop.any():
            return
        dropped = self.value[drop]
        keep = ~drop
        self.pair, self.entity, self.value = self.pair[keep], self.entity[keep], self.value[keep]
        if not self.population_kinds:
            return
        values, counts = np.unique(dropped, return_counts=True)
        where = np.searchsorted(self.counted, values)
        self.counts[where] -= counts
        left = self.counts > 0
        self.counted, self.counts = self.counted[left], self.counts[left]
        self.members = self.members[~np.isin(self.members, entities)]

    @property
    def population(self) -> int:
        return int(self.members.size)

    def nbytes(self) -> int:
        arrays = (self.pair, self.entity, self.value, self.counted, self.counts, self.members)
        recent = (self.recent_pair, self.recent_entity, self.recent_value)
        return sum(a.nbytes for a in (*arrays, *recent))


@dataclass
class _HourHistory:
    """History of one hour source: per entity (sorted keys) its matching events per hour."""

    keys: _U64
    counts: _I64  # (entities, 24)

    @classmethod
    def empty(cls) -> _HourHistory:
        return cls(_EMPTY_U64, np.zeros((0, 24), dtype=np.int64))

    def before(self, keys: _U64) -> _I64:
        """The carried counts (rows of 24) of these entities; zeros for those without history."""
        counts = np.zeros((keys.size, 24), dtype=np.int64)
        where, known = _lookup(self.keys, keys)
        counts[known] = self.counts[where[known]]
        return counts

    def update(self, keys: _U64, counts: _I64) -> None:
        """Fold the hour counts of a slice in: ``counts[i]`` of entity ``keys[i]`` (distinct)."""
        _, known = _lookup(self.keys, keys)
        new = np.sort(keys[~known])
        at = np.searchsorted(self.keys, new)
        self.keys = np.insert(self.keys, at, new)
        self.counts = np.insert(self.counts, at, 0, axis=0)
        where, _ = _lookup(self.keys, keys)
        self.counts[where] += counts

    def forget(self, entities: _U64) -> None:
        keep = ~np.isin(self.keys, entities)
        self.keys, self.counts = self.keys[keep], self.counts[keep]

    def nbytes(self) -> int:
        return self.keys.nbytes + self.counts.nbytes


@dataclass
class _HourCells:
    """One hour source's cells of a slice: per (entity, window) its matching events per hour.

    The cells are sorted by entity, then window: each entity's cells are consecutive and in
    time order.
    """

    entities: _U64  # sorted distinct entity keys
    windows: _I64  # sorted distinct window starts (the physical integers of their times)
    entity: npt.NDArray[np.intp]  # per cell, its entity's index in ``entities``
    window: npt.NDArray[np.intp]  # per cell, its window's index in ``windows``
    counts: _I64  # (cells, 24)

    @classmethod
    def of(cls, keys: _U64, windows: _I64, hours: _I64) -> _HourCells:
        """The cells of events given by their entity keys, window starts and hours (0-23)."""
        entities, entity_of = np.unique(keys, return_inverse=True)
        starts, window_of = np.unique(windows, return_inverse=True)
        codes, cell_of = np.unique(entity_of * starts.size + window_of, return_inverse=True)
        counts = np.bincount(cell_of * 24 + hours, minlength=codes.size * 24)
        return cls(
            entities,
            starts.astype(np.int64),
            (codes // max(starts.size, 1)).astype(np.intp),
            (codes % max(starts.size, 1)).astype(np.intp),
            counts.astype(np.int64).reshape(codes.size, 24),
        )

    def _firsts(self) -> npt.NDArray[np.intp]:
        """The index of each entity's first cell."""
        first = np.ones(self.entity.size, dtype=np.bool_)
        first[1:] = self.entity[1:] != self.entity[:-1]
        return np.flatnonzero(first)

    def earlier_in_slice(self) -> _I64:
        """Per cell, its entity's counts (rows of 24) in its earlier windows of the slice."""
        if self.entity.size == 0:
            return np.zeros((0, 24), dtype=np.int64)
        running = np.cumsum(self.counts, axis=0) - self.counts
        firsts = self._firsts()
        lengths = np.diff(np.append(firsts, self.entity.size))
        return running - np.repeat(running[firsts], lengths, axis=0)

    def entity_sums(self) -> _I64:
        """Per entity (in ``entities`` order), its counts (rows of 24) over the slice."""
        if self.entity.size == 0:
            return np.zeros((0, 24), dtype=np.int64)
        return np.add.reduceat(self.counts, self._firsts(), axis=0)


class SlicedFeatures:
    """Evaluate feature specs one time slice at a time, carrying compact history.

    Parameters
    ----------
    specs
        The features (unique names); definitions in :mod:`features.spec`.
    config
        Entity field, window length and calendar, as for
        :func:`features.batch.evaluate_batch`.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from streams.event import POLARS_EVENT_SCHEMA
    >>> def visits(day, *hosts):
    ...     return pl.DataFrame(
    ...         {"ts": [datetime(2024, 1, day, 9, tzinfo=UTC)] * len(hosts), "source": "x",
    ...          "action": "http_visit", "user": "ann", "host": None, "target": list(hosts),
    ...          "bytes": None, "outcome": None, "attrs": None}, schema=POLARS_EVENT_SCHEMA)
    >>> spec = FeatureSpec(name="new_sites", kind="first_seen", field="target")
    >>> sliced = SlicedFeatures([spec], WindowConfig())
    >>> sliced.evaluate(visits(1, "a.com")).row(0)[2:]  # the first window counts 0
    (1, 0.0)
    >>> sliced.evaluate(visits(2, "a.com", "b.com")).row(0)[2:]
    (2, 1.0)
    >>> restored = SlicedFeatures([spec], WindowConfig())
    >>> restored.restore(sliced.state())
    >>> restored.evaluate(visits(3, "b.com", "c.com")).row(0)[2:], restored.entities()
    ((2, 1.0), ['ann'])
    """

    def __init__(
        self,
        specs: Sequence[FeatureSpec],
        config: WindowConfig = WindowConfig(),  # noqa: B008 - frozen, so a shared default is safe
    ) -> None:
        names = [spec.name for spec in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names: {duplicates}")
        self.specs = tuple(specs)
        self.config = config
        self.schema_hash = batch.spec_schema_hash(self.specs, config)
        plan = batch._make_plan(self.specs)
        self._value_sources = [
            source
            for source, group in plan.value_sources.items()
            if {spec.kind for spec in group} & _SEEN_KINDS
        ]
        self._population_kinds = [
            bool({spec.kind for spec in plan.value_sources[source]} & _POPULATION_KINDS)
            for source in self._value_sources
        ]
        self._hour_sources = list(plan.hour_sources)
        self._memo = _StableMemo()
        self._reset()

    def _reset(self) -> None:
        self._last_window: datetime | None = None
        self._known = _EMPTY_U64
        self._names: npt.NDArray[np.object_] = np.zeros(0, dtype=object)
        self._seen = [_SeenValues.empty(p) for p in self._population_kinds]
        self._hours = [_HourHistory.empty() for _ in self._hour_sources]

    @property
    def last_window(self) -> datetime | None:
        """Start of the latest window evaluated so far (``None`` before the first slice)."""
        return self._last_window

    def _stable(self, expr: pl.Expr) -> pl.Expr:
        memo = self._memo
        return expr.map_batches(memo.hashes, return_dtype=pl.UInt64)

    def evaluate(self, events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
        """Evaluate one slice: every event of some windows, all later than any evaluated before.

        Parameters
        ----------
        events
            Events as for :func:`features.batch.evaluate_batch`.

        Returns
        -------
        pl.DataFrame
            Exactly the rows and columns ``evaluate_batch`` returns for these windows when
            run over all events so far (forgotten entities' earlier events left out).

        Raises
        ------
        ValueError
            An event (with an entity) falls in or before a window already evaluated; the
            history is unchanged then.
        """
        frame = events.collect() if isinstance(events, pl.LazyFrame) else events
        plan = batch._checked_plan(self.specs, frame.lazy(), self.config)
        entity = self.config.entity
        if frame.get_column(entity).has_nulls():
            # Only then: a filter copies every column, the long text ones included.
            frame = frame.filter(pl.col(entity).is_not_null())
        if frame.height == 0:
            return batch.evaluate_batch(self.specs, frame.lazy(), self.config).collect()
        # Truncation keeps order, so the first and last windows are those of the extremes.
        ts = pl.col("ts")
        first, last = frame.select(
            ts.min().dt.truncate(self.config.window).alias("first"),
            ts.max().dt.truncate(self.config.window).alias("last"),
        ).row(0)
        assert isinstance(first, datetime) and isinstance(last, datetime)
        if self._last_window is not None and first <= self._last_window:
            raise ValueError(
                f"an event falls in window {first.isoformat()}, at or before the last window "
                f"already evaluated ({self._last_window.isoformat()})"
            )
        frame = frame.with_columns(self._memo.hashes(frame.get_column(entity)).alias(_KEY_COLUMN))
        plan.key_column = _KEY_COLUMN
        plan.stable_hash = self._stable
        plan.entity_not_null = True
        lazy = frame.lazy()
        config = self.config
        # A slice of one window (the daemon's case) needs no window functions over windows.
        single = first == last
        # Each entity's first row: its key and its name (one name per key), picked by index,
        # where a filter of the slice's rows by the new keys would copy every name.
        firsts = frame.get_column(_KEY_COLUMN).arg_unique()
        keys = _u64(frame.get_column(_KEY_COLUMN).gather(firsts))
        where, known = _lookup(self._known, keys)
        known_keys = pl.Series(keys[known], dtype=pl.UInt64)
        new_keys = keys[~known]
        new_names = np.asarray(
            frame.get_column(entity).gather(firsts).filter(pl.Series(~known)).to_list(),
            dtype=object,
        )
        # Every entity's name by key, for the window table: the known ones' are kept already.
        names = pl.DataFrame(
            {
                batch._KEY: pl.Series(np.concatenate([keys[known], new_keys]), dtype=pl.UInt64),
                batch.ENTITY: pl.Series(
                    np.concatenate([self._names[where[known]], new_names]).tolist(),
                    dtype=pl.String,
                ),
            }
        )

        # The tables are collected on worker threads as soon as their inputs are ready
        # (polars releases the GIL): the window table needs only the events and the history
        # of earlier slices (read, never changed, until the commit), a value table its
        # source's annotated cells. Meanwhile this thread hashes values and looks them up in
        # the history, work that holds the GIL, and the two cores stay busy. Nothing
        # submitted calls back into Python (the value hashes are computed here). The hour
        # tables (a few milliseconds of numpy) are computed here too: numpy arrays made on a
        # worker thread come from that thread's own glibc arena, and the new workers of each
        # slice left such arenas holding memory that grew with the number of slices (180
        # days of 1,000 users: a peak ~70 MB higher).
        workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sliced-tables")
        try:
            window_table = workers.submit(
                _collected,
                batch._window_table(self.specs, lazy, config, plan, single, names.lazy()),
                _ENGINE if single else _GROUP_BY_ENGINE,
            )
            hour_results = [
                self._hour_table(index, lazy, plan, single)
                for index in range(len(self._hour_sources))
            ]
            # Every table the history needs comes out of one collect, the values as text: the
            # stable hashing (which updates the memo) then runs here, all sources at once. A
            # periodicity source's rows keep their times, so its gaps need no second read.
            sources = list(plan.value_sources.items())
            with_ts = {
                source for source, group in sources if any(s.kind == "periodicity" for s in group)
            }
            read = [
                source
                for source, _ in sources
                if source in with_ts or source in self._value_sources
            ]
            queries = [
                batch._source_strings(lazy, plan, config, source, source in with_ts)
                for source in read
            ]
            source_texts = dict(zip(read, pl.collect_all(queries, engine=_ENGINE), strict=True))
            stable = self._stable_values(source_texts)

            value_results: dict[tuple[str, batch._FilterKey, str], Future[pl.DataFrame]] = {}
            new_pairs: list[tuple[_U64, _U64]] = []
            for source, group in sources:
                with_history = source in self._value_sources
                values: pl.LazyFrame | None = None
                if source in source_texts:
                    texts = source_texts[source]
                    hashed = (
                        stable[source] if with_history else texts.get_column(batch._VALUE).hash()
                    )
                    values = texts.with_columns(hashed.alias(batch._VALUE)).lazy()
                if not with_history:
                    value_results[source] = workers.submit(
                        _collected,
                        batch._value_features(
                            lazy, plan, config, source, group, single_window=single, values=values
                        ),
                    )
                    continue
                assert values is not None
                seen = self._seen[self._value_sources.index(source)]
                value_cells = values.group_by(batch._KEY, batch.WINDOW, batch._VALUE).agg(
                    pl.len().alias("__n")
                )
                cells = value_cells.collect(engine=_GROUP_BY_ENGINE)
                gaps: Future[pl.DataFrame] | None = None
                if source in with_ts:
                    # The periodicity gaps need the cells but not their history: they are
                    # computed on a worker while this thread annotates, not after.
                    gaps = workers.submit(
                        _collected, batch._gap_stats(values, batch._busy_cells(cells.lazy(), group))
                    )
                annotated, new_entities, new_values = seen.annotate(cells)
                new_pairs.append((new_entities, new_values))
                features = functools.partial(
                    batch._value_features,
                    lazy,
                    plan,
                    config,
                    source,
                    group,
                    annotated.lazy(),
                    seen.population,
                    stable=True,
                    single_window=single,
                )
                value_results[source] = workers.submit(_collected_after, gaps, features)
            value_tables = {
                source: result.result().lazy() for source, result in value_results.items()
            }
            hour_counts: list[tuple[_U64, _I64]] = []
            hour_tables: dict[batch._FilterKey, pl.LazyFrame] = {}
            for key, (hour_keys, counts, hours) in zip(
                self._hour_sources, hour_results, strict=True
            ):
                hour_counts.append((hour_keys, counts))
                hour_tables[key] = hours.lazy()
            table = batch._assemble(
                self.specs,
                lazy,
                config,
                plan,
                value_tables,
                hour_tables,
                known_keys,
                single,
                window_table=window_table.result().lazy(),
            ).collect(engine=_ENGINE)
        finally:
            workers.shutdown(wait=True, cancel_futures=True)

        # Commit only now: a failure above leaves the history as it was.
        for seen, (new_entities, new_values) in zip(self._seen, new_pairs, strict=True):
            seen.add(new_entities, new_values)
        for hour_history, (hour_keys, counts) in zip(self._hours, hour_counts, strict=True):
            hour_history.update(hour_keys, counts)
        if new_keys.size:
            order = np.argsort(new_keys)
            at = np.searchsorted(self._known, new_keys[order])
            self._known = np.insert(self._known, at, new_keys[order])
            self._names = np.insert(self._names, at, new_names[order])
        self._last_window = last
        logger.debug("slice %s..%s: %d events, %d rows", first, last, frame.height, table.height)
        return table

    def _stable_values(
        self, source_texts: dict[tuple[str, batch._FilterKey, str], pl.DataFrame]
    ) -> dict[tuple[str, batch._FilterKey, str], pl.Series]:
        """The stable hashes of the values of every source with history, in one memo pass.

        One pass over all the sources' values, not one per source: the memo's fixed costs
        (polars calls, growing its sorted arrays) are paid once per slice.
        """
        texts = [source_texts[source].get_column(batch._VALUE) for source in self._value_sources]
        if not texts:
            return {}
        hashed = self._memo.hashes(pl.concat(texts))
        stable = {}
        offset = 0
        for source, text in zip(self._value_sources, texts, strict=True):
            stable[source] = hashed.slice(offset, text.len())
            offset += text.len()
        return stable

    def _hour_table(
        self, index: int, events: pl.LazyFrame, plan: batch._Plan, single: bool
    ) -> tuple[_U64, _I64, pl.DataFrame]:
        """One hour source's feature table of the slice, with the carried history.

        Also the slice's counts per entity (distinct keys, rows of 24), to fold into the
        history at the commit.
        """
        key = self._hour_sources[index]
        specs = plan.hour_sources[key]
        # The cells are rows of 24 counts, and the features a few numpy passes over them
        # (:func:`features.batch.hour_feature_values`, bit-identical to the polars
        # expressions of :func:`features.batch._hour_features`, which cost more to plan than
        # the numbers cost to compute: a slice's hour source is a few thousand cells).
        rows = batch._matching(
            events, plan, self.config, key, [batch._hour_of_day(plan).alias(batch._HOUR)]
        ).collect(engine=_ENGINE)
        hours = rows.get_column(batch._HOUR).to_numpy().astype(np.int64)
        if single:
            # One window: the cells are the entities' rows of counts.
            keys, inverse = np.unique(_u64(rows.get_column(batch._KEY)), return_inverse=True)
            counts = np.bincount(inverse * 24 + hours, minlength=keys.size * 24)
            counts = counts.astype(np.int64).reshape(keys.size, 24)
            values = batch.hour_feature_values(specs, counts, self._hours[index].before(keys))
            table = pl.DataFrame(
                {
                    batch._KEY: pl.Series(keys, dtype=pl.UInt64),
                    **{name: pl.Series(v, dtype=pl.Float64) for name, v in values.items()},
                }
            )
            return keys, counts, table
        window_starts = rows.get_column(batch.WINDOW)
        cells = _HourCells.of(
            _u64(rows.get_column(batch._KEY)),
            window_starts.to_physical().to_numpy().astype(np.int64),
            hours,
        )
        # An entity's history before a window: the carried counts and those of its earlier
        # windows in the slice (integers, so exact in any order).
        before = cells.earlier_in_slice() + self._hours[index].before(cells.entities)[cells.entity]
        values = batch.hour_feature_values(specs, cells.counts, before)
        table = pl.DataFrame(
            {
                batch._KEY: pl.Series(cells.entities[cells.entity], dtype=pl.UInt64),
                batch.WINDOW: pl.Series(cells.windows[cells.window], dtype=pl.Int64).cast(
                    window_starts.dtype
                ),
                **{name: pl.Series(v, dtype=pl.Float64) for name, v in values.items()},
            }
        )
        return cells.entities, cells.entity_sums(), table

    def forget(self, entities: Collection[str]) -> None:
        """Drop all history of these entities (eviction, idle expiry); unknown ones are ignored.

        An entity's next window is then its first again, and its values no longer count in
        the population of ``rarity`` and ``rare_count``.
        """
        if not entities:
            return
        keys = np.unique(_u64(stable_hashes(pl.Series(list(entities), dtype=pl.String))))
        for seen in self._seen:
            seen.forget(keys)
        for hours in self._hours:
            hours.forget(keys)
        keep = ~np.isin(self._known, keys)
        self._known, self._names = self._known[keep], self._names[keep]

    def entities(self) -> list[str]:
        """The entities with history (that have had a window and were not forgotten), sorted."""
        return sorted(str(name) for name in self._names)

    def state_bytes(self) -> int:
        """Memory of the carried history in bytes (arrays, and the entity names)."""
        size = self._known.nbytes + self._names.nbytes
        size += sum(len(name) + 49 for name in self._names)
        size += sum(seen.nbytes() for seen in self._seen)
        return size + sum(hours.nbytes() for hours in self._hours)

    # -- checkpoints -----------------------------------------------------------------------

    def state(self) -> bytes:
        """The carried history as bytes (deterministic: equal histories give equal bytes).

        A header (format version, :func:`features.batch.spec_schema_hash` of the specs and
        config, last window) and Arrow IPC tables: entities, the pairs of each value source,
        the hour history of each hour source.
        """
        tables: list[tuple[str, pl.DataFrame]] = [
            (
                "entities",
                pl.DataFrame(
                    {
                        "key": pl.Series(self._known, dtype=pl.UInt64),
                        "entity": pl.Series(self._names.tolist(), dtype=pl.String),
                    }
                ),
            )
        ]
        for index, seen in enumerate(self._seen):
            seen.compact()
            pairs = pl.DataFrame(
                {
                    "entity": pl.Series(seen.entity, dtype=pl.UInt64),
                    "value": pl.Series(seen.value, dtype=pl.UInt64),
                }
            )
            tables.append((f"values{index}", pairs))
        for index, hours in enumerate(self._hours):
            frame = pl.DataFrame(
                {
                    "key": pl.Series(hours.keys, dtype=pl.UInt64),
                    **{
                        f"h{hour:02d}": pl.Series(hours.counts[:, hour], dtype=pl.Int64)
                        for hour in range(24)
                    },
                }
            )
            tables.append((f"hours{index}", frame))
        blobs = []
        for _, frame in tables:
            buffer = BytesIO()
            frame.write_ipc(buffer, compression="uncompressed")
            blobs.append(buffer.getvalue())
        header = {
            "format": FORMAT_VERSION,
            "spec_schema_hash": self.schema_hash,
            "last_window": None if self._last_window is None else self._last_window.isoformat(),
            "tables": [[name, len(blob)] for (name, _), blob in zip(tables, blobs, strict=True)],
        }
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        return b"".join([_MAGIC, struct.pack("<I", len(text)), text, *blobs])

    def restore(self, data: bytes) -> None:
        """Replace the history with one saved by :meth:`state` of the same specs and config.

        Raises
        ------
        ValueError
            Not such bytes, another format version, or other specs or config.
        """
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
            raise ValueError("not the state of SlicedFeatures")
        (length,) = struct.unpack_from("<I", data, len(_MAGIC))
        offset = len(_MAGIC) + 4
        try:
            header = json.loads(data[offset : offset + length])
        except ValueError:
            raise ValueError("not the state of SlicedFeatures (bad header)") from None
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"SlicedFeatures state format {header.get('format')!r}, "
                f"this version reads {FORMAT_VERSION}"
            )
        if header.get("spec_schema_hash") != self.schema_hash:
            raise ValueError("SlicedFeatures state is of other feature specs or window config")
        offset += length
        frames: dict[str, pl.DataFrame] = {}
        for name, size in header["tables"]:
            frames[name] = pl.read_ipc(BytesIO(data[offset : offset + size]))
            offset += size
        self._reset()
        last = header["last_window"]
        self._last_window = None if last is None else datetime.fromisoformat(last)
        entities = frames["entities"]
        self._known = _u64(entities.get_column("key"))
        self._names = np.asarray(entities.get_column("entity").to_list(), dtype=object)
        for index, population_kinds in enumerate(self._population_kinds):
            pairs = frames[f"values{index}"]
            self._seen[index] = _SeenValues.from_pairs(
                population_kinds, _u64(pairs.get_column("entity")), _u64(pairs.get_column("value"))
            )
        for index in range(len(self._hour_sources)):
            frame = frames[f"hours{index}"]
            columns = [f"h{hour:02d}" for hour in range(24)]
            counts = frame.select(columns).to_numpy().astype(np.int64).reshape(frame.height, 24)
            self._hours[index] = _HourHistory(_u64(frame.get_column("key")), counts)
