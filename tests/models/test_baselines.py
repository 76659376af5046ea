"""Robust (per-entity) and peer-group baselines, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.batch.baselines import PeerGroupDetector, RobustBaselineDetector, top_k_rms

# Training data of the hand-computed case: alice's one feature is [0, 0, 1, 0, 0], bob's is
# [3, 3, 4, 3, 3]. Population (10 rows): median 1.5, MAD = median |x - 1.5| = 1.5, so the
# population robust scale is 1.4826 * 1.5 = 2.2239 and the floor is 0.5 * 2.2239 = 1.11195.
HAND_X = np.array([[0.0], [0.0], [1.0], [0.0], [0.0], [3.0], [3.0], [4.0], [3.0], [3.0]])
HAND_ENTITIES = np.array(["alice"] * 5 + ["bob"] * 5)
POPULATION_SCALE = 1.4826 * 1.5
FLOOR = 0.5 * POPULATION_SCALE


@pytest.fixture
def hand_robust() -> RobustBaselineDetector:
    return RobustBaselineDetector().fit(HAND_X, entities=HAND_ENTITIES)


def test_mad_zero_entity_uses_the_population_floor(hand_robust: RobustBaselineDetector) -> None:
    median, scale = hand_robust.typical("alice")
    np.testing.assert_allclose(median, [0.0])
    np.testing.assert_allclose(scale, [FLOOR])
    score = hand_robust.decision_function(np.array([[5.0]]), entities=np.array(["alice"]))
    assert score[0] == pytest.approx(5.0 / FLOOR)  # 4.4966


def test_sparse_population_floor_comes_from_std() -> None:
    # One entity, MAD of the whole population is 0 too: spread = std([0,0,1,0,0]) = 0.4, the
    # floor is max(0.5 * 0.4, 0.1) = 0.2, and a first-ever 5 is a z of 25.
    detector = RobustBaselineDetector().fit(HAND_X[:5], entities=HAND_ENTITIES[:5])
    assert detector.typical("alice")[1][0] == pytest.approx(0.2)
    z = detector.deviations(np.array([[5.0]]), np.array(["alice"]))
    assert z[0, 0] == pytest.approx(25.0)


def test_absolute_minimum_scale_applies_when_population_is_constant() -> None:
    detector = RobustBaselineDetector().fit(np.zeros((6, 1)), entities=["a"] * 6)
    assert detector.typical("a")[1][0] == pytest.approx(0.1)
    assert detector.decision_function(np.array([[2.0]]), entities=["a"])[0] == pytest.approx(20.0)


def test_one_sided_drop_scores_zero_two_sided_does_not(hand_robust: RobustBaselineDetector) -> None:
    drop = np.array([[1.0]])
    assert hand_robust.decision_function(drop, entities=np.array(["bob"]))[0] == 0.0
    assert hand_robust.deviations(drop, np.array(["bob"]))[0, 0] == pytest.approx(-2.0 / FLOOR)
    two_sided = RobustBaselineDetector(two_sided=True).fit(HAND_X, entities=HAND_ENTITIES)
    assert two_sided.decision_function(drop, entities=np.array(["bob"]))[0] == pytest.approx(
        2.0 / FLOOR
    )


def test_same_value_is_normal_for_one_entity_and_anomalous_for_another(
    hand_robust: RobustBaselineDetector,
) -> None:
    scores = hand_robust.decision_function(
        np.array([[3.0], [3.0]]), entities=np.array(["bob", "alice"])
    )
    assert scores[0] == 0.0
    assert scores[1] == pytest.approx(3.0 / FLOOR)


def test_unseen_and_thin_entities_fall_back_to_population() -> None:
    X = np.vstack([HAND_X, [[9.0]]])
    entities = np.append(HAND_ENTITIES, "carol")  # carol: 1 row < min_rows
    detector = RobustBaselineDetector().fit(X, entities=entities)
    population_median = 3.0  # median of 0,0,0,0,1,3,3,3,3,4,9
    for entity in ("carol", "mallory"):
        median, _ = detector.typical(entity)
        assert median[0] == pytest.approx(population_median)
    assert "carol" not in detector.entity_index_


def test_thin_entity_falls_back_to_its_group_before_the_population() -> None:
    X = np.vstack([HAND_X, [[3.0]]])
    entities = np.append(HAND_ENTITIES, "carol")
    groups = np.array(["ops"] * 5 + ["admins"] * 6)
    detector = RobustBaselineDetector().fit(X, entities=entities, groups=groups)
    # carol has one row; her training group "admins" is bob's five rows plus hers: median 3.
    assert detector.typical("carol")[0][0] == pytest.approx(3.0)
    assert detector.typical("dave", group="ops")[0][0] == pytest.approx(0.0)
    assert detector.typical("dave")[0][0] == pytest.approx(3.0)  # population median of 11 rows


def test_top_k_rms_rewards_both_one_huge_and_several_moderate_deviations() -> None:
    z = np.array([[10.0, 0.0, 0.0, 0.0], [6.0, 6.0, 6.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    scores = top_k_rms(z, 3, two_sided=False)
    np.testing.assert_allclose(scores, [10.0 / math.sqrt(3.0), 6.0, 1.0])


def test_peer_explicit_groups_typical_of_own_group_scores_low() -> None:
    rng = np.random.default_rng(3)
    sales = np.log1p(rng.poisson([30.0, 1.0], size=(50, 2)).astype(float))
    admins = np.log1p(rng.poisson([2.0, 40.0], size=(50, 2)).astype(float))
    X = np.vstack([sales, admins])
    groups = np.array(["sales"] * 50 + ["admins"] * 50)
    entities = np.array([f"u{i % 10 + (10 if i >= 50 else 0)}" for i in range(100)])
    detector = PeerGroupDetector().fit(X, entities=entities, groups=groups)
    admin_day = np.log1p(np.array([[2.0, 40.0]]))
    as_admin = detector.decision_function(admin_day, groups=np.array(["admins"]))[0]
    as_sales = detector.decision_function(admin_day, groups=np.array(["sales"]))[0]
    # The floor is half the population's spread (about 0.84 and 1.06 here), which bounds how
    # extreme a z can get on a heterogeneous feature; the gap is still wide.
    assert as_admin < 0.5
    assert as_sales > 1.5
    # Without a groups context, a known entity keeps its training group.
    assert detector.decision_function(admin_day, entities=np.array(["u15"]))[0] == as_admin


def test_peer_clusters_entities_and_assigns_unseen_to_nearest_centre() -> None:
    rng = np.random.default_rng(4)
    low = rng.poisson([1.0, 1.0], size=(60, 2)).astype(float)
    high = rng.poisson([50.0, 50.0], size=(60, 2)).astype(float)
    X = np.log1p(np.vstack([low, high]))
    entities = np.array([f"low{i % 6}" for i in range(60)] + [f"high{i % 6}" for i in range(60)])
    detector = PeerGroupDetector(n_clusters=2).fit(X, entities=entities)
    assert detector.cluster_centers_ is not None and detector.cluster_centers_.shape == (2, 2)
    assert detector.entity_group_["low0"] == detector.entity_group_["low5"]
    assert detector.entity_group_["low0"] != detector.entity_group_["high0"]
    high_day = np.log1p(np.array([[50.0, 50.0]]))
    # A newcomer whose own rows look like the "high" cluster is compared with it: score low.
    assert detector.decision_function(high_day, entities=np.array(["newcomer"]))[0] < 0.5
    # The same day for a known "low" entity is far from its peers.
    assert detector.decision_function(high_day, entities=np.array(["low0"]))[0] > 2.5


def test_peer_default_cluster_count() -> None:
    X = np.log1p(np.random.default_rng(5).poisson(3.0, size=(200, 3)).astype(float))
    entities = np.array([f"u{i % 50}" for i in range(200)])
    detector = PeerGroupDetector().fit(X, entities=entities)
    assert detector.cluster_centers_ is not None
    assert detector.cluster_centers_.shape[0] == 5  # round(sqrt(50 / 2))


def test_context_length_mismatch_is_refused(hand_robust: RobustBaselineDetector) -> None:
    with pytest.raises(ValueError, match="entities"):
        hand_robust.decision_function(np.zeros((2, 1)), entities=np.array(["alice"]))
