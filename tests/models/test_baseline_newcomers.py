"""An entity first seen after training: peers until it has history, then its own earlier rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.batch.baselines import RobustBaselineDetector, TailBaselineDetector

# One feature. alice is always 1, bob always 3, both in group "g" (as in test_tail_baseline):
# the group's median is 2 and its robust scale 1.4826; the floor is 0.5 * 1.4826 = 0.7413.
# The own-history tail reference is ten zeros, the cold (group) reference five zeros and five
# 0.6745; ten training rows resolve log10(11) nines.
TRAIN_X = np.array([[1.0]] * 5 + [[3.0]] * 5)
TRAIN_ENTITIES = np.array(["alice"] * 5 + ["bob"] * 5)
TRAIN_GROUPS = np.array(["g"] * 10)
CAP = math.log10(11)
FLOOR = 0.5 * 1.4826

# carol, a new hire, does 5 every day (days 0..6): against the group that is z = 2.02, past
# every group deviation of training; against her own first five days it is typical.
CAROL = np.array([[5.0]] * 7)
DAYS = np.arange(7)


@pytest.fixture
def tail() -> TailBaselineDetector:
    return TailBaselineDetector().fit(TRAIN_X, entities=TRAIN_ENTITIES, groups=TRAIN_GROUPS)


def _score(detector: RobustBaselineDetector, rows: np.ndarray, times: object) -> np.ndarray:
    n = rows.shape[0]
    return detector.decision_function(
        rows, entities=np.array(["carol"] * n), groups=np.array(["g"] * n), times=times
    )


def test_newcomer_is_compared_with_peers_until_it_has_min_rows_of_its_own(
    tail: TailBaselineDetector,
) -> None:
    scores = _score(tail, CAROL, DAYS)
    # Days 0-4: fewer than 5 earlier days, the group's baseline; days 5-6: her own, z = 0.
    np.testing.assert_allclose(scores, [CAP] * 5 + [0.0, 0.0], rtol=1e-12)


def test_without_times_a_newcomer_stays_on_its_peers(tail: TailBaselineDetector) -> None:
    np.testing.assert_allclose(_score(tail, CAROL, None), [CAP] * 7, rtol=1e-12)


def test_own_history_is_causal_and_independent_of_row_order(tail: TailBaselineDetector) -> None:
    # Day 5 jumps to 9: against days 0-4 (all 5, scale = the floor) z = 4 / 0.7413 = 5.4,
    # beyond every own-history training deviation (all 0): twice the resolvable surprise.
    # Day 6 (5 again) has days 0-5 behind it: median 5, MAD 0, z = 0.
    rows = np.array([[5.0]] * 5 + [[9.0], [5.0]])
    expected = [CAP] * 5 + [2 * CAP, 0.0]
    np.testing.assert_allclose(_score(tail, rows, DAYS), expected, rtol=1e-12)
    shuffled = np.array([6, 2, 5, 0, 4, 1, 3])
    np.testing.assert_allclose(
        _score(tail, rows[shuffled], DAYS[shuffled]), np.array(expected)[shuffled], rtol=1e-12
    )
    # A later day never changes an earlier day's score (no peeking).
    changed = rows.copy()
    changed[6] = 100.0
    np.testing.assert_allclose(_score(tail, changed, DAYS)[:6], expected[:6], rtol=1e-12)


def test_rows_of_the_same_time_are_not_each_others_history(tail: TailBaselineDetector) -> None:
    # Five rows at time 0 and two at time 1: the time-1 rows have five earlier ones.
    times = np.array([0, 0, 0, 0, 0, 1, 1])
    np.testing.assert_allclose(_score(tail, CAROL, times), [CAP] * 5 + [0.0, 0.0], rtol=1e-12)


def test_robust_rms_uses_the_newcomers_own_median_and_floored_scale() -> None:
    detector = RobustBaselineDetector().fit(TRAIN_X, entities=TRAIN_ENTITIES, groups=TRAIN_GROUPS)
    rows = np.array([[6.0]] * 5 + [[9.0]])
    scores = _score(detector, rows, np.arange(6))
    # Days 0-4 against the group: (6 - 2) / 1.4826; day 5 against days 0-4: (9 - 6) / floor.
    np.testing.assert_allclose(scores, [4 / 1.4826] * 5 + [3 / FLOOR], rtol=1e-12)
    z = detector.deviations(rows, ["carol"] * 6, ["g"] * 6, np.arange(6))
    np.testing.assert_allclose(z[:, 0], [4 / 1.4826] * 5 + [3 / FLOOR], rtol=1e-12)


def test_entities_fitted_in_training_are_unaffected_by_times(tail: TailBaselineDetector) -> None:
    rows = np.array([[1.0], [4.0], [3.0], [9.0]])
    entities = np.array(["alice", "alice", "bob", "bob"])
    without = tail.decision_function(rows, entities=entities, groups=np.array(["g"] * 4))
    with_times = tail.decision_function(
        rows, entities=entities, groups=np.array(["g"] * 4), times=np.arange(4)
    )
    np.testing.assert_array_equal(with_times, without)


def test_times_of_the_wrong_length_are_refused(tail: TailBaselineDetector) -> None:
    with pytest.raises(ValueError, match="times must be 1-D with one value per row"):
        _score(tail, CAROL, np.arange(3))
