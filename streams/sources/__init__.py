"""Resumable sources: where raw lines come from, and where to resume after a restart.

Every source hands on :class:`RawRecord` (a line and the position just after it) and
``snapshot()`` returns a position just after the last record handed on, so that a restart
restored from it neither loses nor repeats a line. The network sources (syslog over UDP and
TCP, HTTP ingest) cannot be re-read: their snapshot is a count, and the senders' retries are
the recovery.
"""

from streams.sources.base import RawRecord, Source
from streams.sources.file_tail import FilePosition, FileTailSource, GlobTailSource
from streams.sources.http_ingest import HttpIngestSource
from streams.sources.queued import QueuedSource
from streams.sources.syslog import SyslogTcpSource, SyslogUdpSource

__all__ = [
    "FilePosition",
    "FileTailSource",
    "GlobTailSource",
    "HttpIngestSource",
    "QueuedSource",
    "RawRecord",
    "Source",
    "SyslogTcpSource",
    "SyslogUdpSource",
]
from streams.sources.stdin import StdinSource as StdinSource
