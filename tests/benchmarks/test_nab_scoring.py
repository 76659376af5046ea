"""Our NAB scorer on tiny hand-made series, with rewards computed by hand.

The reward curve is ``2 / (1 + exp(5 p)) - 1 = tanh(-5 p / 2)``, so every expected value below
is a tanh of a hand-computed relative position. Series of 20 rows have a probationary period
of ``floor(0.15 * 20) = 3`` rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.nab import (
    NO_DETECTION,
    CostProfile,
    NabCorpus,
    NabSeries,
    nab_scores,
    optimise_threshold,
    score_detector,
    score_series,
    threshold_curve,
)
from benchmarks.nab.scoring import point_rewards, probation_rows, scaled_sigmoid

STANDARD = CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
LOW_FN = CostProfile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
MAX_TP = math.tanh(2.5)  # the reward curve at the left edge of a window, 0.98661...


def _one_window(n_rows: int = 20) -> NabSeries:
    # Rows 10..14: a window of width 5.
    return NabSeries.from_rows("toy.csv", n_rows, [(10, 14)])


def _flags(n_rows: int, *rows: int) -> np.ndarray:
    flags = np.zeros(n_rows)
    flags[list(rows)] = 1.0
    return flags


def _raw(series: NabSeries, *rows: int, profile: CostProfile = STANDARD) -> float:
    return score_series(series, _flags(series.n_rows, *rows), profile, threshold=0.5).raw


def test_scaled_sigmoid_matches_nab_reference_points() -> None:
    positions = np.array([-1.0, -0.5, 0.0, 1.0, 2.999, 3.0, 10.0])
    expected = [0.98661, 0.84828, 0.0, -0.98661, -0.99999939, -1.0, -1.0]
    assert scaled_sigmoid(positions) == pytest.approx(expected, abs=1e-5)


def test_probationary_period_is_15_percent_capped_at_750_rows() -> None:
    assert probation_rows(20) == 3
    assert probation_rows(1000) == 150
    assert probation_rows(5000) == 750
    assert probation_rows(22695) == 750


def test_detection_at_window_start_earns_exactly_tp_weight() -> None:
    assert _raw(_one_window(), 10) == pytest.approx(1.0, abs=1e-12)


def test_detection_at_window_end_earns_the_late_reward() -> None:
    # Row 14 is the last of 5 rows: position -(14 - 14 + 1) / 5 = -0.2 -> tanh(0.5) / tanh(2.5).
    assert _raw(_one_window(), 14) == pytest.approx(0.4683868439, abs=1e-9)
    assert _raw(_one_window(), 14) == pytest.approx(math.tanh(0.5) / MAX_TP, abs=1e-12)


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    # Row 12: position -(14 - 12 + 1) / 5 = -0.6 -> tanh(1.5) / tanh(2.5) = 0.91743.
    assert _raw(_one_window(), 12, 13, 14) == pytest.approx(0.9174286804, abs=1e-9)


def test_false_positive_before_any_window_costs_full_fp_weight_and_window_is_missed() -> None:
    assert _raw(_one_window(), 5) == pytest.approx(-0.11 - 1.0, abs=1e-12)


def test_false_positive_just_after_window_costs_little() -> None:
    # Row 16 is (16 - 14) / (5 - 1) = 0.5 past the window: 0.11 * tanh(1.25) = 0.093311.
    assert _raw(_one_window(), 16) == pytest.approx(-1.0 - 0.0933112004, abs=1e-9)
    assert _raw(_one_window(), 10, 16) == pytest.approx(1.0 - 0.0933112004, abs=1e-9)


def test_false_positive_far_after_window_costs_full_fp_weight() -> None:
    # Row 30 is (30 - 14) / 4 = 4 >= 3 windows widths past the window: exactly -0.11.
    assert _raw(_one_window(40), 10, 30) == pytest.approx(1.0 - 0.11, abs=1e-12)


def test_detections_in_probationary_period_are_ignored() -> None:
    assert _raw(_one_window(), 0, 1, 2) == pytest.approx(-1.0, abs=1e-12)
    assert _raw(_one_window(), 3) == pytest.approx(-1.11, abs=1e-12)


def test_fn_weight_of_profile_scales_the_miss() -> None:
    assert _raw(_one_window(), 5, profile=LOW_FN) == pytest.approx(-0.11 - 2.0, abs=1e-12)


def test_score_series_counts_windows_and_false_positives() -> None:
    result = score_series(_one_window(), _flags(20, 5, 12, 16), STANDARD, 0.5)
    assert (result.detected_windows, result.missed_windows, result.false_positives) == (1, 0, 2)


def test_second_window_measures_false_positives_from_the_nearest_preceding_window() -> None:
    series = NabSeries.from_rows("two.csv", 40, [(10, 14), (20, 22)])
    # Row 24 follows the second window (width 3): (24 - 22) / 2 = 1 -> 0.11 * tanh(2.5).
    expected = 1.0 + 1.0 - 0.11 * math.tanh(2.5)
    assert _raw(series, 10, 20, 24) == pytest.approx(expected, abs=1e-12)


def test_optimiser_picks_the_best_threshold_on_a_hand_made_series() -> None:
    corpus = NabCorpus({"toy.csv": _one_window()})
    scores = np.zeros(20)
    # 0.9: a false positive before the window; 0.8: a detection mid-window (row 12);
    # 0.5: a false positive after it; 0.3: an earlier detection (row 10) that would replace 12's.
    scores[[6, 12, 17, 10]] = [0.9, 0.8, 0.5, 0.3]
    curve = threshold_curve(corpus, {"toy.csv": scores}, STANDARD)
    fp_after = 0.11 * math.tanh(1.875)  # row 17 is (17 - 14) / 4 = 0.75 past the window
    r12 = math.tanh(1.5) / MAX_TP
    assert curve.thresholds.tolist() == [NO_DETECTION, 0.9, 0.8, 0.5, 0.3, 0.0]
    assert curve.raw_scores[:5] == pytest.approx(
        [-1.0, -1.11, -0.11 + r12, -0.11 + r12 - fp_after, -0.11 + 1.0 - fp_after], abs=1e-12
    )
    threshold, raw = optimise_threshold(corpus, {"toy.csv": scores}, STANDARD)
    assert threshold == 0.8
    assert raw == pytest.approx(-0.11 + 0.9174286804, abs=1e-9)


def test_optimiser_flags_nothing_when_every_threshold_loses() -> None:
    # Long stretches without anomaly: flagging everything (threshold 0) costs 120 false
    # positives before the window; threshold 1 adds two of them to the miss; nothing is best.
    corpus = NabCorpus({"long.csv": NabSeries.from_rows("long.csv", 200, [(150, 154)])})
    threshold, raw = optimise_threshold(corpus, {"long.csv": _flags(200, 50, 60)}, STANDARD)
    assert (threshold, raw) == (NO_DETECTION, -1.0)


def test_sweep_agrees_with_direct_scoring_at_every_threshold() -> None:
    rng = np.random.default_rng(11)
    series = {
        "a.csv": NabSeries.from_rows("a.csv", 200, [(40, 59), (120, 139)]),
        "b.csv": NabSeries.from_rows("b.csv", 150, [(100, 101)]),
        "c.csv": NabSeries.from_rows("c.csv", 80),
    }
    corpus = NabCorpus(series)
    # Rounded scores make many ties, as real detectors do.
    scores = {name: rng.random(s.n_rows).round(2) for name, s in series.items()}
    for profile in (STANDARD, LOW_FN):
        curve = threshold_curve(corpus, scores, profile)
        for threshold, raw in zip(curve.thresholds, curve.raw_scores, strict=True):
            direct = sum(
                score_series(s, scores[name], profile, float(threshold)).raw
                for name, s in series.items()
            )
            assert raw == pytest.approx(direct, abs=1e-9)


def test_normalisation_null_is_zero_and_perfect_is_hundred() -> None:
    # Long lead-ins, so that flagging every row (a constant score) is worse than flagging none.
    series = {
        "a.csv": NabSeries.from_rows("a.csv", 400, [(200, 204), (300, 304)]),
        "b.csv": NabSeries.from_rows("b.csv", 200, [(150, 151)]),
    }
    corpus = NabCorpus(series)
    perfect = {"a.csv": _flags(400, 200, 300), "b.csv": _flags(200, 150)}
    null = {"a.csv": np.full(400, 0.5), "b.csv": np.full(200, 0.5)}
    assert nab_scores(corpus, perfect) == pytest.approx(
        {"standard": 100.0, "reward_low_FP_rate": 100.0, "reward_low_FN_rate": 100.0}
    )
    assert nab_scores(corpus, null) == pytest.approx(
        {"standard": 0.0, "reward_low_FP_rate": 0.0, "reward_low_FN_rate": 0.0}
    )


def test_normalised_score_of_half_the_windows() -> None:
    corpus = NabCorpus({"a.csv": NabSeries.from_rows("a.csv", 400, [(200, 204), (300, 304)])})
    result = score_detector(corpus, {"a.csv": _flags(400, 200)}, "reward_low_FN_rate")
    # raw = 1 - 2 = -1; null = -4; perfect = 2 -> 100 * 3 / 6.
    assert (result.raw, result.null_raw, result.perfect_raw) == (-1.0, -4.0, 2.0)
    assert result.score == pytest.approx(50.0)
    assert result.threshold == 1.0


def test_window_inside_probation_counts_for_perfect_but_not_for_null() -> None:
    # As in NAB: perfect = tp_weight * every labelled window; null only misses scored ones.
    corpus = NabCorpus({"a.csv": NabSeries.from_rows("a.csv", 20, [(0, 2), (10, 14)])})
    result = score_detector(corpus, {"a.csv": _flags(20, 10)}, "standard")
    assert (result.raw, result.null_raw, result.perfect_raw) == (1.0, -1.0, 2.0)
    assert result.score == pytest.approx(200.0 / 3.0)


def test_fixed_threshold_is_used_as_given() -> None:
    corpus = NabCorpus({"toy.csv": _one_window()})
    scores = np.zeros(20)
    scores[[10, 14]] = [0.4, 0.6]
    assert score_detector(corpus, {"toy.csv": scores}, STANDARD, threshold=0.5).raw == (
        pytest.approx(math.tanh(0.5) / MAX_TP, abs=1e-12)
    )


def test_point_rewards_mark_window_rows() -> None:
    rewards = point_rewards(_one_window(), STANDARD)
    assert rewards.rows.tolist() == list(range(3, 20))
    assert rewards.window.tolist() == [-1] * 7 + [0] * 5 + [-1] * 5
    assert rewards.scored_windows == 1


def test_bad_scores_are_rejected_with_the_series_name() -> None:
    corpus = NabCorpus({"toy.csv": _one_window()})
    with pytest.raises(ValueError, match=r"toy\.csv"):
        score_detector(corpus, {"toy.csv": np.zeros(19)}, STANDARD)
    with pytest.raises(ValueError, match="NaN"):
        score_detector(corpus, {"toy.csv": np.full(20, np.nan)}, STANDARD)
    with pytest.raises(KeyError, match="toy"):
        score_detector(corpus, {}, STANDARD)
    with pytest.raises(KeyError, match="unknown NAB profile"):
        score_detector(corpus, {"toy.csv": np.zeros(20)}, "nope")
