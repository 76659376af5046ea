"""Benchmark reports: the plots (valid PNGs), NAB's per-category scores by hand, report.html."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from benchmarks.nab.corpus import NabCorpus, NabSeries
from benchmarks.nab.scoring import category_scores, series_category
from benchmarks.plots import (
    Bar,
    BarPanel,
    Curve,
    bar_chart,
    is_png,
    nab_category_chart,
    roc_pr_chart,
)
from benchmarks.report import (
    Figure,
    Section,
    markdown_to_html,
    throughput_markdown,
    write_bench_outputs,
    write_report,
)
from benchmarks.results import (
    PeakMemory,
    Throughput,
    environment,
    progress_bar,
    progress_enabled,
)


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG holds right after its signature."""
    data = path.read_bytes()
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_bar_chart_is_a_png_with_anchor_footnotes(tmp_path: Path) -> None:
    panels = [
        BarPanel("F1", [Bar("pca", 0.69), Bar("published", 0.66, kind="anchor", source="X 2017")]),
        BarPanel("recall", [Bar("nextkey", 0.99, error=0.01)]),
    ]
    path = bar_chart(tmp_path / "sub" / "bars.png", "toy", panels)
    assert is_png(path)
    width, height = _png_size(path)
    assert width > 200 and height > 200


def test_roc_pr_chart_takes_several_curves_and_a_one_class_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.array([0] * 5000 + [1] * 50)
    scores = rng.normal(size=labels.size) + 3.0 * labels
    curves = [
        Curve("good", labels, scores),
        Curve("random", labels, rng.normal(size=labels.size)),
        Curve("empty", np.zeros(10), np.arange(10.0)),
    ]
    path = roc_pr_chart(tmp_path / "roc.png", "toy", curves)
    assert is_png(path) and _png_size(path)[0] > 400


def test_nab_category_chart_is_a_png(tmp_path: Path) -> None:
    per_category: dict[str, dict[str, float | None]] = {
        "artificialNoAnomaly": {"standard": None, "reward_low_FN_rate": None},
        "realTraffic": {"standard": -12.5, "reward_low_FN_rate": 30.0},
    }
    assert is_png(nab_category_chart(tmp_path / "nab.png", "toy", per_category))


def _sigmoid(x: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def test_nab_category_scores_equal_a_hand_computation() -> None:
    # 20 rows each: the first 3 are probationary (15 % of 20). Profiles (tp, fp, fn):
    # standard (1, 0.11, 1), reward_low_FP_rate (1, 0.22, 1), reward_low_FN_rate (1, 0.11, 2).
    series = {
        "catA/hit.csv": NabSeries.from_rows("catA/hit.csv", 20, [(10, 14)]),
        "catA/miss.csv": NabSeries.from_rows("catA/miss.csv", 20, [(5, 8)]),
        "catB/late.csv": NabSeries.from_rows("catB/late.csv", 20, [(10, 14)]),
        "quiet/none.csv": NabSeries.from_rows("quiet/none.csv", 20),
    }
    corpus = NabCorpus(series)
    scores = {name: np.zeros(20) for name in series}
    scores["catA/hit.csv"][10] = 1.0  # first row of its window: reward tp_weight
    scores["catB/late.csv"][4] = 1.0  # before any window: costs the full fp_weight
    scores["catB/late.csv"][12] = 1.0  # inside, position -(14 - 12 + 1) / 5 = -0.6
    scores["quiet/none.csv"][15] = 1.0
    thresholds = {"standard": 0.5, "reward_low_FP_rate": 0.5, "reward_low_FN_rate": 0.5}
    result = category_scores(corpus, scores, thresholds)

    # catA: one window found on its first row (+1), one missed (-fn); null = -2 fn, perfect = 2.
    assert result["catA"]["standard"] == pytest.approx(100 * (1 - 1 + 2) / (2 + 2))
    assert result["catA"]["reward_low_FP_rate"] == pytest.approx(50.0)
    assert result["catA"]["reward_low_FN_rate"] == pytest.approx(100 * (1 - 2 + 4) / (2 + 4))
    # catB: the late flag earns sigma(-0.6) / sigma(-1); the early one costs fp_weight.
    late = _sigmoid(-0.6) / _sigmoid(-1.0)
    assert late == pytest.approx(0.917429, abs=1e-6)
    assert result["catB"]["standard"] == pytest.approx(100 * (late - 0.11 + 1) / 2)
    assert result["catB"]["reward_low_FP_rate"] == pytest.approx(100 * (late - 0.22 + 1) / 2)
    assert result["catB"]["reward_low_FN_rate"] == pytest.approx(100 * (late - 0.11 + 2) / 3)
    # No window: no normalised score.
    assert result["quiet"] == {p: None for p in thresholds}
    assert list(result) == ["catA", "catB", "quiet"]


def test_category_scores_optimise_per_category_without_thresholds() -> None:
    series = {"catB/late.csv": NabSeries.from_rows("catB/late.csv", 20, [(10, 14)])}
    scores = {"catB/late.csv": np.zeros(20)}
    scores["catB/late.csv"][4] = 1.0
    scores["catB/late.csv"][12] = 0.5
    # Flagging rows 4 and 12 (threshold 0.5) beats flagging nothing (-1), row 4 alone (-1.11)
    # and every row (seven early false positives, five late ones).
    best = category_scores(NabCorpus(series), scores)["catB"]["standard"]
    late = _sigmoid(-0.6) / _sigmoid(-1.0)
    assert best == pytest.approx(100 * (late - 0.11 + 1) / 2)
    assert series_category("plain.csv") == ""


def test_markdown_to_html_renders_tables_lists_and_code() -> None:
    page = markdown_to_html("## Speed\n\n| a | b |\n|---|---:|\n| *x* | 1 |\n\n```\nq < 1\n```")
    assert page == (
        "<h4>Speed</h4>\n<table><tr><th>a</th><th>b</th></tr>"
        "<tr><td><i>x</i></td><td>1</td></tr></table>\n<pre>q &lt; 1</pre>"
    )


def test_throughput_rates_and_markdown() -> None:
    entry = Throughput("scan", "windows", 300, 1.5, 100, 0.0, 99.5, "block", 6000, 2.0)
    assert (entry.fit_per_s, entry.score_per_s, entry.read_per_s) == (200.0, None, 3000.0)
    text = throughput_markdown([entry.to_dict()])
    assert "| scan | windows | 200 | - | 3,000 events | 100 |" in text


def _resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    pytest.skip("no /proc/self/status")


def test_peak_memory_sees_a_large_allocation() -> None:
    with PeakMemory() as peak:
        before = _resident_mb()
        block = np.ones(64 * 1024 * 1024 // 8)  # 64 MB, every page touched
        assert block.sum() > 0
        del block
    if peak.scope != "block":
        pytest.skip("the high-water mark cannot be reset here")
    assert peak.mb >= before + 60


def test_environment_records_versions_and_machine() -> None:
    env = environment()
    assert {"baseliner", "python", "numpy", "polars", "scikit-learn", "pyod", "river"} <= set(
        env["versions"]
    )
    assert env["versions"]["numpy"] == np.__version__
    assert env["machine"]["cpus"] >= 1 and env["machine"]["memory_mb"] > 0


def test_report_embeds_every_figure_and_a_throughput_section(tmp_path: Path) -> None:
    png = bar_chart(tmp_path / "b.png", "t", [BarPanel("m", [Bar("a", 1.0)])])
    results = {
        "seed": 3,
        "config": {"k": 1},
        "throughput": [Throughput("d", "rows", 10, 1.0, 10, 1.0).to_dict()],
        **environment(),
    }
    sections = [Section("Plots", "| a |\n|---|\n| 1 |", [Figure(png, "one"), Figure(png)])]
    page = write_report(tmp_path / "out", "toy", results, sections).read_text()
    assert page.count("<img ") == 2 and page.count("data:image/png;base64,") == 2
    assert "<figcaption>one</figcaption>" in page
    assert "<h2 id='throughput'>Throughput</h2>" in page and "<td>d</td>" in page
    assert "<td>seed</td><td><code>3</code></td>" in page


def test_bench_outputs_append_throughput_to_the_markdown(tmp_path: Path) -> None:
    results = {"throughput": [Throughput("d", "rows", 10, 2.0, 10, 1.0).to_dict()]}
    text = write_bench_outputs(tmp_path, "toy", results, "# toy\n\n| a |\n|---|\n| 1 |\n")
    assert text.startswith("# toy\n") and "## Throughput" in text
    assert "| d | rows | 5 | 10 | - | - |" in text
    assert (tmp_path / "results.md").read_text() == text
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert "<h3>toy</h3>" in (tmp_path / "report.html").read_text()


def test_progress_bar_shows_the_time_left_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar(4, "series", "rows", enabled=True) as bar:
        bar.update(1)
        bar.update(3)
    err = capsys.readouterr().err
    assert "series: 100%" in err and "4/4 rows" in err and "left]" in err
    with progress_bar(4, "quiet", "rows", enabled=False) as bar:
        bar.update(4)
    assert capsys.readouterr().err == ""
    # Under pytest stderr is captured, not a terminal: no bar unless asked for.
    assert not progress_enabled()
