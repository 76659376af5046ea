"""``bench synthetic --mode stream``: the daemon's scoring replayed over a tiny organisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import benchmarks.stream_quality as stream_quality
from benchmarks.stream_quality import (
    StreamSettings,
    alerts_per_day,
    run_stream_bench,
    stream_scorer,
)
from detector.cli import main
from detector.online_scoring import OnlineScorer
from detector.risk import FeatureEvidence
from features.catalog import default_specs
from features.spec import WindowConfig

USERS, DAYS, SEED = 40, 30, 11


@pytest.fixture(scope="module")
def stream_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("stream")
    settings = StreamSettings(budget_per_day=2.0, warmup_days=5.0, seed=SEED)
    text = run_stream_bench(out, users=USERS, days=DAYS, seed=SEED, settings=settings)
    results: dict[str, Any] = json.loads((out / "stream" / "results.json").read_text())
    return results, text


@pytest.mark.slow
def test_the_table_has_the_batch_keys_and_the_alert_volume(
    stream_results: tuple[dict[str, Any], str],
) -> None:
    results, text = stream_results
    for key in (
        "auc_roc",
        "auc_pr",
        "recall_at_budget",
        "scenario_ranks",
        "decoys_in_top",
        "decoys_above_planted",
        "alerts_per_day_mean",
        "alerts_per_day_max",
        "alerts_capped",
        "within_budget",
    ):
        assert key in results, key
    assert (results["mode"], results["users"], results["days"], results["seed"]) == (
        "stream",
        USERS,
        DAYS,
        SEED,
    )
    assert results["detector"] == "robust_window"
    # Scored period: the last two thirds (20 days), as in the batch benchmark.
    assert results["days_scored"] == 20
    assert results["positives"] > 0 and 0.0 <= results["auc_roc"] <= 1.0
    assert {r["scenario"] for r in results["scenario_ranks"]} == {"1", "2", "3", "4", "5"}
    assert results["alerts_per_day_max"] <= 2
    assert results["within_budget"] is True
    assert 0 < results["alerts_total"] <= 2 * (DAYS - 5)
    assert "alerts per day from" in text and "user-day AUC-ROC" in text


def test_alerts_per_day_counts_quiet_days_as_zero() -> None:
    day = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "window_start": [day + timedelta(days=d) for d in (0, 0, 0, 1, 3, 3)],
            "alert": [True, True, True, False, True, False],
        }
    )
    # Days 1..3 from the second day: 0, 0, 1 alerts.
    assert alerts_per_day(frame, day + timedelta(days=1)) == (1 / 3, 1, 3)
    assert alerts_per_day(frame, day) == (1.0, 3, 4)


def test_stream_mode_refuses_a_batch_only_detector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "synthetic", "--mode", "stream", "--detector", "iforest"]
    code = main([*argv, "--out", str(tmp_path)])
    assert code == 2
    assert "--mode stream needs an online detector, not 'iforest'" in capsys.readouterr().err


def test_the_bench_scores_with_the_daemon_s_risk_rule_or_the_one_its_settings_state() -> None:
    specs, config = default_specs("user"), WindowConfig(entity="user", window="1d")
    default = stream_scorer(StreamSettings(), specs, config, 10)
    assert default.feature_evidence == OnlineScorer(specs).feature_evidence == FeatureEvidence()
    off = stream_scorer(
        StreamSettings(feature_weight=0.0, feature_floor_share=0.7), specs, config, 10
    )
    assert off.feature_evidence == FeatureEvidence(floor_share=0.7, weight=0.0)


def test_the_bench_gives_the_scorer_the_departments_only_when_its_settings_say_so() -> None:
    specs, config = default_specs("user"), WindowConfig(entity="user", window="1d")
    departments = {"ALE0001": "3 - Field", "BRA0002": "5 - Build"}
    on = stream_scorer(StreamSettings(peers=True, min_peers=3), specs, config, 10, departments)
    assert (on.peers, on.min_peers) == (departments, 3)
    assert stream_scorer(StreamSettings(), specs, config, 10, departments).peers == {}


def test_peers_turns_on_the_stream_bench_s_peer_groups_and_only_in_stream_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[StreamSettings] = []

    def record(
        out: Path,
        *,
        users: int,
        days: int,
        seed: int,
        settings: StreamSettings,
        progress: bool = False,
    ) -> str:
        seen.append(settings)
        return "ran"

    monkeypatch.setattr(stream_quality, "run_stream_bench", record)
    argv = ["bench", "synthetic", "--mode", "stream", "--seed", "13", "--out", str(tmp_path)]
    assert main([*argv, "--peers"]) == 0
    assert main(argv) == 0
    assert [(s.peers, s.seed) for s in seen] == [(True, 13), (False, 13)]
    assert main(["bench", "synthetic", "--peers", "--out", str(tmp_path)]) == 2
    assert "--peers applies to --mode stream" in capsys.readouterr().err
