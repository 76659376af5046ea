"""``baseliner bench``: bad flags and a file as ``--out`` give one line and exit 2 before any work.

Every case here must fail (or be deduplicated) before a bench reads data or fits anything: the
bench functions are replaced by ones that fail the test if called.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import benchmarks.adbench
import benchmarks.hdfs
import benchmarks.nab.run
import benchmarks.stream_quality
import benchmarks.synthetic_bench
import benchmarks.throughput
from detector.cli import main


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the bench ran although its flags were bad")


@pytest.fixture()
def no_bench_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bench entry point the CLI calls fails the test if reached."""
    monkeypatch.setattr(benchmarks.adbench, "run_adbench", _never)
    monkeypatch.setattr(benchmarks.hdfs, "run_hdfs", _never)
    monkeypatch.setattr(benchmarks.hdfs, "run_logparse", _never)
    monkeypatch.setattr(benchmarks.nab.run, "run_nab", _never)
    monkeypatch.setattr(benchmarks.stream_quality, "run_stream_bench", _never)
    monkeypatch.setattr(benchmarks.synthetic_bench, "run_synthetic_bench", _never)
    monkeypatch.setattr(benchmarks.throughput, "run_throughput_bench", _never)


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("baseliner: error: ")
    return err


OUT_IS_A_FILE = [
    ["adbench", "--datasets", "cardio"],
    ["hdfs"],
    ["hdfs", "--parsing"],
    ["nab"],
    ["nab", "--check-scorer"],
    ["cert", "--data-dir", "."],
    ["lanl", "--data-dir", "."],
    ["synthetic", "--users", "50", "--days", "20"],
    ["synthetic", "--mode", "stream", "--users", "50", "--days", "20"],
    ["throughput", "--users", "50", "--days", "20"],
    ["throughput", "--mode", "stream", "--users", "50", "--days", "1"],
]


@pytest.mark.parametrize("argv", OUT_IS_A_FILE, ids=[" ".join(a[:3]) for a in OUT_IS_A_FILE])
@pytest.mark.usefixtures("no_bench_runs")
def test_a_file_as_out_is_refused_first_by_every_bench(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("keep me\n")
    err = _usage_error(["bench", *argv, "--out", str(a_file)], capsys)
    assert err == f"baseliner: error: --out {a_file} is a file, not a directory"
    assert a_file.read_text() == "keep me\n"


NEGATIVE_SEEDS = [
    (["adbench", "--seeds", "0,-1"], "--seeds -1"),
    (["hdfs", "--seed", "-1"], "--seed -1"),
    (["nab", "--seed", "-1"], "--seed -1"),
    (["cert", "--data-dir", ".", "--seed", "-1"], "--seed -1"),
    (["lanl", "--data-dir", ".", "--seed", "-1"], "--seed -1"),
    (["synthetic", "--seed", "-1"], "--seed -1"),
    (["throughput", "--seed", "-1"], "--seed -1"),
    (["adbench", "--seeds", "4294967296"], "--seeds 4294967296"),
]


@pytest.mark.parametrize(("argv", "flag"), NEGATIVE_SEEDS)
@pytest.mark.usefixtures("no_bench_runs")
def test_a_seed_outside_numpy_s_range_is_a_usage_error(
    argv: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(["bench", *argv, "--out", str(tmp_path / "o")], capsys)
    assert f"{flag}: a seed is an integer from 0 to 4294967295" in err


@pytest.mark.parametrize("rows", ["-5", "1", "99"])
@pytest.mark.usefixtures("no_bench_runs")
def test_max_rows_below_the_minimum_is_refused_naming_it(
    rows: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(
        ["bench", "adbench", "--max-rows", rows, "--datasets", "cardio", "--out", str(tmp_path)],
        capsys,
    )
    assert f"--max-rows {rows}: give 0 (every row) or at least 100" in err


@pytest.mark.usefixtures("no_bench_runs")
def test_adbench_refuses_an_online_detector_and_synthetic_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(
        ["bench", "adbench", "--detectors", "hbos,cad", "--out", str(tmp_path)], capsys
    )
    assert "'cad' is an online detector; this bench fits batch detectors: copod," in err
    err = _usage_error(["bench", "synthetic", "--detector", "cad", "--out", str(tmp_path)], capsys)
    assert "bench synthetic: 'cad' is an online detector" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["synthetic", "--mode", "stream", "--users", "5", "--days", "20"], "--users 5:"),
        (["synthetic", "--mode", "stream", "--users", "50", "--days", "3"], "--days 3:"),
        (["throughput", "--users", "5"], "--users 5:"),
        (["throughput", "--users", "50", "--days", "13"], "--days 13:"),
    ],
)
@pytest.mark.usefixtures("no_bench_runs")
def test_generated_sizes_below_the_generator_s_minimum_are_refused(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert expected in _usage_error(["bench", *argv, "--out", str(tmp_path)], capsys)


@pytest.mark.usefixtures("no_bench_runs")
def test_every_adbench_set_name_is_checked_before_the_first_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(
        ["bench", "adbench", "--datasets", "cardio,nope,thyroid,zz", "--out", str(tmp_path)],
        capsys,
    )
    assert "bench adbench: unknown set nope, zz; choose from http, smtp," in err


def test_repeated_seeds_sets_and_detectors_run_once_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[dict[str, Any]] = []

    def record(data_dir: Any, out: Any, detectors: Any, seeds: Any, **kwargs: Any) -> Any:
        calls.append({"detectors": detectors, "seeds": seeds, **kwargs})
        return {}, "table"

    monkeypatch.setattr(benchmarks.adbench, "run_adbench", record)
    argv = ["bench", "adbench", "--seeds", "0,0,1", "--datasets", "cardio,6_cardio"]
    assert main([*argv, "--detectors", "hbos,hbos", "--out", str(tmp_path)]) == 0
    assert calls[0]["seeds"] == [0, 1]
    assert calls[0]["datasets"] == ["6_cardio"]
    assert calls[0]["detectors"] == ["hbos"]
    err = caplog.text
    assert "--seeds: seeds given more than once: 0 (each runs once)" in err
    assert "--datasets: sets given more than once: 6_cardio (each runs once)" in err


def test_hdfs_checks_deeplog_s_files_before_the_session_detectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(benchmarks.hdfs, "run_hdfs", _never)
    data = tmp_path / "hdfs_100k"
    data.mkdir()
    (data / "hdfs_100k_sessions.csv").write_text("BlockId,Label\n")
    (data / "deeplog_hdfs").mkdir()
    (data / "deeplog_hdfs" / "hdfs_test_abnormal").write_text("1 2 3\n")
    err = _usage_error(
        ["bench", "hdfs", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")], capsys
    )
    train = data / "deeplog_hdfs" / "hdfs_train"
    assert err == f"baseliner: error: {train}: no such file (DeepLog's HDFS key sequences)"


@pytest.mark.parametrize("extra", [["--detectors", "pca"], ["--seed", "3"]])
@pytest.mark.usefixtures("no_bench_runs")
def test_hdfs_parsing_refuses_the_flags_it_would_ignore(
    extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(["bench", "hdfs", "--parsing", *extra, "--out", str(tmp_path)], capsys)
    assert "--parsing measures the drain parser only; it takes no --detectors/--seed" in err


@pytest.mark.parametrize(
    "extra",
    [["--seed", "1"], ["--detector", "cad"], ["--subset", "dev"], ["--files", "a.csv"]],
)
@pytest.mark.usefixtures("no_bench_runs")
def test_check_scorer_refuses_the_flags_it_would_ignore(
    extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(["bench", "nab", "--check-scorer", *extra, "--out", str(tmp_path)], capsys)
    assert f"--check-scorer scores NAB's stored results; it takes no {extra[0]}" in err


def test_each_distinct_warning_shows_once_per_bench(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def noisy(*args: Any, **kwargs: Any) -> Any:
        fitting = logging.getLogger("models.batch.baselines")
        for _ in range(5):
            fitting.warning("robust baseline fitted without entities")
        fitting.warning("another warning")
        return {}, "table"

    monkeypatch.setattr(benchmarks.adbench, "run_adbench", noisy)
    root = logging.getLogger()
    handler = logging.StreamHandler()  # on sys.stderr as the test sees it
    root.addHandler(handler)
    try:
        assert main(["bench", "adbench", "--out", str(tmp_path)]) == 0
        err = capsys.readouterr().err
        assert err.count("robust baseline fitted without entities") == 1
        assert err.count("another warning") == 1
        # Outside a bench the filter is gone: nothing is muted for later work.
        logging.getLogger("models.batch.baselines").warning("another warning")
        assert "another warning" in capsys.readouterr().err
    finally:
        root.removeHandler(handler)
