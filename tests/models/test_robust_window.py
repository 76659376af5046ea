"""RobustWindowDetector: exact window median / MAD, the floor, forgetting, late features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.online.robust_window import RobustWindowDetector
from models.registry import create


def test_z_is_against_the_window_median_and_mad() -> None:
    detector = RobustWindowDetector(window=5, min_history=3, log1p=False, top_k=1)
    for value in (1.0, 2.0, 3.0, 4.0, 100.0):
        detector.learn_one({"x": value})
    # median 3, MAD median(|-2, -1, 0, 1, 97|) = 1 -> scale 1.4826
    assert float(detector.median_[0]) == 3.0
    assert float(detector.scale_[0]) == pytest.approx(1.4826)
    assert detector.deviations({"x": 6.0})["x"] == pytest.approx(3.0 / 1.4826)
    assert detector.score_one({"x": 6.0}) == pytest.approx(3.0 / 1.4826)
    assert detector.score_one({"x": 0.0}) == 0.0  # drops do not score


def test_rms_of_the_top_k_counts_missing_positives_as_zero() -> None:
    detector = RobustWindowDetector(window=10, min_history=1, log1p=False, top_k=2, min_scale=1.0)
    for _ in range(4):
        detector.learn_one({"a": 0.0, "b": 0.0, "c": 0.0})
    # z = (3, 0, -2): RMS over k = 2 of (3, 0) = sqrt(9 / 2)
    assert detector.score_one({"a": 3.0, "b": 0.0, "c": -2.0}) == pytest.approx(math.sqrt(4.5))


def test_the_scale_floor_keeps_a_constant_series_finite() -> None:
    detector = RobustWindowDetector(window=10, min_history=3, min_scale=0.1)
    for _ in range(5):
        detector.learn_one({"usb": 0.0})
    # log1p(9) - log1p(0) over the floor 0.1
    assert detector.score_one({"usb": 9.0}) == pytest.approx(math.log(10.0) / 0.1)


def test_the_window_forgets_old_values() -> None:
    detector = RobustWindowDetector(window=3, min_history=1, log1p=False)
    for value in (50.0, 50.0, 50.0, 1.0, 1.0, 1.0):
        detector.learn_one({"x": value})
    assert detector.typical() == {"x": 1.0}
    assert detector.n_learnt_ == 6
    assert detector.history().shape == (3, 1)


def test_nothing_scores_before_min_history() -> None:
    detector = RobustWindowDetector(min_history=5)
    for _ in range(4):
        detector.learn_one({"x": 1.0})
    assert detector.score_one({"x": 1000.0}) == 0.0
    detector.learn_one({"x": 1.0})
    assert detector.score_one({"x": 1000.0}) > 10.0


def test_a_feature_that_appears_late_was_zero_before() -> None:
    detector = RobustWindowDetector(window=10, min_history=3, log1p=False)
    for _ in range(4):
        detector.learn_one({"x": 2.0})
    detector.learn_one({"x": 2.0, "y": 1.0})
    assert detector.features_ == ["x", "y"]
    np.testing.assert_array_equal(detector.history()[:, 1], [0.0, 0.0, 0.0, 0.0, 1.0])
    assert detector.typical() == {"x": 2.0, "y": 0.0}


def test_learn_array_matches_learn_one() -> None:
    by_dict = RobustWindowDetector(window=4)
    by_array = RobustWindowDetector(window=4)
    for i in range(7):
        row = {"a": float(i % 3), "b": float(i * i)}
        by_dict.learn_one(row)
        by_array.learn_array(list(row.values()), list(row))
    np.testing.assert_array_equal(by_dict.buffer_, by_array.buffer_)
    assert by_dict.score_one({"a": 9.0, "b": 0.0}) == by_array.score_one({"a": 9.0, "b": 0.0})


def test_registered_and_validated() -> None:
    assert isinstance(create("robust_window", window=5), RobustWindowDetector)
    with pytest.raises(ValueError, match="window"):
        RobustWindowDetector(window=0)
