"""Contextual Anomaly Detector: contexts learnt online predict the next step's quantised facts.

After the method of CAD OSE (Smirnov & Ivanov, the open-source entry on the NAB scoreboard),
written from its published description. Each step, every feature's value is quantised on
``resolutions`` nested grids; each (feature, resolution, bin) is a *sensor fact*. A *context*
pairs a left semi-context (a set of facts true at one step: the sensor facts plus the ids of the
contexts active then) with a right semi-context (facts that followed). After each step the
contexts whose left side is contained in the step's facts are *predicted*; at the next step
those whose right side is fully present are *active*, and the ids of the most used active
contexts join the next left side, so a context can stand for a long history. Memory grows by
*potential new contexts*: the previous step's facts paired with this step's, and every
predicted context's left side paired with the part of its right side that did come true.

The raw score is ``(1 - active / predicted + new / potential) / 2``: a step that the learnt
contexts foresaw scores 0; a step nothing foresaw, needing only new contexts, scores 1.

The quantisation grid of a feature is its known value range when one is given (``ranges``),
else the range of its first ``warmup`` values (later values beyond it fall in bins of their
own, which no context has seen).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.online._common import feature_items
from models.params import ParamsMixin

_BIN_OFFSET = 1 << 19
"""Bins are shifted by this before encoding, so out-of-range (negative) bins stay distinct."""
_MAX_FEATURES = 256
_MAX_RESOLUTIONS = 32


@dataclass(slots=True)
class _Step:
    """What one step would change: computed by ``score_one``, applied by ``learn_one``."""

    score: float
    active: list[int]
    potential: list[tuple[tuple[int, ...], tuple[int, ...]]]
    facts: tuple[int, ...]


class ContextualAnomalyDetector(ParamsMixin):
    """Share of this step that the learnt contexts did not foresee (CAD OSE's method).

    Parameters
    ----------
    resolutions : int
        Nested grids per feature: grid ``r`` (1..``resolutions``) cuts the range into ``2**r``
        bins; each grid's bin is one sensor fact.
    max_active : int
        Most used active contexts whose ids join the next step's left side.
    ranges : mapping of str to (low, high), optional
        Value ranges known up front, per feature (e.g. a sensor's physical range); a feature
        without one takes the range of its first ``warmup`` values.
    warmup : int
        Values seen before a learnt grid is fixed; the score is 0 until every feature has a grid
        (the warm-up values are then replayed into the memory).
    features : sequence of str, optional
        Model only these keys (default: every non-reserved key).
    max_contexts : int
        Cap on the contexts kept: beyond it potential new contexts still count as new (they
        raise the score) but are no longer stored, bounding memory per entity.
    min_span : float
        Floor on a grid's span, so a constant start still quantises finitely.
    seed : int | None
        Accepted for the contract; the detector is deterministic.

    Examples
    --------
    >>> detector = ContextualAnomalyDetector(resolutions=2, ranges={"x": (0.0, 3.0)})
    >>> for value in [0.0, 1.0, 2.0, 3.0] * 10:
    ...     detector.learn_one({"x": value})
    >>> detector.score_one({"x": 0.0}), detector.score_one({"x": 2.0})
    (0.0, 1.0)
    """

    def __init__(
        self,
        *,
        resolutions: int = 2,
        max_active: int = 15,
        ranges: Mapping[str, Sequence[float]] | None = None,
        warmup: int = 50,
        features: Sequence[str] | None = None,
        max_contexts: int = 500_000,
        min_span: float = 1e-6,
        seed: int | None = 0,
    ) -> None:
        if not 1 <= resolutions <= _MAX_RESOLUTIONS:
            raise ValueError(f"resolutions must be in 1..{_MAX_RESOLUTIONS}, got {resolutions}")
        if max_active < 0 or warmup < 1 or max_contexts < 1:
            raise ValueError("max_active must be >= 0, warmup and max_contexts >= 1")
        for name, bounds in (ranges or {}).items():
            low, high = (float(b) for b in bounds)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"range of {name!r} must be finite (low, high), got {bounds!r}")
        self.resolutions = resolutions
        self.max_active = max_active
        self.ranges = ranges
        self.warmup = warmup
        self.features = features
        self.max_contexts = max_contexts
        self.min_span = min_span
        self.seed = seed
        # Per feature: its index in the fact encoding and its grid (origin, span) once fixed.
        self.feature_index_: dict[str, int] = {}
        self.grids_: dict[str, tuple[float, float]] = {}
        self.warmup_values_: list[dict[str, float]] = []
        # Left semi-contexts (a sorted fact tuple) -> {right semi-context -> context id}.
        self.contexts_: dict[tuple[int, ...], dict[tuple[int, ...], int]] = {}
        # Left semi-contexts indexed by their smallest fact, for the containment search.
        self.left_index_: dict[int, list[tuple[int, ...]]] = {}
        self.context_right_: list[tuple[int, ...]] = []
        self.context_left_: list[tuple[int, ...]] = []
        self.context_uses_: list[int] = []
        self.left_facts_: tuple[int, ...] = ()
        self.predicted_: list[int] = []
        self.n_learnt_ = 0
        self._pending: tuple[tuple[int, tuple[int, ...]], _Step] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pending"] = None  # a cache of the last score, not state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _encode(self, index: int, resolution: int, bin_number: int) -> int:
        shifted = min(max(bin_number + _BIN_OFFSET, 0), 2 * _BIN_OFFSET - 1)
        return (shifted * _MAX_RESOLUTIONS + resolution) * _MAX_FEATURES + index

    def _sensor_facts(self, values: Mapping[str, float]) -> tuple[int, ...]:
        facts: list[int] = []
        for name, value in values.items():
            grid = self.grids_.get(name)
            index = self.feature_index_.get(name)
            if grid is None or index is None:
                continue
            origin, span = grid
            offset = (value - origin) / span
            for resolution in range(1, self.resolutions + 1):
                n_bins = 1 << resolution
                bin_number = math.floor(offset * n_bins)
                if bin_number == n_bins and offset <= 1.0:
                    bin_number = n_bins - 1  # the top of the range belongs to the last bin
                facts.append(self._encode(index, resolution, bin_number))
        return tuple(sorted(facts))

    def _modelled(self, x: Mapping[str, float]) -> dict[str, float]:
        values = feature_items(x)
        if self.features is not None:
            wanted = set(self.features)
            values = {k: v for k, v in values.items() if k in wanted}
        return values

    def _plan(self, facts: tuple[int, ...]) -> _Step:
        present = set(facts)
        active: list[int] = []
        potential: dict[tuple[tuple[int, ...], tuple[int, ...]], None] = {}
        for context in self.predicted_:
            right = self.context_right_[context]
            kept = tuple(f for f in right if f in present)
            if len(kept) == len(right):
                active.append(context)
            elif kept:
                potential[(self.context_left_[context], kept)] = None
        if self.left_facts_ and facts:
            potential[(self.left_facts_, facts)] = None
        n_new = sum(
            1
            for left, right in potential
            if right not in self.contexts_.get(left, {})  # not yet a context
        )
        share_active = len(active) / len(self.predicted_) if self.predicted_ else 0.0
        share_new = n_new / len(potential) if potential else 0.0
        # Nothing to compare with before the first learnt step.
        score = (1.0 - share_active + share_new) / 2.0 if potential else 0.0
        return _Step(score, active, list(potential), facts)

    def _step_for(self, x: Mapping[str, float]) -> _Step | None:
        values = self._modelled(x)
        if not self._all_known(values):
            return None
        facts = self._sensor_facts(values)
        key = (self.n_learnt_, facts)
        if self._pending is not None and self._pending[0] == key:
            return self._pending[1]
        step = self._plan(facts)
        self._pending = (key, step)
        return step

    def _all_known(self, values: Mapping[str, float]) -> bool:
        return bool(values) and all(name in self.grids_ for name in values)

    def score_one(self, x: Mapping[str, float]) -> float:
        """Share of the step not foreseen, in [0, 1]; higher = more anomalous (0 in warm-up)."""
        step = self._step_for(x)
        return 0.0 if step is None else step.score

    def _apply(self, step: _Step) -> None:
        for context in step.active:
            self.context_uses_[context] += 1
        for left, right in step.potential:
            successors = self.contexts_.get(left)
            if successors is None:
                if len(self.context_right_) >= self.max_contexts:
                    continue
                successors = self.contexts_[left] = {}
                self.left_index_.setdefault(left[0], []).append(left)
            if right in successors or len(self.context_right_) >= self.max_contexts:
                continue
            successors[right] = len(self.context_right_)
            self.context_right_.append(right)
            self.context_left_.append(left)
            self.context_uses_.append(0)
        # The most used active contexts stand for this step's history in the next left side.
        ranked = sorted(step.active, key=lambda c: (self.context_uses_[c], c), reverse=True)
        neurons = [-1 - c for c in ranked[: self.max_active]]
        self.left_facts_ = tuple(sorted([*step.facts, *neurons]))
        present = set(self.left_facts_)
        predicted: list[int] = []
        for fact in self.left_facts_:
            for left in self.left_index_.get(fact, ()):
                if all(f in present for f in left):
                    predicted.extend(self.contexts_[left].values())
        self.predicted_ = predicted

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
                self.grids_[name] = (low, max(high - low, self.min_span))
        if self._all_known(values):
            return False
        self.warmup_values_.append(dict(values))
        if len(self.warmup_values_) < self.warmup:
            return False
        for name in values:
            if name in self.grids_:
                continue
            seen = [v[name] for v in self.warmup_values_ if name in v]
            self.grids_[name] = (min(seen), max(max(seen) - min(seen), self.min_span))
        return True

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Learn this step: new contexts, usage counts, and the contexts predicted next."""
        values = self._modelled(x)
        if not values:
            return
        if not self._all_known(values):
            if self._fix_grids(values):
                replay, self.warmup_values_ = self.warmup_values_, []
                for past in replay:
                    self._apply(self._plan(self._sensor_facts(past)))
                    self.n_learnt_ += 1
                self._pending = None
                return
            if not self._all_known(values):
                return
        step = self._step_for(x)
        if step is not None:
            self._apply(step)
        self.n_learnt_ += 1
        self._pending = None
