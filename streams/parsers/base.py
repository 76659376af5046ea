"""The parser contract and the small helpers the line parsers share."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from streams.event import Event


@runtime_checkable
class Parser(Protocol):
    """Turns one raw log line into an Event.

    ``parse`` returns ``None`` for a line to skip silently (a header, an empty line) and
    raises :class:`streams.errors.ParseError` for a malformed one; it never raises anything
    else, whatever the input.

    Examples
    --------
    >>> from streams.parsers import PARSERS
    >>> isinstance(PARSERS["cert.logon"](), Parser)
    True
    """

    def parse(self, line: str) -> Event | None:
        """Parse one line (without its trailing newline)."""
        ...


def strip_eol(line: str) -> str:
    """Drop a trailing newline / carriage return, as a line reader hands lines over.

    Examples
    --------
    >>> strip_eol("a,b\\r\\n")
    'a,b'
    """
    return line.rstrip("\r\n")


def is_blank(line: str) -> bool:
    """Whether a line holds nothing but spaces, tabs and line ends (skipped silently).

    Examples
    --------
    >>> is_blank(" \\t\\r"), is_blank("x")
    (True, False)
    """
    return line.strip(BLANK_CHARS) == ""


#: The characters that make a line blank; the batch readers strip exactly these too.
BLANK_CHARS = " \t\r\n"
