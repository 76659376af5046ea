from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from detector.risk import FeatureEvidence, RiskConfig, entity_risk, surprise


def day(d: int) -> datetime:
    return datetime(2010, 3, d, tzinfo=UTC)


def test_several_weak_signals_outrank_one_loud_blip() -> None:
    windows = pl.DataFrame(
        {
            "entity": ["insider"] * 4 + ["blip"],
            "window_start": [day(1), day(2), day(3), day(4), day(2)],
            "evidence": [1.0, 1.0, 1.0, 1.0, 2.5],
            "alert": [False, False, True, False, True],
        }
    )
    risk = entity_risk(windows, RiskConfig(half_life_days=7.0))
    assert risk["entity"].to_list() == ["insider", "blip"]
    # 1 + 1*d + 1*d^2 + 1*d^3 with d = 2^(-1/7)
    d = 2 ** (-1 / 7)
    expected = ((1 * d + 1) * d + 1) * d + 1
    assert risk["risk"][0] == round(expected, 6)
    assert risk["alerts"].to_list() == [1, 1]
    assert risk["rank"].to_list() == [1, 2]
    assert risk["peak_window"][0] == day(4)


def test_risk_now_decays_to_the_end_of_the_period() -> None:
    windows = pl.DataFrame(
        {
            "entity": ["a", "b"],
            "window_start": [day(1), day(15)],
            "evidence": [4.0, 0.0],
            "alert": [True, False],
        }
    )
    risk = entity_risk(windows, RiskConfig(half_life_days=7.0)).sort("entity")
    assert risk["risk"].to_list() == [4.0, 0.0]
    assert risk["risk_now"].to_list() == [1.0, 0.0]  # two half-lives later


def test_surprise_is_capped_by_reference_size() -> None:
    out = surprise(np.array([0.99, 0.9999999]), n_reference=99)
    assert out.round(6).tolist() == [2.0, 2.0]


def test_batch_evidence_starts_beyond_five_nines() -> None:
    from detector.pipeline import Pipeline, PipelineConfig
    from features.spec import FeatureSpec

    specs = [FeatureSpec(name="n", kind="count")]
    scores = np.array([99_990.5, 100_999.0])
    batch = Pipeline(specs)
    # 99,999 training scores resolve 5 nines; q99 = 98,999.02 and the largest is 99,999, so
    # beyond it the surprise grows by 3 nines per 999.98 of score.
    batch.reference_ = np.arange(1.0, 100_000.0)
    surprises = batch.surprise(scores)
    np.testing.assert_allclose(surprises, [np.log10(99_999 / 9), 5.0 + 3000 / 999.98])
    # A window rarer than all but 9 of 99,999 training days (4.05 nines) earns nothing; one
    # far beyond everything training saw earns what lies above 5 nines.
    np.testing.assert_allclose(batch.evidence(scores), [0.0, 3000 / 999.98])
    # The online scorer's old floor (2 nines) would have counted the first one.
    lenient = Pipeline(specs, PipelineConfig(risk=RiskConfig(surprise_floor=2.0)))
    lenient.reference_ = batch.reference_
    np.testing.assert_allclose(lenient.evidence(scores)[0], np.log10(99_999 / 9) - 2.0)


def test_feature_evidence_counts_the_nines_beyond_its_share_of_the_cap() -> None:
    # 999 reference rows: cap 2 x 3 = 6 nines, floor 0.8 x 6 = 4.8 nines.
    rule = FeatureEvidence(floor_share=0.8, weight=3.0)
    own = np.array([True, True, True])
    found = rule.evidence(np.array([4.8, 5.3, 6.0]), own, 999)
    assert found.tolist() == pytest.approx([0.0, 1.5, 3.6])
    # One reference size per window: 99 rows put the floor at 0.8 x 4 = 3.2 nines.
    per_window = rule.evidence(np.array([4.2, 4.2]), np.array([True, True]), np.array([99, 999]))
    assert per_window.tolist() == pytest.approx([3.0, 0.0])


def test_feature_evidence_skips_cold_start_windows_empty_references_and_weight_zero() -> None:
    strongest = np.array([9.0, 9.0])
    assert FeatureEvidence().evidence(strongest, np.array([False, True]), 0).tolist() == [0, 0]
    assert FeatureEvidence().evidence(strongest, np.array([False, False]), 999).tolist() == [0, 0]
    off = FeatureEvidence(weight=0.0).evidence(strongest, np.array([True, True]), 999)
    assert off.tolist() == [0.0, 0.0]
    assert FeatureEvidence().evidence(strongest, np.array([True, False]), 999)[0] > 0.0
