"""Session 7 review fixes: DeepLog's false-positive side, ADBench's uniform subsample and merge
checks, damaged data as one-line errors, ``datasets`` without network, the small generator."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.adbench import AdbenchDataError, load_adbench_set, run_adbench, split_adbench
from benchmarks.adbench.__main__ import main as adbench_main
from benchmarks.adbench.data import uniform_subsample
from benchmarks.adbench.runner import _targets
from benchmarks.hdfs import HdfsDataError, load_hdfs_100k, run_deeplog
from benchmarks.hdfs.runner import deeplog_lines, deeplog_projection
from benchmarks.results import load_anchors
from detector.cli import main

DATA = os.environ.get("BASELINER_DATA")
needs_adbench = pytest.mark.skipif(
    not DATA or not (Path(DATA) / "adbench" / "6_cardio.npz").is_file(),
    reason="BASELINER_DATA unset or without adbench/",
)


# --- DeepLog: recall and false-positive rate from the same models ---------------------------


@pytest.fixture
def deeplog_dir(tmp_path: Path) -> Path:
    """Ten normal sessions ``1 2 3``, one normal ``1 3 2``; abnormal ``1 2 2`` and ``1 2 3``."""
    folder = tmp_path / "hdfs_100k"
    (folder / "deeplog_hdfs").mkdir(parents=True)
    (folder / "hdfs_100k_sessions.csv").write_text(
        "BlockId,Label,split_deeploglizer,n_events,TemplateSequence\nb,0,train,1,T01\n"
    )
    (folder / "deeplog_hdfs" / "hdfs_train").write_text("1 2 3\n" * 10 + "1 3 2\n")
    (folder / "deeplog_hdfs" / "hdfs_test_abnormal").write_text("1 2 2\n1 2 3\n")
    return tmp_path


def test_deeplog_false_positive_rate_is_measured_beside_the_recall(deeplog_dir: Path) -> None:
    part = run_deeplog(deeplog_dir, history=1, top_g=2, min_count=1)
    # All-data model: after "1" both 2 and 3 were seen, so "1 3 2" is no miss (in-sample 0).
    assert part["in_sample_false_positives"] == 0
    assert part["recall_abnormal"] == 0.5  # "1 2 2" flagged, "1 2 3" is a normal sequence
    cv = part["cross_validated"]
    # Held out, "1 3 2" meets a model that saw only "1 2 3": 3 after 1 is a miss.
    assert (cv["false_positives"], cv["n_normal"]) == (1, 11)
    assert cv["false_positive_rate"] == pytest.approx(1 / 11)
    assert cv["recall_abnormal_mean"] == 0.5 and cv["folds"] == 5
    lines = "\n".join(deeplog_lines(part, load_anchors("hdfs")))
    assert "| **0.0909** (1 of 11) |" in lines
    assert "833 false positives cannot be matched on our data" in lines


def test_deeplog_projection_by_hand() -> None:
    # 0.9 x 1000 = 900 true positives; 0.02 x 50,000 = 1,000 false positives.
    projected = deeplog_projection(0.9, 0.02, 1000, n_normal=50_000)
    assert projected["false_positives"] == pytest.approx(1000.0)
    assert projected["precision"] == pytest.approx(900 / 1900)


def test_deeplog_anchors_carry_the_false_positive_side() -> None:
    anchors = {a["metric"]: a for a in load_anchors("hdfs") if a["dataset"] == "deeplog_hdfs"}
    assert set(anchors) == {"recall", "false_positive_rate", "precision"}
    # 833 / (558,223 - 4,855) and 16,219 / (16,219 + 833), as published counts give.
    assert anchors["false_positive_rate"]["value"] == pytest.approx(833 / 553_368, abs=5e-5)
    assert anchors["precision"]["value"] == pytest.approx(16_219 / 17_052, abs=5e-4)


def test_unverified_anchors_say_so() -> None:
    for anchor in load_anchors("adbench") + load_anchors("hdfs"):
        if "issue 4 brief" in anchor["source"]:
            assert anchor["source"].startswith("UNVERIFIED"), anchor


# --- ADBench: uniform subsample, protocol-aware targets, merge checks ------------------------


def test_subsample_is_uniform_not_per_class() -> None:
    y = np.array([0] * 900 + [1] * 100)
    anomalies = set()
    for seed in range(6):
        keep = uniform_subsample(y, 100, seed=seed)
        # The first draw of the seeded generator, taken as it is (every class has >= 2 rows).
        expected = np.sort(np.random.default_rng(seed).choice(1000, size=100, replace=False))
        assert keep.tolist() == expected.tolist()
        anomalies.add(int(y[keep].sum()))
    # A per-class draw would give exactly 10 anomalies every time.
    assert anomalies != {10}


def test_subsample_redraws_when_a_class_falls_under_two_rows() -> None:
    y = np.array([0] * 97 + [1] * 3)
    redrawn = 0
    for seed in range(20):
        keep = uniform_subsample(y, 40, seed=seed)
        assert int(y[keep].sum()) >= 2
        first = np.sort(np.random.default_rng(seed).choice(100, size=40, replace=False))
        redrawn += int(keep.tolist() != first.tolist())
    assert redrawn > 0
    with pytest.raises(AdbenchDataError, match="raise --max-rows"):
        uniform_subsample(np.array([0] * 9_998 + [1] * 2), 10, seed=0)


def test_split_subsamples_the_uniform_draw() -> None:
    X = np.arange(1000, dtype=float).reshape(-1, 1)
    y = np.array([0] * 900 + [1] * 100)
    split = split_adbench(X, y, seed=3, max_rows=200, minmax=False)
    rows = np.sort(np.concatenate([split.X_train[:, 0], split.X_test[:, 0]])).astype(int)
    assert rows.tolist() == uniform_subsample(y, 200, seed=3).tolist()


def test_targets_say_when_the_protocol_differs_from_the_anchors() -> None:
    results = {
        "summary": {"16_http": {"tabular": {"aucroc_mean": 0.9996}}},
        "detectors": ["tabular"],
        "anchors": load_anchors("adbench"),
        "average": {},
        "datasets": ["16_http"],
        "protocol": {"max_rows": None},
    }
    (full,) = _targets(results)
    assert full["target"].endswith("(protocol differs: max_rows None)") and full["met"]
    (matching,) = _targets({**results, "protocol": {"max_rows": 10_000}})
    assert matching["target"] == "tabular AUCROC >= published 99.96 on 16_http"


@pytest.fixture
def toy_results(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0.0, 1.0, (190, 3)), rng.normal(8.0, 1.0, (10, 3))])
    folder = tmp_path / "adbench"
    folder.mkdir()
    np.savez(folder / "38_thyroid.npz", X=X, y=np.array([0] * 190 + [1] * 10))
    results, _ = run_adbench(tmp_path, None, ["ecod"], [0], datasets=["thyroid"])
    for part in ("a", "b"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "results.json").write_text(json.dumps(results))
    return tmp_path


def test_merge_refuses_a_file_twice_and_overlapping_sets(
    toy_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = str(toy_results / "a" / "results.json")
    b = str(toy_results / "b" / "results.json")
    out = str(toy_results / "merged")
    assert adbench_main(["--merge", a, a, "--out", out]) == 2
    err = capsys.readouterr().err
    assert "cannot merge a file with itself" in err and len(err.strip().splitlines()) == 1
    assert adbench_main(["--merge", a, b, "--out", out]) == 2
    assert "38_thyroid appear(s) in more than one part" in capsys.readouterr().err
    assert not Path(out).exists()


# --- damaged data: one line, exit 2 ----------------------------------------------------------


def test_truncated_npz_is_one_data_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "adbench"
    folder.mkdir()
    np.savez(folder / "6_cardio.npz", X=np.zeros((50, 2)), y=np.zeros(50))
    whole = (folder / "6_cardio.npz").read_bytes()
    (folder / "6_cardio.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AdbenchDataError, match=r"6_cardio\.npz: not a readable \.npz"):
        load_adbench_set(tmp_path, "cardio")
    args = ["bench", "adbench", "--data-dir", str(tmp_path), "--datasets", "cardio"]
    assert main([*args, "--detectors", "ecod", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not a readable .npz" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("label", ["x", "2"])
def test_bad_hdfs_label_is_one_data_error(tmp_path: Path, label: str) -> None:
    folder = tmp_path / "hdfs_100k"
    folder.mkdir()
    (folder / "hdfs_100k_sessions.csv").write_text(
        "BlockId,Label,split_deeploglizer,n_events,TemplateSequence\n"
        f"blk_1,0,train,1,T01\nblk_2,{label},test,1,T01\n"
    )
    with pytest.raises(HdfsDataError, match="Label") as caught:
        load_hdfs_100k(tmp_path)
    assert "\n" not in str(caught.value)


# --- datasets: fetch without network, missing folders, the dataset's own folder -------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_fetch_without_network_is_one_line_and_stops_early(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "data"
    url = f"http://127.0.0.1:{_closed_port()}"
    assert (
        main(["datasets", "fetch", "loghub_2k", "--data-dir", str(target), "--base-url", url]) == 2
    )
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    # Three refused connections in a row, then the other 8 of 11 files are not tried.
    assert "3 failed (first: CITATION: cannot download" in captured.err
    assert "8 not tried after 3 connection failures in a row" in captured.err
    assert not target.exists()  # no empty folder tree left behind


def test_fetch_refuses_a_base_url_that_is_not_http(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["datasets", "fetch", "nab", "--data-dir", str(tmp_path), "--base-url", "notaurl"]
    assert main(args) == 2
    assert "expected an http:// or https:// URL" in capsys.readouterr().err


@pytest.mark.parametrize("action", [["verify", "nab"], ["list"]])
def test_missing_data_folder_is_one_line(
    tmp_path: Path, action: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["datasets", *action, "--data-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"baseliner: error: data folder {tmp_path / 'nope'} does not exist"


def test_list_says_which_files_no_public_source_provides(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "hdfs_100k     6 files  logpai/deep-loglizer@1069a1e" in out
    assert "4 file(s) cannot be fetched: no public source; copy them from" in out
    assert "244 file(s) cannot be fetched" in out  # NAB's re-encoded official_results/


@needs_adbench
def test_verify_accepts_the_dataset_folder_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert DATA is not None
    copy = tmp_path / "mine"
    shutil.copytree(Path(DATA) / "adbench", copy)
    assert main(["datasets", "verify", "adbench", "--data-dir", str(copy)]) == 0
    assert "all 9 files present" in capsys.readouterr().out


# --- generator: scenario 5 is planted when it is announced -----------------------------------


@pytest.mark.slow
def test_small_organisation_plants_every_announced_scenario(tmp_path: Path) -> None:
    from benchmarks.synthetic import generate

    summary = generate(tmp_path, users=50, days=20, seed=7)
    truth = pl.read_csv(tmp_path / "ground_truth.csv")
    written = {str(s) for s in truth["scenario"].unique().to_list()}
    assert written == set(summary.planted) == {"1", "2", "3", "4", "5"}
    beacon_user = summary.planted["5"][0]
    assert beacon_user in set(truth.filter(pl.col("scenario") == 5)["entity"].to_list())
    assert json.loads((tmp_path / "manifest.json").read_text())["planted"]["5"] == [beacon_user]
