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
evaluator (:meth:`WindowEvaluator.forget`) before any later window is evaluated.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import sys
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import numpy as np
import polars as pl

from features.batch import ENTITY, N_EVENTS, WINDOW, evaluate_batch, required_columns
from features.online import (
    _NEVER,
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

_ROW: Final = "__row"
_US: Final = "__us"
_WINDOW_INDEX: Final = "__window"
_PIECE: Final = "__piece"


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
                self._online._forget(entity)
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
        # Entities with history -> time of their last event, in recency order (least first).
        self._history: OrderedDict[str, int] = OrderedDict()
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
        self._buffer.append(accepted)
        self._open_windows.update(np.unique(windows[on_time]).tolist())
        touches = self._touches(accepted, ends, on_time) if self._track_recency else {}
        closed: list[pl.DataFrame] = []
        for step, end in enumerate(ends.tolist()):
            self._touch(touches.get(step))
            vectors = self._advance(int(running[end]) - self._lateness_us)
            if vectors.height:
                if on_close is not None:
                    on_close(vectors)
                closed.append(vectors)
        self._touch(touches.get(len(ends)))
        return pl.concat(closed) if closed else self._empty()

    def _normalised(self, frame: pl.DataFrame) -> list[pl.Expr]:
        """The columns the specs read, with the event schema's types (``attrs`` as text)."""
        exprs: list[pl.Expr] = []
        for name in self._columns:
            column = pl.col(name)
            if name == "attrs" and isinstance(frame.schema[name], pl.Struct):
                column = column.struct.json_encode()
            exprs.append(column.cast(POLARS_EVENT_SCHEMA[name]))
        return exprs

    def _touches(
        self, accepted: pl.DataFrame, ends: np.ndarray, on_time: np.ndarray
    ) -> dict[int, tuple[list[str], list[int]]]:
        """Per step, the entities with events in it by their last row, and that event's time.

        OnlineFeatures.update moves an entity with history to the end of the recency order
        at each of its events: within a step, the order they end up in is that of their
        last events.
        """
        # The step of each accepted row: how many closing rows precede it.
        rows = np.flatnonzero(on_time)
        steps = np.searchsorted(ends, rows, side="left")
        table = (
            accepted.select(
                pl.Series(_PIECE, steps),
                pl.col(self.config.entity),
                pl.Series(_ROW, rows),
                pl.col("ts").dt.epoch("us").alias(_US),
            )
            .group_by(_PIECE, self.config.entity)
            .agg(pl.col(_ROW).max(), pl.col(_US).max())
            .sort(_PIECE, _ROW)
        )
        touches: dict[int, tuple[list[str], list[int]]] = {}
        for key, part in table.partition_by(_PIECE, as_dict=True, maintain_order=True).items():
            step = key[0]
            assert isinstance(step, int)
            touches[step] = (
                part.get_column(self.config.entity).to_list(),
                part.get_column(_US).to_list(),
            )
        return touches

    def _touch(self, touched: tuple[list[str], list[int]] | None) -> None:
        if touched is None:
            return
        history = self._history
        for entity, last in zip(*touched, strict=True):
            known = history.get(entity)
            if known is not None:
                if last > known:
                    history[entity] = last
                history.move_to_end(entity)

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
        cells = (
            rows.group_by(_WINDOW_INDEX, self.config.entity)
            .agg(pl.col("ts").max().dt.epoch("us").alias(_US))
            .sort(_WINDOW_INDEX, self.config.entity)
        )
        by_window = cells.partition_by(_WINDOW_INDEX, as_dict=True, maintain_order=True)
        # Windows are evaluated together unless the cap forgets entities after one of them:
        # the evaluator must forget them before it sees a later window.
        results: list[pl.DataFrame] = []
        first = closing[0]
        for key, cell in by_window.items():
            window = key[0]
            assert isinstance(window, int)
            forgotten = self._fold(
                cell.get_column(self.config.entity).to_list(), cell.get_column(_US).to_list()
            )
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
        vectors = self._evaluator.evaluate(rows.drop(_WINDOW_INDEX))
        return vectors.sort(WINDOW, ENTITY)

    def _fold(self, entities: list[str], lasts: list[int]) -> list[str]:
        """Record the entities of one closed window; the ones the cap then forgets."""
        history = self._history
        for entity, last in zip(entities, lasts, strict=True):
            known = history.get(entity)
            if known is None or last > known:
                history[entity] = last
        if self.max_entities is None or len(history) <= self.max_entities:
            return []
        forgotten: list[str] = []
        while len(history) > self.max_entities:
            entity, _ = history.popitem(last=False)
            forgotten.append(entity)
            self.evictions += 1
            logger.debug("evicted entity %r (cap %d)", entity, self.max_entities)
        self.evicted.extend(forgotten)
        return forgotten

    def _expire_idle(self) -> None:
        if self._idle_us is None:
            return
        # Ordered by last event arrival, which is event-time order up to the allowed
        # lateness: an idle entity behind a busy one waits at most that long.
        limit = self._horizon_us - self._idle_us
        history = self._history
        forgotten: list[str] = []
        while history:
            entity, last = next(iter(history.items()))
            if last >= limit:
                break
            history.popitem(last=False)
            forgotten.append(entity)
            self.expirations += 1
            logger.debug("expired idle entity %r", entity)
        if forgotten:
            self._evaluator.forget(forgotten)
            self.evicted.extend(forgotten)

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
        self._history = OrderedDict(sorted(self._history.items(), key=lambda item: item[1]))
        self._track_recency = True

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
        size += sys.getsizeof(self._history)
        size += sum(sys.getsizeof(entity) + 32 for entity in self._history)
        return size

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_evaluator"], state["_factory"]
        state["factory"] = _factory_path(self._factory)
        state["evaluator"] = self._evaluator.state()
        # Events with default attrs hold a read-only mapping proxy, which does not pickle.
        state["late"] = [_event_fields(event) for event in self.late]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        factory = _factory_at(state.pop("factory"))
        saved = state.pop("evaluator")
        late = state.pop("late")
        # States saved before holds: the time reached was the newest time.
        state.setdefault("_reached_us", state["_max_us"])
        self.__dict__.update(state)
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
