"""The daemon's windowing stage, columnar: event-time windows in front of a slice evaluator.

:class:`ColumnarOnline` has the observable behaviour of :class:`features.online.OnlineFeatures`
(read its module documentation): event-time windows aligned to UTC, a watermark that is the
newest event time minus the allowed lateness, lateness decided per event in arrival order,
late events counted and reported, windows closed in start order, idle expiry, the entity cap
with least-recently-seen eviction and the :attr:`~ColumnarOnline.evicted` hook, ``flush``,
checkpoints by pickling. What differs is how the numbers are made.

One addition serves a caller that merges several sources (the daemon): a *hold*, a cap on
the event time the watermark may reach from a batch (:meth:`ColumnarOnline.update_columns`'s
``hold_us``: the newest time of the slowest other source), and
:meth:`ColumnarOnline.advance_to`, which lets the watermark reach a time without a new event
(when the hold rises, or when the input has gone quiet). Without them the class behaves as
:class:`~features.online.OnlineFeatures`, event for event. The accepted events of the
open windows are buffered as frames; when the watermark closes windows, all their events go
to a :class:`WindowEvaluator` in one call, which returns the vectors of exactly those windows
as a frame (the columns of :func:`features.batch.evaluate_batch`). The cost is a few polars
plans per closing step instead of Python work per (entity, window, value).

The evaluator owns the feature history (seen values, hour histograms, population tables);
this class owns the windowing and the bookkeeping that decides which entities are tracked:
per entity with history, the time of its last event and its place in the recency order, kept
exactly as :class:`~features.online.OnlineFeatures` keeps them, so that the cap and the idle
expiry forget the same entities at the same moments. A forgotten entity is forgotten by the
evaluator (:meth:`WindowEvaluator.forget`) before any later window is evaluated. The recency
costs nothing per event: each accepted row carries a tick of a logical clock, and the order is
made of the largest ticks, taken per closed cell when windows close and over the open windows
only when a cap or an expiry must pick entities (or a checkpoint is written).
"""

from __future__ import annotations

import importlib
import logging
import pickle
import sys
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any, Final, Protocol

import numpy as np
import polars as pl

from features.batch import ENTITY, N_EVENTS, WINDOW, evaluate_batch, required_columns
from features.online import (
    _NEVER,
    EVICTED,
    EXPIRED,
    OnlineFeatures,
    WindowVector,
    _event_fields,
    _event_from_fields,
    _StreamClock,
)
from features.sliced import SlicedFeatures
from features.spec import FeatureSpec, WindowConfig
from streams.batch import events_from_frame, events_to_frame
from streams.event import POLARS_EVENT_SCHEMA, Event

logger = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_US: Final = "__us"
_WINDOW_INDEX: Final = "__window"
_TICK: Final = "__tick"
_SLOT: Final = "__slot"
_BORN: Final = "__born"
# The time and stamp of a free slot of the recency arrays: after every real one.
_FREE: Final = np.iinfo(np.int64).max


class WindowEvaluator(Protocol):
    """What :class:`ColumnarOnline` needs from the evaluator of closed windows.

    Built as ``factory(specs, config)``. ``evaluate`` takes every event of a set of windows,
    all later than any window evaluated before, and returns what
    :func:`features.batch.evaluate_batch` returns for those windows over all events given so
    far (less those of forgotten entities), folding them into its history.
    """

    def evaluate(self, events: pl.DataFrame) -> pl.DataFrame: ...

    def forget(self, entities: Collection[str]) -> None: ...

    def state_bytes(self) -> int: ...

    def state(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


EvaluatorFactory = Callable[[Sequence[FeatureSpec], WindowConfig], WindowEvaluator]


class ReferenceEvaluator:
    """A trivially correct :class:`WindowEvaluator`: keeps every event, re-evaluates them all.

    Each :meth:`evaluate` runs :func:`~features.batch.evaluate_batch` over every event kept
    so far and selects the windows of the new events; :meth:`forget` drops an entity's
    events, so its next window is its first again. Its cost grows with the stream: it is the
    definition the fast evaluators are tested against, not something to run a daemon on.

    Examples
    --------
    >>> from streams.batch import events_to_frame
    >>> spec = FeatureSpec(name="new_hosts", kind="first_seen", field="host")
    >>> evaluator = ReferenceEvaluator([spec], WindowConfig())
    >>> def logon(day, host):
    ...     return Event(datetime(2024, 1, day, 9, tzinfo=UTC), "x", "logon", user="ann",
    ...                  host=host)
    >>> evaluator.evaluate(events_to_frame([logon(1, "pc1")]))["new_hosts"].to_list()
    [0.0]
    >>> evaluator.evaluate(events_to_frame([logon(2, "pc1"), logon(2, "pc2")]))["new_hosts"][0]
    1.0
    >>> evaluator.forget(["ann"])
    >>> evaluator.evaluate(events_to_frame([logon(3, "pc3")]))["new_hosts"][0]
    0.0
    """

    def __init__(self, specs: Sequence[FeatureSpec], config: WindowConfig) -> None:
        self.specs = tuple(specs)
        self.config = config
        self._events: list[pl.DataFrame] = []

    def evaluate(self, events: pl.DataFrame) -> pl.DataFrame:
        """The vectors of the windows of ``events`` (all later than any before)."""
        self._events.append(events)
        every = pl.concat(self._events)
        windows = events.select(pl.col("ts").dt.truncate(self.config.window).unique())
        result = evaluate_batch(self.specs, every.lazy(), self.config).collect()
        return result.join(windows, left_on=WINDOW, right_on="ts", how="semi").sort(WINDOW, ENTITY)

    def forget(self, entities: Collection[str]) -> None:
        """Drop every event of these entities."""
        gone = list(entities)
        self._events = [
            frame.filter(~pl.col(self.config.entity).is_in(gone)) for frame in self._events
        ]

    def state_bytes(self) -> int:
        """Bytes of the kept events."""
        return sum(int(frame.estimated_size()) for frame in self._events)

    def state(self) -> bytes:
        """The kept events, pickled."""
        return pickle.dumps(self._events)

    def restore(self, data: bytes) -> None:
        """Take the events of :meth:`state` back."""
        self._events = pickle.loads(data)


class OnlineEvaluator:
    """A :class:`WindowEvaluator` on :class:`~features.online.OnlineFeatures`, for comparison.

    Each :meth:`evaluate` replays the events in time order through an ``OnlineFeatures``
    without lateness and flushes it: the per-cell Python evaluation, at its usual cost.

    Examples
    --------
    >>> from streams.batch import events_to_frame
    >>> spec = FeatureSpec(name="new_hosts", kind="first_seen", field="host")
    >>> evaluator = OnlineEvaluator([spec], WindowConfig())
    >>> def logon(day, host):
    ...     return Event(datetime(2024, 1, day, 9, tzinfo=UTC), "x", "logon", user="ann",
    ...                  host=host)
    >>> evaluator.evaluate(events_to_frame([logon(1, "pc1")]))["new_hosts"].to_list()
    [0.0]
    >>> evaluator.evaluate(events_to_frame([logon(2, "pc2"), logon(2, "pc1")]))["new_hosts"][0]
    1.0
    """

    def __init__(self, specs: Sequence[FeatureSpec], config: WindowConfig) -> None:
        self.specs = tuple(specs)
        self.config = config
        self._online = OnlineFeatures(specs, config)

    def evaluate(self, events: pl.DataFrame) -> pl.DataFrame:
        """The vectors of the windows of ``events`` (all later than any before)."""
        online = self._online
        ordered = events.sort("ts", maintain_order=True)
        vectors = online.update_frame(ordered) + online.flush()
        return pl.DataFrame(
            {
                ENTITY: [v.entity for v in vectors],
                WINDOW: [v.window_start for v in vectors],
                N_EVENTS: [v.n_events for v in vectors],
                **{s.name: [v.values[s.name] for v in vectors] for s in self.specs},
            },
            schema=_vector_schema(self.specs),
        )

    def forget(self, entities: Collection[str]) -> None:
        """Drop the history of these entities."""
        for entity in entities:
            if entity in self._online._history:
                self._online._forget(entity, EVICTED)
        self._online.evicted.clear()

    def state_bytes(self) -> int:
        """The estimate of :meth:`OnlineFeatures.state_bytes`."""
        return self._online.state_bytes()

    def state(self) -> bytes:
        """The ``OnlineFeatures``, pickled."""
        return pickle.dumps(self._online)

    def restore(self, data: bytes) -> None:
        """Take the state of :meth:`state` back."""
        self._online = pickle.loads(data)


def _vector_schema(specs: Sequence[FeatureSpec]) -> dict[str, pl.DataType]:
    return {
        ENTITY: pl.String(),
        WINDOW: pl.Datetime("us", "UTC"),
        N_EVENTS: pl.Int64(),
        **{spec.name: pl.Float64() for spec in specs},
    }


def _default_factory() -> EvaluatorFactory:
    return SlicedFeatures


def _factory_path(factory: EvaluatorFactory) -> tuple[str, str]:
    return factory.__module__, factory.__qualname__


def _factory_at(path: tuple[str, str]) -> EvaluatorFactory:
    module, name = path
    factory: EvaluatorFactory = getattr(importlib.import_module(module), name)
    return factory


class _Recency:
    """The entities with history of a :class:`ColumnarOnline`: per entity the time of its last
    event and its place in the recency order, in arrays indexed by slot.

    :class:`~features.online.OnlineFeatures` appends an entity to its recency order when a
    window of it closes without history, and moves it to the end at each of its events while
    it has history. Here the order is by *stamp*, a logical clock that ticks once per accepted
    row (the caller gives each row its tick, in arrival order, leaving room between closing
    steps) and once per entity a fold appends: an entity's stamp is the largest of its *born*
    tick (when it was appended) and the ticks of its rows taken since. Its time is the largest
    of the times of the closed windows folded since it was born and of those rows.

    Rows are not looked at as they arrive: a row counts when its window closes (:meth:`fold`
    takes the largest tick and time of each closed cell), or, for the rows of windows still
    open, when the order itself is needed (:meth:`resolve`: before an eviction, an expiry, a
    checkpoint). Both take maxima, so a row counted twice changes nothing, and a row taken
    before its entity was born (the order was not touched by it) is never counted as a move.
    """

    def __init__(self, entity_lasts: Sequence[tuple[str, int]] = ()) -> None:
        """Entities in recency order (least recent first), each with the time of its last
        event; rows taken before carry tick 0 and never move them."""
        n = len(entity_lasts)
        self.slot_of: dict[str, int] = {}
        self.names: list[str] = []
        capacity = max(64, n)
        self.last = np.full(capacity, _FREE, dtype=np.int64)
        self.stamp = np.full(capacity, _FREE, dtype=np.int64)
        self.born = np.zeros(capacity, dtype=np.int64)
        self.free: list[int] = []
        self.clock = 1
        if n:
            self._insert([entity for entity, _ in entity_lasts], [last for _, last in entity_lasts])

    def __len__(self) -> int:
        return len(self.slot_of)

    def fold(self, entities: list[str], lasts: np.ndarray, ticks: np.ndarray) -> None:
        """Record one closed window: its entities (each once, in the order a new one is
        appended), the time of each one's last event in it and the largest tick of its rows."""
        slot_of = self.slot_of
        slots = np.fromiter(map(slot_of.get, entities, repeat(-1)), np.int64, len(entities))
        known = slots >= 0
        if known.all():
            self._raise(slots, lasts, ticks)
            return
        self._raise(slots[known], lasts[known], ticks[known])
        new = np.flatnonzero(~known).tolist()
        self._insert([entities[i] for i in new], lasts[new].tolist())

    def resolve(self, rows: pl.DataFrame, entity: str) -> None:
        """Count the rows taken whose windows are still open (columns ``entity``, ``ts``
        and the tick); rows not taken yet (ticks from :attr:`clock` on) are left out."""
        if not self.slot_of or rows.height == 0:
            return
        slots = np.fromiter(self.slot_of.values(), np.int64, len(self.slot_of))
        table = pl.DataFrame(
            [
                pl.Series(entity, list(self.slot_of), pl.String()),
                pl.Series(_SLOT, slots),
                pl.Series(_BORN, self.born[slots]),
            ]
        )
        moved = (
            rows.lazy()
            .filter(pl.col(_TICK) < self.clock)
            .join(table.lazy(), on=entity)
            .filter(pl.col(_TICK) > pl.col(_BORN))
            .group_by(_SLOT)
            .agg(pl.col(_TICK).max(), pl.col("ts").max().dt.epoch("us").alias(_US))
            .collect()
        )
        if moved.height:
            self._raise(
                moved.get_column(_SLOT).to_numpy(),
                moved.get_column(_US).to_numpy(),
                moved.get_column(_TICK).to_numpy(),
            )

    def min_last(self) -> int:
        """The oldest time of last event (of the state as counted, which only grows)."""
        return int(self.last.min())

    def ordered(self) -> np.ndarray:
        """The slots of the entities, least recently seen first."""
        return np.argsort(self.stamp, kind="stable")[: len(self.slot_of)]

    def least_recent(self, n: int) -> np.ndarray:
        """The slots of the ``n`` least recently seen entities, least recent first."""
        if n >= len(self.slot_of):
            return self.ordered()
        part = np.argpartition(self.stamp, n)[:n]
        return part[np.argsort(self.stamp[part], kind="stable")]

    def remove(self, slots: np.ndarray) -> list[str]:
        """Forget the entities of ``slots``; their names, in that order."""
        names = [self.names[slot] for slot in slots.tolist()]
        for name in names:
            del self.slot_of[name]
        self.last[slots] = _FREE
        self.stamp[slots] = _FREE
        self.free.extend(slots.tolist())
        return names

    def items(self, *, by_recency: bool) -> list[tuple[str, int]]:
        """``(entity, time of its last event)`` least recently seen first, or (not
        ``by_recency``) in the order the entities were appended."""
        if by_recency:
            order = self.ordered()
        else:
            slots = np.fromiter(self.slot_of.values(), np.int64, len(self.slot_of))
            order = slots[np.argsort(self.born[slots], kind="stable")]
        names = self.names
        return list(zip([names[s] for s in order.tolist()], self.last[order].tolist(), strict=True))

    def order_by_last(self) -> None:
        """Put the entities in the order of their last event times (ties: the order they
        were appended), as newly appended now: rows taken before never move them."""
        slots = np.fromiter(self.slot_of.values(), np.int64, len(self.slot_of))
        order = slots[np.lexsort((self.born[slots], self.last[slots]))]
        stamps = self.clock + np.arange(order.size, dtype=np.int64)
        self.stamp[order] = stamps
        self.born[order] = stamps
        self.clock += int(order.size)

    def nbytes(self) -> int:
        """Estimated bytes (walks the names)."""
        size = sys.getsizeof(self.slot_of) + sys.getsizeof(self.names)
        size += sum(sys.getsizeof(entity) + 8 for entity in self.slot_of)
        return size + self.last.nbytes + self.stamp.nbytes + self.born.nbytes

    def _raise(self, slots: np.ndarray, lasts: np.ndarray, ticks: np.ndarray) -> None:
        # Slots are distinct here: one cell per entity and window, one group per slot.
        self.last[slots] = np.maximum(self.last[slots], lasts)
        self.stamp[slots] = np.maximum(self.stamp[slots], ticks)

    def _insert(self, entities: list[str], lasts: list[int]) -> None:
        n = len(entities)
        reused = self.free[len(self.free) - min(n, len(self.free)) :]
        del self.free[len(self.free) - len(reused) :]
        fresh = n - len(reused)
        start = len(self.names)
        self._reserve(start + fresh)
        self.names.extend(entities[len(reused) :])
        for slot, entity in zip(reused, entities, strict=False):
            self.names[slot] = entity
        slots = np.array(reused + list(range(start, start + fresh)), dtype=np.int64)
        self.slot_of.update(zip(entities, slots.tolist(), strict=True))
        stamps = self.clock + np.arange(n, dtype=np.int64)
        self.last[slots] = lasts
        self.stamp[slots] = stamps
        self.born[slots] = stamps
        self.clock += n

    def _reserve(self, size: int) -> None:
        capacity = self.last.size
        if size <= capacity:
            return
        grown = max(size, 2 * capacity)
        extra = grown - capacity
        self.last = np.concatenate((self.last, np.full(extra, _FREE, dtype=np.int64)))
        self.stamp = np.concatenate((self.stamp, np.full(extra, _FREE, dtype=np.int64)))
        self.born = np.concatenate((self.born, np.zeros(extra, dtype=np.int64)))


def _distinct(windows: np.ndarray) -> list[int]:
    """The distinct window indices of a batch, sorted (a batch spans a few windows: counting
    them is cheaper than sorting them)."""
    low, high = int(windows.min()), int(windows.max())
    if high - low > windows.size:
        return list(np.unique(windows).tolist())
    return (np.flatnonzero(np.bincount(windows - low)) + low).tolist()


class ColumnarOnline(_StreamClock):
    """Event-time windowing of micro-batches; closed windows evaluated columnar, all at once.

    Parameters
    ----------
    specs
        The features (unique names); definitions in :mod:`features.spec`.
    config
        Entity field, window length and calendar, as for the batch evaluator.
    allowed_lateness
        How far behind the newest event an event may be and still be counted in its window.
    idle_expiry
        Forget an entity's history after this long without events (event time); ``None``
        keeps it forever. Must be at least one window long.
    max_entities
        Keep at most this many entities' history; the least recently seen one is evicted
        first. ``None``: no cap.
    evaluator
        Builds the evaluator of closed windows from ``(specs, config)``; a module-level class
        or function (checkpoints name it). Default:
        :class:`~features.sliced.SlicedFeatures`.

    Attributes
    ----------
    late
        Late events not yet taken by the caller (when :meth:`update_frame` is given no
        ``late_rows`` list; see :meth:`drain_late`).
    late_events, evictions, expirations
        Counters: late events, histories evicted by ``max_entities``, histories expired by
        ``idle_expiry``.
    evicted
        Entities whose history was evicted or expired, for the caller to drop its own state.
    departed
        The same departures each with its reason, ``(entity, "evicted" | "expired")``, once
        :meth:`track_departures` is called (``None`` before); :meth:`drain_departed` hands
        them over.

    Examples
    --------
    >>> from streams.batch import events_to_frame
    >>> specs = [FeatureSpec(name="logons", kind="count", where={"action": "logon"})]
    >>> online = ColumnarOnline(specs, WindowConfig(window="1h"),
    ...                         allowed_lateness=timedelta(minutes=5))
    >>> def logon(hour, minute):
    ...     return Event(datetime(2024, 1, 1, hour, minute, tzinfo=UTC), "x", "logon", user="ann")
    >>> batch = events_to_frame([logon(9, 10), logon(9, 50), logon(10, 4), logon(10, 6),
    ...                          logon(9, 59)])
    >>> late: list[int] = []
    >>> closed = online.update_columns(batch, late_rows=late)
    >>> [(start.hour, logons) for start, logons in closed.select("window_start", "logons").rows()]
    [(9, 2.0)]
    >>> late, online.late_events  # 09:59 came after 10:06 had closed 09:00
    ([4], 1)
    >>> [(v.window_start.hour, v.n_events) for v in online.flush()]
    [(10, 2)]
    """

    def __init__(
        self,
        specs: Sequence[FeatureSpec],
        config: WindowConfig = WindowConfig(),  # noqa: B008 - frozen, so a shared default is safe
        *,
        allowed_lateness: timedelta = timedelta(0),
        idle_expiry: timedelta | None = None,
        max_entities: int | None = None,
        evaluator: EvaluatorFactory | None = None,
    ) -> None:
        self._start_clock(specs, config, allowed_lateness, idle_expiry, max_entities)
        self._factory = evaluator or _default_factory()
        self._evaluator = self._factory(self.specs, config)
        self._columns = sorted(required_columns(self.specs, config))
        # Accepted events of the open windows (the columns the specs read, and the window).
        self._buffer: list[pl.DataFrame] = []
        self._open_windows: set[int] = set()
        # Entities with history: the time of their last event and their recency.
        self._history: _Recency = _Recency()
        self._no_vectors = pl.DataFrame(schema=_vector_schema(self.specs))
        # The event time the watermark has reached (before the lateness): the newest event
        # time, or less under a hold, or more after advance_to. Never moves back.
        self._reached_us = _NEVER

    # -- taking events ---------------------------------------------------------------------

    def update(self, event: Event) -> list[WindowVector]:
        """Take one event; the vectors of the windows it closed (a late one goes to ``late``)."""
        return self.update_frame(events_to_frame([event]))

    def update_frame(
        self,
        frame: pl.DataFrame,
        *,
        late_rows: list[int] | None = None,
        on_close: Callable[[list[WindowVector]], None] | None = None,
    ) -> list[WindowVector]:
        """:meth:`update_columns`, with the vectors as :class:`WindowVector` objects.

        The same call as :meth:`features.online.OnlineFeatures.update_frame`, with the same
        results.
        """
        if on_close is None:
            return to_vectors(self.update_columns(frame, late_rows=late_rows), self.specs)

        def close(vectors: pl.DataFrame) -> None:
            on_close(to_vectors(vectors, self.specs))

        return to_vectors(
            self.update_columns(frame, late_rows=late_rows, on_close=close), self.specs
        )

    def update_columns(
        self,
        frame: pl.DataFrame,
        *,
        late_rows: list[int] | None = None,
        on_close: Callable[[pl.DataFrame], None] | None = None,
        hold_us: int | None = None,
    ) -> pl.DataFrame:
        """Take a micro-batch of events (rows in arrival order); the vectors of what it closed.

        Parameters
        ----------
        frame
            Columns of :data:`streams.event.POLARS_EVENT_SCHEMA` (at least ``ts``, the entity
            and the fields the specs read); other columns are ignored. Rows with a null
            entity are ignored (they do not move the watermark).
        late_rows
            When given, the row numbers of late events are appended to it (counted in
            :attr:`late_events` but not kept in :attr:`late`); else late rows become Events
            in :attr:`late`.
        on_close
            Called with the vectors of each step that closes windows (the rows up to one
            that moves the watermark past window ends), right after the step and before
            the rest of the batch is taken: :attr:`evicted` then holds what that step
            forgot, as with per-event updates.
        hold_us
            The newest event time (microseconds since the epoch) the watermark may reach
            from this batch, before the lateness: a caller merging sources gives the newest
            time of the slowest other source, so that this batch closes no window that
            source may still add to. Rows are late only below the bound actually reached.
            ``None``: no cap. :attr:`watermark` still tells the newest event time.

        Returns
        -------
        pl.DataFrame
            The vectors closed, in closing order (window start, then entity): ``entity``,
            ``window_start``, ``n_events`` and one Float64 column per spec.
        """
        missing = sorted(set(self._columns) - set(frame.columns))
        if missing:
            raise ValueError(f"events lack the columns {missing} that the feature specs read")
        entity_name = self.config.entity
        base = frame.select(self._normalised(frame))
        # Row numbers in ``frame`` of the rows of ``base``.
        positions: np.ndarray | None = None
        if base.get_column(entity_name).null_count():
            has_entity = base.get_column(entity_name).is_not_null()
            positions = np.flatnonzero(has_entity.to_numpy())
            base = base.filter(has_entity)
        if base.height == 0:
            return self._empty()
        us = base.get_column("ts").dt.epoch("us").to_numpy()
        window_us = self._window_us
        windows = us // window_us
        # The closed-window bound before and after each row, as OnlineFeatures.update moves
        # it: a new maximum time closes every window its watermark has passed. Late rows
        # (below the bound) never raise it, so counting them in the running maximum changes
        # nothing. Without a hold the time reached is the newest time (up to such rows).
        running = np.maximum.accumulate(np.maximum(us, self._reached_us))
        if hold_us is not None:
            running = np.maximum(np.minimum(running, hold_us), self._reached_us)
        self._reached_us = int(running[-1])
        after = np.maximum((running - self._lateness_us) // window_us, self._closed_before)
        before = np.concatenate(([self._closed_before], after[:-1]))
        late = windows < before
        if late.any():
            late_positions = np.flatnonzero(late) if positions is None else positions[late]
            self.late_events += int(late_positions.size)
            if late_rows is not None:
                late_rows.extend(late_positions.tolist())
            else:
                self.late.extend(events_from_frame(frame[late_positions]))
        on_time = ~late
        if not on_time.any():
            return self._empty()
        self._max_us = max(self._max_us, int(us[on_time].max()))
        # Steps end at the rows that close windows (where the bound rises).
        ends = np.flatnonzero(after > before)
        accepted = base.with_columns(pl.Series(_WINDOW_INDEX, windows))
        if late.any():
            accepted = accepted.filter(pl.Series(on_time))
        ticks, clocks = self._ticks(ends, on_time, accepted.height)
        self._buffer.append(accepted.with_columns(pl.Series(_TICK, ticks)))
        self._open_windows.update(_distinct(windows[on_time] if late.any() else windows))
        closed: list[pl.DataFrame] = []
        for end, clock in zip(ends.tolist(), clocks, strict=False):
            assert clock >= self._history.clock
            self._history.clock = clock
            vectors = self._advance(int(running[end]) - self._lateness_us)
            if vectors.height:
                if on_close is not None:
                    on_close(vectors)
                closed.append(vectors)
        self._history.clock = clocks[-1]
        return pl.concat(closed) if closed else self._empty()

    def _ticks(self, ends: np.ndarray, on_time: np.ndarray, n: int) -> tuple[np.ndarray, list[int]]:
        """The tick of each accepted row, and the recency clock at each closing step (then
        after the batch).

        The rows of a step (up to a row that closes windows) are taken before the windows
        close, the entities those windows append after them, the next step's rows after
        those: between steps the ticks leave a gap wider than the entities a step can append
        (one per closed cell, so at most one per buffered row).
        """
        base = self._history.clock
        gap = n + sum(frame.height for frame in self._buffer) + 1
        if ends.size == 0:
            return base + np.arange(n, dtype=np.int64), [base + n]
        rows = np.flatnonzero(on_time)
        steps = np.searchsorted(ends, rows, side="left")
        ticks = base + np.arange(n, dtype=np.int64) + steps * gap
        # Accepted rows up to each step's closing row (that row is never late).
        taken = np.searchsorted(rows, ends, side="right")
        clocks = base + taken + np.arange(ends.size, dtype=np.int64) * gap
        return ticks, [*clocks.tolist(), base + n + int(ends.size) * gap]

    def _normalised(self, frame: pl.DataFrame) -> list[pl.Expr]:
        """The columns the specs read, with the event schema's types (``attrs`` as text)."""
        exprs: list[pl.Expr] = []
        for name in self._columns:
            column = pl.col(name)
            if name == "attrs" and isinstance(frame.schema[name], pl.Struct):
                column = column.struct.json_encode()
            exprs.append(column.cast(POLARS_EVENT_SCHEMA[name]))
        return exprs

    # -- closing windows -------------------------------------------------------------------

    def flush(self) -> list[WindowVector]:
        """Close every open window (end of stream); later events for them count as late."""
        return to_vectors(self.flush_columns(), self.specs)

    def flush_columns(self) -> pl.DataFrame:
        """:meth:`flush`, the vectors as a frame."""
        if not self._open_windows:
            return self._empty()
        return self._advance((max(self._open_windows) + 1) * self._window_us)

    def advance_to(
        self, event_us: int, *, on_close: Callable[[pl.DataFrame], None] | None = None
    ) -> pl.DataFrame:
        """Let the watermark reach event time ``event_us`` (less the lateness) with no event.

        For a caller whose hold has risen (the slow source caught up, or stopped counting)
        or whose input has gone quiet: the windows the new watermark has passed close now,
        as a new event of that time would close them, and later events for them are late.
        A time at or below the one reached changes nothing.

        Parameters
        ----------
        event_us
            Microseconds since the epoch.
        on_close
            Called with the vectors closed (when there are any), as by
            :meth:`update_columns`.

        Returns
        -------
        pl.DataFrame
            The vectors closed, as :meth:`update_columns` returns them.
        """
        if event_us <= self._reached_us:
            return self._empty()
        self._reached_us = event_us
        horizon_us = event_us - self._lateness_us
        # As update_columns: the clock moves (and idle entities expire) only when a window
        # closes.
        if horizon_us // self._window_us <= self._closed_before:
            return self._empty()
        vectors = self._advance(horizon_us)
        if vectors.height and on_close is not None:
            on_close(vectors)
        return vectors

    def _advance(self, horizon_us: int) -> pl.DataFrame:
        self._horizon_us = max(self._horizon_us, horizon_us)
        self._closed_before = self._horizon_us // self._window_us
        closing = sorted(w for w in self._open_windows if w < self._closed_before)
        vectors = self._close(closing) if closing else self._empty()
        self._expire_idle()
        return vectors

    def _close(self, closing: list[int]) -> pl.DataFrame:
        """Evaluate the windows ``closing`` (sorted) and fold their entities into history."""
        bound = closing[-1] + 1
        every = (
            pl.concat(self._buffer, how="vertical") if len(self._buffer) > 1 else self._buffer[0]
        )
        in_closing = pl.col(_WINDOW_INDEX) < bound
        rows = every.filter(in_closing)
        rest = every.filter(~in_closing)
        self._buffer = [rest] if rest.height else []
        self._open_windows.difference_update(closing)
        entity = self.config.entity
        last_and_tick = (pl.col("ts").max().dt.epoch("us").alias(_US), pl.col(_TICK).max())
        by_window: dict[tuple[Any, ...], pl.DataFrame]
        if len(closing) == 1:
            # The usual close, one window: grouping by the entity alone is cheaper.
            by_window = {(closing[0],): rows.group_by(entity).agg(*last_and_tick).sort(entity)}
        else:
            cells = (
                rows.group_by(_WINDOW_INDEX, entity).agg(*last_and_tick).sort(_WINDOW_INDEX, entity)
            )
            by_window = cells.partition_by(_WINDOW_INDEX, as_dict=True, maintain_order=True)
        # Windows are evaluated together unless the cap forgets entities after one of them:
        # the evaluator must forget them before it sees a later window.
        results: list[pl.DataFrame] = []
        first = closing[0]
        for key, cell in by_window.items():
            window = key[0]
            assert isinstance(window, int)
            forgotten = self._fold(cell, rows, window)
            if forgotten:
                chunk = rows.filter(pl.col(_WINDOW_INDEX).is_between(first, window))
                results.append(self._evaluate(chunk))
                self._evaluator.forget(forgotten)
                first = window + 1
            logger.debug("closed window %d: %d entities", window, cell.height)
        if first < bound:
            results.append(self._evaluate(rows.filter(pl.col(_WINDOW_INDEX) >= first)))
        return pl.concat(results) if len(results) > 1 else results[0]

    def _evaluate(self, rows: pl.DataFrame) -> pl.DataFrame:
        vectors = self._evaluator.evaluate(rows.drop(_WINDOW_INDEX, _TICK))
        return vectors.sort(WINDOW, ENTITY)

    def _fold(self, cell: pl.DataFrame, rows: pl.DataFrame, window: int) -> list[str]:
        """Record the entities of one closed window (``cell``: one row per entity, sorted,
        of the windows ``rows`` being closed); the ones the cap then forgets."""
        history = self._history
        entity = self.config.entity
        history.fold(
            cell.get_column(entity).to_list(),
            cell.get_column(_US).to_numpy(),
            cell.get_column(_TICK).to_numpy(),
        )
        if self.max_entities is None or len(history) <= self.max_entities:
            return []
        # The rows of the later windows being closed and of the open ones have been taken:
        # they count in the order.
        later = rows.filter(pl.col(_WINDOW_INDEX) > window)
        history.resolve(self._unfolded([later, *self._buffer]), entity)
        forgotten = history.remove(history.least_recent(len(history) - self.max_entities))
        self.evictions += len(forgotten)
        logger.debug(
            "evicted %d entities (cap %d), first %s",
            len(forgotten),
            self.max_entities,
            forgotten[:5],
        )
        self._record_departures(forgotten, EVICTED)
        return forgotten

    def _unfolded(self, frames: list[pl.DataFrame]) -> pl.DataFrame:
        """The rows of ``frames`` (the windows not folded yet) that :class:`_Recency` reads."""
        columns = [self.config.entity, "ts", _TICK]
        kept = [frame.select(columns) for frame in frames if frame.height]
        return pl.concat(kept) if kept else frames[0].select(columns)

    def _expire_idle(self) -> None:
        if self._idle_us is None:
            return
        # Ordered by last event arrival, which is event-time order up to the allowed
        # lateness: an idle entity behind a busy one waits at most that long.
        limit = self._horizon_us - self._idle_us
        history = self._history
        # The times as counted only grow: none below the limit, none expires.
        if not history or history.min_last() >= limit:
            return
        if self._buffer:
            history.resolve(self._unfolded(self._buffer), self.config.entity)
        order = history.ordered()
        fresh = history.last[order] >= limit
        stop = int(np.argmax(fresh)) if fresh.any() else int(order.size)
        if stop == 0:
            return
        forgotten = history.remove(order[:stop])
        self.expirations += len(forgotten)
        logger.debug("expired %d idle entities, first %s", len(forgotten), forgotten[:5])
        self._evaluator.forget(forgotten)
        self._record_departures(forgotten, EXPIRED)

    def _empty(self) -> pl.DataFrame:
        return self._no_vectors.clear()

    # -- metrics and checkpoints -----------------------------------------------------------

    @property
    def newest_us(self) -> int | None:
        """The newest event time taken (microseconds since the epoch); ``None`` before any."""
        return None if self._max_us == _NEVER else self._max_us

    @property
    def closing_watermark(self) -> datetime | None:
        """The watermark windows are closed by: :attr:`watermark`, or less under a hold, or
        more after :meth:`advance_to`; ``None`` before the first event."""
        if self._reached_us == _NEVER:
            return None
        return _EPOCH + timedelta(microseconds=self._reached_us - self._lateness_us)

    def track_recency(self) -> None:
        """Track entity recency in a state that did not (restored from a checkpoint written
        without a cap or an expiry): its entities, each with the time of its last event, are
        put in that order, the one a cap evicts from and an expiry scans."""
        if self._track_recency:
            return
        self._history.order_by_last()
        self._track_recency = True

    def recency(self) -> list[tuple[str, int]]:
        """The entities with history, each with the time of its last event (microseconds
        since the epoch), least recently seen first: the order a cap evicts in and an expiry
        scans. Without recency tracking, the order in which their first windows closed.

        Examples
        --------
        >>> from streams.batch import events_to_frame
        >>> specs = [FeatureSpec(name="logons", kind="count", where={"action": "logon"})]
        >>> online = ColumnarOnline(specs, WindowConfig(window="1h"), max_entities=10)
        >>> def logon(hour, minute, user):
        ...     return Event(datetime(2024, 1, 1, hour, minute, tzinfo=UTC), "x", "logon",
        ...                  user=user)
        >>> batch = [logon(9, 0, "ann"), logon(9, 30, "bob"), logon(10, 0, "cyd"),
        ...          logon(10, 30, "ann")]
        >>> _ = online.update_columns(events_to_frame(batch))
        >>> # 10:00 closed 09:00 (ann, bob appended by name); then ann was seen again
        >>> [entity for entity, _ in online.recency()]
        ['bob', 'ann']
        """
        if self._track_recency and self._buffer:
            self._history.resolve(self._unfolded(self._buffer), self.config.entity)
        return self._history.items(by_recency=self._track_recency)

    @property
    def evaluator(self) -> WindowEvaluator:
        """The evaluator of closed windows (it holds the feature history)."""
        return self._evaluator

    @property
    def open_cells(self) -> int:
        """(entity, window) cells still open."""
        if not self._buffer:
            return 0
        every = pl.concat(self._buffer)
        return int(every.select(pl.struct(_WINDOW_INDEX, self.config.entity).n_unique()).item())

    def state_bytes(self) -> int:
        """Estimated memory of the state in bytes (evaluator history, recency, open windows).

        Walks the recency table, so call it for metrics, not per batch.
        """
        size = self._evaluator.state_bytes()
        size += sum(int(frame.estimated_size()) for frame in self._buffer)
        return size + self._history.nbytes()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_evaluator"], state["_factory"]
        state["factory"] = _factory_path(self._factory)
        state["evaluator"] = self._evaluator.state()
        # The layout of the states written when the recency was an ordered dict, which
        # __setstate__ reads: entity -> time of its last event, least recently seen first,
        # and the rows of the open windows without their ticks (all taken already).
        state["_history"] = OrderedDict(self.recency())
        state["_buffer"] = [frame.drop(_TICK) for frame in self._buffer]
        # Events with default attrs hold a read-only mapping proxy, which does not pickle.
        state["late"] = [_event_fields(event) for event in self.late]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        factory = _factory_at(state.pop("factory"))
        saved = state.pop("evaluator")
        late = state.pop("late")
        # States saved before holds: the time reached was the newest time.
        state.setdefault("_reached_us", state["_max_us"])
        # States saved before departures were recorded: not tracked.
        state.setdefault("departed", None)
        history: OrderedDict[str, int] = state.pop("_history")
        state["_buffer"] = [
            frame.with_columns(pl.lit(0, pl.Int64()).alias(_TICK)) for frame in state["_buffer"]
        ]
        self.__dict__.update(state)
        self._history = _Recency(list(history.items()))
        self.late = [_event_from_fields(fields) for fields in late]
        self._factory = factory
        self._evaluator = factory(self.specs, self.config)
        self._evaluator.restore(saved)


def to_vectors(vectors: pl.DataFrame, specs: Sequence[FeatureSpec]) -> list[WindowVector]:
    """Rows of an evaluator's frame as :class:`~features.online.WindowVector` objects.

    Examples
    --------
    >>> frame = pl.DataFrame({"entity": ["ann"], "window_start": [datetime(2024, 1, 1)],
    ...                       "n_events": [3], "logons": [2.0]})
    >>> spec = FeatureSpec(name="logons", kind="count", where={"action": "logon"})
    >>> [(v.entity, v.n_events, v.values) for v in to_vectors(frame, [spec])]
    [('ann', 3, {'logons': 2.0})]
    """
    if vectors.height == 0:
        return []
    names = [spec.name for spec in specs]
    columns = [vectors.get_column(name).to_list() for name in names]
    return [
        WindowVector(entity, start, n, dict(zip(names, values, strict=True)))
        for entity, start, n, *values in zip(
            vectors.get_column(ENTITY).to_list(),
            vectors.get_column(WINDOW).to_list(),
            vectors.get_column(N_EVENTS).to_list(),
            *columns,
            strict=True,
        )
    ]
