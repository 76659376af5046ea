"""Entity ranking: ties broken by alerts and peak score, risk from a small training set, and
muted findings that rank nobody."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from detector.alerts import Alert
from detector.cli import _scan_summary
from detector.pipeline import Pipeline
from detector.risk import entity_risk, without_muted
from features.spec import FeatureSpec


def day(d: int) -> datetime:
    return datetime(2010, 3, d, tzinfo=UTC)


def _windows(rows: list[tuple[str, int, float, bool, float]]) -> pl.DataFrame:
    entity, d, evidence, alert, score = zip(*rows, strict=True)
    return pl.DataFrame(
        {
            "entity": list(entity),
            "window_start": [day(x) for x in d],
            "evidence": list(evidence),
            "alert": list(alert),
            "score": list(score),
        }
    )


def test_equal_risks_rank_by_alerts_then_peak_score_not_by_name() -> None:
    # No evidence anywhere (risk 0 for everyone): "a" and "c" alert once each, c scoring
    # higher; "b" alerts three times; "aa" never alerts.
    windows = _windows(
        [
            ("a", 1, 0.0, True, 5.0),
            ("aa", 1, 0.0, False, 2.0),
            ("b", 1, 0.0, True, 4.0),
            ("b", 2, 0.0, True, 4.5),
            ("b", 3, 0.0, True, 4.2),
            ("c", 1, 0.0, True, 7.0),
            ("c", 2, 0.0, False, 1.0),
        ]
    )
    ranked = entity_risk(windows)
    assert ranked["entity"].to_list() == ["b", "c", "a", "aa"]
    assert ranked["rank"].to_list() == [1, 2, 3, 4]
    assert ranked["alerts"].to_list() == [3, 1, 1, 0]
    assert ranked.columns == [
        "rank",
        "entity",
        "risk",
        "risk_now",
        "peak_window",
        "alerts",
        "windows",
        "evidence_windows",
    ]


def test_risk_still_ranks_first() -> None:
    windows = _windows([("quiet", 1, 1.5, False, 3.0), ("loud", 1, 0.0, True, 9.0)])
    assert entity_risk(windows)["entity"].to_list() == ["quiet", "loud"]


def test_a_small_training_set_whose_top_scores_tie_still_earns_evidence() -> None:
    # 999 training scores (log10(1000) = 3 nines), the top 20 tied at 3.0, so their 99th
    # percentile is their maximum. The tail runs from the largest score below the tie (1.0,
    # with 20/999 of training above it: -log10(20/999) = 1.6986 nines) to the maximum (3):
    # slope (3 - 1.6986) / 2 = 0.6507 nines per unit of score.
    pipe = Pipeline([FeatureSpec(name="n", kind="count")])
    pipe.reference_ = np.array([1.0] * 979 + [3.0] * 20)
    slope = (3.0 + math.log10(20 / 999)) / 2.0
    scores = np.array([2.0, 5.0, 7.0])
    assert pipe.surprise(scores) == pytest.approx(
        [-math.log10(20 / 999), 3.0 + 2 * slope, 3.0 + 4 * slope]
    )
    # Beyond 5 nines (the batch floor) only the score of 7: 3 + 4 x 0.6507 - 5 = 0.6029.
    assert pipe.evidence(scores) == pytest.approx([0.0, 0.0, 4 * slope - 2.0])


def test_all_training_scores_equal_leaves_the_surprise_capped() -> None:
    pipe = Pipeline([FeatureSpec(name="n", kind="count")])
    pipe.reference_ = np.full(999, 2.0)
    assert pipe.surprise(np.array([9.0])).tolist() == [pytest.approx(3.0)]


def _alert(entity: str, d: int, score: float = 9.0) -> Alert:
    return Alert.build(
        entity=entity,
        window_start=day(d),
        window_end=day(d) + timedelta(days=1),
        detector="tail",
        score=score,
        threshold=5.0,
        severity="high",
        schema_hash="h",
        deviations=(),
    )


def test_muted_findings_add_no_risk_and_no_alerts() -> None:
    # "muted" alerted twice with strong evidence, both findings muted; one of its quiet
    # windows kept a little evidence. "kept" alerted once.
    windows = _windows(
        [
            ("muted", 1, 6.0, True, 9.0),
            ("muted", 2, 5.0, True, 8.0),
            ("muted", 3, 0.5, False, 3.0),
            ("kept", 1, 1.0, True, 6.0),
        ]
    )
    alerts = [_alert("muted", 1), _alert("muted", 2), _alert("kept", 1)]
    kept = [alerts[2]]
    ranked = entity_risk(without_muted(windows, alerts, kept))
    assert ranked["entity"].to_list() == ["kept", "muted"]
    assert ranked["risk"].to_list() == [1.0, 0.5]
    assert ranked["alerts"].to_list() == [1, 0]
    assert ranked["evidence_windows"].to_list() == [1, 1]
    # Before muting "muted" led: 6 decayed one day (x 2^(-1/7)) plus 5, ...
    assert entity_risk(windows)["entity"].to_list() == ["muted", "kept"]


def test_nothing_muted_returns_the_windows_as_they_were() -> None:
    windows = _windows([("a", 1, 2.0, True, 9.0)])
    alerts = [_alert("a", 1)]
    assert without_muted(windows, alerts, alerts) is windows


def _summary(entities: pl.DataFrame, alerts: list[Alert]) -> str:
    result = SimpleNamespace(
        events=10,
        rejects=0,
        vectors=pl.DataFrame({"x": [1]}),
        scored=SimpleNamespace(windows=pl.DataFrame({"x": [1]}), alerts=alerts, entities=entities),
        pipeline=SimpleNamespace(config=SimpleNamespace(budget="5/day")),
        suppressed=0,
        outputs={"report_html": "r.html", "alerts": "a.jsonl"},
    )
    return _scan_summary(result)


def test_the_top_list_claims_accumulated_evidence_only_when_there_is_risk() -> None:
    windows = _windows(
        [("weak", 1, 1.5, False, 3.0), ("none", 1, 0.0, False, 2.0), ("alerted", 1, 0.0, True, 9)]
    )
    text = _summary(entity_risk(windows), [_alert("alerted", 1)])
    lines = [line for line in text.splitlines() if line.startswith("    ")]
    assert lines[0].split()[:2] == ["1.", "weak"]
    assert lines[0].endswith("0 alert(s): accumulated weak evidence, no single alert")
    assert lines[1].split()[:2] == ["2.", "alerted"]
    assert lines[1].endswith(
        "1 alert(s) on 2010-03-01: unusual combination of features (no single feature stands out)"
    )
    assert lines[2].split()[:2] == ["3.", "none"]
    assert lines[2].endswith("0 alert(s): no alert and no accumulated risk")
