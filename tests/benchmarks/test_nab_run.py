"""The NAB runner: streaming our online detectors over NAB series and scoring them.

The toy tests need no data. The reduced real run (a few NAB files) skips cleanly when the
corpus is absent and asserts what was written, never a timing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks.nab.corpus import NabCorpus, NabSeries
from benchmarks.nab.run import (
    DEFAULT_DETECTOR,
    DEFAULT_PARAMS,
    nab_feature_vectors,
    run_nab,
    score_series_online,
    subset_names,
)
from detector.cli import main


def test_feature_vectors_carry_value_delta_and_epoch_seconds() -> None:
    series = NabSeries.from_rows("toy.csv", 3)
    series.values[:] = [1.0, 4.0, 2.0]
    vectors = list(nab_feature_vectors(series))
    assert [v["value"] for v in vectors] == [1.0, 4.0, 2.0]
    assert [v["delta"] for v in vectors] == [0.0, 3.0, -2.0]
    # 2020-01-01T00:00:00Z and one-minute steps.
    assert [v["__ts"] for v in vectors] == [1577836800.0, 1577836860.0, 1577836920.0]


def test_probationary_scores_are_zero_and_a_spike_scores_high() -> None:
    series = NabSeries.from_rows("toy.csv", 400, [(300, 320)])
    rng = np.random.default_rng(0)
    series.values[:] = 10.0 + rng.normal(0.0, 1.0, 400)
    series.values[305] = 60.0
    scores = score_series_online(series, "seasonal", {"two_sided": True}, seed=0)
    assert np.all(scores[:60] == 0.0)  # 15 % of 400 rows
    assert int(np.argmax(scores)) == 305


def test_run_nab_on_a_toy_corpus_writes_results(tmp_path: Path) -> None:
    series = NabSeries.from_rows("toy/a.csv", 400, [(300, 320)])
    rng = np.random.default_rng(1)
    series.values[:] = 10.0 + rng.normal(0.0, 1.0, 400)
    series.values[300] = 80.0
    corpus = NabCorpus({"toy/a.csv": series})
    results, markdown = run_nab(
        None, tmp_path, "seasonal", params={"two_sided": True}, corpus=corpus
    )
    # The spike on the window's first row is the single highest score: a perfect detection.
    assert results["scores"]["standard"] == pytest.approx(100.0)
    assert results["profiles"]["standard"]["false_positives"] == 0
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["scores"] == results["scores"]
    assert written["config"] == {"two_sided": True}
    assert "| **seasonal** (ours) | 100.00 |" in markdown
    assert (tmp_path / "results.md").read_text() == markdown
    assert np.load(tmp_path / "scores.npz")["toy__a.csv"].shape == (400,)


@pytest.mark.dataset
@pytest.mark.slow
def test_reduced_real_run(tmp_path: Path) -> None:
    data = os.environ.get("BASELINER_DATA")
    if not data or not (Path(data) / "nab" / "labels" / "combined_windows.json").is_file():
        pytest.skip("no NAB corpus under BASELINER_DATA")
    files = (
        "artificialWithAnomaly/art_daily_jumpsup.csv",
        "realKnownCause/ec2_request_latency_system_failure.csv",
        "realTraffic/TravelTime_451.csv",
    )
    results, markdown = run_nab(data, tmp_path, only=files)
    assert results["n_series"] == 3
    assert set(results["scores"]) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    assert all(-1000.0 < s <= 100.0 for s in results["scores"].values())
    assert "numenta (official) | 70.10" in markdown


def test_subsets_split_sorted_paths_by_parity() -> None:
    names = ["realTweets/b.csv", "art/a.csv", "realAWS/c.csv", "art/b.csv"]
    # Sorted: art/a, art/b, realAWS/c, realTweets/b -> even indices dev, odd held out.
    assert subset_names(names, "dev") == ["art/a.csv", "realAWS/c.csv"]
    assert subset_names(names, "holdout") == ["art/b.csv", "realTweets/b.csv"]
    assert subset_names(names, "all") == sorted(names)
    with pytest.raises(ValueError, match="subset"):
        subset_names(names, "test")


def _toy_corpus(n_rows: int = 2000) -> NabCorpus:
    series = {}
    for offset, name in enumerate(("toy/a.csv", "toy/b.csv", "toy/c.csv")):
        # Long enough for the contextual memory to settle: on 400 rows a noise value beyond the
        # warm-up range can start a silence that hides the spike.
        one = NabSeries.from_rows(name, n_rows, [(n_rows - 200, n_rows - 180)])
        rng = np.random.default_rng(offset)
        one.values[:] = 10.0 + rng.normal(0.0, 1.0, n_rows)
        one.values[n_rows - 200] = 80.0
        series[name] = one
    return NabCorpus(series)


def test_run_nab_scores_only_the_chosen_half(tmp_path: Path) -> None:
    corpus = _toy_corpus(n_rows=400)
    dev, _ = run_nab(None, tmp_path / "dev", "seasonal", corpus=corpus, subset="dev")
    held, markdown = run_nab(None, tmp_path / "ho", "seasonal", corpus=corpus, subset="holdout")
    assert (dev["n_series"], dev["subset"]) == (2, "dev")
    assert sorted(dev["raw_scores"]) == ["toy/a.csv", "toy/c.csv"]
    assert sorted(held["raw_scores"]) == ["toy/b.csv"]
    assert "Only 1 of 58 series (the holdout half)" in markdown


def test_default_configuration_detects_a_toy_spike_first(tmp_path: Path) -> None:
    assert DEFAULT_DETECTOR in DEFAULT_PARAMS
    results, _ = run_nab(None, tmp_path, corpus=_toy_corpus())
    assert results["detector"] == DEFAULT_DETECTOR
    # Each spike sits on its window's first row and nothing else reaches it: a perfect score.
    assert results["scores"]["standard"] == pytest.approx(100.0)


def test_cli_refuses_a_batch_detector_with_a_one_line_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "nab", "--detector", "iforest", "--out", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "unknown online detector 'iforest'" in error
    assert "\n" not in error
