"""Resumable sources: where raw lines come from, and where to resume after a restart.

Every source hands on :class:`RawRecord` (a line and the position just after it) and
``snapshot()`` returns a position just after the last record handed on, so that a restart
restored from it neither loses nor repeats a line.
"""

from streams.sources.base import RawRecord, Source
from streams.sources.file_tail import FilePosition, FileTailSource, GlobTailSource

__all__ = ["FilePosition", "FileTailSource", "GlobTailSource", "RawRecord", "Source"]
