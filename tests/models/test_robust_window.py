"""RobustWindowDetector: exact window median / MAD, the floor, forgetting, late features."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from models.online.robust_window import (
    RobustWindowDetector,
    median_and_mad_of_sorted,
    median_and_scale_of_series,
    refresh_all,
)
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


def test_pushing_then_refreshing_all_at_once_matches_learning_one_by_one() -> None:
    rng = np.random.default_rng(3)
    names = ["a", "b", "c"]
    one_by_one = [RobustWindowDetector(window=6, log1p=False) for _ in range(5)]
    batched = [RobustWindowDetector(window=6, log1p=False) for _ in range(5)]
    # Entities of different ages: 2, 4, 6, 9 and 9 windows learnt (three history shapes).
    for index, count in enumerate((2, 4, 6, 9, 9)):
        for _ in range(count):
            row = rng.poisson(3.0, size=3).astype(float)
            one_by_one[index].learn_array(row, names)
            batched[index].push_array(row, names)
    assert all(d.stale_ for d in batched)
    refresh_all(batched)
    for slow, fast in zip(one_by_one, batched, strict=True):
        assert not fast.stale_
        np.testing.assert_array_equal(slow.median_, fast.median_)
        np.testing.assert_array_equal(slow.scale_, fast.scale_)
        # Own arrays, not views pinning the stack of every entity refreshed with it.
        assert fast.median_.base is None and fast.scale_.base is None


def test_a_pushed_vector_counts_before_an_explicit_refresh() -> None:
    detector = RobustWindowDetector(window=3, min_history=1, log1p=False)
    for value in (1.0, 1.0, 7.0):
        detector.push_array([value], ["x"])
    # median(1, 1, 7) = 1 although nothing called refresh().
    assert detector.typical() == {"x": 1.0}
    assert detector.deviations({"x": 1.0}) == {"x": 0.0}


def test_push_array_with_names_in_another_order_or_missing_aligns_them() -> None:
    detector = RobustWindowDetector(window=4, log1p=False)
    detector.learn_array([1.0, 2.0], ["a", "b"])
    detector.learn_array([5.0, float("nan")], ["b", "a"])
    detector.learn_array([3.0], ["c"])
    np.testing.assert_array_equal(
        detector.history(), [[1.0, 2.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 3.0]]
    )


def test_a_pickle_holds_only_the_rows_learnt_and_restores_the_full_window() -> None:
    detector = RobustWindowDetector(window=60, log1p=False)
    for value in (1.0, 2.0, 4.0):
        detector.learn_array([value] * 40, [f"f{j}" for j in range(40)])
    young = len(pickle.dumps(detector))
    restored = pickle.loads(pickle.dumps(detector))
    assert restored.buffer_.shape == (60, 40)
    np.testing.assert_array_equal(restored.history(), detector.history())
    # 3 rows of 40 float32 rather than 60: well under the 9.6 kB of a full window.
    assert young < 3000
    restored.learn_array([8.0] * 40, restored.features_)
    assert float(restored.median_[0]) == 3.0


def test_a_detector_pickled_before_push_array_existed_is_fresh() -> None:
    detector = RobustWindowDetector(window=5, log1p=False)
    detector.learn_one({"x": 2.0})
    del detector.__dict__["stale_"]  # as unpickled from an older checkpoint
    restored = pickle.loads(pickle.dumps(detector))
    assert restored.stale_ is False and restored.typical() == {"x": 2.0}


def test_refresh_all_matches_refresh_for_odd_and_even_histories_of_any_values() -> None:
    # Continuous values of both signs with ties, histories of 1 to 7 rows (odd and even
    # middles), several detectors per shape: the float32 sort must give np.median's numbers.
    rng = np.random.default_rng(11)
    names = ["a", "b"]
    batched = [RobustWindowDetector(window=7, log1p=False) for _ in range(21)]
    for index, detector in enumerate(batched):
        for _ in range(1 + index % 7):
            row = np.round(rng.normal(0.0, 3.0, size=2), 1 + index % 3)
            detector.push_array(row, names)
    refresh_all(batched)
    for detector in batched:
        kept = detector.history().astype(np.float64)
        assert np.array_equal(detector.median_, np.median(kept, axis=0))
        mad = np.median(np.abs(kept - np.median(kept, axis=0)), axis=0)
        assert np.array_equal(detector.scale_, 1.4826 * mad)
    assert {len(d.history()) for d in batched} == set(range(1, 8))


def test_median_and_mad_of_sorted_rows_are_np_median_s_for_any_length_and_values() -> None:
    # Lengths 1 to 61 (odd and even), ties, both signs, wide magnitudes: the binary search
    # over the two runs of deviations must pick exactly np.median's middle.
    rng = np.random.default_rng(17)
    for length in range(1, 62):
        rows = np.concatenate(
            [
                np.log1p(rng.poisson(rng.uniform(0.0, 4.0), size=(20, length))),
                np.round(rng.normal(0.0, 3.0, size=(20, length)), 1),
                rng.normal(0.0, 1.0, size=(20, length)) * 10.0 ** rng.uniform(-6, 6, (20, 1)),
            ]
        ).astype(np.float32)
        median, mad = median_and_mad_of_sorted(np.sort(rows, axis=1))
        wide = rows.astype(np.float64)
        expected = np.median(wide, axis=1)
        assert np.array_equal(median, expected)
        assert np.array_equal(mad, np.median(np.abs(wide - expected[:, None]), axis=1))


def test_refresh_writes_into_shared_arrays_rather_than_replacing_them() -> None:
    store = np.zeros((2, 1))
    detector = RobustWindowDetector(window=3, log1p=False)
    detector.set_columns(["x"])
    detector.median_, detector.scale_ = store[0], store[1]
    for value in (1.0, 5.0, 2.0):
        detector.learn_array([value], ["x"])
    assert store.tolist() == [[2.0], [1.4826]]
    assert detector.median_.base is store


def test_median_and_scale_of_series_counts_the_median_s_ties_of_flat_series_only() -> None:
    # Row 0 [0, 0, 4, 0, 9]: median 0 held 3 times of 5, MAD 0 -> ties 3. Row 1 (its first
    # four slots) [2, 2, 2, 7]: median 2 held 3 times, MAD 0 -> ties 3. Row 2 [1, 5, 5, 9, 9]:
    # median 5, deviations [4, 0, 0, 4, 4] -> MAD 4, so no ties are reported.
    series = np.array([[0, 0, 4, 0, 9], [2, 2, 2, 7, 100], [1, 5, 5, 9, 9]], dtype=np.float32)
    median, scale, ties = median_and_scale_of_series(
        series, np.array([0, 1, 2]), np.array([5, 4, 5])
    )
    assert median.tolist() == [0.0, 2.0, 5.0]
    assert scale.tolist() == [0.0, 0.0, 1.4826 * 4.0]
    assert ties.tolist() == [3, 3, 0]


def test_median_and_scale_of_series_matches_np_median_for_constant_and_varying_rows() -> None:
    rng = np.random.default_rng(5)
    series = np.log1p(rng.poisson(0.4, size=(300, 12))).astype(np.float32)
    series[:40] = series[:40, :1]  # constant rows, zeros among them
    kept = rng.integers(1, 13, size=300)
    median, scale, _ = median_and_scale_of_series(series, np.arange(300), kept)
    for row, length in enumerate(kept.tolist()):
        values = series[row, :length].astype(np.float64)
        expected = np.median(values)
        assert median[row] == expected
        assert scale[row] == 1.4826 * np.median(np.abs(values - expected))
