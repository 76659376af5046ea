"""Tail files like a collector does: follow appends and rotation, resume exactly.

Rotation comes in two flavours and both are followed:

- rename-and-create (logrotate's default): the path now names a new file (another inode).
  The old file is read to its end first, through the handle still open on it, then the new
  file from its start.
- copytruncate: the same file is emptied and written again. Reading restarts at offset 0
  when the file is shorter than the position read so far, or when the bytes just before
  that position are no longer the ones read there (it was rewritten past the old size).

A last line without its newline is held back until it is complete, so a record is never
split. Positions are byte offsets of complete lines; ``snapshot()`` is taken between reads.

A position names its file by device and inode and by fingerprints of its content (a hash of
the file's first bytes: inodes are reused; and of the bytes just before the offset), so a
restart finds it wherever it was rotated to while the daemon was down, as Filebeat and
Fluent Bit do: a file renamed in the same folder under a name that starts with the followed
one (``auth.log.1``, ``auth.log-20240101``) is read on from the saved position, then the
file now at the path from its start.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from streams.sources.base import RawRecord
from streams.sources.blocks import RecordBlock

logger = logging.getLogger(__name__)

_CHUNK = 1 << 16
#: Bytes per read of a block; the reads past the block's last line are read again next
#: time, so they are kept small.
_BATCH_CHUNK = 1 << 18
_NEWLINE = 10
#: Bytes of a file's start whose hash identifies it beside its inode (inodes are reused).
_HEAD_BYTES = 1024
#: Bytes just before the position whose hash confirms the file was not rewritten under it.
_TAIL_BYTES = 256


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class FilePosition:
    """Where a tail is in one file: the file's identity, the byte offset and the line count.

    ``device``, ``head`` and ``tail`` check the identity on resume and take no part in
    equality: ``head`` hashes the file's first ``min(1024, offset)`` bytes, ``tail`` the
    ``min(256, offset)`` bytes before ``offset`` (empty: unknown, not checked; so are they
    in the positions of earlier versions, and ``device`` is -1).

    Examples
    --------
    >>> position = FilePosition(path="/var/log/auth.log", inode=42, offset=0, line=0)
    >>> position.offset, position.device, position.head
    (0, -1, b'')
    >>> position == FilePosition("/var/log/auth.log", 42, 0, 0, device=7, head=b"x")
    True
    """

    path: str
    inode: int
    offset: int
    line: int
    device: int = field(default=-1, compare=False)
    head: bytes = field(default=b"", compare=False)
    tail: bytes = field(default=b"", compare=False)

    def __setstate__(self, state: Sequence[Any]) -> None:
        # A checkpoint of an earlier version pickled the first four fields only.
        values = dict(zip((f.name for f in fields(self)), state, strict=False))
        for item in fields(self):
            object.__setattr__(self, item.name, values.get(item.name, item.default))


def _usable(position: object) -> bool:
    return (
        isinstance(position, FilePosition)
        and position.inode >= 0
        and position.offset >= 0
        and position.line >= 0
    )


def _position_of(state: object, path: str) -> FilePosition | None:
    """The saved position of ``path`` in a resume state of any earlier shape, else None."""
    if isinstance(state, FilePosition):
        return state if _usable(state) else None
    if isinstance(state, dict):  # the source was a glob before: its entry for this path
        found = [p for p in state.values() if _usable(p) and p.path == path]
        return found[0] if found else None
    return None


def _open_if_same(path: str, position: FilePosition) -> BinaryIO | None:
    """A handle on ``path`` if it is the file ``position`` was taken in, else None."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    if not _same_inode(status, position) or not stat.S_ISREG(status.st_mode):
        return None
    try:
        handle = open(path, "rb")  # noqa: SIM115 - the tail keeps it open
    except OSError:
        return None
    if not _same_inode(os.fstat(handle.fileno()), position) or not _same_head(handle, position):
        handle.close()
        return None
    return handle


def _same_inode(status: os.stat_result, position: FilePosition) -> bool:
    return status.st_ino == position.inode and position.device in (-1, status.st_dev)


def _same_head(handle: BinaryIO, position: FilePosition) -> bool:
    if not position.head:
        return True
    head = os.pread(handle.fileno(), min(_HEAD_BYTES, position.offset), 0)
    return _digest(head) == position.head


class _AtEnd(Enum):
    """What a tail does once its open file is read to the end."""

    FOLLOW = 0  # keep following it
    ROTATED = 1  # the path names another file: finish this one, go on with that one
    GONE = 2  # deleted (or no longer matched by a glob): finish it and let it go


class FileTailSource:
    """Follow one file, from a resume position or from its start.

    Parameters
    ----------
    path
        The file to follow. It may not exist yet; reading starts when it appears.
    resume_state
        A :class:`FilePosition` from :meth:`snapshot`. When another file is at ``path`` now
        (rotated while we were down), the saved file is looked for among the path's siblings
        (same folder, a name starting with the path's: ``app.log.1``, ``app.log-2024...``)
        by device, inode and fingerprint, and read on from the saved position, then the new
        file from its start. A state of another shape is ignored (read from the start).
    from_end
        With no resume state, start at the current end of the file instead of its start.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "app.log"
    >>> _ = log.write_text("one\\ntwo\\npartial")
    >>> tail = FileTailSource(log)
    >>> [r.text for r in tail.read()]
    ['one', 'two']
    >>> with log.open("a") as fh:
    ...     _ = fh.write(" line\\n")
    >>> [(r.text, r.line) for r in tail.read()]
    [('partial line', 3)]
    >>> resumed = FileTailSource(log, resume_state=tail.snapshot())
    >>> list(resumed.read())
    []

    Rotated while stopped: the rest of the old file first, then the new one.

    >>> with log.open("a") as fh:
    ...     _ = fh.write("unread\\n")
    >>> state = tail.snapshot()
    >>> _ = log.rename(log.with_name("app.log.1"))
    >>> _ = log.write_text("new\\n")
    >>> [(r.text, r.line) for r in FileTailSource(log, resume_state=state).read()]
    [('unread', 4), ('new', 1)]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        resume_state: FilePosition | None = None,
        *,
        from_end: bool = False,
    ) -> None:
        self.path = Path(path)
        self._origin = str(self.path)
        self._handle: BinaryIO | None = None
        self._device = -1
        self._inode = -1
        self._offset = 0
        self._line = 0
        self._pending = b""
        #: The file's first ``min(_HEAD_BYTES, offset)`` bytes and the ``_TAIL_BYTES`` before
        #: the offset, as read: the fingerprints of the position.
        self._head = b""
        self._tail = b""
        #: Size and modification time when the bytes before the offset were last checked.
        self._seen: tuple[int, int] | None = None
        #: Follows the file it has open, not the path (a glob's tail: the glob finds it).
        self._pinned = False
        #: Set by a glob whose pattern no longer matches the file: finish it and let go.
        self._retiring = False
        self.rotations = 0
        self.truncations = 0
        if resume_state is not None:
            position = _position_of(resume_state, str(self.path))
            if position is not None:
                self._resume(position)
            elif not isinstance(resume_state, FilePosition) or resume_state.inode >= 0:
                # (A position with no file, inode -1, is a tail that had nothing open.)
                logger.warning("%s: no usable saved position, reading from the start", path)
        elif from_end and self._open():
            self._continue_at(os.fstat(self._fileno()).st_size, 0, None)
        self.lag_bytes = 0

    def _fileno(self) -> int:
        assert self._handle is not None
        return self._handle.fileno()

    def _open(self) -> bool:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return False
        self._take(handle)
        return True

    def _take(self, handle: BinaryIO) -> None:
        """Follow ``handle``'s file from its start."""
        status = os.fstat(handle.fileno())
        self._handle = handle
        self._device, self._inode = status.st_dev, status.st_ino
        self._offset = self._line = 0
        self._pending = self._head = self._tail = b""
        self._seen = None

    def _resume(self, state: FilePosition) -> None:
        opened = self._open()
        if opened and _same_inode(os.fstat(self._fileno()), state):
            assert self._handle is not None
            if _same_head(self._handle, state):
                self._continue_at(state.offset, state.line, state.tail)
            else:
                self.truncations += 1  # rewritten (or another file on a reused inode)
                logger.warning("%s: changed while stopped, reading it from the start", self.path)
            return
        rotated = self._find_rotated(state)
        if rotated is not None:
            if self._handle is not None:
                self._handle.close()
            self._take(rotated)
            self._continue_at(state.offset, state.line, state.tail)
            logger.info(
                "%s: rotated while stopped; finishing %s from offset %d first",
                self.path,
                rotated.name,
                self._offset,
            )
        elif opened:
            self.rotations += 1  # another file now, the old one gone: read it from its start

    def _find_rotated(self, state: FilePosition) -> BinaryIO | None:
        """A handle on the saved file if it was renamed beside the path, else None."""
        for candidate in sorted(glob.glob(glob.escape(str(self.path)) + "*")):
            if candidate != str(self.path) and (handle := _open_if_same(candidate, state)):
                return handle
        return None

    def _continue_at(self, offset: int, line: int, tail: bytes | None) -> None:
        """Go on at ``offset`` of the open file unless it is shorter or the bytes before the
        offset are not those hashed in ``tail`` (None: take them as they are); else from 0."""
        fd = self._fileno()
        size = os.fstat(fd).st_size
        before = os.pread(fd, min(_TAIL_BYTES, offset), offset - min(_TAIL_BYTES, offset))
        if size < offset or (tail and _digest(before) != tail):
            self.truncations += 1
            logger.warning("%s: truncated while stopped, reading it from the start", self.path)
            return
        self._offset, self._line = offset, line
        self._head = os.pread(fd, min(_HEAD_BYTES, offset), 0)
        self._tail = before

    def _check_rewritten(self) -> None:
        """Start over at 0 if the file was truncated since the last read.

        Shorter than the position: truncated. Otherwise, only when its size or modification
        time changed, the bytes before the position are read again (copytruncate followed by
        writes past the old size between two reads leaves a longer file).
        """
        status = os.fstat(self._fileno())
        seen = (status.st_size, status.st_mtime_ns)
        if status.st_size < self._offset or (
            seen != self._seen
            and self._tail
            and os.pread(self._fileno(), len(self._tail), self._offset - len(self._tail))
            != self._tail
        ):
            self.truncations += 1
            self._offset = self._line = 0
            self._pending = self._head = self._tail = b""
        self._seen = seen

    def _advance(self, data: bytes) -> None:
        """Bring the fingerprints up to the offset, which ``data`` (just handed on) ended at."""
        start = self._offset - len(data)
        if start < _HEAD_BYTES:
            self._head += data[: _HEAD_BYTES - start]
        self._tail = data[-_TAIL_BYTES:] if len(data) >= _TAIL_BYTES else self._tail + data
        if len(self._tail) > _TAIL_BYTES:
            self._tail = self._tail[-_TAIL_BYTES:]

    def _at_end(self) -> _AtEnd:
        """What follows once the open file is read to its end."""
        if self._pinned:
            return _AtEnd.GONE if self._retiring else _AtEnd.FOLLOW
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            # Moved away and not yet recreated: keep the handle. Deleted: nothing more comes
            # (a writer still holding it open is let go too, as collectors do).
            return _AtEnd.GONE if os.fstat(self._fileno()).st_nlink == 0 else _AtEnd.FOLLOW
        if (status.st_ino, status.st_dev) != (self._inode, self._device):
            return _AtEnd.ROTATED
        return _AtEnd.FOLLOW

    def _finish(self) -> RawRecord | None:
        """Close the open file, handing on its partial last line (its writer is done)."""
        assert self._handle is not None
        partial = None
        if self._pending:
            self._offset += len(self._pending)
            self._line += 1
            self._advance(self._pending)
            text = self._pending.decode("utf-8", errors="replace")
            partial = RawRecord(text, str(self.path), self._line, self._offset)
        self._handle.close()
        self._handle = None
        return partial

    def _forget(self) -> None:
        """No file open any more: the position is nowhere."""
        self._device = self._inode = -1
        self._offset = self._line = 0
        self._pending = self._head = self._tail = b""

    def _ready(self) -> bool:
        """A file is open (opening the path's if none is and the tail follows the path)."""
        return self._handle is not None or (not self._pinned and self._open())

    def _drain(self) -> Iterator[RawRecord]:
        """Complete lines from the open handle, from the current offset to its end."""
        assert self._handle is not None
        # From the last line handed on, not from where the last read stopped: a reader that
        # took only part of the lines (a bounded batch) abandons its generator mid-chunk,
        # and the bytes after the offset are then read again rather than skipped.
        self._pending = b""
        self._handle.seek(self._offset)
        while True:
            chunk = self._handle.read(_CHUNK)
            if not chunk:
                return
            data = self._pending + chunk
            start = 0
            while (end := data.find(b"\n", start)) != -1:
                raw = data[start:end]
                self._offset += end + 1 - start
                self._line += 1
                self._advance(data[start : end + 1])
                start = end + 1
                text = raw.decode("utf-8", errors="replace").removesuffix("\r")
                yield RawRecord(text, str(self.path), self._line, self._offset)
            self._pending = data[start:]

    def read(self) -> Iterator[RawRecord]:
        """Every complete line written since the last read, across rotation."""
        if not self._ready():
            return
        self._check_rewritten()
        yield from self._drain()
        at_end = self._at_end()
        if at_end is not _AtEnd.FOLLOW:
            # The old file is fully read above; a held-back partial line was never
            # completed by its writer and is handed on as it is.
            partial = self._finish()
            if partial is not None:
                yield partial
            if at_end is _AtEnd.ROTATED:
                self.rotations += 1
                if self._open():
                    yield from self._drain()
            else:
                self._forget()
        self._measure_lag()

    def _measure_lag(self) -> None:
        if self._handle is not None:
            self.lag_bytes = os.fstat(self._fileno()).st_size - self._offset
        else:
            self.lag_bytes = 0

    def read_batch(self, max_records: int) -> list[RawRecord]:
        """Up to ``max_records`` complete lines, as :meth:`read` hands them on, in one list.

        The records of :meth:`read_blocks`, one by one. Rotation and truncation are followed
        as by :meth:`read`.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> log = pathlib.Path(tempfile.mkdtemp()) / "app.log"
        >>> _ = log.write_text("one\\ntwo\\nthree\\npartial")
        >>> tail = FileTailSource(log)
        >>> [(r.text, r.line) for r in tail.read_batch(2)], [r.text for r in tail.read_batch(5)]
        ([('one', 1), ('two', 2)], ['three'])
        """
        return [record for piece in self.read_blocks(max_records) for record in piece]

    def read_blocks(self, max_records: int) -> list[Sequence[RawRecord]]:
        """Up to ``max_records`` complete lines in a few pieces, mostly :class:`RecordBlock`.

        The daemon's fast path: whole chunks of complete lines are handed on as their bytes
        (a :class:`RecordBlock` per file read), not as one record per line. Rotation and
        truncation are followed as by :meth:`read`: a rename gives the rest of the old file,
        then its partial last line (a one-record list, handed on as :meth:`read` does), then
        the new file. The position moves past every line handed on.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> log = pathlib.Path(tempfile.mkdtemp()) / "app.log"
        >>> _ = log.write_text("one\\ntwo\\nthree\\npartial")
        >>> tail = FileTailSource(log)
        >>> [block.data for block in tail.read_blocks(2)], tail.snapshot().line
        ([b'one\\ntwo\\n'], 2)
        >>> [[r.text for r in block] for block in tail.read_blocks(5)], tail.snapshot().offset
        ([['three']], 14)
        """
        pieces: list[Sequence[RawRecord]] = []
        if max_records < 1 or not self._ready():
            return pieces
        self._check_rewritten()
        block = self._block(max_records)
        room = max_records
        if block is not None:
            pieces.append(block)
            room -= len(block)
            if not room:
                return pieces
        at_end = self._at_end()
        if at_end is not _AtEnd.FOLLOW:
            partial = self._finish()
            if partial is not None:
                pieces.append([partial])
                room -= 1
            if at_end is _AtEnd.ROTATED:
                self.rotations += 1
                if self._open() and room > 0:
                    block = self._block(room)
                    if block is not None:
                        pieces.append(block)
            else:
                self._forget()
        self._measure_lag()
        return pieces

    def _block(self, limit: int) -> RecordBlock | None:
        """Up to ``limit`` complete lines from the offset on (None if there are none yet).

        Stopping at the end of the file, the partial last line is kept in ``_pending``.
        """
        assert self._handle is not None
        self._pending = b""
        self._handle.seek(self._offset)
        chunks: list[bytes] = []
        # Each chunk's newlines are found once: they count the lines and are the block's
        # line ends, which the parser reads from.
        newlines: list[npt.NDArray[np.int64]] = []
        size = count = 0
        while count < limit:
            chunk = self._handle.read(_BATCH_CHUNK)
            if not chunk:
                break
            found = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == _NEWLINE)
            chunks.append(chunk)
            newlines.append(found.astype(np.int64, copy=False) + size)
            size += len(chunk)
            count += len(found)
        if not count:
            self._pending = b"".join(chunks)
            return None
        ends = (newlines[0] if len(newlines) == 1 else np.concatenate(newlines))[:limit] + 1
        cut = int(ends[-1])
        # The bytes up to the cut are copied once (the chunk holding the cut is sliced, and
        # what follows it is read again next time, or waits for its newline at the end).
        at_end = count < limit
        data, rest = _split(chunks, cut, rest=at_end)
        if at_end:
            # The end of the file: the partial last line waits for its newline.
            self._pending = rest
        count = len(ends)
        block = RecordBlock(
            data,
            str(self.path),
            first_line=self._line + 1,
            start_offset=self._offset,
            ends=ends,
        )
        self._offset += cut
        self._line += count
        self._advance(data)
        return block

    @property
    def alive(self) -> bool:
        """Always True: the file is read in the caller's thread, nothing can die apart."""
        return True

    def snapshot(self) -> FilePosition:
        """The position just after the last complete line handed on."""
        known = self._offset > 0
        return FilePosition(
            str(self.path),
            self._inode,
            self._offset,
            self._line,
            device=self._device,
            head=_digest(self._head) if known else b"",
            tail=_digest(self._tail) if known else b"",
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _split(chunks: list[bytes], cut: int, *, rest: bool = True) -> tuple[bytes, bytes]:
    """The chunks' bytes before ``cut`` and (``rest``, else nothing) after it, each copied
    once at most.

    Examples
    --------
    >>> _split([b"ab\\n", b"c\\nde"], 5)
    (b'ab\\nc\\n', b'de')
    >>> _split([b"ab\\n"], 3)
    (b'ab\\n', b'')
    """
    start = 0
    for index, chunk in enumerate(chunks):
        stop = start + len(chunk)
        if cut <= stop:
            head = chunks[:index]
            if cut == stop:
                before = chunk if not head else b"".join([*head, chunk])
                return before, b"".join(chunks[index + 1 :]) if rest else b""
            inside = cut - start
            before = b"".join([*head, chunk[:inside]]) if head else chunk[:inside]
            return before, b"".join([chunk[inside:], *chunks[index + 1 :]]) if rest else b""
        start = stop
    return b"".join(chunks), b""


class GlobTailSource:
    """Follow every file matching a glob pattern; new matches are picked up on each read.

    Files are followed by identity (device and inode), not by name: a file renamed to
    another matching name (``app.log`` to ``app.log.1`` under ``app.log*``) goes on where it
    was, and only the new file is read from its start. A file deleted or renamed out of the
    pattern is read to its end, then closed and forgotten. A restart finds each saved file
    by device, inode and fingerprint, among the matches or, renamed out of the pattern, among
    its siblings (as :class:`FileTailSource` does).

    The snapshot maps each followed file's path to its :class:`FilePosition`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.log").write_text("x\\n")
    >>> tails = GlobTailSource(str(folder / "*.log*"))
    >>> [r.text for r in tails.read()]
    ['x']
    >>> _ = (folder / "b.log").write_text("y\\n")
    >>> [r.text for r in tails.read()], sorted(tails.snapshot())  # doctest: +ELLIPSIS
    (['y'], ['.../a.log', '.../b.log'])
    >>> _ = (folder / "a.log").rename(folder / "a.log.1")
    >>> _ = (folder / "a.log").write_text("z\\n")
    >>> (folder / "b.log").unlink()
    >>> [r.text for r in tails.read()], sorted(tails.snapshot())  # doctest: +ELLIPSIS
    (['z'], ['.../a.log', '.../a.log.1'])
    """

    def __init__(self, pattern: str, resume_state: dict[str, FilePosition] | None = None) -> None:
        self.pattern = pattern
        self._tails: dict[tuple[int, int], FileTailSource] = {}
        if resume_state is not None:
            self._resume(resume_state)

    def _resume(self, state: object) -> None:
        if isinstance(state, FilePosition):  # the source was a single file before
            state = {state.path: state}
        if not isinstance(state, dict):
            logger.warning("%s: resume state not understood, reading from the start", self.pattern)
            return
        by_inode: dict[int, list[str]] = {}
        for (_, inode), path in self._matches().items():
            by_inode.setdefault(inode, []).append(path)
        for position in state.values():
            if not _usable(position):
                continue
            handle = None
            for path in by_inode.get(position.inode, ()):
                if (handle := _open_if_same(path, position)) is not None:
                    break
            if handle is None:  # renamed out of the pattern while we were down?
                siblings = sorted(glob.glob(glob.escape(position.path) + "*"))
                for path in siblings:
                    if (handle := _open_if_same(path, position)) is not None:
                        break
            if handle is None:
                logger.info("%s: %s is gone, not resumed", self.pattern, position.path)
                continue
            tail = self._follow(handle)
            if tail is not None:
                tail._continue_at(position.offset, position.line, position.tail)

    def _matches(self) -> dict[tuple[int, int], str]:
        """The regular files the pattern matches now, by identity."""
        # A pattern such as logs/* may match directories too: only files are followed.
        found: dict[tuple[int, int], str] = {}
        for path in sorted(glob.glob(self.pattern)):
            try:
                status = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(status.st_mode):
                found.setdefault((status.st_dev, status.st_ino), path)
        return found

    def _follow(self, handle: BinaryIO) -> FileTailSource | None:
        """A new tail on ``handle``'s file (None, and the handle closed, if one follows it)."""
        tail = FileTailSource(handle.name)
        tail._pinned = True
        tail._take(handle)
        identity = (tail._device, tail._inode)
        if identity in self._tails:
            handle.close()
            return None
        self._tails[identity] = tail
        return tail

    def _follow_matches(self) -> None:
        self._drop_finished()
        matched = self._matches()
        for identity, tail in self._tails.items():
            path = matched.pop(identity, None)
            tail._retiring = path is None
            if path is not None and path != tail._origin:
                tail.path, tail._origin = Path(path), path
        for path in matched.values():  # new files, or files that were away
            try:
                handle = open(path, "rb")  # noqa: SIM115 - the tail keeps it open
            except OSError:
                continue
            self._follow(handle)

    def _drop_finished(self) -> None:
        for identity in [key for key, tail in self._tails.items() if tail._handle is None]:
            del self._tails[identity]

    def read(self) -> Iterator[RawRecord]:
        self._follow_matches()
        for tail in list(self._tails.values()):
            yield from tail.read()
        self._drop_finished()

    def read_blocks(self, max_records: int) -> list[Sequence[RawRecord]]:
        """Up to ``max_records`` lines of the followed files, in the order :meth:`read` gives
        them, as :meth:`FileTailSource.read_blocks` pieces."""
        self._follow_matches()
        pieces: list[Sequence[RawRecord]] = []
        room = max_records
        for tail in list(self._tails.values()):
            if room < 1:
                break
            read = tail.read_blocks(room)
            pieces.extend(read)
            room -= sum(len(piece) for piece in read)
        self._drop_finished()
        return pieces

    @property
    def alive(self) -> bool:
        """Always True: the file is read in the caller's thread, nothing can die apart."""
        return True

    def snapshot(self) -> dict[str, FilePosition]:
        positions: dict[str, FilePosition] = {}
        for tail in self._tails.values():
            position = tail.snapshot()
            # A file renamed out of the pattern, not yet finished, keeps its old name, which
            # a new file may have taken: the key only has to be unique (resume goes by
            # identity).
            key = position.path
            if key in positions:
                key = f"{key} (inode {position.inode})"
            positions[key] = position
        return positions

    def close(self) -> None:
        for tail in self._tails.values():
            tail.close()
        self._tails.clear()

    @property
    def lag_bytes(self) -> int:
        return sum(tail.lag_bytes for tail in self._tails.values())
