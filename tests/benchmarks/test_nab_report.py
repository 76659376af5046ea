"""The NAB run's report: report.html with its three plots, categories, throughput, environment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.nab.corpus import NabCorpus, NabSeries
from benchmarks.nab.run import run_nab


def _noisy(name: str, spike: int | None, windows: list[tuple[int, int]], seed: int) -> NabSeries:
    series = NabSeries.from_rows(name, 400, windows)
    series.values[:] = 10.0 + np.random.default_rng(seed).normal(0.0, 1.0, 400)
    if spike is not None:
        series.values[spike] = 80.0
    return series


def test_run_nab_writes_the_report_with_categories_and_throughput(tmp_path: Path) -> None:
    corpus = NabCorpus(
        {
            "realTraffic/a.csv": _noisy("realTraffic/a.csv", 300, [(300, 320)], 1),
            "artificialNoAnomaly/b.csv": _noisy("artificialNoAnomaly/b.csv", None, [], 2),
        }
    )
    results, markdown = run_nab(
        None, tmp_path, "seasonal", params={"two_sided": True}, corpus=corpus
    )
    # The spike opens realTraffic's only window and is the corpus's highest score.
    assert results["categories"]["realTraffic"]["standard"] == pytest.approx(100.0)
    assert results["categories"]["artificialNoAnomaly"]["standard"] is None
    assert "| realTraffic | 100.00 | 100.00 | 100.00 |" in markdown
    assert "| artificialNoAnomaly | - | - | - |" in markdown

    (throughput,) = results["throughput"]
    assert throughput["unit"] == "rows" and throughput["fit_items"] == 800
    assert throughput["fit_per_s"] > 0 and throughput["score_per_s"] > 0
    assert throughput["peak_memory_mb"] > 0
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["versions"]["numpy"] == np.__version__ and written["machine"]["cpus"] >= 1
    assert written["seed"] == 0 and written["config"] == {"two_sided": True}

    page = (tmp_path / "report.html").read_text()
    # Scoreboard bars, per-category chart, ROC/PR curves.
    assert page.count("<img ") == 3
    assert "<h2 id='throughput'>Throughput</h2>" in page
    assert (tmp_path / "results.md").read_text() == markdown
    assert "## Throughput" in markdown
