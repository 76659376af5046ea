"""What every bench writes: results.json (one environment key set), results.md, report.html.

The throughput and stream benches are run with their measuring stages replaced by canned
measurements (the stages themselves are tested in test_throughput / test_stream_bench); NAB
runs on a tiny corpus in NAB's layout.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import benchmarks.nab.run as nab_run
import benchmarks.plots as plots
import benchmarks.stream_bench as stream_bench
import benchmarks.stream_quality as stream_quality
import benchmarks.throughput as throughput
import detector.daemon as daemon_module
from benchmarks.nab import NabCorpus, NabDataError, NabSeries
from benchmarks.nab.__main__ import check_scorer
from benchmarks.results import environment, environment_line, scan_config
from benchmarks.synthetic_bench import SyntheticQuality
from detector.cli import main
from detector.pipeline import Budget, PipelineConfig
from tests.benchmarks.test_nab_corpus import _timestamps, _write_csv, nab_parent

__all__ = ["nab_parent"]  # the fixture, imported for its use here

ENVIRONMENT_KEYS = {"python", "versions", "machine", "git_commit"}


def _assert_three_outputs(folder: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads((folder / "results.json").read_text())
    assert set(results) >= ENVIRONMENT_KEYS and "environment" not in results
    markdown = (folder / "results.md").read_text()
    assert f"Python {results['python']}" in markdown or "## Throughput" in markdown
    page = (folder / "report.html").read_text()
    assert "<h2>Run</h2>" in page and "<h2 id='throughput'>Throughput</h2>" in page
    return results


def _stage(events: int, seconds: float, peak: float) -> dict[str, Any]:
    return {"events": events, "seconds": seconds, "cpu_s": seconds, "peak_rss_mb": peak}


def test_throughput_scan_writes_json_md_and_html_with_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages = {"baseline": _stage(1000, 0.5, 50.0), "features": _stage(1000, 2.0, 120.0)}
    stages["alerts"] = _stage(1000, 4.0, 150.0)
    monkeypatch.setattr(throughput, "ensure_org", lambda *a, **k: {})
    monkeypatch.setattr(throughput, "_child", lambda stage, org, out: dict(stages[stage]))
    text = throughput.run_throughput_bench(tmp_path, users=30, days=42, seed=5)
    results = _assert_three_outputs(tmp_path)
    assert results["config"] == {"users": 30, "days": 42, "seed": 5, "short_days": 14}
    rates = {entry["name"]: entry["score_per_s"] for entry in results["throughput"]}
    assert rates == {"baseline_groupby_count": 2000.0, "to_features": 500.0, "to_alerts": 250.0}
    markdown = (tmp_path / "results.md").read_text()
    assert "| to_alerts | events | - | 250 | - | 150 |" in markdown
    assert "(and results.md, report.html)" in text


def test_stream_throughput_puts_the_environment_at_the_top_and_writes_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = {
        **_stage(2000, 1.0, 90.0),
        "events_per_s": 2000.0,
        "cpu_seconds": 1.0,
        "events_per_cpu_s": 2000.0,
        "windows_closed": 10,
        "alerts": 1,
        "latency_p50_ms": 1.0,
        "latency_p99_ms": 2.0,
        "seconds_by_stage": {"read": 0.25, "features": 0.25, "other": 0.5},
        "cpu_seconds_by_stage": {"read": 0.5},
        "features_evaluator_seconds": 0.1,
        "feature_state_bytes_per_entity": 100.0,
        "checkpoint_bytes_per_entity": 50.0,
        "entities": 3,
    }
    naive = {**_stage(100, 1.0, 60.0), "events_per_s": 100.0, "events_per_cpu_s": 100.0}

    calls: list[tuple[str, bool, int | None]] = []

    def child(stage: str, *args: str, cpu: int | None = None) -> dict[str, Any]:
        calls.append((stage, "--limit" in args, cpu))
        return dict(naive if stage == "naive" else daemon)

    def lines(path: Path, **kwargs: Any) -> int:
        path.write_text("{}\n")
        return 2000

    monkeypatch.setattr(stream_bench, "_child", child)
    monkeypatch.setattr(stream_bench, "generate_lines", lines)
    monkeypatch.setattr(stream_bench, "one_core", lambda: 3)
    monkeypatch.setattr(daemon_module, "usable_cores", lambda: 2)
    text = stream_bench.run_stream_throughput_bench(tmp_path, users=3, days=1, repeats=1)
    results = _assert_three_outputs(tmp_path)
    # The whole file on one core, then on both; the prefixes and the naive pipeline on one.
    assert calls == [
        ("daemon", False, 3),
        ("daemon", False, None),
        ("daemon", True, 3),
        ("daemon", True, 3),
        ("naive", True, 3),
    ]
    assert results["ratio_to_naive"] == results["ratio_to_naive_all_cores"] == 20.0
    assert results["one_core_pinned"] and results["usable_cores"] == 2
    assert [entry["score_per_s"] for entry in results["throughput"]] == [2000, 2000, 2000, 100]
    assert "one core:" in text and "same, 2 cores:" in text


def test_synthetic_stream_writes_md_and_html_and_the_cli_passes_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quality = SyntheticQuality(0.9, 0.5, 0.4, 0.005, 10, 100, 30, [], 0, 2, [])
    volume = {
        "alerts_per_day_max": 1,
        "alerts_per_day_mean": 0.5,
        "alerts_capped": 0,
        "scored_period_start": "2024-01-10",
        "cold_start_windows_scored": 0,
        "cold_start_alerts": 0,
        "cold_start_peer_windows": 0,
        "cold_start_peer_alerts": 0,
        "events_per_s": 500.0,
    }
    replays: list[bool] = []

    def replay(*args: Any, progress: bool = False, **kwargs: Any) -> Any:
        replays.append(progress)
        return SimpleNamespace(events=1000, seconds=2.0)

    monkeypatch.setattr(stream_quality, "ensure_org", lambda *a, **k: {})
    monkeypatch.setattr(stream_quality, "replay_org", replay)
    monkeypatch.setattr(stream_quality, "evaluate_stream", lambda run, org: (quality, volume))
    text = stream_quality.run_stream_bench(tmp_path, users=30, days=14, seed=1, progress=True)
    assert replays == [True]
    results = _assert_three_outputs(tmp_path / "stream")
    assert results["throughput"][0]["score_per_s"] == 500.0
    assert "user-day AUC-ROC   0.9000" in (tmp_path / "stream" / "results.md").read_text()
    assert "(and results.md, report.html)" in text

    calls: list[dict[str, Any]] = []

    def record(out: Path, **kwargs: Any) -> str:
        calls.append(kwargs)
        return "ok"

    monkeypatch.setattr(stream_quality, "run_stream_bench", record)
    argv = ["bench", "synthetic", "--mode", "stream", "--users", "30", "--days", "14"]
    assert main([*argv, "--out", str(tmp_path / "cli")]) == 0
    assert calls[0]["progress"] is False  # stderr is not a terminal under pytest


def test_environment_names_the_commit_and_reads_as_one_line() -> None:
    env = environment()
    commit = env["git_commit"]
    # This test runs from a checkout; an installed copy would record None.
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit)
    line = environment_line(env)
    assert line.count("ython") == 1  # "Python x.y.z" once, not again as "python x.y.z"
    assert "{" not in line and f"{env['machine']['cpus']} CPUs" in line


def test_scan_config_records_what_the_scan_ran_with() -> None:
    config = PipelineConfig(detector="robust", detector_params={"top_k": 2}, budget=Budget(2.0))
    result = SimpleNamespace(
        pipeline=SimpleNamespace(config=config, features=["logons", "usb"], schema_hash="h"),
        train_until=datetime(2024, 1, 10, tzinfo=UTC),
        options=SimpleNamespace(slice_days=7),
    )
    recorded = scan_config(result)  # type: ignore[arg-type]
    assert recorded["detector"] == "robust" and recorded["detector_params"] == {"top_k": 2}
    assert recorded["budget"] == str(Budget(2.0)) and recorded["seed"] == 7
    assert recorded["train_until"] == "2024-01-10T00:00:00+00:00"
    assert recorded["window_seconds"] == timedelta(days=1).total_seconds()
    assert recorded["features"] == ["logons", "usb"] and recorded["risk"]["surprise_floor"] > 0
    json.dumps(recorded)


def test_check_scorer_writes_its_comparison(nab_parent: Path, tmp_path: Path) -> None:
    ok, table, rows = check_scorer(nab_parent, tmp_path / "out", ["toy"])
    assert ok and len(rows) == 3 and "toy" in table
    results = _assert_three_outputs(tmp_path / "out")
    assert results["mode"] == "check-scorer" and results["config"]["detectors"] == ["toy"]
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| toy | standard | 100.00 | 100.00 | +0.000 |" in markdown
    assert "Official: NAB v1.1 scoreboard (results/final_results.json" in markdown


def test_check_scorer_without_official_results_is_one_line(
    nab_parent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "nab", "--check-scorer", "--data-dir", str(nab_parent)]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("baseliner: error: ") and "\n" not in err
    assert not (tmp_path / "results.json").exists()


def _with_a_flat_series(parent: Path) -> None:
    """Add a series without any window (sorted first) and a scoreboard row to the corpus."""
    root = parent / "nab"
    stamps = _timestamps()
    _write_csv(
        root / "data/artificialNoAnomaly/flat.csv", "timestamp,value", [(t, 1.0) for t in stamps]
    )
    windows_file = root / "labels/combined_windows.json"
    windows = json.loads(windows_file.read_text())
    windows["artificialNoAnomaly/flat.csv"] = []
    windows_file.write_text(json.dumps(windows))
    profiles = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
    board = {"numenta": dict.fromkeys(profiles, 70.0)}
    (root / "results/final_results.json").write_text(json.dumps(board))


def test_bench_nab_files_runs_the_named_series_and_records_the_features(
    nab_parent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_a_flat_series(nab_parent)
    argv = ["bench", "nab", "--data-dir", str(nab_parent), "--quiet"]
    assert main([*argv, "--files", "speed.csv,flat.csv", "--out", str(tmp_path / "a")]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert sorted(results["raw_scores"]) == [
        "artificialNoAnomaly/flat.csv",
        "realTraffic/speed.csv",
    ]
    # The default's configuration (cad_dual) models the value alone; the vector also carries
    # delta and __ts.
    assert results["features"] == ["value"] and results["config"]["features"] == ["value"]
    markdown = (tmp_path / "a" / "results.md").read_text()
    assert "(official): NAB v1.1 scoreboard" in markdown
    assert f"Seed 0; Python {results['python']}; " in markdown
    capsys.readouterr()
    assert main([*argv, "--files", "flat.csv", "--out", str(tmp_path / "b")]) == 2
    assert "none of the chosen series has an anomaly window" in capsys.readouterr().err
    assert main([*argv, "--files", "nope.csv", "--out", str(tmp_path / "c")]) == 2
    assert "--files nope.csv: no such series under data/" in capsys.readouterr().err


def test_limit_starts_with_series_that_can_be_scored(tmp_path: Path) -> None:
    flat = NabSeries.from_rows("artificialNoAnomaly/a.csv", 400)
    labelled = NabSeries.from_rows("realTraffic/b.csv", 400, [(300, 320)])
    for series in (flat, labelled):
        series.values[:] = 10.0 + np.random.default_rng(0).normal(0.0, 1.0, 400)
    corpus = NabCorpus({"artificialNoAnomaly/a.csv": flat, "realTraffic/b.csv": labelled})
    results, _ = nab_run.run_nab(None, tmp_path, "seasonal", corpus=corpus, limit=1)
    assert list(results["raw_scores"]) == ["realTraffic/b.csv"]
    with pytest.raises(NabDataError, match="none of the chosen series has an anomaly window"):
        nab_run.run_nab(
            None, tmp_path, "seasonal", corpus=corpus, only=["artificialNoAnomaly/a.csv"]
        )


def test_the_category_legend_sits_outside_the_bars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boxes: list[tuple[float, float]] = []
    save = plots._save

    def measure(fig: Any, path: Path, bottom: float = 0.0) -> Path:
        fig.canvas.draw()
        ax = fig.axes[0]
        legend = ax.get_legend().get_window_extent()
        boxes.append((legend.x0, ax.get_window_extent().x1))
        return save(fig, path, bottom)

    monkeypatch.setattr(plots, "_save", measure)
    scores = {"realTraffic": {"standard": 50.0, "reward_low_FP_rate": 40.0}}
    plots.nab_category_chart(tmp_path / "c.png", "NAB", scores)
    legend_left, axes_right = boxes[0]
    assert legend_left >= axes_right
