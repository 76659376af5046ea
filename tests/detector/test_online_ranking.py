"""The daemon's entity ranking breaks equal risks as the scan does: alerts, peak score, name."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np

from detector.departed import DepartedEntities, write_entities
from detector.online_scoring import OnlineScorer, _RiskTable
from features.spec import FeatureSpec

SPECS = (FeatureSpec(name="logons", kind="count", explain="{observed:g} logons"),)


def _tied_scorer() -> OnlineScorer:
    """Five entities: three at risk 0 and two at risk 2, told apart only by the tie-breaks."""
    scorer = OnlineScorer(SPECS, schema_hash="test")
    table = scorer._risks
    # entity: (peak risk, alerts, scores of its windows)
    made = {
        "ann": (0.0, 0, [1.0, 2.0]),
        "bob": (0.0, 1, [0.5]),
        "cat": (0.0, 0, [3.5, 0.1]),
        "dan": (2.0, 1, [1.0]),
        "eve": (2.0, 1, [4.0]),
    }
    for entity, (peak, alerts, scores) in made.items():
        rows = table.rows_of([entity])
        for score in scores:
            table.add(rows, np.zeros(1), np.zeros(1), np.zeros(1, np.int64), 7.0, np.array([score]))
        table.peak[rows] = peak
        table.alerts[rows] = alerts
    return scorer


def test_equal_risks_rank_by_alerts_then_peak_score_then_name() -> None:
    ranked = [r.entity for r in _tied_scorer().top_entities()]
    # eve and dan tie at risk 2 with 1 alert: eve's 4.0 beats dan's 1.0. Among risk 0, bob's
    # alert leads, then cat (peak score 3.5) before ann (2.0), though ann sorts first by name.
    assert ranked == ["eve", "dan", "bob", "cat", "ann"]
    assert [r.entity for r in _tied_scorer().top_entities(2)] == ["eve", "dan"]


def test_write_entities_uses_the_same_order(tmp_path: Path) -> None:
    path = tmp_path / "entities.csv"
    scorer = _tied_scorer()
    written = write_entities(
        path,
        scorer.top_entities(),
        DepartedEntities(),
        strongest={},
        last_day=scorer.last_day,
        half_life_days=scorer.risk_config.half_life_days,
    )
    assert written == 5
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["rank"], row["entity"]) for row in rows] == [
        ("1", "eve"),
        ("2", "dan"),
        ("3", "bob"),
        ("4", "cat"),
        ("5", "ann"),
    ]


def test_peak_score_survives_a_checkpoint_and_old_checkpoints_load() -> None:
    scorer = _tied_scorer()
    restored = pickle.loads(pickle.dumps(scorer))
    assert [r.entity for r in restored.top_entities()] == ["eve", "dan", "bob", "cat", "ann"]
    state = scorer._risks.__getstate__()
    del state["peak_score"]  # a table checkpointed before the peak score
    old = _RiskTable.__new__(_RiskTable)
    old.__setstate__(state)
    assert old.peak_score.tolist()[: len(state["entities"])] == [-np.inf] * 5
    assert old.alerts[old.row("bob")] == 1
