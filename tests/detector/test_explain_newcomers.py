"""A user first seen after training: explained (and scored) against its own earlier windows once
it has enough of them; never "-0" in a typical range."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from detector.explain import BaselineProfile, deviation_of, deviation_sentence
from detector.pipeline import Budget, Pipeline, PipelineConfig
from features.spec import FeatureSpec

VISITS = FeatureSpec(name="visits", kind="count", explain="{observed:g} web visits")
RARITY = FeatureSpec(name="rarity", kind="count", explain="rarest domain scores {observed:g} bits")
DAY0 = datetime(2010, 1, 19, tzinfo=UTC)
DAYS = [DAY0 + timedelta(days=d) for d in range(8)]

# Training: two marketing users with 40-60 visits a day over ten days.
TRAIN = pl.DataFrame(
    {
        "entity": ["ann"] * 10 + ["bob"] * 10,
        "visits": [40.0, 45, 50, 55, 60] * 4,
    }
)
GROUPS = {"ann": "marketing", "bob": "marketing", "new": "marketing"}
# The new hire: 220-263 visits on every working day, 900 on the last one.
NEW_VISITS = [246.0, 263, 206, 227, 226, 240, 231, 900]
SCORED = pl.DataFrame({"entity": ["new"] * 8, "window_start": DAYS, "visits": NEW_VISITS})


@pytest.fixture
def profile() -> BaselineProfile:
    return BaselineProfile([VISITS], TRAIN, groups=GROUPS).with_history(SCORED)


def _explain(profile: BaselineProfile, day: int, visits: float) -> tuple[str, str, float, float]:
    devs, basis = profile.explain("new", {"window_start": DAYS[day], "visits": visits})
    return basis, devs[0].text, devs[0].typical_low, devs[0].typical_high


def test_newcomer_reads_against_peers_until_it_has_five_windows(profile: BaselineProfile) -> None:
    # Days 0-4: fewer than min_rows = 5 earlier windows, the peer group (10th-90th: 40-60).
    basis, text, _, _ = _explain(profile, 4, 226.0)
    assert basis == "peer group marketing (cold start)"
    assert text == "226 web visits (typical 40–60)"


def test_newcomer_reads_against_its_own_earlier_windows_after(profile: BaselineProfile) -> None:
    # Day 7 has days 0-6 behind it: 10th percentile (lower) 206, 90th (higher) 263.
    basis, text, low, high = _explain(profile, 7, 900.0)
    assert basis == "own history (since 2010-01-19)"
    assert text == "900 web visits (typical 206–263)"
    assert (low, high) == (206.0, 263.0)
    # An ordinary day against its own history explains nothing on its own: only the
    # combination fallback names it, and from the own-history range (days 0-4: 206-263).
    basis, text, _, _ = _explain(profile, 5, 240.0)
    assert basis == "own history (since 2010-01-19)"
    assert text == "240 web visits (typical 206–263)"


def test_own_history_never_looks_at_later_windows() -> None:
    # Days 0-4 the same, day 5 asked about: a huge day 6 must not change its typical range.
    later = SCORED.with_columns(
        pl.when(pl.col("window_start") == DAYS[6]).then(5000.0).otherwise("visits").alias("visits")
    )
    a = BaselineProfile([VISITS], TRAIN, groups=GROUPS).with_history(SCORED)
    b = BaselineProfile([VISITS], TRAIN, groups=GROUPS).with_history(later)
    assert _explain(a, 5, 500.0) == _explain(b, 5, 500.0)
    assert _explain(a, 5, 500.0)[2:] == (206.0, 263.0)


def test_entities_with_training_history_read_as_before() -> None:
    plain = BaselineProfile([VISITS], TRAIN, groups=GROUPS)
    extended = plain.with_history(
        pl.DataFrame({"entity": ["ann"] * 8, "window_start": DAYS, "visits": [900.0] * 8})
    )
    values = {"window_start": DAYS[7], "visits": 900.0}
    assert extended.explain("ann", values) == plain.explain("ann", values)
    assert plain.explain("ann", values)[1] == "own history"


def test_pipeline_scores_a_newcomers_steady_days_as_ordinary_once_it_has_history() -> None:
    rng = np.random.default_rng(3)
    train_rows = [
        {"entity": f"u{u}", "window_start": DAY0 - timedelta(days=d), "n_events": 50,
         "visits": float(rng.integers(40, 61))}
        for u in range(10)
        for d in range(1, 21)
    ]  # fmt: skip
    scored = pl.DataFrame(
        {"entity": ["new"] * 8, "window_start": DAYS, "n_events": [250] * 8, "visits": [230.0] * 8}
    )
    pipe = Pipeline([VISITS], PipelineConfig(budget=Budget(per_day=1))).fit(
        pl.DataFrame(train_rows)
    )
    scores = pipe.score(scored)
    # Days 0-4 stand out against the population; from day 5 on the same 230 is her own
    # median: z = 0, no surprise at all.
    assert (scores[:5] > 1.0).all()
    assert scores[5:].tolist() == [0.0, 0.0, 0.0]


def test_a_negative_zero_never_reads_as_minus_zero() -> None:
    # A rarity summed over slices can end at -0.0 (the review's "(typical -0–5.49)").
    assert deviation_sentence(RARITY, 5.6, -0.0, -0.0, 5.49) == (
        "rarest domain scores 5.6 bits (typical 0–5.49)"
    )
    assert deviation_sentence(RARITY, -0.0, -0.0, -0.0, -0.0) == (
        "rarest domain scores 0 bits (typical 0)"
    )
    assert deviation_sentence(RARITY, 1.0, -0.001, -0.001, 2.0) == (
        "rarest domain scores 1 bits (typical 0.00–2)"
    )
    assert deviation_sentence(RARITY, 1.0, -1.5, -1.5, 2.0).endswith("(typical -1.50–2)")
    deviation = deviation_of(RARITY, -0.0, -0.0, -0.0, 5.49, -0.0, 0.1)
    for value in (deviation.observed, deviation.typical, deviation.typical_low, deviation.z):
        assert value == 0.0 and math.copysign(1.0, value) == 1.0
