"""From raw scores to decisions: thresholds fitted or tracked to an alert budget, severities."""

from __future__ import annotations

import logging
import math
from typing import Any, Literal, Self

import numpy as np

from models.base import FloatArray
from models.params import ParamsMixin

logger = logging.getLogger(__name__)

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_QUANTILES = (0.5, 0.8, 0.95)
"""Quantiles of the calibration scores above the threshold that separate the severities."""


SEVERITY_NINES = (1.0, 2.0, 3.0)
"""Nines of rarity beyond the alert threshold that separate the severities of
:func:`severity_beyond`: 10x, 100x and 1000x rarer than the least score that could alert."""


def severity_beyond(nines: float) -> Severity:
    """Severity of an alert from how many nines of rarity it lies beyond its threshold.

    ``nines`` is the alert's surprise (``-log10`` of the share of reference scores at least
    as high) minus the threshold's: 1 means ten times rarer than the least score that could
    alert. Below 1 it is ``"low"``, below 2 ``"medium"``, below 3 ``"high"``, else
    ``"critical"`` (a thousand times rarer than the threshold, or more). Unlike the quantiles
    of :meth:`BudgetCalibrator.severity`, it does not depend on the other alerts: an alert
    far beyond the threshold is critical even when every alert of the run is like it.

    Examples
    --------
    >>> [severity_beyond(n) for n in (0.0, 0.99, 1.0, 2.3, 3.0, 7.5)]
    ['low', 'low', 'medium', 'high', 'critical', 'critical']
    """
    low_cut, medium_cut, high_cut = SEVERITY_NINES
    if nines >= high_cut:
        return "critical"
    if nines >= medium_cut:
        return "high"
    if nines >= low_cut:
        return "medium"
    return "low"


def _as_scores(scores: Any) -> FloatArray:
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError("no scores to calibrate on")
    if not np.all(np.isfinite(array)):
        raise ValueError("scores contain NaN or infinite values")
    return array


class BudgetCalibrator(ParamsMixin):
    """Threshold raw scores so the expected alert volume matches a budget.

    ``fit(scores, n_windows_per_period, budget_per_period)`` sets the threshold at the
    ``1 - budget / n`` quantile of the calibration scores (linear interpolation): with ``n``
    entity-windows scored per period (e.g. 500 user-days per day) and a budget of ``b`` alerts
    per period, a fraction ``b / n`` of windows lies above it, i.e. ``b`` alerts per period if
    future scores are distributed like the calibration ones. ``fit_rate(scores, fpr)`` does the
    same for a target false-positive rate (scores assumed to be mostly normal behaviour).
    A score alerts when it is strictly above the threshold, so a flat stretch of identical
    scores never alerts wholesale.

    Severity rule: the calibration scores strictly above the threshold (the would-be alerts)
    give cut points at their 50th, 80th and 95th percentiles. An alerting score up to the first
    cut is ``"low"``, up to the second ``"medium"``, up to the third ``"high"``, beyond it
    ``"critical"``. Scores not above the threshold are ``"low"`` (severity is meant for alerts).
    When no calibration score exceeds the threshold, any alert is beyond everything seen, hence
    ``"critical"``. This rule ranks alerts among each other (when every alert has the same score,
    all are ``"low"``); the scan's alerts use the absolute :func:`severity_beyond` instead.

    Parameters
    ----------
    min_threshold : float | None
        Optional lower bound on the threshold (e.g. 0 for z-score detectors, so a quiet period
        cannot push the threshold down to ordinary behaviour).

    Attributes
    ----------
    threshold_ : float
        Scores strictly above it alert.
    severity_cuts_ : ndarray of shape (3,)
        The low/medium, medium/high and high/critical cut points.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.arange(100.0)  # one day: 100 user-days scored
    >>> calibrator = BudgetCalibrator().fit(scores, n_windows_per_period=100, budget_per_period=5)
    >>> round(calibrator.threshold_, 2)
    94.05
    >>> int(calibrator.decide(scores).sum())
    5
    >>> [calibrator.severity(s) for s in (50.0, 96.0, 98.5, 120.0)]
    ['low', 'low', 'high', 'critical']
    """

    threshold_: float
    severity_cuts_: FloatArray

    def __init__(self, *, min_threshold: float | None = None) -> None:
        self.min_threshold = min_threshold

    def fit(
        self, scores: FloatArray, n_windows_per_period: float, budget_per_period: float
    ) -> Self:
        """Choose the threshold that yields ``budget_per_period`` alerts per period.

        Parameters
        ----------
        scores : ndarray
            Calibration scores (e.g. the training windows' scores).
        n_windows_per_period : float
            Entity-windows scored per period (e.g. active users per day).
        budget_per_period : float
            Alerts the analysts can take per period; 0 < budget <= n.

        Returns
        -------
        Self
            The fitted calibrator.
        """
        if n_windows_per_period <= 0:
            raise ValueError(f"n_windows_per_period must be > 0, got {n_windows_per_period}")
        if not 0 < budget_per_period <= n_windows_per_period:
            raise ValueError(
                f"budget_per_period must be in (0, n_windows_per_period={n_windows_per_period}]"
                f", got {budget_per_period}"
            )
        return self._fit_quantile(scores, 1.0 - budget_per_period / n_windows_per_period)

    def fit_rate(self, scores: FloatArray, fpr: float) -> Self:
        """Choose the threshold that a fraction ``fpr`` of the calibration scores exceed.

        Parameters
        ----------
        scores : ndarray
            Calibration scores, assumed to be (mostly) normal behaviour.
        fpr : float
            Target false-positive rate, 0 < fpr < 1.

        Returns
        -------
        Self
            The fitted calibrator.
        """
        if not 0 < fpr < 1:
            raise ValueError(f"fpr must be in (0, 1), got {fpr}")
        return self._fit_quantile(scores, 1.0 - fpr)

    def _fit_quantile(self, scores: FloatArray, level: float) -> Self:
        values = _as_scores(scores)
        threshold = float(np.quantile(values, level))
        if self.min_threshold is not None and threshold < self.min_threshold:
            logger.info(
                "threshold %.4g raised to min_threshold %.4g", threshold, self.min_threshold
            )
            threshold = self.min_threshold
        above = values[values > threshold]
        if above.size:
            self.severity_cuts_ = np.quantile(above, SEVERITY_QUANTILES)
        else:
            self.severity_cuts_ = np.full(len(SEVERITY_QUANTILES), threshold)
        self.threshold_ = threshold
        return self

    def decide(self, scores: FloatArray) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Return True where a score alerts (strictly above the threshold)."""
        self._require_fitted()
        decisions: np.ndarray[Any, np.dtype[np.bool_]] = (
            np.asarray(scores, dtype=np.float64) > self.threshold_
        )
        return decisions

    def severity(self, score: float) -> Severity:
        """Severity of one score under the rule in the class documentation."""
        self._require_fitted()
        if not score > self.threshold_:
            return "low"
        low_cut, medium_cut, high_cut = (float(cut) for cut in self.severity_cuts_)
        if score > high_cut:
            return "critical"
        if score > medium_cut:
            return "high"
        if score > low_cut:
            return "medium"
        return "low"

    def severities(self, scores: FloatArray) -> list[Severity]:
        """:meth:`severity` of each score."""
        return [self.severity(float(score)) for score in np.asarray(scores).reshape(-1)]

    def _require_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise RuntimeError("BudgetCalibrator is not fitted; call fit() or fit_rate() first")


class StreamingCalibrator(ParamsMixin):
    """An online threshold that tracks an alert budget with a windowed streaming quantile.

    The threshold in force is the ``1 - rate`` quantile of the last ``window`` scores seen,
    where ``rate`` is the target false-positive rate, or ``budget_per_period /
    windows_per_period`` for an alert budget (e.g. 5 alerts per day over 500 user-days a day).
    ``update(score)`` decides with the threshold in force *before* the score is added (a score
    never lowers the bar it is judged by), then adds it. Until ``min_scores`` scores are seen
    nothing alerts (the threshold is infinite): a cold start must not flood the analysts.
    A score alerts when strictly above the threshold, as in :class:`BudgetCalibrator`.

    The threshold is never the lowest score held: "strictly above" would then mean "not the
    minimum", and every score but the minimum would alert. While all the scores held are
    equal (e.g. a first day scored 0 for want of anything to compare with) they say nothing
    about what is rare, and no threshold is in force (infinite: no alert). When more than a
    ``1 - rate`` share of them are tied at the minimum (a regular population whose windows
    mostly deviate on nothing) the threshold is the lowest score held above the minimum: the
    budget cannot be met more finely than the ties allow, and a window alerts only when it
    deviates more than the least deviating one seen. For the daemon's scores, which are
    never below 0, a threshold of 0 is never in force.

    The window is an exact sorted reservoir of the most recent scores (deterministic,
    picklable, O(window) per update), so the threshold follows drift within ``window`` scores.

    Parameters
    ----------
    fpr : float | None
        Target fraction of scores that alert, 0 < fpr < 1.
    budget_per_period, windows_per_period : float | None
        Alternative to ``fpr``: alerts allowed per period and scores seen per period.
    window : int
        Recent scores kept for the quantile.
    min_scores : int
        Scores needed before anything alerts.
    min_threshold : float | None
        Optional lower bound on the threshold.

    Attributes
    ----------
    threshold_ : float
        The threshold in force (``inf`` during warm-up).
    n_seen_, n_alerts_ : int
        Scores seen and alerts raised so far.

    Examples
    --------
    >>> calibrator = StreamingCalibrator(fpr=0.1, window=100, min_scores=100)
    >>> decisions = [calibrator.update(float(i % 100)) for i in range(1000)]
    >>> round(calibrator.threshold_, 1), calibrator.n_alerts_  # 90..99 in each of 9 cycles
    (89.1, 90)
    >>> calibrator.update(500.0), calibrator.update(1.0)
    (True, False)

    A warm-up of identical scores sets no threshold; scores mostly tied at the minimum set
    it at the lowest score above it:

    >>> flat = StreamingCalibrator(fpr=0.1, window=100, min_scores=10)
    >>> [flat.update(0.0) for _ in range(50)][-1], flat.threshold_, flat.update(3.0)
    (False, inf, False)
    >>> flat.threshold_, flat.update(3.0), flat.update(3.5)
    (3.0, False, True)
    """

    threshold_: float

    def __init__(
        self,
        *,
        fpr: float | None = None,
        budget_per_period: float | None = None,
        windows_per_period: float | None = None,
        window: int = 5000,
        min_scores: int = 100,
        min_threshold: float | None = None,
    ) -> None:
        self.fpr = fpr
        self.budget_per_period = budget_per_period
        self.windows_per_period = windows_per_period
        self.window = window
        self.min_scores = min_scores
        self.min_threshold = min_threshold
        self.level_ = 1.0 - self._rate()
        if window < 1 or min_scores < 1:
            raise ValueError("window and min_scores must be >= 1")
        # Imported here: models.online imports nothing from calibration, but keep the
        # batch-only users of this module free of the online package.
        from models.online._common import WindowedECDF

        self.recent_: WindowedECDF = WindowedECDF(window)
        self.threshold_ = math.inf
        self.n_seen_ = 0
        self.n_alerts_ = 0

    def _rate(self) -> float:
        if self.fpr is not None:
            if self.budget_per_period is not None or self.windows_per_period is not None:
                raise ValueError("give either fpr or budget_per_period/windows_per_period")
            if not 0 < self.fpr < 1:
                raise ValueError(f"fpr must be in (0, 1), got {self.fpr}")
            return self.fpr
        if self.budget_per_period is None or self.windows_per_period is None:
            raise ValueError("give fpr, or both budget_per_period and windows_per_period")
        if not 0 < self.budget_per_period < self.windows_per_period:
            raise ValueError(
                f"budget_per_period must be in (0, windows_per_period={self.windows_per_period})"
                f", got {self.budget_per_period}"
            )
        return self.budget_per_period / self.windows_per_period

    def update(self, score: float) -> bool:
        """Decide on ``score`` with the threshold in force, then learn it; True = alert."""
        value = float(score)
        if not math.isfinite(value):
            raise ValueError(f"score must be finite, got {score}")
        alert = value > self.threshold_
        self.n_alerts_ += int(alert)
        self.recent_.push(value)
        self.n_seen_ += 1
        self.refresh_threshold()
        return alert

    def retarget(self, budget_per_period: float, windows_per_period: float) -> None:
        """Track another alert budget from now on (a restored state given a changed config).

        The quantile level follows the new budget at once and the threshold is re-read from
        the scores already held, as :meth:`update` would have set it.

        Examples
        --------
        >>> calibrator = StreamingCalibrator(budget_per_period=10, windows_per_period=100,
        ...                                  window=100, min_scores=10)
        >>> for score in range(100):
        ...     _ = calibrator.update(float(score))
        >>> calibrator.retarget(1, 100)
        >>> calibrator.level_, calibrator.threshold_ > 95
        (0.99, True)
        """
        if self.fpr is not None:
            raise ValueError("a calibrator with a false-positive rate has no budget to retarget")
        self.budget_per_period = budget_per_period
        self.windows_per_period = windows_per_period
        self.level_ = 1.0 - self._rate()
        self.refresh_threshold()

    def refresh_threshold(self) -> None:
        """Re-read the threshold in force from the scores held (see the class documentation).

        Called by :meth:`update` and :meth:`retarget`; a caller that pushes many scores into
        :attr:`recent_` at once calls it after them.
        """
        if len(self.recent_) < self.min_scores:
            return
        recent = self.recent_
        threshold = recent.quantile(self.level_)
        if self.min_threshold is not None:
            threshold = max(threshold, self.min_threshold)
        lowest = recent.quantile(0.0)
        if not threshold > lowest:
            # At the minimum: the lowest score above it (the position of the first one in
            # sorted order, nudged so that rounding cannot land below it), none while every
            # score held is the minimum.
            n = len(recent)
            first_above = round(recent.rank(lowest) * n)
            if first_above >= n:
                threshold = math.inf
            else:
                threshold = recent.quantile(min((first_above + 1e-6) / (n - 1), 1.0))
        self.threshold_ = threshold
