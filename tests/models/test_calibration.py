"""Budget calibration arithmetic on known score arrays."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import BudgetCalibrator


def test_budget_threshold_is_the_matching_quantile() -> None:
    # 10 days x 200 users; budget 4 alerts/day -> quantile 1 - 4/200 = 0.98 of 0..1999.
    scores = np.arange(2000.0)
    calibrator = BudgetCalibrator().fit(scores, n_windows_per_period=200, budget_per_period=4)
    assert calibrator.threshold_ == pytest.approx(0.98 * 1999.0)  # 1959.02
    alerts = calibrator.decide(scores)
    assert alerts.dtype == np.bool_
    assert int(alerts.sum()) == 40  # 1960..1999: 4 per day over 10 days


def test_fit_rate() -> None:
    calibrator = BudgetCalibrator().fit_rate(np.arange(1000.0), fpr=0.01)
    assert calibrator.threshold_ == pytest.approx(989.01)
    assert int(calibrator.decide(np.arange(1000.0)).sum()) == 10


def test_ties_at_the_threshold_do_not_alert() -> None:
    scores = np.zeros(100)
    calibrator = BudgetCalibrator().fit(scores, n_windows_per_period=100, budget_per_period=5)
    assert calibrator.threshold_ == 0.0
    assert not calibrator.decide(scores).any()
    assert calibrator.decide(np.array([0.1]))[0]
    assert calibrator.severity(0.1) == "critical"  # beyond everything seen in calibration


def test_severity_cut_points() -> None:
    calibrator = BudgetCalibrator().fit(np.arange(100.0), 100, 5)
    # Above the threshold 94.05: 95..99 -> cuts at their 50/80/95th percentiles: 97, 98.2, 98.8.
    np.testing.assert_allclose(calibrator.severity_cuts_, [97.0, 98.2, 98.8])
    assert calibrator.severities(np.array([10.0, 95.0, 97.0, 98.0, 98.5, 99.0])) == [
        "low",
        "low",
        "low",
        "medium",
        "high",
        "critical",
    ]


def test_min_threshold_bounds_a_quiet_period() -> None:
    calibrator = BudgetCalibrator(min_threshold=1.0).fit(np.linspace(0, 0.5, 50), 50, 5)
    assert calibrator.threshold_ == 1.0


@pytest.mark.parametrize(("n", "budget"), [(0, 1), (10, 0), (10, 11), (10, -1)])
def test_invalid_budget_is_refused(n: float, budget: float) -> None:
    with pytest.raises(ValueError):
        BudgetCalibrator().fit(np.arange(10.0), n, budget)


def test_nan_scores_are_refused_and_unfitted_use_raises() -> None:
    with pytest.raises(ValueError, match="NaN"):
        BudgetCalibrator().fit_rate(np.array([1.0, np.nan]), 0.1)
    with pytest.raises(RuntimeError, match="not fitted"):
        BudgetCalibrator().decide(np.zeros(3))
