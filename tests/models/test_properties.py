"""Property tests: any finite, non-negative log1p-scale matrix gives finite scores."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models.batch.baselines import PeerGroupDetector, RobustBaselineDetector
from models.batch.pyod_wrappers import COPODDetector, ECODDetector

matrices = st.integers(min_value=1, max_value=4).flatmap(
    lambda width: arrays(
        np.float64,
        st.tuples(st.integers(min_value=1, max_value=30), st.just(width)),
        elements=st.floats(min_value=0.0, max_value=20.0),
    )
)


@settings(max_examples=40, deadline=None)
@given(train=matrices, seed=st.integers(min_value=0, max_value=3))
def test_scores_are_finite_and_non_negative(train: np.ndarray, seed: int) -> None:
    entities = np.array([f"e{i % 3}" for i in range(train.shape[0])])
    probe = np.vstack([train, np.full((1, train.shape[1]), 25.0)])
    probe_entities = np.append(entities, "e0")
    for detector in (
        RobustBaselineDetector(seed=seed),
        PeerGroupDetector(n_clusters=2, seed=seed),
        ECODDetector(),
        COPODDetector(),
    ):
        detector.fit(train, entities=entities)
        scores = detector.decision_function(probe, entities=probe_entities)
        assert scores.shape == (probe.shape[0],)
        assert np.all(np.isfinite(scores))
        assert np.all(scores >= 0.0)
