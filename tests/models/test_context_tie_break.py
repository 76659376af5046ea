"""The contextual detector's continuous tie-breaker and value ranges known up front."""

from __future__ import annotations

import pickle

import pytest

from models.online.context import ContextSequenceDetector


def feed(detector: ContextSequenceDetector, values: list[float]) -> list[float]:
    scores = []
    for value in values:
        scores.append(detector.score_one({"x": value}))
        detector.learn_one({"x": value})
    return scores


def cycled(tie_break: float) -> ContextSequenceDetector:
    # One resolution, grid origin 0, span 3 (the warm-up range): bin = floor(value / 3 * 2),
    # so 0, 1, 2, 3 fall in bins 0, 0, 1, 2 and the only move out of bin 2 is into bin 0.
    detector = ContextSequenceDetector(
        resolutions=1, order=1, warmup=4, graded=True, tie_break=tie_break
    )
    feed(detector, [0.0, 1.0, 2.0, 3.0] * 5)
    return detector


def test_without_tie_break_misses_by_one_bin_tie() -> None:
    detector = cycled(0.0)
    # 2.1 and 2.4 both land in bin 1, one bin from the known successor 0: 1 - 1/2 each.
    assert detector.score_one({"x": 2.1}) == detector.score_one({"x": 2.4}) == 0.5


def test_tie_break_orders_equal_misses_by_how_far_the_value_lies() -> None:
    detector = cycled(0.5)
    # 2.4 sits at 1.6 bins, 0.6 bins beyond bin 0's upper edge: continuous part 1 - 1/1.6.
    assert detector.score_one({"x": 2.4}) == pytest.approx(0.5 * 0.5 + 0.5 * (1 - 1 / 1.6))
    # 2.1 sits at 1.4 bins, 0.4 beyond: 1 - 1/1.4.
    assert detector.score_one({"x": 2.1}) == pytest.approx(0.5 * 0.5 + 0.5 * (1 - 1 / 1.4))
    # A value inside a known successor bin is still fully predicted.
    assert detector.score_one({"x": 0.5}) == 0.0


def test_tie_break_must_be_a_weight() -> None:
    with pytest.raises(ValueError, match="tie_break"):
        ContextSequenceDetector(tie_break=1.5)


def test_a_known_range_fixes_the_grid_from_the_first_value() -> None:
    detector = ContextSequenceDetector(resolutions=1, order=1, ranges={"x": (0.0, 4.0)})
    # No warm-up: the second value is already scored, and the move 0 -> bin 2 is new.
    assert feed(detector, [0.0, 4.0]) == [0.0, 1.0]
    feed(detector, [0.0, 4.0, 0.0])
    assert detector.score_one({"x": 4.0}) == 0.0
    # Value 2 is bin 1 (offset 0.5 of 2 bins): never reached from bin 0.
    assert detector.score_one({"x": 2.0}) == 1.0
    # Values far beyond the range never rebuild a known grid.
    feed(detector, [40.0] * 120)
    state = detector.features_["x"]
    assert (state.origin, state.span, state.fixed) == (0.0, 4.0, True)


def test_a_range_must_be_finite_and_ordered() -> None:
    with pytest.raises(ValueError, match="range of 'x'"):
        ContextSequenceDetector(ranges={"x": (3.0, 1.0)})


def test_state_pickled_before_fixed_grids_existed_still_loads() -> None:
    detector = cycled(0.0)
    state = detector.features_["x"]
    old_fields = state.__getstate__()[:6]
    restored = type(state).__new__(type(state))
    restored.__setstate__(old_fields)
    assert restored.fixed is False and restored.span == state.span
    assert pickle.loads(pickle.dumps(detector)).score_one({"x": 2.4}) == 0.5
