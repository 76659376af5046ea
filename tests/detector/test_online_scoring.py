"""OnlineScorer: warm-up, cold start, budget cap, learning policy, explanations, risk, state."""

from __future__ import annotations

import csv
import math
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from detector.departed import DepartedEntities, write_entities
from detector.online_scoring import (
    COLD_BASIS,
    COLD_START_EVIDENCE_WEIGHT,
    OWN_BASIS,
    EntityBaseline,
    OnlineScorer,
    _Ring,
    _ScoreWindow,
    tail_surprise,
)
from detector.risk import STREAM_SURPRISE_FLOOR, FeatureEvidence, RiskConfig
from features.online import OnlineFeatures, WindowVector
from features.spec import FeatureSpec, WindowConfig
from models.online._common import WindowedECDF
from models.online.robust_window import RobustWindowDetector
from streams.event import Event

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
SPECS = (
    FeatureSpec(name="logons", kind="count", explain="{observed:g} logons"),
    FeatureSpec(
        name="usb", kind="count", technique="T1052.001", explain="{observed:g} USB connects"
    ),
    FeatureSpec(name="hosts", kind="count", technique="T1021", explain="{observed:g} hosts"),
)


def _vector(
    entity: str, day: int, logons: float = 4.0, usb: float = 0.0, hosts: float = 1.0
) -> WindowVector:
    return WindowVector(
        entity, DAY0 + timedelta(days=day), 10, {"logons": logons, "usb": usb, "hosts": hosts}
    )


def _ordinary_day(day: int, users: int = 20) -> list[WindowVector]:
    """Every user at its own steady level: logons 3 + u % 3, one host, no USB."""
    return [_vector(f"u{u:02d}", day, logons=3.0 + u % 3) for u in range(users)]


def _scorer(**overrides: object) -> OnlineScorer:
    params: dict[str, object] = {
        "budget_per_day": 2.0,
        "windows_per_day": 20.0,
        "warmup_windows": 100,
        "refresh_every": 20,
        "schema_hash": "test",
        # These tests were written with the original 2-nines floor (their small ordinary
        # distributions resolve too few nines for the stream default).
        "risk": RiskConfig(surprise_floor=2.0),
        "cold_start_evidence": 1.0,
        "feature_evidence": FeatureEvidence(weight=0.0),
    }
    params.update(overrides)
    return OnlineScorer(SPECS, **params)  # type: ignore[arg-type]


def _warm(scorer: OnlineScorer, days: int = 10) -> None:
    for day in range(days):
        assert scorer.score(_ordinary_day(day)) == []


def test_nothing_alerts_during_the_warm_up_however_extreme() -> None:
    scorer = _scorer(warmup_windows=100)
    alerts = []
    for day in range(5):  # 5 x 20 = 100 windows: the whole warm-up
        vectors = _ordinary_day(day)
        vectors[3] = _vector("u03", day, usb=500.0, hosts=90.0)
        alerts += scorer.score(vectors)
    assert alerts == []
    assert scorer.windows_scored == 100


def test_a_burst_alerts_with_its_explanation_technique_and_risk() -> None:
    scorer = _scorer()
    _warm(scorer)
    day = _ordinary_day(10)
    day[7] = _vector("u07", 10, logons=4.0, usb=30.0)
    [alert] = scorer.score(day)
    assert (alert.entity, alert.baseline, alert.techniques) == ("u07", OWN_BASIS, ("T1052.001",))
    [usb] = alert.deviations
    # u07 never used USB in its 10 windows: typical exactly 0, observed 30.
    assert (usb.feature, usb.observed, usb.typical, usb.typical_low, usb.typical_high) == (
        "usb",
        30.0,
        0.0,
        0.0,
        0.0,
    )
    assert usb.text == "30 USB connects (typical 0)"
    # No ordinary window ever deviated on USB: the smallest share the reference resolves.
    assert usb.share is not None and usb.share < 0.01
    assert alert.score > alert.threshold
    assert float(alert.context["risk"]) > 0.0
    assert scorer.top_entities(1)[0].entity == "u07"
    assert scorer.top_entities(1)[0].alerts == 1


def test_an_alerted_window_does_not_teach_the_baseline_unless_configured() -> None:
    for learn_flagged, expected in ((False, 10), (True, 11)):
        scorer = _scorer(learn_flagged=learn_flagged)
        _warm(scorer)
        day = _ordinary_day(10)
        day[7] = _vector("u07", 10, usb=30.0)
        assert [a.entity for a in scorer.score(day)] == ["u07"]
        assert scorer.learnt_windows("u07") == expected
        assert scorer.learnt_windows("u08") == 11


def test_the_daily_budget_is_a_hard_cap_and_the_highest_scores_win() -> None:
    scorer = _scorer(budget_per_day=2.0)
    _warm(scorer)
    day = _ordinary_day(10)
    # Five bursts; u02 on USB only, the others on USB and hosts. Neither feature ever rose
    # above typical before, so each saturates its surprise: the four two-feature bursts tie
    # above u02, and the two that fit in a budget of 2 a day are chosen among them by a hash
    # of entity and day (never by name: u05 and u09 would come first).
    for rank, u in enumerate((2, 5, 9, 12, 15)):
        day[u] = _vector(f"u{u:02d}", 10, usb=10.0 * (rank + 1), hosts=1.0 + 10 * rank)
    windows, alerts = scorer.score_windows(day)
    scores = {w.entity: w.score for w in windows}
    assert scores["u05"] == scores["u09"] == scores["u12"] == scores["u15"] > scores["u02"]
    assert [a.entity for a in alerts] == ["u09", "u12"]
    assert scorer.capped == 3
    # Another call for the same day has no room left.
    late = [_vector("u01", 10, usb=99.0, hosts=99.0)]
    assert scorer.score(late) == []
    assert scorer.capped == 4


def test_no_alert_storm_when_many_new_entities_arrive_at_once() -> None:
    scorer = _scorer(budget_per_day=2.0, cold_start_windows=5)
    _warm(scorer)
    # Day one of a new department: 200 entities never seen, a third of them far off the
    # population's typical values.
    newcomers = [
        _vector(f"n{k:03d}", 10, logons=30.0 if k % 3 == 0 else 4.0, hosts=20.0 if k % 3 else 1.0)
        for k in range(200)
    ]
    alerts = scorer.score(_ordinary_day(10) + newcomers)
    assert len(alerts) <= 2
    assert all(a.baseline == COLD_BASIS for a in alerts)
    assert scorer.capped >= 1
    # Only the alerted windows are kept from learning: the capped candidates are learnt.
    learnt = sum(scorer.learnt_windows(f"n{k:03d}") for k in range(200))
    assert learnt == 200 - len(alerts)


def test_cold_start_scores_against_the_population_and_says_so() -> None:
    scorer = _scorer(cold_start_windows=5)
    _warm(scorer)
    [alert] = scorer.score([*_ordinary_day(10), _vector("new", 10, usb=40.0)])
    assert (alert.entity, alert.baseline) == ("new", COLD_BASIS)
    usb = next(d for d in alert.deviations if d.feature == "usb")
    # The population's typical USB count is 0 (nobody uses it).
    assert (usb.observed, usb.typical) == (40.0, 0.0)
    # After 5 learnt windows its own history is the baseline.
    for day in range(11, 16):
        scorer.score([*_ordinary_day(day), _vector("new", day)])
    [own] = scorer.score([*_ordinary_day(16), _vector("new", 16, usb=40.0)])
    assert own.baseline == OWN_BASIS


def test_forget_drops_the_baseline_and_the_entity_restarts_cold() -> None:
    scorer = _scorer()
    _warm(scorer)
    assert scorer.forget("u04") is True
    assert scorer.forget("u04") is False
    assert scorer.learnt_windows("u04") == 0 and scorer.history_of("u04").shape == (0, 3)
    windows, _ = scorer.score_windows(_ordinary_day(10))
    assert {w.entity: w.basis for w in windows}["u04"] == COLD_BASIS
    assert {w.entity: w.basis for w in windows}["u05"] == OWN_BASIS


def test_online_features_report_the_entities_they_evict() -> None:
    spec = FeatureSpec(name="logons", kind="count", where={"action": "logon"})
    online = OnlineFeatures([spec], WindowConfig(window="1h"), max_entities=2)
    for minute, user in enumerate(("ann", "bob", "cat")):
        online.update(Event(DAY0 + timedelta(minutes=minute), "x", "logon", user=user))
    online.update(Event(DAY0 + timedelta(hours=1, minutes=1), "x", "logon", user="ann"))
    # All three had a window close; the cap keeps two, the first seen leaves.
    assert online.evicted == ["ann"]
    assert online.evictions == 1


def test_pickled_scorer_continues_identically() -> None:
    scorer = _scorer()
    _warm(scorer, days=7)
    restored = pickle.loads(pickle.dumps(scorer))
    rng = np.random.default_rng(3)
    for day in range(7, 12):
        vectors = [
            _vector(
                f"u{u:02d}", day, logons=float(rng.integers(2, 8)), usb=float(rng.integers(0, 2))
            )
            for u in range(20)
        ]
        first, second = scorer.score_windows(vectors), restored.score_windows(vectors)
        assert [w.score for w in first[0]] == [w.score for w in second[0]]
        assert [a.id for a in first[1]] == [a.id for a in second[1]]


def test_entity_risk_decays_and_is_written_ranked(tmp_path: Path) -> None:
    scorer = _scorer()
    _warm(scorer)
    [first] = scorer.score([*_ordinary_day(10)[:7], _vector("u07", 10, usb=30.0)])
    risk_after_first = scorer.risks["u07"].peak
    assert float(first.context["risk"]) == pytest.approx(risk_after_first, abs=5e-4)
    # Six quiet days later the risk has decayed by 2^(-6/7) (half-life 7 days).
    for day in range(11, 17):
        scorer.score(_ordinary_day(day))
    record = scorer.risks["u07"]
    assert math.isclose(record.now(scorer.last_day, 7.0), risk_after_first * 0.5 ** (6 / 7))
    rows = write_entities(
        tmp_path / "entities.csv",
        scorer.top_entities(),
        DepartedEntities(),
        strongest={},
        last_day=scorer.last_day,
        half_life_days=7.0,
    )
    with (tmp_path / "entities.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert rows == len(table) == 20
    assert (table[0]["rank"], table[0]["entity"], table[0]["alerts"]) == ("1", "u07", "1")
    assert table[0]["peak_window"] == "2024-01-11"
    assert float(table[0]["risk"]) == pytest.approx(risk_after_first, rel=1e-5)


def test_a_registry_detector_scores_own_history_windows() -> None:
    scorer = _scorer(detector="count_tail")
    for number in range(10):
        scorer.score(_ordinary_day(number))
    day = _ordinary_day(10)
    day[7] = _vector("u07", 10, usb=30.0)
    [alert] = scorer.score(day)
    assert (alert.entity, alert.detector, alert.baseline) == ("u07", "count_tail", OWN_BASIS)
    assert alert.deviations[0].feature == "usb"


def test_a_bad_detector_name_fails_at_construction() -> None:
    with pytest.raises(KeyError, match="unknown detector"):
        _scorer(detector="nope")


def test_tail_surprise_extrapolates_beyond_the_reference() -> None:
    # 999 reference rows: cap = log10(1000) = 3; q99 row = 989 -> value 989, top 998.
    reference = np.arange(999.0).reshape(-1, 1)
    never = np.zeros((999, 1))
    values = np.array([[0.0], [998.0], [1007.0]])
    surprise = tail_surprise(values, reference)
    assert surprise[0, 0] == 0.0
    assert surprise[1, 0] == pytest.approx(-math.log10(2 / 1000))
    # Beyond the top: 3 + (1007 - 998) * (3 - 2) / (998 - 989) = 4.
    assert surprise[2, 0] == pytest.approx(4.0)
    # A column that never rose above 0: twice the resolvable surprise at once.
    assert tail_surprise(np.array([[0.5]]), never)[0, 0] == pytest.approx(6.0)


def test_the_ring_grows_with_what_is_pushed_and_keeps_the_last_rows_in_order() -> None:
    ring = _Ring(size=100, width=2)
    assert ring.rows.shape == (0, 2)  # nothing allocated while nothing was learnt
    ring.push(np.array([1.0, 1.0]))
    assert ring.rows.shape == (64, 2)
    ring.push_many(np.arange(300.0).reshape(150, 2))
    # 151 rows pushed into 100 slots: push number p (from 0) lands in slot p % 100, and
    # batch row j is push number j + 1.
    assert ring.n == 151 and ring.rows.shape == (100, 2)
    kept = ring.kept()
    assert kept[0].tolist() == [198.0, 199.0]  # batch row 99 (push 100)
    assert kept[50].tolist() == [298.0, 299.0]  # batch row 149 (push 150), the last
    assert kept[51].tolist() == [100.0, 101.0]  # batch row 50 (push 51), the oldest kept
    huge = _Ring(size=3, width=1)
    huge.push_many(np.arange(7.0).reshape(7, 1))
    assert sorted(huge.kept()[:, 0].tolist()) == [4.0, 5.0, 6.0] and huge.n == 7
    assert huge.kept()[6 % 3, 0] == 6.0  # push 6 (from 0) lands in slot 0


def test_an_empty_scorer_checkpoints_small_and_a_ring_restores_its_capacity() -> None:
    scorer = _scorer()
    # Three population rings of 50,000 x n_features float32 used to be allocated (and
    # pickled) up front: ~26 MB for the default features before any entity was seen.
    assert len(pickle.dumps(scorer)) < 50_000
    ring = _Ring(size=10, width=1)
    ring.push_many(np.arange(4.0).reshape(4, 1))
    restored = pickle.loads(pickle.dumps(ring))
    assert restored.rows.shape == (4, 1) and restored.kept()[:, 0].tolist() == [0, 1, 2, 3]
    restored.push_many(np.arange(10.0, 18.0).reshape(8, 1))
    assert sorted(restored.kept()[:, 0].tolist()) == [2, 3, *range(10, 18)]
    # A ring pickled before lazy growth (full size, no "size") keeps working.
    revived = _Ring.__new__(_Ring)
    revived.__setstate__({"rows": np.zeros((5, 1), dtype=np.float32), "n": 0})
    revived.push_many(np.arange(6.0).reshape(6, 1))
    assert revived.size == 5 and sorted(revived.kept()[:, 0].tolist()) == [1, 2, 3, 4, 5]


def test_the_array_score_window_is_the_list_window_pushed_a_call_at_once() -> None:
    rng = np.random.default_rng(5)
    listed, arrays = WindowedECDF(size=50), _ScoreWindow(size=50)
    # Calls of 0 to 80 scores with ties: partly, wholly and more than wholly replacing.
    for size in [0, 3, 49, 1, 50, 7, 80, 20, 0, 33]:
        values = np.round(rng.exponential(2.0, size=size), 1)
        for value in values:
            listed.push(float(value))
        arrays.push_many(values)
        assert arrays.ordered.tolist() == listed._sorted
        assert arrays.order.tolist() == list(listed._order)
        probes = [-1.0, 0.0, 0.5, 1.0, 2.3, 100.0]
        assert arrays.ranks(np.array(probes)).tolist() == [listed.rank(p) for p in probes]
        assert [arrays.quantile(q) for q in (0.0, 0.1, 0.5, 0.99, 1.0)] == [
            listed.quantile(q) for q in (0.0, 0.1, 0.5, 0.99, 1.0)
        ]
    assert len(arrays) == 50


def test_a_checkpoint_with_list_score_windows_restores_array_ones() -> None:
    # Checkpoints written before the array windows hold WindowedECDF objects.
    scorer = _scorer()
    # Days 1 and 2 inform nothing (no population, then no reference): 8 days warm it up.
    _warm(scorer, days=8)
    old_style = pickle.loads(pickle.dumps(scorer))
    for name in ("_ordinary",):
        listed = WindowedECDF(getattr(scorer, name).size)
        for value in getattr(scorer, name).order.tolist():
            listed.push(value)
        setattr(old_style, name, listed)
    calibration = WindowedECDF(scorer.calibrator.recent_.size)
    for value in scorer.calibrator.recent_.order.tolist():  # type: ignore[attr-defined]
        calibration.push(value)
    old_style.calibrator.recent_ = calibration
    restored = pickle.loads(pickle.dumps(old_style))
    assert isinstance(restored._ordinary, _ScoreWindow)
    assert isinstance(restored.calibrator.recent_, _ScoreWindow)
    day = _ordinary_day(8)
    day[4] = _vector("u04", 8, usb=40.0)
    assert (
        [a.entity for a in restored.score(day)] == [a.entity for a in scorer.score(day)] == ["u04"]
    )


def _histories_match_their_baselines(scorer: OnlineScorer) -> None:
    rings = scorer._rings
    assert sorted(rings.index.values()) == rings.live()
    for entity, row in rings.index.items():
        kept = scorer.history_of(entity).astype(np.float64)
        assert kept.shape == (min(scorer.learnt_windows(entity), scorer.history), 3)
        median = np.median(kept, axis=0)
        assert np.array_equal(rings.median[row], median)
        assert np.array_equal(rings.scale[row], 1.4826 * np.median(np.abs(kept - median), axis=0))
        assert not rings.stale[row]


def test_the_entity_rings_refresh_what_each_entity_would_and_reuse_forgotten_rows() -> None:
    # Entities of every age (1 to 9 windows, history 6: partial and wrapped rings, odd and
    # even lengths), a forgotten one whose row a newcomer takes over from zeros.
    scorer = _scorer(history=6, cold_start_windows=2)
    rng = np.random.default_rng(5)
    for day in range(9):
        vectors = [
            _vector(f"u{u:02d}", day, logons=float(rng.integers(0, 9)), hosts=float(u % 4))
            for u in range(12)
            if day >= u % 9
        ]
        scorer.score(vectors)
        _histories_match_their_baselines(scorer)
    row = scorer._rings.row("u01")
    assert scorer.forget("u01") and row in scorer._rings.free
    scorer.score([_vector("new", 9, logons=7.0, hosts=2.0)])
    assert scorer._rings.row("new") == row and scorer.learnt_windows("new") == 1
    first = np.array([math.log1p(7.0), 0.0, math.log1p(2.0)], dtype=np.float32)  # as kept
    assert scorer._rings.values[row].T[:1].tolist() == [first.tolist()]
    assert not scorer._rings.values[row][:, 1:].any()  # u01's old windows are gone
    _histories_match_their_baselines(scorer)


def test_several_windows_of_an_entity_in_one_call_fill_its_ring_in_order() -> None:
    # History 4, cold start 2: six windows of "ann" in one call wrap her ring (the last four
    # stay, in the slots window by window learning gives), all judged as the call found her.
    scorer = _scorer(history=4, cold_start_windows=2)
    logons = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    windows, _ = scorer.score_windows(
        [_vector("ann", day, logons=n) for day, n in enumerate(logons)]
    )
    assert {w.basis for w in windows} == {COLD_BASIS}
    assert scorer.learnt_windows("ann") == 6
    # Window w (from 0) went to slot w % 4: slots hold windows 4, 5, 2, 3.
    kept = scorer.history_of("ann")[:, 0]
    assert kept.tolist() == np.float32(np.log1p([5.0, 6.0, 3.0, 4.0])).tolist()
    _histories_match_their_baselines(scorer)
    assert scorer.risks["ann"].windows == 6


def _legacy_state(scorer: OnlineScorer) -> dict[str, object]:
    """The scorer's state as checkpoints before the entity tables held it (one object each)."""
    state = dict(scorer.__getstate__())
    rings = state.pop("_rings")
    state.pop("_risks")
    baselines = {}
    for entity, row in rings.index.items():
        robust = RobustWindowDetector(window=scorer.history, min_history=5, log1p=False)
        robust.set_columns(scorer.features)
        robust.buffer_ = rings.values[row].T.copy()
        robust.median_, robust.scale_ = rings.median[row].copy(), rings.scale[row].copy()
        robust.n_learnt_ = int(rings.learnt[row])
        baselines[entity] = EntityBaseline(robust, scored=robust.n_learnt_)
    state["baselines"] = baselines
    state["risks"] = scorer.risks
    return state


def test_a_checkpoint_holds_only_filled_slots_and_a_legacy_one_loads_the_same() -> None:
    scorer = _scorer(history=60)
    _warm(scorer, days=3)  # 3 of 60 slots filled per entity
    checkpoint = pickle.dumps(scorer)
    # 20 entities x 60 slots x 3 features of float32 would be 14.4 kB of rings alone.
    assert len(checkpoint) < len(pickle.dumps(_scorer(history=60))) + 14_400
    # The rings' filled slots: 20 x 3 x 3 float32 (720 bytes), names and counts.
    assert len(pickle.dumps(scorer._rings)) < 720 + 800
    restored = pickle.loads(checkpoint)
    _histories_match_their_baselines(restored)
    legacy = OnlineScorer.__new__(OnlineScorer)
    legacy.__setstate__(pickle.loads(pickle.dumps(_legacy_state(scorer))))
    assert legacy.top_entities() == scorer.top_entities()
    for day in range(3, 9):
        vectors = _ordinary_day(day)
        vectors[day] = _vector(f"u{day:02d}", day, usb=30.0 + day)
        expected = scorer.score_windows(vectors)
        assert restored.score_windows(vectors) == expected
        assert legacy.score_windows(vectors) == expected
    assert legacy.top_entities() == scorer.top_entities()
    _histories_match_their_baselines(legacy)


def test_a_legacy_baseline_of_another_length_keeps_its_last_windows() -> None:
    scorer = _scorer(cold_start_windows=2)
    _warm(scorer, days=3)
    state = _legacy_state(scorer)
    # As a checkpoint whose detector kept a shorter history than the scorer's.
    short = RobustWindowDetector(window=2, min_history=2, log1p=False)
    for vector in (_vector("u03", 0), _vector("u03", 1, logons=6.0), _vector("u03", 2)):
        short.learn_array(
            np.log1p([vector.values[name] for name in scorer.features]), scorer.features
        )
    state["baselines"]["u03"].robust = short  # type: ignore[index]
    restored = OnlineScorer.__new__(OnlineScorer)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    # Its last two windows (logons 6, then 4), oldest first, in a ring of the scorer's length.
    assert restored.learnt_windows("u03") == 2
    assert restored.history_of("u03")[:, 0].tolist() == np.float32(np.log1p([6.0, 4.0])).tolist()
    restored.score([_vector("u03", 3, logons=8.0), _vector("u04", 3)])
    assert restored.learnt_windows("u03") == 3 and restored.learnt_windows("u04") == 4
    _histories_match_their_baselines(restored)


def test_the_rings_grow_once_per_call_for_the_entities_arriving_in_it() -> None:
    scorer = _scorer()
    scorer.score([_vector(f"n{k:03d}", 0) for k in range(100)])
    assert scorer._rings.values.shape == (100, 3, 60)  # sized for the call's newcomers
    scorer.score([_vector(f"n{k:03d}", 1) for k in range(100)])  # all known: no growth
    assert scorer._rings.values.shape[0] == 100
    scorer.forget("n007")
    scorer.score([_vector("late", 2), _vector("later", 2)])  # one free row, one new: 4x
    assert scorer._rings.values.shape[0] == 400 and len(scorer._rings.index) == 101
    assert all(scorer.learnt_windows(e) == 2 for e in ("n000", "n099"))


def test_default_risk_counts_evidence_only_beyond_five_nines() -> None:
    default = OnlineScorer(SPECS, windows_per_day=20.0, evidence_days=5000.0)
    lenient = OnlineScorer(
        SPECS, windows_per_day=20.0, evidence_days=5000.0, risk=RiskConfig(surprise_floor=2.0)
    )
    assert default.risk_config.surprise_floor == STREAM_SURPRISE_FLOOR == 5.0
    for scorer in (default, lenient):
        # 99,999 ordinary scores 1..99,999: they resolve 5 nines; q99 = 98,999.02, so beyond
        # the largest the surprise grows by 3 nines per 999.98 of score.
        scorer._ordinary_window().push_many(np.arange(1.0, 100_000.0))
        scorer.calibrator.n_seen_ = scorer.calibrator.min_scores
    scores = np.array([99_990.0, 100_999.0])
    # 99,990 is beaten by 10 of 99,999 ordinary scores: log10(99,999 / 10) = 4.0 nines, no
    # evidence above 5; 1,000 beyond the largest is 5 + 3000 / 999.98 nines.
    np.testing.assert_allclose(default._evidence(scores), [0.0, 3000 / 999.98])
    np.testing.assert_allclose(
        lenient._evidence(scores), [np.log10(99_999 / 10) - 2.0, 3.0 + 3000 / 999.98]
    )


def test_cold_start_windows_count_half_their_risk_evidence() -> None:
    assert OnlineScorer(SPECS).cold_start_evidence == COLD_START_EVIDENCE_WEIGHT == 0.5
    full, half = _scorer(), _scorer(cold_start_evidence=0.5)
    day = [*_ordinary_day(10), _vector("newcomer", 10, usb=30.0)]
    results = []
    for scorer in (full, half):
        _warm(scorer)
        results.append(scorer.score_windows(day)[0])
    by_full, by_half = results
    newcomer_full, newcomer_half = by_full[-1], by_half[-1]
    assert newcomer_full.basis == newcomer_half.basis == COLD_BASIS
    assert newcomer_full.evidence > 0.0
    assert newcomer_half.evidence == pytest.approx(0.5 * newcomer_full.evidence)
    assert half.risks["newcomer"].peak == pytest.approx(0.5 * full.risks["newcomer"].peak)
    # Windows with an own baseline are not touched.
    assert [w.evidence for w in by_half[:-1]] == [w.evidence for w in by_full[:-1]]
    assert {w.basis for w in by_half[:-1]} == {OWN_BASIS}


def test_a_window_beyond_anything_the_population_showed_on_one_feature_adds_risk() -> None:
    assert OnlineScorer(SPECS).feature_evidence == FeatureEvidence()  # the daemon's default
    # A warm-up longer than the replay: nothing alerts, so the least evidence of an alert
    # (detector.risk.alert_evidence) does not hide the term measured here.
    plain = _scorer(warmup_windows=10_000)
    weighed = _scorer(warmup_windows=10_000, feature_evidence=FeatureEvidence())
    day = _ordinary_day(10)
    day[7] = _vector("u07", 10, logons=4.0, usb=30.0)
    results = []
    for scorer in (plain, weighed):
        _warm(scorer)
        results.append(scorer.score_windows(day)[0])
    assert weighed._population is not None
    n = weighed._population.own_reference.shape[0]
    # No ordinary window ever deviated on USB: u07's USB surprise is the cap, 2 log10(n + 1)
    # nines; the term counts 3 x what lies beyond 0.8 of the cap. Ordinary windows reach at
    # most half the cap (the reference's own largest), so they earn nothing.
    cap = 2.0 * math.log10(n + 1.0)
    extra = [b.evidence - a.evidence for a, b in zip(*results, strict=True)]
    assert extra[7] == pytest.approx(3.0 * (cap - 0.8 * cap))
    assert extra[:7] + extra[8:] == [0.0] * 19
    assert [w.score for w in results[1]] == [w.score for w in results[0]]  # risk only


def test_checkpoints_from_before_the_feature_term_keep_their_rule() -> None:
    state = OnlineScorer(SPECS).__getstate__()
    del state["feature_evidence"]
    restored = OnlineScorer.__new__(OnlineScorer)
    restored.__setstate__(state)
    assert restored.feature_evidence.weight == 0.0


def test_checkpoints_from_before_the_cold_start_weight_keep_full_weight() -> None:
    state = _scorer(cold_start_evidence=0.5).__getstate__()
    del state["cold_start_evidence"]
    restored = OnlineScorer.__new__(OnlineScorer)
    restored.__setstate__(state)
    assert restored.cold_start_evidence == 1.0
    assert restored.risk_config.surprise_floor == 2.0  # the floor it was written with


def test_a_ring_held_by_columns_checkpoints_rows_and_sorts_each_column() -> None:
    ring = _Ring(size=3, width=2)
    ring.push_many(np.array([[5.0, 0.5], [1.0, 2.5], [3.0, 1.5], [4.0, 0.0]]))
    # Push 3 overwrote slot 0: the rows by slot are [4, 0], [1, 2.5], [3, 1.5].
    assert ring.columns.flags.c_contiguous and ring.columns.shape == (2, 3)
    state = ring.__getstate__()
    assert state["rows"].tolist() == [[4.0, 0.0], [1.0, 2.5], [3.0, 1.5]]
    assert ring.sorted_columns32().tolist() == [[1.0, 3.0, 4.0], [0.0, 1.5, 2.5]]
    assert ring.sorted_columns().tolist() == [[1.0, 0.0], [3.0, 1.5], [4.0, 2.5]]
    assert ring.kept().flags.c_contiguous and ring.kept()[0].tolist() == [4.0, 0.0]
    restored = pickle.loads(pickle.dumps(ring))
    assert restored.columns.tolist() == ring.columns.tolist() and restored.n == 4


def test_the_population_spread_of_an_unused_feature_is_0_and_of_a_rare_one_its_std() -> None:
    # Three features with a MAD of 0 over ten windows: logons constant (3 each), usb never
    # used (all 0: its spread is 0 without a pass over it), hosts 3 in two windows and 0 in
    # eight (comparison scale ln 4: mean 0.2 ln 4, std 0.4 ln 4). The floor is
    # max(alpha * spread, min_scale) = max(0.5 * spread, 0.1), the scale max(spread, floor).
    scorer = _scorer(alpha=0.5, min_scale=0.1)
    day0 = [
        _vector(f"u{u}", 0, logons=3.0, usb=0.0, hosts=3.0 if u < 2 else 0.0) for u in range(10)
    ]
    scorer.score(day0)
    scorer.score([_vector("u0", 1)])  # the population is refreshed at the start of a call
    population = scorer._population
    assert population is not None
    rare = 0.4 * math.log(4.0)
    assert population.floor.tolist() == pytest.approx([0.1, 0.1, 0.5 * rare], rel=1e-6)
    assert population.scale.tolist() == pytest.approx([0.1, 0.1, rare], rel=1e-6)
    assert population.scale[1] == 0.1 and population.floor[1] == 0.1
