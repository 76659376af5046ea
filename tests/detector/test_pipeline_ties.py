"""The scan's alert selection, severity and risk when scores tie (review S8, items 1, 3, 4, 13)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray

from detector.pipeline import Budget, Pipeline, PipelineConfig, select_alerts
from detector.report import strongest_alerts, write_reports
from features.spec import FeatureSpec
from models.calibration import severity_beyond

DAY0 = datetime(2010, 1, 4, tzinfo=UTC)
SPECS = [FeatureSpec(name="logons", kind="count"), FeatureSpec(name="usb", kind="count")]


class _FixedScores(Pipeline):
    """A pipeline whose detector scores are given per (entity, day): the selection under test."""

    given: dict[tuple[str, int], float]

    def score(self, frame: pl.DataFrame) -> NDArray[np.float64]:
        days = [(w - DAY0).days for w in frame["window_start"].to_list()]
        keys = zip(frame["entity"].to_list(), days, strict=True)
        return np.array([self.given.get(k, 1.0) for k in keys], dtype=np.float64)


def _frame(entities: list[str], days: range) -> pl.DataFrame:
    rows = [
        {
            "entity": e,
            "window_start": DAY0 + timedelta(days=d),
            "n_events": 10,
            "logons": float(2 + (d + i) % 3),
            "usb": 0.0,
        }
        for i, e in enumerate(entities)
        for d in days
    ]
    return pl.DataFrame(rows)


def _pipeline(given: dict[tuple[str, int], float], budget: Budget) -> _FixedScores:
    entities = [f"u{i:02d}" for i in range(20)]
    pipe = _FixedScores(SPECS, PipelineConfig(detector="robust", budget=budget))
    pipe.fit(_frame(entities, range(10)))
    pipe.given = given
    # 999 training scores 0..998: 3 nines resolved, the tail extrapolated beyond 998 at
    # (3 - 2) / (998 - q99) nines per unit, q99 = 988.02.
    pipe.reference_ = np.arange(999.0)
    return pipe


def test_select_alerts_never_takes_the_threshold_and_never_splits_a_tie() -> None:
    scores = np.array([5.0, 2.0, 2.0, 2.0, 2.0, 8.0, 6.0, 6.0])
    # Threshold 2: the four 2.0s do not alert although the budget has room for them.
    assert np.flatnonzero(select_alerts(scores, 2.0, budget=7)).tolist() == [0, 5, 6, 7]
    # A budget of 2 would cut the 6.0 pair: both stay out, not the later one by order.
    assert np.flatnonzero(select_alerts(scores, 1.0, budget=2)).tolist() == [5]
    assert np.flatnonzero(select_alerts(scores, 1.0, budget=3)).tolist() == [5, 6, 7]
    assert not select_alerts(scores, 1.0, budget=0).any()


def test_windows_tied_at_the_threshold_do_not_fill_the_budget() -> None:
    # 20 users x 10 days scored, 200 windows; 5/day over 10 days = 50 alerts wanted. Every
    # window scores 1.0 but ten standing out: the threshold (the 75th percentile) is 1.0.
    outliers = {(f"u{i:02d}", 10 + i % 10): 990.0 + i for i in range(0, 20, 2)}
    pipe = _pipeline(outliers, Budget(per_day=5))
    result = pipe.process(_frame([f"u{i:02d}" for i in range(20)], range(10, 20)))
    assert result.threshold == 1.0
    assert len(result.alerts) == 10  # was 50: the 40 ties filled by name order (u00, u01, ...)
    assert sorted(a.entity for a in result.alerts) == sorted({e for e, _ in outliers})
    assert all(a.score > a.threshold for a in result.alerts)
    assert int(result.windows["alert"].sum()) == 10


def test_severity_is_absolute_when_every_alert_ties() -> None:
    # Three alerts, all at the same score far beyond every training score: the quantile
    # severity called them all "low" (each one is at the cuts); they are critical.
    entities = [f"u{i:02d}" for i in range(20)]
    given = {("u05", 10): 1100.0, ("u06", 11): 1100.0, ("u07", 12): 1100.0}
    pipe = _pipeline(given, Budget(fraction=0.1))
    result = pipe.process(_frame(entities, range(10, 20)))
    assert result.threshold == 1.0  # 20 of 200 wanted, only three stand out
    # Threshold 1.0: 998/999 of training above it, 0.0004 nines; 1100 is beyond 998 by 102
    # units at 1 / 9.98 nines each: 3 + 10.2 nines, far more than 3 nines beyond.
    assert [a.severity for a in result.alerts] == ["critical"] * 3


def test_severity_steps_by_nines_beyond_the_threshold() -> None:
    # Training 0..998, a threshold of 900; hand-computed surprises (percentile side "left").
    pipe = _pipeline({}, Budget(per_day=5))
    nines = pipe.surprise(np.array([900.0, 990.0, 998.0, 1008.0, 1018.0]))
    # 900: 99 of 999 at or above -> -log10(99/999) = 1.0039; 990: 9 -> 2.0453; 998 (the
    # largest): 1 -> 2.9996; beyond it, from the cap log10(1000) = 3 at 1 nine per 9.98 units.
    assert nines.round(4).tolist() == [1.0039, 2.0453, 2.9996, 4.002, 5.004]
    beyond = nines - nines[0]  # 0, 1.04, 1.996, 2.998, 4.0 nines beyond the threshold
    assert [severity_beyond(float(n)) for n in beyond] == [
        "low",
        "medium",
        "medium",
        "high",
        "critical",
    ]


def test_alerts_carry_their_budget_rarity_as_risk_when_no_score_passes_the_floor() -> None:
    # Scores bounded below the 5-nine floor: before, every entity had risk 0 and the list
    # was ranked by alert counts, then scores, then names.
    entities = [f"u{i:02d}" for i in range(20)]
    given = {("u19", 12): 995.0, ("u00", 12): 992.0, ("u03", 14): 991.0, ("u03", 16): 991.0}
    pipe = _pipeline(given, Budget(fraction=0.05))  # 10 of 200: 1.3 nines each
    result = pipe.process(_frame(entities, range(10, 20)))
    least = -math.log10(10 / 200)
    risk = {r["entity"]: r["risk"] for r in result.entities.iter_rows(named=True)}
    # u03: two alerts two days apart, the first decayed by 2^(-2/7) first.
    assert risk["u03"] == pytest.approx(least * (1 + 2 ** (-2 / 7)), abs=1e-6)
    assert risk["u19"] == pytest.approx(least, abs=1e-6)
    assert risk["u00"] == pytest.approx(least, abs=1e-6)
    assert risk["u01"] == 0.0
    # u19 and u00 tie in risk and alerts: the higher score leads, not the name.
    assert result.entities["entity"].head(3).to_list() == ["u03", "u19", "u00"]


def test_a_budget_that_rounds_to_no_alert_gives_none() -> None:
    pipe = _pipeline({("u01", 12): 995.0}, Budget(fraction=0.000001))
    result = pipe.process(_frame([f"u{i:02d}" for i in range(20)], range(10, 20)))
    assert result.alerts == [] and result.threshold == 995.0
    assert result.entities["risk"].max() == 0.0


def test_the_report_lists_the_strongest_alerts_and_counts_the_rest(tmp_path: Path) -> None:
    # u07 alerts on 12 days; its strongest four come last (an exfiltration after weeks).
    scores = {("u07", d): 990.0 + d for d in range(10, 18)}
    scores |= {("u07", d): 1100.0 + d for d in range(18, 22)}
    pipe = _pipeline(scores, Budget(per_day=5))
    vectors = _frame([f"u{i:02d}" for i in range(20)], range(22))
    result = pipe.process(vectors.filter(pl.col("window_start") >= DAY0 + timedelta(days=10)))
    assert len(result.alerts) == 12
    shown = strongest_alerts(result.alerts)
    assert [(a.window_start - DAY0).days for a in shown] == [14, 15, 16, 17, 18, 19, 20, 21]
    write_reports(tmp_path, result, vectors, pipe, top=1)
    report = (tmp_path / "report.md").read_text()
    assert "**2010-01-25**" in report  # day 21, the strongest, was cut before
    assert "**2010-01-14**" not in report  # day 10, the weakest
    assert "- (4 more alerts in alerts.jsonl)" in report
    assert "<li>(4 more alerts in alerts.jsonl)</li>" in (tmp_path / "report.html").read_text()
