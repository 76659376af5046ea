"""The tail baseline's cold start: entities without own history, on a hand-computed case."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from models.batch.baselines import TailBaselineDetector

# One feature. alice is always 1, bob always 3, both in group "g". Population (and group "g"):
# median 2, MAD 1, robust scale 1.4826, floor 0.5 * 1.4826. Own baselines: alice (1, floor),
# bob (3, floor), so every training row deviates 0 from its own history: the own-history
# reference is ten zeros. Against the group, alice's rows deviate -0.674 (0 one-sided) and
# bob's +1 / 1.4826 = 0.6745: the cold reference is five zeros and five 0.6745.
TRAIN_X = np.array([[1.0]] * 5 + [[3.0]] * 5)
TRAIN_ENTITIES = np.array(["alice"] * 5 + ["bob"] * 5)
TRAIN_GROUPS = np.array(["g"] * 10)
CAP = math.log10(11)  # what 10 training rows can resolve


@pytest.fixture
def fitted() -> TailBaselineDetector:
    return TailBaselineDetector().fit(TRAIN_X, entities=TRAIN_ENTITIES, groups=TRAIN_GROUPS)


def test_cold_entity_is_weighed_against_group_deviations(fitted: TailBaselineDetector) -> None:
    rows = np.array([[3.0], [5.0], [4.0]])
    scores = fitted.decision_function(
        rows, entities=np.array(["carol", "carol", "alice"]), groups=np.array(["g"] * 3)
    )
    expected = [
        # carol (no history) at 3: z 0.6745 vs the group; 5 of 10 training rows deviated as
        # much from their group: -log10(6 / 11).
        math.log10(11 / 6),
        # carol at 5: z 2.02, beyond every group deviation: the resolvable maximum.
        CAP,
        # alice (own history) at 4: no training row ever rose above its own typical.
        2 * CAP,
    ]
    np.testing.assert_allclose(scores, expected, rtol=1e-12)


def test_model_saved_without_a_cold_reference_scores_as_before(
    fitted: TailBaselineDetector,
) -> None:
    restored = pickle.loads(pickle.dumps(fitted))
    del restored.cold_reference_
    # Against own-history deviations (all zero) carol's first row looked like a first-ever.
    score = restored.decision_function(
        np.array([[3.0]]), entities=np.array(["carol"]), groups=np.array(["g"])
    )
    np.testing.assert_allclose(score, [2 * CAP], rtol=1e-12)
