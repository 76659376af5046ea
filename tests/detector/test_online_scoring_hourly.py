"""The online scorer's results on a generated hourly stream stay what they were (to 1e-9).

Thousands of windows close at once in the daemon (one per entity each hour), so the fixture
scores whole hours together: entities joining in waves (cold start), skipping hours, being
forgotten, a checkpoint (pickle round trip) half-way, small rings that wrap (history,
references, calibration) and injected deviations that alert and are capped. The spec list
is fixed here, not the catalogue's, so that catalogue changes leave the fixture valid.

It was written by the scorer before the columnar rewrite of its state (per-entity ring
objects, list-based score windows). Regenerate it only for an intended change of results::

    .venv/bin/python -m tests.detector.test_online_scoring_hourly
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from detector.online_scoring import OnlineScorer
from detector.risk import FeatureEvidence, RiskConfig
from features.online import WindowVector
from features.spec import FeatureSpec
from tests.detector.test_online_scoring_parity import _assert_close

FIXTURE = Path(__file__).parents[1] / "fixtures" / "online_scoring" / "hourly_e120_d8.json"
SPECS = (
    FeatureSpec(name="logons", kind="count", explain="{observed:g} logons"),
    FeatureSpec(
        name="usb", kind="count", technique="T1052.001", explain="{observed:g} USB connects"
    ),
    FeatureSpec(name="hosts", kind="distinct", field="host", technique="T1021"),
    FeatureSpec(name="upload", kind="sum", field="bytes", explain="{observed:g} bytes out"),
    FeatureSpec(name="rhythm", kind="periodicity", field="target"),
    FeatureSpec(name="files", kind="count"),
)
ENTITIES, DAYS, HOURS = 120, 8, 8
START = datetime(2024, 3, 4, 8, tzinfo=UTC)


def hourly_batches() -> list[list[WindowVector]]:
    """Every working hour's closed windows (one per active entity), deterministic."""
    rng = np.random.default_rng(20240304)
    level = rng.uniform(0.5, 6.0, size=(ENTITIES, len(SPECS)))
    joins = rng.integers(0, DAYS * HOURS // 2, size=ENTITIES)
    joins[: ENTITIES // 2] = 0
    batches: list[list[WindowVector]] = []
    for step in range(DAYS * HOURS):
        start = START + timedelta(days=step // HOURS, hours=step % HOURS)
        counts = rng.poisson(level)
        counts[:, 1] = rng.random(ENTITIES) < 0.02  # USB: rare
        rhythm = np.round(rng.uniform(0.0, 0.99, size=ENTITIES), 3)
        batch: list[WindowVector] = []
        for entity in range(ENTITIES):
            if step < joins[entity] or rng.random() < 0.1:
                continue
            values = {spec.name: float(counts[entity, j]) for j, spec in enumerate(SPECS)}
            values["rhythm"] = float(rhythm[entity])
            values["upload"] *= 1000.0
            if step >= 30 and entity % 17 == 3 and step % 7 == entity % 7:
                values["usb"] = 25.0 + entity  # an injected deviation
                values["upload"] = 5e6
            batch.append(WindowVector(f"e{entity:03d}", start, int(counts[entity].sum()), values))
        batches.append(batch)
    return batches


def _scorer() -> OnlineScorer:
    return OnlineScorer(
        SPECS,
        budget_per_day=3.0,
        windows_per_day=ENTITIES * HOURS,
        warmup_windows=300,
        cold_start_windows=4,
        history=12,
        reference_size=2000,
        refresh_every=250,
        calibration_days=1.5,
        evidence_days=2.0,
        window=timedelta(hours=1),
        schema_hash="fixture",
        # The fixture's risk rule (before the 5-nines floor and the cold-start weight).
        risk=RiskConfig(surprise_floor=2.0),
        cold_start_evidence=1.0,
        feature_evidence=FeatureEvidence(weight=0.0),
    )


def _alert_row(alert: Any) -> list[Any]:
    return [
        alert.id,
        alert.entity,
        alert.window_start.isoformat(),
        alert.score,
        alert.threshold,
        alert.severity,
        alert.baseline,
        list(alert.techniques),
        dict(alert.context),
        [
            [d.feature, d.observed, d.typical, d.typical_low, d.typical_high, d.z, d.share, d.text]
            for d in alert.deviations
        ],
    ]


def replay_record(
    scorer: OnlineScorer,
    calls: Sequence[list[WindowVector]],
    *,
    restart_at: int,
    forget_at: Callable[[int], str | None],
    frames: bool,
) -> tuple[OnlineScorer, dict[str, list[Any]]]:
    """Replay ``calls`` through the scorer (pickled and restored before call ``restart_at``,
    the entity ``forget_at(step)`` names forgotten before each call); the scorer after, and
    every scored window (vectors only), alert and threshold in force, as plain JSON."""
    record: dict[str, list[Any]] = {"windows": [], "alerts": [], "thresholds": []}
    for step, call in enumerate(calls):
        if step == restart_at:
            scorer = pickle.loads(pickle.dumps(scorer))  # a checkpoint and a restart
        forgotten = forget_at(step)
        if forgotten is not None:
            scorer.forget(forgotten)
        if frames:
            raised = scorer.score_frame(_frame(call))
        else:
            scored, raised = scorer.score_windows(call)
            record["windows"].extend(
                [w.entity, w.window_start.isoformat(), w.score, w.alert, w.basis, w.evidence]
                for w in scored
            )
        record["alerts"].extend(_alert_row(a) for a in raised)
        record["thresholds"].append(float(scorer.calibrator.threshold_))
    return scorer, record


def replay_payload(*, frames: bool = False) -> dict[str, Any]:
    """Every scored window, alert, threshold and entity risk of the replay (plain JSON)."""
    scorer, record = replay_record(
        _scorer(),
        hourly_batches(),
        restart_at=DAYS * HOURS // 2,
        forget_at=lambda step: f"e{step % ENTITIES:03d}" if step % 9 == 8 else None,
        frames=frames,
    )
    return {
        **record,
        "risks": [
            [r.entity, r.peak, r.risk, r.alerts, r.windows, r.evidence_windows]
            for r in scorer.top_entities()
        ],
        "capped": scorer.capped,
        "scored": scorer.windows_scored,
    }


def _frame(batch: list[WindowVector]) -> pl.DataFrame:
    """The columnar evaluator's output for these windows."""
    return pl.DataFrame(
        {
            "entity": [v.entity for v in batch],
            "window_start": pl.Series(
                [v.window_start for v in batch], dtype=pl.Datetime("us", "UTC")
            ),
            "n_events": [v.n_events for v in batch],
            **{
                spec.name: pl.Series([v.values[spec.name] for v in batch], dtype=pl.Float64())
                for spec in SPECS
            },
        }
    )


def test_hourly_replay_matches_the_results_from_before_the_rewrite() -> None:
    expected = json.loads(FIXTURE.read_text())
    found = json.loads(json.dumps(replay_payload()))
    assert len(expected["windows"]) > 5000
    assert sum(w[3] for w in expected["windows"]) >= 10, "the fixture must exercise alerts"
    assert expected["capped"] > 0, "and the daily cap"
    assert {w[4] for w in expected["windows"]} == {"own history", "population (cold start)"}
    _assert_close(found, expected, "replay")


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(replay_payload(), indent=0) + "\n")


@pytest.mark.parametrize("detector", ["robust_window", "hst"])
def test_score_frame_gives_the_alerts_of_score_windows(detector: str) -> None:
    batches = hourly_batches()[: 40 if detector == "robust_window" else 16]
    by_vectors, by_frame = _scorer(), _scorer()
    if detector != "robust_window":
        by_vectors = OnlineScorer(SPECS, detector=detector, **_SMALL)
        by_frame = OnlineScorer(SPECS, detector=detector, **_SMALL)
    expected: list[list[Any]] = []
    found: list[list[Any]] = []
    for batch in batches:
        expected.extend(_alert_row(a) for a in by_vectors.score(batch))
        found.extend(_alert_row(a) for a in by_frame.score_frame(_frame(batch)))
    if detector == "robust_window":
        assert expected, "the comparison must cover alerts"
    assert found == expected
    # Every window's score, not only the alerting ones: the calibrators saw the same scores.
    scores = [s.calibrator.recent_ for s in (by_frame, by_vectors)]
    # (The windows scored against nothing, the first hours, are not calibration scores.)
    assert len(scores[0]) == len(scores[1]) > 700
    assert [scores[0].quantile(q / 10) for q in range(11)] == [
        scores[1].quantile(q / 10) for q in range(11)
    ]
    assert by_frame.calibrator.threshold_ == by_vectors.calibrator.threshold_
    assert [r.entity for r in by_frame.top_entities()] == [
        r.entity for r in by_vectors.top_entities()
    ]


_SMALL: dict[str, Any] = {
    "budget_per_day": 3.0,
    "windows_per_day": ENTITIES * HOURS,
    "warmup_windows": 300,
    "cold_start_windows": 4,
    "window": timedelta(hours=1),
    "detector_params": {"n_trees": 5, "height": 4, "window_size": 50},
}


def test_score_frame_reads_missing_and_null_columns_as_zero() -> None:
    batch = hourly_batches()[0][:5]
    frame = _frame(batch).with_columns(pl.lit(None, dtype=pl.Float64()).alias("usb")).drop("files")
    zeroed = [
        WindowVector(v.entity, v.window_start, v.n_events, {**v.values, "usb": 0.0, "files": 0.0})
        for v in batch
    ]
    first, second = _scorer(), _scorer()
    assert first.score_frame(frame) == second.score(zeroed) == []
    assert first.history_of("e000").tolist() == second.history_of("e000").tolist()
    assert first.score_frame(frame.clear()) == []
