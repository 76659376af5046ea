"""The online scorer's results on a small organisation stay what they were (to 1e-9).

The fixture was written by the scorer before its per-entity history became a shared ring
buffer and its learning was batched: every scored window (score, alert, basis, evidence), every
alert's deviations and the entity risks of ``bench synthetic --mode stream`` on 40 users x 30
days. Regenerate it only for an intended change of results::

    .venv/bin/python -m tests.detector.test_online_scoring_parity
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks.orgcache import ensure_org
from benchmarks.stream_quality import StreamSettings, iter_events, read_events, stream_scorer
from detector.alerts import Alert
from detector.online_scoring import ScoredWindow
from features.online import OnlineFeatures, WindowVector
from features.spec import FeatureSpec, WindowConfig

USERS, DAYS, SEED = 40, 30, 11
FIXTURE = Path(__file__).parents[1] / "fixtures" / "online_scoring" / "stream_u40_d30_s11.json"
#: The catalogue's user specs when the fixture was written (the catalogue grows since).
SPECS = Path(__file__).parents[1] / "fixtures" / "online_scoring" / "user_specs_44.json"


def fixture_specs() -> list[FeatureSpec]:
    """The frozen spec list the fixture was written with."""
    return [
        FeatureSpec(
            **{
                **spec,
                "where": {
                    k: tuple(v) if isinstance(v, list) else v for k, v in spec["where"].items()
                },
            }
        )
        for spec in json.loads(SPECS.read_text())
    ]


def replay_payload(out: Path) -> dict[str, Any]:
    """Every scored window, alert and entity risk of the replay (plain JSON values)."""
    org = out / f"org-u{USERS}-d{DAYS}-s{SEED}"
    manifest = ensure_org(org, users=USERS, days=DAYS, seed=SEED)
    # The fixture's risk rule (written before the 5-nines floor and the cold-start weight).
    settings = StreamSettings(
        budget_per_day=2.0,
        warmup_days=5.0,
        surprise_floor=2.0,
        cold_start_evidence=1.0,
        feature_weight=0.0,
        seed=SEED,
    )
    # The replay of benchmarks.stream_quality.replay_org, keeping the alerts too.
    specs = fixture_specs()
    config = WindowConfig(entity="user", window="1d")
    features = OnlineFeatures(specs, config)
    scorer = stream_scorer(settings, specs, config, USERS)
    windows: list[ScoredWindow] = []
    alerts: list[Alert] = []

    def score(vectors: list[WindowVector]) -> None:
        scored, raised = scorer.score_windows(vectors)
        windows.extend(scored)
        alerts.extend(raised)

    for event in iter_events(read_events(org, manifest)):
        vectors = features.update(event)
        if vectors:
            score(vectors)
    score(features.flush())
    return {
        "windows": [
            [w.entity, w.window_start.isoformat(), w.score, w.alert, w.basis, float(w.evidence)]
            for w in windows
        ],
        "alerts": [
            [
                a.entity,
                a.window_start.isoformat(),
                a.score,
                a.threshold,
                a.severity,
                a.baseline,
                dict(a.context),
                [
                    [d.feature, d.observed, d.typical, d.typical_low, d.typical_high, d.z, d.share]
                    for d in a.deviations
                ],
            ]
            for a in alerts
        ],
        "risks": [[r.entity, r.peak, r.risk, r.alerts, r.windows] for r in scorer.top_entities()],
        "capped": scorer.capped,
    }


def _assert_close(found: Any, expected: Any, where: str) -> None:
    if isinstance(expected, float) or isinstance(found, float):
        assert isinstance(found, int | float), where
        assert math.isclose(found, expected, rel_tol=1e-9, abs_tol=1e-9), (where, found, expected)
    elif isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected), where
        for i, (a, b) in enumerate(zip(found, expected, strict=True)):
            _assert_close(a, b, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(found, dict) and found.keys() == expected.keys(), where
        for key in expected:
            _assert_close(found[key], expected[key], f"{where}.{key}")
    else:
        assert found == expected, (where, found, expected)


@pytest.mark.slow
def test_replay_matches_the_scores_and_alerts_from_before_the_speed_work(tmp_path: Path) -> None:
    expected = json.loads(FIXTURE.read_text())
    found = json.loads(json.dumps(replay_payload(tmp_path)))
    assert len(expected["windows"]) > 1000  # a user-day each, working days
    assert expected["alerts"], "the fixture must exercise alerts"
    _assert_close(found, expected, "replay")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        FIXTURE.write_text(json.dumps(replay_payload(Path(scratch)), indent=0) + "\n")
