"""How improbable is this count under the series' own rate: a Poisson / negative binomial tail.

Each feature keeps an exponentially weighted mean ``m`` and variance ``v`` of its counts. A new
count ``k`` is scored by ``-log10 P(X >= k)``: Poisson with rate ``m`` when the counts are not
over-dispersed (``v <= m``), otherwise negative binomial with the same mean and variance
(``r = m^2 / (v - m)``), which is far less alarmed by a bursty series' usual bursts. Both
tails are regularised incomplete functions, so non-integer "counts" (sums, rates) work too:
``P(X >= k) = P(k, m)`` (lower regularised gamma) for Poisson and ``I_{m / (r + m)}(k, r)``
(regularised beta) for the negative binomial. The detector score is the largest over features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scipy import special

from models.online._common import feature_items
from models.params import ParamsMixin

_MIN_P = 1e-300


def poisson_upper_tail(k: float, rate: float) -> float:
    """``P(X >= k)`` for ``X ~ Poisson(rate)``, continuous in ``k``.

    Examples
    --------
    >>> round(poisson_upper_tail(5, 3.0), 4), poisson_upper_tail(0, 3.0)
    (0.1847, 1.0)
    """
    if k <= 0:
        return 1.0
    return float(special.gammainc(k, max(rate, 1e-12)))


def negbin_upper_tail(k: float, mean: float, var: float) -> float:
    """``P(X >= k)`` for a negative binomial with this mean and variance (``var > mean``).

    Examples
    --------
    >>> round(negbin_upper_tail(5, 3.0, 6.0), 4)
    0.2266
    """
    if k <= 0:
        return 1.0
    if var <= mean:
        return poisson_upper_tail(k, mean)
    r = mean * mean / (var - mean)
    return float(special.betainc(k, r, mean / (r + mean)))


class CountTailDetector(ParamsMixin):
    """``-log10`` upper-tail probability of each count under its own exponentially weighted rate.

    Parameters
    ----------
    alpha : float
        Weight of a new count in the running mean and variance (after warm-up).
    min_rate : float
        Floor on the rate, so a feature that was always 0 still scores its first 1 finitely.
    dispersion : bool
        Use the negative binomial when the counts are over-dispersed (else always Poisson).
    clip_quantile_p : float
        Robust update: a count whose tail probability is below this is learnt as if it were
        at the mean plus three standard deviations (a burst is not allowed to reset the rate).
    seed : int | None
        Accepted for the contract; the detector is deterministic.

    Examples
    --------
    >>> detector = CountTailDetector()
    >>> for day in range(30):
    ...     detector.learn_one({"usb": float(day % 3 == 0)})
    >>> round(detector.score_one({"usb": 1.0}), 2) < 1.0 < detector.score_one({"usb": 12.0})
    True
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        min_rate: float = 0.05,
        dispersion: bool = True,
        clip_quantile_p: float = 1e-4,
        seed: int | None = 0,
    ) -> None:
        self.alpha = alpha
        self.min_rate = min_rate
        self.dispersion = dispersion
        self.clip_quantile_p = clip_quantile_p
        self.seed = seed
        self.moments_: dict[str, tuple[int, float, float]] = {}

    def _tail(self, value: float, mean: float, var: float) -> float:
        rate = max(mean, self.min_rate)
        if self.dispersion and var > rate:
            return negbin_upper_tail(value, rate, var)
        return poisson_upper_tail(value, rate)

    def feature_scores(self, x: Mapping[str, float]) -> dict[str, float]:
        """``-log10 P(X >= count)`` of each feature (0 for a feature never seen)."""
        scores: dict[str, float] = {}
        for name, value in feature_items(x).items():
            state = self.moments_.get(name)
            if state is None:
                scores[name] = 0.0
                continue
            _, mean, var = state
            scores[name] = -math.log10(max(self._tail(max(value, 0.0), mean, var), _MIN_P))
        return scores

    def score_one(self, x: Mapping[str, float]) -> float:
        """The largest feature score; higher = more anomalous."""
        return max(self.feature_scores(x).values(), default=0.0)

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Update each feature's running mean and variance (bursts clipped)."""
        for name, raw in feature_items(x).items():
            value = max(raw, 0.0)
            state = self.moments_.get(name)
            if state is None:
                self.moments_[name] = (1, value, 0.0)
                continue
            count, mean, var = state
            if self._tail(value, mean, var) < self.clip_quantile_p:
                value = mean + 3.0 * math.sqrt(max(var, max(mean, self.min_rate)))
            count += 1
            weight = max(self.alpha, 1.0 / count)
            residual = value - mean
            mean += weight * residual
            var = (1.0 - weight) * (var + weight * residual * residual)
            self.moments_[name] = (count, mean, var)
