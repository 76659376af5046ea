"""Typed parse errors and dead letters: a bad line is recorded, never lost, never fatal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ParseError(ValueError):
    """A line that a parser cannot turn into an Event.

    Parameters
    ----------
    reason
        A short machine-friendly reason (``"bad_timestamp"``, ``"wrong_field_count"``...).
    detail
        Human text naming the field and the offending value.

    Examples
    --------
    >>> err = ParseError("bad_timestamp", "field 'date': '13/45/2010' is not MM/DD/YYYY HH:MM:SS")
    >>> err.reason
    'bad_timestamp'
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected line with where it came from and why.

    Examples
    --------
    >>> DeadLetter("logon.csv", 7, "bad_timestamp", "x,y").to_dict()["line"]
    7
    """

    file: str
    line: int
    reason: str
    raw: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "reason": self.reason,
            "detail": self.detail,
            "raw": self.raw,
        }
