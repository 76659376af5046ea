"""Rank ensemble: training-CDF normalisation and combination."""

from __future__ import annotations

import numpy as np
import pytest

from models.batch.ensemble import RankEnsembleDetector

# One feature, ten training rows 0..9: ECOD and HBOS both rank them; a value beyond every
# training value maps to rank 1 for each member.
X_TRAIN = np.arange(10.0).reshape(-1, 1)


def test_ranks_are_fractions_of_training_scores_strictly_below() -> None:
    ensemble = RankEnsembleDetector(members=("ecod",)).fit(X_TRAIN)
    training = ensemble.training_scores_[0]
    member_score = ensemble.members_[0].decision_function(np.array([[100.0]]))[0]
    assert member_score > training.max()
    assert ensemble.decision_function(np.array([[100.0]]))[0] == 1.0
    lowest_row = int(np.argmin(ensemble.members_[0].decision_function(X_TRAIN)))
    assert ensemble.decision_function(X_TRAIN[lowest_row : lowest_row + 1])[0] == 0.0


def test_mean_and_max_combination() -> None:
    mean = RankEnsembleDetector(members=("ecod", "robust")).fit(X_TRAIN)
    best = RankEnsembleDetector(members=("ecod", "robust"), combine="max").fit(X_TRAIN)
    point = np.array([[4.0]])
    ranks = mean.member_ranks(point)
    assert mean.decision_function(point)[0] == pytest.approx(ranks.mean())
    assert best.decision_function(point)[0] == pytest.approx(ranks.max())
    # Robust (population median 4.5, one-sided) scores 4 as 0 -> rank 0; ECOD ranks the middle
    # value lowest -> also 0. Both members agree it is the most ordinary row.
    np.testing.assert_array_equal(ranks, [[0.0, 0.0]])


def test_member_params_and_seed_are_passed() -> None:
    ensemble = RankEnsembleDetector(
        members=("iforest", "hbos"), member_params={"iforest": {"n_estimators": 7}}, seed=42
    ).fit(X_TRAIN)
    iforest = ensemble.members_[0]
    assert iforest.get_params()["n_estimators"] == 7  # type: ignore[attr-defined]
    assert iforest.get_params()["seed"] == 42  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"combine": "median"},
        {"members": ()},
        {"members": ("ensemble",)},
        {"members": ("ecod",), "member_params": {"iforest": {}}},
    ],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RankEnsembleDetector(**kwargs).fit(X_TRAIN)  # type: ignore[arg-type]
