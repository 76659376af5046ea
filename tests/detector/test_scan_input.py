"""Scan input defects: undecodable lines, files named twice, no valid events, bad Parquet."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import detector.scan
from detector.cli import main
from detector.errors import UsageError
from detector.scan import NoEventsError, ScanOptions, read_vectors, run_scan
from streams.batch import events_to_frame
from streams.event import Event

_BAD_LINE = b"{Q},01/05/2010 07:00:00,MSM3205,PC-\xe9\xff,Logon\n"


@pytest.fixture
def two_files(small_org: Path, tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("logon.csv", "device.csv"):
        shutil.copy(small_org / name, logs / name)
    return logs


@pytest.mark.slow
def test_undecodable_cert_line_is_a_dead_letter_and_strict_stops(
    two_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logon = two_files / "logon.csv"
    lines = logon.read_bytes().splitlines(keepends=True)
    # In the middle of the file, and of a middle piece: line numbers carry across pieces.
    at = len(lines) // 2
    logon.write_bytes(b"".join([*lines[:at], _BAD_LINE, *lines[at:]]))
    monkeypatch.setattr(detector.scan, "PIECE_BYTES", logon.stat().st_size // 3)
    out = tmp_path / "out"
    assert (
        main(["scan", str(two_files), "--format", "cert", "--out", str(out), "--no-progress"]) == 0
    )
    dead = [json.loads(x) for x in (out / "dead_letters.jsonl").read_text().splitlines()]
    assert dead == [
        {
            "file": str(logon),
            "line": at + 1,
            "reason": "invalid_utf8",
            "raw": "{Q},01/05/2010 07:00:00,MSM3205,PC-\ufffd\ufffd,Logon",
        }
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dead_letter_reasons"] == {"invalid_utf8": 1}
    # Every other line is read: all but the two headers and the bad line.
    n_lines = len(lines) + sum(1 for _ in (two_files / "device.csv").open("rb"))
    assert summary["events"] == n_lines - 2
    capsys.readouterr()
    strict = ["scan", str(two_files), "--format", "cert", "--out", str(tmp_path / "s"), "--strict"]
    assert main([*strict, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err == f"baseliner: data error: {logon}:{at + 1}: invalid_utf8 (--strict stops here)\n"


def test_file_named_twice_is_read_once(
    two_files: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    once = ScanOptions(inputs=(("cert", two_files),), out=tmp_path, progress=False)
    _, n_once, _, _ = read_vectors(once, tmp_path / "a")
    twice = ScanOptions(
        inputs=(
            ("cert", two_files),
            ("cert", two_files / "logon.csv"),
            ("cert", two_files / ".." / two_files.name),
        ),
        out=tmp_path,
        progress=False,
    )
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        _, n_twice, _, _ = read_vectors(twice, tmp_path / "b")
    assert n_twice == n_once
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{two_files / 'logon.csv'} names files already given ({two_files / 'logon.csv'}): "
        "each is read once",
        f"{two_files / '..' / two_files.name} names files already given "
        f"({two_files / '..' / two_files.name / 'logon.csv'}, "
        f"{two_files / '..' / two_files.name / 'device.csv'}): each is read once",
    ]


def test_all_lines_rejected_writes_dead_letters_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "logon.csv").write_text(
        "id,date,user,pc,activity\n"
        "{A},13/45/2010 10:00:00,U1,PC-1,Logon\n"
        "{B},01/02/2010 10:00:00,U1,PC-1,Teleport\n"
        "{C},01/02/2010 10:00:00,U1\n"
        "{D},bad,U1,PC-1,Logon\n"
    )
    out = tmp_path / "out"
    assert main(["scan", str(logs), "--format", "cert", "--out", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        "baseliner: error: no valid events: 4 lines rejected (bad_timestamp 2, unknown_value 1, "
        f"wrong_field_count 1); see {out / 'dead_letters.jsonl'}\n"
    )
    dead = [json.loads(x) for x in (out / "dead_letters.jsonl").read_text().splitlines()]
    assert [(d["line"], d["reason"]) for d in dead] == [
        (2, "bad_timestamp"),
        (3, "unknown_value"),
        (4, "wrong_field_count"),
        (5, "bad_timestamp"),
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events"] == 0 and summary["dead_letters"] == 4
    assert summary["dead_letter_reasons"] == {
        "bad_timestamp": 2,
        "unknown_value": 1,
        "wrong_field_count": 1,
    }


def test_a_scan_without_events_removes_an_earlier_runs_results_from_its_out(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    earlier = ["alerts.jsonl", "entities.csv", "windows.parquet", "report.md", "report.html"]
    for name in [*earlier, "plots/U1.png"]:
        (out / name).write_text("from an earlier run")
    (out / "notes.txt").write_text("the user's own")
    logs = tmp_path / "events.jsonl"
    logs.write_text("not json\n")
    assert main(["scan", str(logs), "--format", "jsonl", "--out", str(out), "--no-progress"]) == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "dead_letters.jsonl",
        "notes.txt",
        "plots",
        "summary.json",
    ]
    assert list((out / "plots").iterdir()) == []


def test_empty_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "events.jsonl"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    assert main(["scan", str(empty), "--format", "jsonl", "--out", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err == f"baseliner: error: no events in {empty}\n"
    with pytest.raises(NoEventsError) as raised:
        run_scan(ScanOptions(inputs=(("jsonl", empty),), out=out, progress=False))
    assert raised.value.rejects.height == 0


def _events_frame() -> pl.DataFrame:
    return events_to_frame(
        [
            Event(datetime(2010, 1, 4, 9, tzinfo=UTC), "edr", "logon", user="u1", host="h1"),
            Event(datetime(2010, 1, 5, 9, tzinfo=UTC), "edr", "logon", user="u2", host="h1"),
        ]
    )


@pytest.mark.parametrize(
    ("write", "problem"),
    [
        (lambda p: p.write_bytes(b"garbage\n"), "not a readable Parquet file ("),
        (lambda p: _events_frame().drop("action").write_parquet(p), "no column action ("),
        (lambda p: _events_frame().drop("user").write_parquet(p), "no column user ("),
        (
            lambda p: _events_frame().with_columns(pl.col("ts").cast(pl.String())).write_parquet(p),
            "column ts is String, expected a datetime",
        ),
    ],
)
def test_bad_parquet_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write: object, problem: str
) -> None:
    path = tmp_path / "events.parquet"
    write(path)  # type: ignore[operator]
    out = tmp_path / "out"
    assert main(["scan", str(path), "--format", "parquet", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"baseliner: error: {path}: {problem}")
    assert err.count("\n") == 1


def test_parquet_corrupt_past_its_footer_is_one_line(tmp_path: Path) -> None:
    users = pl.Series("user", [f"user{i * 7919 % 100_003}" for i in range(100_000)])
    frame = pl.concat([_events_frame()] * 50_000).with_columns(users)
    path = tmp_path / "events.parquet"
    frame.write_parquet(path, compression="zstd")
    data = bytearray(path.read_bytes())
    # Pages only: the footer (the schema) stays readable.
    for i in range(8, len(data) // 4):
        data[i] = 0x55
    path.write_bytes(bytes(data))
    opts = ScanOptions(inputs=(("parquet", path),), out=tmp_path / "out", progress=False)
    with pytest.raises(UsageError, match=rf"^{path}: cannot read as parquet: "):
        read_vectors(opts, tmp_path / "spool")


def test_an_online_detector_is_refused_by_the_scan_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "events.jsonl"
    logs.write_text("{}\n")
    out = tmp_path / "out"
    args = ["scan", str(logs), "--format", "jsonl", "--out", str(out), "--detector", "cad"]
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("baseliner: error: --detector 'cad' is an online detector; the scan")
    assert "robust" in err and not out.exists()


def test_a_piece_with_room_for_a_long_last_line_stays_under_32_mib() -> None:
    # glibc's malloc maps a block over 32 MiB afresh each time: every piece read would fault
    # its pages in again (see PIECE_BYTES).
    assert detector.scan.PIECE_BYTES + (1 << 20) <= 32 << 20
