"""From raw scores to decisions: a threshold fitted to an alert budget, and a severity scale."""

from __future__ import annotations

import logging
from typing import Any, Literal, Self

import numpy as np

from models.base import FloatArray
from models.params import ParamsMixin

logger = logging.getLogger(__name__)

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_QUANTILES = (0.5, 0.8, 0.95)
"""Quantiles of the calibration scores above the threshold that separate the severities."""


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
    ``"critical"``.

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
