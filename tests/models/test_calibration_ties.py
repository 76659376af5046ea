"""The streaming threshold is never the lowest score held (ties at the minimum, flat warm-ups)."""

from __future__ import annotations

import math

import pytest

from models.calibration import StreamingCalibrator


def _calibrator(**overrides: float) -> StreamingCalibrator:
    params: dict[str, float] = {"budget_per_period": 5, "windows_per_period": 1000}
    params.update(overrides)
    return StreamingCalibrator(window=2000, min_scores=100, **params)  # type: ignore[arg-type]


def test_a_warm_up_of_identical_scores_sets_no_threshold() -> None:
    calibrator = _calibrator()
    decisions = [calibrator.update(0.0) for _ in range(150)]
    # Before: 150 zeros made 0 the threshold, and every later score above 0 alerted.
    assert calibrator.threshold_ == math.inf
    assert calibrator.update(8.44) is False
    assert not any(decisions) and calibrator.n_alerts_ == 0


def test_scores_mostly_tied_at_the_minimum_put_it_at_the_lowest_score_above() -> None:
    calibrator = _calibrator()
    for _ in range(996):
        calibrator.update(0.0)
    for score in (2.0, 3.0, 4.0, 5.0):
        calibrator.update(score)
    # The 0.995 quantile of 996 zeros and 4 positive scores is 0 (position 994.005): the
    # threshold is the lowest positive score held instead.
    assert calibrator.threshold_ == pytest.approx(2.0)
    assert (calibrator.update(2.0), calibrator.update(2.5)) == (False, True)


def test_a_quantile_above_the_minimum_is_the_threshold_as_before() -> None:
    calibrator = _calibrator()
    for k in range(1000):
        calibrator.update(0.0 if k < 900 else float(k - 899))
    # Scores 1..100 above 900 zeros: position 0.995 x 999 = 994.005 -> 95.005.
    assert calibrator.threshold_ == pytest.approx(95.005)


def test_a_min_threshold_above_the_minimum_is_in_force_over_flat_scores() -> None:
    calibrator = StreamingCalibrator(fpr=0.1, window=50, min_scores=10, min_threshold=3.0)
    for _ in range(20):
        calibrator.update(0.0)
    assert calibrator.threshold_ == 3.0
    flat_at_floor = StreamingCalibrator(fpr=0.1, window=50, min_scores=10, min_threshold=3.0)
    for _ in range(20):
        flat_at_floor.update(3.0)
    assert flat_at_floor.threshold_ == math.inf
