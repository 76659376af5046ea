"""``cad_dual``: CAD on a linear and on a log grid, combined by their (weighted) maximum."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.online.cad import ContextualAnomalyDetector
from models.online.dual_scale import DualScaleCAD


def bursty(n: int = 400, seed: int = 3) -> list[float]:
    """Counts around 5 with one huge value early (it sets the range) and bursts of 40 later."""
    rng = np.random.default_rng(seed)
    values = rng.poisson(5.0, n).astype(float)
    values[20] = 5000.0
    values[[250, 330]] = 40.0
    return values.tolist()


def stream(detector: ContextualAnomalyDetector | DualScaleCAD, values: list[float]) -> np.ndarray:
    scores = []
    for value in values:
        scores.append(detector.score_one({"x": value}))
        detector.learn_one({"x": value})
    return np.array(scores)


def test_score_is_the_max_of_linear_and_weighted_log_members() -> None:
    values = bursty()
    ranges = {"x": (min(values), max(values))}
    dual = DualScaleCAD(ranges=ranges, probation=60, log_scale=0.001, log_weight=0.9)
    linear = ContextualAnomalyDetector(ranges=ranges, probation=60)
    log = ContextualAnomalyDetector(ranges=ranges, probation=60, log_scale=0.001)
    got = stream(dual, values)
    assert np.array_equal(got, np.maximum(stream(linear, values), 0.9 * stream(log, values)))


def test_bursts_below_a_level_of_the_range_are_caught_by_the_log_member() -> None:
    values = bursty()
    ranges = {"x": (min(values), max(values))}
    linear = stream(ContextualAnomalyDetector(ranges=ranges, rest_steps=0), values)
    dual = stream(DualScaleCAD(ranges=ranges, rest_steps=0), values)
    # 40 is level 0 of the linear grid (step 5000 / 7): no alarm; the log grid flags both.
    assert linear[[250, 330]].tolist() == [0.0, 0.0]
    assert dual[250] >= 0.9 * 0.75 and dual[330] > 0.0


def test_pickle_round_trip_keeps_both_members() -> None:
    values = bursty()[:120]
    detector = DualScaleCAD(ranges={"x": (0.0, 5000.0)}, rest_steps=0)
    stream(detector, values)
    restored = pickle.loads(pickle.dumps(detector))
    more = [5.0, 6.0, 40.0, 4.0]
    assert stream(restored, more).tolist() == stream(detector, more).tolist()
    assert restored.get_params() == detector.get_params()


def test_negative_log_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="log_weight"):
        DualScaleCAD(log_weight=-0.1)
