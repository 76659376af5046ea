"""Read a log file line by line through a parser, turning bad lines into dead letters."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from streams.errors import DeadLetter, ParseError
from streams.event import Event
from streams.parsers.base import Parser

logger = logging.getLogger(__name__)


class LineReader:
    """Iterate over the events of a file; rejected lines are collected in ``dead_letters``.

    Parameters
    ----------
    path
        The file to read (UTF-8; undecodable bytes are replaced, never fatal).
    parser
        Any :class:`streams.parsers.Parser`.
    strict
        Raise the first line's :class:`ParseError` (with file and line in its detail)
        instead of collecting a dead letter.

    Examples
    --------
    >>> import os, tempfile
    >>> from streams.parsers import CertLogonParser
    >>> d = tempfile.mkdtemp()
    >>> path = os.path.join(d, "logon.csv")
    >>> _ = open(path, "w").write("id,date,user,pc,activity\\n"
    ...     "{A},01/02/2010 06:49:00,NGF0157,PC-6056,Logon\\n"
    ...     "{B},99/02/2010 06:49:00,NGF0157,PC-6056,Logon\\n")
    >>> reader = LineReader(path, CertLogonParser())
    >>> [e.action for e in reader], [(d.line, d.reason) for d in reader.dead_letters]
    (['logon'], [(3, 'bad_timestamp')])
    """

    def __init__(self, path: Path | str, parser: Parser, *, strict: bool = False) -> None:
        self.path = Path(path)
        self.parser = parser
        self.strict = strict
        self.dead_letters: list[DeadLetter] = []

    def __iter__(self) -> Iterator[Event]:
        name = str(self.path)
        # Lines end at b"\n" alone, as the daemon's sources and the batch readers cut them:
        # a text-mode file would also end one at a lone "\r" inside it (a CERT e-mail body),
        # making two bad lines of one and shifting the numbers of the lines after it.
        with open(self.path, "rb") as handle:
            for number, data in enumerate(handle, start=1):
                # One trailing CR is the line end's (CRLF).
                raw = data.decode("utf-8", errors="replace").removesuffix("\n")
                line = raw.removesuffix("\r")
                try:
                    event = self.parser.parse(line)
                except ParseError as exc:
                    if self.strict:
                        raise ParseError(exc.reason, f"{name}:{number}: {exc.detail}") from None
                    logger.debug("dead letter %s:%d %s", name, number, exc)
                    self.dead_letters.append(DeadLetter(name, number, exc.reason, line, exc.detail))
                    continue
                if event is not None:
                    yield event


def read_lines(
    path: Path | str, parser: Parser, *, strict: bool = False
) -> tuple[list[Event], list[DeadLetter]]:
    """All events of a file and the dead letters of its bad lines.

    Examples
    --------
    >>> import os, tempfile
    >>> from streams.parsers import LanlAuthParser
    >>> path = os.path.join(tempfile.mkdtemp(), "auth.txt")
    >>> _ = open(path, "w").write("1,U1@D,U1@D,C1,C2,?,?,TGS,Success\\nnot,a,line\\n")
    >>> events, dead = read_lines(path, LanlAuthParser())
    >>> len(events), dead[0].line, dead[0].reason
    (1, 2, 'wrong_field_count')
    """
    reader = LineReader(path, parser, strict=strict)
    events = list(reader)
    return events, reader.dead_letters
