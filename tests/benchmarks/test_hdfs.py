"""HDFS loaders, metrics and the reduced HDFS_100k bench (test split) on the real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks.hdfs import (
    HdfsDataError,
    f1_ceiling,
    load_hdfs_100k,
    precision_recall_f1,
    read_key_sequences,
    run_hdfs,
    run_hdfs_100k,
)

DATA = os.environ.get("BASELINER_DATA")
needs_data = pytest.mark.skipif(
    not DATA or not (Path(DATA) / "hdfs_100k" / "hdfs_100k_sessions.csv").is_file(),
    reason="BASELINER_DATA unset or without hdfs_100k/hdfs_100k_sessions.csv",
)

SESSIONS = """BlockId,Label,split_deeploglizer,n_events,TemplateSequence
blk_1,0,train,3,T01 T02 T03
blk_2,0,train,3,T01 T02 T03
blk_3,1,train,1,T01
blk_4,0,test,3,T01 T02 T03
blk_5,1,test,2,T01 T03
"""


@pytest.fixture
def tiny_hdfs(tmp_path: Path) -> Path:
    folder = tmp_path / "hdfs_100k"
    folder.mkdir()
    (folder / "hdfs_100k_sessions.csv").write_text(SESSIONS)
    (folder / "templates.csv").write_text(
        "TemplateId,EventTemplate,Occurrences\nT01,a,1\nT02,b,1\nT03,c,1\n"
    )
    return tmp_path


def test_sessions_load_as_key_sequences_with_split(tiny_hdfs: Path) -> None:
    sessions = load_hdfs_100k(tiny_hdfs)
    assert sessions.templates == ["T01", "T02", "T03"]
    assert sessions.sequences[4] == [0, 2]
    train, labels = sessions.part("train", normal_only=True)
    assert train == [[0, 1, 2], [0, 1, 2]] and labels.tolist() == [0, 0]
    with pytest.raises(HdfsDataError, match=r"no hdfs_100k_sessions\.csv"):
        load_hdfs_100k(tiny_hdfs / "elsewhere")


def test_key_files_refuse_non_integer_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("1 2\nx 3\n")
    with pytest.raises(HdfsDataError, match=r"keys:2"):
        read_key_sequences(path)


def test_precision_recall_f1_by_hand() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0])
    flagged = np.array([True, True, False, True, False, False])
    metrics = precision_recall_f1(truth, flagged)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert precision_recall_f1(truth, np.zeros(6, dtype=bool))["f1"] == 0.0


def test_f1_ceiling_cannot_split_identical_sessions() -> None:
    # Key "a" holds one anomaly and one normal row: flagging it costs a false positive.
    keys = ["a", "a", "b", "c", "c"]
    truth = np.array([1, 0, 1, 0, 0])
    bound = f1_ceiling(keys, truth)
    # Flag b only: tp 1, fn 1 -> F1 2/3; flag a too: tp 2, fp 1 -> 4/5.
    assert bound["f1"] == pytest.approx(0.8)
    assert (bound["tp"], bound["fp"]) == (2, 1)


def test_runner_on_tiny_sessions_flags_the_broken_one(tiny_hdfs: Path) -> None:
    part = run_hdfs_100k(tiny_hdfs, ["invariants", "pca"])
    for row in part["rows"]:
        assert (row["tp"], row["fp"], row["fn"]) == (1, 0, 0), row["detector"]
    assert part["n_train"] == 2 and part["n_test_anomalies"] == 1


def test_run_hdfs_writes_the_report_and_throughput(tiny_hdfs: Path, tmp_path: Path) -> None:
    results, markdown = run_hdfs(tiny_hdfs, tmp_path / "out", ["invariants", "pca"], deeplog=False)
    entries = {entry["name"]: entry for entry in results["throughput"]}
    assert set(entries) == {"invariants", "pca"}
    # Two normal training sessions fitted, two test sessions scored, per detector.
    assert (entries["pca"]["fit_items"], entries["pca"]["score_items"]) == (2, 2)
    assert entries["pca"]["unit"] == "sessions" and entries["pca"]["peak_memory_mb"] > 0
    assert results["seed"] == 0 and results["versions"]["numpy"] == np.__version__
    page = (tmp_path / "out" / "report.html").read_text()
    # F1 beside the anchor (and the oracle ceilings); ROC/PR curves of the test part.
    assert page.count("<img ") == 2
    assert "<h2 id='throughput'>Throughput</h2>" in page and "## Throughput" in markdown


@pytest.mark.dataset
@pytest.mark.slow
@needs_data
def test_hdfs_100k_test_split_reduced_bench(tmp_path: Path) -> None:
    results, markdown = run_hdfs(DATA, tmp_path, ["pca", "invariants", "nextkey"], deeplog=False)
    part = results["hdfs_100k"]
    assert (part["n_train"], part["n_test"], part["n_test_anomalies"]) == (6096, 1588, 57)
    rows = {row["detector"]: row for row in part["rows"]}
    # Count-vector detectors can do no better than the count-vector ceiling (F1 0.690:
    # 30 of the 57 test anomalies differ from every common normal session).
    assert part["ceiling"]["count_vector"]["f1"] == pytest.approx(0.6897, abs=1e-3)
    assert rows["invariants"]["precision"] == 1.0
    assert rows["invariants"]["f1"] == pytest.approx(0.6897, abs=1e-3)
    assert rows["pca"]["f1"] > 0.6
    assert rows["nextkey"]["f1"] > 0.5
    assert (tmp_path / "results.md").is_file() and "oracle ceiling" in markdown
    assert (tmp_path / "report.html").read_text().count("<img ") == 2
    assert [entry["score_items"] for entry in results["throughput"]] == [1588] * 3
