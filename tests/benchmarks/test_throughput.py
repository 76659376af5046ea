"""The scan throughput benchmark's baseline stage and its summary arithmetic."""

from __future__ import annotations

from pathlib import Path

from benchmarks.throughput import _stage_baseline, summarise


def _stage(events: int, seconds: float, cpu_s: float, peak: float) -> dict[str, float]:
    return {"events": events, "seconds": seconds, "cpu_s": cpu_s, "peak_rss_mb": peak}


def test_summary_rates_and_ratios_per_wall_and_cpu_second() -> None:
    baseline = _stage(1_000_000, 0.5, 0.8, 300.0)  # 2.0M/s wall, 1.25M per CPU s
    features = _stage(1_000_000, 2.0, 4.0, 450.0)  # 0.5M/s wall, 0.25M per CPU s
    alerts = _stage(1_000_000, 4.0, 5.0, 500.0)  # 0.25M/s wall, 0.2M per CPU s
    short = _stage(300_000, 0.7, 1.0, 420.0)
    payload, text = summarise(
        {"users": 10, "days": 30, "seed": 7},
        baseline=baseline,
        features=features,
        alerts=alerts,
        features_short=short,
        short_days=14,
    )
    assert payload["events_per_s"] == {
        "baseline_groupby_count": 2_000_000.0,
        "to_features": 500_000.0,
        "to_alerts": 250_000.0,
    }
    assert payload["events_per_cpu_s"]["to_features"] == 250_000.0
    assert payload["ratio_to_baseline"] == {"to_features": 0.25, "to_alerts": 0.125}
    assert payload["ratio_to_baseline_cpu"] == {"to_features": 0.2, "to_alerts": 0.16}
    assert payload["to_features_14_days"]["peak_rss_mb"] == 420.0
    assert "ratio to baseline 0.25 (per CPU s 0.20)" in text
    assert "420 MB over 14 days (300,000 events), 450 MB over 30 days" in text


def test_baseline_counts_every_data_line_of_the_cert_files(tmp_path: Path) -> None:
    (tmp_path / "logon.csv").write_text(
        "id,date,user,pc,activity\n{A},d,u1,p,Logon\n{B},d,u2,p,x\n"
    )
    (tmp_path / "http.csv").write_text("id,date,user,pc,url\n{C},d,u1,p,http://a\n")
    (tmp_path / "notes.csv").write_text("user\nx\ny\n")
    stage = _stage_baseline(tmp_path)
    assert stage["events"] == 3
    assert stage["seconds"] > 0 and stage["cpu_s"] >= 0
