"""Anomaly likelihood: how unusual is a detector's recent raw score, given its own history.

After Numenta's "anomaly likelihood" (Ahmad et al. 2017): raw scores of any online detector are
noisy and their scale drifts per series. This wrapper keeps the member's last ``history`` raw
scores, averages the last ``short_window`` of them, and scores the tail probability of that
short-term average under a Gaussian fitted to the long history (running mean and variance):
``score = -log10 Q((short_mean - mean) / std)``. A sustained rise scores higher than one noisy
blip, and a series whose raw scores are always high stops alarming.

After a score at or above ``suppress_level`` the next ``suppress_steps`` scores are zero: one
incident yields one alert rather than a run of them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from models.base import OnlineDetector
from models.online.ensemble import _create_online
from models.params import ParamsMixin

_MAX_SCORE = 300.0


def _gaussian_upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


class AnomalyLikelihoodDetector(ParamsMixin):
    """``-log10`` tail probability of a member's short-term mean raw score.

    Parameters
    ----------
    member : str
        An online detector name from the registry (the raw scorer).
    member_params : mapping, optional
        Its hyper-parameters.
    history : int
        Raw scores kept for the long-run mean and variance.
    short_window : int
        Raw scores averaged for the current level (including the one being scored).
    min_history : int
        Scores are 0 until this many raw scores are known.
    min_std : float
        Floor on the long-run standard deviation.
    suppress_steps : int
        Steps silenced after a score reaches ``suppress_level`` (0 disables).
    suppress_level : float
        The score that starts a silence.
    seed : int | None
        Passed to the member.

    Examples
    --------
    >>> detector = AnomalyLikelihoodDetector(member="seasonal", min_history=20)
    >>> for i in range(100):
    ...     detector.learn_one({"x": float(i % 5)})
    >>> detector.score_one({"x": 2.0}) < 1.0 < detector.score_one({"x": 100.0})
    True
    """

    def __init__(
        self,
        *,
        member: str = "seasonal",
        member_params: Mapping[str, Any] | None = None,
        history: int = 2000,
        short_window: int = 5,
        min_history: int = 100,
        min_std: float = 0.05,
        suppress_steps: int = 0,
        suppress_level: float = 4.0,
        seed: int | None = 0,
    ) -> None:
        self.member = member
        self.member_params = member_params
        self.history = history
        self.short_window = short_window
        self.min_history = min_history
        self.min_std = min_std
        self.suppress_steps = suppress_steps
        self.suppress_level = suppress_level
        self.seed = seed
        self.member_: OnlineDetector = _create_online(member, member_params or {}, seed)
        self.raw_: deque[float] = deque()
        self.averages_: deque[float] = deque()
        self.sum_ = 0.0
        self.sum_sq_ = 0.0
        self.n_learnt_ = 0
        self.silent_until_ = 0

    def _short_mean(self, raw: float) -> float:
        recent = list(self.raw_)[-(self.short_window - 1) :] if self.short_window > 1 else []
        return (raw + sum(recent)) / (len(recent) + 1)

    def _likelihood_score(self, average: float) -> float:
        n = len(self.averages_)
        if n < self.min_history:
            return 0.0
        mean = self.sum_ / n
        var = max(self.sum_sq_ / n - mean * mean, 0.0)
        std = max(math.sqrt(var), self.min_std)
        tail = _gaussian_upper_tail((average - mean) / std)
        return min(-math.log10(max(tail, 1e-300)), _MAX_SCORE)

    def score_one(self, x: Mapping[str, float]) -> float:
        """Likelihood score (0 to 300); higher = more anomalous; 0 while silenced."""
        if self.n_learnt_ < self.silent_until_:
            return 0.0
        return self._likelihood_score(self._short_mean(self.member_.score_one(x)))

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Record the member's raw score (score first), start a silence if due, then learn."""
        raw = self.member_.score_one(x)
        average = self._short_mean(raw)
        if (
            self.suppress_steps > 0
            and self.n_learnt_ >= self.silent_until_
            and self._likelihood_score(average) >= self.suppress_level
        ):
            self.silent_until_ = self.n_learnt_ + 1 + self.suppress_steps
        self.raw_.append(raw)
        if len(self.raw_) > self.short_window:
            self.raw_.popleft()
        self.averages_.append(average)
        self.sum_ += average
        self.sum_sq_ += average * average
        if len(self.averages_) > self.history:
            old = self.averages_.popleft()
            self.sum_ -= old
            self.sum_sq_ -= old * old
        self.n_learnt_ += 1
        self.member_.learn_one(x)
