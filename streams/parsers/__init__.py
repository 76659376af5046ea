"""Line parsers: one object per log format with ``parse(line) -> Event | None``.

``PARSERS`` maps a format name to a factory taking the format's keyword options, so
contract tests and configuration can iterate over every format.

Examples
--------
>>> sorted(PARSERS)[:3]
['cert.device', 'cert.email', 'cert.file']
>>> PARSERS["lanl.auth"]().parse("5,U1@D,U1@D,C1,C2,?,?,TGS,Success").target
'C2'
"""

from __future__ import annotations

from collections.abc import Callable

from streams.parsers.authlog import AuthLogParser
from streams.parsers.base import Parser
from streams.parsers.cert import (
    CertDeviceParser,
    CertEmailParser,
    CertFileParser,
    CertHttpParser,
    CertLayout,
    CertLogonParser,
    CertParser,
)
from streams.parsers.drain import DrainTemplateParser
from streams.parsers.jsonl import JsonLinesParser
from streams.parsers.lanl import LanlAuthParser, RedTeamRecord, read_redteam
from streams.parsers.syslog import SyslogMessage, SyslogParser, parse_syslog_header
from streams.parsers.windows import WindowsSecurityParser

PARSERS: dict[str, Callable[..., Parser]] = {
    "cert.logon": CertLogonParser,
    "cert.device": CertDeviceParser,
    "cert.file": CertFileParser,
    "cert.email": CertEmailParser,
    "cert.http": CertHttpParser,
    "lanl.auth": LanlAuthParser,
    "jsonl": JsonLinesParser,
    "syslog": SyslogParser,
    "linux.auth": AuthLogParser,
    "windows.security": WindowsSecurityParser,
    "drain": DrainTemplateParser,
}

__all__ = [
    "PARSERS",
    "AuthLogParser",
    "CertDeviceParser",
    "CertEmailParser",
    "CertFileParser",
    "CertHttpParser",
    "CertLayout",
    "CertLogonParser",
    "CertParser",
    "DrainTemplateParser",
    "JsonLinesParser",
    "LanlAuthParser",
    "Parser",
    "RedTeamRecord",
    "SyslogMessage",
    "SyslogParser",
    "WindowsSecurityParser",
    "parse_syslog_header",
    "read_redteam",
]
