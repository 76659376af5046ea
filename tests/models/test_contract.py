"""Contract tests over every registered batch detector."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models import BatchDetector
from models.registry import BATCH_DETECTORS, UnknownDetectorError, available, create, create_batch
from tests.models.conftest import ToyOrg

NAMES = sorted(BATCH_DETECTORS)
# Small hyper-parameters keep the suite fast; the contract must hold for any.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "iforest": {"n_estimators": 50},
    "ensemble": {"member_params": {"iforest": {"n_estimators": 50}}},
}


def build(name: str, seed: int = 7) -> BatchDetector:
    return create_batch(name, seed=seed, **FAST_PARAMS.get(name, {}))


@pytest.fixture(scope="module", params=NAMES)
def fitted(request: pytest.FixtureRequest, toy_org: ToyOrg) -> tuple[str, BatchDetector]:
    name: str = request.param
    return name, build(name).fit(toy_org.X, **toy_org.context)


def test_registry_lists_every_batch_detector() -> None:
    assert {"iforest", "ecod", "copod", "hbos", "robust", "peer", "ensemble"} <= set(available())
    assert available() == sorted(available())


def test_unknown_name_is_a_key_error_listing_valid_names() -> None:
    with pytest.raises(KeyError) as caught:
        create("isolation-forest")
    assert isinstance(caught.value, UnknownDetectorError)
    assert "iforest" in str(caught.value) and "isolation-forest" in str(caught.value)


def test_params_are_stored_as_given() -> None:
    detector = create("iforest", n_estimators=13, seed=3)
    assert detector.get_params()["n_estimators"] == 13  # type: ignore[union-attr]
    assert detector.get_params()["seed"] == 3  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="no parameter"):
        detector.set_params(bogus=1)  # type: ignore[union-attr]


def test_satisfies_the_protocol(fitted: tuple[str, BatchDetector]) -> None:
    assert isinstance(fitted[1], BatchDetector)


def test_outliers_score_higher(fitted: tuple[str, BatchDetector], toy_org: ToyOrg) -> None:
    name, detector = fitted
    scores = detector.decision_function(toy_org.X, **toy_org.context)
    auc = roc_auc_score(toy_org.is_outlier, scores)
    assert auc > 0.9, f"{name}: AUC {auc:.3f}"


def test_scores_are_finite_float64_one_per_row(
    fitted: tuple[str, BatchDetector], toy_org: ToyOrg
) -> None:
    scores = fitted[1].decision_function(toy_org.X, **toy_org.context)
    assert scores.dtype == np.float64
    assert scores.shape == (toy_org.X.shape[0],)
    assert np.all(np.isfinite(scores))


def test_decision_function_is_pure(fitted: tuple[str, BatchDetector], toy_org: ToyOrg) -> None:
    detector = fitted[1]
    state_before = pickle.dumps(detector)
    first = detector.decision_function(toy_org.X, **toy_org.context)
    second = detector.decision_function(toy_org.X, **toy_org.context)
    np.testing.assert_array_equal(first, second)
    assert pickle.dumps(detector) == state_before


def test_one_row_scores_as_in_a_batch(fitted: tuple[str, BatchDetector], toy_org: ToyOrg) -> None:
    detector = fitted[1]
    batch = detector.decision_function(toy_org.X, **toy_org.context)
    for row in (0, 57, toy_org.X.shape[0] - 1):
        single = detector.decision_function(
            toy_org.X[row : row + 1],
            entities=toy_org.entities[row : row + 1],
            groups=toy_org.groups[row : row + 1],
        )
        assert single.shape == (1,)
        np.testing.assert_allclose(single[0], batch[row], rtol=1e-12, atol=1e-12)


def test_pickle_round_trip_gives_identical_scores(
    fitted: tuple[str, BatchDetector], toy_org: ToyOrg
) -> None:
    detector = fitted[1]
    restored = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(
        restored.decision_function(toy_org.X, **toy_org.context),
        detector.decision_function(toy_org.X, **toy_org.context),
    )


def test_same_seed_same_scores(fitted: tuple[str, BatchDetector], toy_org: ToyOrg) -> None:
    name, detector = fitted
    again = build(name).fit(toy_org.X, **toy_org.context)
    np.testing.assert_array_equal(
        again.decision_function(toy_org.X, **toy_org.context),
        detector.decision_function(toy_org.X, **toy_org.context),
    )


def test_works_without_context(fitted: tuple[str, BatchDetector], toy_org: ToyOrg) -> None:
    name, _ = fitted
    scores = build(name).fit(toy_org.X).decision_function(toy_org.X)
    assert scores.shape == (toy_org.X.shape[0],)
    assert np.all(np.isfinite(scores))


def test_wrong_width_is_refused(fitted: tuple[str, BatchDetector], toy_org: ToyOrg) -> None:
    with pytest.raises(ValueError, match="features"):
        fitted[1].decision_function(toy_org.X[:, :3], **toy_org.context)


def test_scoring_before_fit_raises(toy_org: ToyOrg) -> None:
    for name in NAMES:
        with pytest.raises(RuntimeError, match="not fitted"):
            build(name).decision_function(toy_org.X)
