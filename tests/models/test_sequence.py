"""Session / log-sequence detectors: hand-computed scores and decision rules."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.sequence import (
    InvariantsMiningDetector,
    NextKeyDetector,
    PCASessionDetector,
    SessionIForestDetector,
    count_vectors,
    tf_idf,
)
from models.sequence.detectors import q_statistic


def test_count_vectors_count_each_key_and_ignore_out_of_range() -> None:
    counts = count_vectors([[0, 0, 2], [5, -1, 1]], 3)
    assert counts.tolist() == [[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_tf_idf_zeroes_a_key_present_in_every_session() -> None:
    weighted, idf = tf_idf(np.array([[2.0, 1.0], [1.0, 0.0], [3.0, 0.0], [1.0, 0.0]]))
    # key 0 in 4 of 4 sessions: log(4/4) = 0; key 1 in 1 of 4: log(4) = 1.3863
    np.testing.assert_allclose(idf, [0.0, np.log(4.0)])
    np.testing.assert_allclose(weighted[0], [0.0, np.log(4.0)])


def test_q_statistic_matches_jackson_mudholkar_by_hand() -> None:
    # theta1 = theta2 = theta3 = 2, h0 = 1/3, c = 1.6449: 2 * (0.5483 + 0.8889)^3 = 5.937
    assert q_statistic(np.array([1.0, 1.0]), 0.05) == pytest.approx(5.937, abs=1e-3)
    assert q_statistic(np.array([0.0, 0.0]), 0.05) == 0.0


def test_pca_spe_is_the_residual_outside_the_kept_component() -> None:
    rng = np.random.default_rng(0)
    level = rng.uniform(1.0, 5.0, size=(300, 1))
    X = np.hstack([level, level]) + rng.normal(0.0, 0.01, size=(300, 2))
    detector = PCASessionDetector(variance=0.9).fit(X)
    assert detector.components_.shape == (1, 2)
    # (3, 1) sits off the diagonal: residual (1, -1) from the mean's direction, SPE ~= 2.
    spe = detector.decision_function(np.array([[3.0, 1.0], [3.0, 3.0]]))
    assert spe[0] == pytest.approx(2.0, abs=0.05)
    assert spe[1] < 1e-3
    assert detector.predict(np.array([[3.0, 1.0], [3.0, 3.0]])).tolist() == [True, False]


def test_invariants_mining_finds_ratio_and_zero_invariants() -> None:
    # Column 1 is always twice column 0, column 2 is never used, column 3 is free.
    rng = np.random.default_rng(1)
    first = rng.integers(1, 5, size=200).astype(float)
    X = np.column_stack([first, 2 * first, np.zeros(200), rng.integers(0, 9, size=200)])
    detector = InvariantsMiningDetector().fit(X)
    invariants = {tuple(row) for row in detector.invariants_.tolist()}
    assert (0.0, 0.0, 1.0, 0.0) in invariants
    assert (2.0, -1.0, 0.0, 0.0) in invariants
    scores = detector.decision_function(np.array([[1.0, 2.0, 0.0, 7.0], [1.0, 3.0, 0.0, 0.0]]))
    assert scores[0] == 0.0
    assert scores[1] >= 1.0
    assert detector.predict(np.array([[1.0, 2.0, 1.0, 0.0]])).tolist() == [True]


def test_next_key_counts_misses_with_backoff_and_end_marker() -> None:
    training = [[1, 2, 3]] * 5 + [[1, 2, 4]] * 3
    detector = NextKeyDetector(history=2, top_g=1, min_count=1).fit(training)
    # After (1, 2) the top-1 follower is 3 (5 of 8); 4 is a miss.
    assert detector.misses([1, 2, 3]) == []
    assert detector.misses([1, 2, 4]) == [2]
    # An unseen key misses, and so does the 2 after it: no context holds 9, so the empty
    # context decides, whose top-1 is the end marker (1, 2 and end tie at 8; the end key, -2,
    # sorts first). After (start, 1) training only ever saw 2, so ending there misses.
    assert detector.misses([9, 2, 3]) == [0, 1]
    assert detector.misses([1]) == [1]
    wider = NextKeyDetector(history=2, top_g=2, min_count=1).fit(training)
    assert wider.decision_function([[1, 2, 4], [1, 2, 3]]).tolist() == [0.0, 0.0]


def test_next_key_min_count_backs_off_to_shorter_context() -> None:
    training = [[1, 2, 3]] * 5 + [[7, 2, 4]]
    strict = NextKeyDetector(history=1, top_g=1, min_count=1, end_marker=False).fit(training)
    lenient = NextKeyDetector(history=2, top_g=2, min_count=3, end_marker=False).fit(training)
    # history 1, top-1: a session starts with 1 (5 of 6), and 2 is followed by 3 (5 of 6).
    assert strict.misses([7, 2, 4]) == [0, 2]
    # top-2 at the start is {1, 7}; (start, 7) and (7,) were seen once < 3, so position 1
    # backs off to the empty context (top-2 {2, 1}); (7, 2) backs off to (2,): top-2 {3, 4}.
    assert lenient.misses([7, 2, 4]) == []


def test_session_iforest_threshold_is_a_training_quantile() -> None:
    X = np.random.default_rng(0).poisson(3.0, size=(400, 4)).astype(float)
    detector = SessionIForestDetector(n_estimators=50, use_tf_idf=False, seed=3).fit(X)
    training_scores = detector.decision_function(X)
    assert np.mean(training_scores > detector.threshold_) == pytest.approx(0.01, abs=0.005)


@pytest.mark.parametrize(
    "detector",
    [
        PCASessionDetector(),
        InvariantsMiningDetector(),
        SessionIForestDetector(n_estimators=30, seed=5),
    ],
    ids=["pca", "invariants", "iforest"],
)
def test_count_detectors_are_pure_pickleable_and_deterministic(detector: object) -> None:
    X = np.random.default_rng(2).poisson(2.0, size=(150, 5)).astype(float)
    fitted = detector.fit(X)  # type: ignore[attr-defined]
    before = pickle.dumps(fitted)
    first = fitted.decision_function(X)
    np.testing.assert_array_equal(first, fitted.decision_function(X))
    assert pickle.dumps(fitted) == before
    np.testing.assert_array_equal(pickle.loads(before).decision_function(X), first)
    again = type(fitted)(**fitted.get_params()).fit(X)
    np.testing.assert_array_equal(again.decision_function(X), first)
    np.testing.assert_allclose(fitted.decision_function(X[3:4])[0], first[3], atol=1e-12)


def test_scoring_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        PCASessionDetector().decision_function(np.ones((2, 2)))
    with pytest.raises(RuntimeError, match="not fitted"):
        NextKeyDetector().decision_function([[1, 2]])
