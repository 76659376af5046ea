"""Contextual Anomaly Detector: contexts learnt online predict the next step's facts (CAD OSE).

Our implementation of CAD OSE (Smirnov & Ivanov, "contextOSE" on the NAB scoreboard), written
to reproduce the published reference step by step (its scores on NAB match the published raw
scores to the printed precision). Each step, every feature's value is cut into
``2**n_bits`` levels over its known range and the level's bits become *sensor facts* (one fact
per bit position and bit value). A *context* pairs a left semi-context (a set of facts true at
one step: sensor facts plus *neuron* facts, the ids of the contexts active then) with a right
semi-context (the sensor facts that followed).

One step, with ``L`` the previous step's left facts and ``S`` this step's sensor facts:

1. ``(L, S)`` is the step's *zero-level* context; if it is new it is stored.
2. Every context whose left side was wholly present in ``L`` was *selected*; it is *active* if
   its right side is wholly present in ``S``. Only when the zero-level context was new do
   zero-level contexts whose sides were partly present yield *potential new contexts* (the
   parts present, for left parts of at most ``max_left_facts`` facts).
3. The raw score is ``(1 - active / selected + new / potential) / 2`` where ``potential``
   counts the distinct potential contexts and the zero-level one, and ``new`` those not yet
   stored; it is 0 when every sensor fact of the step was predicted.
4. The next left facts are ``S`` plus the ids of the ``max_active`` most used active contexts;
   the contexts whose left side lies wholly in them and whose share of right facts that came
   true so far is the highest predict the next step's facts.
5. Rest: after a raw score of at least ``rest_level`` the next ``rest_steps`` scores are 0
   (as are the first ``rest_steps``).

Two choices of the reference only decide ties and numbering, and are kept so the scores match
it: the contexts of one left semi-context are visited in the slot order of a classic
open-addressing hash table keyed by right semi-context number (CPython 2's dict), which fixes
the order in which new contexts get their ids; and equally used active contexts are ranked by
the classic 64-bit tuple hash of their sides. A further quirk is kept for the same reason:
context 0 takes part in step 2 only on steps whose zero-level context is new.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.online._common import feature_items
from models.params import ParamsMixin

_SENSOR_BASE = 1 << 16
"""Sensor fact of feature ``k``, bit position ``s``, bit ``b``: base + (k 64 + s) 2 + b."""
_MAX_POSITIONS = 64
"""Bit positions per feature: levels above the range (``2**n_bits`` or more) add positions."""
_NEURON_BASE = 1 << 31
"""Neuron fact of context ``c``: base + c (above every sensor fact)."""
_MAX_FEATURES = 256
_MAX_BITS = 16
_MASK64 = (1 << 64) - 1
_PERTURB_SHIFT = 5


def classic_tuple_hash(items: Sequence[int]) -> int:
    """The 64-bit tuple hash of CPython 2 for a tuple of small non-negative ints.

    The reference ranks equally used contexts by it; reproduced to match its scores.

    Examples
    --------
    >>> classic_tuple_hash(()), classic_tuple_hash((1, 2))
    (3527539, 3713081631934410656)
    """
    value = 0x345678
    multiplier = 1000003
    remaining = len(items)
    for item in items:
        remaining -= 1
        value = ((value ^ item) * multiplier) & _MASK64
        multiplier = (multiplier + 82520 + remaining + remaining) & _MASK64
    value = (value + 97531) & _MASK64
    signed = value - (1 << 64) if value >= 1 << 63 else value
    return -2 if signed == -1 else signed


class _ClassicTable:
    """Int keys to ints, iterated in the slot order of CPython 2's dict (no deletions)."""

    __slots__ = ("order", "pairs", "slots", "values")

    def __init__(self) -> None:
        self.slots: list[int] = [-1] * 8
        self.values: dict[int, int] = {}
        self.order: list[int] = []
        self.pairs: list[tuple[int, int]] = []  # (key, value) in iteration order

    @staticmethod
    def _place(slots: list[int], key: int) -> None:
        mask = len(slots) - 1
        index = key & mask
        perturb = key
        while slots[index] >= 0:
            index = (index * 5 + perturb + 1) & mask
            perturb >>= _PERTURB_SHIFT
        slots[index] = key

    def _inserted(self, key: int) -> list[int]:
        slots = list(self.slots)
        self._place(slots, key)
        used = len(self.values) + 1
        if used * 3 >= len(slots) * 2:
            size = 8
            while size <= 4 * used:
                size <<= 1
            grown = [-1] * size
            for old in slots:
                if old >= 0:
                    self._place(grown, old)
            slots = grown
        return slots

    def insert(self, key: int, value: int) -> None:
        self.slots = self._inserted(key)
        self.values[key] = value
        self.order = [k for k in self.slots if k >= 0]
        self.pairs = [(k, self.values[k]) for k in self.order]

    def order_with(self, key: int) -> list[int]:
        """The iteration order once ``key`` is inserted (a resize may reorder the others)."""
        return [k for k in self._inserted(key) if k >= 0]


@dataclass(slots=True)
class _Step:
    """What one step would change: computed by ``score_one``, applied by ``learn_one``."""

    sensor: tuple[int, ...]
    raw: float
    new_zero: bool
    selected: list[tuple[int, int, int]]  # context, right size, right facts present
    active: list[int]
    potential: list[tuple[tuple[int, ...], tuple[int, ...]]]


class ContextualAnomalyDetector(ParamsMixin):
    """Share of this step that the learnt contexts did not foresee (CAD OSE).

    Parameters
    ----------
    n_bits : int
        Bits per feature value: the known range is cut into ``2**n_bits`` levels (level
        ``floor((v - low) / ((high - low) / (2**n_bits - 1)))``), one sensor fact per bit.
    max_active : int
        Most used active contexts whose ids join the next step's left facts (0: none).
    max_left_facts : int
        Largest left part of a potential new context.
    rest_level : float
        A raw score at or above it silences the next ``rest_steps`` scores.
    rest_steps : int, optional
        Length of the rest; default ``probation // 5`` when ``probation`` is given (as NAB
        runs the reference), else 0: no rest.
    probation : int, optional
        Length of the learning period known up front (NAB's probationary period); only used
        to derive ``rest_steps``.
    ranges : mapping of str to (low, high), optional
        Value ranges known up front, per feature (NAB's ``inputMin``/``inputMax``); a feature
        without one takes the range of its first ``warmup`` values. A value above the range
        takes a level of more than ``n_bits`` bits (as in the reference: its extra bits are
        facts no context has seen); one below it takes level 0.
    warmup : int
        Values seen before a learnt range is fixed; the score is 0 until every feature has a
        range (the warm-up values are then replayed into the memory).
    features : sequence of str, optional
        Model only these keys (default: every non-reserved key).
    max_contexts : int
        Cap on the contexts stored, bounding memory per entity: beyond it potential new
        contexts still count as new (they raise the score) but are not stored.
    log_scale : float, optional
        Cut the range into levels on a log scale instead: a value ``v`` of a feature with range
        ``(low, high)`` is placed by ``log1p((v - low) / (log_scale * (high - low)))``, so each
        level spans the same *ratio* above ``low``. A feature whose range is set by a few huge
        values (a bursty count) keeps its usual values in level 0 on the linear grid; on this
        one a burst of ten times the usual is still a new level. ``None`` (the reference):
        linear levels.
    seed : int | None
        Accepted for the contract; the detector is deterministic.

    Examples
    --------
    >>> detector = ContextualAnomalyDetector(n_bits=1, rest_steps=0, ranges={"x": (0.0, 1.0)})
    >>> for value in [0.0, 1.0] * 10:
    ...     detector.learn_one({"x": value})
    >>> detector.score_one({"x": 0.0}), detector.score_one({"x": 1.0})
    (0.0, 1.0)
    """

    def __init__(
        self,
        *,
        n_bits: int = 3,
        max_active: int = 15,
        max_left_facts: int = 7,
        rest_level: float = 0.75,
        rest_steps: int | None = None,
        probation: int | None = None,
        ranges: Mapping[str, Sequence[float]] | None = None,
        warmup: int = 50,
        features: Sequence[str] | None = None,
        max_contexts: int = 2_000_000,
        log_scale: float | None = None,
        seed: int | None = 0,
    ) -> None:
        if not 1 <= n_bits <= _MAX_BITS:
            raise ValueError(f"n_bits must be in 1..{_MAX_BITS}, got {n_bits}")
        if max_active < 0 or max_left_facts < 1:
            raise ValueError("max_active must be >= 0 and max_left_facts >= 1")
        if warmup < 1 or max_contexts < 1:
            raise ValueError("warmup and max_contexts must be >= 1")
        if log_scale is not None and not (math.isfinite(log_scale) and log_scale > 0.0):
            raise ValueError(f"log_scale must be a finite number > 0, got {log_scale!r}")
        if (rest_steps is not None and rest_steps < 0) or (probation is not None and probation < 0):
            raise ValueError("rest_steps and probation must be >= 0")
        for name, bounds in (ranges or {}).items():
            low, high = (float(b) for b in bounds)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"range of {name!r} must be finite (low, high), got {bounds!r}")
        self.n_bits = n_bits
        self.max_active = max_active
        self.max_left_facts = max_left_facts
        self.rest_level = rest_level
        self.rest_steps = rest_steps
        self.probation = probation
        self.ranges = ranges
        self.warmup = warmup
        self.features = features
        self.max_contexts = max_contexts
        self.log_scale = log_scale
        self.seed = seed
        # Per feature: its index in the fact encoding and its quantiser (low, step) once fixed;
        # on a log scale the quantiser is over log1p((v - origin) / unit), (origin, unit) kept.
        self.feature_index_: dict[str, int] = {}
        self.grids_: dict[str, tuple[float, float]] = {}
        self.log_units_: dict[str, tuple[float, float]] = {}
        self.warmup_values_: list[dict[str, float]] = []
        # Left semi-contexts: facts, number, a table right number -> context, hash, sensor
        # facts, neuron facts. Indexes for the crossing: the left semi-contexts by their
        # highest neuron fact (the newest context, the rarest fact); those without neuron
        # facts by their sensor facts; those holding a zero-level context (sorted).
        self.left_facts_: list[tuple[int, ...]] = []
        self.left_ids_: dict[tuple[int, ...], int] = {}
        self.left_tables_: list[_ClassicTable] = []
        self.left_sets_: list[frozenset[int]] = []  # for C-level subset tests
        self.left_hashes_: list[int] = []
        self.left_sensor_: list[tuple[int, ...]] = []
        self.left_neurons_: list[tuple[int, ...]] = []
        self.neuron_lefts_: dict[int, list[int]] = {}
        self.plain_lefts_: dict[tuple[int, ...], list[int]] = {}
        self.zero_lefts_: list[int] = []
        # Right semi-contexts: facts, number, hash.
        self.right_facts_: list[tuple[int, ...]] = []
        self.right_ids_: dict[tuple[int, ...], int] = {}
        self.right_hashes_: list[int] = []
        # Contexts: sides, facts predicted and come true while selected, times active, and
        # whether the context was ever a whole step-to-step transition (zero level).
        self.context_left_: list[int] = []
        self.context_right_: list[int] = []
        self.context_predicted_: list[int] = []
        self.context_correct_: list[int] = []
        self.context_uses_: list[int] = []
        self.context_zero_: list[bool] = []
        self.context_weight_: list[float] = []  # correct / predicted (0 before any)
        # The previous step: its left facts, the left semi-contexts wholly in them (sorted),
        # the neuron facts they share with each left semi-context, and the sensor facts
        # predicted for this step.
        self.left_group_: tuple[int, ...] = ()
        self.whole_: list[int] = []
        self.predicted_facts_: frozenset[int] = frozenset()
        # Rest: steps learnt (the history starts with one virtual high score, at step 0).
        self.n_learnt_ = 0
        self.last_high_ = 0
        self._pending: tuple[tuple[int, tuple[int, ...]], _Step] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pending"] = None  # a cache of the last score, not state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "left_sets_" not in state:  # pickled before the sets were kept
            state["left_sets_"] = [frozenset(facts) for facts in state["left_facts_"]]
        state.setdefault("log_scale", None)  # pickled before log levels existed
        state.setdefault("log_units_", {})
        self.__dict__.update(state)

    @property
    def rest_length(self) -> int:
        """Steps silenced after a high score."""
        if self.rest_steps is not None:
            return self.rest_steps
        if self.probation is not None:
            return int(self.probation / 5.0)
        return 0

    @property
    def n_contexts(self) -> int:
        """Number of contexts stored."""
        return len(self.context_right_)

    # -- quantisation -------------------------------------------------------------------

    def _quantiser(self, low: float, high: float) -> tuple[float, float]:
        top_level = float((1 << self.n_bits) - 1)
        span = high - low
        if span == 0.0:
            span = top_level
        return low, span / top_level

    def _fix_grid(self, name: str, low: float, high: float) -> None:
        """Fix the levels of ``name`` over ``(low, high)``, linear or on a log scale."""
        if self.log_scale is None:
            self.grids_[name] = self._quantiser(low, high)
            return
        unit = self.log_scale * ((high - low) or 1.0)
        self.log_units_[name] = (low, unit)
        self.grids_[name] = self._quantiser(0.0, math.log1p((high - low) / unit))

    def _sensor_facts(self, values: Mapping[str, float]) -> tuple[int, ...]:
        top_level = (1 << _MAX_POSITIONS) - 1
        facts: list[int] = []
        for name, value in values.items():
            grid = self.grids_.get(name)
            index = self.feature_index_.get(name)
            if grid is None or index is None:
                continue
            low, step = grid
            log_unit = self.log_units_.get(name)
            if log_unit is not None:
                # Below the range is level 0 either way; log1p needs a ratio above -1.
                value = math.log1p(max(value - log_unit[0], 0.0) / log_unit[1])
            level = min(max(int((value - low) / step), 0), top_level)
            base = _SENSOR_BASE + index * _MAX_POSITIONS * 2
            for position in range(max(self.n_bits, level.bit_length())):
                facts.append(base + position * 2 + ((level >> position) & 1))
        return tuple(sorted(set(facts)))

    def _modelled(self, x: Mapping[str, float]) -> dict[str, float]:
        values = feature_items(x)
        if self.features is not None:
            wanted = set(self.features)
            values = {k: v for k, v in values.items() if k in wanted}
        return values

    def _all_known(self, values: Mapping[str, float]) -> bool:
        return bool(values) and all(name in self.grids_ for name in values)

    # -- memory ---------------------------------------------------------------------------

    def _context_of(self, left: tuple[int, ...], right: tuple[int, ...]) -> int | None:
        left_id = self.left_ids_.get(left)
        right_id = self.right_ids_.get(right)
        if left_id is None or right_id is None:
            return None
        return self.left_tables_[left_id].values.get(right_id)

    def _store(self, left: tuple[int, ...], right: tuple[int, ...], zero: bool) -> None:
        """Store a context (and its semi-contexts) unless it exists or memory is full."""
        if self.n_contexts >= self.max_contexts:
            return
        left_id = self.left_ids_.get(left)
        if left_id is None:
            left_id = self.left_ids_[left] = len(self.left_facts_)
            self.left_facts_.append(left)
            self.left_tables_.append(_ClassicTable())
            self.left_sets_.append(frozenset(left))
            self.left_hashes_.append(classic_tuple_hash(left))
            sensor = tuple(f for f in left if f < _NEURON_BASE)
            self.left_sensor_.append(sensor)
            neurons = left[len(sensor) :]
            self.left_neurons_.append(neurons)
            if neurons:
                self.neuron_lefts_.setdefault(neurons[-1], []).append(left_id)
            else:
                self.plain_lefts_.setdefault(sensor, []).append(left_id)
        right_id = self.right_ids_.get(right)
        if right_id is None:
            right_id = self.right_ids_[right] = len(self.right_facts_)
            self.right_facts_.append(right)
            self.right_hashes_.append(classic_tuple_hash(right))
        table = self.left_tables_[left_id]
        if right_id in table.values:
            return
        table.insert(right_id, self.n_contexts)
        self.context_left_.append(left_id)
        self.context_right_.append(right_id)
        self.context_predicted_.append(0)
        self.context_correct_.append(0)
        self.context_uses_.append(0)
        self.context_zero_.append(zero)
        self.context_weight_.append(0.0)
        if zero:
            self._mark_zero_left(left_id)

    def _mark_zero_left(self, left_id: int) -> None:
        index = bisect.bisect_left(self.zero_lefts_, left_id)
        if index == len(self.zero_lefts_) or self.zero_lefts_[index] != left_id:
            self.zero_lefts_.insert(index, left_id)

    def _crossed(self, new_zero: bool) -> list[tuple[int, int]]:
        """Left semi-contexts crossed by the previous left facts that this step visits.

        (number, facts in common), sorted: the wholly crossed ones, and when the zero-level
        context is new also the partly crossed ones that hold a zero-level context and share
        at most ``max_left_facts`` facts.
        """
        crossed = [(left_id, len(self.left_facts_[left_id])) for left_id in self.whole_]
        if not new_zero:
            return crossed
        whole = set(self.whole_)
        group = set(self.left_group_)
        overlap: dict[tuple[int, ...], int] = {}
        for left_id in self.zero_lefts_:
            if left_id in whole:
                continue
            sensor = self.left_sensor_[left_id]
            shared = overlap.get(sensor)
            if shared is None:
                shared = overlap[sensor] = sum(1 for f in sensor if f in group)
            for fact in self.left_neurons_[left_id]:
                if fact in group:
                    shared += 1
            if 0 < shared <= self.max_left_facts:
                crossed.append((left_id, shared))
        crossed.sort()
        return crossed

    # -- one step -------------------------------------------------------------------------

    def _plan(self, sensor: tuple[int, ...]) -> _Step:
        previous = self.left_group_
        zero = bool(previous) and bool(sensor)
        zero_left = self.left_ids_.get(previous) if zero else None
        new_zero = zero and self._context_of(previous, sensor) is None
        # The reference marks "no new zero-level context" with a value equal to context 0.
        skipped = -1 if new_zero else 0
        present = set(sensor)
        previous_set = set(previous)
        right_present: dict[int, tuple[int, ...]] = {}
        selected: list[tuple[int, int, int]] = []
        active: list[int] = []
        potential: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        for left_id, crossed in self._crossed(new_zero):
            left = self.left_facts_[left_id]
            whole = crossed == len(left)
            may_refine = new_zero and crossed <= self.max_left_facts
            if not (whole or may_refine):
                continue
            table = self.left_tables_[left_id]
            if new_zero and left_id == zero_left:
                new_right = self.right_ids_.get(sensor, len(self.right_facts_))
                pairs = [
                    (r, table.values[r]) for r in table.order_with(new_right) if r != new_right
                ]
            else:
                pairs = table.pairs
            left_part: tuple[int, ...] | None = None
            for right_id, context in pairs:
                if context == skipped:
                    continue
                came_true = right_present.get(right_id)
                if came_true is None:
                    came_true = tuple(f for f in self.right_facts_[right_id] if f in present)
                    right_present[right_id] = came_true
                if whole:
                    size = len(self.right_facts_[right_id])
                    selected.append((context, size, len(came_true)))
                    if len(came_true) == size:
                        active.append(context)
                        continue
                if came_true and may_refine and self.context_zero_[context]:
                    if left_part is None:
                        left_part = tuple(f for f in left if f in previous_set)
                    potential.append((left_part, came_true))
        share_active = len(active) / len(selected) if selected else 0.0
        share_new = 0.0
        if new_zero:
            distinct = set(potential)
            distinct.add((previous, sensor))
            n_new = sum(1 for left, right in distinct if self._context_of(left, right) is None)
            share_new = n_new / len(distinct)
        missed = any(fact not in self.predicted_facts_ for fact in sensor)
        raw = (1.0 - share_active + share_new) / 2.0 if missed else 0.0
        return _Step(sensor, raw, new_zero, selected, active, potential)

    def _step_for(self, x: Mapping[str, float]) -> _Step | None:
        values = self._modelled(x)
        if not self._all_known(values):
            return None
        sensor = self._sensor_facts(values)
        key = (self.n_learnt_, sensor)
        if self._pending is not None and self._pending[0] == key:
            return self._pending[1]
        step = self._plan(sensor)
        self._pending = (key, step)
        return step

    def _resting(self) -> bool:
        rest = self.rest_length
        return rest > 0 and self.n_learnt_ + 1 - self.last_high_ <= rest

    def score_one(self, x: Mapping[str, float]) -> float:
        """Share of the step not foreseen, in [0, 1]; higher = more anomalous.

        0 during warm-up and rest.
        """
        step = self._step_for(x)
        if step is None or self._resting():
            return 0.0
        return step.raw

    def _apply(self, step: _Step) -> None:
        sensor = step.sensor
        if self.left_group_ and sensor:
            if step.new_zero:
                self._store(self.left_group_, sensor, zero=True)
            else:
                existing = self._context_of(self.left_group_, sensor)
                if existing is not None and not self.context_zero_[existing]:
                    self.context_zero_[existing] = True
                    self._mark_zero_left(self.context_left_[existing])
        predicted = self.context_predicted_
        correct = self.context_correct_
        for context, size, came_true in step.selected:
            predicted[context] += size
            correct[context] += came_true
            self.context_weight_[context] = correct[context] / predicted[context]
        for context in step.active:
            self.context_uses_[context] += 1
        neurons: list[int] = []
        if self.max_active > 0 and step.active:
            uses, left_of, right_of = self.context_uses_, self.context_left_, self.context_right_
            left_hashes, right_hashes = self.left_hashes_, self.right_hashes_
            ranked = sorted(
                step.active,
                key=lambda c: (uses[c], left_hashes[left_of[c]], right_hashes[right_of[c]]),
            )
            neurons = [_NEURON_BASE + c for c in ranked[-self.max_active :]]
        for left, right in step.potential:
            self._store(left, right, zero=False)
        self.left_group_ = tuple(sorted({*sensor, *neurons}))
        self._cross()
        self.n_learnt_ += 1
        if step.raw >= self.rest_level:
            self.last_high_ = self.n_learnt_

    def _cross(self) -> None:
        """Cross the new left facts with the left semi-contexts; predict the next facts."""
        group = frozenset(self.left_group_)
        left_sets = self.left_sets_
        whole: list[int] = []
        for left_ids in self.plain_lefts_.values():
            # Left semi-contexts listed under one key share their facts.
            if left_sets[left_ids[0]] <= group:
                whole.extend(left_ids)
        for fact in self.left_group_:
            if fact >= _NEURON_BASE:
                candidates = self.neuron_lefts_.get(fact, ())
                whole.extend(left_id for left_id in candidates if left_sets[left_id] <= group)
        whole.sort()
        self.whole_ = whole
        best = 0.0
        chosen: list[int] = []
        weights = self.context_weight_
        for left_id in whole:
            for _, context in self.left_tables_[left_id].pairs:
                weight = weights[context]
                if weight > best:
                    best = weight
                    chosen = [context]
                elif weight == best:
                    chosen.append(context)
        facts: set[int] = set()
        for context in chosen:
            facts.update(self.right_facts_[self.context_right_[context]])
        self.predicted_facts_ = frozenset(facts)

    def _fix_grids(self, values: Mapping[str, float]) -> bool:
        """Fix the grids that are due; True when a warm-up just ended (replay it)."""
        for name in sorted(values):
            if name not in self.feature_index_:
                if len(self.feature_index_) >= _MAX_FEATURES:
                    continue
                self.feature_index_[name] = len(self.feature_index_)
            if name in self.grids_:
                continue
            known = (self.ranges or {}).get(name)
            if known is not None:
                low, high = (float(b) for b in known)
                self._fix_grid(name, low, high)
        if self._all_known(values):
            return False
        self.warmup_values_.append(dict(values))
        if len(self.warmup_values_) < self.warmup:
            return False
        for name in values:
            if name in self.grids_ or name not in self.feature_index_:
                continue
            seen = [v[name] for v in self.warmup_values_ if name in v]
            self._fix_grid(name, min(seen), max(seen))
        return True

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Learn this step: new contexts, their tallies, and the facts predicted next."""
        values = self._modelled(x)
        if not values:
            return
        if not self._all_known(values):
            if self._fix_grids(values):
                replay, self.warmup_values_ = self.warmup_values_, []
                for past in replay:
                    known = {k: v for k, v in past.items() if k in self.grids_}
                    if known:
                        self._apply(self._plan(self._sensor_facts(known)))
                self._pending = None
                return
            if not self._all_known(values):
                return
        step = self._step_for(x)
        if step is not None:
            self._apply(step)
        self._pending = None
