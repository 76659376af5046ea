"""The source contract shared by file tails, sockets and stdin."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

S = TypeVar("S", covariant=True)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One raw line and where it came from.

    Parameters
    ----------
    text
        The line without its line terminator (decoded as UTF-8, invalid bytes replaced).
    origin
        The file (or socket, or ``"stdin"``) it came from.
    line
        1-based line number within the origin since it was (re)opened at offset 0, when known.
    offset
        Byte offset just after the line in the origin.

    Examples
    --------
    >>> RawRecord("a,b", "logon.csv", 2, 8).offset
    8
    """

    text: str
    origin: str
    line: int
    offset: int


class Source(Protocol[S]):
    """A resumable source: built from a resume state, ``snapshot()`` gives the next one.

    :attr:`alive` says whether it can still deliver records: a source that reads in a
    background thread (a network listener, stdin) is dead once that thread has died; one that
    reads in the caller's thread (a file tail) is always alive.
    """

    @property
    def alive(self) -> bool:
        """Whether the source can still deliver records (False: its reader thread died)."""
        ...

    def read(self) -> Iterator[RawRecord]:
        """Every complete record available now; returns when there is nothing more yet."""
        ...

    def snapshot(self) -> S:
        """A position just after the last record handed on."""
        ...
