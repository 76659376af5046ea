"""``baseliner bench adbench|hdfs|nab`` through the real CLI on the shared datasets (reduced)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from detector.cli import main

DATA = os.environ.get("BASELINER_DATA")
needs_data = pytest.mark.skipif(
    not DATA or not Path(DATA).is_dir(), reason="BASELINER_DATA is not set to the datasets folder"
)


@needs_data
@pytest.mark.dataset
def test_bench_adbench_one_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "adbench",
            "--datasets",
            "thyroid",
            "--seeds",
            "0",
            "--detectors",
            "iforest,tabular",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert "38_thyroid" in json.dumps(results)
    assert "| 38_thyroid" in capsys.readouterr().out or (tmp_path / "results.md").is_file()


@needs_data
@pytest.mark.dataset
@pytest.mark.slow  # the DeepLog part fits six next-key models (5-fold false-positive rate)
def test_bench_hdfs_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "hdfs", "--detectors", "pca,invariants", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| pca | 1.000 | 0.526 | **0.690**" in out


@needs_data
@pytest.mark.dataset
@pytest.mark.slow
def test_bench_nab_reproduces_the_scoreboard(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nab", "--check-scorer"]) == 0
    assert "numenta           standard               70.10    70.10" in capsys.readouterr().out


def test_bench_adbench_bad_data_dir_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "adbench", "--data-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("baseliner: error: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["synthetic"],
        ["adbench"],
        ["hdfs"],
        ["nab"],
        ["cert", "--data-dir", "x"],
        ["lanl", "--data-dir", "x"],
    ],
)
def test_long_benches_take_quiet(argv: list[str]) -> None:
    from detector.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["bench", *argv, "--quiet"]).quiet is True
    assert parser.parse_args(["bench", *argv]).quiet is False
