"""Many complete lines handed on as one object: their bytes, with records made on demand.

A file tail reads whole chunks; splitting each into one :class:`RawRecord` per line costs
more than parsing the lines does when the parser reads the bytes at once (Arrow's JSON
reader). A :class:`RecordBlock` keeps the bytes and builds records only when something asks
for them (a dead letter, a late event, a per-line parser), with the texts, line numbers and
offsets a per-line read would have given.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from streams.sources.base import RawRecord

_NEWLINE = 10


class RecordBlock(Sequence[RawRecord]):
    """The bytes of complete lines of one origin, a :class:`Sequence` of their records.

    Parameters
    ----------
    data
        The lines, each ending with ``b"\\n"`` (a ``b"\\r"`` before it is part of the
        terminator: the record's text drops it, as a line reader does).
    origin
        The file the lines came from.
    first_line
        The line number of the first line.
    start_offset
        The byte offset of ``data[0]`` in the origin; a record's offset is just after its line.
    count
        The number of lines (``data.count(b"\\n")``) when the caller already knows it.
    ends
        Where each line ends (the position just after its newline) when the caller already
        knows it: the line count too, and :attr:`ends` need not look for them again.

    Examples
    --------
    >>> block = RecordBlock(b"one\\r\\ntw\\xc3\\xa9\\n", "app.log", first_line=3, start_offset=10)
    >>> len(block), block[1]
    (2, RawRecord(text='twé', origin='app.log', line=4, offset=20))
    >>> [r.text for r in block], block.end_offset
    (['one', 'twé'], 20)
    """

    __slots__ = ("_count", "_ends", "_records", "data", "first_line", "origin", "start_offset")

    def __init__(
        self,
        data: bytes,
        origin: str,
        *,
        first_line: int,
        start_offset: int,
        count: int | None = None,
        ends: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.data = data
        self.origin = origin
        self.first_line = first_line
        self.start_offset = start_offset
        if ends is not None:
            count = len(ends)
        self._count = data.count(b"\n") if count is None else count
        self._ends = ends
        self._records: list[RawRecord] | None = None

    def __len__(self) -> int:
        return self._count

    @property
    def end_offset(self) -> int:
        """The byte offset just after the last line."""
        return self.start_offset + len(self.data)

    @property
    def ends(self) -> npt.NDArray[np.int64]:
        """Positions in :attr:`data` just after each line's newline (built on first use)."""
        if self._ends is None:
            view = np.frombuffer(self.data, dtype=np.uint8)
            self._ends = np.flatnonzero(view == _NEWLINE).astype(np.int64) + 1
        return self._ends

    @overload
    def __getitem__(self, index: int) -> RawRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[RawRecord]: ...

    def __getitem__(self, index: int | slice) -> RawRecord | list[RawRecord]:
        if isinstance(index, slice) or self._records is not None:
            return self.records()[index]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("RecordBlock index out of range")
        return RawRecord(
            self.text(index),
            self.origin,
            self.first_line + index,
            self.start_offset + int(self.ends[index]),
        )

    def __iter__(self) -> Iterator[RawRecord]:
        return iter(self.records())

    def text(self, index: int) -> str:
        """The text of line ``index`` (0-based), as a line reader decodes it."""
        ends = self.ends
        start = int(ends[index - 1]) if index else 0
        raw = self.data[start : int(ends[index]) - 1]
        return raw.decode("utf-8", errors="replace").removesuffix("\r")

    def records(self) -> list[RawRecord]:
        """Every line as a :class:`RawRecord` (made once, then kept)."""
        if self._records is None:
            texts: list[str]
            if self.data.isascii():
                texts = self.data.decode("ascii").split("\n")
            else:
                # Line by line: invalid bytes are replaced within their own line.
                texts = [raw.decode("utf-8", errors="replace") for raw in self.data.split(b"\n")]
            texts.pop()  # what follows the last newline: nothing
            if b"\r" in self.data:
                texts = [text.removesuffix("\r") for text in texts]
            origin = self.origin
            records = [
                RawRecord(text, origin, number, offset)
                for text, number, offset in zip(
                    texts,
                    range(self.first_line, self.first_line + len(texts)),
                    (self.ends + self.start_offset).tolist(),
                    strict=True,
                )
            ]
            self._records = records
        return self._records

    def __repr__(self) -> str:
        return (
            f"RecordBlock({self.origin!r}, lines {self.first_line}.."
            f"{self.first_line + self._count - 1}, {len(self.data)} bytes)"
        )
