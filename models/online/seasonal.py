"""A per-series seasonal baseline: an exponentially weighted mean and variance per time slot.

Each feature keeps, for every slot of a period (by default the 168 hours of a week), an
exponentially weighted mean and variance, plus the same for the series as a whole. A value is
scored by how many standard deviations it lies above (or, with ``two_sided``, away from) its
slot's mean; a slot that has seen fewer than ``min_slot_count`` values borrows the whole-series
baseline. Updates are robust: the residual fed to the running statistics is clipped at
``clip_sigmas`` standard deviations (a Huber-style update), so one outage or one burst moves the
baseline by a bounded amount instead of teaching it that the burst is normal.

The window time is read from the reserved key ``"__ts"`` (epoch seconds, UTC); without it the
detector uses the whole-series baseline only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from models.online._common import TIMESTAMP_KEY, feature_items
from models.params import ParamsMixin

# 1970-01-01 was a Thursday: shifting by three days makes slot 0 start on Monday 00:00 UTC.
_EPOCH_TO_MONDAY_SECONDS = 3 * 86400


class _Moments:
    """Exponentially weighted mean and variance with a clipped (Huber-style) update."""

    __slots__ = ("count", "mean", "var")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.var = 0.0

    def update(self, value: float, alpha: float, clip_sigmas: float, min_std: float) -> None:
        self.count += 1
        if self.count == 1:
            self.mean = value
            return
        # Early on the weight is 1/count (a plain running mean) so the first values are not
        # dominated by the very first one; later it settles at alpha.
        weight = max(alpha, 1.0 / self.count)
        residual = value - self.mean
        if self.count > 2:
            bound = clip_sigmas * max(math.sqrt(self.var), min_std)
            residual = min(max(residual, -bound), bound)
        self.mean += weight * residual
        self.var = (1.0 - weight) * (self.var + weight * residual * residual)

    def __getstate__(self) -> tuple[int, float, float]:
        return (self.count, self.mean, self.var)

    def __setstate__(self, state: tuple[int, float, float]) -> None:
        self.count, self.mean, self.var = state


class SeasonalBaselineDetector(ParamsMixin):
    """Hour-of-week (or any period) robust z-score per feature; the score is the largest one.

    Parameters
    ----------
    slot_seconds : float
        Width of one slot (3600: hours).
    period_seconds : float
        Length of the cycle (604800: a week, so 168 hour-of-week slots).
    alpha : float
        Weight of a new value in the exponentially weighted statistics (after warm-up).
    clip_sigmas : float
        Residuals are clipped at this many standard deviations before updating.
    min_slot_count : int
        A slot with fewer values uses the whole-series baseline.
    min_std : float
        Floor on the standard deviation (absolute), so a constant series still scores finitely.
    relative_min_std : float
        Floor on the standard deviation as a fraction of ``|mean|``.
    two_sided : bool
        Score distance in both directions (drops as well as bursts).
    seed : int | None
        Accepted for the contract; the detector is deterministic.

    Examples
    --------
    >>> detector = SeasonalBaselineDetector(min_slot_count=2)
    >>> for day in range(21):  # three weeks: busy at 10:00, quiet at 03:00
    ...     for hour, count in ((3, 0.0), (10, 20.0 + day % 3)):
    ...         ts = 4 * 86400 + day * 86400 + hour * 3600
    ...         detector.learn_one({"logons": count, "__ts": ts})
    >>> monday_3am = 4 * 86400 + 21 * 86400 + 3 * 3600
    >>> detector.score_one({"logons": 20.0, "__ts": monday_3am}) > 10
    True
    >>> detector.score_one({"logons": 21.0, "__ts": monday_3am + 7 * 3600}) < 1
    True
    """

    def __init__(
        self,
        *,
        slot_seconds: float = 3600.0,
        period_seconds: float = 604800.0,
        alpha: float = 0.1,
        clip_sigmas: float = 3.0,
        min_slot_count: int = 3,
        min_std: float = 0.5,
        relative_min_std: float = 0.01,
        two_sided: bool = False,
        seed: int | None = 0,
    ) -> None:
        self.slot_seconds = slot_seconds
        self.period_seconds = period_seconds
        self.alpha = alpha
        self.clip_sigmas = clip_sigmas
        self.min_slot_count = min_slot_count
        self.min_std = min_std
        self.relative_min_std = relative_min_std
        self.two_sided = two_sided
        self.seed = seed
        self.overall_: dict[str, _Moments] = {}
        self.slots_: dict[tuple[str, int], _Moments] = {}

    def _slot(self, x: Mapping[str, float]) -> int | None:
        ts = x.get(TIMESTAMP_KEY)
        if ts is None or not math.isfinite(float(ts)):
            return None
        n_slots = max(int(self.period_seconds // self.slot_seconds), 1)
        shifted = float(ts) + _EPOCH_TO_MONDAY_SECONDS
        return int(shifted // self.slot_seconds) % n_slots

    def _baseline(self, name: str, slot: int | None) -> _Moments | None:
        if slot is not None:
            moments = self.slots_.get((name, slot))
            if moments is not None and moments.count >= self.min_slot_count:
                return moments
        return self.overall_.get(name)

    def _std(self, moments: _Moments) -> float:
        floor = max(self.min_std, self.relative_min_std * abs(moments.mean))
        return max(math.sqrt(moments.var), floor)

    def feature_scores(self, x: Mapping[str, float]) -> dict[str, float]:
        """Signed (or absolute, when two-sided) z-score of each feature against its baseline."""
        slot = self._slot(x)
        scores: dict[str, float] = {}
        for name, value in feature_items(x).items():
            moments = self._baseline(name, slot)
            if moments is None or moments.count < 2:
                scores[name] = 0.0
                continue
            z = (value - moments.mean) / self._std(moments)
            scores[name] = abs(z) if self.two_sided else z
        return scores

    def score_one(self, x: Mapping[str, float]) -> float:
        """The largest feature z-score (0 while nothing is learnt); higher = more anomalous."""
        scores = self.feature_scores(x)
        return max(scores.values(), default=0.0)

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Update the whole-series and the slot statistics of every feature."""
        slot = self._slot(x)
        for name, value in feature_items(x).items():
            targets = [self.overall_.setdefault(name, _Moments())]
            if slot is not None:
                targets.append(self.slots_.setdefault((name, slot), _Moments()))
            for moments in targets:
                floor = max(self.min_std, self.relative_min_std * abs(moments.mean))
                moments.update(value, self.alpha, self.clip_sigmas, floor)
