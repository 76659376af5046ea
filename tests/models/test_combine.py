"""Behaviour groups in the tail score: one act seen in several correlated features counts once."""

from __future__ import annotations

import numpy as np
import pytest

from models.batch.baselines import TailBaselineDetector
from models.combine import group_codes, group_maxima, sum_of_largest, top_k_group_sum

# Four windows x five features; features 0-2 measure one behaviour, 3 and 4 one each.
SURPRISE = np.array(
    [
        [4.0, 3.5, 3.0, 0.0, 1.0],  # one act in three features, plus a little of another
        [0.0, 0.0, 0.0, 2.0, 2.5],  # two behaviours
        [1.0, 0.0, 0.0, 0.0, 0.0],  # one feature only
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ]
)
GROUPS = [0, 0, 0, 1, 2]


def test_group_surprise_is_its_largest_member_and_the_top_two_groups_are_summed() -> None:
    # By hand: row 0: groups (4.0, 0.0, 1.0) -> 4.0 + 1.0; ungrouped 4.0 + 3.5.
    # Row 1: (0.0, 2.0, 2.5) -> 4.5 either way. Row 2: 1.0 + 0.0. Row 3: 0.
    assert top_k_group_sum(SURPRISE, 2, GROUPS).tolist() == [5.0, 4.5, 1.0, 0.0]
    assert top_k_group_sum(SURPRISE, 2).tolist() == [7.5, 4.5, 1.0, 0.0]
    # top_k beyond the number of groups sums them all (3 groups here).
    assert top_k_group_sum(SURPRISE, 4, GROUPS).tolist() == [5.0, 4.5, 1.0, 0.0]
    assert top_k_group_sum(SURPRISE, 1, GROUPS).tolist() == [4.0, 2.5, 1.0, 0.0]


def test_group_ids_need_not_be_contiguous_nor_sorted() -> None:
    shuffled = [9, 9, 9, 3, 5]
    assert top_k_group_sum(SURPRISE, 2, shuffled).tolist() == [5.0, 4.5, 1.0, 0.0]
    assert group_maxima(SURPRISE[:1], np.array(shuffled)).tolist() == [[0.0, 1.0, 4.0]]


def test_every_feature_its_own_group_is_the_ungrouped_score_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    surprise = np.where(rng.random((200, 7)) < 0.6, 0.0, rng.exponential(2.0, (200, 7)))
    plain = np.sort(surprise, axis=1)[:, -2:].sum(axis=1)
    for groups in (None, [6, 5, 4, 3, 2, 1, 0]):
        assert top_k_group_sum(surprise, 2, groups).tolist() == plain.tolist()
    assert group_codes(list(range(7)), 7) is None


def test_k_above_two_adds_the_largest_in_ascending_order() -> None:
    values = np.array([[0.1, 0.2, 0.3, 1e16]])
    # 0.2 + 0.3 + 1e16 in ascending order (a sort then a sum): not 1e16 + 0.3 + 0.2.
    assert sum_of_largest(values, 3).tolist() == [np.sort(values)[0, -3:].sum()]


def test_bad_group_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="one integer id per feature"):
        top_k_group_sum(SURPRISE, 2, [0, 1])
    with pytest.raises(ValueError, match="one integer id per feature"):
        top_k_group_sum(SURPRISE, 2, np.array([0.0, 0.0, 1.0, 2.0, 3.0]))


def _tail_detector() -> TailBaselineDetector:
    # Three identical columns (one act counted three ways) and one independent column.
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, 600).astype(float)
    other = rng.poisson(2.0, 600).astype(float)
    X = np.log1p(np.column_stack([counts, counts, counts, other]))
    entities = np.repeat([f"u{i}" for i in range(6)], 100)
    return TailBaselineDetector().fit(X, entities=entities)


def test_tail_detector_counts_three_correlated_features_of_one_group_once() -> None:
    detector = _tail_detector()
    row = np.log1p(np.array([[40.0, 40.0, 40.0, 2.0]]))
    context = {"entities": np.array(["u0"])}
    ungrouped = float(detector.decision_function(row, **context)[0])
    grouped = float(
        detector.decision_function(row, **context, feature_groups=np.array([0, 0, 0, 1]))[0]
    )
    # The three equal surprises s: ungrouped s + s, grouped s + the fourth column's 0.
    assert ungrouped > 5.0
    assert grouped == pytest.approx(ungrouped / 2.0, rel=1e-12)


def test_tail_detector_scores_are_the_shared_combination_of_its_surprises() -> None:
    detector = _tail_detector()
    rows = np.log1p(np.array([[40.0, 40.0, 40.0, 9.0], [0.0, 0.0, 0.0, 30.0], [2, 2, 2, 2]]))
    labels = np.array(["u1", "u2", "u3"])
    groups = np.array([0, 0, 0, 1])
    surprise = detector._tail_surprise(detector.deviations(rows, labels))
    found = detector.decision_function(rows, entities=labels, feature_groups=groups)
    assert found.tolist() == top_k_group_sum(surprise, 2, groups).tolist()
    # Row 0 deviates in both groups, row 1 in the second only, row 2 not at all.
    assert found[0] > found[1] > 0.0 and found[2] == 0.0
