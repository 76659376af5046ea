"""The refractory wrapper scores its member once per step, with unchanged results."""

from __future__ import annotations

import pickle
from collections.abc import Mapping

from models.online.refractory import RefractoryDetector
from models.online.seasonal import SeasonalBaselineDetector

VALUES = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 90.0, 90.0, 90.0, 90.0, 1.0, 2.0]


class CountingMember(SeasonalBaselineDetector):
    """The seasonal baseline, counting its ``score_one`` calls."""

    calls = 0

    def score_one(self, x: Mapping[str, float]) -> float:
        CountingMember.calls += 1
        return super().score_one(x)


def run(detector: RefractoryDetector, score_first: bool) -> list[float]:
    scores = []
    for value in VALUES:
        if score_first:
            scores.append(detector.score_one({"x": value}))
        detector.learn_one({"x": value})
    return scores


def test_member_is_scored_once_per_step_and_silences_match() -> None:
    detector = RefractoryDetector(member="seasonal", level=5.0, steps=2)
    detector.member_ = CountingMember()
    CountingMember.calls = 0
    scores = run(detector, score_first=True)
    assert CountingMember.calls == len(VALUES)
    # The spike passes and silences two steps; the third 90 passes and silences the last two.
    assert scores[6] > 5.0 and scores[7:9] == [0.0, 0.0] and scores[9] >= 5.0
    assert scores[10:] == [0.0, 0.0]
    assert detector.silent_until_ == 12


def test_learning_without_scoring_still_scores_the_member() -> None:
    detector = RefractoryDetector(member="seasonal", level=5.0, steps=2)
    detector.member_ = CountingMember()
    CountingMember.calls = 0
    run(detector, score_first=False)
    assert CountingMember.calls == len(VALUES)
    assert detector.silent_until_ == 12


def test_a_different_vector_is_not_served_from_the_cache() -> None:
    detector = RefractoryDetector(member="seasonal", level=5.0, steps=2)
    run(detector, score_first=True)
    low = detector.score_one({"x": 1.0})
    assert detector.score_one({"x": 500.0}) > low


def test_the_cache_is_not_pickled() -> None:
    detector = RefractoryDetector(member="seasonal", level=5.0, steps=2)
    run(detector, score_first=True)
    before = pickle.dumps(detector)
    detector.score_one({"x": 3.0})
    assert pickle.dumps(detector) == before
