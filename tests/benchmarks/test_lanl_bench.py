"""``baseliner bench lanl`` end to end on a generated auth.txt and redteam.txt (LANL schemas)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main


def test_generated_redteam_is_lanl_shaped(small_org: Path) -> None:
    lines = (small_org / "redteam.txt").read_text().splitlines()
    assert lines, "the compromised-account scenario writes red-team events"
    time, user, src, dst = lines[0].split(",")
    assert time.isdigit() and user.endswith("@DOM1") and src.startswith("C")
    assert dst.startswith("C")
    assert [int(x.split(",")[0]) for x in lines] == sorted(int(x.split(",")[0]) for x in lines)


def test_bench_lanl_scores_the_red_team(
    small_org: Path,
    small_org_manifest: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "bench",
            "lanl",
            "--data-dir",
            str(small_org),
            "--lanl-epoch",
            small_org_manifest["lanl_epoch"],
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["redteam_events_in_scored_period"] > 0
    assert results["event_auc_roc"] > 0.9
    assert set(results["event_recall_at_budget"]) == {"0.1%", "0.5%", "1.0%"}
    (throughput,) = results["throughput"]
    assert throughput["read_items"] == results["events"]
    assert throughput["score_items"] == results["user_days"] and throughput["score_per_s"] > 0
    page = (tmp_path / "report.html").read_text()
    assert page.count("<img ") == 1 and "<h2 id='throughput'>Throughput</h2>" in page
    assert "event AUC-ROC" in capsys.readouterr().out


def test_bench_lanl_needs_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "auth.txt").write_text("")
    assert main(["bench", "lanl", "--data-dir", str(tmp_path)]) == 2
    assert "no redteam.txt" in capsys.readouterr().err
