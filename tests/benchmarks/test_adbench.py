"""ADBench loader, split protocol and runner: small generated sets, plus one real set (cardio)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks.adbench import (
    AdbenchDataError,
    load_adbench_set,
    load_anchors,
    merge_results,
    run_adbench,
    split_adbench,
)
from benchmarks.adbench.data import stratified_subsample
from benchmarks.adbench.runner import summarise

DATA = os.environ.get("BASELINER_DATA")
needs_data = pytest.mark.skipif(
    not DATA or not (Path(DATA) / "adbench" / "6_cardio.npz").is_file(),
    reason="BASELINER_DATA unset or without adbench/6_cardio.npz",
)


@pytest.fixture
def toy_dir(tmp_path: Path) -> Path:
    """A fake ``adbench/`` with one set: 190 normal rows near 0, 10 anomalies far away."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0.0, 1.0, (190, 3)), rng.normal(8.0, 1.0, (10, 3))])
    y = np.array([0] * 190 + [1] * 10)
    folder = tmp_path / "adbench"
    folder.mkdir()
    np.savez(folder / "38_thyroid.npz", X=X, y=y)
    return tmp_path


def test_split_is_stratified_seeded_and_minmax_scaled_on_train() -> None:
    X = np.arange(200, dtype=float).reshape(100, 2)
    y = np.array([0] * 90 + [1] * 10)
    split = split_adbench(X, y, seed=3)
    assert split.X_train.shape == (70, 2) and split.X_test.shape == (30, 2)
    assert int(split.y_train.sum()) == 7 and int(split.y_test.sum()) == 3
    assert split.X_train.min() == 0.0 and split.X_train.max() == 1.0
    again = split_adbench(X, y, seed=3)
    np.testing.assert_array_equal(again.X_test, split.X_test)
    assert not np.array_equal(split_adbench(X, y, seed=4).X_test, split.X_test)


def test_subsample_keeps_class_shares_with_at_least_two_of_each() -> None:
    y = np.array([0] * 9_990 + [1] * 10)
    keep = stratified_subsample(y, 1_000, seed=0)
    # 10 * 1000 / 10000 = 1 anomaly by share, raised to 2 so a stratified split exists.
    assert keep.size == 1_000 and int(y[keep].sum()) == 2
    assert np.all(np.diff(keep) > 0)


def test_loader_accepts_parent_folder_and_short_names(toy_dir: Path) -> None:
    X, y = load_adbench_set(toy_dir, "thyroid")
    assert X.shape == (200, 3) and X.dtype == np.float64 and int(y.sum()) == 10
    with pytest.raises(AdbenchDataError, match="no such ADBench set"):
        load_adbench_set(toy_dir, "cardio")
    with pytest.raises(AdbenchDataError, match="no ADBench"):
        load_adbench_set(toy_dir / "nowhere", "thyroid")


def test_summary_mean_and_population_std_over_seeds() -> None:
    from benchmarks.adbench import RunResult

    runs = [
        RunResult("s", "d", 0, 0.90, 0.40, 2.0, 1.0, 100, 50, 5),
        RunResult("s", "d", 1, 0.80, 0.20, 2.0, 1.0, 100, 50, 5),
    ]
    row = summarise(runs)["s"]["d"]
    assert row["aucroc_mean"] == pytest.approx(0.85)
    assert row["aucroc_std"] == pytest.approx(0.05)
    assert row["aucpr_mean"] == pytest.approx(0.30)
    assert row["fit_rows_per_s"] == pytest.approx(50.0)  # 200 rows in 4 s
    assert row["score_rows_per_s"] == pytest.approx(50.0)  # 100 rows in 2 s


def test_runner_writes_every_number_and_the_report(toy_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    results, markdown = run_adbench(toy_dir, out, ["ecod", "tabular"], [0, 1], datasets=["thyroid"])
    assert len(results["runs"]) == 4
    # Anomalies 8 sigma away: both detectors rank them all first.
    for run in results["runs"]:
        assert run["aucroc"] == 1.0 and run["n_test_anomalies"] == 3
    assert results["seeds"] == [0, 1]
    assert results["versions"]["numpy"] == np.__version__
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["summary"]["38_thyroid"]["ecod"]["aucroc_mean"] == 1.0
    assert (out / "results.md").read_text() == markdown
    assert "| **tabular** | 100.00 ± 0.00 | 100.00 |" in markdown
    # Throughput per detector: 140 training rows per seed, two seeds.
    rows = {entry["name"]: entry for entry in on_disk["throughput"]}
    assert set(rows) == {"ecod", "tabular"}
    assert rows["ecod"]["fit_items"] == 280 and rows["ecod"]["score_items"] == 120
    assert rows["ecod"]["fit_per_s"] > 0 and rows["ecod"]["peak_memory_mb"] > 0
    assert "## Throughput" in markdown and "| ecod | rows |" in markdown
    assert on_disk["machine"]["cpus"] >= 1 and on_disk["versions"]["pyod"]
    # One set: its bar chart beside the anchors and its ROC/PR curves (first seed).
    page = (out / "report.html").read_text()
    assert page.count("<img ") == 2 and "seed 0, one curve per detector" in page
    assert "<h2 id='throughput'>Throughput</h2>" in page
    with np.load(out / "curves.npz") as curves:
        assert curves["38_thyroid|ecod"].shape == curves["38_thyroid|labels"].shape == (60,)


def test_merge_recomputes_summaries_over_disjoint_sets(toy_dir: Path) -> None:
    X, y = load_adbench_set(toy_dir, "thyroid")
    np.savez(toy_dir / "adbench" / "6_cardio.npz", X=-X, y=y)
    first, _ = run_adbench(toy_dir, None, ["ecod"], [0], datasets=["thyroid"])
    second, _ = run_adbench(toy_dir, None, ["ecod"], [0], datasets=["cardio"])
    merged, markdown = merge_results([first, second])
    assert merged["datasets"] == ["38_thyroid", "6_cardio"]
    assert merged["throughput"][0]["fit_items"] == 280  # 140 training rows from each part
    assert len(merged["runs"]) == 2
    assert merged["average"]["ecod"]["n_datasets"] == 2.0
    assert "| thyroid | cardio | mean |" in markdown
    with pytest.raises(ValueError, match="seeds"):
        merge_results([first, {**second, "seeds": [1]}])


def test_anchors_file_holds_the_briefs_adbench_numbers() -> None:
    anchors = {(a["dataset"], a["metric"]): a for a in load_anchors("adbench")}
    assert anchors[("16_http", "aucroc")]["value"] == 99.96
    assert anchors[("32_shuttle", "aucroc")]["value"] == 99.56
    assert anchors[("34_smtp", "aucroc")]["value"] == 89.73
    assert all(a["source"] and a["setting"] for a in anchors.values())


@pytest.mark.dataset
@pytest.mark.slow
@needs_data
def test_cardio_reduced_bench_reproduces_known_quality() -> None:
    results, _ = run_adbench(DATA, None, ["iforest", "ecod", "tabular"], [0], datasets=["cardio"])
    summary = results["summary"]["6_cardio"]
    # ADBench's published AUCROC on cardio is in the low 90s for IForest and ECOD.
    for name in ("iforest", "ecod", "tabular"):
        assert 0.88 < summary[name]["aucroc_mean"] <= 1.0, name
    assert results["runs"][0]["n_test"] == 550  # 30% of 1,831 rows
