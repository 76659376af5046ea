"""``baseliner bench cert`` end to end on a generated release in CERT's exact answers layout."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from benchmarks.cert_bench import read_answers
from detector.cli import main


def test_generated_answers_follow_the_cert_layout(small_org: Path) -> None:
    insiders = pl.read_csv(small_org / "answers" / "insiders.csv", infer_schema=False)
    assert insiders.columns == ["dataset", "scenario", "details", "user", "start", "end"]
    assert set(insiders["dataset"]) == {"6.2"}
    first = insiders.row(0, named=True)
    details = small_org / "answers" / f"r6.2-{first['scenario']}" / first["details"]
    line = details.read_text().splitlines()[0].split(",")
    assert line[0] in {"logon", "device", "file", "email", "http"}
    assert line[3] == first["user"]
    truth = pl.read_csv(small_org / "ground_truth.csv")
    answered = read_answers(small_org, "r6.2")
    # Every labelled user-day with CERT rows is in the key; none outside the ground truth.
    key = set(zip(answered["entity"], answered["day"].cast(pl.String), strict=True))
    labelled = set(zip(truth["entity"], truth["day"], strict=True))
    assert key <= labelled
    assert len(key) >= 0.8 * len(labelled)


def test_bench_cert_scores_a_release(
    small_org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "bench",
                "cert",
                "--data-dir",
                str(small_org),
                "--release",
                "r6.2",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert 0.5 < results["auc_roc"] <= 1.0
    assert set(results["recall_at_budget"]) == {"0.1%", "0.5%", "1.0%"}
    assert results["insiders_alerted"] >= 4
    (throughput,) = results["throughput"]
    assert throughput["read_items"] == results["events"] and throughput["read_per_s"] > 0
    assert throughput["score_items"] == results["scored_user_days"]
    assert throughput["fit_items"] > 0 and throughput["peak_memory_mb"] > 0
    assert results["anchors"][0]["value"] == 95.5 and results["versions"]["polars"]
    page = (tmp_path / "report.html").read_text()
    # The percentile beside Tuor et al.'s, and the user-day ROC/PR curves.
    assert page.count("<img ") == 2 and "<h2 id='throughput'>Throughput</h2>" in page
    assert "days to first alert" not in capsys.readouterr().err


def test_bench_cert_without_answers_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "cert", "--data-dir", str(tmp_path)]) == 2
    assert "no CERT answer key" in capsys.readouterr().err
