"""Contextual sequence novelty: which of the current quantised "facts" did the recent past predict.

After the idea of the Contextual Anomaly Detector (CAD OSE, Smirnov & Ivanov, on the NAB
scoreboard): each value is quantised on several resolutions at once, each resolution's bin is a
*fact*, and a fact is *predicted* when the same transition (the bins of the previous ``order``
steps at that resolution, then this bin) has been seen before. The raw score is the fraction of
the current facts that were not predicted: 0 for a familiar move, 1 when even the coarsest
resolution has never made this move. Coarse facts are rarely new, so a large or structural change
scores near 1 while everyday jitter only unsettles the finest resolutions.

The quantisation grid is fixed from the first ``warmup`` values (their range), so bins never shift
under the memory: a value beyond that range simply lands in a bin never seen. When the range of
the recent ``history`` values grows or shrinks by more than ``regrid_factor``, the grid is rebuilt
from that history and the transition memory re-learnt from it (a rare, O(``history``) step).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

from models.online._common import TIMESTAMP_KEY, feature_items
from models.params import ParamsMixin


class _FeatureContext:
    """The grid, recent bins and transition memory of one feature."""

    __slots__ = ("bins", "fixed", "history", "memory", "origin", "span", "steps_since_check")

    def __init__(self) -> None:
        self.origin = 0.0
        self.span = 0.0
        self.history: deque[tuple[float, int]] = deque()
        self.bins: deque[tuple[int, ...]] = deque()
        self.memory: dict[tuple[int, int, tuple[int, ...]], set[int]] = {}
        self.steps_since_check = 0
        self.fixed = False

    def __getstate__(self) -> tuple[object, ...]:
        return (
            self.origin,
            self.span,
            self.history,
            self.bins,
            self.memory,
            self.steps_since_check,
            self.fixed,
        )

    def __setstate__(self, state: tuple[object, ...]) -> None:
        # States pickled before ``fixed`` existed have six fields: their grids were learnt.
        self.fixed = bool(state[6]) if len(state) > 6 else False
        (
            self.origin,
            self.span,
            self.history,
            self.bins,
            self.memory,
            self.steps_since_check,
        ) = state[:6]  # type: ignore[assignment]


class ContextSequenceDetector(ParamsMixin):
    """Fraction of the current multi-resolution quantised facts that their context did not predict.

    Parameters
    ----------
    resolutions : int
        Number of resolutions: resolution ``r`` (1..``resolutions``) cuts the grid's span into
        ``2**r`` bins (values beyond it get bins of their own).
    order : int
        Longest context: transitions from the previous 1..``order`` steps are all checked, and
        each (resolution, context length) pair is one fact.
    warmup : int
        Values seen before the grid is fixed; the score is 0 until then.
    history : int
        Recent values kept to rebuild the grid and the memory.
    regrid_factor : float
        Rebuild when the recent range is this many times wider or narrower than the grid's.
    check_every : int
        Steps between two checks of the recent range.
    min_span : float
        Floor on the grid's span (absolute), so a constant start still quantises finitely.
    graded : bool
        A bin never reached from this context counts ``1 - 1 / (d + 1)`` rather than 1, where
        ``d`` is its distance in bins to the nearest bin that was (a context never seen still
        counts 1): one bin of jitter scores half of a jump.
    period_seconds : float
        With a positive period and the window time under ``"__ts"``, each resolution adds one
        more fact: is this bin one that the same time slot of the period has held before
        (0 disables).
    slot_seconds : float
        Width of one time slot of the period.
    tie_break : float
        Weight in [0, 1] of a continuous twin of the score: each missed fact counts by how far
        the value lies outside the nearest bin its context reached before, in fractional bins
        (``1 - 1 / (gap + 1)``). A small weight only orders scores that would tie.
    ranges : mapping of str to (low, high), optional
        Value ranges known up front, per feature: that feature's grid is the range from its
        first value on, never rebuilt (values beyond it still get bins of their own).
    seed : int | None
        Accepted for the contract; the detector is deterministic.

    Examples
    --------
    >>> detector = ContextSequenceDetector(resolutions=2, order=1, warmup=4)
    >>> for value in [0.0, 1.0, 2.0, 3.0] * 5:
    ...     detector.learn_one({"x": value})
    >>> [detector.score_one({"x": value}) for value in (0.0, 1.0, 9.0)]
    [0.0, 0.5, 1.0]
    """

    def __init__(
        self,
        *,
        resolutions: int = 4,
        order: int = 2,
        warmup: int = 50,
        history: int = 2000,
        regrid_factor: float = 4.0,
        check_every: int = 50,
        min_span: float = 1e-6,
        graded: bool = False,
        period_seconds: float = 0.0,
        slot_seconds: float = 3600.0,
        tie_break: float = 0.0,
        ranges: Mapping[str, Sequence[float]] | None = None,
        seed: int | None = 0,
    ) -> None:
        if resolutions < 1 or order < 1 or warmup < 1:
            raise ValueError("resolutions, order and warmup must be >= 1")
        if history < warmup:
            raise ValueError(f"history ({history}) must be >= warmup ({warmup})")
        self.resolutions = resolutions
        self.order = order
        self.warmup = warmup
        self.history = history
        self.regrid_factor = regrid_factor
        self.check_every = check_every
        self.min_span = min_span
        self.graded = graded
        self.period_seconds = period_seconds
        self.slot_seconds = slot_seconds
        for name, bounds in (ranges or {}).items():
            low, high = (float(b) for b in bounds)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"range of {name!r} must be finite (low, high), got {bounds!r}")
        self.ranges = ranges
        if not 0.0 <= tie_break <= 1.0:
            raise ValueError(f"tie_break must be in [0, 1], got {tie_break}")
        self.tie_break = tie_break
        self.seed = seed
        self.features_: dict[str, _FeatureContext] = {}

    def _quantise(self, state: _FeatureContext, value: float) -> tuple[int, ...]:
        offset = (value - state.origin) / state.span
        return tuple(math.floor(offset * (1 << r)) for r in range(1, self.resolutions + 1))

    def _slot(self, x: Mapping[str, float]) -> int:
        ts = x.get(TIMESTAMP_KEY)
        if self.period_seconds <= 0.0 or ts is None or not math.isfinite(float(ts)):
            return -1
        n_slots = max(int(self.period_seconds // self.slot_seconds), 1)
        return int(float(ts) // self.slot_seconds) % n_slots

    def _facts(
        self, state: _FeatureContext, bins: tuple[int, ...], slot: int
    ) -> list[tuple[tuple[int, int, tuple[int, ...]], int]]:
        """(context key, current bin) of every fact: transitions, then time-slot facts."""
        recent = list(state.bins)
        facts = []
        for length in range(1, min(self.order, len(recent)) + 1):
            context_steps = recent[-length:]
            for r, current in enumerate(bins):
                facts.append(((length, r, tuple(step[r] for step in context_steps)), current))
        if slot >= 0:
            # Context length 0: "the bins this time slot has held", for what is usual when.
            facts.extend(((0, r, (slot,)), current) for r, current in enumerate(bins))
        return facts

    def _novelty(
        self, state: _FeatureContext, bins: tuple[int, ...], slot: int, offset: float
    ) -> float:
        facts = self._facts(state, bins, slot)
        novel = 0.0
        near = 0.0
        for key, current in facts:
            successors = state.memory.get(key)
            if not successors:
                novel += 1.0
                near += 1.0
            elif current not in successors:
                if self.graded:
                    # A miss by one bin (jitter across a boundary) counts half, a miss by
                    # many bins nearly fully.
                    distance = min(abs(current - known) for known in successors)
                    novel += 1.0 - 1.0 / (distance + 1)
                else:
                    novel += 1.0
                if self.tie_break > 0.0:
                    # The same in fractional bins: how far the value itself lies outside the
                    # nearest bin reached before, so equal fractions still rank by distance.
                    position = offset * (1 << (key[1] + 1))
                    gap = min(
                        max(known - position, position - known - 1, 0.0) for known in successors
                    )
                    near += 1.0 - 1.0 / (gap + 1.0)
        if not facts:
            return 0.0
        return ((1.0 - self.tie_break) * novel + self.tie_break * near) / len(facts)

    def _memorise(self, state: _FeatureContext, bins: tuple[int, ...], slot: int) -> None:
        for key, current in self._facts(state, bins, slot):
            state.memory.setdefault(key, set()).add(current)
        state.bins.append(bins)
        if len(state.bins) > self.order:
            state.bins.popleft()

    def _rebuild(self, state: _FeatureContext) -> None:
        values = [value for value, _ in state.history]
        low, high = min(values), max(values)
        state.origin = low
        state.span = max(high - low, self.min_span)
        state.memory = {}
        state.bins = deque()
        for value, slot in state.history:
            self._memorise(state, self._quantise(state, value), slot)

    def feature_scores(self, x: Mapping[str, float]) -> dict[str, float]:
        """The unpredicted fraction of each feature's facts (0 while a feature warms up)."""
        scores: dict[str, float] = {}
        slot = self._slot(x)
        for name, value in feature_items(x).items():
            state = self.features_.get(name)
            if state is None or state.span <= 0.0:
                scores[name] = 0.0
                continue
            if not state.fixed and len(state.history) < self.warmup:
                scores[name] = 0.0
                continue
            offset = (value - state.origin) / state.span
            scores[name] = self._novelty(state, self._quantise(state, value), slot, offset)
        return scores

    def score_one(self, x: Mapping[str, float]) -> float:
        """Mean unpredicted fraction over the features, in [0, 1]; higher = more anomalous."""
        scores = self.feature_scores(x)
        return sum(scores.values()) / len(scores) if scores else 0.0

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Remember each feature's transition into its current bins; rebuild the grid if due."""
        slot = self._slot(x)
        for name, value in feature_items(x).items():
            state = self.features_.get(name)
            if state is None:
                state = self.features_[name] = _FeatureContext()
                known = (self.ranges or {}).get(name)
                if known is not None:
                    low, high = (float(b) for b in known)
                    state.origin, state.span, state.fixed = (
                        low,
                        max(high - low, self.min_span),
                        True,
                    )
            state.history.append((value, slot))
            if len(state.history) > self.history:
                state.history.popleft()
            if state.span <= 0.0:
                if len(state.history) >= self.warmup:
                    self._rebuild(state)
                continue
            self._memorise(state, self._quantise(state, value), slot)
            state.steps_since_check += 1
            if not state.fixed and state.steps_since_check >= self.check_every:
                state.steps_since_check = 0
                values = [value for value, _ in state.history]
                recent_span = max(max(values) - min(values), self.min_span)
                ratio = recent_span / state.span
                if ratio > self.regrid_factor or ratio * self.regrid_factor < 1.0:
                    self._rebuild(state)
