"""Online (incremental) evaluation of feature specs: the daemon's path, one event at a time.

:class:`OnlineFeatures` keeps, per entity, exactly the state listed in the module docstring
of :mod:`features.spec`, and emits one :class:`WindowVector` per (entity, window) when the
event-time watermark closes the window. Replaying events in time order gives the same
numbers as :func:`features.batch.evaluate_batch` on the same events (the parity test).

Time and lateness
-----------------
Windows are event-time windows aligned to UTC like the batch path. The watermark is the
largest event time seen minus ``allowed_lateness``; a window closes when the watermark
reaches its end. Out-of-order events within the allowed lateness land in their (still open)
window. An event whose window has already closed is *late*: it is counted
(:attr:`OnlineFeatures.late_events`) and kept in :attr:`OnlineFeatures.late` for the caller
to dead-letter; it never changes a vector that was already emitted.

All windows with the same start close together and in start order: first every vector of
that start is computed from the history of strictly earlier windows, then the windows are
folded into the history. That is what makes the population features (``rarity``,
``rare_count``) agree with the batch definition ("other entities, windows strictly before").

Bounded memory
--------------
* Open windows hold per-cell accumulators (counters, the values of the window, per-value
  timestamps for ``periodicity``); they are dropped when the window closes.
* History per entity: per value source the values seen in closed windows as a sorted
  ``array('Q')`` of 64-bit stable hashes (8 bytes a value), 24 hour counters per hour
  source, and the last event time.
* ``idle_expiry``: an entity without events for that long (in event time, against the
  watermark) loses its history. ``max_entities``: above that many entities with history, the
  least recently seen one loses its history (:attr:`OnlineFeatures.evictions`).
* Consequence of forgetting an entity: it comes back as a new entity. Its next window is its
  "first window" again, so its ``first_seen`` features are 0 there (nothing can be called
  new without history, and a returning entity must not flood alerts with "new" values), and
  its hour features restart their warm-up. Its contribution to the population tables is
  withdrawn, so ``rarity`` and ``rare_count`` describe the population of entities still
  tracked (counting it again when it returns would count it twice).

Population tables (``rarity``, ``rare_count``) are global: per value source, a table from
value hash to the number of tracked entities that had the value, and the number of tracked
entities that had any value.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import logging
import math
import operator
import re
import sys
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence, Sized
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple, cast

import numpy as np
import polars as pl

from features.batch import field_expr, mask_expr
from features.spec import FeatureSpec, WindowConfig
from streams.batch import events_from_frame
from streams.event import Event

logger = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
_EPOCH_ORDINAL: Final = _EPOCH.toordinal()
_HOUR_US: Final = 3_600_000_000
_DAY_US: Final = 24 * _HOUR_US
_WINDOW_US: Final = {"1d": _DAY_US, "1h": _HOUR_US}
# Far enough in the past for any event, small enough to stay a machine-sized int.
_NEVER: Final = -(2**62)
#: Why an entity's history was forgotten (:meth:`OnlineFeatures.drain_departed`): the
#: ``max_entities`` cap evicted it, or ``idle_expiry`` expired it.
EVICTED: Final = "evicted"
EXPIRED: Final = "expired"
# Unicode White_Space: what polars' ``str.strip_chars()`` strips (Python's ``str.strip()``
# would also strip the separators U+001C..U+001F, and break parity on them).
_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_ANGLE: Final = 2.0 * math.pi / 24.0
_SIN: Final = tuple(math.sin(h * _ANGLE) for h in range(24))
_COS: Final = tuple(math.cos(h * _ANGLE) for h in range(24))
_NO_HOURS: Final = array("q", [0] * 24)
# Bounds on the memos of compiled per-event programs (one per combination of filter inputs)
# and of value hashes.
_MAX_PROGRAMS: Final = 65_536
_MAX_MEMO: Final = 65_536

_VALUE_KINDS: Final = frozenset(
    {"distinct", "first_seen", "rarity", "rare_count", "periodicity", "max_per_target"}
)
_SEEN_KINDS: Final = frozenset({"first_seen", "rarity", "rare_count"})
_POPULATION_KINDS: Final = frozenset({"rarity", "rare_count"})
_HOUR_KINDS: Final = frozenset({"unusual_hour", "hour_deviation"})
_SIMPLE_KINDS: Final = frozenset(
    {"count", "failure_count", "off_hours", "weekend", "sum", "max_split"}
)

_Condition = tuple[str, frozenset[str]]
_FilterKey = tuple[_Condition, ...]
_Getter = Callable[[Event], object]


@dataclasses.dataclass(frozen=True, slots=True)
class WindowVector:
    """The feature values of one entity in one closed window.

    Attributes
    ----------
    entity
        The user or host (``event.<config.entity>``).
    window_start
        Start of the window, tz-aware UTC.
    n_events
        All events of the entity in the window (matching a spec's filter or not).
    values
        Feature name -> value, in spec order.

    Examples
    --------
    >>> v = WindowVector("ann", datetime(2024, 1, 1, tzinfo=UTC), 3, {"logons": 2.0})
    >>> v.values["logons"], v.n_events
    (2.0, 3)
    """

    entity: str
    window_start: datetime
    n_events: int
    values: dict[str, float]


def stable_hash(value: str) -> int:
    """A 64-bit hash of a string that is the same in every process (checkpoints hold it).

    Examples
    --------
    >>> stable_hash("example.com") == stable_hash("example.com") != stable_hash("example.org")
    True
    >>> 0 <= stable_hash("") < 2**64
    True
    """
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _text(raw: object) -> str | None:
    """A field's value as the batch path's ``cast(pl.String)`` sees it."""
    if raw is None or isinstance(raw, str):
        return raw
    return str(raw)


def _number(raw: object) -> float:
    """A field read as a number like polars' non-strict cast to Float64 (else 0)."""
    if raw is None:
        return 0.0
    if isinstance(raw, int | float):
        return float(raw)
    text = str(raw)
    # Python's float() also accepts surrounding blanks, digit underscores and non-ASCII
    # digits; polars does not.
    if not text or not text.isascii() or "_" in text or text.strip() != text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return 0.0


def _split_values(text: str, split: str) -> list[str]:
    if not split:
        return [text] if text else []
    return [part for part in (p.strip(_WHITESPACE) for p in text.split(split)) if part]


def _getter(name: str) -> _Getter:
    if name.startswith("attrs."):
        key = name[len("attrs.") :]
        return lambda event: event.attrs.get(key)
    return operator.attrgetter(name)


def _filter_key(spec: FeatureSpec) -> _FilterKey:
    conditions: list[_Condition] = [
        (key, frozenset((value,) if isinstance(value, str) else value))
        for key, value in spec.where.items()
    ]
    if spec.kind == "failure_count":
        conditions.append(("outcome", frozenset({"failure"})))
    return tuple(sorted(conditions, key=lambda c: (c[0], sorted(c[1]))))


class _ValueSource(NamedTuple):
    """One (field, filter, split): the values a group of value specs reads."""

    field: str
    filter_key: _FilterKey
    split: str
    timed: bool  # keeps per-value timestamps (periodicity); else per-value counts
    slot: int  # index into the cell's ``times`` (timed) or ``counts`` list
    seen_slot: int  # index into the history's ``seen`` list, -1 if no history needed
    population: bool  # rarity / rare_count read the global population tables


class _Program(NamedTuple):
    """What one event does to its cell, given the inputs of every filter (memoised)."""

    increments: tuple[int, ...]
    sums: tuple[tuple[int, _Getter], ...]
    max_splits: tuple[tuple[int, _Getter, str], ...]
    counted: tuple[tuple[int, _Getter, str], ...]  # (counts slot, getter, split)
    timed: tuple[tuple[int, _Getter, str], ...]  # (times slot, getter, split)
    hours: tuple[int, ...]
    # Pattern conditions still to test before the program above applies: (condition id,
    # getter, regex). Non-empty only for the first-level program of a memo key.
    patterns: tuple[tuple[int, _Getter, re.Pattern[str]], ...] = ()


class _Output(NamedTuple):
    """How to compute one spec's value when a window closes (params looked up once)."""

    name: str
    kind: str
    slot: int  # accumulator slot, value source index or hour source index, by kind
    threshold: float  # min_events (periodicity: at least 2), or rare_count's max_entities
    share: float  # unusual_hour's min_share
    mean: bool  # rarity aggregated by mean (else max)


class _Cell:
    """Accumulators of one (entity, window) while the window is open."""

    __slots__ = ("acc", "counts", "hours", "last_us", "n", "times")

    def __init__(self, n_acc: int, n_counts: int, n_times: int, n_hours: int) -> None:
        self.n = 0
        self.last_us = _NEVER
        self.acc = [0.0] * n_acc
        self.counts: list[dict[str, int] | None] = [None] * n_counts
        self.times: list[dict[str, list[int]] | None] = [None] * n_times
        self.hours: list[list[int] | None] = [None] * n_hours

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.n, self.last_us, self.acc, self.counts, self.times, self.hours)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.n, self.last_us, self.acc, self.counts, self.times, self.hours = state


class _History:
    """What an entity's closed windows leave behind."""

    __slots__ = ("hours", "last_us", "seen")

    def __init__(self, n_seen: int, n_hours: int) -> None:
        self.last_us = _NEVER
        self.seen = [array("Q") for _ in range(n_seen)]
        self.hours = [array("q", _NO_HOURS) for _ in range(n_hours)]

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.last_us, self.seen, self.hours)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.last_us, self.seen, self.hours = state


def _add_all(sorted_hashes: array[int], new: Sequence[int]) -> array[int]:
    """``sorted_hashes`` with ``new`` (distinct, absent) added, still sorted."""
    if len(new) > 32:
        return array("Q", sorted([*sorted_hashes, *new]))
    for value in new:
        bisect.insort(sorted_hashes, value)
    return sorted_hashes


def _regularity(times: list[int]) -> float:
    """``max(0, 1 - sd / mu)`` of the inter-arrival times, 0 when ``mu == 0``."""
    times.sort()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    mean = sum(gaps) / len(gaps)
    if mean <= 0:
        return 0.0
    variance = sum((g - mean) ** 2 for g in gaps) / len(gaps)
    return max(0.0, 1.0 - math.sqrt(variance) / mean)


class _StreamClock:
    """What both stream evaluators keep alike: their settings and counters, the event-time
    bookkeeping of the watermark, and the late events (:class:`OnlineFeatures`,
    :class:`features.columnar.ColumnarOnline`)."""

    late: list[Event]
    departed: list[tuple[str, str]] | None
    _history: Sized
    _max_us: int
    _lateness_us: int

    def _start_clock(
        self,
        specs: Sequence[FeatureSpec],
        config: WindowConfig,
        allowed_lateness: timedelta,
        idle_expiry: timedelta | None,
        max_entities: int | None,
    ) -> int:
        """Refuse settings a stream evaluator cannot honour, keep the others and zero the
        counters; the window length in microseconds."""
        names = [spec.name for spec in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names: {duplicates}")
        window_us = _WINDOW_US[config.window]
        if idle_expiry is not None and idle_expiry // _ONE_US < window_us:
            raise ValueError(
                f"idle_expiry {idle_expiry} is shorter than a window ({config.window}): "
                "entities would be forgotten between their own events"
            )
        self._track_recency = idle_expiry is not None or max_entities is not None
        self.set_limits(allowed_lateness, max_entities)
        self.specs = tuple(specs)
        self.config = config
        self.idle_expiry = idle_expiry
        self.late = []
        self.late_events = 0
        self.evictions = 0
        self.expirations = 0
        # Entities whose history was evicted or expired, for the caller to drop its own state.
        self.evicted: list[str] = []
        # The same departures with their reasons, once track_departures() is called.
        self.departed = None
        self._window_us = window_us
        self._idle_us = None if idle_expiry is None else idle_expiry // _ONE_US
        self._max_us = _NEVER
        # Every window ending at or before the horizon is closed.
        self._horizon_us = _NEVER
        self._closed_before = _NEVER // window_us  # window indices below are closed
        return window_us

    @property
    def tracks_recency(self) -> bool:
        """Whether the clock records when each entity was last seen (expiry or a cap needs it)."""
        return self._track_recency

    def set_limits(self, allowed_lateness: timedelta, max_entities: int | None) -> None:
        """Set the allowed lateness and the entity cap (at the start, and when a restored
        state adopts a changed config: windows already closed stay closed, a lower cap
        evicts at the next closed window). A cap needs recency tracking, which only a state
        that tracked it has."""
        if allowed_lateness < timedelta(0):
            raise ValueError(f"allowed_lateness must be >= 0, not {allowed_lateness}")
        if max_entities is not None and max_entities < 1:
            raise ValueError(f"max_entities must be >= 1, not {max_entities}")
        if max_entities is not None and not self._track_recency:
            raise ValueError(f"max_entities {max_entities} needs entity recency tracking")
        self.allowed_lateness = allowed_lateness
        self._lateness_us = allowed_lateness // _ONE_US
        self.max_entities = max_entities

    def set_idle_expiry(self, idle_expiry: timedelta | None) -> None:
        """Set or clear the idle expiry (a restored state adopting a changed config); it acts
        from the next closed window on. An expiry needs recency tracking."""
        if idle_expiry is not None and idle_expiry // _ONE_US < self._window_us:
            raise ValueError(
                f"idle_expiry {idle_expiry} is shorter than a window ({self.config.window})"
            )
        if idle_expiry is not None and not self._track_recency:
            raise ValueError(f"idle_expiry {idle_expiry} needs entity recency tracking")
        self.idle_expiry = idle_expiry
        self._idle_us = None if idle_expiry is None else idle_expiry // _ONE_US

    def drain_late(self) -> list[Event]:
        """Hand over the late events collected so far (for dead-lettering) and forget them."""
        late, self.late = self.late, []
        return late

    def track_departures(self) -> None:
        """Record why each entity's history is forgotten, for :meth:`drain_departed`.

        Off until called (an undrained record would grow with every departure); a state
        restored from a checkpoint keeps the setting it was saved with.
        """
        if self.departed is None:
            self.departed = []

    def drain_departed(self) -> list[tuple[str, str]]:
        """Hand over the departures recorded since the last call and forget them.

        Each is ``(entity, reason)``: :data:`EVICTED` (the ``max_entities`` cap) or
        :data:`EXPIRED` (``idle_expiry``), in the order the entities were appended to
        :attr:`evicted` (which the caller may clear on its own). Empty unless
        :meth:`track_departures` was called.
        """
        if not self.departed:
            return []
        departed, self.departed = self.departed, []
        return departed

    def _record_departures(self, entities: Sequence[str], reason: str) -> None:
        """Append forgotten entities to :attr:`evicted` and, when tracked, to :attr:`departed`."""
        self.evicted.extend(entities)
        if self.departed is not None:
            self.departed.extend((entity, reason) for entity in entities)

    @property
    def entities(self) -> int:
        """Entities with history state (the ones memory is spent on between windows)."""
        return len(self._history)

    @property
    def watermark(self) -> datetime | None:
        """Newest event time minus the allowed lateness; ``None`` before the first event."""
        if self._max_us == _NEVER:
            return None
        return _EPOCH + timedelta(microseconds=self._max_us - self._lateness_us)


class OnlineFeatures(_StreamClock):
    """Incremental evaluation of feature specs, per entity and event-time window.

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

    Attributes
    ----------
    late
        Late events not yet taken by the caller (see :meth:`drain_late`).
    late_events, evictions, expirations
        Counters: late events, histories evicted by ``max_entities``, histories expired by
        ``idle_expiry``.
    evicted
        Entities whose history was evicted or expired, for the caller to drop its own state.
    departed
        The same departures each with its reason (see :meth:`drain_departed`), once
        :meth:`track_departures` is called; ``None`` before.

    Examples
    --------
    >>> from datetime import datetime, timedelta, UTC
    >>> specs = [FeatureSpec(name="logons", kind="count", where={"action": "logon"})]
    >>> online = OnlineFeatures(specs, WindowConfig(window="1h"),
    ...                         allowed_lateness=timedelta(minutes=5))
    >>> def logon(hour, minute):
    ...     return Event(datetime(2024, 1, 1, hour, minute, tzinfo=UTC), "x", "logon", user="ann")
    >>> online.update(logon(9, 10)), online.update(logon(9, 50))
    ([], [])
    >>> online.update(logon(10, 4))  # watermark 09:59: 09:00 still open
    []
    >>> [(v.window_start.hour, v.values) for v in online.update(logon(10, 6))]
    [(9, {'logons': 2.0})]
    >>> online.update(logon(9, 59)), online.late_events  # its window has closed
    ([], 1)
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
    ) -> None:
        window_us = self._start_clock(specs, config, allowed_lateness, idle_expiry, max_entities)
        self._next_end_us = (self._closed_before + 1) * window_us
        self._daily = config.window == "1d"
        # Window index (start // window length) -> entity -> accumulators.
        self._open: dict[int, dict[str, _Cell]] = {}
        self._history: OrderedDict[str, _History] = OrderedDict()
        self._compile()
        # Per value source with population kinds: value hash -> entities that had it, and
        # the number of entities that had any value.
        self._value_entities: list[dict[int, int]] = [{} for _ in self._sources]
        self._population = [0] * len(self._sources)

    # -- plan -------------------------------------------------------------------------------

    def _compile(self) -> None:
        """Derived, unpicklable lookup structures (rebuilt after unpickling)."""
        config = self.config
        self._entity_getter = operator.attrgetter(config.entity)
        self._acc_slot: dict[str, int] = {}
        sources: dict[tuple[str, _FilterKey, str], list[FeatureSpec]] = {}
        hour_keys: dict[_FilterKey, int] = {}
        for spec in self.specs:
            if spec.kind in _SIMPLE_KINDS:
                self._acc_slot[spec.name] = len(self._acc_slot)
            elif spec.kind in _VALUE_KINDS:
                assert spec.field is not None
                source_key = (spec.field, _filter_key(spec), str(spec.param("split", "")))
                sources.setdefault(source_key, []).append(spec)
            elif spec.kind in _HOUR_KINDS:
                hour_keys.setdefault(_filter_key(spec), len(hour_keys))
        self._sources: list[_ValueSource] = []
        self._source_of: dict[str, int] = {}
        n_counts = n_times = n_seen = 0
        for (field_name, filter_key, split), group in sources.items():
            kinds = {spec.kind for spec in group}
            timed = "periodicity" in kinds
            needs_seen = bool(kinds & _SEEN_KINDS)
            slot = n_times if timed else n_counts
            n_times, n_counts = n_times + timed, n_counts + (not timed)
            self._sources.append(
                _ValueSource(
                    field_name,
                    filter_key,
                    split,
                    timed,
                    slot,
                    n_seen if needs_seen else -1,
                    bool(kinds & _POPULATION_KINDS),
                )
            )
            n_seen += needs_seen
            for spec in group:
                self._source_of[spec.name] = len(self._sources) - 1
        self._hour_keys = hour_keys
        self._hour_of = {
            spec.name: hour_keys[_filter_key(spec)]
            for spec in self.specs
            if spec.kind in _HOUR_KINDS
        }
        self._shape = (len(self._acc_slot), n_counts, n_times, len(hour_keys))
        self._outputs = [self._output(spec) for spec in self.specs]
        self._hash_memo: dict[str, int] = {}
        self._n_seen = n_seen

        # Filters only test membership in finite sets, so an event's filter inputs reduce to
        # one class per input field: the set of conditions its value satisfies. The memo of
        # per-event programs is keyed by those classes (few), never by raw values (many).
        filter_keys = {_filter_key(spec) for spec in self.specs}
        conditions = sorted({c for key in filter_keys for c in key}, key=repr)
        self._condition_id = {c: i for i, c in enumerate(conditions)}
        # ``field~``: a case-insensitive regular expression search, as polars'
        # ``str.contains("(?i)...")``; tested per event, and only when needed.
        self._patterns: dict[int, tuple[_Getter, re.Pattern[str]]] = {
            self._condition_id[c]: (_getter(c[0][:-1]), re.compile(next(iter(c[1])), re.I))
            for c in conditions
            if c[0].endswith("~")
        }
        equalities = [c for c in conditions if not c[0].endswith("~")]
        inputs = sorted({name for name, _ in equalities})
        plain = [name for name in inputs if not name.startswith("attrs.")]
        self._inputs = (*plain, *(name for name in inputs if name not in plain))
        self._plain_inputs: Callable[[Event], tuple[object, ...]] | None = None
        if len(plain) == 1:
            single = operator.attrgetter(plain[0])
            self._plain_inputs = lambda event: (single(event),)
        elif plain:
            self._plain_inputs = operator.attrgetter(*plain)  # type: ignore[assignment]
        self._attrs_inputs = tuple(name[len("attrs.") :] for name in inputs if name not in plain)
        tables: list[dict[object, frozenset[int]]] = []
        for name in self._inputs:
            members: dict[object, set[int]] = {}
            for condition in equalities:
                if condition[0] != name:
                    continue
                for value in condition[1]:
                    members.setdefault(value, set()).add(self._condition_id[condition])
                    # The batch path compares bytes as text; the Event holds an int.
                    if name == "bytes" and value.lstrip("-").isdigit() and str(int(value)) == value:
                        members.setdefault(int(value), set()).add(self._condition_id[condition])
            tables.append({value: frozenset(ids) for value, ids in members.items()})
        self._input_tables = tuple(tables)
        self._n_inputs = len(tables)
        unused: dict[object, frozenset[int]] = {}
        self._get0, self._get1, self._get2 = (
            table.get for table in (*tables, unused, unused, unused)[:3]
        )
        self._needs_calendar = any(spec.kind in ("off_hours", "weekend") for spec in self.specs)
        # Bit 1: weekend day; bit 2: off hours. Indexed by ISO weekday - 1 and hour.
        self._calendar = tuple(
            (weekday in config.weekend_days) | (config.is_off_hours(hour, weekday) << 1)
            for weekday in range(1, 8)
            for hour in range(24)
        )
        self._programs: dict[tuple[object, ...], _Program] = {}
        self._plan_of_frames: _FramePlan | None = None

    def _output(self, spec: FeatureSpec) -> _Output:
        if spec.kind in _SIMPLE_KINDS:
            slot = self._acc_slot[spec.name]
        elif spec.kind in _HOUR_KINDS:
            slot = self._hour_of[spec.name]
        else:
            slot = self._source_of[spec.name]
        if spec.kind == "periodicity":
            threshold = max(spec.number("min_events"), 2.0)
        elif spec.kind in _HOUR_KINDS:
            threshold = spec.number("min_events")
        elif spec.kind == "rare_count":
            threshold = spec.number("max_entities")
        else:
            threshold = 0.0
        share = spec.number("min_share") if spec.kind == "unusual_hour" else 0.0
        return _Output(spec.name, spec.kind, slot, threshold, share, spec.param("agg") == "mean")

    def _program(self, key: tuple[object, ...], patterns: frozenset[int] | None) -> _Program:
        """The program of events whose equality conditions satisfy ``key``.

        ``patterns``: the ids of the pattern conditions the event satisfies, or ``None`` when
        not tested yet; then a program that still needs them only lists them.
        """
        flags = key[0]
        assert isinstance(flags, int)
        satisfied: set[int] = set()
        for classes in key[1:]:
            if isinstance(classes, frozenset):
                satisfied |= classes
        untested: dict[int, None] = {}

        def matches(filter_key: _FilterKey) -> bool:
            ids = [self._condition_id[condition] for condition in filter_key]
            if not all(i in satisfied for i in ids if i not in self._patterns):
                return False
            wanted = [i for i in ids if i in self._patterns]
            if patterns is None:
                untested.update(dict.fromkeys(wanted))
                return not wanted
            return all(i in patterns for i in wanted)

        increments: list[int] = []
        sums: list[tuple[int, _Getter]] = []
        max_splits: list[tuple[int, _Getter, str]] = []
        for spec in self.specs:
            if spec.kind not in _SIMPLE_KINDS or not matches(_filter_key(spec)):
                continue
            slot = self._acc_slot[spec.name]
            if (
                spec.kind in ("count", "failure_count")
                or (spec.kind == "off_hours" and flags & 2)
                or (spec.kind == "weekend" and flags & 1)
            ):
                increments.append(slot)
            elif spec.kind == "sum":
                assert spec.field is not None
                sums.append((slot, _getter(spec.field)))
            elif spec.kind == "max_split":
                assert spec.field is not None
                max_splits.append((slot, _getter(spec.field), str(spec.param("split", ";"))))
        counted = tuple(
            (s.slot, _getter(s.field), s.split)
            for s in self._sources
            if not s.timed and matches(s.filter_key)
        )
        timed = tuple(
            (s.slot, _getter(s.field), s.split)
            for s in self._sources
            if s.timed and matches(s.filter_key)
        )
        hours = tuple(i for hour_key, i in self._hour_keys.items() if matches(hour_key))
        if untested:
            tests = tuple((i, *self._patterns[i]) for i in sorted(untested))
            return _Program((), (), (), (), (), (), tests)
        return _Program(tuple(increments), tuple(sums), tuple(max_splits), counted, timed, hours)

    # -- the hot path ----------------------------------------------------------------------

    def update(self, event: Event) -> list[WindowVector]:
        """Take one event; return the vectors of the windows its watermark closed.

        Events whose entity field is null are ignored (they do not move the watermark). An
        event whose window has already closed is late: counted, appended to :attr:`late`,
        and otherwise ignored.
        """
        entity = self._entity_getter(event)
        if entity is None:
            return []
        ts = event.ts
        # From the wall-clock fields (Event.ts is UTC): no tzinfo calls (for zoneinfo UTC
        # they would cost more than the rest of the update), and small-int arithmetic.
        day = ts.toordinal() - _EPOCH_ORDINAL
        hour = ts.hour
        window = day if self._daily else day * 24 + hour
        if window < self._closed_before:
            self.late_events += 1
            self.late.append(event)
            return []
        us: int = (
            day * 86_400 + hour * 3600 + ts.minute * 60 + ts.second
        ) * 1_000_000 + ts.microsecond
        cells = self._open.get(window)
        if cells is None:
            cells = self._open[window] = {}
        cell = cells.get(entity)
        if cell is None:
            cell = cells[entity] = _Cell(*self._shape)
        cell.n += 1
        if us > cell.last_us:
            cell.last_us = us

        flags = 0
        if self._needs_calendar:
            # 1970-01-01, day 0, was a Thursday (ISO weekday 4).
            flags = self._calendar[((day + 3) % 7) * 24 + hour]
        values: tuple[object, ...] = () if self._plain_inputs is None else self._plain_inputs(event)
        if self._attrs_inputs:
            attrs = event.attrs
            values = (*values, *[attrs.get(name) for name in self._attrs_inputs])
        # Spelled out for the usual one to three inputs: ``map`` costs more than the rest.
        n_inputs = self._n_inputs
        if n_inputs == 2:
            key: tuple[object, ...] = (flags, self._get0(values[0]), self._get1(values[1]))
        elif n_inputs == 1:
            key = (flags, self._get0(values[0]))
        elif n_inputs == 3:
            key = (
                flags,
                self._get0(values[0]),
                self._get1(values[1]),
                self._get2(values[2]),
            )
        else:
            key = (flags, *map(dict.get, self._input_tables, values))
        program = self._programs.get(key)
        if program is None:
            if len(self._programs) >= _MAX_PROGRAMS:
                self._programs.clear()
            program = self._programs[key] = self._program(key, None)
        if program.patterns:
            matched = frozenset(
                i
                for i, getter, pattern in program.patterns
                if (text := _text(getter(event))) is not None and pattern.search(text)
            )
            full_key = (key, matched)
            program = self._programs.get(full_key) or self._program(key, matched)
            self._programs[full_key] = program

        increments, sums, max_splits, counted, timed, hours, _ = program
        acc = cell.acc
        for slot in increments:
            acc[slot] += 1.0
        if sums:
            for slot, getter in sums:
                acc[slot] += _number(getter(event))
        if max_splits:
            for slot, getter, split in max_splits:
                text = _text(getter(event))
                n_values = 0.0 if text is None else float(len(_split_values(text, split)))
                if n_values > acc[slot]:
                    acc[slot] = n_values
        for slot, getter, split in counted:
            raw = getter(event)
            if raw is None:
                continue
            text = raw if raw.__class__ is str else str(raw)
            counts = cell.counts[slot]
            if counts is None:
                counts = cell.counts[slot] = {}
            if not split:
                if text:
                    counts[text] = counts.get(text, 0) + 1
                continue
            for value in _split_values(text, split):
                counts[value] = counts.get(value, 0) + 1
        for slot, getter, split in timed:
            raw = getter(event)
            if raw is None:
                continue
            text = raw if raw.__class__ is str else str(raw)
            times = cell.times[slot]
            if times is None:
                times = cell.times[slot] = {}
            for value in _split_values(text, split) if split else (text,) if text else ():
                stamps = times.get(value)
                if stamps is None:
                    times[value] = [us]
                else:
                    stamps.append(us)
        for slot in hours:
            histogram = cell.hours[slot]
            if histogram is None:
                histogram = cell.hours[slot] = [0] * 24
            histogram[hour] += 1

        if self._track_recency:
            history = self._history.get(entity)
            if history is not None:
                if us > history.last_us:
                    history.last_us = us
                self._history.move_to_end(entity)

        if us > self._max_us:
            self._max_us = us
            watermark = us - self._lateness_us
            if watermark >= self._next_end_us:
                return self._advance(watermark)
        return []

    # -- the batch path ----------------------------------------------------------------------

    def update_frame(
        self,
        frame: pl.DataFrame,
        *,
        late_rows: list[int] | None = None,
        on_close: Callable[[list[WindowVector]], None] | None = None,
    ) -> list[WindowVector]:
        """Take a micro-batch of events (rows in arrival order); return the vectors it closed.

        Gives exactly what :meth:`update` of each row in turn gives (vectors, late events,
        state), at a cost per (entity, window, value) of the batch rather than per event
        and spec: the rows are cut where the watermark closes a window, each piece's cells
        are accumulated with polars group-bys and merged into the open windows, then the
        windows the piece's last row closed are closed as :meth:`update` would.

        Parameters
        ----------
        frame
            Columns of :data:`streams.event.POLARS_EVENT_SCHEMA` (at least ``ts``, the entity
            and the fields the specs read; ``attrs`` as JSON object text).
        late_rows
            When given, the row numbers of late events are appended to it (counted in
            :attr:`late_events` but not kept in :attr:`late`); else late rows become Events
            in :attr:`late`, as with :meth:`update`.
        on_close
            Called with the vectors of each step that closes windows (what one :meth:`update`
            call returns), right after the step and before the rest of the batch is taken:
            a caller that scores there sees the state it would see event by event.

        Examples
        --------
        >>> from streams.batch import events_to_frame
        >>> specs = [FeatureSpec(name="logons", kind="count", where={"action": "logon"})]
        >>> online = OnlineFeatures(specs, WindowConfig(window="1h"))
        >>> events = [Event(datetime(2024, 1, 1, h, m, tzinfo=UTC), "x", "logon", user="ann")
        ...           for h, m in ((9, 10), (9, 50), (10, 5), (9, 59))]
        >>> late: list[int] = []
        >>> [(v.window_start.hour, v.values) for v in online.update_frame(
        ...     events_to_frame(events), late_rows=late)]
        [(9, {'logons': 2.0})]
        >>> late, online.late_events
        ([3], 1)
        """
        entity_name = self.config.entity
        base = frame.with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).alias(_ROW),
            pl.col(entity_name).cast(pl.String).alias(_ENTITY),
            pl.col("ts").dt.epoch("us").alias(_US),
        ).filter(pl.col(_ENTITY).is_not_null())
        if base.height == 0:
            return []
        us = base.get_column(_US).to_numpy()
        window_us = self._window_us
        windows = us // window_us
        # The closed-window bound before and after each row, as update() moves it: a new
        # maximum time closes every window its watermark has passed. Late rows (below the
        # bound) never raise it, so counting them in the running maximum changes nothing.
        running = np.maximum.accumulate(np.maximum(us, self._max_us))
        after = np.maximum((running - self._lateness_us) // window_us, self._closed_before)
        before = np.concatenate(([self._closed_before], after[:-1]))
        late = windows < before
        if late.any():
            positions = base.get_column(_ROW).to_numpy()[late]
            self.late_events += int(positions.size)
            if late_rows is not None:
                late_rows.extend(positions.tolist())
            else:
                self.late.extend(events_from_frame(frame[positions]))
        # Pieces end at the rows that close windows (where the bound rises).
        closing = np.flatnonzero(after > before)
        piece = np.zeros(us.size, dtype=np.int64)
        if closing.size:
            piece[closing[:-1] + 1 if closing[-1] == us.size - 1 else closing + 1] = 1
            piece = np.cumsum(piece)
        on_time = ~late
        if on_time.any():
            self._max_us = max(self._max_us, int(us[on_time].max()))
        rows = base.with_columns(pl.Series(_WINDOW, windows), pl.Series(_PIECE, piece)).filter(
            pl.Series(on_time)
        )
        tables = self._frame_tables(rows)
        vectors: list[WindowVector] = []
        n_pieces = int(piece[-1]) + 1
        ends = [int(i) for i in closing]
        for index in range(n_pieces):
            self._merge_piece(index, tables)
            if index < len(ends):
                watermark = int(running[ends[index]]) - self._lateness_us
                closed = self._advance(watermark)
                if closed and on_close is not None:
                    on_close(closed)
                vectors.extend(closed)
        return vectors

    def _frame_plan(self) -> _FramePlan:
        plan = self._plan_of_frames
        if plan is None:
            plan = self._plan_of_frames = _FramePlan.build(self)
        return plan

    def _frame_tables(self, rows: pl.DataFrame) -> list[dict[int, pl.DataFrame]]:
        """Per piece: cell totals, counted values, timed values, hour counts, recency."""
        plan = self._frame_plan()
        config = self.config
        hour = pl.col("ts").dt.hour().cast(pl.Int32)
        weekend = pl.col("ts").dt.weekday().is_in(list(config.weekend_days))
        start, end = config.work_hours
        in_hours = (
            (hour >= start) & (hour < end) if start <= end else (hour >= start) | (hour < end)
        )
        lazy = rows.lazy().with_columns(
            *(mask.alias(f"__mask{i}") for i, mask in enumerate(plan.masks)),
            hour.alias(_HOUR_COL),
            weekend.alias("__weekend"),
            (weekend | ~in_hours).alias("__off"),
        )
        cell_keys = [_PIECE, _WINDOW, _ENTITY]
        queries: list[pl.LazyFrame | None] = [
            lazy.group_by(cell_keys).agg(
                pl.len().alias("__n"), pl.col(_US).max().alias("__last"), *plan.accumulators
            )
        ]
        for timed in (False, True):
            parts = [
                _value_rows(lazy, plan.masks_of_sources[i], source, i, timed)
                for i, source in enumerate(self._sources)
                if source.timed == timed
            ]
            if not parts:
                queries.append(None)
                continue
            aggregate = pl.col(_US) if timed else pl.len().cast(pl.Int64)
            queries.append(
                pl.concat(parts)
                .group_by([*cell_keys, _SOURCE, _VALUE])
                .agg(aggregate.alias("__agg"))
            )
        hour_parts = [
            lazy.filter(pl.col(f"__mask{mask}")).select(
                *cell_keys, pl.lit(slot, pl.Int64).alias(_SOURCE), pl.col(_HOUR_COL)
            )
            for slot, mask in plan.masks_of_hours
        ]
        queries.append(
            pl.concat(hour_parts).group_by([*cell_keys, _SOURCE, _HOUR_COL]).len()
            if hour_parts
            else None
        )
        queries.append(
            lazy.group_by(_PIECE, _ENTITY).agg(
                pl.col(_ROW).max().alias("__last_row"), pl.col(_US).max().alias("__last")
            )
            if self._track_recency
            else None
        )
        wanted = [q for q in queries if q is not None]
        collected = iter(pl.collect_all(wanted))
        tables: list[dict[int, pl.DataFrame]] = []
        for query in queries:
            if query is None:
                tables.append({})
                continue
            table = next(collected)
            tables.append(
                {
                    int(key[0]): part
                    for key, part in table.partition_by(_PIECE, as_dict=True).items()
                }  # type: ignore[arg-type]
            )
        return tables

    def _merge_piece(self, index: int, tables: list[dict[int, pl.DataFrame]]) -> None:
        """Add one piece's accumulated rows to the open cells (what update() would do)."""
        simple, counted, timed, hours, recency = (t.get(index) for t in tables)
        if simple is None:
            return
        shape = self._shape
        max_slots = self._frame_plan().max_slots
        n_acc = shape[0]
        opened = self._open
        columns = [simple.get_column(name).to_list() for name in simple.columns[1:]]
        for window, entity, n, last, *sums in zip(*columns, strict=True):
            cells = opened.get(window)
            if cells is None:
                cells = opened[window] = {}
            cell = cells.get(entity)
            if cell is None:
                cell = cells[entity] = _Cell(*shape)
            cell.n += n
            if last > cell.last_us:
                cell.last_us = last
            if n_acc:
                acc = cell.acc
                for slot, value in enumerate(sums):
                    if value:
                        if slot in max_slots:
                            if value > acc[slot]:
                                acc[slot] = value
                        else:
                            acc[slot] += value
        sources = self._sources
        if counted is not None:
            for window, entity, source, value, n in _rows(
                counted, _WINDOW, _ENTITY, _SOURCE, _VALUE, "__agg"
            ):
                cell = opened[window][entity]
                slot = sources[source].slot
                counts = cell.counts[slot]
                if counts is None:
                    counts = cell.counts[slot] = {}
                counts[value] = counts.get(value, 0) + n
        if timed is not None:
            for window, entity, source, value, stamps in _rows(
                timed, _WINDOW, _ENTITY, _SOURCE, _VALUE, "__agg"
            ):
                cell = opened[window][entity]
                slot = sources[source].slot
                times = cell.times[slot]
                if times is None:
                    times = cell.times[slot] = {}
                known = times.get(value)
                if known is None:
                    times[value] = stamps
                else:
                    known.extend(stamps)
        if hours is not None:
            for window, entity, slot, hour, n in _rows(
                hours, _WINDOW, _ENTITY, _SOURCE, _HOUR_COL, "len"
            ):
                cell = opened[window][entity]
                histogram = cell.hours[slot]
                if histogram is None:
                    histogram = cell.hours[slot] = [0] * 24
                histogram[hour] += n
        if recency is not None:
            # update() moves an entity with history to the end at each of its events: the
            # order they end up in is the order of their last events.
            for entity, last in _rows(recency.sort("__last_row"), _ENTITY, "__last"):
                history = self._history.get(entity)
                if history is not None:
                    if last > history.last_us:
                        history.last_us = last
                    self._history.move_to_end(entity)

    def flush(self) -> list[WindowVector]:
        """Close every open window (end of stream); later events for them count as late."""
        if not self._open:
            return []
        return self._advance((max(self._open) + 1) * self._window_us)

    # -- closing windows -------------------------------------------------------------------

    def _advance(self, horizon_us: int) -> list[WindowVector]:
        self._horizon_us = max(self._horizon_us, horizon_us)
        self._closed_before = self._horizon_us // self._window_us
        self._next_end_us = (self._closed_before + 1) * self._window_us
        closing = sorted(w for w in self._open if w < self._closed_before)
        vectors: list[WindowVector] = []
        for window in closing:
            vectors.extend(self._close(window * self._window_us, self._open.pop(window)))
        self._expire_idle()
        return vectors

    def _close(self, start_us: int, cells: dict[str, _Cell]) -> list[WindowVector]:
        """Vectors of every entity's window at ``start_us``, then fold them into history."""
        window_start = _EPOCH + timedelta(microseconds=start_us)
        vectors: list[WindowVector] = []
        folds: list[tuple[str, _Cell, list[tuple[int, list[int], list[bool]]]]] = []
        for entity in sorted(cells):
            cell = cells[entity]
            history = self._history.get(entity)
            seen = self._seen_values(cell, history)
            vectors.append(
                WindowVector(entity, window_start, cell.n, self._values(cell, history, seen))
            )
            folds.append((entity, cell, seen))
        for entity, cell, seen in folds:
            self._fold(entity, cell, seen)
        self._enforce_cap()
        logger.debug("closed window %s: %d entities", window_start.isoformat(), len(cells))
        return vectors

    def _store(self, cell: _Cell, source: _ValueSource) -> dict[str, int] | dict[str, list[int]]:
        store = cell.times[source.slot] if source.timed else cell.counts[source.slot]
        return store or {}

    def _hash(self, value: str) -> int:
        memo = self._hash_memo
        h = memo.get(value)
        if h is None:
            if len(memo) >= _MAX_MEMO:
                memo.clear()
            h = memo[value] = stable_hash(value)
        return h

    def _seen_values(
        self, cell: _Cell, history: _History | None
    ) -> list[tuple[int, list[int], list[bool]]]:
        """Per history-keeping source: (index, distinct value hashes, whether already seen)."""
        result: list[tuple[int, list[int], list[bool]]] = []
        search = bisect.bisect_left
        memo_get = self._hash_memo.get
        for index, source in enumerate(self._sources):
            seen_slot = source.seen_slot
            if seen_slot < 0:
                continue
            store = cell.times[source.slot] if source.timed else cell.counts[source.slot]
            if not store:
                continue
            # The memo's own get (C) for values hashed before, the usual case.
            memoised = list(map(memo_get, store))
            if None in memoised:
                hashes = list(dict.fromkeys(map(self._hash, store)))
            else:
                hashes = list(dict.fromkeys(cast("list[int]", memoised)))
            seen = None if history is None else history.seen[seen_slot]
            if not seen:
                known = [False] * len(hashes)
            else:
                size = len(seen)
                known = [(i := search(seen, h)) < size and seen[i] == h for h in hashes]
            result.append((index, hashes, known))
        return result

    def _values(
        self,
        cell: _Cell,
        history: _History | None,
        seen: list[tuple[int, list[int], list[bool]]],
    ) -> dict[str, float]:
        by_source = {index: (hashes, known) for index, hashes, known in seen}
        others_by_source: dict[int, list[int]] = {}
        values: dict[str, float] = {}
        for out in self._outputs:
            kind = out.kind
            if kind in _SIMPLE_KINDS:
                values[out.name] = cell.acc[out.slot]
                continue
            if kind in _HOUR_KINDS:
                values[out.name] = self._hour_value(out, cell, history)
                continue
            source = self._sources[out.slot]
            store = cell.times[source.slot] if source.timed else cell.counts[source.slot]
            if not store:
                values[out.name] = 0.0
            elif kind == "distinct":
                values[out.name] = float(len(store))
            elif kind == "max_per_target":
                values[out.name] = float(
                    max(v if isinstance(v, int) else len(v) for v in store.values())
                )
            elif kind == "periodicity":
                values[out.name] = max(
                    (
                        _regularity(times)
                        for times in store.values()
                        if isinstance(times, list) and len(times) >= out.threshold
                    ),
                    default=0.0,
                )
            elif kind == "first_seen":
                # Nothing is new in the entity's first window: it has no history yet.
                known = by_source[out.slot][1]
                values[out.name] = 0.0 if history is None else float(known.count(False))
            else:
                others = others_by_source.get(out.slot)
                if others is None:
                    # k: OTHER entities that had the value in earlier windows.
                    hashes, known = by_source[out.slot]
                    entities_with = self._value_entities[out.slot]
                    others = [
                        entities_with.get(h, 0) - k for h, k in zip(hashes, known, strict=True)
                    ]
                    others_by_source[out.slot] = others
                if kind == "rare_count":
                    limit = out.threshold
                    values[out.name] = float(sum(1 for k in others if k <= limit))
                else:
                    log_population = math.log2(self._population[out.slot] + 1)
                    bits = [log_population - math.log2(k + 1) for k in others]
                    values[out.name] = sum(bits) / len(bits) if out.mean else max(bits)
        return values

    def _hour_value(self, out: _Output, cell: _Cell, history: _History | None) -> float:
        counts = cell.hours[out.slot]
        if counts is None:
            return 0.0
        past = _NO_HOURS if history is None else history.hours[out.slot]
        total = sum(past)
        trusted = total >= out.threshold
        if out.kind == "unusual_hour":
            if not trusted:
                return 0.0
            limit = out.share * total
            return float(sum(c for h, c in enumerate(counts) if past[h] < limit))
        s = sum(n * _SIN[h] for h, n in enumerate(past))
        c = sum(n * _COS[h] for h, n in enumerate(past))
        if not trusted or not math.sqrt(s * s + c * c) > 1e-9:
            return 0.0
        mean_hour = math.atan2(s, c) * (24.0 / (2.0 * math.pi))
        weighted = 0.0
        for hour, n in enumerate(counts):
            if n:
                gap = abs(hour - mean_hour) % 24.0
                weighted += n * min(gap, 24.0 - gap)
        return weighted / sum(counts)

    def _fold(
        self, entity: str, cell: _Cell, seen: list[tuple[int, list[int], list[bool]]]
    ) -> None:
        history = self._history.get(entity)
        if history is None:
            history = self._history[entity] = _History(self._n_seen, len(self._hour_keys))
        if cell.last_us > history.last_us:
            history.last_us = cell.last_us
        for index, hashes, known in seen:
            new = [h for h, k in zip(hashes, known, strict=True) if not k]
            if not new:
                continue
            source = self._sources[index]
            had_values = len(history.seen[source.seen_slot]) > 0
            history.seen[source.seen_slot] = _add_all(history.seen[source.seen_slot], new)
            if source.population:
                entities_with = self._value_entities[index]
                for h in new:
                    entities_with[h] = entities_with.get(h, 0) + 1
                if not had_values:
                    self._population[index] += 1
        for slot, counts in enumerate(cell.hours):
            if counts is not None:
                past = history.hours[slot]
                for hour, n in enumerate(counts):
                    past[hour] += n

    # -- forgetting ------------------------------------------------------------------------

    def _forget(self, entity: str, reason: str) -> None:
        history = self._history.pop(entity)
        self._record_departures((entity,), reason)
        for index, source in enumerate(self._sources):
            if not source.population:
                continue
            hashes = history.seen[source.seen_slot]
            if not hashes:
                continue
            entities_with = self._value_entities[index]
            for h in hashes:
                left = entities_with[h] - 1
                if left:
                    entities_with[h] = left
                else:
                    del entities_with[h]
            self._population[index] -= 1

    def _enforce_cap(self) -> None:
        if self.max_entities is None:
            return
        while len(self._history) > self.max_entities:
            entity = next(iter(self._history))
            self._forget(entity, EVICTED)
            self.evictions += 1
            logger.debug("evicted entity %r (cap %d)", entity, self.max_entities)

    def _expire_idle(self) -> None:
        if self._idle_us is None:
            return
        # Ordered by last event arrival, which is event-time order up to the allowed
        # lateness: an idle entity behind a busy one waits at most that long.
        limit = self._horizon_us - self._idle_us
        while self._history:
            entity, history = next(iter(self._history.items()))
            if history.last_us >= limit:
                break
            self._forget(entity, EXPIRED)
            self.expirations += 1
            logger.debug("expired idle entity %r", entity)

    # -- metrics and checkpoints -----------------------------------------------------------

    @property
    def open_cells(self) -> int:
        """(entity, window) cells still open."""
        return sum(len(cells) for cells in self._open.values())

    def state_bytes(self) -> int:
        """Estimated memory of the state in bytes (history, population tables, open cells).

        An estimate from ``sys.getsizeof`` of the containers and their own contents; walks
        the whole state, so call it for metrics, not per event.
        """
        size = sys.getsizeof(self._history)
        for entity, history in self._history.items():
            size += sys.getsizeof(entity) + sys.getsizeof(history)
            size += sys.getsizeof(history.seen) + sum(sys.getsizeof(a) for a in history.seen)
            size += sys.getsizeof(history.hours) + sum(sys.getsizeof(a) for a in history.hours)
        size += self._population_bytes()
        for cells in self._open.values():
            size += sys.getsizeof(cells)
            for entity, cell in cells.items():
                size += sys.getsizeof(entity) + self._cell_bytes(cell)
        return size

    def _population_bytes(self) -> int:
        size = 0
        for table in self._value_entities:
            size += sys.getsizeof(table)
            size += sum(sys.getsizeof(h) + sys.getsizeof(n) for h, n in table.items())
        return size

    @staticmethod
    def _cell_bytes(cell: _Cell) -> int:
        size = sys.getsizeof(cell) + sys.getsizeof(cell.acc) + 24 * len(cell.acc)
        for counts in cell.counts:
            if counts is not None:
                size += sys.getsizeof(counts) + sum(sys.getsizeof(v) + 28 for v in counts)
        for times in cell.times:
            if times is not None:
                size += sys.getsizeof(times)
                size += sum(
                    sys.getsizeof(v) + sys.getsizeof(t) + 32 * len(t) for v, t in times.items()
                )
        size += sum(sys.getsizeof(h) for h in cell.hours if h is not None)
        return size

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for derived in (
            "_entity_getter",
            "_acc_slot",
            "_sources",
            "_source_of",
            "_hour_keys",
            "_hour_of",
            "_shape",
            "_n_seen",
            "_condition_id",
            "_patterns",
            "_inputs",
            "_plain_inputs",
            "_attrs_inputs",
            "_input_tables",
            "_n_inputs",
            "_get0",
            "_get1",
            "_get2",
            "_needs_calendar",
            "_calendar",
            "_programs",
            "_outputs",
            "_hash_memo",
            "_plan_of_frames",
        ):
            del state[derived]
        # Events with default attrs hold a read-only mapping proxy, which does not pickle.
        state["late"] = [_event_fields(event) for event in self.late]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        late = state.pop("late")
        # States saved before departures were recorded: not tracked.
        state.setdefault("departed", None)
        self.__dict__.update(state)
        self.late = [_event_from_fields(fields) for fields in late]
        self._compile()


def _event_fields(event: Event) -> tuple[object, ...]:
    return (
        event.ts,
        event.source,
        event.action,
        event.user,
        event.host,
        event.target,
        event.bytes,
        event.outcome,
        dict(event.attrs),
    )


def _event_from_fields(fields: tuple[Any, ...]) -> Event:
    ts, source, action, user, host, target, nbytes, outcome, attrs = fields
    event = Event(ts, source, action, user, host, target, nbytes, outcome)
    return dataclasses.replace(event, attrs=attrs) if attrs else event


def replay(
    specs: Sequence[FeatureSpec],
    events: Iterable[Event],
    config: WindowConfig = WindowConfig(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    allowed_lateness: timedelta = timedelta(0),
) -> list[WindowVector]:
    """Every vector of ``events`` (then flushed), in closing order: for tests and scans.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> spec = FeatureSpec(name="hosts", kind="distinct", field="host")
    >>> events = [Event(datetime(2024, 1, 1, h, tzinfo=UTC), "x", "logon", user="ann",
    ...                 host=f"pc{h % 2}") for h in (8, 9, 10)]
    >>> [(v.entity, v.values) for v in replay([spec], events)]
    [('ann', {'hosts': 2.0})]
    """
    online = OnlineFeatures(specs, config, allowed_lateness=allowed_lateness)
    vectors: list[WindowVector] = []
    for event in events:
        vectors.extend(online.update(event))
    vectors.extend(online.flush())
    return vectors


# -- the batch path's plan --------------------------------------------------------------------

_ROW: Final = "__row"
_ENTITY: Final = "__entity"
_US: Final = "__us"
_WINDOW: Final = "__window"
_PIECE: Final = "__piece"
_HOUR_COL: Final = "__hour"
_VALUE: Final = "__value"
_SOURCE: Final = "__source"


def _rows(frame: pl.DataFrame, *names: str) -> Iterable[tuple[Any, ...]]:
    """The rows of these columns as tuples (column lists zipped: far cheaper than iter_rows)."""
    return zip(*(frame.get_column(name).to_list() for name in names), strict=True)


def _value_rows(
    lazy: pl.LazyFrame, mask: int, source: _ValueSource, index: int, timed: bool
) -> pl.LazyFrame:
    """The (piece, window, entity, source, value[, us]) rows of one value source."""
    value = field_expr(source.field).cast(pl.String)
    if source.split:
        value = value.str.split(source.split)
    selected = [
        pl.col(_PIECE),
        pl.col(_WINDOW),
        pl.col(_ENTITY),
        pl.lit(index, pl.Int64).alias(_SOURCE),
        value.alias(_VALUE),
    ]
    if timed:
        selected.append(pl.col(_US))
    rows = lazy.filter(pl.col(f"__mask{mask}")).select(selected)
    if source.split:
        rows = rows.explode(_VALUE).with_columns(pl.col(_VALUE).str.strip_chars())
    return rows.filter(pl.col(_VALUE).is_not_null() & (pl.col(_VALUE) != ""))


class _FramePlan(NamedTuple):
    """The polars expressions of :meth:`OnlineFeatures.update_frame`, built once."""

    masks: list[pl.Expr]
    accumulators: list[pl.Expr]  # one per accumulator slot, in slot order
    max_slots: frozenset[int]  # slots combined by max (max_split), the others by sum
    masks_of_sources: list[int]
    masks_of_hours: list[tuple[int, int]]  # (hour slot, mask)

    @classmethod
    def build(cls, online: OnlineFeatures) -> _FramePlan:
        mask_of: dict[_FilterKey, int] = {}

        def mask(key: _FilterKey) -> int:
            return mask_of.setdefault(key, len(mask_of))

        accumulators: dict[int, pl.Expr] = {}
        max_slots: set[int] = set()
        for spec in online.specs:
            if spec.kind not in _SIMPLE_KINDS:
                continue
            slot = online._acc_slot[spec.name]
            matching = pl.col(f"__mask{mask(_filter_key(spec))}")
            if spec.kind in ("count", "failure_count"):
                expr = matching.sum()
            elif spec.kind == "off_hours":
                expr = (matching & pl.col("__off")).sum()
            elif spec.kind == "weekend":
                expr = (matching & pl.col("__weekend")).sum()
            elif spec.kind == "sum":
                assert spec.field is not None
                number = field_expr(spec.field).cast(pl.Float64, strict=False).fill_null(0.0)
                expr = pl.when(matching).then(number).otherwise(0.0).sum()
            else:  # max_split
                assert spec.field is not None
                max_slots.add(slot)
                text = field_expr(spec.field).cast(pl.String)
                part = pl.element().str.strip_chars()
                split = str(spec.param("split", ";"))
                n_values = (
                    text.str.split(split).list.eval(part.filter(part != "")).list.len().fill_null(0)
                    if split
                    else (text.is_not_null() & (text != "")).cast(pl.Int64)
                )
                expr = pl.when(matching).then(n_values).otherwise(0).max()
            accumulators[slot] = expr.cast(pl.Float64).alias(f"__acc{slot}")
        masks_of_sources = [mask(source.filter_key) for source in online._sources]
        masks_of_hours = [(slot, mask(key)) for key, slot in online._hour_keys.items()]
        return cls(
            [mask_expr(key) for key in mask_of],
            [accumulators[slot] for slot in sorted(accumulators)],
            frozenset(max_slots),
            masks_of_sources,
            masks_of_hours,
        )
