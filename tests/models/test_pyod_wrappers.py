"""ECOD/COPOD against pyod's own implementation, and the constant-column case."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from models.batch.pyod_wrappers import COPODDetector, ECODDetector, HBOSDetector, IForestDetector


def skewed_training_set() -> np.ndarray:
    rng = np.random.default_rng(11)
    # Clearly right- and left-skewed columns, so the skewness sign does not change when pyod
    # adds the scored row to the training rows.
    right = rng.exponential(1.0, size=300)
    left = 10.0 - rng.exponential(1.0, size=300)
    return np.column_stack([right, left, rng.normal(size=300) ** 3])


@pytest.mark.parametrize(("ours", "pyod_name"), [(ECODDetector, "ECOD"), (COPODDetector, "COPOD")])
def test_single_row_scores_match_pyod(ours: type, pyod_name: str) -> None:
    import pyod.models.copod
    import pyod.models.ecod

    reference_class = {"ECOD": pyod.models.ecod.ECOD, "COPOD": pyod.models.copod.COPOD}[pyod_name]
    X = skewed_training_set()
    detector = ours().fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = reference_class().fit(X)
        for row in ([0.5, 9.5, 0.0], [6.0, 2.0, 8.0], [0.0, 10.0, -3.0]):
            point = np.array([row])
            expected = reference.decision_function(point)[0]
            assert detector.decision_function(point)[0] == pytest.approx(expected, rel=1e-9)


def test_ecod_constant_training_column_is_finite_and_flags_first_non_zero() -> None:
    X = np.zeros((99, 1))
    detector = ECODDetector().fit(X)
    scores = detector.decision_function(np.array([[0.0], [2.0]]))
    # Constant column: skewness 0, so the per-feature score is left + right tail terms. The
    # usual 0 is in both tails at probability (99+1)/(99+1) -> 0; a 2 exceeds every training
    # value: right tail 1/100 -> log(100).
    np.testing.assert_allclose(scores, [0.0, math.log(100.0)])


def test_copod_constant_training_column_is_finite() -> None:
    detector = COPODDetector().fit(np.zeros((99, 2)))
    scores = detector.decision_function(np.array([[0.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(scores, [0.0, math.log(100.0)])


def test_hbos_and_iforest_keep_pyod_sign() -> None:
    rng = np.random.default_rng(0)
    X = np.log1p(rng.poisson(3.0, size=(300, 4)).astype(float))
    outlier = np.log1p(np.array([[60.0, 60.0, 60.0, 60.0]]))
    for detector in (HBOSDetector().fit(X), IForestDetector(n_estimators=50).fit(X)):
        assert detector.decision_function(outlier)[0] > np.quantile(
            detector.decision_function(X), 0.99
        )


def test_nan_input_is_refused() -> None:
    X = np.zeros((10, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ECODDetector().fit(X)
