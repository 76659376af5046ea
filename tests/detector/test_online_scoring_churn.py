"""The scorer under entity churn: forgotten entities' rows are reused or compacted away, their
risk records dropped, and the entities kept are scored exactly as without the churn."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from detector.online_scoring import OnlineScorer
from detector.risk import FeatureEvidence, RiskConfig
from features.online import WindowVector
from features.spec import FeatureSpec

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
SPECS = (
    FeatureSpec(name="logons", kind="count", explain="{observed:g} logons"),
    FeatureSpec(name="usb", kind="count", explain="{observed:g} USB connects"),
    FeatureSpec(name="hosts", kind="count", explain="{observed:g} hosts"),
)
CAP = 60
REGULARS = 20
#: Scanner names arriving per day; day BURST brings many more than the cap at once.
NEWCOMERS, BURST, BURST_SIZE = 30, 12, 400
DAYS = 20


def _scorer() -> OnlineScorer:
    return OnlineScorer(
        SPECS,
        budget_per_day=2.0,
        windows_per_day=50.0,
        warmup_windows=100,
        refresh_every=40,
        schema_hash="churn",
        risk=RiskConfig(surprise_floor=1.0),
        cold_start_evidence=1.0,
        feature_evidence=FeatureEvidence(weight=0.0),
    )


def _days() -> list[list[WindowVector]]:
    """Each day: the regulars (a USB spike now and then) and new unique scanner names."""
    rng = np.random.default_rng(8)
    days: list[list[WindowVector]] = []
    fresh = 0
    for day in range(DAYS):
        start = DAY0 + timedelta(days=day)
        vectors = []
        for u in range(REGULARS):
            usb = 25.0 if day >= 8 and (day + u) % 11 == 0 else 0.0
            values = {"logons": float(rng.integers(2, 9)), "usb": usb, "hosts": 1.0 + u % 3}
            vectors.append(WindowVector(f"r{u:02d}", start, 5, values))
        for _ in range(BURST_SIZE if day == BURST else NEWCOMERS):
            values = {"logons": float(rng.integers(1, 4)), "usb": 0.0, "hosts": 1.0}
            vectors.append(WindowVector(f"x{fresh:05d}", start, 1, values))
            fresh += 1
        days.append(vectors)
    return days


def _evicted(history: OrderedDict[str, None], day: list[WindowVector]) -> list[str]:
    """The features' cap: the day's entities become the most recent (the regulars last, so
    that they stay), the oldest beyond the cap leave (some may be the day's newcomers)."""
    for vector in sorted(day, key=lambda vector: vector.entity.startswith("r")):
        history[vector.entity] = None
        history.move_to_end(vector.entity)
    leaving = []
    while len(history) > CAP:
        leaving.append(history.popitem(last=False)[0])
    return leaving


def _rows(scorer: OnlineScorer) -> tuple[int, int]:
    """Rows ever bound (resident) in the baseline and the risk tables."""
    return len(scorer._rings.entities), len(scorer._risks.entities)


def test_under_a_cap_the_rows_stay_bounded_and_kept_entities_score_as_without_churn() -> None:
    keeping, forgetting, after = _scorer(), _scorer(), _scorer()
    history: OrderedDict[str, None] = OrderedDict()
    alerts = 0
    for number, day in enumerate(_days()):
        evicted = _evicted(history, day)
        # keeping forgets nothing; forgetting is handed the evictions with the call (rows
        # freed before the newcomers bind); after forgets each once the call is done.
        expected = keeping.score_windows(day)
        assert forgetting.score_windows(day, forget=evicted) == expected
        assert after.score_windows(day) == expected
        for entity in evicted:
            assert after.forget(entity)
        alerts += len(expected[1])
        assert (
            forgetting.calibrator.threshold_
            == after.calibrator.threshold_
            == keeping.calibrator.threshold_
        )
        live = len(history)
        assert len(forgetting._rings.index) == len(forgetting._risks.index) == live
        # Rows of evicted entities went to the newcomers; the burst's left-overs (all but
        # the cap) were compacted away at the end of its call.
        assert _rows(forgetting) == (live, live)
        if number == BURST:
            # Compacted: arrays sized for the live rows (plus half), not the burst's 420.
            assert forgetting._rings.values.shape[0] == forgetting._risks.risk.shape[0] == 90
            # Scored first, forgotten after: the old order held the burst's rows...
            assert _rows(after) == (CAP + BURST_SIZE,) * 2
        if number == BURST + 1:
            # ... until its next call compacted them (then its newcomers took rows).
            assert _rows(after) == (CAP + NEWCOMERS,) * 2
            forgetting = pickle.loads(pickle.dumps(forgetting))  # a checkpoint
    assert alerts >= 5, "the comparison must cover alerts"
    assert _rows(keeping)[0] == REGULARS + NEWCOMERS * (DAYS - 1) + BURST_SIZE
    kept = [r for r in keeping.top_entities() if r.entity in history]
    assert forgetting.top_entities() == after.top_entities() == kept
    assert any(r.peak > 0 for r in kept)
    for entity in history:
        assert np.array_equal(forgetting.history_of(entity), keeping.history_of(entity))


def _day(day: int, usb_user: str | None = None) -> list[WindowVector]:
    start = DAY0 + timedelta(days=day)
    return [
        WindowVector(
            f"r{u:02d}",
            start,
            5,
            {"logons": 3.0 + u % 3, "usb": 30.0 if f"r{u:02d}" == usb_user else 0.0, "hosts": 1},
        )
        for u in range(REGULARS)
    ]


def test_a_forgotten_entity_leaves_the_ranking_and_returns_with_risk_zero() -> None:
    scorer = _scorer()
    for day in range(10):
        assert scorer.score(_day(day)) == []
    [alert] = scorer.score(_day(10, usb_user="r07"))
    assert alert.entity == "r07" and float(alert.context["risk"]) > 0.0
    assert scorer.top_entities(1)[0].entity == "r07"
    assert scorer.forget("r07") and "r07" not in scorer.risks
    assert "r07" not in [r.entity for r in scorer.top_entities()]
    assert len(scorer._risks.free) == len(scorer._rings.free) == 1
    scored, _ = scorer.score_windows(_day(11))
    [back] = [w for w in scored if w.entity == "r07"]
    assert back.basis == "population (cold start)"
    record = scorer.risks["r07"]
    # One window, an ordinary one: nothing carried over from before it was forgotten.
    assert (record.windows, record.alerts, record.risk, record.peak) == (1, 0, 0.0, 0.0)


def test_forget_with_an_empty_call_still_forgets_and_compacts() -> None:
    scorer = _scorer()
    names = [f"x{k:03d}" for k in range(300)]
    scorer.score([WindowVector(name, DAY0, 1, {"logons": 1.0}) for name in names])
    assert _rows(scorer) == (300, 300)
    assert scorer.score_frame(_empty_frame(), forget=names[:200]) == []
    assert _rows(scorer) == (100, 100) and scorer._rings.values.shape[0] == 150
    assert list(scorer._rings.index) == names[200:]
    assert scorer._rings.index["x299"] == 99 and scorer.learnt_windows("x299") == 1
    assert scorer.score_windows([], forget=["x299"]) == ([], [])
    assert scorer.learnt_windows("x299") == 0 and "x299" not in scorer.risks


def test_a_compacted_table_keeps_each_entity_s_numbers() -> None:
    scorer = _scorer()
    names = [f"x{k:03d}" for k in range(300)]
    rng = np.random.default_rng(2)
    for day in range(3):
        scorer.score(
            [
                WindowVector(name, DAY0 + timedelta(days=day), 1, {"logons": float(n)})
                for name, n in zip(names, rng.integers(0, 9, size=300).tolist(), strict=True)
            ]
        )
    survivors = names[::7]
    before = {e: (scorer.history_of(e).copy(), scorer.risks[e]) for e in survivors}
    rows = scorer._rings.rows_of(survivors)
    median, scale = scorer._rings.median[rows].copy(), scorer._rings.scale[rows].copy()
    for name in names:
        if name not in before:
            scorer.forget(name)
    assert scorer._rings.compact() and scorer._risks.compact()
    assert scorer._rings.values.shape[0] == 64 and len(scorer._rings.entities) == 43
    assert not scorer._rings.compact()  # compact already
    for entity, (kept, risk) in before.items():
        assert np.array_equal(scorer.history_of(entity), kept)
        assert scorer.risks[entity] == risk
    rows = scorer._rings.rows_of(survivors)
    assert rows.tolist() == list(range(43))
    assert np.array_equal(scorer._rings.median[rows], median)
    assert np.array_equal(scorer._rings.scale[rows], scale)
    # Rows past the live ones are fresh: a newcomer starts from zeros and no peak.
    [row] = scorer._risks.rows_of(["new"]).tolist()
    assert (row, scorer._risks.peak_score[row], scorer._risks.peak_us[row]) == (
        43,
        -np.inf,
        np.iinfo(np.int64).min,
    )


def _empty_frame() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "entity": pl.String,
            "window_start": pl.Datetime("us", "UTC"),
            "n_events": pl.Int64,
            **{spec.name: pl.Float64 for spec in SPECS},
        }
    )
