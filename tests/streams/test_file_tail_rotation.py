"""File tails across rotation while stopped, rewrites past the old size, and glob identity.

A restart finds a file rotated while the daemon was down by device, inode and fingerprint and
finishes it; a file truncated and written again past the saved offset is read from its start;
a glob follows files by identity (a rename is the same file) and lets go of deleted ones.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
from pathlib import Path

import pytest

from streams.sources import FilePosition, FileTailSource, GlobTailSource


def write(path: Path, text: str, mode: str = "a") -> None:
    with path.open(mode) as fh:
        fh.write(text)


def lines(prefix: str, first: int, last: int) -> str:
    return "".join(f"{prefix}-{i}\n" for i in range(first, last + 1))


def read_all(source: FileTailSource | GlobTailSource) -> list[str]:
    return [r.text for r in source.read()]


def read_all_blocks(source: FileTailSource | GlobTailSource) -> list[str]:
    return [r.text for piece in source.read_blocks(10_000) for r in piece]


def open_paths() -> list[str]:
    """What this process's descriptors point at (Linux)."""
    folder = Path("/proc/self/fd")
    found = []
    for entry in folder.iterdir():
        try:
            found.append(os.readlink(entry))
        except OSError:
            continue
    return found


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


# -- rename-and-create while stopped -------------------------------------------------------------


@pytest.mark.parametrize("rotated_name", ["a.log.1", "a.log-20240101", "a.log.0"])
@pytest.mark.parametrize("reader", [read_all, read_all_blocks])
def test_a_file_rotated_while_stopped_is_finished_before_the_new_one(
    tmp_path: Path, rotated_name: str, reader: object
) -> None:
    log = tmp_path / "a.log"
    write(log, lines("old", 1, 3))
    tail = FileTailSource(log)
    assert read_all(tail) == ["old-1", "old-2", "old-3"]
    state = tail.snapshot()
    tail.close()
    write(log, lines("old", 4, 5))  # written after the last checkpoint, never read
    os.rename(log, tmp_path / rotated_name)
    write(log, lines("new", 1, 2), mode="w")
    resumed = FileTailSource(log, resume_state=state)
    assert callable(reader)
    assert reader(resumed) == ["old-4", "old-5", "new-1", "new-2"]
    assert resumed.rotations == 1 and resumed.truncations == 0
    assert resumed.snapshot() == FilePosition(str(log), log.stat().st_ino, 12, 2)


def test_a_crash_after_a_rotation_reads_again_from_the_checkpointed_file(tmp_path: Path) -> None:
    # kill -9: everything read since the last checkpoint is read again, from the old file.
    log = tmp_path / "a.log"
    write(log, lines("old", 1, 2))
    tail = FileTailSource(log)
    assert read_all_blocks(tail) == ["old-1", "old-2"]
    checkpoint = tail.snapshot()
    write(log, lines("old", 3, 4))
    os.rename(log, tmp_path / "a.log.1")
    write(log, lines("new", 1, 1), mode="w")
    assert read_all_blocks(tail) == ["old-3", "old-4", "new-1"]  # then the crash
    write(log, lines("new", 2, 2))
    resumed = FileTailSource(log, resume_state=checkpoint)
    assert read_all_blocks(resumed) == ["old-3", "old-4", "new-1", "new-2"]


def test_a_rotated_file_whose_path_is_not_recreated_yet_is_finished_and_then_the_new_one(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.log"
    write(log, lines("old", 1, 1))
    tail = FileTailSource(log)
    assert read_all(tail) == ["old-1"]
    state = tail.snapshot()
    write(log, lines("old", 2, 2))
    os.rename(log, tmp_path / "a.log.1")
    resumed = FileTailSource(log, resume_state=state)
    assert read_all(resumed) == ["old-2"]
    write(log, lines("new", 1, 1), mode="w")
    assert read_all(resumed) == ["new-1"]


def test_a_sibling_with_the_inode_but_not_the_fingerprint_is_not_taken(tmp_path: Path) -> None:
    # Inodes are reused: the same inode with other first bytes is another file.
    log = tmp_path / "a.log"
    write(log, lines("old", 1, 2))
    tail = FileTailSource(log)
    assert read_all(tail) == ["old-1", "old-2"]
    state = dataclasses.replace(tail.snapshot(), head=b"another file's first bytes")
    tail.close()
    write(log, lines("old", 3, 3))
    os.rename(log, tmp_path / "a.log.1")
    write(log, lines("new", 1, 1), mode="w")
    assert read_all(FileTailSource(log, resume_state=state)) == ["new-1"]


def test_a_sibling_that_only_starts_with_another_name_is_not_searched(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, lines("old", 1, 1))
    tail = FileTailSource(log)
    assert read_all(tail) == ["old-1"]
    state = tail.snapshot()
    write(log, lines("old", 2, 2))
    os.rename(log, tmp_path / "b.log")  # not a.log*: not a rotation of a.log
    write(log, lines("new", 1, 1), mode="w")
    assert read_all(FileTailSource(log, resume_state=state)) == ["new-1"]


# -- states of earlier versions and of other source types ----------------------------------------


def old_position(path: str, inode: int, offset: int, line: int) -> FilePosition:
    """A position as an earlier version's checkpoint unpickles it (four fields)."""
    position = object.__new__(FilePosition)
    position.__setstate__([path, inode, offset, line])
    return position


def test_a_position_pickles_and_an_earlier_versions_loads_with_unknown_fingerprints(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.log"
    write(log, "x" * 2000 + "\n")
    tail = FileTailSource(log)
    assert len(read_all(tail)) == 1
    position = tail.snapshot()
    assert len(position.head) == len(position.tail) == 16 and position.device >= 0
    again = pickle.loads(pickle.dumps(position))
    assert (again.device, again.head, again.tail) == (position.device, position.head, position.tail)
    old = old_position(str(log), 7, 12, 3)
    assert (old.path, old.inode, old.offset, old.line) == (str(log), 7, 12, 3)
    assert (old.device, old.head, old.tail) == (-1, b"", b"")


def test_an_earlier_versions_state_resumes_and_finds_the_rotated_file_by_inode(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.log"
    write(log, lines("old", 1, 3))
    inode = log.stat().st_ino
    same = FileTailSource(log, resume_state=old_position(str(log), inode, 12, 2))
    assert read_all(same) == ["old-3"]
    write(log, lines("old", 4, 4))
    os.rename(log, tmp_path / "a.log.1")
    write(log, lines("new", 1, 1), mode="w")
    state = old_position(str(log), inode, same.snapshot().offset, 3)
    assert read_all(FileTailSource(log, resume_state=state)) == ["old-4", "new-1"]


@pytest.mark.parametrize("state", [17, "junk", None, {"other.log": 3}])
def test_a_state_of_another_shape_reads_from_the_start(tmp_path: Path, state: object) -> None:
    log = tmp_path / "a.log"
    write(log, lines("l", 1, 2))
    tail = FileTailSource(log, resume_state=state)  # type: ignore[arg-type]
    assert read_all(tail) == ["l-1", "l-2"]


def test_a_negative_saved_offset_reads_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, lines("l", 1, 2))
    state = FilePosition(str(log), log.stat().st_ino, -4, 1)
    assert read_all(FileTailSource(log, resume_state=state)) == ["l-1", "l-2"]


def test_a_tail_that_had_no_file_open_resumes_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "a.log"
    empty = FileTailSource(log).snapshot()
    assert empty == FilePosition(str(log), -1, 0, 0)
    write(log, lines("l", 1, 1))
    with caplog.at_level("INFO", logger="streams.sources.file_tail"):
        assert read_all(FileTailSource(log, resume_state=empty)) == ["l-1"]
    assert caplog.records == []


def test_a_globs_state_resumes_the_single_file_it_holds(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, lines("l", 1, 2))
    tails = GlobTailSource(str(tmp_path / "*.log"))
    assert read_all(tails) == ["l-1", "l-2"]
    write(log, lines("l", 3, 3))
    tail = FileTailSource(log, resume_state=tails.snapshot())  # type: ignore[arg-type]
    assert read_all(tail) == ["l-3"]


# -- copytruncate past the old size ------------------------------------------------------------


def copytruncate(log: Path, text: str) -> None:
    shutil.copy(log, log.with_name(log.name + ".1"))
    with log.open("r+") as fh:
        fh.truncate(0)
    write(log, text)


def test_copytruncate_while_stopped_with_longer_content_reads_the_new_file_whole(
    tmp_path: Path,
) -> None:
    log = tmp_path / "c.log"
    write(log, lines("c0", 1, 10))
    tail = FileTailSource(log)
    assert len(read_all(tail)) == 10
    state = tail.snapshot()
    tail.close()
    copytruncate(log, lines("c-new-and-longer", 1, 12))
    resumed = FileTailSource(log, resume_state=state)
    assert read_all_blocks(resumed) == [f"c-new-and-longer-{i}" for i in range(1, 13)]
    assert resumed.truncations == 1 and resumed.rotations == 0


@pytest.mark.parametrize("reader", [read_all, read_all_blocks])
def test_copytruncate_while_running_regrown_past_the_offset_restarts_at_0(
    tmp_path: Path, reader: object
) -> None:
    log = tmp_path / "c.log"
    write(log, lines("c0", 1, 3))
    tail = FileTailSource(log)
    assert callable(reader)
    assert reader(tail) == ["c0-1", "c0-2", "c0-3"]
    copytruncate(log, lines("big-and-longer", 1, 5))
    assert reader(tail) == [f"big-and-longer-{i}" for i in range(1, 6)]
    assert tail.truncations == 1
    write(log, lines("big-and-longer", 6, 6))
    assert reader(tail) == ["big-and-longer-6"]
    assert tail.truncations == 1


def test_a_rewrite_to_the_same_size_is_seen_by_its_modification_time(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write(log, "aaaa\n")
    tail = FileTailSource(log)
    assert read_all_blocks(tail) == ["aaaa"]
    before = log.stat().st_mtime_ns
    write(log, "bbbb\n", mode="w")
    os.utime(log, ns=(before + 10**9, before + 10**9))  # a clock tick apart, whatever the fs
    write(log, "cccc\n")
    assert read_all_blocks(tail) == ["bbbb", "cccc"]
    assert tail.truncations == 1


def test_appends_over_many_reads_are_never_taken_for_a_rewrite(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    tail = FileTailSource(log)
    got: list[str] = []
    for i in range(300):  # lines shorter and longer than the fingerprints' spans
        write(log, f"{i}-" + "y" * (i * 7 % 1500) + "\n")
        got.extend(r.text.split("-")[0] for r in tail.read_batch(2))
    assert got == [str(i) for i in range(300)] and tail.truncations == 0
    again = FileTailSource(log, resume_state=tail.snapshot())
    write(log, "last\n")
    assert read_all(again) == ["last"] and again.truncations == 0


def test_a_resume_at_the_same_file_with_other_first_bytes_reads_from_the_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "c.log"
    write(log, lines("first", 1, 2))
    tail = FileTailSource(log)
    assert read_all(tail) == ["first-1", "first-2"]
    state = tail.snapshot()
    write(log, lines("other", 1, 3), mode="w")  # same inode, rewritten
    resumed = FileTailSource(log, resume_state=state)
    assert read_all(resumed) == ["other-1", "other-2", "other-3"]
    assert resumed.truncations == 1


# -- a deleted single file ---------------------------------------------------------------------


@needs_proc
def test_a_deleted_file_is_read_to_its_end_and_closed(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, lines("l", 1, 1))
    tail = FileTailSource(log)
    assert read_all_blocks(tail) == ["l-1"]
    write(log, "l-2\nl-3 partial")
    log.unlink()
    assert read_all_blocks(tail) == ["l-2", "l-3 partial"]
    assert not [p for p in open_paths() if p.startswith(str(log))]
    assert tail.snapshot() == FilePosition(str(log), -1, 0, 0)
    write(log, lines("again", 1, 1))
    assert read_all_blocks(tail) == ["again-1"]


# -- globs follow files by identity ------------------------------------------------------------


@pytest.mark.parametrize("reader", [read_all, read_all_blocks])
def test_a_glob_takes_a_rename_inside_the_pattern_for_the_same_file(
    tmp_path: Path, reader: object
) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    log = folder / "x.log"
    write(log, lines("g0", 1, 10))
    tails = GlobTailSource(str(folder / "*"))
    assert callable(reader)
    assert len(reader(tails)) == 10
    write(log, lines("g0", 11, 11))
    os.rename(log, folder / "x.log.1")
    write(log, lines("g1", 1, 3), mode="w")
    assert reader(tails) == ["g0-11", "g1-1", "g1-2", "g1-3"]
    snapshot = tails.snapshot()
    assert sorted(snapshot) == [str(log), str(folder / "x.log.1")]
    assert snapshot[str(folder / "x.log.1")].line == 11
    assert reader(tails) == []


@needs_proc
def test_a_glob_closes_and_forgets_a_deleted_file_after_reading_it(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    write(folder / "a.log", lines("a", 1, 1))
    write(folder / "b.log", lines("b", 1, 1))
    tails = GlobTailSource(str(folder / "*.log"))
    assert read_all_blocks(tails) == ["a-1", "b-1"]
    write(folder / "a.log", "a-2\na-3 partial")
    (folder / "a.log").unlink()
    assert read_all_blocks(tails) == ["a-2", "a-3 partial"]
    assert list(tails.snapshot()) == [str(folder / "b.log")]
    assert not [p for p in open_paths() if p.startswith(str(folder / "a.log"))]
    write(folder / "a.log", lines("a-again", 1, 1))  # a new file under the old name
    assert read_all(tails) == ["a-again-1"]


def test_a_glob_finishes_a_file_renamed_out_of_the_pattern_then_forgets_it(
    tmp_path: Path,
) -> None:
    log = tmp_path / "x.log"
    write(log, lines("old", 1, 1))
    tails = GlobTailSource(str(tmp_path / "*.log"))
    assert read_all(tails) == ["old-1"]
    write(log, lines("old", 2, 3))
    os.rename(log, tmp_path / "x.log.1")
    write(log, lines("new", 1, 1), mode="w")
    assert read_all_blocks(tails) == ["old-2", "old-3", "new-1"]
    assert list(tails.snapshot()) == [str(log)]
    assert tails.snapshot()[str(log)].inode == log.stat().st_ino


def test_a_glob_bounded_mid_rotation_keeps_both_files_in_its_state(tmp_path: Path) -> None:
    # The renamed-away file is not finished yet and keeps its old name in the snapshot; the
    # new file under that name must not overwrite its entry.
    log = tmp_path / "x.log"
    write(log, lines("old", 1, 1))
    tails = GlobTailSource(str(tmp_path / "*.log"))
    assert read_all(tails) == ["old-1"]
    write(log, lines("old", 2, 4))
    os.rename(log, tmp_path / "x.log.1")
    write(log, lines("new", 1, 1), mode="w")
    assert [r.text for piece in tails.read_blocks(2) for r in piece] == ["old-2", "old-3"]
    state = tails.snapshot()
    assert sorted((p.path, p.line) for p in state.values()) == [(str(log), 0), (str(log), 3)]
    resumed = GlobTailSource(str(tmp_path / "*.log"), resume_state=state)
    assert read_all(resumed) == ["old-4", "new-1"]


def test_a_glob_resumes_files_renamed_inside_and_out_of_the_pattern_while_stopped(
    tmp_path: Path,
) -> None:
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    write(inside / "x.log", lines("in-old", 1, 1))
    write(outside / "y.log", lines("out-old", 1, 1))
    within = GlobTailSource(str(inside / "*"))
    without = GlobTailSource(str(outside / "*.log"))
    assert read_all(within) == ["in-old-1"] and read_all(without) == ["out-old-1"]
    states = within.snapshot(), without.snapshot()
    for folder, name, prefix in ((inside, "x.log", "in"), (outside, "y.log", "out")):
        write(folder / name, lines(f"{prefix}-old", 2, 2))
        os.rename(folder / name, folder / f"{name}.1")
        write(folder / name, lines(f"{prefix}-new", 1, 1), mode="w")
    within = GlobTailSource(str(inside / "*"), resume_state=states[0])
    without = GlobTailSource(str(outside / "*.log"), resume_state=states[1])
    assert read_all(within) == ["in-old-2", "in-new-1"]
    assert read_all_blocks(without) == ["out-old-2", "out-new-1"]
    assert list(without.snapshot()) == [str(outside / "y.log")]


def test_a_glob_resumes_an_earlier_versions_state_and_drops_files_gone(tmp_path: Path) -> None:
    write(tmp_path / "a.log", lines("a", 1, 2))
    write(tmp_path / "b.log", lines("b", 1, 1))
    state = {
        str(tmp_path / "a.log"): old_position(
            str(tmp_path / "a.log"), (tmp_path / "a.log").stat().st_ino, 4, 1
        ),
        str(tmp_path / "gone.log"): old_position(str(tmp_path / "gone.log"), 999_999_999, 9, 3),
        str(tmp_path / "never.log"): old_position(str(tmp_path / "never.log"), -1, 0, 0),
    }
    tails = GlobTailSource(str(tmp_path / "*.log"), resume_state=state)
    assert read_all(tails) == ["a-2", "b-1"]
    assert sorted(tails.snapshot()) == [str(tmp_path / "a.log"), str(tmp_path / "b.log")]


@pytest.mark.parametrize("state", [17, FilePosition("nowhere.log", 5, 3, 1)])
def test_a_glob_with_a_state_of_another_shape_reads_every_match(
    tmp_path: Path, state: object
) -> None:
    write(tmp_path / "a.log", lines("a", 1, 1))
    tails = GlobTailSource(str(tmp_path / "*.log"), resume_state=state)  # type: ignore[arg-type]
    assert read_all(tails) == ["a-1"]
