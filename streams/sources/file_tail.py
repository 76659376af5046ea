"""Tail files like a collector does: follow appends and rotation, resume exactly.

Rotation comes in two flavours and both are followed:

- rename-and-create (logrotate's default): the path now names a new file (another inode).
  The old file is read to its end first, through the handle still open on it, then the new
  file from its start.
- copytruncate: the same file shrinks below the position read so far. Reading restarts at
  offset 0 of the truncated file.

A last line without its newline is held back until it is complete, so a record is never
split. Positions are byte offsets of complete lines; ``snapshot()`` is taken between reads.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from streams.sources.base import RawRecord
from streams.sources.blocks import RecordBlock

_CHUNK = 1 << 16
#: Bytes per read of a block; the reads past the block's last line are read again next
#: time, so they are kept small.
_BATCH_CHUNK = 1 << 18
_NEWLINE = 10


@dataclass(frozen=True, slots=True)
class FilePosition:
    """Where a tail is in one file: the file's identity, the byte offset and the line count.

    Examples
    --------
    >>> FilePosition(path="/var/log/auth.log", inode=42, offset=0, line=0).offset
    0
    """

    path: str
    inode: int
    offset: int
    line: int


class FileTailSource:
    """Follow one file, from a resume position or from its start.

    Parameters
    ----------
    path
        The file to follow. It may not exist yet; reading starts when it appears.
    resume_state
        A :class:`FilePosition` from :meth:`snapshot`. When its inode no longer names the file
        at ``path`` (rotated while we were down), the new file is read from its start.
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
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        resume_state: FilePosition | None = None,
        *,
        from_end: bool = False,
    ) -> None:
        self.path = Path(path)
        self._handle: BinaryIO | None = None
        self._inode = -1
        self._offset = 0
        self._line = 0
        self._pending = b""
        self.rotations = 0
        self.truncations = 0
        if resume_state is not None:
            self._resume(resume_state)
        elif from_end and self.path.exists():
            self._open()
            self._offset = os.fstat(self._fileno()).st_size
        self.lag_bytes = 0

    def _fileno(self) -> int:
        assert self._handle is not None
        return self._handle.fileno()

    def _open(self) -> bool:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return False
        self._handle = handle
        self._inode = os.fstat(handle.fileno()).st_ino
        self._offset = 0
        self._line = 0
        self._pending = b""
        return True

    def _resume(self, state: FilePosition) -> None:
        if not self._open():
            return
        if self._inode == state.inode:
            size = os.fstat(self._fileno()).st_size
            if size >= state.offset:
                self._offset, self._line = state.offset, state.line
            else:
                self.truncations += 1  # truncated while we were down: start over
        else:
            self.rotations += 1  # another file now: the old one is gone, read the new one

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
                start = end + 1
                text = raw.decode("utf-8", errors="replace").removesuffix("\r")
                yield RawRecord(text, str(self.path), self._line, self._offset)
            self._pending = data[start:]

    def read(self) -> Iterator[RawRecord]:
        """Every complete line written since the last read, across rotation."""
        if self._handle is None and not self._open():
            return
        assert self._handle is not None
        size = os.fstat(self._fileno()).st_size
        if size < self._offset:
            self.truncations += 1
            self._offset, self._line, self._pending = 0, 0, b""
        yield from self._drain()
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = self._inode  # moved away and not yet recreated: keep the old handle
        if current != self._inode:
            # Rotated by rename: the old file is fully read above; a held-back partial line
            # was never completed by its writer and is handed on as it is.
            if self._pending:
                self._offset += len(self._pending)
                self._line += 1
                text = self._pending.decode("utf-8", errors="replace")
                yield RawRecord(text, str(self.path), self._line, self._offset)
            self._handle.close()
            self._handle = None
            self.rotations += 1
            if self._open():
                yield from self._drain()
        if self._handle is not None:
            self.lag_bytes = os.fstat(self._fileno()).st_size - self._offset
        return

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
        if max_records < 1 or (self._handle is None and not self._open()):
            return pieces
        assert self._handle is not None
        if os.fstat(self._fileno()).st_size < self._offset:
            self.truncations += 1
            self._offset, self._line, self._pending = 0, 0, b""
        block = self._block(max_records)
        room = max_records
        if block is not None:
            pieces.append(block)
            room -= len(block)
            if not room:
                return pieces
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = self._inode
        if current != self._inode:
            if self._pending:
                self._offset += len(self._pending)
                self._line += 1
                text = self._pending.decode("utf-8", errors="replace")
                pieces.append([RawRecord(text, str(self.path), self._line, self._offset)])
                room -= 1
            self._handle.close()
            self._handle = None
            self.rotations += 1
            if self._open() and room > 0:
                block = self._block(room)
                if block is not None:
                    pieces.append(block)
        if self._handle is not None:
            self.lag_bytes = os.fstat(self._fileno()).st_size - self._offset
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
        return block

    def snapshot(self) -> FilePosition:
        """The position just after the last complete line handed on."""
        return FilePosition(str(self.path), self._inode, self._offset, self._line)

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

    The snapshot maps each followed path to its :class:`FilePosition`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.log").write_text("x\\n")
    >>> tails = GlobTailSource(str(folder / "*.log"))
    >>> [r.text for r in tails.read()]
    ['x']
    >>> _ = (folder / "b.log").write_text("y\\n")
    >>> [r.text for r in tails.read()], sorted(tails.snapshot())  # doctest: +ELLIPSIS
    (['y'], ['.../a.log', '.../b.log'])
    """

    def __init__(self, pattern: str, resume_state: dict[str, FilePosition] | None = None) -> None:
        self.pattern = pattern
        self._tails: dict[str, FileTailSource] = {
            path: FileTailSource(path, resume_state=position)
            for path, position in (resume_state or {}).items()
        }

    def _follow_new_matches(self) -> None:
        # A pattern such as logs/* may match directories too: only files are followed.
        for path in sorted(glob.glob(self.pattern)):
            if path not in self._tails and not os.path.isdir(path):
                self._tails[path] = FileTailSource(path)

    def read(self) -> Iterator[RawRecord]:
        self._follow_new_matches()
        for tail in self._tails.values():
            yield from tail.read()

    def read_blocks(self, max_records: int) -> list[Sequence[RawRecord]]:
        """Up to ``max_records`` lines of the followed files, in the order :meth:`read` gives
        them, as :meth:`FileTailSource.read_blocks` pieces."""
        self._follow_new_matches()
        pieces: list[Sequence[RawRecord]] = []
        room = max_records
        for tail in self._tails.values():
            if room < 1:
                break
            read = tail.read_blocks(room)
            pieces.extend(read)
            room -= sum(len(piece) for piece in read)
        return pieces

    def snapshot(self) -> dict[str, FilePosition]:
        return {path: tail.snapshot() for path, tail in self._tails.items()}

    @property
    def lag_bytes(self) -> int:
        return sum(tail.lag_bytes for tail in self._tails.values())
