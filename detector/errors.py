"""Errors that the CLI turns into one line on stderr and exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad usage: a wrong flag, a missing file, an unknown format, an unreadable config.

    The CLI prints ``baseliner: error: <message>`` and exits with code 2; no traceback.

    Examples
    --------
    >>> str(UsageError("no such file: logs/logon.csv"))
    'no such file: logs/logon.csv'
    """
