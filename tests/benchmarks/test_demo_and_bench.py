"""The demo and the synthetic and throughput benchmarks, end to end at a small size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.cli import main


def test_demo_prints_planted_users_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["demo", "--out", str(tmp_path), "--users", "100", "--days", "60", "--seed", "3"]) == 0
    )
    out = capsys.readouterr().out
    assert "Top entities by risk (* = planted by the generator):" in out
    starred = [line for line in out.splitlines() if line.startswith("*")]
    assert len(starred) >= 4
    assert "planted scenario" in out
    assert (tmp_path / "scan" / "report.html").is_file()
    html = (tmp_path / "scan" / "report.html").read_text()
    assert "data:image/png;base64," in html


@pytest.mark.slow
def test_bench_synthetic_writes_its_quality_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "bench",
                "synthetic",
                "--users",
                "100",
                "--days",
                "60",
                "--seed",
                "3",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert 0.5 < results["auc_roc"] <= 1.0
    assert {r["scenario"] for r in results["scenario_ranks"]} == {"1", "2", "3", "4", "5"}
    (throughput,) = results["throughput"]
    assert throughput["score_items"] == results["scored_windows"] and throughput["fit_items"] > 0
    assert results["config"]["users"] == 100 and results["machine"]["cpus"] >= 1
    page = (tmp_path / "report.html").read_text()
    assert page.count("<img ") == 1 and "<h2 id='throughput'>Throughput</h2>" in page
    assert "user-day AUC-ROC" in (tmp_path / "results.md").read_text()
    assert "user-day AUC-ROC" in out and "scenario 5" in out


@pytest.mark.slow
def test_bench_throughput_measures_every_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "bench",
                "throughput",
                "--mode",
                "scan",
                "--users",
                "40",
                "--days",
                "21",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "results.json").read_text())
    rates = results["events_per_s"]
    assert set(rates) >= {"baseline_groupby_count", "to_features", "to_alerts"}
    assert all(rate > 0 for rate in rates.values())
    assert results["to_features"]["events"] == results["baseline_groupby_count"]["events"]
    assert "ratio to baseline" in capsys.readouterr().out
