"""With behaviour groups on, the daemon's scorer counts a group once, as the scan's tail
detector does; off (the default), tagged specs score as untagged ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from detector.online_scoring import OnlineScorer
from detector.pipeline import Budget, Pipeline, PipelineConfig
from detector.risk import RiskConfig
from features.online import WindowVector
from features.spec import FeatureSpec

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
USERS, DAYS, SPIKE_DAY = 20, 16, 14


def _specs(grouped: bool) -> list[FeatureSpec]:
    group = "act" if grouped else ""
    # Three views of one act (equal values: one act counted three ways) and a quiet feature.
    return [
        FeatureSpec(name="a1", kind="count", group=group),
        FeatureSpec(name="a2", kind="count", group=group),
        FeatureSpec(name="a3", kind="count", group=group),
        FeatureSpec(name="quiet", kind="count"),
    ]


def _value(user: int, day: int) -> float:
    if (user, day) == (7, SPIKE_DAY):
        return 40.0
    return float(2 + (user * 7 + day * 3) % 4)


def _day(day: int) -> list[WindowVector]:
    return [
        WindowVector(
            f"u{user}",
            DAY0 + timedelta(days=day),
            5,
            {"a1": _value(user, day), "a2": _value(user, day), "a3": _value(user, day), "quiet": 0},
        )
        for user in range(USERS)
    ]


def _online_scores(grouped: bool, switch: bool = True) -> tuple[list[float], list[bool]]:
    scorer = OnlineScorer(
        _specs(grouped),
        behaviour_groups=switch,
        budget_per_day=1,
        windows_per_day=USERS,
        warmup_windows=60,
        refresh_every=20,
        risk=RiskConfig(surprise_floor=2.0),
    )
    scores: list[float] = []
    alerts: list[bool] = []
    for day in range(DAYS):
        scored, _ = scorer.score_windows(_day(day))
        scores += [w.score for w in scored]
        alerts += [w.alert for w in scored]
    return scores, alerts


def test_three_correlated_features_of_one_group_score_as_one_online() -> None:
    ungrouped, ungrouped_alerts = _online_scores(grouped=False)
    grouped, grouped_alerts = _online_scores(grouped=True)
    spike = SPIKE_DAY * USERS + 7
    # Three equal surprises s: ungrouped s + s; grouped s + the quiet feature's 0.
    assert ungrouped[spike] > 4.0
    assert grouped == [score / 2.0 for score in ungrouped]
    # Halving every score changes no decision: the threshold is a quantile of the scores.
    assert grouped_alerts == ungrouped_alerts and grouped_alerts[spike]
    # Off by default: the tags alone change nothing.
    assert _online_scores(grouped=True, switch=False)[0] == ungrouped


def test_a_restored_scorer_from_before_groups_scores_ungrouped() -> None:
    scorer = OnlineScorer(_specs(grouped=True), warmup_windows=10, behaviour_groups=True)
    state = scorer.__getstate__()
    del state["feature_groups"]
    restored = OnlineScorer.__new__(OnlineScorer)
    restored.__setstate__(state)
    assert scorer.feature_groups == (0, 0, 0, 1) and restored.feature_groups is None


def test_the_pipeline_passes_the_specs_groups_to_the_detector_when_asked() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for user in range(12):
        for day in range(30):
            value = float(rng.integers(1, 5))
            if (user, day) == (3, 25):
                value = 60.0
            rows.append(
                {
                    "entity": f"u{user}",
                    "window_start": DAY0 + timedelta(days=day),
                    "n_events": 10,
                    "a1": value,
                    "a2": value,
                    "a3": value,
                    "quiet": 0.0,
                }
            )
    frame = pl.DataFrame(rows)
    train = frame.filter(pl.col("window_start") < DAY0 + timedelta(days=20))
    test = frame.filter(pl.col("window_start") >= DAY0 + timedelta(days=20))
    config = PipelineConfig(budget=Budget(per_day=1), behaviour_groups=True)
    ungrouped = Pipeline(_specs(grouped=False), config).fit(train).score(test)
    grouped = Pipeline(_specs(grouped=True), config).fit(train).score(test)
    assert ungrouped.max() > 4.0
    assert grouped.tolist() == (ungrouped / 2.0).tolist()
    # Off by default: the tags alone change nothing.
    default = Pipeline(_specs(grouped=True), PipelineConfig(budget=Budget(per_day=1)))
    assert default.fit(train).score(test).tolist() == ungrouped.tolist()
