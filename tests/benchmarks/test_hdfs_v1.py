"""Full HDFS_v1 by path (drain-mined block sessions), grouping accuracy, and their CLI paths."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.hdfs import (
    HdfsDataError,
    deeploglizer_split,
    grouping_accuracy,
    load_hdfs_v1,
    read_hdfs_v1,
    read_labels,
    run_logparse,
)
from detector.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hdfs_v1"
LOG, LABELS = FIXTURE / "HDFS.log", FIXTURE / "anomaly_label.csv"
A, B = "blk_-1608999687919862906", "blk_7503483334202473044"
C, D = "blk_-3544583377289625738", "blk_-9073992586687739851"
E = "blk_4292382298896622412"

DATA = os.environ.get("BASELINER_DATA")
needs_loghub = pytest.mark.skipif(
    not DATA or not (Path(DATA) / "loghub_2k" / "HDFS" / "HDFS_2k.log").is_file(),
    reason="BASELINER_DATA unset or without loghub_2k/HDFS/HDFS_2k.log",
)

# The fixture's seven event kinds, named by a word only their template holds.
KIND_WORDS = {
    "allocate": "allocateBlock",
    "receiving": "Receiving block",
    "responder": "PacketResponder <NUM>",
    "received": "Received block",
    "stored": "addStoredBlock",
    "exception": "received exception",
    "delete": "to delete",
}


def _kinds(templates: list[str]) -> dict[int, str]:
    kinds = {}
    for key, template in enumerate(templates):
        (kind,) = [name for name, word in KIND_WORDS.items() if word in template]
        kinds[key] = kind
    return kinds


def test_fixture_sessions_by_hand() -> None:
    read = read_hdfs_v1(LOG, LABELS)
    sessions = read.sessions
    # One template per event kind (drain groups them exactly), keys in creation order.
    kinds = _kinds(sessions.templates)
    assert sorted(kinds.values()) == sorted(KIND_WORDS)
    named = {
        block: [kinds[key] for key in sequence]
        for block, sequence in zip(sessions.block_ids, sessions.sequences, strict=True)
    }
    full = ["allocate", "receiving", "receiving", "responder", "received", "responder"]
    # Line 8 (A's second "Received block") has a broken date: a dead letter, not in A.
    assert named[A] == [*full[:-1], "responder", "stored", "stored"]
    assert named[B] == [*full, "received", "stored", "stored"]
    # The last line names C and D: it belongs to both.
    assert named[C] == [*full, "received", "stored", "stored", "delete"]
    assert named[D] == ["allocate", "receiving", "exception", "delete"]
    assert named[E] == named[B]
    # First-appearance order; the label file's extra block (never logged) is ignored.
    assert sessions.block_ids == [A, B, C, D, E]
    assert sessions.labels.tolist() == [0, 0, 0, 1, 0]
    # deep-loglizer: RandomState(42) shuffle, first int(0.8 * 5) train, last int(0.2 * 5) test.
    assert sessions.split.tolist() == ["train", "train", "train", "test", "train"]
    assert (read.lines, read.dead_letters, read.dead_letter_reasons) == (
        40,
        1,
        {"bad_timestamp": 1},
    )
    assert read.dead_letter_samples[0].line == 8
    assert read.lines_without_block == 0 and read.unlabeled_blocks == 0
    assert load_hdfs_v1(LOG, LABELS).sequences == sessions.sequences


def test_unlabelled_blocks_are_dropped_and_counted(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(f"BlockId,Label\n{A},Normal\n{D},Anomaly\n")
    read = read_hdfs_v1(LOG, labels)
    assert read.sessions.block_ids == [A, D] and read.unlabeled_blocks == 3
    assert read.sessions.labels.tolist() == [0, 1]


def test_deeploglizer_split_drops_the_session_between_the_parts() -> None:
    # n = 11: int(0.8 * 11) = 8 train, int(0.2 * 11) = 2 test, one session in neither.
    split = deeploglizer_split(11)
    assert (split == "train").sum() == 8 and (split == "test").sum() == 2
    assert (split == "unused").sum() == 1
    order = np.arange(11)
    np.random.RandomState(42).shuffle(order)
    assert sorted(order[-2:].tolist()) == np.flatnonzero(split == "test").tolist()
    # Too few sessions for a test part: none (deep-loglizer's [-0:] would take them all).
    assert (deeploglizer_split(4) == "test").sum() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Block,Label\nblk_1,Normal\n", "expected columns BlockId,Label"),
        ("BlockId,Label\nblk_1,Normal\nblk_2,anomalous\n", r"labels\.csv:3: Label 'anomalous'"),
        ("BlockId,Label\n", "no labelled blocks"),
    ],
)
def test_bad_label_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(HdfsDataError, match=message):
        read_labels(path)


def test_grouping_accuracy_by_hand() -> None:
    # Truth groups {0,1,2}, {3,4}, {5}. Predicted {0,1,2} right (3 lines); {3} and {4}
    # split a true group (wrong); {5} right. 4 of 6 lines.
    predicted = [7, 7, 7, 8, 9, 1]
    truth = ["E1", "E1", "E1", "E2", "E2", "E3"]
    assert grouping_accuracy(predicted, truth) == pytest.approx(4 / 6)
    # Merging two true groups makes both wrong.
    assert grouping_accuracy([1, 1, 2], ["x", "y", "z"]) == pytest.approx(1 / 3)
    assert grouping_accuracy(truth, truth) == 1.0
    with pytest.raises(ValueError, match="2 predicted ids for 3"):
        grouping_accuracy([1, 2], truth[:3])


def test_cli_bench_hdfs_v1_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["bench", "hdfs", "--log", str(LOG), "--labels", str(LABELS)]
    assert main([*argv, "--detectors", "invariants,pca", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["parsing"]["lines"] == 40 and results["parsing"]["dead_letters"] == 1
    part = results["hdfs_v1"]
    assert (part["n_train"], part["n_test"], part["n_test_anomalies"]) == (4, 1, 1)
    rows = {row["detector"]: row for row in part["rows"]}
    # D's exception template never occurs in training: both detectors flag it.
    assert rows["invariants"]["tp"] == 1 and rows["pca"]["tp"] == 1
    assert results["throughput"][0]["read_unit"] == "lines"
    assert (out / "report.html").is_file()
    assert "full HDFS_v1" in capsys.readouterr().out


def test_cli_bench_hdfs_v1_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_labels = tmp_path / "anomaly_label.csv"
    bad_labels.write_text("BlockId,Label\nblk_1,Maybe\n")
    out = str(tmp_path / "out")
    cases = [
        (["--log", str(tmp_path / "missing.log"), "--labels", str(LABELS)], "missing.log"),
        (["--log", str(LOG), "--labels", str(bad_labels)], "Maybe"),
        (["--log", str(LOG)], "go together"),
        (["--log", str(LOG), "--labels", str(LABELS), "--detectors", "nope"], "nope"),
    ]
    for extra, needle in cases:
        assert main(["bench", "hdfs", *extra, "--out", out, "--quiet"]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and "Traceback" not in err


def test_cli_parsing_mode_on_a_copied_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A loghub-shaped folder built from the fixture: truth = our hand-checked event kinds.
    sample = tmp_path / "loghub_2k" / "HDFS"
    sample.mkdir(parents=True)
    lines = [line for line in LOG.read_text().splitlines() if not line.startswith("0811O9")]
    (sample / "HDFS_2k.log").write_text("\n".join(lines) + "\n")
    raw_words = {**KIND_WORDS, "responder": "terminating"}
    truth = [next(k for k, w in raw_words.items() if w in line) for line in lines]
    (sample / "HDFS_2k.log_structured.csv").write_text(
        "LineId,EventId\n" + "".join(f"{i},{kind}\n" for i, kind in enumerate(truth, 1))
    )
    results, markdown = run_logparse(tmp_path, None, ["HDFS"])
    assert results["rows"][0]["grouping_accuracy"] == 1.0
    assert "| HDFS | **1.0000** | 0.998 |" in markdown
    with pytest.raises(HdfsDataError, match="unknown loghub sample"):
        run_logparse(tmp_path, None, ["BGL"])
    shutil.rmtree(sample)
    assert main(["bench", "hdfs", "--parsing", "--data-dir", str(tmp_path)]) == 2
    assert "HDFS_2k.log" in capsys.readouterr().err


@pytest.mark.dataset
@needs_loghub
def test_drain_grouping_accuracy_on_loghub(tmp_path: Path) -> None:
    results, markdown = run_logparse(DATA, tmp_path)
    rows = {row["dataset"]: row for row in results["rows"]}
    assert rows["HDFS"]["grouping_accuracy"] >= 0.9
    assert rows["Thunderbird"]["grouping_accuracy"] >= 0.9
    assert rows["HDFS"]["dead_letters"] == 0 and rows["Thunderbird"]["dead_letters"] == 0
    assert "0.955" in markdown and (tmp_path / "report.html").is_file()
