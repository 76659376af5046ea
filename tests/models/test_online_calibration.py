"""The streaming calibrator: threshold tracking a budget, warm-up, drift, pickling."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from models.calibration import StreamingCalibrator


def test_alert_rate_matches_the_budget_on_a_stationary_stream() -> None:
    rng = np.random.default_rng(0)
    # 10 alerts a day over 1000 entity-windows a day: a 1 % rate.
    calibrator = StreamingCalibrator(
        budget_per_period=10, windows_per_period=1000, window=2000, min_scores=500
    )
    scores = rng.normal(size=20_000)
    for s in scores[:500]:
        calibrator.update(float(s))
    alerts = sum(calibrator.update(float(s)) for s in scores[500:])
    assert alerts / 19_500 == pytest.approx(0.01, abs=0.002)
    assert calibrator.threshold_ == pytest.approx(2.326, abs=0.15)  # N(0,1) 99th percentile


def test_nothing_alerts_during_warm_up() -> None:
    calibrator = StreamingCalibrator(fpr=0.5, window=10, min_scores=5)
    decisions = [calibrator.update(float(v)) for v in (1, 2, 3, 4, 5)]
    assert decisions == [False] * 5
    # Window {1..5}: the median is 3; 10 > 3 alerts, 3 does not (strictly above).
    assert calibrator.threshold_ == 3.0
    assert calibrator.update(10.0) is True
    assert calibrator.update(2.0) is False


def test_threshold_follows_drift_within_a_window() -> None:
    calibrator = StreamingCalibrator(fpr=0.1, window=100, min_scores=10)
    for _ in range(300):
        calibrator.update(1.0)
    # Identical scores say nothing about what is rare: no threshold is in force.
    assert calibrator.threshold_ == math.inf
    for i in range(100):
        calibrator.update(100.0 + i)
    # Only the drifted scores remain: the 0.9 quantile of 100..199 is 189.1.
    assert calibrator.threshold_ == pytest.approx(189.1)


def test_min_threshold_is_a_floor() -> None:
    calibrator = StreamingCalibrator(fpr=0.1, window=50, min_scores=1, min_threshold=3.0)
    for _ in range(20):
        calibrator.update(0.0)
    assert calibrator.threshold_ == 3.0


def test_pickle_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(1)
    scores = rng.exponential(size=600).tolist()
    calibrator = StreamingCalibrator(fpr=0.05, window=200, min_scores=50)
    for s in scores[:300]:
        calibrator.update(s)
    restored = pickle.loads(pickle.dumps(calibrator))
    assert [restored.update(s) for s in scores[300:]] == [
        calibrator.update(s) for s in scores[300:]
    ]
    assert restored.threshold_ == calibrator.threshold_


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"fpr": 0.0},
        {"fpr": 0.1, "budget_per_period": 1, "windows_per_period": 10},
        {"budget_per_period": 20, "windows_per_period": 10},
        {"fpr": 0.1, "window": 0},
    ],
)
def test_bad_configurations_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        StreamingCalibrator(**kwargs)  # type: ignore[arg-type]


def test_non_finite_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        StreamingCalibrator(fpr=0.1).update(float("nan"))
