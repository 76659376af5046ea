"""The NAB loader and the comparison CLI on a tiny corpus written in NAB's exact layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.nab import (
    NabDataError,
    load_nab,
    load_official_scores,
    load_official_thresholds,
    resolve_nab_dir,
    score_official_results,
)
from benchmarks.nab.__main__ import main

PROFILES = {
    "standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11}},
    "reward_low_FP_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22}},
    "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11}},
}
N_ROWS = 40


def _timestamps() -> list[str]:
    stamps = [f"2015-09-10 {h:02d}:{m:02d}:00" for h in range(1, 3) for m in range(0, 60, 3)]
    # NAB has files that repeat a timestamp: rows 21 and 22 share one here.
    stamps[22] = stamps[21]
    return stamps[:N_ROWS]


def _write_csv(path: Path, header: str, rows: list[tuple[str, float]], gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = header + "\n" + "".join(f"{t},{v}\n" for t, v in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


@pytest.fixture()
def nab_parent(tmp_path: Path) -> Path:
    """A parent folder holding ``nab/`` with one series, one window and one official detector."""
    root = tmp_path / "nab"
    stamps = _timestamps()
    _write_csv(root / "data/realTraffic/speed.csv", "timestamp,value", [(t, 1.5) for t in stamps])
    # The window ends on the repeated timestamp: its first occurrence (row 21) is the end.
    windows = {"realTraffic/speed.csv": [[f"{stamps[17]}.000000", f"{stamps[21]}.000000"]]}
    (root / "labels").mkdir(parents=True)
    (root / "labels/combined_windows.json").write_text(json.dumps(windows))
    (root / "config").mkdir()
    (root / "config/profiles.json").write_text(json.dumps(PROFILES))
    thresholds = {"toy": {p: {"score": 0.0, "threshold": 0.5} for p in PROFILES}}
    (root / "config/thresholds.json").write_text(json.dumps(thresholds))
    scores = [0.0] * N_ROWS
    scores[17] = 0.9  # a detection on the first row of the window
    _write_csv(
        root / "official_results/toy/realTraffic/toy_speed.csv.gz",
        "timestamp,anomaly_score",
        list(zip(stamps, scores, strict=True)),
        gz=True,
    )
    (root / "results").mkdir()
    final = {"toy": {p: 100.0 for p in PROFILES}}
    (root / "results/final_results.json").write_text(json.dumps(final))
    return tmp_path


def test_resolves_the_nab_root_or_its_parent_or_the_env_var(
    nab_parent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_nab_dir(nab_parent) == nab_parent / "nab"
    assert resolve_nab_dir(nab_parent / "nab") == nab_parent / "nab"
    monkeypatch.setenv("BASELINER_DATA", str(nab_parent))
    assert resolve_nab_dir() == nab_parent / "nab"
    monkeypatch.delenv("BASELINER_DATA")
    with pytest.raises(NabDataError, match="BASELINER_DATA"):
        resolve_nab_dir()
    with pytest.raises(NabDataError, match="no NAB corpus"):
        resolve_nab_dir(nab_parent / "elsewhere")


def test_loads_series_windows_as_rows_and_profiles(nab_parent: Path) -> None:
    corpus = load_nab(nab_parent)
    series = corpus.series["realTraffic/speed.csv"]
    assert series.n_rows == N_ROWS
    assert series.values.tolist() == [1.5] * N_ROWS
    assert series.timestamps[0] == np.datetime64("2015-09-10T01:00:00")
    assert series.windows == ((17, 21),)
    assert corpus.profiles["reward_low_FN_rate"].fn_weight == 2.0
    assert corpus.profiles["reward_low_FP_rate"].fp_weight == 0.22


def test_window_limit_that_is_not_a_row_is_an_error(nab_parent: Path) -> None:
    labels = nab_parent / "nab/labels/combined_windows.json"
    labels.write_text(
        json.dumps({"realTraffic/speed.csv": [["2015-09-10 01:01:00", "2015-09-10 01:09:00"]]})
    )
    with pytest.raises(NabDataError, match=r"speed\.csv: window limit"):
        load_nab(nab_parent)


def test_official_scores_are_read_and_scored(nab_parent: Path) -> None:
    corpus = load_nab(nab_parent)
    scores = load_official_scores(corpus, "toy")
    assert scores["realTraffic/speed.csv"][17] == 0.9
    assert load_official_thresholds(corpus, "toy")["standard"] == 0.5
    results = score_official_results(corpus, "toy")
    assert {p: r.score for p, r in results.items()} == pytest.approx({p: 100.0 for p in PROFILES})
    assert results["standard"].threshold == 0.9
    assert (
        score_official_results(corpus, "toy", official_thresholds=True)["standard"].threshold == 0.5
    )


def test_official_scores_with_other_timestamps_are_rejected(nab_parent: Path) -> None:
    stamps = _timestamps()
    stamps[-1] = "2015-09-11 00:00:00"
    _write_csv(
        nab_parent / "nab/official_results/toy/realTraffic/toy_speed.csv.gz",
        "timestamp,anomaly_score",
        [(t, 0.0) for t in stamps],
        gz=True,
    )
    with pytest.raises(NabDataError, match="timestamps differ"):
        load_official_scores(load_nab(nab_parent), "toy")
    with pytest.raises(NabDataError, match="missing official results"):
        load_official_scores(load_nab(nab_parent), "absent")


def test_cli_compares_with_the_scoreboard(
    nab_parent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(nab_parent), "--detector", "toy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["ours"] for row in report["rows"]] == pytest.approx([100.0] * 3)
    final = nab_parent / "nab/results/final_results.json"
    final.write_text(json.dumps({"toy": {p: 90.0 for p in PROFILES}}))
    assert main(["--data-dir", str(nab_parent), "--detector", "toy"]) == 1
    assert "+10.000" in capsys.readouterr().out
    assert main(["--data-dir", str(nab_parent / "missing")]) == 2
