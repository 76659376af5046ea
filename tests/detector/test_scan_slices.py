"""The scan evaluates features one time slice at a time: the same vectors as the whole range."""

from __future__ import annotations

import logging
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from detector.errors import UsageError
from detector.scan import DataError, ScanOptions, read_vectors, run_scan

#: Days of the small organisation kept: three weekly slices, enough to cut through history.
_DAYS = 21


@pytest.fixture(scope="module")
def short_org(
    small_org: Path, small_org_manifest: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The first three weeks of the small organisation (every file is in time order)."""
    out = tmp_path_factory.mktemp("short") / "org"
    out.mkdir()
    epoch = datetime.fromisoformat(small_org_manifest["lanl_epoch"]).astimezone(UTC)
    cutoff = epoch + timedelta(days=_DAYS)
    for name in ("logon.csv", "device.csv", "file.csv", "email.csv", "http.csv"):
        header, *lines = (small_org / name).read_text().splitlines(keepends=True)
        kept = [
            line
            for line in lines
            if datetime.strptime(line.split(",", 2)[1], "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
            < cutoff
        ]
        (out / name).write_text(header + "".join(kept))
    auth = (small_org / "auth.txt").read_text().splitlines(keepends=True)
    (out / "auth.txt").write_text(
        "".join(line for line in auth if int(line.split(",", 1)[0]) < _DAYS * 86_400)
    )
    return out


def _vectors(
    inputs: tuple[tuple[str, Path], ...], spool: Path, **options: Any
) -> tuple[pl.DataFrame, int]:
    opts = ScanOptions(inputs=inputs, out=spool.parent, progress=False, **options)
    vectors, n_events, _, _ = read_vectors(opts, spool)
    return vectors, n_events


@pytest.mark.slow
def test_slices_give_exactly_the_whole_range_vectors(
    short_org: Path, small_org_manifest: dict[str, Any], tmp_path: Path
) -> None:
    epoch = datetime.fromisoformat(small_org_manifest["lanl_epoch"]).astimezone(UTC)
    inputs = (("cert", short_org), ("lanl", short_org / "auth.txt"))
    whole, n_events = _vectors(inputs, tmp_path / "a", slice_days=None, lanl_epoch=epoch)
    assert whole["window_start"].n_unique() == _DAYS
    assert whole["n_events"].sum() == n_events
    sliced, _ = _vectors(inputs, tmp_path / "b", slice_days=7, lanl_epoch=epoch)
    assert_frame_equal(sliced, whole)


@pytest.mark.slow
def test_hourly_slices_give_exactly_the_whole_range_vectors(
    short_org: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("logon.csv", "device.csv", "file.csv"):
        shutil.copy(short_org / name, logs / name)
    inputs = (("cert", logs),)
    whole, _ = _vectors(inputs, tmp_path / "a", slice_days=None, window="1h")
    sliced, _ = _vectors(inputs, tmp_path / "b", slice_days=3, window="1h")
    # Hourly windows: slices of three days cut between many windows of activity.
    assert whole["window_start"].n_unique() > 10 * _DAYS
    assert_frame_equal(sliced, whole)


def test_a_file_out_of_time_order_is_evaluated_whole_and_named(
    short_org: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ordered = tmp_path / "ordered"
    shuffled = tmp_path / "shuffled"
    for folder in (ordered, shuffled):
        folder.mkdir()
        shutil.copy(short_org / "device.csv", folder / "device.csv")
    shutil.copy(short_org / "logon.csv", ordered / "logon.csv")
    header, *lines = (short_org / "logon.csv").read_text().splitlines(keepends=True)
    random.Random(5).shuffle(lines)
    (shuffled / "logon.csv").write_text(header + "".join(lines))

    expected, _ = _vectors((("cert", ordered),), tmp_path / "a")
    with caplog.at_level(logging.INFO, logger="detector.scan"):
        got, _ = _vectors((("cert", shuffled),), tmp_path / "b")
    assert_frame_equal(got, expected)
    messages = [r.getMessage() for r in caplog.records if "not in time order" in r.getMessage()]
    assert len(messages) == 1
    assert str(shuffled / "logon.csv") in messages[0]
    assert "device.csv" not in messages[0]


def test_a_slice_shorter_than_a_day_is_refused(small_org: Path, tmp_path: Path) -> None:
    opts = ScanOptions(inputs=(("cert", small_org),), out=tmp_path, slice_days=0, progress=False)
    with pytest.raises(UsageError, match="slice of 0 days"):
        run_scan(opts)


def test_small_pieces_give_the_same_vectors_and_dead_letters(
    short_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(short_org / "device.csv", logs / "device.csv")
    header, *lines = (short_org / "logon.csv").read_text().splitlines(keepends=True)
    middle = len(lines) // 2
    bad = "{BAD-1},02/01/2010 10:00:00,XYZ0001,PC-1,Teleport\n"
    (logs / "logon.csv").write_text(
        header + "".join(lines[:middle]) + bad + "".join(lines[middle:])
    )
    opts = ScanOptions(inputs=(("cert", logs),), out=tmp_path, progress=False)
    whole, n_whole, rejects_whole, _ = read_vectors(opts, tmp_path / "a")
    monkeypatch.setattr("detector.scan.PIECE_BYTES", 4096)
    pieced, n_pieced, rejects_pieced, _ = read_vectors(opts, tmp_path / "b")
    assert len(list((tmp_path / "b").glob("part-0000-*.parquet"))) > 10
    assert n_pieced == n_whole == len(lines) + (sum(1 for _ in (logs / "device.csv").open()) - 1)
    assert_frame_equal(pieced, whole)
    assert_frame_equal(rejects_pieced, rejects_whole)
    # The header is line 1, so the bad line inserted after `middle` lines is line middle + 2.
    assert rejects_pieced.select("line", "reason").rows() == [(middle + 2, "unknown_value")]


def test_json_lines_in_small_pieces_give_the_same_vectors_and_dead_letters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.stream_bench import generate_lines

    source = tmp_path / "gen.jsonl"
    n_events = generate_lines(source, users=6, days=3, rate=4, seed=2)
    lines = source.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    logs = tmp_path / "events.jsonl"
    logs.write_bytes(b"".join([*lines[:middle], b"{oops\r\n", b"\n", *lines[middle:]]))
    opts = ScanOptions(inputs=(("jsonl", logs),), out=tmp_path, progress=False)
    whole, n_whole, rejects_whole, _ = read_vectors(opts, tmp_path / "a")
    monkeypatch.setattr("detector.scan.JSONL_PIECE_BYTES", 2048)
    pieced, n_pieced, rejects_pieced, _ = read_vectors(opts, tmp_path / "b")
    assert len(list((tmp_path / "b").glob("part-0000-*.parquet"))) > 10
    assert n_pieced == n_whole == n_events
    assert whole["window_start"].n_unique() == 3
    assert_frame_equal(pieced, whole)
    assert_frame_equal(rejects_pieced, rejects_whole)
    assert rejects_pieced.select("line", "reason", "raw").rows() == [
        (middle + 1, "bad_json", "{oops")
    ]


def test_pieces_read_two_at_a_time_spool_what_one_at_a_time_spools(
    short_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    header, *lines = (short_org / "logon.csv").read_text().splitlines(keepends=True)
    bad = ["{BAD-1},02/01/2010 10:00:00,XYZ0001,PC-1,Teleport\n", "{BAD-2},oops\n"]
    third = len(lines) // 3
    (logs / "logon.csv").write_text(
        header
        + "".join(lines[:third])
        + bad[0]
        + "".join(lines[third : 2 * third])
        + bad[1]
        + "".join(lines[2 * third :])
    )
    shutil.copy(short_org / "device.csv", logs / "device.csv")
    opts = ScanOptions(inputs=(("cert", logs),), out=tmp_path, progress=False)
    monkeypatch.setattr("detector.scan.PIECE_BYTES", 4096)
    monkeypatch.setattr("detector.scan.READ_WORKERS", 1)
    one, n_one, rejects_one, _ = read_vectors(opts, tmp_path / "one")
    monkeypatch.setattr("detector.scan.READ_WORKERS", 2)
    two, n_two, rejects_two, _ = read_vectors(opts, tmp_path / "two")
    parts = sorted(p.name for p in (tmp_path / "one").glob("*.parquet"))
    assert len(parts) > 10
    assert sorted(p.name for p in (tmp_path / "two").glob("*.parquet")) == parts
    for name in parts:
        assert_frame_equal(
            pl.read_parquet(tmp_path / "two" / name), pl.read_parquet(tmp_path / "one" / name)
        )
    assert n_two == n_one == len(lines) + sum(1 for _ in (logs / "device.csv").open()) - 1
    assert_frame_equal(two, one)
    assert_frame_equal(rejects_two, rejects_one)
    # The header is line 1, so the bad lines are lines third + 2 and 2 * third + 3.
    assert rejects_two.select("line", "reason").rows() == [
        (third + 2, "unknown_value"),
        (2 * third + 3, "wrong_field_count"),
    ]
    strict = ScanOptions(inputs=(("cert", logs),), out=tmp_path, progress=False, strict=True)
    with pytest.raises(DataError, match=rf"logon.csv:{third + 2}: unknown_value"):
        read_vectors(strict, tmp_path / "strict")
