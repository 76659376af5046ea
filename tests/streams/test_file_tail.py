"""File tails follow appends and both kinds of rotation, and resume without loss or repeats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.sources import FileTailSource, GlobTailSource, file_tail


def write(path: Path, text: str, mode: str = "a") -> None:
    with path.open(mode) as fh:
        fh.write(text)


def texts(source: FileTailSource | GlobTailSource) -> list[str]:
    return [r.text for r in source.read()]


def test_appends_and_partial_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    tail = FileTailSource(log)
    assert texts(tail) == []  # not there yet
    write(log, "1\n2\n3")
    assert texts(tail) == ["1", "2"]
    write(log, "\n4\r\n")
    records = list(tail.read())
    assert [(r.text, r.line, r.offset) for r in records] == [("3", 3, 6), ("4", 4, 9)]
    assert tail.snapshot().offset == 9 == log.stat().st_size


def test_rename_and_create_rotation_reads_the_old_file_to_its_end(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, "old-1\n")
    tail = FileTailSource(log)
    assert texts(tail) == ["old-1"]
    write(log, "old-2\n")  # written just before rotation, not yet read
    os.rename(log, tmp_path / "a.log.1")
    write(log, "new-1\nnew-2\n", mode="w")
    assert texts(tail) == ["old-2", "new-1", "new-2"]
    assert tail.rotations == 1
    assert tail.snapshot().line == 2


def test_copytruncate_restarts_at_the_beginning(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, "a\nb\nc\n")
    tail = FileTailSource(log)
    assert texts(tail) == ["a", "b", "c"]
    with log.open("r+") as fh:
        fh.truncate(0)
    write(log, "d\n")
    assert texts(tail) == ["d"]
    assert tail.truncations == 1


def test_restart_from_snapshot_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, "".join(f"{i}\n" for i in range(100)))
    first = FileTailSource(log)
    seen = []
    for record in first.read():
        seen.append(record.text)
        if len(seen) == 37:
            break
    state = first.snapshot()
    first.close()
    write(log, "100\n")
    second = FileTailSource(log, resume_state=state)
    seen += texts(second)
    assert seen == [str(i) for i in range(101)]


def test_restart_after_rotation_while_down_reads_the_new_file(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, "x\n")
    tail = FileTailSource(log)
    assert texts(tail) == ["x"]
    state = tail.snapshot()
    tail.close()
    os.rename(log, tmp_path / "a.log.1")
    write(log, "y\n", mode="w")
    resumed = FileTailSource(log, resume_state=state)
    assert texts(resumed) == ["y"]


def test_glob_follows_new_files_and_resumes_each(tmp_path: Path) -> None:
    write(tmp_path / "a.log", "a1\n")
    tails = GlobTailSource(str(tmp_path / "*.log"))
    assert texts(tails) == ["a1"]
    write(tmp_path / "b.log", "b1\n")
    write(tmp_path / "a.log", "a2\n")
    assert sorted(texts(tails)) == ["a2", "b1"]
    state = tails.snapshot()
    write(tmp_path / "b.log", "b2\n")
    again = GlobTailSource(str(tmp_path / "*.log"), resume_state=state)
    assert texts(again) == ["b2"]
    assert again.lag_bytes == 0


def test_blocks_cut_inside_a_read_chunk_hand_on_exact_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reads of 4 bytes: the lines straddle chunks and each block's last line ends inside one.
    monkeypatch.setattr(file_tail, "_BATCH_CHUNK", 4)
    log = tmp_path / "a.log"
    write(log, "one\ntwo\nthree\nfour\npart")
    tail = FileTailSource(log)
    first = tail.read_blocks(2)
    assert [b.data for b in first] == [b"one\ntwo\n"]  # type: ignore[attr-defined]
    assert tail.snapshot().offset == 8
    second = tail.read_blocks(5)
    assert [b.data for b in second] == [b"three\nfour\n"]  # type: ignore[attr-defined]
    assert [(r.text, r.line, r.offset) for r in second[0]] == [("three", 3, 14), ("four", 4, 19)]
    write(log, "ial\n")
    assert [[r.text for r in b] for b in tail.read_blocks(5)] == [["partial"]]
    assert tail.snapshot().offset == log.stat().st_size == 27
