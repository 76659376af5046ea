"""The Contextual Anomaly Detector (CAD OSE's method), on hand-traced tiny series."""

from __future__ import annotations

import pickle

import pytest

from models.online.cad import ContextualAnomalyDetector


def feed(detector: ContextualAnomalyDetector, values: list[float]) -> list[float]:
    scores = []
    for value in values:
        scores.append(detector.score_one({"x": value}))
        detector.learn_one({"x": value})
    return scores


def test_alternation_is_learnt_step_by_step() -> None:
    # One resolution over the known range 0..3: 0 is fact A, 3 is fact B (top of the range).
    # Step 2 and 3: nothing predicted, only new contexts (A->B, B->A): 1. Step 4: A->B is
    # predicted and active, the potential context exists: 0. Steps 5-6: predicted contexts
    # are active but the left side now holds a context id, a new context: (1 - 1 + 1) / 2.
    # From step 7 on every left side has been seen: 0.
    detector = ContextualAnomalyDetector(resolutions=1, max_active=1, ranges={"x": (0.0, 3.0)})
    scores = feed(detector, [0.0, 3.0] * 6)
    assert scores == [0.0, 1.0, 1.0, 0.0, 0.5, 0.5] + [0.0] * 6
    assert len(detector.context_right_) == 4
    # A repeat where an alternation was foreseen: no prediction came true, only new contexts.
    assert detector.score_one({"x": 0.0}) == 0.0
    assert detector.score_one({"x": 3.0}) == 1.0


def test_warm_up_learns_the_grid_then_replays_it() -> None:
    detector = ContextualAnomalyDetector(resolutions=1, warmup=4)
    scores = feed(detector, [0.0, 3.0] * 6)
    assert scores[:4] == [0.0] * 4
    assert detector.grids_ == {"x": (0.0, 3.0)}
    # The four warm-up values were replayed into the memory: the first scored step is known.
    assert scores[4] == 0.5 and len(detector.context_right_) > 2


def test_a_partly_foreseen_step_adds_the_part_that_came_true() -> None:
    # Two resolutions over 0..3: 0 -> bins (0, 0), 3 -> (1, 3), 2 -> (1, 2).
    detector = ContextualAnomalyDetector(resolutions=2, max_active=1, ranges={"x": (0.0, 3.0)})
    feed(detector, [0.0, 3.0] * 6 + [0.0])
    # After 0, contexts predict 3's facts; 2 shares only the coarse one: nothing active, all
    # potential contexts new.
    assert detector.score_one({"x": 2.0}) == 1.0
    detector.learn_one({"x": 2.0})
    coarse_high = (detector._encode(0, 1, 1),)
    zero_facts = (detector._encode(0, 1, 0), detector._encode(0, 2, 0))
    assert coarse_high in detector.contexts_[tuple(sorted(zero_facts))]


def test_max_contexts_bounds_memory_but_not_novelty() -> None:
    detector = ContextualAnomalyDetector(resolutions=3, ranges={"x": (0.0, 7.0)}, max_contexts=5)
    scores = feed(detector, [float(v % 8) for v in range(0, 60, 3)])
    assert len(detector.context_right_) == 5
    assert max(scores[10:]) > 0.5


def test_only_the_named_features_are_modelled() -> None:
    detector = ContextualAnomalyDetector(resolutions=1, features=["x"], ranges={"x": (0, 1)})
    for step in range(10):
        detector.learn_one({"x": float(step % 2), "noise": float(step * 7)})
    assert detector.score_one({"x": 0.0, "noise": 1e9}) == detector.score_one({"x": 0.0})


def test_score_is_pure_and_pickle_drops_the_cache() -> None:
    detector = ContextualAnomalyDetector(resolutions=2, warmup=4)
    feed(detector, [0.0, 1.0, 2.0, 3.0] * 5)
    before = pickle.dumps(detector)
    assert detector.score_one({"x": 9.0}) == detector.score_one({"x": 9.0})
    assert pickle.dumps(detector) == before
    restored = pickle.loads(before)
    assert feed(restored, [0.0, 1.0, 5.0]) == feed(detector, [0.0, 1.0, 5.0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"resolutions": 0}, "resolutions"),
        ({"warmup": 0}, "warmup"),
        ({"ranges": {"x": (1.0, float("nan"))}}, "range of 'x'"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContextualAnomalyDetector(**params)  # type: ignore[arg-type]
